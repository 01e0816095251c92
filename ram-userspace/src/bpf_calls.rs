//! The bpf(2) commands aya does not offer in the form ramd needs.
//!
//! - Attaching without bpf_link, for kernels before 5.7: BPF_PROG_ATTACH with
//!   BPF_F_ALLOW_MULTI, BPF_PROG_DETACH, and pinning the attached program so
//!   a later ramd (or `ramd --uninstall`) can name it to BPF_PROG_DETACH. An
//!   attachment made this way outlives the process that made it (the cgroup
//!   holds the program); the pin is written before the attach so no
//!   attachment is ever left without one.
//! - BPF_LINK_UPDATE: a restarted or upgraded ramd swaps its new program
//!   into the pinned link in one step, so the hook never runs without ram's
//!   program nor with two of them.
//! - Raw map element access, to carry entries between maps whose layout
//!   ramd only knows as sizes (see `crate::maps::layout`).
//! - BPF_MAP_LOOKUP_BATCH, so the metrics can count a map of a million
//!   entries with a few hundred calls instead of two calls per entry.

use std::{
    fs::File,
    io,
    os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd},
    path::Path,
};

use crate::{
    host::{HostError, Result},
    sys::{bpf, c_path},
};

const BPF_OBJ_PIN: libc::c_long = aya_obj::generated::bpf_cmd::BPF_OBJ_PIN as libc::c_long;
const BPF_OBJ_GET: libc::c_long = aya_obj::generated::bpf_cmd::BPF_OBJ_GET as libc::c_long;
const BPF_PROG_ATTACH: libc::c_long = aya_obj::generated::bpf_cmd::BPF_PROG_ATTACH as libc::c_long;
const BPF_PROG_DETACH: libc::c_long = aya_obj::generated::bpf_cmd::BPF_PROG_DETACH as libc::c_long;
const BPF_PROG_QUERY: libc::c_long = aya_obj::generated::bpf_cmd::BPF_PROG_QUERY as libc::c_long;
const BPF_LINK_UPDATE: libc::c_long = aya_obj::generated::bpf_cmd::BPF_LINK_UPDATE as libc::c_long;
const BPF_MAP_LOOKUP_ELEM: libc::c_long = aya_obj::generated::bpf_cmd::BPF_MAP_LOOKUP_ELEM as libc::c_long;
const BPF_MAP_UPDATE_ELEM: libc::c_long = aya_obj::generated::bpf_cmd::BPF_MAP_UPDATE_ELEM as libc::c_long;
const BPF_MAP_GET_NEXT_KEY: libc::c_long = aya_obj::generated::bpf_cmd::BPF_MAP_GET_NEXT_KEY as libc::c_long;
const BPF_MAP_LOOKUP_BATCH: libc::c_long = aya_obj::generated::bpf_cmd::BPF_MAP_LOOKUP_BATCH as libc::c_long;
const BPF_F_ALLOW_MULTI: u32 = aya_obj::generated::BPF_F_ALLOW_MULTI;

/// The kernel's attach type for each of ram's programs.
pub fn attach_type(program: &str) -> Option<u32> {
    crate::programs::find(program).map(|spec| spec.attach_type as u32)
}

#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

#[repr(C)]
#[derive(Default)]
struct ObjAttr {
    pathname: u64,
    bpf_fd: u32,
    file_flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    /// Explicit so it is zero: kernels refuse non-zero bytes past the last
    /// field they know (EINVAL), and implicit padding is not guaranteed zero.
    _pad: u32,
}

/// bpf(2) with one of this module's attribute structs (repr(C), zeroed by
/// Default, holding only fds and numbers).
fn call<T>(cmd: libc::c_long, attr: &T) -> io::Result<libc::c_long> {
    // SAFETY: a live attribute struct of its own size; the module's structs
    // carry no pointers but those set up next to each call.
    let ret = unsafe { bpf(cmd, attr as *const T as *const libc::c_void, std::mem::size_of::<T>()) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// bpf(2) with an attribute struct the kernel also writes to (`count` of
/// the batch commands).
fn call_mut<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: as in `call`; the kernel writes only within the struct.
    let ret = unsafe { bpf(cmd, attr as *mut T as *const libc::c_void, std::mem::size_of::<T>()) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn sys_error(what: String) -> impl FnOnce(io::Error) -> HostError {
    move |cause| HostError::Sys { what, cause }
}

/// Pins the object behind `fd` (a program here) at `path`.
pub fn pin_object(fd: BorrowedFd<'_>, path: &Path) -> Result<()> {
    let c = c_path(path)?;
    let attr = ObjAttr { pathname: c.as_ptr() as u64, bpf_fd: fd.as_raw_fd() as u32, file_flags: 0 };
    call(BPF_OBJ_PIN, &attr).map(drop).map_err(|e| HostError::io(path, e))
}

/// Moves a pin: bpffs has no rename(2) (EPERM), so the object is pinned
/// at `to` and then unpinned at `from`. It stays pinned throughout.
pub fn move_pin(from: &Path, to: &Path) -> Result<()> {
    let object = open_pinned(from)?;
    pin_object(object.as_fd(), to)?;
    std::fs::remove_file(from).map_err(|e| HostError::io(from, e))
}

/// Opens a pinned object.
pub fn open_pinned(path: &Path) -> Result<OwnedFd> {
    let c = c_path(path)?;
    let attr = ObjAttr { pathname: c.as_ptr() as u64, bpf_fd: 0, file_flags: 0 };
    let fd = call(BPF_OBJ_GET, &attr).map_err(|e| HostError::io(path, e))?;
    // SAFETY: the kernel just returned this descriptor to us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// BPF_PROG_ATTACH of `program` (of kind `program_name`) to `cgroup` in
/// multi mode: a child cgroup can add programs but not replace this one.
pub fn attach(cgroup: &File, cgroup_path: &Path, program: BorrowedFd<'_>, program_name: &str) -> Result<()> {
    let what = format!("BPF_PROG_ATTACH {program_name} to {}", cgroup_path.display());
    let attach_type = attach_type(program_name)
        .ok_or_else(|| HostError::Sys { what: what.clone(), cause: io::Error::from(io::ErrorKind::InvalidInput) })?;
    let attr = AttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: program.as_raw_fd() as u32,
        attach_type,
        attach_flags: BPF_F_ALLOW_MULTI,
        replace_bpf_fd: 0,
    };
    call(BPF_PROG_ATTACH, &attr).map(drop).map_err(sys_error(what))
}

/// BPF_PROG_DETACH of the program pinned at `pin` from `cgroup`. A program
/// that is no longer attached (the cgroup was recreated, or a previous
/// detach got this far) counts as detached.
pub fn detach(cgroup_path: &Path, pin: &Path, program_name: &str) -> Result<()> {
    let what = format!("BPF_PROG_DETACH {} from {}", pin.display(), cgroup_path.display());
    let attach_type = attach_type(program_name)
        .ok_or_else(|| HostError::Sys { what: what.clone(), cause: io::Error::from(io::ErrorKind::InvalidInput) })?;
    let cgroup = File::open(cgroup_path).map_err(|e| HostError::io(cgroup_path, e))?;
    let program = open_pinned(pin)?;
    let attr = AttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: program.as_fd().as_raw_fd() as u32,
        attach_type,
        ..AttachAttr::default()
    };
    match call(BPF_PROG_DETACH, &attr) {
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        Err(e) => Err(HostError::Sys { what, cause: e }),
    }
}

/// Ids of the programs attached to `cgroup` itself for `attach_type`.
pub fn query(cgroup_path: &Path, attach_type: u32) -> Result<Vec<u32>> {
    let cgroup = File::open(cgroup_path).map_err(|e| HostError::io(cgroup_path, e))?;
    let mut ids = vec![0u32; 64];
    let mut attr = QueryAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_type,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..QueryAttr::default()
    };
    // SAFETY: a live QueryAttr whose prog_ids points at `ids`, which has
    // room for prog_cnt ids.
    let ret = unsafe {
        bpf(BPF_PROG_QUERY, &mut attr as *mut QueryAttr as *const libc::c_void, std::mem::size_of::<QueryAttr>())
    };
    if ret < 0 {
        let what = format!("BPF_PROG_QUERY on {}", cgroup_path.display());
        return Err(HostError::Sys { what, cause: io::Error::last_os_error() });
    }
    ids.truncate(attr.prog_cnt as usize);
    Ok(ids)
}

#[repr(C)]
#[derive(Default)]
struct LinkUpdateAttr {
    link_fd: u32,
    new_prog_fd: u32,
    flags: u32,
    old_prog_fd: u32,
}

/// BPF_LINK_UPDATE: the pinned link at `link_pin` runs `program` from now on.
pub fn update_link(link_pin: &Path, program: BorrowedFd<'_>) -> Result<()> {
    let link = open_pinned(link_pin)?;
    let attr = LinkUpdateAttr {
        link_fd: link.as_fd().as_raw_fd() as u32,
        new_prog_fd: program.as_raw_fd() as u32,
        ..LinkUpdateAttr::default()
    };
    call(BPF_LINK_UPDATE, &attr).map(drop).map_err(sys_error(format!("BPF_LINK_UPDATE of {}", link_pin.display())))
}

#[repr(C)]
#[derive(Default)]
struct ElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// The key after `key` (the first key when None); None at the end.
pub fn next_key(map: BorrowedFd<'_>, key: Option<&[u8]>, next: &mut [u8]) -> io::Result<bool> {
    let attr = ElemAttr {
        map_fd: map.as_raw_fd() as u32,
        key: key.map_or(0, |k| k.as_ptr() as u64),
        value: next.as_mut_ptr() as u64,
        ..ElemAttr::default()
    };
    match call(BPF_MAP_GET_NEXT_KEY, &attr) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Reads the value of `key` into `value` (all CPUs' values for per-CPU
/// maps); false when the key is absent.
pub fn lookup(map: BorrowedFd<'_>, key: &[u8], value: &mut [u8]) -> io::Result<bool> {
    let attr = ElemAttr {
        map_fd: map.as_raw_fd() as u32,
        key: key.as_ptr() as u64,
        value: value.as_mut_ptr() as u64,
        ..ElemAttr::default()
    };
    match call(BPF_MAP_LOOKUP_ELEM, &attr) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Writes `value` at `key` (BPF_ANY).
pub fn update(map: BorrowedFd<'_>, key: &[u8], value: &[u8]) -> io::Result<()> {
    let attr = ElemAttr {
        map_fd: map.as_raw_fd() as u32,
        key: key.as_ptr() as u64,
        value: value.as_ptr() as u64,
        ..ElemAttr::default()
    };
    call(BPF_MAP_UPDATE_ELEM, &attr).map(drop)
}

#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// What a map without batch lookup answers (ENOTSUPP is the kernel's 524).
pub fn batch_unsupported(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::EINVAL) | Some(libc::EOPNOTSUPP) | Some(524))
}

/// Entries one BPF_MAP_LOOKUP_BATCH call asks for at first.
const BATCH: usize = 4096;

/// Reads every entry of a hash or LRU hash map with BPF_MAP_LOOKUP_BATCH
/// (5.6+), `BATCH` entries a call, and hands each (key, value) to `each`.
/// Maps that have no batch lookup (LPM tries, arrays of some kernels)
/// answer EINVAL or ENOTSUPP before any entry is read: the caller walks
/// them key by key instead. `value_size` is the map's (not per-CPU).
pub fn lookup_batches(
    map: BorrowedFd<'_>,
    key_size: usize,
    value_size: usize,
    mut each: impl FnMut(&[u8], &[u8]),
) -> io::Result<()> {
    let mut room = BATCH;
    let mut keys = vec![0u8; room * key_size];
    let mut values = vec![0u8; room * value_size];
    // The position between calls is the kernel's own token: a bucket
    // index for hash maps, a whole key for maps on the generic batch code
    // (arrays, and LPM tries where the kernel has it). Room for either.
    let token = key_size.max(8);
    let mut position = vec![0u8; token];
    let mut next = vec![0u8; token];
    let mut first = true;
    loop {
        let mut attr = BatchAttr {
            in_batch: if first { 0 } else { position.as_ptr() as u64 },
            out_batch: next.as_mut_ptr() as u64,
            keys: keys.as_mut_ptr() as u64,
            values: values.as_mut_ptr() as u64,
            count: room as u32,
            map_fd: map.as_raw_fd() as u32,
            ..BatchAttr::default()
        };
        let result = call_mut(BPF_MAP_LOOKUP_BATCH, &mut attr);
        let read = (attr.count as usize).min(room);
        let last = match result {
            Ok(_) => read == 0,
            // The end: what this last call read still counts.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => true,
            // One bucket holds more entries than there is room for.
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) && read == 0 && room < (1 << 20) => {
                room *= 2;
                keys.resize(room * key_size, 0);
                values.resize(room * value_size, 0);
                continue;
            }
            Err(e) => return Err(e),
        };
        for i in 0..read {
            each(&keys[i * key_size..(i + 1) * key_size], &values[i * value_size..(i + 1) * value_size]);
        }
        if last {
            return Ok(());
        }
        position.copy_from_slice(&next);
        first = false;
    }
}

#[cfg(test)]
mod tests {
    use ram_common::maps::PROGRAMS;

    use super::*;

    #[test]
    fn every_program_has_an_attach_type() {
        // BPF_CGROUP_INET_INGRESS is 0: the table is read, not a default.
        assert_eq!(attach_type(ram_common::maps::PROG_INGRESS), Some(0));
        for program in PROGRAMS {
            assert!(attach_type(program).is_some(), "{program}");
        }
        assert_eq!(attach_type("ram_unknown"), None);
    }
}
