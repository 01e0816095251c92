//! The two address families as ram's maps hold them: the bytes of an
//! address, the learned map's key, the bits of a full prefix, and which
//! addresses a family judges (an IPv4-mapped IPv6 address is judged as
//! IPv4: it reaches only the IPv6 hooks but leaves as IPv4). Userspace
//! writes each pair of twin maps' code once over [`Family`]; the kernel
//! keeps its IPv4 and IPv6 paths apart for its verifier (ram-ebpf
//! `judge.rs`) and uses the same key types.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::maps::{Learn4Key, Learn6Key};

/// One address family.
pub trait Family {
    /// The address, as map keys hold it.
    type Bytes: Copy + Eq + Ord + core::hash::Hash + core::fmt::Debug;
    /// The key of the learned-address map.
    type LearnKey: Copy;
    /// Bits in an address: the prefix of an address rule for one address.
    const BITS: u32;
    /// 4 or 6, as events carry it.
    const NUMBER: u8;

    fn learn_key(scope: u32, addr: Self::Bytes) -> Self::LearnKey;
    /// The scope and address of a learned-address key.
    fn learn_key_parts(key: &Self::LearnKey) -> (u32, Self::Bytes);
    fn ip(addr: Self::Bytes) -> IpAddr;
    /// The address when it is of this family as written (`cidr` rules keep
    /// the family they were written in).
    fn written(ip: IpAddr) -> Option<Self::Bytes>;
    /// The address when this family judges it (IPv4-mapped IPv6 as IPv4).
    fn judged(ip: IpAddr) -> Option<Self::Bytes>;
}

/// IPv4.
pub enum V4 {}
/// IPv6.
pub enum V6 {}

impl Family for V4 {
    type Bytes = [u8; 4];
    type LearnKey = Learn4Key;
    const BITS: u32 = 32;
    const NUMBER: u8 = 4;

    fn learn_key(scope: u32, addr: [u8; 4]) -> Learn4Key {
        Learn4Key { scope, addr }
    }

    fn learn_key_parts(key: &Learn4Key) -> (u32, [u8; 4]) {
        (key.scope, key.addr)
    }

    fn ip(addr: [u8; 4]) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(addr))
    }

    fn written(ip: IpAddr) -> Option<[u8; 4]> {
        match ip {
            IpAddr::V4(v4) => Some(v4.octets()),
            IpAddr::V6(_) => None,
        }
    }

    fn judged(ip: IpAddr) -> Option<[u8; 4]> {
        match ip {
            IpAddr::V4(v4) => Some(v4.octets()),
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(|v4| v4.octets()),
        }
    }
}

impl Family for V6 {
    type Bytes = [u8; 16];
    type LearnKey = Learn6Key;
    const BITS: u32 = 128;
    const NUMBER: u8 = 6;

    fn learn_key(scope: u32, addr: [u8; 16]) -> Learn6Key {
        Learn6Key { scope, addr }
    }

    fn learn_key_parts(key: &Learn6Key) -> (u32, [u8; 16]) {
        (key.scope, key.addr)
    }

    fn ip(addr: [u8; 16]) -> IpAddr {
        IpAddr::V6(Ipv6Addr::from(addr))
    }

    fn written(ip: IpAddr) -> Option<[u8; 16]> {
        match ip {
            IpAddr::V6(v6) => Some(v6.octets()),
            IpAddr::V4(_) => None,
        }
    }

    fn judged(ip: IpAddr) -> Option<[u8; 16]> {
        match ip {
            IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => Some(v6.octets()),
            _ => None,
        }
    }
}

/// The address as it is judged: an IPv4-mapped IPv6 address as IPv4.
pub fn judged(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_is_judged_in_exactly_one_family() {
        let v4: IpAddr = "127.10.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.10.0.1".parse().unwrap();
        let v6: IpAddr = "fd00::1".parse().unwrap();
        assert_eq!(V4::judged(v4), Some([127, 10, 0, 1]));
        assert_eq!(V4::judged(mapped), Some([127, 10, 0, 1]));
        assert_eq!(V6::judged(mapped), None);
        assert_eq!(V4::judged(v6), None);
        assert_eq!(V6::judged(v6).map(V6::ip), Some(v6));
        assert_eq!(judged(mapped), v4);
        assert_eq!(judged(v6), v6);
        // As written: a mapped address stays IPv6 (a cidr rule's family).
        assert_eq!(V4::written(mapped), None);
        assert!(V6::written(mapped).is_some());
        let key = V4::learn_key(3, [10, 0, 0, 1]);
        assert_eq!(V4::learn_key_parts(&key), (3, [10, 0, 0, 1]));
        assert_eq!((V4::BITS, V6::BITS, V4::NUMBER, V6::NUMBER), (32, 128, 4, 6));
    }
}
