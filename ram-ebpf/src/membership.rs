//! Which sockets an instance judges. A runtime target's programs judge
//! every socket of the cgroups they are attached to. A container target's
//! programs are attached to the cgroup v2 root and judge only the sockets
//! of containers: cgroups whose ancestor at the target's level is in
//! `RAM_MEMBERS` for this scope, or pending for its runtime (see
//! `ram_common::maps::Member` and `containers.rs`).
//!
//! sock_addr and sock_create ask for the calling task's cgroup, the
//! cgroup_skb programs for the packet's socket's: a socket made in a
//! container and used by a process outside it still meets the egress
//! backstop.

use aya_ebpf::{
    bindings::__sk_buff,
    helpers::generated::{bpf_get_current_ancestor_cgroup_id, bpf_skb_ancestor_cgroup_id},
};
use ram_common::maps::{Member, MEMBER_PENDING};

use crate::maps::{member_level, member_runtime, scope, RAM_MEMBERS};

/// Does this instance judge the calling task's sockets?
#[inline(always)]
pub fn judges_current() -> bool {
    let level = member_level();
    if level == 0 {
        return true;
    }
    // SAFETY: helper without preconditions.
    judges_cgroup(unsafe { bpf_get_current_ancestor_cgroup_id(level as i32) })
}

/// Whether, and as what, this instance judges a packet's socket.
pub enum Judged {
    No,
    /// A runtime target's: every socket of its cgroups.
    Runtime,
    /// A container target's: this container's entry.
    Container(Member),
}

/// Does this instance judge the packet's socket?
#[inline(always)]
pub fn judged_skb(skb: *mut __sk_buff) -> Judged {
    let level = member_level();
    if level == 0 {
        return Judged::Runtime;
    }
    // SAFETY: the helper takes the skb context.
    match member_judged_here(unsafe { bpf_skb_ancestor_cgroup_id(skb as *mut _, level as i32) }) {
        Some(member) => Judged::Container(member),
        None => Judged::No,
    }
}

#[inline(always)]
pub fn judges_skb(skb: *mut __sk_buff) -> bool {
    !matches!(judged_skb(skb), Judged::No)
}

/// The member entry of the packet's socket's container, if this (container)
/// instance judges it.
#[inline(always)]
pub fn skb_member(skb: *mut __sk_buff) -> Option<Member> {
    match judged_skb(skb) {
        Judged::Container(member) => Some(member),
        _ => None,
    }
}

#[inline(always)]
fn judges_cgroup(id: u64) -> bool {
    member_judged_here(id).is_some()
}

#[inline(always)]
fn member_judged_here(id: u64) -> Option<Member> {
    // 0: the cgroup is shallower than a container's, no container.
    if id == 0 {
        return None;
    }
    // SAFETY: read-only lookup, copied at once.
    let member = unsafe { RAM_MEMBERS.get(&id) }.copied()?;
    let judged = member.scope == scope() || (member.scope == MEMBER_PENDING && member.runtime == member_runtime());
    judged.then_some(member)
}
