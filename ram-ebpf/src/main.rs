//! ram's kernel programs. Entry points only: each hook calls its worker.
//!
//! One copy of these programs is loaded per policy target (scope); the scope
//! number is the load-time constant `RAM_SCOPE`. All copies share the pinned
//! maps in `maps.rs`.
#![no_std]
#![no_main]

mod containers;
mod diag;
mod dns;
mod egress;
mod events;
mod judge;
mod maps;
mod membership;
mod queries;
mod skb;
mod sock_addr;
mod stream;
mod trust;

use aya_ebpf::{
    macros::{cgroup_skb, cgroup_sock, cgroup_sock_addr, raw_tracepoint},
    programs::{RawTracePointContext, SkBuffContext, SockAddrContext, SockContext},
};
use ram_common::event::{HOOK_CONNECT, HOOK_SENDMSG};

#[cgroup_sock_addr(connect4)]
pub fn ram_connect4(ctx: SockAddrContext) -> i32 {
    sock_addr::on_ipv4(&ctx, HOOK_CONNECT)
}

#[cgroup_sock_addr(connect6)]
pub fn ram_connect6(ctx: SockAddrContext) -> i32 {
    sock_addr::on_ipv6(&ctx, HOOK_CONNECT)
}

#[cgroup_sock_addr(sendmsg4)]
pub fn ram_sendmsg4(ctx: SockAddrContext) -> i32 {
    sock_addr::on_ipv4(&ctx, HOOK_SENDMSG)
}

#[cgroup_sock_addr(sendmsg6)]
pub fn ram_sendmsg6(ctx: SockAddrContext) -> i32 {
    sock_addr::on_ipv6(&ctx, HOOK_SENDMSG)
}

#[cgroup_skb(ingress)]
pub fn ram_dns_ingress(ctx: SkBuffContext) -> i32 {
    // One lookup of the container's entry serves the gate and the check.
    let member = match membership::judged_skb(ctx.skb.skb) {
        membership::Judged::No => return 1,
        membership::Judged::Runtime => None,
        membership::Judged::Container(member) => Some(member),
    };
    if member.is_some_and(|member| trust::answer_too_early(ctx.skb.skb, &member)) {
        maps::count(maps::scope(), ram_common::maps::counter::DNS_NETNS_UNKNOWN);
        return 0;
    }
    dns::on_ingress(&ctx)
}

#[cgroup_skb(egress)]
pub fn ram_egress(ctx: SkBuffContext) -> i32 {
    if !membership::judges_skb(ctx.skb.skb) {
        return 1;
    }
    egress::on_egress(&ctx)
}

/// Notes the namespace of every socket created outside the runtime's, so
/// that egress can tell a container's raw and ping sockets (which no
/// connect or sendmsg hook sees) from the runtime's. Never refuses.
#[cgroup_sock(sock_create)]
pub fn ram_sock_create(ctx: SockContext) -> i32 {
    if membership::judges_current() {
        sock_addr::on_sock_create(&ctx);
    }
    1
}

/// Holds a new container's cgroup for the container targets (see
/// containers.rs). Loaded once, not per scope.
#[raw_tracepoint(tracepoint = "cgroup_mkdir")]
pub fn ram_cgroup_mkdir(ctx: RawTracePointContext) -> i32 {
    let _ = containers::on_mkdir(&ctx);
    0
}

/// Forgets a removed cgroup's entry.
#[raw_tracepoint(tracepoint = "cgroup_rmdir")]
pub fn ram_cgroup_rmdir(ctx: RawTracePointContext) -> i32 {
    let _ = containers::on_rmdir(&ctx);
    0
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // No panic path may survive into the object (the verifier would reject
    // it); this only satisfies the compiler.
    unsafe { core::hint::unreachable_unchecked() }
}

#[link_section = "license"]
#[no_mangle]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
