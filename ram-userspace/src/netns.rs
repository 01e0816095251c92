//! The cookie of a network namespace: the number the programs'
//! bpf_get_netns_cookie() gives for a socket there, which is how they tell
//! the trusted namespace's DNS from a namespace a process made for itself.
//!
//! Kernels before 5.14 have no way to ask for it from userspace
//! (SO_NETNS_COOKIE), so ramd asks the kernel the way the programs do, on
//! every kernel alike: a two-helper connect4 program, attached to a
//! throwaway cgroup, records the cookie of the namespace a child process
//! connects a UDP socket in (no packet is sent: the program runs before
//! the route is even looked up).

use std::{
    ffi::CString,
    fs::File,
    os::{
        fd::{AsFd, AsRawFd},
        unix::process::CommandExt,
    },
    path::{Path, PathBuf},
    process::Command,
};

use crate::{
    bpf_calls,
    features::{
        self, insn, insn_off, Insn, BPF_CGROUP_INET4_CONNECT, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, HELPER_GET_NETNS_COOKIE,
        HELPER_MAP_UPDATE_ELEM,
    },
    host::{HostError, Result},
};

/// The namespace ramd itself runs in.
pub const OWN: &str = "/proc/self/ns/net";
/// The initial network namespace (init's).
const INITIAL: &str = "/proc/1/ns/net";

/// Is the namespace at `netns` the initial one? (The same namespace file:
/// device and inode.) Where init's namespace cannot be looked at (ramd in
/// a sandbox of its own), it is not known to be, and the caller asks the
/// kernel for the cookie instead.
pub fn is_initial(netns: &Path) -> Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let this = std::fs::metadata(netns).map_err(|e| HostError::io(netns, e))?;
    let Ok(initial) = std::fs::metadata(INITIAL) else {
        return Ok(false);
    };
    Ok((this.dev(), this.ino()) == (initial.dev(), initial.ino()))
}

/// The map-fd form of a 16-byte immediate load.
const BPF_PSEUDO_MAP_FD: u8 = aya_obj::generated::BPF_PSEUDO_MAP_FD as u8;
/// How long the probe process may take.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// `map[0] = bpf_get_netns_cookie(ctx); return 1;`
fn probe_program(map_fd: i32) -> Vec<Insn> {
    vec![
        insn(0x85, 0, 0, HELPER_GET_NETNS_COOKIE), // r0 = get_netns_cookie(r1 = ctx)
        insn_off(0x7b, 10, 0, -8, 0),              // *(u64 *)(fp - 8) = r0
        insn_off(0x62, 10, 0, -12, 0),             // *(u32 *)(fp - 12) = 0 (the key)
        insn(0x18, 1, BPF_PSEUDO_MAP_FD, map_fd),  // r1 = map (a 16-byte load)
        insn(0x00, 0, 0, 0),
        insn(0xbf, 2, 10, 0),  // r2 = fp
        insn(0x07, 2, 0, -12), // r2 -= 12
        insn(0xbf, 3, 10, 0),  // r3 = fp
        insn(0x07, 3, 0, -8),  // r3 -= 8
        insn(0xb7, 4, 0, 0),   // r4 = 0 (BPF_ANY)
        insn(0x85, 0, 0, HELPER_MAP_UPDATE_ELEM),
        insn(0xb7, 0, 0, 1), // r0 = 1 (allow)
        insn(0x95, 0, 0, 0), // exit
    ]
}

/// Removes the probe's cgroup however the probe ends.
struct ProbeCgroup(PathBuf);

impl Drop for ProbeCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn sys(what: &str, cause: std::io::Error) -> HostError {
    HostError::Sys { what: format!("learning a network namespace's cookie: {what}"), cause }
}

/// The cookie of the network namespace at `netns` (`/proc/self/ns/net`,
/// `/run/netns/NAME`, `/proc/PID/ns/net`). `cgroup_root` is the cgroup v2
/// mount, where the probe makes (and removes) a cgroup of its own.
pub fn cookie(netns: &Path, cgroup_root: &Path) -> Result<u64> {
    let target = File::open(netns).map_err(|e| HostError::io(netns, e))?;
    let map = features::array_map(4, 8, 1).map_err(|e| sys("BPF_MAP_CREATE", e))?;
    let program = probe_program(map.as_raw_fd());
    let program = features::prog_load(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_INET4_CONNECT, &program, None)
        .map_err(|e| sys("BPF_PROG_LOAD (bpf_get_netns_cookie needs Linux 5.7)", e))?;
    let dir = cgroup_root.join(format!("ram-netns-probe-{}", std::process::id()));
    std::fs::create_dir(&dir).map_err(|e| HostError::io(&dir, e))?;
    let cgroup = ProbeCgroup(dir);
    let cgroup_dir = File::open(&cgroup.0).map_err(|e| HostError::io(&cgroup.0, e))?;
    bpf_calls::attach(&cgroup_dir, &cgroup.0, program.as_fd(), "ram_connect4")?;
    // Everything the child uses is made before the fork: after it, only
    // plain system calls.
    let procs = CString::new(cgroup.0.join("cgroup.procs").as_os_str().as_encoded_bytes())
        .map_err(|e| sys("cgroup path", std::io::Error::other(e)))?;
    let target_fd = target.as_raw_fd();
    let loopback = libc::sockaddr_in {
        sin_family: libc::AF_INET as u16,
        sin_port: 9u16.to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes([127, 0, 0, 1]) },
        sin_zero: [0; 8],
    };
    let mut child = Command::new("/bin/true");
    // SAFETY: the closure makes only async-signal-safe system calls on
    // memory prepared before the fork.
    unsafe {
        child.pre_exec(move || {
            let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
            if fd < 0 || libc::write(fd, b"0".as_ptr() as *const _, 1) != 1 {
                return Err(std::io::Error::last_os_error());
            }
            libc::close(fd);
            if libc::setns(target_fd, libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
            if sock < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The connect4 program runs whatever the connect's outcome.
            libc::connect(sock, &loopback as *const _ as *const _, size_of_val(&loopback) as u32);
            libc::close(sock);
            Ok(())
        });
    }
    let mut child = child.spawn().map_err(|e| sys("the probe process", e))?;
    // It finishes in milliseconds; should it ever hang, ramd says so rather
    // than hang with it.
    let deadline = std::time::Instant::now() + PROBE_TIMEOUT;
    let status = loop {
        match child.try_wait().map_err(|e| sys("the probe process", e))? {
            Some(status) => break status,
            None if std::time::Instant::now() < deadline => std::thread::sleep(std::time::Duration::from_millis(10)),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(sys(
                    "the probe process",
                    std::io::Error::other(format!("still running after {PROBE_TIMEOUT:?}")),
                ));
            }
        }
    };
    if !status.success() {
        return Err(sys("the probe process", std::io::Error::other(format!("exited with {status}"))));
    }
    let mut value = [0u8; 8];
    let found = bpf_calls::lookup(map.as_fd(), &0u32.to_ne_bytes(), &mut value).map_err(|e| sys("map lookup", e))?;
    drop(cgroup);
    let cookie = u64::from_ne_bytes(value);
    if !found || cookie == 0 {
        return Err(sys("the probe", std::io::Error::other("the kernel gave no cookie")));
    }
    Ok(cookie)
}
