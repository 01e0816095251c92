//! The allow decision for one destination, shared by every hook: the
//! verdict of `ram_common::verdict::judge` (resolver on port 53, address
//! rule, learned entry; see there) over this program's maps.

use aya_ebpf::{helpers::generated::bpf_ktime_get_ns, maps::lpm_trie::Key, EbpfContext};
pub use ram_common::verdict::{Expiry, DNS_PORT};
use ram_common::{
    event::{BlockedEvent, EventHeader, KIND_BLOCKED},
    maps::{counter, Learn4Key, Learn6Key},
    verdict::{judge, on_deny, port_allowed, scope_bit, Tables},
};

use crate::{
    events::send_blocked,
    maps::{count, scope_config, RAM_CIDR4, RAM_CIDR6, RAM_LEARN4, RAM_LEARN6, RAM_PORTS, RAM_RESOLV4, RAM_RESOLV6},
};

/// A destination: an IPv4 address (in the first 4 bytes, the rest zero) or
/// an IPv6 one. A struct whose every byte is always written, not an enum:
/// an enum's IPv4 variant leaves 12 bytes unwritten, and where the verifier
/// cannot tell the variants apart (a spilled copy) kernels before 5.16
/// refuse the read of those bytes on the IPv6 path.
#[derive(Clone, Copy)]
pub struct Dest {
    /// 4 or 6.
    family: u8,
    addr: [u8; 16],
}

impl Dest {
    #[inline(always)]
    pub fn v4(a: [u8; 4]) -> Self {
        let mut addr = [0u8; 16];
        addr[0] = a[0];
        addr[1] = a[1];
        addr[2] = a[2];
        addr[3] = a[3];
        Dest { family: 4, addr }
    }

    #[inline(always)]
    pub fn v6(addr: [u8; 16]) -> Self {
        Dest { family: 6, addr }
    }

    #[inline(always)]
    pub fn is_v4(&self) -> bool {
        self.family == 4
    }

    /// The IPv4 address (meaningful when [`Dest::is_v4`]).
    #[inline(always)]
    pub fn v4_addr(&self) -> [u8; 4] {
        [self.addr[0], self.addr[1], self.addr[2], self.addr[3]]
    }

    /// The IPv6 address (meaningful when not [`Dest::is_v4`]).
    #[inline(always)]
    pub fn v6_addr(&self) -> [u8; 16] {
        self.addr
    }

    /// The family (4 or 6) and the address in 16 bytes (IPv4 in the first
    /// 4, the rest zero), as events and keys hold it.
    #[inline(always)]
    pub fn wire_bytes(self) -> (u8, [u8; 16]) {
        (self.family, self.addr)
    }
}

/// A scope's maps, as seen for one IPv4 destination. IPv4 and IPv6 are
/// two implementations, chosen once per verdict: with the family tested in
/// each lookup instead, the verifier walks every mix of the three branches
/// (measured on 6.18, ram_egress with its hop loop: 110,819 instructions
/// before the shared verdict, 159,914 with the family tested per lookup,
/// 104,871 split once).
struct Tables4 {
    scope: u32,
    addr: [u8; 4],
}

/// The same for an IPv6 destination.
struct Tables6 {
    scope: u32,
    addr: [u8; 16],
}

impl Tables for Tables4 {
    #[inline(always)]
    fn is_resolver(&self) -> bool {
        // SAFETY: read-only lookup; the value is read at once.
        unsafe { RAM_RESOLV4.get(&self.addr) }.is_some_and(|r| r.scopes & scope_bit(self.scope) != 0)
    }

    #[inline(always)]
    fn cidr_port_set(&self) -> Option<u32> {
        let (bit, slot) = (scope_bit(self.scope), (self.scope & 63) as usize);
        RAM_CIDR4.get(Key::new(32, self.addr)).filter(|r| r.scopes & bit != 0).map(|r| r.ports[slot] as u32)
    }

    #[inline(always)]
    fn learned(&self) -> Option<(u32, u64)> {
        // SAFETY: read-only lookup; the value is copied at once.
        unsafe { RAM_LEARN4.get(&Learn4Key { scope: self.scope, addr: self.addr }) }
            .map(|learned| (learned.port_set, learned.expires_ns))
    }

    #[inline(always)]
    fn port_allowed(&self, set: u32, port: u16) -> bool {
        port_allowed(set, RAM_PORTS.get(set), port)
    }

    #[inline(always)]
    fn now_ns(&self) -> u64 {
        // SAFETY: helper without preconditions.
        unsafe { bpf_ktime_get_ns() }
    }
}

impl Tables for Tables6 {
    #[inline(always)]
    fn is_resolver(&self) -> bool {
        // SAFETY: read-only lookup; the value is read at once.
        unsafe { RAM_RESOLV6.get(&self.addr) }.is_some_and(|r| r.scopes & scope_bit(self.scope) != 0)
    }

    #[inline(always)]
    fn cidr_port_set(&self) -> Option<u32> {
        let (bit, slot) = (scope_bit(self.scope), (self.scope & 63) as usize);
        RAM_CIDR6.get(Key::new(128, self.addr)).filter(|r| r.scopes & bit != 0).map(|r| r.ports[slot] as u32)
    }

    #[inline(always)]
    fn learned(&self) -> Option<(u32, u64)> {
        // SAFETY: read-only lookup; the value is copied at once.
        unsafe { RAM_LEARN6.get(&Learn6Key { scope: self.scope, addr: self.addr }) }
            .map(|learned| (learned.port_set, learned.expires_ns))
    }

    #[inline(always)]
    fn port_allowed(&self, set: u32, port: u16) -> bool {
        port_allowed(set, RAM_PORTS.get(set), port)
    }

    #[inline(always)]
    fn now_ns(&self) -> u64 {
        // SAFETY: helper without preconditions.
        unsafe { bpf_ktime_get_ns() }
    }
}

/// Is `dest` a resolver this scope trusts?
#[inline(always)]
pub fn is_resolver(scope: u32, dest: Dest) -> bool {
    let bit = scope_bit(scope);
    if dest.is_v4() {
        // SAFETY: read-only lookups; the value is read at once.
        unsafe { RAM_RESOLV4.get(&dest.v4_addr()) }.is_some_and(|r| r.scopes & bit != 0)
    } else {
        // SAFETY: as above.
        unsafe { RAM_RESOLV6.get(&dest.v6_addr()) }.is_some_and(|r| r.scopes & bit != 0)
    }
}

#[inline(always)]
pub fn allowed(scope: u32, dest: Dest, port: u16, expiry: Expiry) -> bool {
    let verdict = if dest.is_v4() {
        judge(&Tables4 { scope, addr: dest.v4_addr() }, Some(port), expiry)
    } else {
        judge(&Tables6 { scope, addr: dest.v6_addr() }, Some(port), expiry)
    };
    verdict.allowed()
}

/// Who tried to reach what, for the blocked event.
pub struct Attempt {
    /// May the program ask who the current task is (see maps::skb_task_info)?
    pub task_info: bool,
    pub dest: Dest,
    pub port: u16,
    pub protocol: u8,
    pub hook: u8,
    pub cgroup_id: u64,
}

/// Counts and reports a denied attempt; true when the scope only audits,
/// so the attempt goes on (false: refuse it).
#[inline(always)]
pub fn audit_lets_through<C: EbpfContext>(ctx: &C, scope: u32, attempt: &Attempt, blocked_slot: u32) -> bool {
    let (pass, action) = on_deny(scope_config(scope).mode);
    count(scope, if pass { counter::WOULD_BLOCK } else { blocked_slot });
    emit_blocked(ctx, scope, attempt, action);
    pass
}

#[inline(always)]
fn emit_blocked<C: EbpfContext>(ctx: &C, scope: u32, attempt: &Attempt, action: u8) {
    let (family, addr) = attempt.dest.wire_bytes();
    let (pid_tgid, comm) = if attempt.task_info {
        // SAFETY: helper without preconditions.
        let pid_tgid = unsafe { aya_ebpf::helpers::generated::bpf_get_current_pid_tgid() };
        (pid_tgid, aya_ebpf::helpers::bpf_get_current_comm().unwrap_or_default())
    } else {
        (0, [0u8; 16])
    };
    let event = BlockedEvent {
        header: EventHeader { kind: KIND_BLOCKED, scope },
        cgroup_id: attempt.cgroup_id,
        pid: (pid_tgid >> 32) as u32,
        port: attempt.port,
        family,
        protocol: attempt.protocol,
        comm,
        addr,
        hook: attempt.hook,
        action,
        _pad: [0; 6],
    };
    send_blocked(ctx, scope, event);
}
