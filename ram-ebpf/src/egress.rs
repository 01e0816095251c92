//! cgroup_skb/egress: the backstop for packets that skip or fool the
//! sock_addr hooks — raw and ping sockets, IPv4 options and IPv6 routing
//! headers that send the packet to another first hop. It judges the address
//! actually written in the IP header.
//!
//! TCP packets are judged only while their socket is in SYN_SENT: a
//! connection that got past connect() and the first SYN is never cut later,
//! even when the learned address expires.

use aya_ebpf::{
    bindings::BPF_TCP_SYN_SENT,
    helpers::generated::{bpf_sk_fullsock, bpf_skb_cgroup_id},
    programs::SkBuffContext,
};
use ram_common::{event::HOOK_EGRESS, maps::counter};

use crate::{
    judge::{allowed, deny, is_resolver, Attempt, Dest, Expiry, DNS_PORT},
    maps::{scope, skb_task_info},
    queries::record_query,
    skb::{load, ETH_P_IP, ETH_P_IPV6, IPPROTO_TCP, IPPROTO_UDP},
};

const PASS: i32 = 1;
const DROP: i32 = 0;

const IPPROTO_ICMPV6: u8 = 58;

#[inline(always)]
pub fn on_egress(ctx: &SkBuffContext) -> i32 {
    let skb = ctx.skb.skb;
    // SAFETY: the context pointer is valid for the program's run.
    let sk = unsafe { (*skb).__bindgen_anon_2.sk };
    if sk.is_null() {
        // Kernel-generated packet without an owning socket.
        return PASS;
    }
    // SAFETY: helper accepts any socket pointer from the context.
    let full = unsafe { bpf_sk_fullsock(sk) };
    if full.is_null() {
        // Request and time-wait sockets belong to established or accepted flows.
        return PASS;
    }
    // SAFETY: as above.
    let family = u16::from_be(unsafe { (*skb).protocol } as u16);
    let Some((dest, protocol, port, l4)) = destination(ctx, family) else {
        return PASS;
    };
    let scope = scope();
    if port == DNS_PORT && is_resolver(scope, dest) {
        // Recorded whatever the TCP state: DNS over TCP sends its queries
        // on an established connection.
        let _ = record_query(ctx, scope, dest, protocol, l4);
    }
    // SAFETY: non-null full socket returned by the helper.
    let (sk_protocol, sk_state) = unsafe { ((*full).protocol, (*full).state) };
    if sk_protocol == IPPROTO_TCP as u32 && sk_state != BPF_TCP_SYN_SENT {
        return PASS;
    }
    if allowed(scope, dest, port, Expiry::Lenient) {
        return PASS;
    }
    let attempt = Attempt {
        task_info: skb_task_info(),
        dest,
        port,
        protocol,
        hook: HOOK_EGRESS,
        // SAFETY: valid context.
        cgroup_id: unsafe { bpf_skb_cgroup_id(skb) },
    };
    if deny(ctx, scope, &attempt, counter::EGRESS_DROPPED) {
        PASS
    } else {
        DROP
    }
}

/// The destination written in the packet: address, IP protocol, the
/// destination port for TCP/UDP (0 otherwise) and where the transport
/// header starts. None for packets that must pass unjudged (IPv6 neighbour
/// discovery, unknown families).
#[inline(always)]
fn destination(ctx: &SkBuffContext, family: u16) -> Option<(Dest, u8, u16, u32)> {
    if family == ETH_P_IP {
        let ip: [u8; 20] = load(ctx, 0)?;
        let header_len = ((ip[0] & 0x0f) as u32) * 4;
        let protocol = ip[9];
        let addr = [ip[16], ip[17], ip[18], ip[19]];
        let port = transport_port(ctx, protocol, header_len);
        Some((Dest::V4(addr), protocol, port, header_len))
    } else if family == ETH_P_IPV6 {
        let ip: [u8; 40] = load(ctx, 0)?;
        let next = ip[6];
        let mut addr = [0u8; 16];
        addr.copy_from_slice(&ip[24..40]);
        if next == IPPROTO_ICMPV6 {
            let icmp: [u8; 1] = load(ctx, 40)?;
            // Router/neighbour solicitation and advertisement, redirects and
            // multicast listener messages keep the link working.
            if matches!(icmp[0], 130..=137 | 143) {
                return None;
            }
        }
        let port = transport_port(ctx, next, 40);
        Some((Dest::V6(addr), next, port, 40))
    } else {
        None
    }
}

#[inline(always)]
fn transport_port(ctx: &SkBuffContext, protocol: u8, offset: u32) -> u16 {
    if protocol != IPPROTO_TCP && protocol != IPPROTO_UDP {
        return 0;
    }
    match load::<4>(ctx, offset) {
        Some(ports) => u16::from_be_bytes([ports[2], ports[3]]),
        None => 0,
    }
}
