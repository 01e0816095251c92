//! DNS queries in flight, so that only answers to them teach addresses.
//!
//! The egress program records each query a scope sends to a configured
//! resolver (id, question type, client address and port, resolver,
//! transport, question name); the ingress program learns from an answer
//! only when it matches such a query of the same scope, from that
//! resolver's port 53 to that client port over the same transport, within
//! the scope's answer window. A match is used once. Over TCP only messages
//! at a tracked message boundary count (see stream.rs).

use aya_ebpf::{
    bindings::__sk_buff,
    helpers::generated::{bpf_ktime_get_ns, bpf_skb_load_bytes},
    programs::SkBuffContext,
};
use ram_common::{
    bounded::{get, put},
    dns::{parse_query, HEADER_LEN, WINDOW, WINDOW_MASK},
    maps::{QueryKey, QueryValue, DNS_ANSWER_WINDOW_MS},
};

use crate::{
    maps::{scope, RAM_QUERIES, RAM_QUERY_SCRATCH},
    skb::{destination_at, load, source_at, ETH_P_IP, ETH_P_IPV6, IPPROTO_TCP, IPPROTO_UDP},
    stream::{each_message, Direction},
    trust::trusted_socket,
};

/// The key an exchange with a resolver is known by.
#[inline(always)]
pub fn query_key(
    scope: u32,
    family: u8,
    resolver: [u8; 16],
    client: [u8; 16],
    client_port: u16,
    id: u16,
    qtype: u16,
) -> QueryKey {
    QueryKey { scope, client_port, id, qtype, family, transport: 0, resolver, client }
}

/// The address at `offset` of the IP header, as keys hold it.
#[inline(always)]
pub fn header_address(ctx: &SkBuffContext, family: u8, offset: u32) -> Option<[u8; 16]> {
    let mut addr = [0u8; 16];
    if family == 4 {
        let v4: [u8; 4] = load(ctx, offset)?;
        addr[0] = v4[0];
        addr[1] = v4[1];
        addr[2] = v4[2];
        addr[3] = v4[3];
    } else {
        addr = load(ctx, offset)?;
    }
    Some(addr)
}

/// The family (4 or 6) of the packet's IP header.
#[inline(always)]
pub fn packet_family(ctx: &SkBuffContext) -> Option<u8> {
    // SAFETY: valid context.
    let protocol = u16::from_be(unsafe { (*ctx.skb.skb).protocol } as u16);
    match protocol {
        ETH_P_IP => Some(4),
        ETH_P_IPV6 => Some(6),
        _ => None,
    }
}

/// Packs the transport (IPPROTO_UDP or IPPROTO_TCP) and the client's port
/// into one argument of a global function (which takes at most five).
#[inline(always)]
pub fn transport_and_port(transport: u8, port: u16) -> u32 {
    (transport as u32) << 16 | port as u32
}

/// Records the DNS queries in a packet to a resolver's port 53 (transport
/// header at `l4`): the UDP payload, or each whole message at a tracked
/// place of a TCP stream (the SYN starts the tracking).
#[inline(always)]
pub fn record_queries(ctx: &SkBuffContext, protocol: u8, l4: u32) -> Option<()> {
    let ports: [u8; 2] = load(ctx, l4)?;
    let client_port = u16::from_be_bytes(ports);
    let skb = ctx.skb.skb;
    if protocol == IPPROTO_UDP {
        let start = l4 + 8;
        // SAFETY: valid context.
        let len = unsafe { (*skb).len }.checked_sub(start)?;
        ram_record_query(skb, start, len, transport_and_port(IPPROTO_UDP, client_port));
    } else if protocol == IPPROTO_TCP {
        ram_track_queries(skb, l4, client_port as u32);
    }
    Some(())
}

/// The queries of a TCP segment to a resolver (header at `l4`), each at a
/// tracked place of its stream. A global function, verified once.
#[no_mangle]
#[inline(never)]
pub extern "C" fn ram_track_queries(skb: *mut __sk_buff, l4: u32, client_port: u32) -> u32 {
    let ctx = SkBuffContext::new(skb);
    let tracked = each_message(&ctx, scope(), l4, Direction::Queries, |start, len| {
        ram_record_query(skb, start, len, transport_and_port(IPPROTO_TCP, client_port as u16));
    });
    u32::from(tracked.is_some())
}

/// Records the DNS query of `len` bytes at `start` of this packet, which
/// goes from the client (the packet's source, `transport_port`'s port) to a
/// resolver (its destination). Queries that do not parse are ignored.
///
/// A global function: the verifier checks it once, and the egress program
/// calls it for each query of a TCP segment at one instruction each.
#[no_mangle]
#[inline(never)]
pub extern "C" fn ram_record_query(skb: *mut __sk_buff, start: u32, len: u32, transport_port: u32) -> u32 {
    let ctx = SkBuffContext::new(skb);
    u32::from(record_query(&ctx, start, len, transport_port).is_some())
}

#[inline(always)]
fn record_query(ctx: &SkBuffContext, start: u32, len: u32, transport_port: u32) -> Option<()> {
    if len < HEADER_LEN || !trusted_socket(ctx.skb.skb, scope()) {
        return None;
    }
    let len = if len > WINDOW as u32 { WINDOW as u32 } else { len };
    let len = ((len - 1) & WINDOW_MASK as u32) + 1;
    let family = packet_family(ctx)?;
    let scratch = RAM_QUERY_SCRATCH.get_ptr_mut(0)?;
    // SAFETY: this CPU's scratch, used by one egress run at a time.
    let scratch = unsafe { &mut *scratch };
    // SAFETY: `len` is within [1, WINDOW], the size of `msg`.
    let rc = unsafe { bpf_skb_load_bytes(ctx.skb.skb as *const _, start, scratch.msg.as_mut_ptr() as *mut _, len) };
    if rc != 0 {
        return None;
    }
    put(&mut scratch.vars.len, len);
    let question = parse_query(&scratch.msg, get(&scratch.vars.len), &mut scratch.key, &mut scratch.vars).ok()?;
    // The key and value are built in the scratch, not on the stack: this
    // function's stack adds to its caller's, and the two share 512 bytes.
    // The resolver is the destination, the client the source.
    scratch.query = QueryKey::default();
    scratch.query.scope = scope();
    scratch.query.family = family;
    scratch.query.transport = (transport_port >> 16) as u8;
    scratch.query.client_port = transport_port as u16;
    scratch.query.id = question.id;
    scratch.query.qtype = question.qtype;
    let v4 = family == 4;
    let (resolver_at, client_at, size) = (destination_at(v4), source_at(v4), if v4 { 4 } else { 16 });
    // SAFETY: both fields are 16 writable bytes; `size` is 4 or 16.
    let loaded = unsafe {
        bpf_skb_load_bytes(ctx.skb.skb as *const _, resolver_at, scratch.query.resolver.as_mut_ptr() as *mut _, size)
            | bpf_skb_load_bytes(ctx.skb.skb as *const _, client_at, scratch.query.client.as_mut_ptr() as *mut _, size)
    };
    if loaded != 0 {
        return None;
    }
    // SAFETY: helper without preconditions.
    scratch.sent = QueryValue { host_id: question.name.host_id, sent_ns: unsafe { bpf_ktime_get_ns() } };
    RAM_QUERIES.insert(&scratch.query, &scratch.sent, 0).ok()
}

/// Does an answer (from `resolver` to `client_port`, with this id, type and
/// question name) answer a query this scope sent, recently enough? A match
/// is removed: one query teaches once.
#[inline(always)]
pub fn answers_a_query(key: &QueryKey, host_id: u64, window_ms: u32) -> bool {
    // SAFETY: the value is copied out before the entry is removed.
    let Some(query) = (unsafe { RAM_QUERIES.get(key) }).copied() else {
        return false;
    };
    let _ = RAM_QUERIES.remove(key);
    // SAFETY: helper without preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    let window_ms = if window_ms == 0 { DNS_ANSWER_WINDOW_MS } else { window_ms };
    query.host_id == host_id && now.wrapping_sub(query.sent_ns) <= window_ms as u64 * 1_000_000
}
