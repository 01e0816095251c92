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
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_MAP_CREATE: libc::c_long = 0;
pub(crate) const BPF_PROG_TYPE_CGROUP_SKB: u32 = 8;
pub(crate) const BPF_PROG_TYPE_CGROUP_SOCK_ADDR: u32 = 18;
const BPF_CGROUP_INET4_CONNECT: u32 = 10;
const BPF_MAP_TYPE_RINGBUF: u32 = 27;
const HELPER_GET_CURRENT_PID_TGID: i32 = 14;
const HELPER_GET_CURRENT_COMM: i32 = 16;

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
struct Insn {
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
}

#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
}

pub(crate) const BPF_LOG_STATS: u32 = 4;

/// BPF_PROG_LOAD of raw instructions (8 bytes each); returns the fd or the
/// errno. `log`, when given, receives the verifier's log at `log_level`.
pub(crate) fn prog_load(
    prog_type: u32,
    attach_type: u32,
    insns: *const u8,
    insn_count: usize,
    log: Option<(&mut [u8], u32)>,
) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let license = c"Dual MIT/GPL";
    let (log_buf, log_size, log_level) = match log {
        Some((buf, level)) => (buf.as_mut_ptr() as u64, buf.len() as u32, level),
        None => (0, 0, 0),
    };
    let attr = ProgLoadAttr {
        prog_type,
        insn_cnt: insn_count as u32,
        insns: insns as u64,
        license: license.as_ptr() as u64,
        log_level,
        log_size,
        log_buf,
        expected_attach_type: attach_type,
        ..ProgLoadAttr::default()
    };
    let fd = bpf(BPF_PROG_LOAD, &attr as *const _ as *const _, std::mem::size_of::<ProgLoadAttr>());
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

fn bpf(cmd: libc::c_long, attr: *const libc::c_void, size: usize) -> libc::c_long {
    // SAFETY: `attr` points at a live, zero-padded attribute struct of `size` bytes.
    unsafe { libc::syscall(libc::SYS_bpf, cmd, attr, size) }
}

const fn insn(code: u8, dst: u8, src: u8, imm: i32) -> Insn {
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
    prog_load(prog_type, attach_type, insns.as_ptr() as *const u8, insns.len(), None).is_ok()
}

fn ring_buffer_maps() -> bool {
    let attr = MapCreateAttr { map_type: BPF_MAP_TYPE_RINGBUF, max_entries: 4096, ..MapCreateAttr::default() };
    let fd = bpf(BPF_MAP_CREATE, &attr as *const _ as *const _, std::mem::size_of::<MapCreateAttr>());
    if fd >= 0 {
        // SAFETY: as above.
        unsafe { libc::close(fd as i32) };
    }
    fd >= 0
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
            release,
        }
    }

    /// One line for logs.
    pub fn summary(&self) -> String {
        let yes_no = |b: bool| if b { "yes" } else { "no" };
        format!(
            "kernel {}: ring buffer {}, cgroup links {}, memlock accounting {}, process info in sock_addr {} / cgroup_skb {}",
            self.release,
            yes_no(self.ring_buffer),
            yes_no(self.cgroup_links),
            yes_no(self.memlock_accounting),
            yes_no(self.sock_addr_task_info),
            yes_no(self.skb_task_info)
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
