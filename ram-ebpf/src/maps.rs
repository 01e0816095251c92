//! Every map the programs use. Shared maps are pinned by ramd (see
//! `ram_common::maps` for how they relate); their names are the constants
//! there, and a userspace test checks each exists in the object.

use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, LpmTrie, LruHashMap, PerCpuArray},
};
use ram_common::{
    dns::{AddressRecord, LoopVars, RECORD_SLOTS, WINDOW},
    maps::*,
    name::NAME_KEY_LEN,
};

#[map]
pub static RAM_NAMES: LpmTrie<[u8; NAME_KEY_LEN], NameRule> = LpmTrie::with_max_entries(NAMES_CAPACITY, 0);
#[map]
pub static RAM_CIDR4: LpmTrie<[u8; 4], CidrRule> = LpmTrie::with_max_entries(CIDR_CAPACITY, 0);
#[map]
pub static RAM_CIDR6: LpmTrie<[u8; 16], CidrRule> = LpmTrie::with_max_entries(CIDR_CAPACITY, 0);
#[map]
pub static RAM_LEARN4: HashMap<Learn4Key, Learned> = HashMap::with_max_entries(LEARN_CAPACITY, 0);
#[map]
pub static RAM_LEARN6: HashMap<Learn6Key, Learned> = HashMap::with_max_entries(LEARN_CAPACITY, 0);
#[map]
pub static RAM_HOSTS: HashMap<u64, NameKey> = HashMap::with_max_entries(HOSTS_CAPACITY, 0);
#[map]
pub static RAM_RESOLV4: HashMap<[u8; 4], Resolver> = HashMap::with_max_entries(RESOLVERS_CAPACITY, 0);
#[map]
pub static RAM_RESOLV6: HashMap<[u8; 16], Resolver> = HashMap::with_max_entries(RESOLVERS_CAPACITY, 0);
#[map]
pub static RAM_SCOPES: Array<ScopeConfig> = Array::with_max_entries(MAX_SCOPES, 0);
#[map]
pub static RAM_COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(MAX_SCOPES * counter::SLOTS, 0);
#[map]
pub static RAM_PORTS: Array<PortSet> = Array::with_max_entries(PORT_SETS, 0);
/// Socket cookie → its network namespace (see trust.rs): the runtime's
/// namespace, and other namespaces (containers), apart.
#[map]
pub static RAM_SOCKETS: LruHashMap<u64, SocketNote> = LruHashMap::with_max_entries(SOCKETS_CAPACITY, 0);
#[map]
pub static RAM_CONTAINER_SOCKETS: LruHashMap<u64, SocketNote> = LruHashMap::with_max_entries(SOCKETS_CAPACITY, 0);
#[map]
pub static RAM_PRIVILEGED_SOCKETS: LruHashMap<u64, SocketNote> =
    LruHashMap::with_max_entries(PRIVILEGED_SOCKETS_CAPACITY, 0);
/// The cookie of the initial network namespace, noted by the hooks that can
/// ask for it (sock_create, connect, sendmsg) for those that cannot
/// (cgroup_skb).
#[map]
pub static RAM_INITIAL_NETNS: Array<u64> = Array::with_max_entries(1, 0);
/// A runtime's forwarding processes and the one destination each may reach
/// besides the policy; written by ramd.
#[map]
pub static RAM_FORWARDS: HashMap<ForwardKey, ForwardDest> = HashMap::with_max_entries(FORWARDS_CAPACITY, 0);

/// Container cgroups: pending (written by `ram_cgroup_mkdir`) or assigned
/// to a container target by ramd; see `ram_common::maps::Member`.
#[map]
pub static RAM_MEMBERS: HashMap<u64, Member> = HashMap::with_max_entries(MEMBERS_CAPACITY, 0);
/// The runtimes' container cgroup paths, written by ramd.
#[map]
pub static RAM_CONTAINER_PATTERNS: Array<CgroupPattern> = Array::with_max_entries(CONTAINER_PATTERNS, 0);
/// This kernel's struct offsets for `ram_cgroup_mkdir`, written by ramd.
#[map]
pub static RAM_CGROUP_LAYOUT: Array<CgroupLayout> = Array::with_max_entries(1, 0);

/// Per-CPU working memory of `ram_cgroup_mkdir`: the new cgroup's path.
#[repr(C)]
pub struct MkdirScratch {
    pub path: [u8; CGROUP_PATH_LEN],
}

#[map]
pub static RAM_MKDIR_SCRATCH: PerCpuArray<MkdirScratch> = PerCpuArray::with_max_entries(1, 0);

/// Per-CPU working memory of the DNS parser: too large for the 512-byte
/// stack, and map memory lets the verifier prune the parser's loops.
#[repr(C)]
pub struct Scratch {
    pub msg: [u8; WINDOW],
    pub key: NameKey,
    pub vars: LoopVars,
    /// The answer's address records, collected before any map update.
    pub records: [AddressRecord; RECORD_SLOTS],
    /// Addresses learned from the current answer: counted in memory so the
    /// verifier does not split the loop on every insert's outcome.
    pub learned: u32,
    /// Loop index of the learning loop, kept in memory for the same reason.
    pub next_record: u32,
    /// Offset and length of the DNS message in the packet.
    pub message_start: u32,
    pub message_len: u32,
    /// Port set of the rule that allowed the question.
    pub port_set: u32,
    /// 1 when the question is allowed for this scope.
    pub allowed: u32,
    /// The exchange the answer belongs to, filled from the packet before
    /// the parser runs and from the question after.
    pub query: QueryKey,
    /// 1 when the answer matched a query of this scope.
    pub matched: u32,
    /// 1 when the message is longer than the window (so its tail is cut).
    pub beyond_window: u32,
    /// What the learning function noted for the kernel log.
    pub notes: crate::diag::Notes,
    pub host_id: u64,
}

#[map]
pub static RAM_SCRATCH: PerCpuArray<Scratch> = PerCpuArray::with_max_entries(1, 0);

#[map]
pub static RAM_QUERIES: LruHashMap<QueryKey, QueryValue> = LruHashMap::with_max_entries(QUERIES_CAPACITY, 0);

/// Per-CPU working memory of the egress program's query parser: separate
/// from the ingress program's, which may run in a softirq on the same CPU
/// while an egress run is interrupted.
#[repr(C)]
pub struct QueryScratch {
    pub msg: [u8; WINDOW],
    pub key: [u8; NAME_KEY_LEN],
    pub vars: LoopVars,
    /// The route of the packet being judged (see egress.rs).
    pub route: RouteVars,
    /// The query being recorded, and when it left.
    pub query: QueryKey,
    pub sent: QueryValue,
}

/// Where a packet goes, held in memory while its hops are judged.
#[repr(C)]
pub struct RouteVars {
    /// The destination written in the header (IPv4 in the first 4 bytes).
    pub addr: [u8; 16],
    /// 1 for IPv4.
    pub v4: u32,
    pub protocol: u32,
    pub port: u32,
    /// Where the transport header starts.
    pub l4: u32,
    /// 1 when the header carries IPv4 options or IPv6 extension headers.
    pub extended: u32,
    pub hops_at: u32,
    pub hops: u32,
    /// The hop judged next (0: the header's destination).
    pub next: u32,
    /// Where in the packet the address of the refused hop is.
    pub refused_at: u32,
    /// 1 when the packet leaves from a configured resolver's port 53.
    pub from_resolver: u32,
}

#[map]
pub static RAM_QUERY_SCRATCH: PerCpuArray<QueryScratch> = PerCpuArray::with_max_entries(1, 0);

/// This instance's scope, set by ramd at load time.
#[no_mangle]
static RAM_SCOPE: u32 = 0;

/// The seed of the DNS parser's name hash, set by ramd at load time.
#[no_mangle]
static RAM_NAME_SEED: u64 = 0;

#[inline(always)]
pub fn name_seed() -> u64 {
    // SAFETY: a valid static, replaced by the loader.
    unsafe { core::ptr::read_volatile(&RAM_NAME_SEED) }
}

/// Whether this kernel allows the task helpers in each program type; see
/// `ram_common::maps::SKB_TASK_INFO_GLOBAL`.
#[no_mangle]
static RAM_SOCK_ADDR_TASK_INFO: u32 = 0;
#[no_mangle]
static RAM_SKB_TASK_INFO: u32 = 0;

/// A container target's level and runtime; see
/// `ram_common::maps::MEMBER_LEVEL_GLOBAL`.
#[no_mangle]
static RAM_MEMBER_LEVEL: u32 = 0;
#[no_mangle]
static RAM_MEMBER_RUNTIME: u32 = 0;

#[inline(always)]
pub fn member_level() -> u32 {
    // SAFETY: a valid static, replaced by the loader.
    unsafe { core::ptr::read_volatile(&RAM_MEMBER_LEVEL) }
}

#[inline(always)]
pub fn member_runtime() -> u32 {
    // SAFETY: as above.
    unsafe { core::ptr::read_volatile(&RAM_MEMBER_RUNTIME) }
}

#[inline(always)]
pub fn sock_addr_task_info() -> bool {
    // SAFETY: a valid static, replaced by the loader.
    unsafe { core::ptr::read_volatile(&RAM_SOCK_ADDR_TASK_INFO) != 0 }
}

#[inline(always)]
pub fn skb_task_info() -> bool {
    // SAFETY: as above.
    unsafe { core::ptr::read_volatile(&RAM_SKB_TASK_INFO) != 0 }
}

#[inline(always)]
pub fn scope() -> u32 {
    // SAFETY: a valid static; volatile so the compiler does not fold the
    // default value the loader replaces.
    unsafe { core::ptr::read_volatile(&RAM_SCOPE) }
}

#[inline(always)]
pub fn count(scope: u32, slot: u32) {
    let index = (scope & (MAX_SCOPES - 1)) * counter::SLOTS + slot;
    if let Some(value) = RAM_COUNTERS.get_ptr_mut(index) {
        // SAFETY: per-CPU slot, no concurrent writer on this CPU.
        unsafe { *value += 1 };
    }
}

#[inline(always)]
pub fn scope_config(scope: u32) -> ScopeConfig {
    RAM_SCOPES.get(scope).copied().unwrap_or_default()
}
