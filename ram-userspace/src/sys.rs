//! The few raw system calls aya does not wrap.

use std::{ffi::CString, io, os::unix::ffi::OsStrExt, path::Path};

use crate::host::{HostError, Result};

/// Before 5.11 BPF maps are charged to RLIMIT_MEMLOCK; lift it so large
/// maps load there too. Where the hard limit cannot be raised (a container
/// without CAP_SYS_RESOURCE), the soft limit goes up to the hard one and the
/// caller is told, since kernels from 5.11 on do not need it at all.
pub fn raise_memlock() -> Result<()> {
    let unlimited = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
    // SAFETY: valid pointer to an initialised rlimit.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) } == 0 {
        return Ok(());
    }
    let cause = io::Error::last_os_error();
    let mut current = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: valid out-pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut current) } == 0 {
        current.rlim_cur = current.rlim_max;
        // SAFETY: valid pointer to an initialised rlimit.
        unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &current) };
    }
    Err(HostError::Sys { what: "setrlimit(RLIMIT_MEMLOCK, unlimited)".into(), cause })
}

/// The bpf(2) system call; returns what the kernel returned (an fd, 0, or
/// -1 with errno set).
///
/// # Safety
/// `attr` must point to a live, zero-padded attribute struct of `size`
/// bytes for `cmd`, and every pointer inside it must be valid for what the
/// kernel reads or writes through it during the call.
pub(crate) unsafe fn bpf(cmd: libc::c_long, attr: *const libc::c_void, size: usize) -> libc::c_long {
    // SAFETY: upheld by the caller.
    unsafe { libc::syscall(libc::SYS_bpf, cmd, attr, size) }
}

/// Wall-clock milliseconds since the Unix epoch (0 before it), as the
/// journals record times.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// CLOCK_MONOTONIC in nanoseconds: the clock of bpf_ktime_get_ns().
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid pointer; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

pub(crate) fn c_path(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| HostError::io(path, io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte")))
}

pub fn is_bpffs(path: &Path) -> Result<bool> {
    let c = c_path(path)?;
    // SAFETY: zeroed statfs is a valid out-parameter.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid C string and out-pointer.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return Err(HostError::io(path, io::Error::last_os_error()));
    }
    // bpffs's magic number, compared in 32 bits: f_type is signed on some
    // targets.
    #[allow(clippy::useless_conversion, reason = "both are i64 on x86_64, 32-bit types elsewhere")]
    let (kind, magic) = (i64::from(st.f_type), i64::from(libc::BPF_FS_MAGIC));
    Ok((kind ^ magic) & 0xffff_ffff == 0)
}

/// Makes sure `mount_point` is a bpffs, mounting one if it is not.
pub fn ensure_bpffs(mount_point: &Path) -> Result<()> {
    std::fs::create_dir_all(mount_point).map_err(|e| HostError::io(mount_point, e))?;
    if is_bpffs(mount_point)? {
        return Ok(());
    }
    let target = c_path(mount_point)?;
    let fstype = CString::new("bpf").unwrap_or_default();
    // SAFETY: valid C strings; no mount data.
    let rc = unsafe { libc::mount(fstype.as_ptr(), target.as_ptr(), fstype.as_ptr(), 0, std::ptr::null()) };
    if rc != 0 {
        return Err(HostError::Sys {
            what: format!("mount -t bpf bpf {}", mount_point.display()),
            cause: io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// Creates `dir` (and parents) readable by root only.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| HostError::io(dir, e))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| HostError::io(dir, e))
}

/// True when a process with this pid exists.
pub fn pid_alive(pid: u32) -> bool {
    pid != 0 && Path::new(&format!("/proc/{pid}")).exists()
}

/// Tells systemd (Type=notify units) that ramd is ready: enforcement is in
/// place. Does nothing outside systemd.
pub fn notify_ready() -> Result<()> {
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else { return Ok(()) };
    let path = std::path::PathBuf::from(&socket);
    let sock = std::os::unix::net::UnixDatagram::unbound().map_err(|e| HostError::io(&path, e))?;
    // An abstract socket is written with a leading '@'.
    let sent = match socket.as_bytes().strip_prefix(b"@") {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name).map_err(|e| HostError::io(&path, e))?;
            sock.send_to_addr(b"READY=1", &addr)
        }
        None => sock.send_to(b"READY=1", &path),
    };
    sent.map(|_| ()).map_err(|e| HostError::io(&path, e))
}
