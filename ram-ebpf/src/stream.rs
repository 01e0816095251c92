//! DNS over TCP is a byte stream: a segment boundary is not a message
//! boundary. A process that owns a zone could otherwise make ram read a
//! query the resolver never received (bytes inside its own query, sent as
//! a segment of their own) or an answer the resolver never sent (bytes of
//! a TXT record, where the answer happens to be cut into segments).
//!
//! So each direction of a TCP connection to a resolver is followed from its
//! first byte: the client's SYN places the first query (its sequence number
//! + 1), the resolver's SYN-ACK the first answer, and every message's
//! two-byte length prefix places the next. Only a whole message that starts
//! at such a place is read. A direction whose place is lost (a length
//! prefix cut between segments, urgent data, more messages in a segment
//! than ram reads, a connection ram did not see start) teaches nothing more
//! on that connection; each such message is counted (`dns_tcp_split`).

use aya_ebpf::{helpers::generated::bpf_get_socket_cookie, macros::map, maps::LruHashMap, programs::SkBuffContext};
use ram_common::maps::{counter, StreamKey, StreamState, STREAMS_CAPACITY};

use crate::{maps::count, skb::load};

/// One scope's view of each TCP connection to a resolver. Private to the
/// program instance: a restarted ramd starts afresh, and connections it did
/// not see start teach nothing (fail closed).
#[map]
static RAM_DNS_STREAMS: LruHashMap<StreamKey, StreamState> = LruHashMap::with_max_entries(STREAMS_CAPACITY, 0);

const TCP_SYN: u8 = 0x02;
/// TCP option kinds: end of list, no-op, and Multipath TCP.
const TCPOPT_EOL: u8 = 0;
const TCPOPT_NOP: u8 = 1;
const TCPOPT_MPTCP: u8 = 30;
/// Option bytes of a TCP header at most (60 - 20).
const TCP_OPTION_BYTES: u32 = 40;
const TCP_URG: u8 = 0x20;
/// Messages read from one segment at most (glibc writes its A and AAAA
/// queries in one segment); a segment holding more loses the place.
const MESSAGES_PER_SEGMENT: u32 = 4;

const UNSEEN: u32 = 0;
const PLACED: u32 = 1;
const LOST: u32 = 2;

/// Which way a segment goes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the client to the resolver (egress).
    Queries,
    /// From the resolver to the client (ingress).
    Answers,
}

/// For the TCP segment whose header starts at `l4`: calls `handle(start,
/// len)` for every whole DNS message in it that starts at a place ram
/// tracked from the connection's first byte.
#[inline(always)]
pub fn each_message(
    ctx: &SkBuffContext,
    scope: u32,
    l4: u32,
    direction: Direction,
    mut handle: impl FnMut(u32, u32),
) -> Option<()> {
    // SAFETY: valid context.
    let skb_len = unsafe { (*ctx.skb.skb).len };
    let tcp: [u8; 20] = load(ctx, l4)?;
    let seq = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
    let flags = tcp[13];
    let payload = l4 + ((tcp[12] >> 4) as u32) * 4;
    let payload_len = skb_len.checked_sub(payload)?;
    // SAFETY: the helper takes the context; it names the packet's socket.
    let cookie = unsafe { bpf_get_socket_cookie(ctx.skb.skb as *mut _) };
    let key = StreamKey { cookie, scope, _pad: 0 };
    let syn = flags & TCP_SYN != 0;
    // The sequence number of this segment's first data byte.
    let data_seq = if syn { seq.wrapping_add(1) } else { seq };
    if syn && direction == Direction::Queries {
        // The client's SYN (or its retransmission): the first query is the
        // stream's first byte. (A TCP Fast Open SYN carries it.)
        let fresh = StreamState { query_next: data_seq, answer_next: 0, query_place: PLACED, answer_place: UNSEEN };
        RAM_DNS_STREAMS.insert(&key, &fresh, 0).ok()?;
    }
    let state = RAM_DNS_STREAMS.get_ptr_mut(&key);
    let Some(state) = state else {
        if payload_len > 0 {
            // A connection that started before ram saw it, or forgotten.
            boundary_lost(ctx, scope, direction);
        }
        return None;
    };
    // SAFETY: a live map value; each direction writes only its own fields
    // (the egress and ingress programs may run at once on two CPUs).
    let state = unsafe { &mut *state };
    if syn && direction == Direction::Answers && state.answer_place == UNSEEN {
        // The resolver's SYN-ACK, the first time: the first answer's place.
        state.answer_next = data_seq;
        state.answer_place = PLACED;
        if multipath(ctx, l4, payload) {
            // The resolver speaks Multipath TCP: its stream may be spread
            // over subflows (each with a socket of its own), so no
            // subflow's bytes are the stream. Nothing is read from it.
            state.answer_place = LOST;
            state.query_place = LOST;
        }
    }
    if payload_len == 0 {
        return Some(());
    }
    let (place, next) = match direction {
        Direction::Queries => (&mut state.query_place, &mut state.query_next),
        Direction::Answers => (&mut state.answer_place, &mut state.answer_next),
    };
    if *place != PLACED || flags & TCP_URG != 0 {
        // Urgent data leaves the resolver's view of the stream (it is read
        // out of band), so ram's and the resolver's places would differ.
        *place = LOST;
        boundary_lost(ctx, scope, direction);
        return None;
    }
    let mut at = *next;
    for _ in 0..MESSAGES_PER_SEGMENT {
        let offset = at.wrapping_sub(data_seq);
        // Before this segment (a gap: its bytes have not been seen yet) or
        // past it: nothing starts here.
        if (offset as i32) < 0 || offset >= payload_len {
            break;
        }
        if offset + 2 > payload_len {
            // The length prefix itself is cut: the place is lost.
            *place = LOST;
            boundary_lost(ctx, scope, direction);
            return None;
        }
        let prefix: [u8; 2] = load(ctx, payload + offset)?;
        let len = u16::from_be_bytes(prefix) as u32;
        if offset + 2 + len <= payload_len {
            handle(payload + offset + 2, len);
        } else {
            // The message goes on in later segments: not read (fail closed).
            boundary_lost(ctx, scope, direction);
        }
        at = at.wrapping_add(2 + len);
    }
    let offset = at.wrapping_sub(data_seq);
    if (offset as i32) >= 0 && offset < payload_len {
        // More messages in this segment than ram reads.
        *place = LOST;
        boundary_lost(ctx, scope, direction);
        return None;
    }
    *next = at;
    Some(())
}

/// Does the TCP header at `l4` (options up to `payload`) carry a Multipath
/// TCP option? A malformed option list counts as yes (fail closed).
#[inline(always)]
fn multipath(ctx: &SkBuffContext, l4: u32, payload: u32) -> bool {
    let mut off = l4 + 20;
    for _ in 0..TCP_OPTION_BYTES {
        if off >= payload {
            return false;
        }
        let Some([kind]) = load::<1>(ctx, off) else { return true };
        match kind {
            TCPOPT_EOL => return false,
            TCPOPT_NOP => off += 1,
            TCPOPT_MPTCP => return true,
            _ => {
                let Some([_, len]) = load::<2>(ctx, off) else { return true };
                if len < 2 {
                    return true;
                }
                off += len as u32;
            }
        }
    }
    true
}

/// Where the next message of a stream starts is unknown (a split, a gap,
/// urgent data, a stream ram did not see start): counted, and for answers
/// said in the kernel log.
#[inline(always)]
fn boundary_lost(ctx: &SkBuffContext, scope: u32, direction: Direction) {
    count(scope, counter::DNS_TCP_SPLIT);
    if direction == Direction::Answers {
        crate::diag::say!(ctx, crate::diag::why::TCP_BOUNDARY);
    }
}
