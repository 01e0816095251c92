//! Ring-buffer events from the kernel to ramd. Every event starts with a
//! [`EventHeader`] so the reader can tell the kinds apart before decoding.

use crate::dns::WINDOW;

pub const KIND_BLOCKED: u32 = 1;
pub const KIND_DNS: u32 = 2;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct EventHeader {
    pub kind: u32,
    pub scope: u32,
}

/// Which hook judged the attempt.
pub const HOOK_CONNECT: u8 = 1;
pub const HOOK_SENDMSG: u8 = 2;
pub const HOOK_EGRESS: u8 = 3;

/// What happened to the attempt.
pub const ACTION_BLOCKED: u8 = 1;
/// Audit mode: it would have been blocked and was let through.
pub const ACTION_WOULD_BLOCK: u8 = 2;

/// An attempt to reach a destination the policy does not allow.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct BlockedEvent {
    pub header: EventHeader,
    pub cgroup_id: u64,
    /// Thread-group id (the pid a person knows); 0 when not in process context.
    pub pid: u32,
    /// Destination port, host byte order.
    pub port: u16,
    /// 4 or 6: how the destination was judged (v4-mapped IPv6 is 4).
    pub family: u8,
    /// IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, ...).
    pub protocol: u8,
    pub comm: [u8; 16],
    /// Destination; the first 4 bytes for family 4.
    pub addr: [u8; 16],
    pub hook: u8,
    pub action: u8,
    pub _pad: [u8; 6],
}
const _: () = assert!(core::mem::size_of::<BlockedEvent>() == 64);

/// A DNS answer seen from a trusted resolver, with its raw message so ramd
/// can parse it again with a full parser.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct DnsEvent {
    pub header: EventHeader,
    pub cgroup_id: u64,
    /// Addresses learned from this answer (0 when the name is not allowed).
    pub learned: u32,
    /// 1 when the question name is allowed for the scope and the answer
    /// matched a query the scope sent.
    pub allowed: u32,
    /// Bytes of `message` that hold the DNS message.
    pub message_len: u32,
    /// 1 when the answer matched a query of the scope (see `RAM_QUERIES`).
    pub matched: u32,
    pub message: [u8; WINDOW],
}
const _: () = assert!(core::mem::size_of::<DnsEvent>() == 32 + WINDOW);

#[cfg(feature = "user")]
mod pod {
    use super::*;
    // SAFETY: repr(C), Copy, no implicit padding.
    unsafe impl aya::Pod for EventHeader {}
    // SAFETY: as above.
    unsafe impl aya::Pod for BlockedEvent {}
    // SAFETY: as above.
    unsafe impl aya::Pod for DnsEvent {}
}
