//! cgroup_skb/egress: the backstop for packets that skip or fool the
//! sock_addr hooks — raw and ping sockets, IPv4 source-route options and
//! IPv6 routing headers (set before or after connect, or per message), a
//! connected socket whose packets leave for another address. It judges the
//! address actually written in the IP header and every hop a source route
//! or routing header names, whatever the socket's state.
//!
//! The fast path: a TCP packet of a stream socket's connection past SYN_SENT, with no IP
//! options or IPv6 extension headers, going to the socket's own peer and
//! port, passes without a map lookup — connect() judged that peer, and a
//! connection is never cut when its learned address expires. Everything
//! else is judged with lenient expiry (an entry still in the map allows).

use aya_ebpf::{
    bindings::{__sk_buff, bpf_sock, BPF_TCP_LISTEN, BPF_TCP_SYN_SENT},
    helpers::generated::{bpf_sk_fullsock, bpf_skb_cgroup_id},
    programs::SkBuffContext,
};
use ram_common::{
    bounded::{get, put},
    event::HOOK_EGRESS,
    maps::counter,
};

use crate::{
    judge::{allowed, audit_lets_through, is_resolver, Attempt, Dest, Expiry, DNS_PORT},
    maps::{count, member_level, scope, skb_task_info, QueryScratch, RAM_QUERY_SCRATCH},
    queries::record_queries,
    trust::{dns_socket, unjudged_socket, Unjudged},
    skb::{
        destination_at, load, load_dest, source_at, ETH_P_IP, ETH_P_IPV6, IPPROTO_TCP, IPPROTO_UDP, SOCK_RAW, SOCK_STREAM,
    },
};

const PASS: i32 = 1;
const DROP: i32 = 0;

const IPPROTO_ICMPV6: u8 = 58;
const IPPROTO_ICMP: u8 = 1;
const TCP_FIN: u8 = 0x01;
const TCP_SYN: u8 = 0x02;
const TCP_PSH: u8 = 0x08;
const IPPROTO_HOPOPTS: u8 = 0;
const IPPROTO_ROUTING: u8 = 43;
const IPPROTO_DSTOPTS: u8 = 60;
/// IPv4 loose and strict source route options.
const IPOPT_LSRR: u8 = 131;
const IPOPT_SSRR: u8 = 137;
const IPOPT_END: u8 = 0;
const IPOPT_NOOP: u8 = 1;
/// Options of an IPv4 header walked at most: 40 bytes hold at most 40
/// (one-byte NOOPs), so every option is reached.
const MAX_IPV4_OPTIONS: u32 = 40;
/// Addresses in an IPv4 source route (40 bytes of options hold 9).
const MAX_IPV4_HOPS: u32 = 9;
/// IPv6 extension headers walked before the transport header; a packet
/// with more, or with a routing header of more hops, is dropped.
const MAX_EXTENSION_HEADERS: u32 = 4;
const MAX_IPV6_HOPS: u32 = 8;
/// Hops judged besides the destination at most.
const MAX_HOPS: u32 = if MAX_IPV4_HOPS > MAX_IPV6_HOPS { MAX_IPV4_HOPS } else { MAX_IPV6_HOPS };
/// A route whose hops ram cannot read whole (malformed options, too many
/// extension headers or hops): refused.
const UNKNOWN_HOPS: u32 = u32::MAX;

/// Where a packet goes: its destination, IP protocol, destination port for
/// TCP/UDP (0 otherwise), where the transport header starts, and where the
/// hops of a source route or routing header are (count 0: none).
struct Route {
    dest: Dest,
    protocol: u8,
    port: u16,
    l4: u32,
    /// True when the IP header carries options or extension headers.
    extended: bool,
    hops_at: u32,
    hops: u32,
}

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
    // SAFETY: non-null full socket returned by the helper.
    let (sk_protocol, sk_type, sk_state) = unsafe { ((*full).protocol, (*full).type_, (*full).state) };
    // A TCP connection's own socket. A raw socket of protocol TCP (CAP_NET_RAW)
    // can be connect()ed to any address with no connect hook run, and its
    // state then reads as established (red team 17): it is judged.
    let tcp_stream = sk_protocol == IPPROTO_TCP as u32 && sk_type == SOCK_STREAM;
    if tcp_stream && sk_state == BPF_TCP_LISTEN {
        // A listener's SYN-ACK (recent kernels give the listener, not the
        // request socket, as its owner): the answer to a connection someone
        // else opened. A listener sends nothing else.
        return PASS;
    }
    if tcp_stream && sk_state != BPF_TCP_SYN_SENT && plain_segment_to_peer(ctx, full) {
        return PASS;
    }
    // Where the packet goes, into this CPU's scratch (a global function:
    // its working memory is not added to this program's stack).
    let found = ram_find_route(skb);
    if get(&found) == 0 {
        return PASS;
    }
    let Some(scratch) = RAM_QUERY_SCRATCH.get_ptr_mut(0) else {
        return PASS;
    };
    // SAFETY: this CPU's scratch, used by one egress run at a time.
    let scratch = unsafe { &*scratch };
    if get(&scratch.route.from_resolver) != 0 {
        // Sent as a resolver (see `sent_as_resolver`), whatever the socket's
        // state: refused before anything else looks at it.
        return refused(skb);
    }
    // DNS queries to a resolver are recorded whatever the TCP state: DNS
    // over TCP sends its queries on an established connection (and its SYN
    // starts the tracking). Only packets to port 53 pay for the call.
    if get(&scratch.route.port) as u16 == DNS_PORT {
        ram_record_dns(skb);
    }
    if tcp_stream
        && sk_state != BPF_TCP_SYN_SENT
        && get(&scratch.route.extended) == 0
        && goes_to_peer(full, scratch)
    {
        return PASS;
    }
    let scope = scope();
    match unjudged_socket(skb, scope) {
        Unjudged::OtherNetns => {
            count(scope, counter::OTHER_NETNS_PASSED);
            return PASS;
        }
        Unjudged::ForwarderToPeer if get(&scratch.route.extended) == 0 && goes_to_peer(full, scratch) => {
            return PASS;
        }
        Unjudged::ForwarderReplies
            if get(&scratch.route.extended) == 0 && get(&scratch.route.protocol) == IPPROTO_UDP as u32 =>
        {
            return PASS;
        }
        // SAFETY: non-null full socket returned by the helper.
        Unjudged::NotNoted if unsafe { (*full).type_ } == SOCK_RAW && kernel_answer(ctx, scratch) => {
            return PASS;
        }
        _ => {}
    }
    // The verifier knows nothing of a global function's result: map it
    // back onto the two verdicts (through memory, so that the compiler,
    // which can see the function returns only those, keeps the mapping).
    let verdict = ram_judge_route(skb);
    if get(&verdict) == PASS as u32 {
        return PASS;
    }
    refused(skb)
}

/// The fast path, before anything is written to the scratch: a TCP
/// segment of a connection past SYN_SENT, with no IP options or IPv6
/// extension headers, going to the socket's own peer and port, and neither
/// from nor to port 53. It passes as the full path would pass it (the
/// same test after `ram_find_route`), with one header read: a segment from
/// port 53 may be one sent as a resolver (refused, `sent_as_resolver`), and
/// one to port 53 carries DNS queries to record; both take the full path.
#[inline(always)]
fn plain_segment_to_peer(ctx: &SkBuffContext, sk: *mut bpf_sock) -> bool {
    // SAFETY: valid context.
    let family = u16::from_be(unsafe { (*ctx.skb.skb).protocol } as u16);
    // SAFETY: a full socket from bpf_sk_fullsock; the kernel rewrites these
    // reads into reads of the socket (ports in network order in the low
    // 16 bits of dst_port, as the packet's bytes).
    let peer_port = u16::from_be(unsafe { (*sk).dst_port });
    let plain_ports = |ports: [u8; 4]| {
        let (source, dest) = (u16::from_be_bytes([ports[0], ports[1]]), u16::from_be_bytes([ports[2], ports[3]]));
        dest == peer_port && source != DNS_PORT && dest != DNS_PORT
    };
    if family == ETH_P_IP {
        let Some(ip) = load::<24>(ctx, 0) else { return false };
        // SAFETY: as above.
        let peer = unsafe { (*sk).dst_ip4 }.to_ne_bytes();
        ip[0] == 0x45 && ip[9] == IPPROTO_TCP && ip[16..20] == peer && plain_ports([ip[20], ip[21], ip[22], ip[23]])
    } else if family == ETH_P_IPV6 {
        let Some(ip) = load::<44>(ctx, 0) else { return false };
        // SAFETY: as above.
        let peer = unsafe { (*sk).dst_ip6 };
        let word = |i: usize| u32::from_ne_bytes([ip[i], ip[i + 1], ip[i + 2], ip[i + 3]]);
        ip[6] == IPPROTO_TCP
            && peer[0] == word(24)
            && peer[1] == word(28)
            && peer[2] == word(32)
            && peer[3] == word(36)
            && plain_ports([ip[40], ip[41], ip[42], ip[43]])
    } else {
        false
    }
}

/// Is this raw socket's packet an answer of the kind the kernel's own
/// control sockets send: a TCP reset or bare ACK, an ICMP echo reply or
/// error? A network namespace made by an enforced process (a container's,
/// made by runc in dockerd's cgroup v2 on a hybrid host) gets control
/// sockets in that process's cgroup on some kernels (5.10), which no
/// sock_create hook sees: their answers pass. A process's own raw sockets
/// are noted when made (sock_create), so theirs are judged, answers too.
#[inline(always)]
fn kernel_answer(ctx: &SkBuffContext, scratch: &QueryScratch) -> bool {
    let (protocol, l4) = (get(&scratch.route.protocol) as u8, get(&scratch.route.l4));
    match protocol {
        IPPROTO_TCP => load::<14>(ctx, l4).is_some_and(|tcp| {
            // A reset or a bare ACK: no payload after the TCP header.
            // SAFETY: valid context.
            let len = unsafe { (*ctx.skb.skb).len };
            tcp[13] & (TCP_SYN | TCP_FIN | TCP_PSH) == 0 && len == l4 + ((tcp[12] >> 4) as u32) * 4
        }),
        IPPROTO_ICMP => load::<1>(ctx, l4).is_some_and(|icmp| matches!(icmp[0], 0 | 3 | 11 | 12)),
        IPPROTO_ICMPV6 => load::<1>(ctx, l4).is_some_and(|icmp| matches!(icmp[0], 1..=4 | 129)),
        _ => false,
    }
}

/// Counts, logs and (unless the scope audits) drops a refused packet: the
/// hop that was refused is in the scratch. (Called from the program, not
/// from the judging function: each has a stack of its own, and a chain of
/// calls shares 512 bytes.)
#[inline(always)]
fn refused(skb: *mut __sk_buff) -> i32 {
    let refused = ram_refuse_route(skb);
    if get(&refused) == PASS as u32 {
        PASS
    } else {
        DROP
    }
}

/// Finds where the packet goes ([`route`]) and leaves it in this CPU's
/// scratch: 1, or 0 for a packet that passes unjudged.
#[no_mangle]
#[inline(never)]
pub extern "C" fn ram_find_route(skb: *mut __sk_buff) -> u32 {
    let ctx = SkBuffContext::new(skb);
    // SAFETY: valid context.
    let family = u16::from_be(unsafe { (*skb).protocol } as u16);
    let Some(route) = route(&ctx, family) else {
        return 0;
    };
    let Some(scratch) = RAM_QUERY_SCRATCH.get_ptr_mut(0) else {
        return 0;
    };
    // SAFETY: this CPU's scratch, used by one egress run at a time.
    let scratch = unsafe { &mut *scratch };
    let (_, addr) = route.dest.wire_bytes();
    put(&mut scratch.route.addr, addr);
    put(&mut scratch.route.v4, u32::from(route.dest.is_v4()));
    put(&mut scratch.route.protocol, route.protocol as u32);
    put(&mut scratch.route.port, route.port as u32);
    put(&mut scratch.route.l4, route.l4);
    put(&mut scratch.route.extended, u32::from(route.extended));
    put(&mut scratch.route.hops_at, route.hops_at);
    put(&mut scratch.route.hops, route.hops);
    // The header's destination, where a refusal of the whole packet points.
    put(&mut scratch.route.refused_at, destination_at(route.dest.is_v4()));
    put(
        &mut scratch.route.from_resolver,
        u32::from(sent_as_resolver(&ctx, route.dest.is_v4(), route.protocol, route.l4)),
    );
    // Docker's embedded DNS: a container asks 127.0.0.11 port 53, and the
    // NAT rules Docker writes into the container's namespace send the
    // packet on to the port dockerd listens on before this hook sees it.
    // The socket asked for the resolver's port 53 (judged at connect or
    // sendmsg, and noted as a DNS socket there; a send elsewhere from it is
    // judged anew): it still goes to the resolver, as port 53, for the
    // query's record and for the verdict. Container targets only, and only
    // for a packet without a source route (whose every hop would otherwise
    // be judged as port 53).
    if member_level() != 0
        && route.port != DNS_PORT
        && route.hops == 0
        && !route.extended
        && is_resolver(scope(), route.dest)
        && dns_socket(skb)
    {
        put(&mut scratch.route.port, DNS_PORT as u32);
    }
    1
}

/// Does the packet leave from a configured resolver's address and port 53?
/// Only the resolver may: an enforced process that sent as one (its port
/// free, or by any other way) would answer its own queries.
#[inline(always)]
fn sent_as_resolver(ctx: &SkBuffContext, v4: bool, protocol: u8, l4: u32) -> bool {
    if protocol != IPPROTO_TCP && protocol != IPPROTO_UDP {
        return false;
    }
    let Some(ports) = load::<2>(ctx, l4) else { return true };
    if u16::from_be_bytes(ports) != DNS_PORT {
        return false;
    }
    load_dest(ctx, v4, source_at(v4)).is_none_or(|source| is_resolver(scope(), source))
}

/// Judges the route held in this CPU's scratch: the destination and every
/// hop, through one call of [`allowed`]; PASS, or DROP with the refused hop
/// left in the scratch (`route.refused_at`: its offset in the packet). A
/// global function: the verifier checks it once, on its own (kernels
/// before 5.16 spent minutes on it inline).
#[no_mangle]
#[inline(never)]
pub extern "C" fn ram_judge_route(skb: *mut __sk_buff) -> u32 {
    let ctx = SkBuffContext::new(skb);
    let Some(scratch) = RAM_QUERY_SCRATCH.get_ptr_mut(0) else {
        return PASS as u32;
    };
    // SAFETY: this CPU's scratch, used by one egress run at a time.
    let scratch = unsafe { &mut *scratch };
    judge_every_hop(&ctx, scope(), scratch).unwrap_or(PASS) as u32
}

/// Counts, logs and (unless the scope audits) drops the packet whose hop
/// [`ram_judge_route`] refused: PASS or DROP.
#[no_mangle]
#[inline(never)]
pub extern "C" fn ram_refuse_route(skb: *mut __sk_buff) -> u32 {
    let ctx = SkBuffContext::new(skb);
    let Some(scratch) = RAM_QUERY_SCRATCH.get_ptr_mut(0) else {
        return DROP as u32;
    };
    // SAFETY: as above.
    let scratch = unsafe { &*scratch };
    let (protocol, port, at) =
        (get(&scratch.route.protocol) as u8, get(&scratch.route.port) as u16, get(&scratch.route.refused_at));
    match load_dest(&ctx, get(&scratch.route.v4) != 0, at) {
        Some(hop) => refuse(&ctx, scope(), hop, protocol, port) as u32,
        None => DROP as u32,
    }
}

#[inline(always)]
fn judge_every_hop(ctx: &SkBuffContext, scope: u32, scratch: &mut QueryScratch) -> Option<i32> {
    // (`route.refused_at` points at the header's destination already: set
    // where the route was found.)
    if get(&scratch.route.hops) == UNKNOWN_HOPS {
        // A route ram cannot read whole: its hops are unknown.
        return Some(DROP);
    }
    put(&mut scratch.route.next, 0);
    for _ in 0..=MAX_HOPS {
        let i = get(&scratch.route.next);
        if i > get(&scratch.route.hops) || i > MAX_HOPS {
            break;
        }
        let v4 = get(&scratch.route.v4) != 0;
        // Hop 0 is the destination written in the header.
        let at = match (i, v4) {
            (0, _) => destination_at(v4),
            (_, true) => get(&scratch.route.hops_at) + (i - 1) * 4,
            (_, false) => get(&scratch.route.hops_at) + (i - 1) * 16,
        };
        // (Written out, not through `load_dest`: that form makes the
        // compiler zero the address through a memset the verifier takes
        // for an endless loop.)
        let hop = if v4 { Dest::v4(load::<4>(ctx, at)?) } else { Dest::v6(load::<16>(ctx, at)?) };
        let port = get(&scratch.route.port) as u16;
        if !allowed(scope, hop, port, Expiry::Lenient) {
            put(&mut scratch.route.refused_at, at);
            return Some(DROP);
        }
        put(&mut scratch.route.next, i + 1);
    }
    Some(PASS)
}

/// Counts, logs and (unless the scope audits) drops the packet.
#[inline(always)]
fn refuse(ctx: &SkBuffContext, scope: u32, dest: Dest, protocol: u8, port: u16) -> i32 {
    let attempt = Attempt {
        task_info: skb_task_info(),
        dest,
        port,
        protocol,
        hook: HOOK_EGRESS,
        // SAFETY: valid context.
        cgroup_id: unsafe { bpf_skb_cgroup_id(ctx.skb.skb) },
    };
    if audit_lets_through(ctx, scope, &attempt, counter::EGRESS_DROPPED) {
        PASS
    } else {
        DROP
    }
}

/// Does the packet (its route in the scratch) go to the socket's own
/// connected peer and port?
#[inline(always)]
fn goes_to_peer(sk: *mut bpf_sock, scratch: &QueryScratch) -> bool {
    // SAFETY: a full socket from bpf_sk_fullsock; the kernel rewrites these
    // reads into reads of the socket.
    let peer_port = u16::from_be(unsafe { (*sk).dst_port });
    if peer_port as u32 != get(&scratch.route.port) {
        return false;
    }
    let addr = &scratch.route.addr;
    let word = |i: usize| u32::from_ne_bytes([get(&addr[i]), get(&addr[i + 1]), get(&addr[i + 2]), get(&addr[i + 3])]);
    if get(&scratch.route.v4) != 0 {
        // SAFETY: as above.
        return unsafe { (*sk).dst_ip4 } == word(0);
    }
    // SAFETY: as above.
    let peer = unsafe { (*sk).dst_ip6 };
    peer[0] == word(0) && peer[1] == word(4) && peer[2] == word(8) && peer[3] == word(12)
}

/// Records the DNS queries of a packet to a resolver's port 53 (the route
/// in this CPU's scratch). A global function, verified once.
#[no_mangle]
#[inline(never)]
pub extern "C" fn ram_record_dns(skb: *mut __sk_buff) -> u32 {
    let ctx = SkBuffContext::new(skb);
    let Some(scratch) = RAM_QUERY_SCRATCH.get_ptr_mut(0) else {
        return 0;
    };
    // SAFETY: this CPU's scratch, used by one egress run at a time.
    let scratch = unsafe { &*scratch };
    if get(&scratch.route.port) as u16 != DNS_PORT {
        return 0;
    }
    let addr = get(&scratch.route.addr);
    let dest =
        if get(&scratch.route.v4) != 0 { Dest::v4([addr[0], addr[1], addr[2], addr[3]]) } else { Dest::v6(addr) };
    if !is_resolver(scope(), dest) {
        return 0;
    }
    let (protocol, l4) = (get(&scratch.route.protocol) as u8, get(&scratch.route.l4));
    u32::from(record_queries(&ctx, protocol, l4).is_some())
}

/// The destination written in the packet and where its hops are. None for
/// packets that must pass unjudged (IPv6 neighbour discovery, unknown
/// families).
#[inline(always)]
fn route(ctx: &SkBuffContext, family: u16) -> Option<Route> {
    if family == ETH_P_IP {
        let ip: [u8; 20] = load(ctx, 0)?;
        let header_len = ((ip[0] & 0x0f) as u32) * 4;
        let protocol = ip[9];
        let dest = Dest::v4([ip[16], ip[17], ip[18], ip[19]]);
        let port = transport_port(ctx, protocol, header_len);
        let (hops_at, hops) = if header_len > 20 {
            let found = ram_ipv4_source_route(ctx.skb.skb, header_len);
            match found & 0xffff {
                UNKNOWN_HOPS_PACKED => (0, UNKNOWN_HOPS),
                count => (found >> 16, count),
            }
        } else {
            (0, 0)
        };
        Some(Route { dest, protocol, port, l4: header_len, extended: header_len > 20, hops_at, hops })
    } else if family == ETH_P_IPV6 {
        let ip: [u8; 40] = load(ctx, 0)?;
        let mut addr = [0u8; 16];
        addr.copy_from_slice(&ip[24..40]);
        let (protocol, l4, hops_at, hops) = ipv6_extensions(ctx, ip[6]);
        // Router/neighbour solicitation and advertisement, redirects and
        // multicast listener messages keep the link working: they pass
        // unjudged to link-local and multicast destinations only (fe80::/10,
        // ff00::/8), never to an address a payload could be carried to.
        let link_scope = addr[0] == 0xff || (addr[0] == 0xfe && addr[1] & 0xc0 == 0x80);
        if protocol == IPPROTO_ICMPV6 && l4 == 40 && link_scope {
            let icmp: [u8; 1] = load(ctx, 40)?;
            if matches!(icmp[0], 130..=137 | 143) {
                return None;
            }
        }
        let port = transport_port(ctx, protocol, l4);
        Some(Route { dest: Dest::v6(addr), protocol, port, l4, extended: l4 != 40, hops_at, hops })
    } else {
        None
    }
}

/// [`ipv4_source_route`] as a global function (the verifier walks its
/// option loop once, on its own): offset << 16 | count, or
/// UNKNOWN_HOPS_PACKED.
#[no_mangle]
#[inline(never)]
pub extern "C" fn ram_ipv4_source_route(skb: *mut __sk_buff, header_len: u32) -> u32 {
    let ctx = SkBuffContext::new(skb);
    match ipv4_source_route(&ctx, header_len) {
        (_, UNKNOWN_HOPS) => UNKNOWN_HOPS_PACKED,
        (at, count) => at << 16 | count,
    }
}

/// UNKNOWN_HOPS in the packed result of [`ram_ipv4_source_route`].
const UNKNOWN_HOPS_PACKED: u32 = 0xffff;

/// The addresses of an IPv4 loose or strict source route option: (offset,
/// count). A malformed option list gives UNKNOWN_HOPS.
#[inline(always)]
fn ipv4_source_route(ctx: &SkBuffContext, header_len: u32) -> (u32, u32) {
    let mut off = 20u32;
    for _ in 0..MAX_IPV4_OPTIONS {
        if off >= header_len {
            break;
        }
        let Some([kind]) = load::<1>(ctx, off) else {
            return (0, UNKNOWN_HOPS);
        };
        if kind == IPOPT_END {
            break;
        }
        if kind == IPOPT_NOOP {
            off += 1;
            continue;
        }
        let Some([_, len]) = load::<2>(ctx, off) else {
            return (0, UNKNOWN_HOPS);
        };
        let len = len as u32;
        if len < 2 || off + len > header_len {
            return (0, UNKNOWN_HOPS);
        }
        if kind == IPOPT_LSRR || kind == IPOPT_SSRR {
            // type, length, pointer, then the addresses.
            return (off + 3, len.saturating_sub(3) / 4);
        }
        off += len;
    }
    if off < header_len {
        // Options left unread: a source route may hide among them.
        return (0, UNKNOWN_HOPS);
    }
    (0, 0)
}

/// Walks the IPv6 extension headers: (transport protocol, where its header
/// starts, where the routing header's addresses are, how many). Hop-by-hop
/// and destination options are skipped; a chain longer than ram walks, or a
/// routing header of more hops than it judges, gives UNKNOWN_HOPS.
#[inline(always)]
fn ipv6_extensions(ctx: &SkBuffContext, first: u8) -> (u8, u32, u32, u32) {
    let (mut next, mut off) = (first, 40u32);
    let (mut hops_at, mut hops) = (0u32, 0u32);
    for _ in 0..MAX_EXTENSION_HEADERS {
        if next != IPPROTO_HOPOPTS && next != IPPROTO_ROUTING && next != IPPROTO_DSTOPTS {
            return (next, off, hops_at, hops);
        }
        let Some(header) = load::<2>(ctx, off) else {
            return (next, off, 0, UNKNOWN_HOPS);
        };
        let len = (header[1] as u32 + 1) * 8;
        if next == IPPROTO_ROUTING {
            // Every routing type the kernel sends (2: one home address; 4:
            // segment routing) lists 16-byte addresses from offset 8.
            let count = header[1] as u32 / 2;
            if count > MAX_IPV6_HOPS || hops != 0 {
                return (next, off, 0, UNKNOWN_HOPS);
            }
            hops_at = off + 8;
            hops = count;
        }
        next = header[0];
        off += len;
    }
    if next != IPPROTO_HOPOPTS && next != IPPROTO_ROUTING && next != IPPROTO_DSTOPTS {
        (next, off, hops_at, hops)
    } else {
        (next, off, 0, UNKNOWN_HOPS)
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
