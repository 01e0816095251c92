//! A runtime's own forwarders. docker-proxy serves a published port on
//! localhost (and, with iptables off, on every address) by connecting, from
//! the runtime's cgroup and network namespace, to the container's address
//! and port. The policy does not name container addresses, and allowing
//! them to the whole cgroup would let the runtime pull from a registry run
//! in one of its containers; so ramd finds each docker-proxy process in a
//! target's cgroups, checks that it runs a root-owned docker-proxy
//! executable, and lets that process alone (by its tgid, `RAM_FORWARDS`)
//! connect to the one destination its command line names.
//!
//! Why that is safe: what docker-proxy reaches is reachable only through
//! its listener, and a connect to that listener from an enforced process
//! is judged by the policy like any other.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use ram_common::maps::{ForwardDest, ForwardKey};

/// The executable name of Docker's userland proxy.
pub const DOCKER_PROXY: &str = "docker-proxy";

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
    Some(ForwardDest { addr: bytes, family, port: port as u32, protocol, _pad: 0 })
}

/// "172.17.0.2 port 80 (tcp)".
pub fn describe(dest: &ForwardDest) -> String {
    let addr: IpAddr = if dest.family == 4 {
        IpAddr::from([dest.addr[0], dest.addr[1], dest.addr[2], dest.addr[3]])
    } else {
        IpAddr::from(dest.addr)
    };
    let protocol = if dest.protocol == IPPROTO_UDP { "udp" } else { "tcp" };
    format!("{addr} port {} ({protocol})", dest.port)
}

/// Does `pid` run a docker-proxy executable that only root can have
/// written? (`/proc/PID/exe` names the file as the process's mount
/// namespace sees it, and opens the file itself wherever it is.)
fn runs_docker_proxy(pid: u32) -> bool {
    let exe = PathBuf::from(format!("/proc/{pid}/exe"));
    let Ok(target) = std::fs::read_link(&exe) else { return false };
    if target.file_name().and_then(|n| n.to_str()) != Some(DOCKER_PROXY) {
        return false;
    }
    std::fs::metadata(&exe).is_ok_and(|m| m.is_file() && m.uid() == 0 && m.mode() & 0o022 == 0)
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
/// `/proc` only for processes it has not seen.
#[derive(Default)]
pub struct ForwarderScan {
    /// pid → its destination, or None for a process that is no forwarder.
    seen: BTreeMap<u32, Option<ForwardDest>>,
}

impl ForwarderScan {
    /// The forwarders in each scope's cgroups now.
    pub fn scan(&mut self, scopes: &[(u32, Vec<PathBuf>)]) -> BTreeMap<ForwardKey, ForwardDest> {
        let mut found = BTreeMap::new();
        let mut alive = BTreeSet::new();
        for (scope, cgroups) in scopes {
            let mut pids = BTreeSet::new();
            for cgroup in cgroups {
                pids_below(cgroup, &mut pids);
            }
            for pid in pids {
                alive.insert(pid);
                let dest = *self.seen.entry(pid).or_insert_with(|| {
                    runs_docker_proxy(pid).then(|| arguments(pid)).flatten().and_then(|a| parse_arguments(&a))
                });
                if let Some(dest) = dest {
                    found.insert(ForwardKey { tgid: pid, scope: *scope }, dest);
                }
            }
        }
        // A pid that left may come back as another process: look again then.
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
        assert_eq!((dest.family, dest.port, dest.protocol), (4, 80, IPPROTO_TCP));
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
}
