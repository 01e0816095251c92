//! Where an allowed address's packets go. ram allows by address; a route
//! that sends an allowed address into a container network on this host (a
//! Docker network created with a subnet over a registry's address, or any
//! route the runtime adds) lets whoever runs a container there answer for
//! that registry. ramd cannot tell that from the address, so it reads the
//! routing table of the runtime's namespace and alerts when an allowed
//! address is routed into a container bridge.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::Path,
};

use crate::host::{HostError, Result};

/// One route of the main table: `net/prefix dev`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub net: IpAddr,
    pub prefix: u8,
    pub dev: String,
}

impl Route {
    fn contains(&self, addr: IpAddr) -> bool {
        let (net, addr, bits) = match (self.net, addr) {
            (IpAddr::V4(n), IpAddr::V4(a)) => (u128::from(u32::from(n)) << 96, u128::from(u32::from(a)) << 96, 32),
            (IpAddr::V6(n), IpAddr::V6(a)) => (u128::from(n), u128::from(a), 128),
            _ => return false,
        };
        let prefix = u32::from(self.prefix.min(bits));
        let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - prefix) };
        net & mask == addr & mask
    }
}

/// Parses /proc/net/route (IPv4: destination and mask in hex, in the
/// kernel's byte order, which /proc prints as the host's u32).
pub fn parse_v4(text: &str) -> Vec<Route> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let dev = fields.first()?;
            let dest = u32::from_str_radix(fields.get(1)?, 16).ok()?;
            let mask = u32::from_str_radix(fields.get(7)?, 16).ok()?;
            // /proc prints the address as a native u32: its bytes in memory are the address in order.
            let net = Ipv4Addr::from(dest.to_ne_bytes());
            let prefix = u32::from_be_bytes(mask.to_ne_bytes()).count_ones() as u8;
            Some(Route { net: IpAddr::V4(net), prefix, dev: dev.to_string() })
        })
        .collect()
}

/// Parses /proc/net/ipv6_route (destination, prefix length, ..., device).
pub fn parse_v6(text: &str) -> Vec<Route> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 10 {
                return None;
            }
            let net = Ipv6Addr::from(u128::from_str_radix(fields[0], 16).ok()?);
            let prefix = u8::from_str_radix(fields[1], 16).ok()?;
            Some(Route { net: IpAddr::V6(net), prefix, dev: fields[9].to_string() })
        })
        .collect()
}

/// The most specific route for `addr` (what the kernel would pick from the
/// main table, metrics aside).
pub fn route_for(routes: &[Route], addr: IpAddr) -> Option<&Route> {
    routes.iter().filter(|r| r.contains(addr)).max_by_key(|r| r.prefix)
}

/// Is `dev` a container network's bridge, by the names runtimes give them:
/// Docker's docker0, br-<12 hex> and docker_gwbridge, podman's podman<N>
/// (netavark) and cni-podman<N>, and CNI's cni0?
pub fn is_container_bridge(dev: &str) -> bool {
    let numbered =
        |prefix: &str| dev.strip_prefix(prefix).is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    matches!(dev, "docker0" | "docker_gwbridge" | "cni0")
        || dev.strip_prefix("br-").is_some_and(|id| id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        || numbered("podman")
        || numbered("cni-podman")
}

/// The main routing table of the network namespace at `netns` (both
/// families), read from a thread that enters it.
pub fn read(netns: &Path) -> Result<Vec<Route>> {
    let file = std::fs::File::open(netns).map_err(|e| HostError::io(netns, e))?;
    let netns = netns.to_path_buf();
    std::thread::spawn(move || -> Result<Vec<Route>> {
        use std::os::fd::AsRawFd;
        // SAFETY: setns on this thread only, with a namespace file we hold
        // open; the thread ends after reading.
        if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(HostError::io(&netns, std::io::Error::last_os_error()));
        }
        let read = |name: &str| {
            let path = Path::new("/proc/thread-self/net").join(name);
            std::fs::read_to_string(&path).map_err(|e| HostError::io(&path, e))
        };
        let mut routes = parse_v4(&read("route")?);
        // A kernel without IPv6 has no such file.
        routes.extend(read("ipv6_route").map(|t| parse_v6(&t)).unwrap_or_default());
        Ok(routes)
    })
    .join()
    .map_err(|_| HostError::io(Path::new("/proc/thread-self/net"), std::io::Error::other("route reader panicked")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    const V4: &str = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
br-0123456789ab\t0000C90A\t00000000\t0001\t0\t0\t0\tF8FFFFFF\t0\t0\t0
";
    const V6: &str = "\
fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000003 00000000 00000003     eth0
fd000000000000000000000000000000 78 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001  docker0
";

    #[test]
    fn the_most_specific_route_names_the_device() {
        let routes = parse_v4(V4);
        assert_eq!(routes.len(), 3);
        assert_eq!(routes[1], Route { net: "192.0.2.0".parse().unwrap(), prefix: 24, dev: "eth0".into() });
        assert_eq!(routes[2].net, "10.201.0.0".parse::<IpAddr>().unwrap());
        assert_eq!(routes[2].prefix, 29);
        let dev = |addr: &str| route_for(&routes, addr.parse().unwrap()).map(|r| r.dev.as_str());
        assert_eq!(dev("10.201.0.1"), Some("br-0123456789ab"));
        assert_eq!(dev("10.201.0.9"), Some("eth0"), "outside the /29: the default route");
        assert_eq!(dev("192.0.2.7"), Some("eth0"));

        let routes = parse_v6(V6);
        assert_eq!(routes.len(), 3);
        let dev = |addr: &str| route_for(&routes, addr.parse().unwrap()).map(|r| r.dev.as_str());
        assert_eq!(dev("fd00::5"), Some("docker0"));
        assert_eq!(dev("fd00::1:0:0:5"), Some("eth0"));
        assert_eq!(dev("2001:db8::1"), Some("eth0"));
        assert_eq!(route_for(&routes, "10.0.0.1".parse().unwrap()), None, "no v4 route in a v6 table");
    }

    #[test]
    fn container_bridges_are_known_by_their_runtimes_names() {
        for dev in ["docker0", "br-0123456789ab", "podman0", "podman12", "cni-podman1", "cni0", "docker_gwbridge"] {
            assert!(is_container_bridge(dev), "{dev}");
        }
        for dev in ["eth0", "br-lan", "br-0123456789abc", "podman", "podmanx", "lo", "ramhost0", "veth1234"] {
            assert!(!is_container_bridge(dev), "{dev}");
        }
    }
}
