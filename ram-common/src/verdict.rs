//! Decisions that need no kernel context, so they are tested on the host.

use crate::event::{ACTION_BLOCKED, ACTION_WOULD_BLOCK};
use crate::maps::{NameRule, PortSet, ANY_PORT, MODE_AUDIT, PORTS_PER_SET};

/// The bit of a scope in a scope set.
#[inline(always)]
pub fn scope_bit(scope: u32) -> u64 {
    1u64 << (scope & 63)
}

/// Is a DNS question whose key is `text_len` bytes allowed for `scope`,
/// given the longest-prefix entry the name trie returned for it?
#[inline(always)]
pub fn name_allowed(rule: &NameRule, text_len: u32, scope: u32) -> bool {
    let scopes = if rule.key_len == text_len { rule.full_scopes } else { rule.partial_scopes };
    scopes & scope_bit(scope) != 0
}

/// The port set a name rule gives `scope` for a name of `text_len` bytes
/// (only meaningful when [`name_allowed`] says yes).
#[inline(always)]
pub fn name_port_set(rule: &NameRule, text_len: u32, scope: u32) -> u32 {
    let sets = if rule.key_len == text_len { &rule.full_ports } else { &rule.partial_ports };
    sets[(scope & 63) as usize] as u32
}

/// Does set `set_id` (whose slot holds `set`) allow `port`? Id 0 allows
/// any port; other ids allow their listed ports only, none when the slot
/// is empty or missing: fail closed.
#[inline(always)]
pub fn port_allowed(set_id: u32, set: Option<&PortSet>, port: u16) -> bool {
    set_id == ANY_PORT || set.is_some_and(|set| port_in_set(set, port))
}

/// Is `port` among the set's ports?
#[inline(always)]
pub fn port_in_set(set: &PortSet, port: u16) -> bool {
    let count = if set.count as usize > PORTS_PER_SET { PORTS_PER_SET } else { set.count as usize };
    let mut found = false;
    for (i, allowed) in set.ports.iter().enumerate() {
        if i < count && *allowed == port {
            found = true;
        }
    }
    found
}

/// How long an answer's addresses stay allowed: its TTL kept within the
/// policy's bounds (a floor keeps short-TTL CDNs usable; a ceiling bounds
/// how long a stale address lingers).
#[inline(always)]
pub fn clamp_ttl(ttl: u32, min_ttl: u32, max_ttl: u32) -> u32 {
    let ttl = if ttl < min_ttl { min_ttl } else { ttl };
    if ttl > max_ttl && max_ttl >= min_ttl {
        max_ttl
    } else {
        ttl
    }
}

/// The IPv4 address inside an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`),
/// which must be judged as IPv4.
#[inline(always)]
pub fn v4_mapped(addr: &[u8; 16]) -> Option<[u8; 4]> {
    let zero = addr[0] | addr[1] | addr[2] | addr[3] | addr[4] | addr[5];
    let zero = zero | addr[6] | addr[7] | addr[8] | addr[9];
    if zero == 0 && addr[10] == 0xff && addr[11] == 0xff {
        Some([addr[12], addr[13], addr[14], addr[15]])
    } else {
        None
    }
}

/// How new a learned entry must be: a new connect needs an unexpired one
/// (`Strict`); the egress backstop and a connected socket's own peer take
/// any entry still in the map (`Lenient`), so a flow that started
/// legitimately is not cut when a TTL runs out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    Strict,
    Lenient,
}

/// The port of DNS, on which a trusted resolver is reachable.
pub const DNS_PORT: u16 = 53;

/// A scope's tables, as seen for one destination address: the kernel's
/// maps (ram-ebpf `judge.rs`) or the pinned copies of them (`ramctl
/// check`). The address family is the implementation's business (the
/// kernel keeps IPv4 and IPv6 apart for its verifier).
pub trait Tables {
    /// Is the destination a resolver this scope trusts?
    fn is_resolver(&self) -> bool;
    /// The port set the longest address rule holding the destination gives
    /// this scope; None when no rule of this scope holds it.
    fn cidr_port_set(&self) -> Option<u32>;
    /// The destination's learned entry for this scope: (port set, expiry
    /// in monotonic ns).
    fn learned(&self) -> Option<(u32, u64)>;
    /// Does port set `set` allow `port`?
    fn port_allowed(&self, set: u32, port: u16) -> bool;
    /// Monotonic ns now (CLOCK_MONOTONIC, as learned entries' expiry).
    fn now_ns(&self) -> u64;
}

/// Why a destination is allowed, or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A trusted resolver, on port 53.
    Resolver,
    /// Inside an address rule, on one of its ports.
    Cidr,
    /// Learned from an allowed answer, on one of its rule's ports.
    Learned,
    /// Learned, but expired: a new connect is refused.
    Expired,
    /// An address rule or a learned entry holds it, not on this port.
    PortRefused,
    /// Nothing allows it.
    Denied,
}

impl Verdict {
    #[inline(always)]
    pub fn allowed(self) -> bool {
        matches!(self, Verdict::Resolver | Verdict::Cidr | Verdict::Learned)
    }
}

/// The verdict on a destination for a scope, in the one order every
/// reader follows: resolver (port 53), address rule, learned entry. `port`
/// None (ramctl, asked without a port) counts any port as allowed. An
/// address rule that does not allow the port leaves the learned entry to
/// judge: the two are separate grants.
#[inline(always)]
pub fn judge<T: Tables>(tables: &T, port: Option<u16>, expiry: Expiry) -> Verdict {
    let port_ok = |set: u32| match port {
        Some(port) => tables.port_allowed(set, port),
        None => true,
    };
    if port.is_none_or(|p| p == DNS_PORT) && tables.is_resolver() {
        return Verdict::Resolver;
    }
    let cidr = tables.cidr_port_set();
    if let Some(set) = cidr {
        if port_ok(set) {
            return Verdict::Cidr;
        }
    }
    match tables.learned() {
        Some((set, _)) if !port_ok(set) => Verdict::PortRefused,
        Some(_) if expiry == Expiry::Lenient => Verdict::Learned,
        Some((_, expires_ns)) if expires_ns > tables.now_ns() => Verdict::Learned,
        Some(_) => Verdict::Expired,
        None if cidr.is_some() => Verdict::PortRefused,
        None => Verdict::Denied,
    }
}

/// What a denial turns into under a scope's mode: (let it through?, action).
#[inline(always)]
pub fn on_deny(mode: u32) -> (bool, u8) {
    if mode == MODE_AUDIT {
        (true, ACTION_WOULD_BLOCK)
    } else {
        // Enforce, and also an unconfigured scope: fail closed.
        (false, ACTION_BLOCKED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maps::MODE_ENFORCE;

    #[test]
    fn whole_and_partial_matches_use_their_own_scope_sets() {
        let rule = NameRule { full_scopes: 0b01, partial_scopes: 0b10, key_len: 11, ..NameRule::default() };
        assert!(name_allowed(&rule, 11, 0));
        assert!(!name_allowed(&rule, 11, 1));
        assert!(name_allowed(&rule, 15, 1));
        assert!(!name_allowed(&rule, 15, 0));
    }

    #[test]
    fn port_sets() {
        let empty = PortSet::default();
        assert!(port_allowed(ANY_PORT, Some(&empty), 1) && port_allowed(ANY_PORT, None, 65535));
        assert!(!port_allowed(5, Some(&empty), 443), "an unwritten set allows nothing");
        assert!(!port_allowed(5, None, 443));
        let mut set = PortSet { count: 2, ..PortSet::default() };
        set.ports[0] = 443;
        set.ports[1] = 5000;
        set.ports[2] = 22; // past count: not in the set
        assert!(port_in_set(&set, 443) && port_in_set(&set, 5000));
        assert!(!port_in_set(&set, 22) && !port_in_set(&set, 0));
        assert!(port_allowed(9, Some(&set), 443) && !port_allowed(9, Some(&set), 22));
        let mut rule = NameRule { key_len: 11, ..NameRule::default() };
        rule.full_ports[3] = 7;
        rule.partial_ports[3] = 9;
        assert_eq!(name_port_set(&rule, 11, 3), 7);
        assert_eq!(name_port_set(&rule, 15, 3), 9);
    }

    #[test]
    fn ttl_is_clamped() {
        assert_eq!(clamp_ttl(0, 30, 86400), 30);
        assert_eq!(clamp_ttl(300, 30, 86400), 300);
        assert_eq!(clamp_ttl(u32::MAX, 30, 86400), 86400);
    }

    #[test]
    fn v4_mapped_addresses_are_recognised() {
        let mut a = [0u8; 16];
        a[10] = 0xff;
        a[11] = 0xff;
        a[12..].copy_from_slice(&[127, 10, 0, 2]);
        assert_eq!(v4_mapped(&a), Some([127, 10, 0, 2]));
        a[0] = 0x20;
        assert_eq!(v4_mapped(&a), None);
        let loopback6 = std::net::Ipv6Addr::LOCALHOST.octets();
        assert_eq!(v4_mapped(&loopback6), None);
    }

    /// Tables for one destination, written out.
    #[derive(Default)]
    struct Fixed {
        resolver: bool,
        cidr: Option<u32>,
        learned: Option<(u32, u64)>,
        /// Port set 7 allows only 443; every other set any port.
        now: u64,
    }

    impl Tables for Fixed {
        fn is_resolver(&self) -> bool {
            self.resolver
        }
        fn cidr_port_set(&self) -> Option<u32> {
            self.cidr
        }
        fn learned(&self) -> Option<(u32, u64)> {
            self.learned
        }
        fn port_allowed(&self, set: u32, port: u16) -> bool {
            set != 7 || port == 443
        }
        fn now_ns(&self) -> u64 {
            self.now
        }
    }

    #[test]
    fn the_verdict_order_is_resolver_then_address_rule_then_learned() {
        use Verdict::*;
        let strict = Expiry::Strict;
        let t = Fixed { resolver: true, cidr: Some(0), learned: Some((0, 100)), now: 50 };
        assert_eq!(judge(&t, Some(53), strict), Resolver);
        assert_eq!(judge(&t, None, strict), Resolver, "ramctl without a port");
        assert_eq!(judge(&t, Some(443), strict), Cidr, "a resolver is open on port 53 only");
        let t = Fixed { resolver: true, ..Fixed::default() };
        assert_eq!(judge(&t, Some(443), strict), Denied);
        // An address rule for 443 only does not hide a learned entry for
        // any port (the kernel judged so; ramctl check once said denied).
        let t = Fixed { cidr: Some(7), learned: Some((0, 100)), now: 50, ..Fixed::default() };
        assert_eq!(judge(&t, Some(443), strict), Cidr);
        assert_eq!(judge(&t, Some(5000), strict), Learned);
        let t = Fixed { cidr: Some(7), ..Fixed::default() };
        assert_eq!(judge(&t, Some(5000), strict), PortRefused);
        // Learned: ports, then expiry (strict only).
        let t = Fixed { learned: Some((7, 100)), now: 50, ..Fixed::default() };
        assert_eq!(judge(&t, Some(443), strict), Learned);
        assert_eq!(judge(&t, Some(80), strict), PortRefused);
        let t = Fixed { learned: Some((7, 100)), now: 100, ..Fixed::default() };
        assert_eq!(judge(&t, Some(443), strict), Expired);
        assert_eq!(judge(&t, Some(443), Expiry::Lenient), Learned);
        assert_eq!(judge(&t, Some(80), Expiry::Lenient), PortRefused);
        assert_eq!(judge(&Fixed::default(), Some(443), strict), Denied);
        for verdict in [Resolver, Cidr, Learned] {
            assert!(verdict.allowed());
        }
        for verdict in [Expired, PortRefused, Denied] {
            assert!(!verdict.allowed());
        }
    }

    #[test]
    fn audit_lets_through_and_everything_else_blocks() {
        assert_eq!(on_deny(MODE_AUDIT), (true, ACTION_WOULD_BLOCK));
        assert_eq!(on_deny(MODE_ENFORCE), (false, ACTION_BLOCKED));
        assert_eq!(on_deny(0), (false, ACTION_BLOCKED));
    }
}
