//! DNS queries in flight, so that only answers to them teach addresses.
//!
//! The egress program records each query a scope sends to a configured
//! resolver (id, question type, client port, resolver, question name);
//! the ingress program learns from an answer only when it matches such a
//! query of the same scope, from that resolver's port 53 to that client
//! port, within the scope's answer window. A match is used once.

use aya_ebpf::{
    helpers::generated::{bpf_ktime_get_ns, bpf_skb_load_bytes},
    programs::SkBuffContext,
};
use ram_common::{
    dns::{get, parse_query, put, HEADER_LEN, WINDOW, WINDOW_MASK},
    maps::{QueryKey, QueryValue, DNS_ANSWER_WINDOW_MS},
};

use crate::{
    judge::Dest,
    maps::{RAM_QUERIES, RAM_QUERY_SCRATCH},
    skb::{load, IPPROTO_TCP, IPPROTO_UDP},
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
    QueryKey { scope, client_port, id, qtype, family, _pad: 0, resolver, client }
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

/// Records the DNS query in this packet (to `resolver`:53, transport
/// header at `l4`). Packets that hold no whole query are ignored.
#[inline(always)]
pub fn record_query(ctx: &SkBuffContext, scope: u32, resolver: Dest, protocol: u8, l4: u32) -> Option<()> {
    // SAFETY: valid context.
    let skb_len = unsafe { (*ctx.skb.skb).len };
    let ports: [u8; 4] = load(ctx, l4)?;
    let client_port = u16::from_be_bytes([ports[0], ports[1]]);
    let start = if protocol == IPPROTO_UDP {
        l4 + 8
    } else if protocol == IPPROTO_TCP {
        let tcp: [u8; 13] = load(ctx, l4)?;
        // Past the header and the two-byte length prefix of DNS over TCP.
        l4 + ((tcp[12] >> 4) as u32) * 4 + 2
    } else {
        return None;
    };
    let len = skb_len.checked_sub(start)?;
    if len < HEADER_LEN {
        return None;
    }
    let len = if len > WINDOW as u32 { WINDOW as u32 } else { len };
    let len = ((len - 1) & WINDOW_MASK as u32) + 1;
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
    let (family, addr) = resolver.wire_bytes();
    // The source address: offset 12 in an IPv4 header, 8 in an IPv6 one.
    let client = header_address(ctx, family, if family == 4 { 12 } else { 8 })?;
    let key = query_key(scope, family, addr, client, client_port, question.id, question.qtype);
    // SAFETY: helper without preconditions.
    let value = QueryValue { host_id: question.name.host_id, sent_ns: unsafe { bpf_ktime_get_ns() } };
    RAM_QUERIES.insert(&key, &value, 0).ok()
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
