//! What this kernel offers, probed once at start so ramd can choose a path
//! and say which one it uses (`ramctl status`).
//!
//! Helpers are probed by loading a three-instruction program that calls
//! them: the verifier refuses unknown helpers at load time, so a successful
//! load is the answer, whatever the kernel version says.

use serde::{Deserialize, Serialize};

/// The kernel facts ramd acts on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelFeatures {
    pub release: String,
    /// bpf_get_current_pid_tgid/comm in cgroup_skb programs: egress events
    /// name the process (otherwise pid 0, no comm).
    pub skb_task_info: bool,
    /// The same in sock_addr programs (connect/sendmsg events).
    pub sock_addr_task_info: bool,
    /// cgroup bpf_link (5.7+): links are pinned and survive ramd; before it
    /// aya falls back to BPF_PROG_ATTACH with BPF_F_ALLOW_MULTI.
    pub cgroup_links: bool,
    /// Maps charged to RLIMIT_MEMLOCK (before 5.11): ramd lifts the limit.
    pub memlock_accounting: bool,
    /// BPF_MAP_TYPE_RINGBUF (5.8+).
    pub ring_buffer: bool,
    /// bpf_prog_info.verified_insns (5.16+) for the verifier figures.
    pub verified_insns: bool,
    /// BPF global functions (5.6+; BTF FUNC with global linkage), which
    /// the DNS answer parser needs: each is verified once, on its own.
    #[serde(default)]
    pub global_functions: bool,
    /// bpf_get_netns_cookie in connect/sendmsg programs (5.7+), which the
    /// trusted-namespace check needs.
    #[serde(default)]
    pub netns_cookies: bool,
    /// How events reach ramd, chosen from the above.
    pub events: EventsPath,
    /// How programs are attached to cgroups, chosen from the above.
    pub attach: AttachPath,
}

/// The event transport: a ring buffer where the kernel has one (5.8+),
/// otherwise the object built with a perf event array.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventsPath {
    #[default]
    RingBuffer,
    PerfEventArray,
}

/// How programs are attached. A pinned bpf_link (5.7+) is detached by
/// removing its pin. Before 5.7, BPF_PROG_ATTACH with BPF_F_ALLOW_MULTI:
/// the attachment lasts until BPF_PROG_DETACH, and ramd pins the program
/// itself so it can find and detach it later.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttachPath {
    #[default]
    Link,
    ProgAttach,
}

/// Environment overrides that force the fallback paths on a kernel that
/// does not need them, so they can be tested (and, should a kernel's link
/// or ring-buffer support misbehave, avoided): `perf` or `ring`;
/// `prog-attach` or `link`.
pub const EVENTS_PATH_ENV: &str = "RAM_EVENTS_PATH";
pub const ATTACH_PATH_ENV: &str = "RAM_ATTACH_PATH";

/// Why an override cannot be honoured.
#[derive(Debug, thiserror::Error)]
pub enum PathChoiceError {
    #[error("{var}={value}: expected one of {expected}")]
    Unknown { var: &'static str, value: String, expected: &'static str },
    #[error("{var}={value}: this kernel ({release}) lacks {missing}")]
    Unsupported { var: &'static str, value: String, release: String, missing: &'static str },
}

const BPF_PROG_LOAD: libc::c_long = aya_obj::generated::bpf_cmd::BPF_PROG_LOAD as libc::c_long;
const BPF_MAP_CREATE: libc::c_long = aya_obj::generated::bpf_cmd::BPF_MAP_CREATE as libc::c_long;
pub(crate) const BPF_PROG_TYPE_CGROUP_SKB: u32 = aya_obj::generated::bpf_prog_type::BPF_PROG_TYPE_CGROUP_SKB as u32;
pub const BPF_PROG_TYPE_CGROUP_SOCK_ADDR: u32 =
    aya_obj::generated::bpf_prog_type::BPF_PROG_TYPE_CGROUP_SOCK_ADDR as u32;
pub(crate) const BPF_CGROUP_INET4_CONNECT: u32 = aya_obj::generated::bpf_attach_type::BPF_CGROUP_INET4_CONNECT as u32;
const BPF_MAP_TYPE_ARRAY: u32 = aya_obj::generated::bpf_map_type::BPF_MAP_TYPE_ARRAY as u32;
const BPF_MAP_TYPE_RINGBUF: u32 = aya_obj::generated::bpf_map_type::BPF_MAP_TYPE_RINGBUF as u32;
pub(crate) const HELPER_MAP_UPDATE_ELEM: i32 = 2;
const HELPER_GET_CURRENT_PID_TGID: i32 = 14;
const HELPER_GET_CURRENT_COMM: i32 = 16;
pub(crate) const HELPER_GET_NETNS_COOKIE: i32 = 122;

/// One BPF instruction, as BPF_PROG_LOAD takes it.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

/// The head of `union bpf_attr` for BPF_PROG_LOAD, up to expected_attach_type.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
    prog_btf_fd: u32,
    func_info_rec_size: u32,
    func_info: u64,
    func_info_cnt: u32,
    line_info_rec_size: u32,
    line_info: u64,
    line_info_cnt: u32,
    attach_btf_id: u32,
}

#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
}

/// The verifier log level that asks for statistics only (uapi BPF_LOG_STATS;
/// aya's generated bindings do not carry it).
pub(crate) const BPF_LOG_STATS: u32 = 4;

/// BPF_PROG_LOAD of raw instructions (any 8-byte instruction type); returns
/// the fd or the errno. `log`, when given, receives the verifier's log at
/// `log_level`.
pub fn prog_load<I: Copy>(
    prog_type: u32,
    attach_type: u32,
    insns: &[I],
    log: Option<(&mut [u8], u32)>,
) -> std::io::Result<std::os::fd::OwnedFd> {
    prog_load_with_btf(prog_type, attach_type, insns, log, None)
}

/// The BTF a program is loaded with: the object's BTF loaded in the kernel,
/// and the program's function records (8 bytes each: instruction offset,
/// BTF type id). With them the verifier knows the program's global
/// functions and checks each once, as it does for the real load.
pub struct ProgBtf<'a> {
    pub btf: std::os::fd::BorrowedFd<'a>,
    pub func_info: &'a [u8],
    pub func_info_rec_size: u32,
}

/// [`prog_load`] with the program's BTF function records.
pub fn prog_load_with_btf<I: Copy>(
    prog_type: u32,
    attach_type: u32,
    insns: &[I],
    log: Option<(&mut [u8], u32)>,
    btf: Option<ProgBtf>,
) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd, FromRawFd};
    if std::mem::size_of::<I>() != 8 {
        return Err(std::io::Error::from(std::io::ErrorKind::InvalidInput));
    }
    let license = c"Dual MIT/GPL";
    let (log_buf, log_size, log_level) = match log {
        Some((buf, level)) => (buf.as_mut_ptr() as u64, buf.len() as u32, level),
        None => (0, 0, 0),
    };
    let attr = ProgLoadAttr {
        prog_type,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level,
        log_size,
        log_buf,
        expected_attach_type: attach_type,
        prog_btf_fd: btf.as_ref().map_or(0, |b| b.btf.as_raw_fd() as u32),
        func_info_rec_size: btf.as_ref().map_or(0, |b| b.func_info_rec_size),
        func_info: btf.as_ref().map_or(0, |b| b.func_info.as_ptr() as u64),
        func_info_cnt: btf.as_ref().map_or(0, |b| (b.func_info.len() / b.func_info_rec_size.max(1) as usize) as u32),
        ..ProgLoadAttr::default()
    };
    // SAFETY: a live ProgLoadAttr; its pointers (instructions, license, log,
    // function records) borrow from this call's arguments, which outlive it.
    let fd = unsafe { bpf(BPF_PROG_LOAD, &attr as *const _ as *const _, std::mem::size_of::<ProgLoadAttr>()) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

use crate::sys::bpf;

/// An instruction with an offset (loads, stores, jumps).
pub(crate) const fn insn_off(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn { code, regs: (src << 4) | dst, off, imm }
}

pub(crate) const fn insn(code: u8, dst: u8, src: u8, imm: i32) -> Insn {
    Insn { code, regs: (src << 4) | dst, off: 0, imm }
}

/// Calls bpf_get_current_pid_tgid(), then bpf_get_current_comm(fp - 16, 16):
/// what the programs do to name the process behind an event.
const TASK_INFO_CALLS: [Insn; 5] = [
    insn(0x85, 0, 0, HELPER_GET_CURRENT_PID_TGID), // call get_current_pid_tgid
    insn(0xbf, 1, 10, 0),                          // r1 = r10 (frame pointer)
    insn(0x07, 1, 0, -16),                         // r1 += -16
    insn(0xb7, 2, 0, 16),                          // r2 = 16
    insn(0x85, 0, 0, HELPER_GET_CURRENT_COMM),     // call get_current_comm
];

/// Does a program of this type made of `body` (then `return 1`) load?
fn program_loads(prog_type: u32, attach_type: u32, body: &[Insn]) -> bool {
    let mut insns = body.to_vec();
    insns.push(insn(0xb7, 0, 0, 1)); // r0 = 1
    insns.push(insn(0x95, 0, 0, 0)); // exit
    prog_load(prog_type, attach_type, &insns, None).is_ok()
}

/// BPF_MAP_CREATE of an array map with `entries` values of `value_size`
/// bytes (keys are u32: `key_size` must be 4).
pub(crate) fn array_map(key_size: u32, value_size: u32, entries: u32) -> std::io::Result<std::os::fd::OwnedFd> {
    map_create(&MapCreateAttr { map_type: BPF_MAP_TYPE_ARRAY, key_size, value_size, max_entries: entries })
}

fn map_create(attr: &MapCreateAttr) -> std::io::Result<std::os::fd::OwnedFd> {
    // SAFETY: a live MapCreateAttr holding numbers only.
    let fd = unsafe { bpf(BPF_MAP_CREATE, attr as *const _ as *const _, std::mem::size_of::<MapCreateAttr>()) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd as i32) })
}

fn ring_buffer_maps() -> bool {
    map_create(&MapCreateAttr { map_type: BPF_MAP_TYPE_RINGBUF, max_entries: 4096, ..MapCreateAttr::default() }).is_ok()
}

/// "5.10.0-46-cloud-amd64" → (5, 10).
pub fn parse_release(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

impl KernelFeatures {
    pub fn probe() -> Self {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string();
        let version = parse_release(&release).unwrap_or((0, 0));
        KernelFeatures {
            skb_task_info: program_loads(BPF_PROG_TYPE_CGROUP_SKB, 0, &TASK_INFO_CALLS),
            sock_addr_task_info: program_loads(
                BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
                BPF_CGROUP_INET4_CONNECT,
                &TASK_INFO_CALLS,
            ),
            cgroup_links: version >= (5, 7),
            memlock_accounting: version < (5, 11),
            ring_buffer: ring_buffer_maps(),
            verified_insns: version >= (5, 16),
            global_functions: aya::features().btf().is_some_and(|btf| btf.btf_func_global()),
            netns_cookies: program_loads(
                BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
                BPF_CGROUP_INET4_CONNECT,
                &[insn(0x85, 0, 0, HELPER_GET_NETNS_COOKIE)],
            ),
            events: EventsPath::RingBuffer,
            attach: AttachPath::Link,
            release,
        }
        .with_default_paths()
    }

    fn with_default_paths(mut self) -> Self {
        self.events = if self.ring_buffer { EventsPath::RingBuffer } else { EventsPath::PerfEventArray };
        self.attach = if self.cgroup_links { AttachPath::Link } else { AttachPath::ProgAttach };
        self
    }

    /// Applies the overrides of [`EVENTS_PATH_ENV`] and [`ATTACH_PATH_ENV`]
    /// (`lookup` reads the environment); a path the kernel lacks is refused.
    pub fn with_overrides(
        mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> std::result::Result<Self, PathChoiceError> {
        if let Some(value) = lookup(EVENTS_PATH_ENV) {
            self.events = match value.as_str() {
                "perf" => EventsPath::PerfEventArray,
                "ring" if self.ring_buffer => EventsPath::RingBuffer,
                "ring" => {
                    return Err(PathChoiceError::Unsupported {
                        var: EVENTS_PATH_ENV,
                        value,
                        release: self.release,
                        missing: "BPF ring buffers (5.8+)",
                    })
                }
                _ => return Err(PathChoiceError::Unknown { var: EVENTS_PATH_ENV, value, expected: "perf, ring" }),
            };
        }
        if let Some(value) = lookup(ATTACH_PATH_ENV) {
            self.attach = match value.as_str() {
                "prog-attach" => AttachPath::ProgAttach,
                "link" if self.cgroup_links => AttachPath::Link,
                "link" => {
                    return Err(PathChoiceError::Unsupported {
                        var: ATTACH_PATH_ENV,
                        value,
                        release: self.release,
                        missing: "cgroup bpf_links (5.7+)",
                    })
                }
                _ => {
                    return Err(PathChoiceError::Unknown { var: ATTACH_PATH_ENV, value, expected: "prog-attach, link" })
                }
            };
        }
        Ok(self)
    }

    /// One line for logs.
    /// What this kernel lacks that ramd cannot do without, if anything.
    pub fn missing(&self) -> Option<&'static str> {
        if !self.global_functions {
            Some("BPF global functions (Linux 5.6), which the DNS answer parser needs")
        } else if !self.netns_cookies {
            Some("network namespace cookies in connect/sendmsg programs (Linux 5.7), which the DNS trust check needs")
        } else {
            None
        }
    }

    pub fn summary(&self) -> String {
        let yes_no = |b: bool| if b { "yes" } else { "no" };
        format!(
            "kernel {}: ring buffer {}, cgroup links {}, memlock accounting {}, process info in sock_addr {} / cgroup_skb {}; \
             events via {}, attached with {}",
            self.release,
            yes_no(self.ring_buffer),
            yes_no(self.cgroup_links),
            yes_no(self.memlock_accounting),
            yes_no(self.sock_addr_task_info),
            yes_no(self.skb_task_info),
            match self.events {
                EventsPath::RingBuffer => "ring buffer",
                EventsPath::PerfEventArray => "perf event array",
            },
            match self.attach {
                AttachPath::Link => "pinned bpf_links",
                AttachPath::ProgAttach => "BPF_PROG_ATTACH (multi) and pinned programs",
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_releases_parse() {
        assert_eq!(parse_release("5.10.0-46-cloud-amd64"), Some((5, 10)));
        assert_eq!(parse_release("6.18.44-fc-v657"), Some((6, 18)));
        assert_eq!(parse_release("6.12.95+deb12-cloud-amd64"), Some((6, 12)));
        assert_eq!(parse_release(""), None);
    }

    fn old_kernel() -> KernelFeatures {
        KernelFeatures { release: "5.4.0-100-generic".into(), ..KernelFeatures::default() }.with_default_paths()
    }

    fn new_kernel() -> KernelFeatures {
        KernelFeatures { release: "6.1.0".into(), ring_buffer: true, cgroup_links: true, ..KernelFeatures::default() }
            .with_default_paths()
    }

    #[test]
    fn paths_follow_the_kernel() {
        let old = old_kernel();
        assert_eq!((old.events, old.attach), (EventsPath::PerfEventArray, AttachPath::ProgAttach));
        let new = new_kernel();
        assert_eq!((new.events, new.attach), (EventsPath::RingBuffer, AttachPath::Link));
    }

    #[test]
    fn overrides_force_fallbacks_and_refuse_what_the_kernel_lacks() {
        let env = |events: &'static str, attach: &'static str| {
            move |var: &str| match var {
                EVENTS_PATH_ENV if !events.is_empty() => Some(events.to_string()),
                ATTACH_PATH_ENV if !attach.is_empty() => Some(attach.to_string()),
                _ => None,
            }
        };
        let forced = new_kernel().with_overrides(env("perf", "prog-attach")).unwrap();
        assert_eq!((forced.events, forced.attach), (EventsPath::PerfEventArray, AttachPath::ProgAttach));
        let err = old_kernel().with_overrides(env("ring", "")).unwrap_err().to_string();
        assert!(err.contains("RAM_EVENTS_PATH=ring") && err.contains("5.4.0-100-generic"), "{err}");
        let err = old_kernel().with_overrides(env("", "link")).unwrap_err().to_string();
        assert!(err.contains("RAM_ATTACH_PATH=link") && err.contains("5.7"), "{err}");
        let err = new_kernel().with_overrides(env("carrier-pigeon", "")).unwrap_err().to_string();
        assert!(err.contains("carrier-pigeon") && err.contains("perf, ring"), "{err}");
        assert_eq!(new_kernel().with_overrides(|_| None).unwrap(), new_kernel());
    }
}

#[cfg(test)]
mod probe_tests {
    use super::*;

    /// The probes must load where the kernel has the helpers: this machine's
    /// kernel (6.x) has them in sock_addr programs. Needs root (BPF).
    #[test]
    fn task_info_probe_loads_on_this_kernel() {
        // SAFETY: no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: loading BPF programs needs root");
            return;
        }
        let features = KernelFeatures::probe();
        assert!(features.sock_addr_task_info, "{features:?}");
        assert!(features.ring_buffer, "{features:?}");
    }
}
