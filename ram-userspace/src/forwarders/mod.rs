//! A runtime's own forwarders. docker-proxy serves a published port on
//! localhost (and, with iptables off, on every address) by connecting, from
//! the runtime's cgroup and network namespace, to the container's address
//! and port. The policy does not name container addresses, and allowing
//! them to the whole cgroup would let the runtime pull from a registry run
//! in one of its containers; so ramd finds each docker-proxy process in a
//! target's cgroups, checks that it is Docker's (see [`is_docker_proxy`]),
//! and lets that process alone (by its tgid, `RAM_FORWARDS`; the kernel
//! also requires uid 0) connect to the one destination its command line
//! names.
//!
//! Why that is safe: what docker-proxy reaches is reachable only through
//! its listener, and a connect to that listener from an enforced process
//! is judged by the policy like any other.
//!
//! podman's aardvark-dns (netavark networks) is the other forwarder: it
//! answers containers' DNS queries from the host's namespace, on port 53 of
//! each network's gateway address, so its replies leave the runtime's
//! cgroup for container addresses. It connects nowhere besides the
//! resolvers (judged like any process's); ramd lets its UDP sends from the
//! port it serves on pass ([`ForwardDest::family`] 0: no connect matches).
//!
//! A rootless runtime's network helper (slirp4netns, or pasta: rootless
//! podman, rootless Docker) gives its containers the network from the
//! runtime's namespace: every connection a container makes is a socket of
//! the helper, in the runtime's cgroup. The runtime's own traffic (a pull)
//! never goes through it (rootless podman; not rootless Docker, whose
//! daemon sits behind the helper). Where a target says `rootless_helpers =
//! "pass"` (not the default), ramd registers such a helper as a relay
//! ([`FORWARD_RELAY`]): its sockets pass as its containers' would. What it
//! checks, when it first sees the helper and again on every scan, is in
//! [`relay`]. Why that is safe: the helper carries only what comes in on the
//! tap device it made in a namespace of its own, and making one needs
//! CAP_SYS_ADMIN over that namespace (a user namespace of one's own: a
//! process there is a container, which passes anyway), never over the
//! runtime's. What no check here can close: the helper's own user can
//! write into it (ptrace, /proc/PID/mem), or replace it (exec, or take its
//! pid after it exits) between two scans; hence the opt-in, for targets
//! whose user may run containers anyway.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use ram_common::maps::{ForwardDest, ForwardKey, FORWARD_RELAY};

mod relay;

/// The executable name of Docker's userland proxy.
pub const DOCKER_PROXY: &str = "docker-proxy";
/// The executable name of podman's DNS server for netavark networks.
pub const AARDVARK_DNS: &str = "aardvark-dns";

const IPPROTO_TCP: u32 = 6;
const IPPROTO_UDP: u32 = 17;

/// The destination in docker-proxy's arguments (`-proto tcp -container-ip
/// 172.17.0.2 -container-port 80 ...`; flags also as `--flag` or
/// `-flag=value`); None when they name none, or an unknown protocol.
pub fn parse_arguments<S: AsRef<str>>(args: &[S]) -> Option<ForwardDest> {
    let mut values: BTreeMap<&str, &str> = BTreeMap::new();
    let mut iter = args.iter().map(|a| a.as_ref());
    while let Some(arg) = iter.next() {
        let Some(flag) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else { continue };
        match flag.split_once('=') {
            Some((name, value)) => {
                values.insert(name, value);
            }
            None => {
                if let Some(value) = iter.next() {
                    values.insert(flag, value);
                }
            }
        }
    }
    let protocol = match values.get("proto").copied().unwrap_or("tcp") {
        "tcp" | "tcp4" | "tcp6" => IPPROTO_TCP,
        "udp" | "udp4" | "udp6" => IPPROTO_UDP,
        _ => return None,
    };
    let addr: IpAddr = values.get("container-ip")?.parse().ok()?;
    let port: u16 = values.get("container-port")?.parse().ok()?;
    let (family, bytes) = match addr {
        IpAddr::V4(a) => {
            let mut bytes = [0u8; 16];
            bytes[..4].copy_from_slice(&a.octets());
            (4, bytes)
        }
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => {
                let mut bytes = [0u8; 16];
                bytes[..4].copy_from_slice(&v4.octets());
                (4, bytes)
            }
            None => (6, a.octets()),
        },
    };
    let host_port = values.get("host-port").and_then(|p| p.parse::<u16>().ok()).unwrap_or(0);
    Some(ForwardDest { addr: bytes, family, port: port as u32, protocol, host_port: host_port as u32, uid: 0 })
}

/// aardvark-dns's own default port, when its command line names none
/// (netavark always names one).
const AARDVARK_DEFAULT_PORT: u16 = 5533;

/// The replies aardvark-dns may send (`aardvark-dns --config DIR -p 53
/// run`; `--port`, `-p=53`, `-p53` too): UDP from the port it serves on,
/// and no destination to connect to.
pub fn parse_aardvark_arguments<S: AsRef<str>>(args: &[S]) -> Option<ForwardDest> {
    let mut port: u16 = AARDVARK_DEFAULT_PORT;
    let mut iter = args.iter().map(|a| a.as_ref());
    while let Some(arg) = iter.next() {
        let value = match arg {
            "-p" | "--port" => iter.next(),
            _ => arg
                .strip_prefix("--port=")
                .or_else(|| arg.strip_prefix("-p=").or_else(|| arg.strip_prefix("-p").filter(|v| !v.is_empty()))),
        };
        if let Some(value) = value {
            port = value.parse().ok()?;
        }
    }
    if port == 0 {
        return None;
    }
    Some(ForwardDest { addr: [0; 16], family: 0, port: 0, protocol: IPPROTO_UDP, host_port: port as u32, uid: 0 })
}

/// "172.17.0.2 port 80 (tcp)", or "its clients, from udp port 53" for a
/// forwarder that only answers.
pub fn describe(dest: &ForwardDest) -> String {
    if dest.family == FORWARD_RELAY {
        return format!("carry its containers' traffic (as uid {})", dest.uid);
    }
    if dest.family == 0 {
        return format!("its clients, from udp port {}", dest.host_port);
    }
    let addr: IpAddr = if dest.family == 4 {
        IpAddr::from([dest.addr[0], dest.addr[1], dest.addr[2], dest.addr[3]])
    } else {
        IpAddr::from(dest.addr)
    };
    let protocol = if dest.protocol == IPPROTO_UDP { "udp" } else { "tcp" };
    format!("{addr} port {} ({protocol})", dest.port)
}

/// Where Docker installs dockerd and its userland proxy (dockerd looks the
/// proxy up in its PATH; Debian and Docker's packages put both in one of
/// these).
const DOCKER_DIRS: [&str; 5] = ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin", "/usr/libexec/docker"];

/// [`installed_files_in`] Docker's directories.
pub(crate) fn installed_files(name: &str) -> BTreeSet<(u64, u64)> {
    installed_files_in(&DOCKER_DIRS, name)
}

/// The (device, inode) of every root-owned, not group- or world-writable
/// executable named `name` in `dirs`, as ramd's own mount namespace sees
/// them: a process runs the host's program only if its /proc/PID/exe is
/// one of these.
fn installed_files_in(dirs: &[&str], name: &str) -> BTreeSet<(u64, u64)> {
    dirs.iter()
        .filter_map(|dir| std::fs::metadata(Path::new(dir).join(name)).ok())
        .filter(|m| m.is_file() && only_root_writes(m))
        .map(|m| (m.dev(), m.ino()))
        .collect()
}

/// Root-owned and not group- or world-writable: a file only root can
/// have written, the test for a host's program or library.
fn only_root_writes(m: &std::fs::Metadata) -> bool {
    m.uid() == 0 && m.mode() & 0o022 == 0
}

/// Where Debian, Fedora and a source install put podman's helpers.
const PODMAN_HELPER_DIRS: [&str; 4] =
    ["/usr/lib/podman", "/usr/libexec/podman", "/usr/local/lib/podman", "/usr/local/libexec/podman"];

/// What one look at a process found: a forwarder, none (remembered until
/// the process execs or its pid is reused), or nothing yet (looked at
/// again on the next scan).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Look {
    Found(ForwardDest),
    /// A rootless helper, and what ramd saw of it (looked at again on
    /// every scan).
    Relay(ForwardDest, relay::RelayPrint),
    NotOne,
    /// Caught in the middle of exec: the command name is the new program's
    /// before its arguments are in place (an empty /proc/PID/cmdline) and
    /// before the dynamic loader has mapped its libraries. Remembering
    /// "no forwarder" then left a docker-proxy unregistered for good.
    NotYet,
}

/// A forwarder's arguments, once exec has put them in place.
fn settled_arguments(pid: u32) -> Option<Vec<String>> {
    arguments(pid).filter(|args| !args.is_empty())
}

/// [`Look`] at a process of a forwarder's name whose identity checks
/// `qualifies` and whose arguments `parse` reads.
fn look_at_forwarder(
    pid: u32,
    qualifies: impl FnOnce() -> bool,
    parse: impl FnOnce(&[String]) -> Option<ForwardDest>,
) -> Look {
    if !qualifies() {
        return Look::NotOne;
    }
    match settled_arguments(pid) {
        None => Look::NotYet,
        Some(args) => parse(&args).map_or(Look::NotOne, Look::Found),
    }
}

/// What /proc/PID/stat says of a process: its start time and command name
/// (what changes when the pid is reused or the process execs), and its
/// parent.
struct Stat {
    identity: (u64, String),
    ppid: u32,
}

fn stat(pid: u32) -> Option<Stat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, rest) = stat.rsplit_once(')')?;
    let comm = head.split_once('(')?.1.to_string();
    // Fields after the command name start at field 3: the parent is field
    // 4, the start time field 22.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ppid = fields.get(1)?.parse().ok()?;
    let start = fields.get(19)?.parse().ok()?;
    Some(Stat { identity: (start, comm), ppid })
}

/// Real, effective, saved and filesystem uid all 0 (of the initial user
/// namespace: /proc shows ids as ramd's namespace sees them).
pub(crate) fn runs_as_root(pid: u32) -> bool {
    relay::status(pid).is_some_and(|status| relay::single_uid(&status) == Some(0))
}

/// Is `pid` Docker's docker-proxy, started by dockerd? It must run, as
/// root, a docker-proxy executable of the host (the same file, not one of
/// that name: a user or container can name any file so), and its parent
/// must be a root process named dockerd. (Root can pose as both, but root
/// can also leave the cgroup: the checks keep out everyone else.)
fn is_docker_proxy(pid: u32, ppid: u32, proxies: &BTreeSet<(u64, u64)>) -> bool {
    if !runs_installed_as_root(pid, proxies) {
        return false;
    }
    // After a package upgrade replaced dockerd's file, the link reads
    // ".../dockerd (deleted)" until dockerd restarts.
    let parent_exe = std::fs::read_link(format!("/proc/{ppid}/exe")).ok();
    let parent_name = parent_exe.as_deref().and_then(|p| p.file_name()).and_then(|n| n.to_str());
    parent_name.map(|n| n.trim_end_matches(" (deleted)")) == Some("dockerd") && runs_as_root(ppid)
}

/// Does `pid` run, as root, one of `files` (the host's own executable),
/// with the host's root directory? A container's root (uid 0 without a
/// writable cgroupfs, so it cannot leave the cgroup) can reach the host's
/// file through /proc/PID/root of any process it may read, and run it with
/// its own /etc/ld.so.preload: its root is the container's filesystem.
fn runs_installed_as_root(pid: u32, files: &BTreeSet<(u64, u64)>) -> bool {
    std::fs::metadata(format!("/proc/{pid}/exe")).is_ok_and(|m| files.contains(&(m.dev(), m.ino())))
        && runs_as_root(pid)
        && has_hosts_root(pid)
}

/// Is the process's root directory ramd's own (the same directory, in
/// whatever mount namespace: a private copy of the host's mounts has it)?
fn has_hosts_root(pid: u32) -> bool {
    let identity = |path: &str| std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()));
    let own = identity("/");
    own.is_some() && identity(&format!("/proc/{pid}/root")) == own
}

fn arguments(pid: u32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(raw.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect())
}

/// Every process in `cgroup` and below.
fn pids_below(cgroup: &Path, out: &mut BTreeSet<u32>) {
    if let Ok(text) = std::fs::read_to_string(cgroup.join("cgroup.procs")) {
        out.extend(text.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
    }
    let Ok(entries) = std::fs::read_dir(cgroup) else { return };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            pids_below(&entry.path(), out);
        }
    }
}

/// Finds forwarders and remembers what it found, so that each scan reads
/// more of `/proc` only for processes that are new, or that exec'd or were
/// replaced (start time or command name changed) since it last looked.
#[derive(Default)]
pub struct ForwarderScan {
    /// pid → what ramd found when it looked.
    seen: BTreeMap<u32, Seen>,
}

/// A process ramd has looked at: its (start time, command name) then, and
/// its destination, or None for a process that is no forwarder; for a
/// rootless helper, what it was when let through.
struct Seen {
    identity: (u64, String),
    dest: Option<ForwardDest>,
    relay: Option<relay::RelayPrint>,
}

impl ForwarderScan {
    /// The forwarders in each scope's cgroups now; rootless network helpers
    /// only in the scopes that pass them (the bool).
    pub fn scan(&mut self, scopes: &[(u32, bool, Vec<PathBuf>)]) -> BTreeMap<ForwardKey, ForwardDest> {
        let mut found = BTreeMap::new();
        let mut alive = BTreeSet::new();
        let mut proxies: Option<BTreeSet<(u64, u64)>> = None;
        let mut aardvarks: Option<BTreeSet<(u64, u64)>> = None;
        let mut relays = relay::HostFiles::default();
        for (scope, pass_relays, cgroups) in scopes {
            let mut pids = BTreeSet::new();
            for cgroup in cgroups {
                pids_below(cgroup, &mut pids);
            }
            for pid in pids {
                let Some(Stat { identity: now, ppid }) = stat(pid) else { continue };
                alive.insert(pid);
                let known = self.seen.get(&pid).filter(|seen| seen.identity == now);
                let dest = match known {
                    Some(Seen { dest: Some(dest), relay: Some(print), .. }) => {
                        let dest = *dest;
                        let sound = print.still_holds(pid, dest.uid, &now.1);
                        if !sound {
                            self.seen.insert(pid, Seen { identity: now, dest: None, relay: None });
                        }
                        sound.then_some(dest)
                    }
                    Some(seen) => seen.dest,
                    None => {
                        let look = match now.1.as_str() {
                            DOCKER_PROXY => {
                                let proxies = proxies.get_or_insert_with(|| installed_files(DOCKER_PROXY));
                                look_at_forwarder(pid, || is_docker_proxy(pid, ppid, proxies), parse_arguments)
                            }
                            // It daemonizes, so its parent says nothing: the
                            // file and root are the checks (root can leave
                            // the cgroup anyway).
                            AARDVARK_DNS => {
                                let files = aardvarks
                                    .get_or_insert_with(|| installed_files_in(&PODMAN_HELPER_DIRS, AARDVARK_DNS));
                                look_at_forwarder(pid, || runs_installed_as_root(pid, files), parse_aardvark_arguments)
                            }
                            name => match relay::kind_of(name) {
                                Some(kind) => relay::look(pid, name, relays.files(kind)),
                                None => Look::NotOne,
                            },
                        };
                        let (dest, relay) = match look {
                            Look::Found(dest) => (Some(dest), None),
                            Look::Relay(dest, print) => (Some(dest), Some(print)),
                            Look::NotOne => (None, None),
                            Look::NotYet => continue,
                        };
                        self.seen.insert(pid, Seen { identity: now, dest, relay });
                        dest
                    }
                };
                match dest {
                    Some(dest) if dest.family == FORWARD_RELAY && !pass_relays => {}
                    Some(dest) => {
                        found.insert(ForwardKey { tgid: pid, scope: *scope }, dest);
                    }
                    None => {}
                }
            }
        }
        self.seen.retain(|pid, _| alive.contains(pid));
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_proxy_arguments_name_the_container_destination() {
        let args = [
            "/usr/sbin/docker-proxy",
            "-proto",
            "tcp",
            "-host-ip",
            "0.0.0.0",
            "-host-port",
            "8080",
            "-container-ip",
            "172.17.0.2",
            "-container-port",
            "80",
        ];
        let dest = parse_arguments(&args).expect("parsed");
        assert_eq!((dest.family, dest.port, dest.protocol, dest.host_port), (4, 80, IPPROTO_TCP, 8080));
        assert_eq!(&dest.addr[..4], &[172, 17, 0, 2]);
        assert!(dest.addr[4..].iter().all(|b| *b == 0));

        let udp6 = parse_arguments(&["docker-proxy", "--proto=udp", "--container-ip=fd00::2", "--container-port=53"])
            .expect("parsed");
        assert_eq!((udp6.family, udp6.port, udp6.protocol), (6, 53, IPPROTO_UDP));

        assert_eq!(
            parse_arguments(&[
                "docker-proxy",
                "-proto",
                "sctp",
                "-container-ip",
                "172.17.0.2",
                "-container-port",
                "80"
            ]),
            None
        );
        assert_eq!(parse_arguments(&["docker-proxy", "-container-ip", "172.17.0.2"]), None);
        assert_eq!(parse_arguments(&["docker-proxy", "-container-ip", "nonsense", "-container-port", "80"]), None);
        assert_eq!(parse_arguments(&["docker-proxy", "-container-ip", "172.17.0.2", "-container-port", "70000"]), None);
    }

    #[test]
    fn aardvark_dns_may_answer_from_the_port_it_serves_on_and_connect_nowhere() {
        let dest = parse_aardvark_arguments(&[
            "/usr/lib/podman/aardvark-dns",
            "--config",
            "/run/containers/networks/aardvark-dns",
            "-p",
            "53",
            "run",
        ])
        .expect("parsed");
        assert_eq!((dest.family, dest.port, dest.protocol, dest.host_port), (0, 0, IPPROTO_UDP, 53));
        assert_eq!(dest.addr, [0; 16]);
        assert_eq!(describe(&dest), "its clients, from udp port 53");
        assert_eq!(parse_aardvark_arguments(&["aardvark-dns", "--port=5353", "run"]).map(|d| d.host_port), Some(5353));
        assert_eq!(parse_aardvark_arguments(&["aardvark-dns", "-p5353", "run"]).map(|d| d.host_port), Some(5353));
        assert_eq!(parse_aardvark_arguments(&["aardvark-dns", "run"]).map(|d| d.host_port), Some(5533));
        assert_eq!(parse_aardvark_arguments(&["aardvark-dns", "-p", "0", "run"]), None);
        assert_eq!(parse_aardvark_arguments(&["aardvark-dns", "-p", "dns", "run"]), None);
    }

    #[test]
    fn a_process_caught_before_its_arguments_are_in_place_is_looked_at_again() {
        // A zombie's /proc/PID/cmdline is empty, as a process's is in the
        // middle of exec once its command name is the new program's.
        let mut child = std::process::Command::new("true").spawn().expect("spawn true");
        let pid = child.id();
        let exited = (0..500).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(10));
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
        });
        assert!(exited, "the child did not become a zombie");
        let parse = |_: &[String]| Some(relay::relay(1));
        assert_eq!(look_at_forwarder(pid, || true, parse), Look::NotYet);
        assert_eq!(look_at_forwarder(pid, || false, parse), Look::NotOne);
        child.wait().expect("reap");
        let own = std::process::id();
        assert_eq!(look_at_forwarder(own, || true, parse), Look::Found(relay::relay(1)));
        assert_eq!(look_at_forwarder(own, || true, |_: &[String]| None), Look::NotOne);
    }
}
