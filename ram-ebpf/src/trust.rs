//! Which DNS exchanges ram trusts: those of sockets in the trusted network
//! namespace (ramd's own, or `[dns] netns`).
//!
//! The resolvers are trusted by address, and an address means something
//! only in one network namespace: a process in an enforced cgroup that
//! makes a namespace of its own (an unprivileged user namespace suffices)
//! can own 127.0.0.53:53 there and answer itself. So the connect and
//! sendmsg hooks, which know a socket's namespace, note every socket that
//! talks to a resolver's port 53 with its namespace; a query counts, and an
//! answer teaches, only on a socket so noted in the trusted namespace. The
//! cgroup_skb programs cannot ask for a namespace on every kernel (5.10
//! has no such helper there), so they look the socket up.

use aya_ebpf::{
    bindings::{__sk_buff, bpf_sock_addr},
    helpers::generated::{bpf_get_netns_cookie, bpf_get_socket_cookie},
    macros::map,
    maps::{Array, LruHashMap},
};
use ram_common::maps::{DNS_SOCKETS_CAPACITY, TRUSTED_NETNS_INITIAL};

use crate::maps::scope_config;

/// Socket cookie → the cookie of its network namespace, for sockets that
/// sent to a resolver's port 53. Private to the program instance.
#[map]
static RAM_DNS_SOCKETS: LruHashMap<u64, u64> = LruHashMap::with_max_entries(DNS_SOCKETS_CAPACITY, 0);

/// The cookie of the initial network namespace, noted by the hooks that can
/// ask for it (connect/sendmsg) for those that cannot (cgroup_skb).
#[map]
static RAM_INITIAL_NETNS: Array<u64> = Array::with_max_entries(1, 0);

/// Notes the socket of this connect/sendmsg (to a resolver's port 53) and
/// its network namespace.
#[inline(always)]
pub fn note_dns_socket(sock_addr: *mut bpf_sock_addr) {
    // SAFETY: the helpers take the sock_addr context, or NULL for the
    // initial namespace.
    let (cookie, netns, initial) = unsafe {
        (
            bpf_get_socket_cookie(sock_addr as *mut _),
            bpf_get_netns_cookie(sock_addr as *mut _),
            bpf_get_netns_cookie(core::ptr::null_mut()),
        )
    };
    if let Some(slot) = RAM_INITIAL_NETNS.get_ptr_mut(0) {
        // SAFETY: a live map value; the cookie never changes.
        unsafe { *slot = initial };
    }
    let _ = RAM_DNS_SOCKETS.insert(&cookie, &netns, 0);
}

/// Is the packet's socket one the hooks noted in the trusted namespace?
#[inline(always)]
pub fn trusted_socket(skb: *mut __sk_buff, scope: u32) -> bool {
    let trusted = match scope_config(scope).trusted_netns {
        TRUSTED_NETNS_INITIAL => RAM_INITIAL_NETNS.get(0).copied().unwrap_or(0),
        cookie => cookie,
    };
    // SAFETY: the helper takes the skb context.
    let cookie = unsafe { bpf_get_socket_cookie(skb as *mut _) };
    // SAFETY: read-only lookup; the value is compared at once.
    trusted != 0 && unsafe { RAM_DNS_SOCKETS.get(&cookie) }.is_some_and(|netns| *netns == trusted)
}
