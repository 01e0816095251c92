//! Which sockets ram trusts for DNS and which it judges at all, by network
//! namespace.
//!
//! The resolvers are trusted by address, and an address means something
//! only in one network namespace: a process in an enforced cgroup that
//! makes a namespace of its own (an unprivileged user namespace suffices)
//! can own 127.0.0.53:53 there and answer itself. So the connect and
//! sendmsg hooks, which know a socket's namespace, note every socket that
//! talks to a resolver's port 53 with its namespace; a query counts, and an
//! answer teaches, only on a socket so noted in the trusted namespace (the
//! runtime's: ramd's own, or `[dns] netns`).
//!
//! A runtime's containers live in namespaces of their own; on hybrid hosts
//! their processes share the runtime's cgroup v2, and on every host the
//! runtime's embedded DNS server answers them from a socket in their
//! namespace. With `SCOPE_PASS_OTHER_NETNS` a socket outside the runtime's
//! namespace is theirs and passes unjudged. The hooks that know a socket's
//! namespace (sock_create, connect, sendmsg) note such sockets too; the
//! cgroup_skb programs cannot ask for a namespace on every kernel (5.10 has
//! no such helper there), so they look the socket up. A socket that is not
//! noted (evicted, or older than ram) is judged: fail closed.

use aya_ebpf::{
    bindings::__sk_buff,
    helpers::generated::{bpf_get_netns_cookie, bpf_get_socket_cookie},
    maps::LruHashMap,
};
use ram_common::maps::{
    Member, ScopeConfig, SocketNote, SCOPE_PASS_OTHER_NETNS, SCOPE_PASS_RELAYS, SOCKET_DNS, SOCKET_FORWARDER, SOCKET_FORWARDER_REPLIES,
    SOCKET_RELAY, TRUSTED_NETNS_ANY, TRUSTED_NETNS_INITIAL,
};

use crate::membership::skb_member;
use crate::maps::{scope_config, RAM_CONTAINER_SOCKETS, RAM_INITIAL_NETNS, RAM_PRIVILEGED_SOCKETS, RAM_SOCKETS};

/// A socket's identity as the sock_addr and sock_create hooks see it.
#[derive(Clone, Copy)]
pub struct SocketIds {
    pub cookie: u64,
    pub netns: u64,
}

/// A socket's cookie and its network namespace's, from a sock_addr
/// (connect/sendmsg) or sock_create context; also notes the initial
/// namespace's cookie for the cgroup_skb programs.
#[inline(always)]
pub fn socket_ids<C>(ctx: *mut C) -> SocketIds {
    // SAFETY: both helpers take either program type's context, or NULL for
    // the initial namespace.
    let (cookie, netns, initial) = unsafe {
        (
            bpf_get_socket_cookie(ctx as *mut _),
            bpf_get_netns_cookie(ctx as *mut _),
            bpf_get_netns_cookie(core::ptr::null_mut()),
        )
    };
    note_initial(initial);
    SocketIds { cookie, netns }
}

#[inline(always)]
fn note_initial(initial: u64) {
    if RAM_INITIAL_NETNS.get(0).copied() == Some(initial) {
        return;
    }
    if let Some(slot) = RAM_INITIAL_NETNS.get_ptr_mut(0) {
        // SAFETY: a live map value; the cookie never changes.
        unsafe { *slot = initial };
    }
}

/// The cookie of the scope's runtime namespace; 0 when it is none or not
/// known yet (a restarted ramd's programs before any hook ran).
#[inline(always)]
fn runtime_netns(config: &ScopeConfig) -> u64 {
    match config.trusted_netns {
        TRUSTED_NETNS_INITIAL => RAM_INITIAL_NETNS.get(0).copied().unwrap_or(0),
        cookie => cookie,
    }
}

/// Is `netns` another namespace than the scope's runtime's, whose sockets
/// the scope passes unjudged?
#[inline(always)]
pub fn passes_other_netns(scope: u32, netns: u64) -> bool {
    let config = scope_config(scope);
    if config.flags & SCOPE_PASS_OTHER_NETNS == 0 {
        return false;
    }
    let runtime = runtime_netns(&config);
    runtime != 0 && netns != 0 && netns != runtime
}

/// Does the scope pass its containers, and the sockets a rootless
/// runtime's network helper (slirp4netns, pasta) makes for them
/// (`rootless_helpers = "pass"`)? Such a helper runs in the runtime's
/// namespace and carries, from sockets of its own, what its containers
/// send; ramd registers it (`RAM_FORWARDS`, `FORWARD_RELAY`) once it has
/// checked it runs the host's program.
#[inline(always)]
pub fn passes_relays(scope: u32) -> bool {
    let wanted = SCOPE_PASS_OTHER_NETNS | SCOPE_PASS_RELAYS;
    scope_config(scope).flags & wanted == wanted
}

/// Writes a socket's note into `map`, unless that very note is there.
#[inline(always)]
fn note(map: &LruHashMap<u64, SocketNote>, ids: SocketIds, flags: u32) {
    let note = SocketNote { netns: ids.netns, flags, _pad: 0 };
    // SAFETY: read-only lookup; the value is compared at once.
    if unsafe { map.get(&ids.cookie) }.is_some_and(|old| *old == note) {
        return;
    }
    let _ = map.insert(&ids.cookie, &note, 0);
}

/// Notes a DNS socket of the runtime's namespace.
#[inline(always)]
pub fn note_dns_socket(ids: SocketIds) {
    note(&RAM_SOCKETS, ids, SOCKET_DNS);
}

/// Notes a socket only privilege can make (a registered forwarder's, a raw
/// one) in a map of their own: a flood of ordinary sockets cannot evict it.
#[inline(always)]
pub fn note_privileged_socket(ids: SocketIds, flags: u32) {
    note(&RAM_PRIVILEGED_SOCKETS, ids, flags);
}

/// Notes a socket outside the runtime's namespace, in a map of their own:
/// however many a container makes, the runtime's notes stay.
#[inline(always)]
pub fn note_container_socket(ids: SocketIds) {
    note(&RAM_CONTAINER_SOCKETS, ids, 0);
}

/// Notes a socket of a rootless runtime's network helper, with the
/// containers' own: that map is the one a flood is expected in (a
/// container can make the helper open sockets at will).
#[inline(always)]
pub fn note_relay_socket(ids: SocketIds) {
    note(&RAM_CONTAINER_SOCKETS, ids, SOCKET_RELAY);
}

#[inline(always)]
fn skb_cookie(skb: *mut __sk_buff) -> u64 {
    // SAFETY: the helper takes the skb context.
    unsafe { bpf_get_socket_cookie(skb as *mut _) }
}

/// The runtime-side note of the packet's socket, if any.
#[inline(always)]
fn skb_note(skb: *mut __sk_buff) -> Option<SocketNote> {
    // SAFETY: read-only lookup, copied at once.
    unsafe { RAM_SOCKETS.get(&skb_cookie(skb)) }.copied()
}

/// Did the packet's socket send to a resolver's port 53 (noted by the
/// connect and sendmsg hooks), in whatever namespace?
#[inline(always)]
pub fn dns_socket(skb: *mut __sk_buff) -> bool {
    skb_note(skb).is_some_and(|note| note.flags & SOCKET_DNS != 0)
}

/// Is the packet's socket one the hooks noted, talking to a resolver, in
/// the trusted namespace?
#[inline(always)]
pub fn trusted_socket(skb: *mut __sk_buff, scope: u32) -> bool {
    let config = scope_config(scope);
    let Some(note) = skb_note(skb) else { return false };
    if note.flags & SOCKET_DNS == 0 || note.netns == 0 {
        return false;
    }
    // A container target: each container's DNS is trusted in the one
    // namespace its runtime made for it (ramd writes that namespace's
    // cookie into its member entry). Nothing in it can answer as a
    // resolver: egress refuses every packet a judged socket sends from a
    // resolver's address and port 53 (`egress::sent_as_resolver`), and a
    // container's processes are all judged. A namespace the container made
    // itself is another matter: an unprivileged user namespace gives it
    // CAP_NET_RAW there, and frames no cgroup hook sees.
    if config.trusted_netns == TRUSTED_NETNS_ANY {
        return skb_member(skb).is_some_and(|member| member.netns != 0 && member.netns == note.netns);
    }
    let trusted = runtime_netns(&config);
    trusted != 0 && note.netns == trusted
}

/// What the egress program may skip judging for the packet's socket.
pub enum Unjudged {
    /// Judge it.
    No,
    /// No privileged note: for a raw socket, a kernel's control socket (or
    /// one made before ram, or evicted). Judged, but for the kernel's
    /// answers.
    NotNoted,
    /// A socket in another namespace than the runtime's (see the module).
    OtherNetns,
    /// A forwarder's socket: its packets to its own peer pass.
    ForwarderToPeer,
    /// A UDP forwarder's listening socket: its answers to clients pass.
    ForwarderReplies,
}

#[inline(always)]
pub fn unjudged_socket(skb: *mut __sk_buff, scope: u32) -> Unjudged {
    let cookie = skb_cookie(skb);
    // SAFETY: read-only lookups, copied at once.
    if let Some(note) = unsafe { RAM_CONTAINER_SOCKETS.get(&cookie) }.copied() {
        if passes_other_netns(scope, note.netns) || (note.flags & SOCKET_RELAY != 0 && passes_relays(scope)) {
            return Unjudged::OtherNetns;
        }
    }
    // SAFETY: as above. (DNS notes do not matter here: those sockets are
    // never raw, the one kind NotNoted lets anything through for.)
    match unsafe { RAM_PRIVILEGED_SOCKETS.get(&cookie) }.copied() {
        Some(note) if note.flags & SOCKET_FORWARDER != 0 => Unjudged::ForwarderToPeer,
        Some(note) if note.flags & SOCKET_FORWARDER_REPLIES != 0 => Unjudged::ForwarderReplies,
        Some(_) => Unjudged::No,
        None => Unjudged::NotNoted,
    }
}

/// Should the ingress program drop this packet of a container (`member`,
/// the entry the gate found) whose namespace ramd has not told yet?
/// Answers to its DNS sockets teach nothing until then; dropped, they make
/// its resolver ask again (a UDP retry, a TCP retransmission) instead of
/// handing the container an address it may not connect to.
#[inline(always)]
pub fn answer_too_early(skb: *mut __sk_buff, member: &Member) -> bool {
    member.netns == 0 && dns_socket(skb)
}
