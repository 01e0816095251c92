//! `ram_cgroup_mkdir` and `ram_cgroup_rmdir`: raw tracepoints on cgroup
//! creation and removal. A cgroup v2 whose path is a runtime's container
//! path (`RAM_CONTAINER_PATTERNS`) is entered into `RAM_MEMBERS` as pending
//! the moment it is made, inside the mkdir that makes it: before the
//! runtime can put a process in it, so a container target judges the
//! container from its first instruction, until ramd has read which target
//! (if any) it belongs to. A removed cgroup's entry goes with it.
//!
//! The tracepoint hands over `struct cgroup *` and the path; where the
//! cgroup's id and hierarchy sit in this kernel's structs, ramd reads from
//! the kernel's BTF (`RAM_CGROUP_LAYOUT`); until it has, nothing is noted.

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    helpers::{bpf_probe_read_kernel, generated::bpf_probe_read_kernel_str},
    programs::RawTracePointContext,
};
use ram_common::bounded::index;
use ram_common::maps::{
    CgroupLayout, Member, CGROUP_PATH_LEN, CONTAINER_ID_LEN, CONTAINER_PATTERNS, MEMBER_PENDING, PATTERN_PREFIX_LEN,
    PATTERN_SUFFIX_LEN,
};

use crate::maps::{RAM_CGROUP_LAYOUT, RAM_CONTAINER_PATTERNS, RAM_MEMBERS, RAM_MKDIR_SCRATCH};

const PATH_MASK: usize = CGROUP_PATH_LEN - 1;
const _: () = assert!(CGROUP_PATH_LEN.is_power_of_two());

/// The id of a cgroup of the v2 hierarchy (hierarchy 0); None for v1
/// hierarchies, whose ids are of another numbering.
#[inline(always)]
fn v2_cgroup_id(cgroup: u64, layout: &CgroupLayout) -> Option<u64> {
    // SAFETY: probe reads of kernel memory: a bad address fails, it does
    // not fault.
    unsafe {
        let root: u64 = bpf_probe_read_kernel((cgroup + layout.cgroup_root as u64) as *const u64).ok()?;
        let hierarchy: i32 = bpf_probe_read_kernel((root + layout.cgroup_root_hierarchy_id as u64) as *const i32).ok()?;
        if hierarchy != 0 {
            return None;
        }
        let kn: u64 = bpf_probe_read_kernel((cgroup + layout.cgroup_kn as u64) as *const u64).ok()?;
        bpf_probe_read_kernel((kn + layout.kernfs_node_id as u64) as *const u64).ok()
    }
}

#[inline(always)]
fn layout() -> Option<CgroupLayout> {
    RAM_CGROUP_LAYOUT.get(0).copied().filter(|l| l.ready != 0)
}

#[inline(always)]
pub fn on_mkdir(ctx: &RawTracePointContext) -> Option<()> {
    let layout = layout()?;
    let cgroup: u64 = ctx.arg(0);
    let path: u64 = ctx.arg(1);
    let id = v2_cgroup_id(cgroup, &layout)?;
    let scratch = RAM_MKDIR_SCRATCH.get_ptr_mut(0)?;
    // SAFETY: this CPU's scratch; the helper writes at most its size.
    let copied = unsafe {
        bpf_probe_read_kernel_str((*scratch).path.as_mut_ptr() as *mut _, CGROUP_PATH_LEN as u32, path as *const _)
    };
    if copied <= 0 {
        return None;
    }
    // The string's length, without its NUL.
    let len = (copied - 1) as u32;
    let mut index = 0;
    while index < CONTAINER_PATTERNS {
        let runtime = ram_match_pattern(index, len);
        if runtime != 0 {
            let member = Member { scope: MEMBER_PENDING, runtime, netns: 0 };
            // A failed insert (the map full) leaves the container unheld;
            // ramd classifies it from the cgroup tree all the same.
            let _ = RAM_MEMBERS.insert(&id, &member, BPF_NOEXIST as u64);
            return Some(());
        }
        index += 1;
    }
    None
}

#[inline(always)]
pub fn on_rmdir(ctx: &RawTracePointContext) -> Option<()> {
    let layout = layout()?;
    let id = v2_cgroup_id(ctx.arg(0), &layout)?;
    let _ = RAM_MEMBERS.remove(&id);
    Some(())
}

/// Is the path in this CPU's scratch (`len` bytes) pattern `slot`'s:
/// its prefix, a container id in lowercase hex, its suffix, and nothing
/// more? Returns the pattern's runtime, or 0. A global function: the
/// verifier checks its loops once, not once per pattern.
#[no_mangle]
#[inline(never)]
pub extern "C" fn ram_match_pattern(slot: u32, len: u32) -> u32 {
    let Some(pattern) = RAM_CONTAINER_PATTERNS.get(slot) else { return 0 };
    let Some(scratch) = RAM_MKDIR_SCRATCH.get_ptr_mut(0) else { return 0 };
    // SAFETY: this CPU's scratch.
    let path = unsafe { &(*scratch).path };
    let runtime = pattern.runtime;
    let prefix_len = pattern.prefix_len as usize;
    let suffix_len = pattern.suffix_len as usize;
    if runtime == 0 || prefix_len > PATTERN_PREFIX_LEN || suffix_len > PATTERN_SUFFIX_LEN {
        return 0;
    }
    if len as usize != prefix_len + CONTAINER_ID_LEN as usize + suffix_len {
        return 0;
    }
    let mut i = 0;
    while i < PATTERN_PREFIX_LEN && i < prefix_len {
        if path[index(i as u32, PATH_MASK)] != pattern.prefix[index(i as u32, PATTERN_PREFIX_LEN - 1)] {
            return 0;
        }
        i += 1;
    }
    let mut i = 0;
    while i < CONTAINER_ID_LEN as usize {
        let c = path[index((prefix_len + i) as u32, PATH_MASK)];
        if !(c.is_ascii_digit() || (b'a'..=b'f').contains(&c)) {
            return 0;
        }
        i += 1;
    }
    let start = prefix_len + CONTAINER_ID_LEN as usize;
    let mut i = 0;
    while i < PATTERN_SUFFIX_LEN && i < suffix_len {
        if path[index((start + i) as u32, PATH_MASK)] != pattern.suffix[index(i as u32, PATTERN_SUFFIX_LEN - 1)] {
            return 0;
        }
        i += 1;
    }
    runtime
}
