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
//! checks
//! ([`look_at_relay`], again on every scan): the process runs the host's own program, as a user
//! other than root (a rootless helper is never root; root can leave the
//! cgroup anyway), is not traced, was started under its helper's name (pasta and passt
//! are one file, whose mode argv[0] picks: as passt it relays frames from
//! any process that finds its UNIX socket, and is no relay), and every
//! executable file it has mapped is the
//! host's file of that path, root-owned (no preloaded library, no private
//! copy). Why that is safe: the helper carries only what comes in on the
//! tap device it made in a namespace of its own, and making one needs
//! CAP_SYS_ADMIN over that namespace (a user namespace of one's own: a
//! process there is a container, which passes anyway), never over the
//! runtime's. What no check here can close: the helper's own user can
//! write into it once registered (ptrace, /proc/PID/mem) or take its pid
//! after it exits; hence the opt-in, for targets whose user may run
//! containers anyway.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use ram_common::maps::{ForwardDest, ForwardKey, FORWARD_RELAY};

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
        .filter(|m| m.is_file() && m.uid() == 0 && m.mode() & 0o022 == 0)
        .map(|m| (m.dev(), m.ino()))
        .collect()
}

/// The host's files named any of `names` in [`RELAY_DIRS`].
fn files_of(names: &[&str]) -> BTreeSet<(u64, u64)> {
    names.iter().flat_map(|name| installed_files_in(&RELAY_DIRS, name)).collect()
}

/// Where Debian, Fedora and a source install put podman's helpers.
const PODMAN_HELPER_DIRS: [&str; 4] =
    ["/usr/lib/podman", "/usr/libexec/podman", "/usr/local/lib/podman", "/usr/local/libexec/podman"];

/// The rootless network helpers' command names, and the files each may run.
/// pasta is a link to passt, and either re-execs its AVX2 build by the
/// file's own name (comm passt.avx2); the mode is argv[0]'s.
const SLIRP4NETNS: &str = "slirp4netns";
const SLIRP4NETNS_FILES: [&str; 1] = ["slirp4netns"];
const PASST_NAMES: [&str; 4] = ["pasta", "pasta.avx2", "passt", "passt.avx2"];
const PASST_FILES: [&str; 2] = ["passt", "passt.avx2"];
/// Where distributions install them.
const RELAY_DIRS: [&str; 4] = ["/usr/bin", "/usr/local/bin", "/usr/libexec/podman", "/usr/lib/podman"];

/// A rootless network helper's row: its sockets pass while the process
/// runs as `uid`.
fn relay(uid: u32) -> ForwardDest {
    ForwardDest { family: FORWARD_RELAY, uid, ..ForwardDest::default() }
}

/// What one look at a process found: a forwarder, none (remembered until
/// the process execs or its pid is reused), or nothing yet (looked at
/// again on the next scan).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Look {
    Found(ForwardDest),
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

/// Is `pid` a rootless network helper ramd may let through (see the
/// module)? `files` are the host's files of its kind, `comm` its command
/// name; a helper is a relay for its user's uid.
fn look_at_relay(pid: u32, comm: &str, files: &BTreeSet<(u64, u64)>) -> Look {
    let runs_hosts_file =
        std::fs::metadata(format!("/proc/{pid}/exe")).is_ok_and(|m| files.contains(&(m.dev(), m.ino())));
    if !runs_hosts_file {
        return Look::NotOne;
    }
    let Some(uid) = status(pid).as_deref().and_then(single_uid).filter(|uid| *uid != 0) else {
        return Look::NotOne;
    };
    let Some(args) = settled_arguments(pid) else { return Look::NotYet };
    if !started_as(&args, comm) {
        return Look::NotOne;
    }
    match relay_state(pid, uid) {
        RelayState::Sound => Look::Found(relay(uid)),
        RelayState::Loading => Look::NotYet,
        RelayState::Tampered => Look::NotOne,
    }
}

/// Where a relay stands, looked at on every scan (not only when first
/// found): a helper traced, or given a library, after it was registered
/// loses its pass within a scan.
#[derive(Debug, PartialEq, Eq)]
enum RelayState {
    Sound,
    /// The dynamic loader has not mapped the helper's libraries yet. It
    /// maps every preloaded library before those, so a look before it
    /// finishes would miss an LD_PRELOAD that runs before main.
    Loading,
    Tampered,
}

fn relay_state(pid: u32, uid: u32) -> RelayState {
    let Some(status) = status(pid) else { return RelayState::Tampered };
    // A helper its user traces runs the user's code (red team 12); writes
    // through /proc/PID/mem between two scans are the accepted risk of
    // `rootless_helpers = "pass"` (README).
    if single_uid(&status) != Some(uid) || traced_by(&status) != Some(0) {
        return RelayState::Tampered;
    }
    match mapped_files_are_the_hosts(pid) {
        Some(true) => RelayState::Sound,
        Some(false) => RelayState::Loading,
        None => RelayState::Tampered,
    }
}

/// Was the program started under the name that makes it a helper of
/// containers (argv[0]'s file name)? passt decides its mode by it (pasta
/// when the name holds "pasta", as passt's own test): as passt it relays
/// frames from any local process that finds its UNIX socket.
fn started_as<S: AsRef<str>>(args: &[S], comm: &str) -> bool {
    let argv0 = args.first().and_then(|a| Path::new(a.as_ref()).file_name()).and_then(|n| n.to_str());
    match argv0 {
        Some(name) if PASST_NAMES.contains(&comm) => name.contains("pasta"),
        Some(name) => name == comm,
        None => false,
    }
}

/// /proc/PID/status (ids as ramd's user namespace sees them).
fn status(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/status")).ok()
}

/// The pid tracing the process (0: none), from its `status`.
fn traced_by(status: &str) -> Option<u32> {
    status.lines().find_map(|l| l.strip_prefix("TracerPid:")).and_then(|v| v.trim().parse().ok())
}

/// Real, effective, saved and filesystem uid, from `status`, when all are
/// one.
fn single_uid(status: &str) -> Option<u32> {
    let ids: Vec<u32> = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .filter_map(|id| id.parse().ok())
        .collect();
    (ids.len() == 4 && ids.iter().all(|id| *id == ids[0])).then(|| ids[0])
}

/// Is every executable file `pid` has mapped the host's file of that path
/// (the same file as ramd sees there, root-owned, not group- or
/// world-writable)? None when one is not: a library preloaded, a private
/// copy mounted over a path in a namespace of the process's own, or a file
/// since deleted (a package upgrade: the helper is let through again once
/// restarted). Otherwise whether the C library is among them, which says
/// the dynamic loader is done with preloads (the helpers all link glibc).
fn mapped_files_are_the_hosts(pid: u32) -> Option<bool> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    let mut libc = false;
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let (range, perms) = (fields.next()?, fields.next()?);
        // offset, device, inode; then the path, which may hold spaces.
        let path = line.splitn(6, char::is_whitespace).nth(5).map(str::trim).unwrap_or("");
        if !perms.contains('x') || !path.starts_with('/') {
            continue;
        }
        // What the process mapped, as stat sees it (map_files needs root,
        // which ramd is).
        let mapped = std::fs::metadata(format!("/proc/{pid}/map_files/{range}")).ok()?;
        let host = std::fs::metadata(path).ok()?;
        let same = (mapped.dev(), mapped.ino()) == (host.dev(), host.ino());
        if !same || host.uid() != 0 || host.mode() & 0o022 != 0 {
            return None;
        }
        libc |= is_glibc(path);
    }
    Some(libc)
}

/// glibc's file name: libc.so.6 (2.34 on), libc-2.31.so before.
fn is_glibc(path: &str) -> bool {
    let name = Path::new(path).file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.starts_with("libc.so") || (name.starts_with("libc-") && name.ends_with(".so"))
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
    status(pid).is_some_and(|status| single_uid(&status) == Some(0))
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
    /// pid → (start time, command name) when looked at, and its
    /// destination, or None for a process that is no forwarder.
    seen: BTreeMap<u32, ((u64, String), Option<ForwardDest>)>,
}

impl ForwarderScan {
    /// The forwarders in each scope's cgroups now; rootless network helpers
    /// only in the scopes that pass them (the bool).
    pub fn scan(&mut self, scopes: &[(u32, bool, Vec<PathBuf>)]) -> BTreeMap<ForwardKey, ForwardDest> {
        let mut found = BTreeMap::new();
        let mut alive = BTreeSet::new();
        let mut proxies: Option<BTreeSet<(u64, u64)>> = None;
        let mut aardvarks: Option<BTreeSet<(u64, u64)>> = None;
        let mut slirps: Option<BTreeSet<(u64, u64)>> = None;
        let mut pastas: Option<BTreeSet<(u64, u64)>> = None;
        for (scope, pass_relays, cgroups) in scopes {
            let mut pids = BTreeSet::new();
            for cgroup in cgroups {
                pids_below(cgroup, &mut pids);
            }
            for pid in pids {
                let Some(Stat { identity: now, ppid }) = stat(pid) else { continue };
                alive.insert(pid);
                let known = self.seen.get(&pid).filter(|(was, _)| *was == now).map(|(_, dest)| *dest);
                let dest = match known {
                    Some(Some(dest)) if dest.family == FORWARD_RELAY => {
                        let sound = relay_state(pid, dest.uid) == RelayState::Sound;
                        if !sound {
                            self.seen.insert(pid, (now, None));
                        }
                        sound.then_some(dest)
                    }
                    Some(dest) => dest,
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
                            SLIRP4NETNS => {
                                let files = slirps.get_or_insert_with(|| files_of(&SLIRP4NETNS_FILES));
                                look_at_relay(pid, &now.1, files)
                            }
                            name if PASST_NAMES.contains(&name) => {
                                let files = pastas.get_or_insert_with(|| files_of(&PASST_FILES));
                                look_at_relay(pid, &now.1, files)
                            }
                            _ => Look::NotOne,
                        };
                        match look {
                            Look::Found(dest) => {
                                self.seen.insert(pid, (now, Some(dest)));
                                Some(dest)
                            }
                            Look::NotOne => {
                                self.seen.insert(pid, (now, None));
                                None
                            }
                            Look::NotYet => None,
                        }
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
    fn a_rootless_helper_counts_only_under_its_own_name() {
        assert!(started_as(
            &["/usr/bin/slirp4netns", "--netns-type=path", "/run/user/1000/netns/x", "tap0"],
            "slirp4netns"
        ));
        assert!(started_as(&["pasta", "--config-net"], "pasta"));
        // The AVX2 re-exec runs passt.avx2 and keeps argv[0].
        assert!(started_as(&["/usr/bin/pasta", "--config-net"], "passt.avx2"));
        // passt's mode (frames from anyone), by whatever file name.
        assert!(!started_as(&["passt"], "pasta"));
        assert!(!started_as(&["/tmp/x/passt.avx2"], "passt.avx2"));
        assert!(!started_as(&["passt", "--socket", "/tmp/s"], "passt"));
        assert!(!started_as(&["sh"], "slirp4netns"));
        assert!(!started_as::<&str>(&[], "slirp4netns"));
        let row = relay(1000);
        assert_eq!((row.family, row.uid, row.port, row.host_port), (FORWARD_RELAY, 1000, 0, 0));
        assert_eq!(describe(&row), "carry its containers' traffic (as uid 1000)");
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
        let parse = |_: &[String]| Some(relay(1));
        assert_eq!(look_at_forwarder(pid, || true, parse), Look::NotYet);
        assert_eq!(look_at_forwarder(pid, || false, parse), Look::NotOne);
        child.wait().expect("reap");
        let own = std::process::id();
        assert_eq!(look_at_forwarder(own, || true, parse), Look::Found(relay(1)));
        assert_eq!(look_at_forwarder(own, || true, |_: &[String]| None), Look::NotOne);
    }

    #[test]
    fn the_c_library_says_the_loader_is_done() {
        assert!(is_glibc("/usr/lib/x86_64-linux-gnu/libc.so.6"));
        assert!(is_glibc("/lib/x86_64-linux-gnu/libc-2.31.so"));
        assert!(!is_glibc("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"));
        assert!(!is_glibc("/usr/lib/x86_64-linux-gnu/libcap.so.2"));
        assert!(!is_glibc("/usr/bin/slirp4netns"));
    }
}
