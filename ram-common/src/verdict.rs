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

    #[test]
    fn audit_lets_through_and_everything_else_blocks() {
        assert_eq!(on_deny(MODE_AUDIT), (true, ACTION_WOULD_BLOCK));
        assert_eq!(on_deny(MODE_ENFORCE), (false, ACTION_BLOCKED));
        assert_eq!(on_deny(0), (false, ACTION_BLOCKED));
    }
}
