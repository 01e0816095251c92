//! connect4/6 and sendmsg4/6: judge the destination the caller asked for and
//! answer EPERM (return 0) when the policy does not allow it.

use aya_ebpf::{helpers::generated::bpf_get_current_cgroup_id, programs::SockAddrContext};
use ram_common::{event::HOOK_CONNECT, maps::counter, verdict::v4_mapped};

use crate::{
    judge::{allowed, deny, Attempt, Dest, Expiry},
    maps::{count, scope, sock_addr_task_info},
};

const ALLOW: i32 = 1;
const REJECT: i32 = 0;

#[inline(always)]
pub fn on_ipv4(ctx: &SockAddrContext, hook: u8) -> i32 {
    // SAFETY: the kernel hands every sock_addr program a valid context.
    let sa = unsafe { &*ctx.sock_addr };
    // user_ip4 holds the address in network order: its bytes in memory are
    // the address bytes.
    let addr = sa.user_ip4.to_ne_bytes();
    judge(ctx, Dest::V4(addr), port_of(sa.user_port), sa.protocol as u8, hook)
}

#[inline(always)]
pub fn on_ipv6(ctx: &SockAddrContext, hook: u8) -> i32 {
    // SAFETY: as above.
    let sa = unsafe { &*ctx.sock_addr };
    let words = [sa.user_ip6[0], sa.user_ip6[1], sa.user_ip6[2], sa.user_ip6[3]];
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
        Some(v4) => Dest::V4(v4),
        None => Dest::V6(addr),
    };
    judge(ctx, dest, port_of(sa.user_port), sa.protocol as u8, hook)
}

/// `user_port` carries the port in network order in its low 16 bits.
#[inline(always)]
fn port_of(user_port: u32) -> u16 {
    u16::from_be(user_port as u16)
}

#[inline(always)]
fn judge(ctx: &SockAddrContext, dest: Dest, port: u16, protocol: u8, hook: u8) -> i32 {
    let scope = scope();
    let (allowed_slot, blocked_slot) = if hook == HOOK_CONNECT {
        (counter::CONNECT_ALLOWED, counter::CONNECT_BLOCKED)
    } else {
        (counter::SENDMSG_ALLOWED, counter::SENDMSG_BLOCKED)
    };
    if allowed(scope, dest, port, Expiry::Strict) {
        count(scope, allowed_slot);
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
    if deny(ctx, scope, &attempt, blocked_slot) {
        ALLOW
    } else {
        REJECT
    }
}
