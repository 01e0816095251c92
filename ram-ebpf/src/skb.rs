//! Reading packet headers in the cgroup_skb programs (the packet starts at
//! the IP header there).

use aya_ebpf::{helpers::generated::bpf_skb_load_bytes, programs::SkBuffContext};

use crate::judge::Dest;

pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86dd;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
/// `bpf_sock.type_` of a raw socket.
pub const SOCK_RAW: u32 = 3;
/// `bpf_sock.type_` of a stream (TCP, MPTCP) socket.
pub const SOCK_STREAM: u32 = 1;

/// `N` bytes of the packet at `offset`, or None when it is shorter.
#[inline(always)]
pub fn load<const N: usize>(ctx: &SkBuffContext, offset: u32) -> Option<[u8; N]> {
    let mut buf = [0u8; N];
    // SAFETY: `buf` is N writable bytes.
    let rc = unsafe { bpf_skb_load_bytes(ctx.skb.skb as *const _, offset, buf.as_mut_ptr() as *mut _, N as u32) };
    (rc == 0).then_some(buf)
}

/// Where the source address starts in an IPv4 (`v4`) or IPv6 header.
#[inline(always)]
pub fn source_at(v4: bool) -> u32 {
    if v4 {
        12
    } else {
        8
    }
}

/// Where the destination address starts in an IPv4 (`v4`) or IPv6 header.
#[inline(always)]
pub fn destination_at(v4: bool) -> u32 {
    if v4 {
        16
    } else {
        24
    }
}

/// The IPv4 (`v4`) or IPv6 address at `offset` of the packet.
#[inline(always)]
pub fn load_dest(ctx: &SkBuffContext, v4: bool, offset: u32) -> Option<Dest> {
    if v4 {
        load::<4>(ctx, offset).map(Dest::v4)
    } else {
        load::<16>(ctx, offset).map(Dest::v6)
    }
}
