//! connect4/6 and sendmsg4/6: judge the destination the caller asked for and
//! answer EPERM (return 0) when the policy does not allow it.

use aya_ebpf::{
    helpers::generated::{bpf_get_current_cgroup_id, bpf_get_current_pid_tgid, bpf_get_current_uid_gid},
    programs::{SockAddrContext, SockContext},
};
use ram_common::{
    event::{HOOK_CONNECT, HOOK_SENDMSG},
    maps::{counter, ForwardDest, ForwardKey, FORWARD_RELAY, SOCKET_FORWARDER, SOCKET_FORWARDER_REPLIES, SOCKET_RAW},
    verdict::v4_mapped,
};

use crate::{
    membership::judges_current,
    judge::{allowed, audit_lets_through, is_resolver, Attempt, Dest, Expiry, DNS_PORT},
    maps::{count, scope, sock_addr_task_info, RAM_FORWARDS},
    skb::{IPPROTO_UDP, SOCK_RAW},
    trust::{
        note_container_socket, note_dns_socket, note_privileged_socket, note_relay_socket, passes_other_netns,
        passes_relays, socket_ids,
    },
};

const ALLOW: i32 = 1;
const REJECT: i32 = 0;

#[inline(always)]
pub fn on_ipv4(ctx: &SockAddrContext, hook: u8) -> i32 {
    // SAFETY: the kernel hands every sock_addr program a valid context.
    let sa = unsafe { &*ctx.sock_addr };
    // user_ip4 holds the address in network order: its bytes in memory are
    // the address bytes.
    if hook == HOOK_SENDMSG && sa.user_ip4 == 0 && sa.user_port == 0 {
        // A send on a connected socket with a control message (IP_TOS,
        // IP_TTL, UDP_SEGMENT...): the kernel runs the hook with no
        // address. The packet goes to the socket's peer; judge that.
        // SAFETY: the kernel gives sock_addr programs a valid socket.
        let (peer, peer_port) = unsafe { ((*sa.__bindgen_anon_1.sk).dst_ip4, (*sa.__bindgen_anon_1.sk).dst_port) };
        let dest = Dest::v4(peer.to_ne_bytes());
        return judge(ctx, dest, u16::from_be(peer_port), sa.protocol as u8, hook, Expiry::Lenient);
    }
    let addr = sa.user_ip4.to_ne_bytes();
    judge(ctx, Dest::v4(addr), port_of(sa.user_port), sa.protocol as u8, hook, Expiry::Strict)
}

#[inline(always)]
pub fn on_ipv6(ctx: &SockAddrContext, hook: u8) -> i32 {
    // SAFETY: as above.
    let sa = unsafe { &*ctx.sock_addr };
    let no_address = (sa.user_ip6[0] | sa.user_ip6[1] | sa.user_ip6[2] | sa.user_ip6[3]) == 0 && sa.user_port == 0;
    let (words, port, expiry) = if hook == HOOK_SENDMSG && no_address {
        // As for IPv4: a connected socket's send with a control message.
        // SAFETY: the kernel gives sock_addr programs a valid socket.
        let sk = unsafe { &*sa.__bindgen_anon_1.sk };
        (sk.dst_ip6, u16::from_be(sk.dst_port), Expiry::Lenient)
    } else {
        (sa.user_ip6, port_of(sa.user_port), Expiry::Strict)
    };
    let mut addr = [0u8; 16];
    for (i, word) in words.iter().enumerate() {
        let bytes = word.to_ne_bytes();
        addr[i * 4] = bytes[0];
        addr[i * 4 + 1] = bytes[1];
        addr[i * 4 + 2] = bytes[2];
        addr[i * 4 + 3] = bytes[3];
    }
    // ::ffff:a.b.c.d reaches only the v6 hooks but leaves as IPv4.
    let dest = match v4_mapped(&addr) {
        Some(v4) => Dest::v4(v4),
        None => Dest::v6(addr),
    };
    judge(ctx, dest, port, sa.protocol as u8, hook, expiry)
}

/// `user_port` carries the port in network order in its low 16 bits.
#[inline(always)]
fn port_of(user_port: u32) -> u16 {
    u16::from_be(user_port as u16)
}

/// Judges `dest:port`. New destinations need an unexpired entry; a
/// connected socket's own peer (judged when it connected) is judged as the
/// egress backstop judges its packets, so a send with a control message
/// fares as the same send without one.
#[inline(always)]
fn judge(ctx: &SockAddrContext, dest: Dest, port: u16, protocol: u8, hook: u8, expiry: Expiry) -> i32 {
    if !judges_current() {
        // Not a container of this (container) target: not ours to judge.
        return ALLOW;
    }
    let scope = scope();
    let socket = socket_ids(ctx.sock_addr);
    if passes_other_netns(scope, socket.netns) {
        // A container's socket (see trust.rs): noted for egress, unjudged.
        note_container_socket(socket);
        count(scope, counter::OTHER_NETNS_PASSED);
        return ALLOW;
    }
    if port == DNS_PORT && is_resolver(scope, dest) {
        note_dns_socket(socket);
    }
    let (allowed_slot, blocked_slot) = if hook == HOOK_CONNECT {
        (counter::CONNECT_ALLOWED, counter::CONNECT_BLOCKED)
    } else {
        (counter::SENDMSG_ALLOWED, counter::SENDMSG_BLOCKED)
    };
    if allowed(scope, dest, port, expiry) {
        count(scope, allowed_slot);
        return ALLOW;
    }
    if hook == HOOK_CONNECT && forwards_to(scope, dest, port, protocol) {
        note_privileged_socket(socket, SOCKET_FORWARDER);
        count(scope, counter::FORWARD_ALLOWED);
        return ALLOW;
    }
    if hook == HOOK_SENDMSG && protocol == IPPROTO_UDP && answers_from(ctx, scope) {
        note_privileged_socket(socket, SOCKET_FORWARDER_REPLIES);
        count(scope, counter::FORWARD_ALLOWED);
        return ALLOW;
    }
    if relays(scope) {
        // Its containers' traffic: passes as theirs does (see trust.rs).
        note_relay_socket(socket);
        count(scope, counter::OTHER_NETNS_PASSED);
        return ALLOW;
    }
    let attempt = Attempt {
        task_info: sock_addr_task_info(),
        dest,
        port,
        protocol,
        hook,
        // SAFETY: helper without preconditions.
        cgroup_id: unsafe { bpf_get_current_cgroup_id() },
    };
    if audit_lets_through(ctx, scope, &attempt, blocked_slot) {
        ALLOW
    } else {
        REJECT
    }
}

/// The forward ramd registered for the calling process in this scope,
/// if it runs as the user ramd saw (root for docker-proxy and
/// aardvark-dns).
#[inline(always)]
fn own_forward(scope: u32) -> Option<ForwardDest> {
    // Where the kernel gives sock_addr programs no task helpers, there are
    // no forwarders (the calls below are dead code the verifier never sees).
    if !sock_addr_task_info() {
        return None;
    }
    // SAFETY: helper without preconditions.
    let tgid = (unsafe { bpf_get_current_pid_tgid() } >> 32) as u32;
    // SAFETY: read-only lookup, copied at once.
    let forward = unsafe { RAM_FORWARDS.get(&ForwardKey { tgid, scope }) }.copied()?;
    // The uid of the initial user namespace: another user at a reused pid,
    // or root of a user namespace for a root forwarder, is none.
    // SAFETY: helper without preconditions.
    let uid = unsafe { bpf_get_current_uid_gid() } as u32;
    (uid == forward.uid).then_some(forward)
}

/// Is the calling process a rootless runtime's network helper ramd
/// registered for this scope, and does the scope pass its containers?
#[inline(always)]
fn relays(scope: u32) -> bool {
    passes_relays(scope) && own_forward(scope).is_some_and(|forward| forward.family == FORWARD_RELAY)
}

/// Is this a UDP forwarder's send from the port it listens on (an answer
/// to a client, who wrote to that port first)?
#[inline(always)]
fn answers_from(ctx: &SockAddrContext, scope: u32) -> bool {
    let Some(forward) = own_forward(scope) else { return false };
    // SAFETY: the kernel gives sock_addr programs a valid socket; src_port
    // is in host order.
    let local_port = unsafe { (*(*ctx.sock_addr).__bindgen_anon_1.sk).src_port };
    forward.protocol == IPPROTO_UDP as u32 && forward.host_port != 0 && local_port == forward.host_port
}

/// Is the calling process a forwarder ramd registered for this scope
/// (docker-proxy), connecting to the one destination it forwards to?
#[inline(always)]
fn forwards_to(scope: u32, dest: Dest, port: u16, protocol: u8) -> bool {
    let Some(forward) = own_forward(scope) else { return false };
    let (family, addr) = dest.wire_bytes();
    forward.family == family as u32 && forward.port == port as u32 && forward.protocol == protocol as u32 && forward.addr == addr
}

/// sock_create: notes a socket created outside the runtime's namespace,
/// and every raw socket (whose answers egress judges only when noted; see
/// `egress::kernel_answer`).
#[inline(always)]
pub fn on_sock_create(ctx: &SockContext) {
    let socket = socket_ids(ctx.sock);
    // SAFETY: the kernel gives sock_create programs a valid socket.
    let raw = unsafe { (*ctx.sock).type_ } == SOCK_RAW;
    if passes_other_netns(scope(), socket.netns) {
        note_container_socket(socket);
    } else if relays(scope()) {
        // Its ICMP and raw sockets too, which no sendmsg hook sees.
        note_relay_socket(socket);
    } else if raw {
        note_privileged_socket(socket, SOCKET_RAW);
    }
}


