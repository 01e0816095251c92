//! Map names, keys and values shared by the kernel programs, ramd and ramctl.
//!
//! How the maps relate:
//! - `RAM_NAMES` (LPM trie, name key → [`NameRule`]) answers "is this DNS
//!   question allowed for scope S?"; filled from the policy.
//! - `RAM_LEARN4`/`RAM_LEARN6` ({scope, address} → [`Learned`]) hold what the
//!   ingress program learned from allowed answers; the connect/sendmsg
//!   programs allow a destination found here and not expired.
//! - `RAM_HOSTS` (host id → [`NameKey`]) names the question behind each
//!   learned entry, for logs and `ramctl learned` ([`NameKey`], as in the trie).
//! - `RAM_CIDR4`/`RAM_CIDR6` (LPM trie → [`CidrRule`]) and
//!   `RAM_RESOLV4`/`RAM_RESOLV6` (address → [`Resolver`]) come from the policy.
//! - `RAM_SCOPES` (array, scope → [`ScopeConfig`]) holds mode and TTL bounds.
//! - `RAM_PORTS` (array, set id → [`PortSet`]): the ports rules allow; name
//!   and address rules name a set per scope, learned entries carry theirs.
//! - `RAM_COUNTERS` (per-CPU array) counts every verdict; `RAM_EVENTS` (ring
//!   buffer) carries the events a person will read.
//!
//! A scope is one `[[target]]` of the policy; each attached program instance
//! carries its scope number as a load-time constant.

use crate::name::NAME_KEY_LEN;

pub const MAP_NAMES: &str = "RAM_NAMES";
pub const MAP_CIDR4: &str = "RAM_CIDR4";
pub const MAP_CIDR6: &str = "RAM_CIDR6";
pub const MAP_LEARN4: &str = "RAM_LEARN4";
pub const MAP_LEARN6: &str = "RAM_LEARN6";
pub const MAP_HOSTS: &str = "RAM_HOSTS";
pub const MAP_RESOLV4: &str = "RAM_RESOLV4";
pub const MAP_RESOLV6: &str = "RAM_RESOLV6";
pub const MAP_SCOPES: &str = "RAM_SCOPES";
pub const MAP_COUNTERS: &str = "RAM_COUNTERS";
pub const MAP_EVENTS: &str = "RAM_EVENTS";
/// The perf event array that replaces `RAM_EVENTS` in the object built for
/// kernels without ring buffers (before 5.8).
pub const MAP_PERF_EVENTS: &str = "RAM_PERF_EVENTS";
pub const MAP_PORTS: &str = "RAM_PORTS";
pub const MAP_QUERIES: &str = "RAM_QUERIES";
pub const MAP_SOCKETS: &str = "RAM_SOCKETS";
pub const MAP_CONTAINER_SOCKETS: &str = "RAM_CONTAINER_SOCKETS";
pub const MAP_PRIVILEGED_SOCKETS: &str = "RAM_PRIVILEGED_SOCKETS";
pub const MAP_INITIAL_NETNS: &str = "RAM_INITIAL_NETNS";
pub const MAP_FORWARDS: &str = "RAM_FORWARDS";
pub const MAP_MEMBERS: &str = "RAM_MEMBERS";
pub const MAP_CONTAINER_PATTERNS: &str = "RAM_CONTAINER_PATTERNS";
pub const MAP_CGROUP_LAYOUT: &str = "RAM_CGROUP_LAYOUT";

/// Maps shared by every program instance and pinned in bpffs, besides the
/// event map of the object in use ([`MAP_EVENTS`] or [`MAP_PERF_EVENTS`]).
/// The per-CPU scratch maps are private to each instance and not listed.
pub const PINNED_MAPS: [&str; 20] = [
    MAP_MEMBERS,
    MAP_CONTAINER_PATTERNS,
    MAP_CGROUP_LAYOUT,
    MAP_QUERIES,
    MAP_SOCKETS,
    MAP_CONTAINER_SOCKETS,
    MAP_PRIVILEGED_SOCKETS,
    MAP_INITIAL_NETNS,
    MAP_FORWARDS,
    MAP_PORTS,
    MAP_NAMES,
    MAP_CIDR4,
    MAP_CIDR6,
    MAP_LEARN4,
    MAP_LEARN6,
    MAP_HOSTS,
    MAP_RESOLV4,
    MAP_RESOLV6,
    MAP_SCOPES,
    MAP_COUNTERS,
];

/// Name of the load-time constant holding an instance's scope number.
pub const SCOPE_GLOBAL: &str = "RAM_SCOPE";
/// Name of the load-time constant seeding the DNS parser's name hash: a
/// random value per ramd start, so that no one can choose two names that
/// hash alike (see `dns::walk_name`).
pub const NAME_SEED_GLOBAL: &str = "RAM_NAME_SEED";
/// Load-time constants: 1 when the kernel lets that program type ask for
/// the current task's pid and comm (probed by ramd). Where it is 0 the calls
/// are dead code the verifier never sees, and events carry pid 0.
pub const SOCK_ADDR_TASK_INFO_GLOBAL: &str = "RAM_SOCK_ADDR_TASK_INFO";
pub const SKB_TASK_INFO_GLOBAL: &str = "RAM_SKB_TASK_INFO";
/// Load-time constant of a container target's instance: the depth of its
/// containers' cgroups below the cgroup v2 root (see [`Member`]); 0 for a
/// runtime target, whose programs judge every socket of the cgroups they
/// are attached to.
pub const MEMBER_LEVEL_GLOBAL: &str = "RAM_MEMBER_LEVEL";
/// Load-time constant of a container target's instance: its runtime
/// ([`RUNTIME_DOCKER`], [`RUNTIME_PODMAN`]).
pub const MEMBER_RUNTIME_GLOBAL: &str = "RAM_MEMBER_RUNTIME";

/// Program names (the entry functions in ram-ebpf).
pub const PROG_CONNECT4: &str = "ram_connect4";
pub const PROG_CONNECT6: &str = "ram_connect6";
pub const PROG_SENDMSG4: &str = "ram_sendmsg4";
pub const PROG_SENDMSG6: &str = "ram_sendmsg6";
pub const PROG_INGRESS: &str = "ram_dns_ingress";
pub const PROG_EGRESS: &str = "ram_egress";
pub const PROG_SOCK_CREATE: &str = "ram_sock_create";
pub const PROGRAMS: [&str; 7] =
    [PROG_CONNECT4, PROG_CONNECT6, PROG_SENDMSG4, PROG_SENDMSG6, PROG_INGRESS, PROG_EGRESS, PROG_SOCK_CREATE];
/// The one program that is not per scope: a raw tracepoint on cgroup
/// creation that holds a new container's cgroup before anything runs in it.
pub const PROG_CGROUP_MKDIR: &str = "ram_cgroup_mkdir";
/// Its companion on cgroup removal: the removed cgroup's entry goes.
pub const PROG_CGROUP_RMDIR: &str = "ram_cgroup_rmdir";

/// Targets (scopes) a policy may have: scope sets are u64 bit masks.
pub const MAX_SCOPES: u32 = 64;

/// Default capacities; learned maps can be sized by the policy.
pub const NAMES_CAPACITY: u32 = 4096;
pub const CIDR_CAPACITY: u32 = 1024;
pub const LEARN_CAPACITY: u32 = 65536;
pub const HOSTS_CAPACITY: u32 = 4096;
pub const RESOLVERS_CAPACITY: u32 = 64;
pub const EVENTS_BYTES: u32 = 1 << 20;
/// DNS queries in flight (LRU: the oldest go first; their answers then
/// teach nothing).
pub const QUERIES_CAPACITY: u32 = 8192;
/// How long after its query an answer may arrive and still teach, unless
/// the policy says otherwise (`[dns] answer_window`).
pub const DNS_ANSWER_WINDOW_MS: u32 = 10_000;

/// Port sets a rule can carry (`ports = [443, 5000]`); set 0 means any port.
/// The other ids come in two halves, [`PORT_SETS_PER_HALF`] each: every
/// policy apply writes its sets into the half the previous apply did not
/// use, so an id a learned entry holds keeps its meaning until the entry is
/// rewritten to the new id.
pub const PORT_SETS: u32 = 256;
pub const PORT_SETS_PER_HALF: u32 = 127;
/// The id of the first set of half 0 and of half 1.
pub const PORT_HALF_BASE: [u32; 2] = [1, 1 + PORT_SETS_PER_HALF];
/// Set id 0: any port.
pub const ANY_PORT: u32 = 0;
/// Ports in one set.
pub const PORTS_PER_SET: usize = 16;

/// Value of `RAM_PORTS` (array, set id → ports). Id 0 allows any port
/// whatever its slot holds; any other id allows exactly its `count` ports,
/// so an id whose slot was never written (count 0) allows none.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortSet {
    pub count: u32,
    pub ports: [u16; PORTS_PER_SET],
}
const _: () = assert!(core::mem::size_of::<PortSet>() == 4 + 2 * PORTS_PER_SET);

/// Value of `RAM_NAMES`. Which scopes allow a looked-up name depends on
/// whether the trie matched the whole name or only a prefix of its key: a
/// whole match is allowed by exact and covering wildcard rules, a partial one
/// only by covering wildcard rules (see [`crate::verdict::name_allowed`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NameRule {
    /// Scopes allowing a name whose key equals this entry's key.
    pub full_scopes: u64,
    /// Scopes allowing a name below this entry (wildcards at or above it).
    pub partial_scopes: u64,
    /// Bytes in this entry's key, to tell a whole match from a partial one.
    pub key_len: u32,
    pub _pad: u32,
    /// Port set (see [`PortSet`]) per scope for a whole match, and for names below.
    pub full_ports: [u8; MAX_SCOPES as usize],
    pub partial_ports: [u8; MAX_SCOPES as usize],
}
const _: () = assert!(core::mem::size_of::<NameRule>() == 24 + 2 * MAX_SCOPES as usize);

impl Default for NameRule {
    fn default() -> Self {
        NameRule {
            full_scopes: 0,
            partial_scopes: 0,
            key_len: 0,
            _pad: 0,
            full_ports: [0; MAX_SCOPES as usize],
            partial_ports: [0; MAX_SCOPES as usize],
        }
    }
}

/// Key of `RAM_NAMES`: an LPM trie key (prefix length in bits, then data).
/// Also the value of `RAM_HOSTS`, naming the question behind learned entries.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NameKey {
    pub prefix_bits: u32,
    pub data: [u8; NAME_KEY_LEN],
}
const _: () = assert!(core::mem::size_of::<NameKey>() == 4 + NAME_KEY_LEN);

/// Value of `RAM_CIDR4`/`RAM_CIDR6`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CidrRule {
    pub scopes: u64,
    /// Port set per scope.
    pub ports: [u8; MAX_SCOPES as usize],
}

impl Default for CidrRule {
    fn default() -> Self {
        CidrRule { scopes: 0, ports: [0; MAX_SCOPES as usize] }
    }
}

/// Value of `RAM_RESOLV4`/`RAM_RESOLV6`: a trusted resolver (port 53).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resolver {
    pub scopes: u64,
}

/// Key of `RAM_LEARN4`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Learn4Key {
    pub scope: u32,
    pub addr: [u8; 4],
}
const _: () = assert!(core::mem::size_of::<Learn4Key>() == 8);

/// Key of `RAM_QUERIES`: a DNS query one scope sent to a resolver, as its
/// answer will identify it (the answer comes from `resolver`:53 to
/// `client`:`client_port`, with the same id and question type).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct QueryKey {
    pub scope: u32,
    pub client_port: u16,
    pub id: u16,
    pub qtype: u16,
    /// 4 or 6.
    pub family: u8,
    /// The transport the query went over (IPPROTO_UDP or IPPROTO_TCP): an
    /// answer matches only a query of its own transport.
    pub transport: u8,
    /// The resolver; the first 4 bytes for family 4, the rest zero.
    pub resolver: [u8; 16],
    /// The address the query came from, the same way.
    pub client: [u8; 16],
}
const _: () = assert!(core::mem::size_of::<QueryKey>() == 44);

/// Key of `RAM_DNS_STREAMS`: one scope's view of one TCP connection to a
/// resolver (the socket's cookie).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct StreamKey {
    pub cookie: u64,
    pub scope: u32,
    pub _pad: u32,
}

/// Value of `RAM_DNS_STREAMS`: where the next DNS message starts in each
/// direction of a TCP connection to a resolver, as a TCP sequence number,
/// tracked from the connection's first byte (the SYN and the SYN-ACK).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamState {
    /// Sequence number of the next query's length prefix.
    pub query_next: u32,
    /// Sequence number of the next answer's length prefix.
    pub answer_next: u32,
    /// Whether each direction's place is known: 0 not yet (before the
    /// SYN-ACK), 1 known exactly, 2 lost for good.
    pub query_place: u32,
    pub answer_place: u32,
}

/// TCP connections to resolvers tracked at once per program instance (the
/// oldest are forgotten first; a forgotten one teaches nothing more).
pub const STREAMS_CAPACITY: u32 = 4096;

/// Value of `RAM_QUERIES`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueryValue {
    /// Host id of the question name (see `name::NameSpan::host_id`).
    pub host_id: u64,
    /// bpf_ktime_get_ns() when the query left.
    pub sent_ns: u64,
}

/// Key of `RAM_LEARN6`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Learn6Key {
    pub scope: u32,
    pub addr: [u8; 16],
}
const _: () = assert!(core::mem::size_of::<Learn6Key>() == 20);

/// Value of the learned maps.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Learned {
    /// CLOCK_MONOTONIC nanoseconds (bpf_ktime_get_ns) after which new
    /// connects are denied.
    pub expires_ns: u64,
    /// Host id of the question that taught it (key of `RAM_HOSTS`).
    pub host_id: u64,
    /// The answer's TTL after clamping, in seconds.
    pub ttl: u32,
    /// Port set of the rule that allowed the question, for this scope.
    pub port_set: u32,
}
const _: () = assert!(core::mem::size_of::<Learned>() == 24);

/// Value of `RAM_SCOPES`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScopeConfig {
    /// [`MODE_ENFORCE`] or [`MODE_AUDIT`]; 0 means the scope is not configured,
    /// which the programs treat as enforce (fail closed).
    pub mode: u32,
    pub min_ttl: u32,
    pub max_ttl: u32,
    /// Addresses learned from one answer at most (0: `dns::MAX_ANSWERS`).
    pub max_addresses: u32,
    /// How long after its query an answer still teaches, in milliseconds
    /// (0: [`DNS_ANSWER_WINDOW_MS`]).
    pub answer_window_ms: u32,
    /// [`SCOPE_PASS_OTHER_NETNS`] or 0.
    pub flags: u32,
    /// The runtime's network namespace: the one whose DNS exchanges ram
    /// trusts and, with [`SCOPE_PASS_OTHER_NETNS`], the only one judged.
    /// Its cookie, as bpf_get_netns_cookie gives it;
    /// [`TRUSTED_NETNS_INITIAL`]: the initial namespace; 0: none, nothing
    /// is learned and every namespace is judged.
    pub trusted_netns: u64,
}
const _: () = assert!(core::mem::size_of::<ScopeConfig>() == 32);

/// `ScopeConfig::trusted_netns` for the initial network namespace (the
/// host's), which the programs can name without a cookie from userspace.
pub const TRUSTED_NETNS_INITIAL: u64 = u64::MAX;

/// `ScopeConfig::flags`: sockets of the target's cgroups that live in a
/// network namespace other than the runtime's (`trusted_netns`) are its
/// containers' (or its embedded DNS server's, serving them) and pass
/// unjudged. Without it every socket is judged. A bit that opens must be
/// set: an unconfigured scope (all zero) judges everything.
pub const SCOPE_PASS_OTHER_NETNS: u32 = 1;
/// `ScopeConfig::flags`: the sockets of a rootless runtime's network
/// helper (slirp4netns, pasta) ramd registered pass as its containers' do
/// (`rootless_helpers = "pass"`; only with `SCOPE_PASS_OTHER_NETNS`).
pub const SCOPE_PASS_RELAYS: u32 = 2;

/// Sockets the programs noted, in three maps so that no one can crowd out
/// notes written for others: `RAM_SOCKETS` for the runtime namespace's
/// sockets that talked to a resolver's port 53, `RAM_CONTAINER_SOCKETS`
/// for sockets outside that namespace, and `RAM_PRIVILEGED_SOCKETS` for
/// those only privilege can make (a registered forwarder's, raw sockets).
/// Shared and pinned; least recently used first out (an evicted socket is
/// judged again and learns nothing: fail closed).
pub const SOCKETS_CAPACITY: u32 = 65536;
pub const PRIVILEGED_SOCKETS_CAPACITY: u32 = 8192;

/// Value of `RAM_SOCKETS` (key: the socket cookie).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SocketNote {
    /// The cookie of the socket's network namespace.
    pub netns: u64,
    /// [`SOCKET_FORWARDER`], [`SOCKET_DNS`], or 0.
    pub flags: u32,
    pub _pad: u32,
}
const _: () = assert!(core::mem::size_of::<SocketNote>() == 16);

/// `SocketNote::flags`: a forwarder's socket (see [`ForwardKey`]) connected
/// to its one allowed destination; its packets to that peer pass egress.
pub const SOCKET_FORWARDER: u32 = 1;
/// `SocketNote::flags`: a UDP forwarder's listening socket; its datagrams
/// (answers to the clients that wrote to it) pass egress.
pub const SOCKET_FORWARDER_REPLIES: u32 = 4;
/// `SocketNote::flags`: a raw socket of a process (its answers are judged;
/// see egress `kernel_answer`).
pub const SOCKET_RAW: u32 = 8;
/// `SocketNote::flags` (in `RAM_CONTAINER_SOCKETS`): a socket a rootless
/// runtime's network helper (slirp4netns, pasta) made for its containers;
/// passes as theirs do.
pub const SOCKET_RELAY: u32 = 16;
/// `SocketNote::flags`: a socket that talked to a resolver's port 53; its
/// DNS counts only if its namespace is the trusted one.
pub const SOCKET_DNS: u32 = 2;

/// Key of `RAM_FORWARDS`: a runtime's own forwarding process (docker-proxy,
/// aardvark-dns, slirp4netns, pasta: found and checked by ramd) in one
/// scope.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ForwardKey {
    pub tgid: u32,
    pub scope: u32,
}

/// Value of `RAM_FORWARDS`: the one destination that process may connect to
/// besides the policy (the container address and port it forwards to).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ForwardDest {
    /// IPv4 in the first 4 bytes, the rest zero.
    pub addr: [u8; 16],
    /// 4 or 6; 0 for a forwarder that only answers (aardvark-dns);
    /// [`FORWARD_RELAY`] for a rootless runtime's network helper.
    pub family: u32,
    /// Host order.
    pub port: u32,
    /// IPPROTO_TCP or IPPROTO_UDP.
    pub protocol: u32,
    /// The port it listens on (host order; 0: unknown). A UDP forwarder
    /// answers its clients from there with sendto, to whoever asked.
    pub host_port: u32,
    /// The user it runs as (of the initial user namespace), as ramd saw
    /// it; the kernel lets through only a process of this user at that
    /// tgid (a reused pid of another user gets nothing).
    pub uid: u32,
}
const _: () = assert!(core::mem::size_of::<ForwardDest>() == 36);

/// `ForwardDest::family` of a rootless runtime's network helper: the
/// sockets it makes carry its containers' traffic (the runtime's own
/// traffic never passes through it), and pass as other containers' do,
/// to any destination, while the target passes its containers.
pub const FORWARD_RELAY: u32 = 255;

/// Forwarding processes tracked at once (one per published port and family).
pub const FORWARDS_CAPACITY: u32 = 4096;

pub const MODE_ENFORCE: u32 = 1;
pub const MODE_AUDIT: u32 = 2;

/// Counter slots per scope in `RAM_COUNTERS` (index = scope * SLOTS + slot).
pub mod counter {
    pub const CONNECT_ALLOWED: u32 = 0;
    pub const CONNECT_BLOCKED: u32 = 1;
    pub const SENDMSG_ALLOWED: u32 = 2;
    pub const SENDMSG_BLOCKED: u32 = 3;
    pub const EGRESS_DROPPED: u32 = 4;
    pub const WOULD_BLOCK: u32 = 5;
    pub const DNS_ANSWERS: u32 = 6;
    pub const DNS_LEARNED: u32 = 7;
    pub const DNS_NOT_ALLOWED: u32 = 8;
    pub const DNS_MALFORMED: u32 = 9;
    pub const DNS_TCP_SPLIT: u32 = 10;
    pub const LEARN_MAP_FULL: u32 = 11;
    pub const EVENTS_LOST: u32 = 12;
    /// Answers with address records owned by a name off the question's
    /// CNAME chain (those records are not learned).
    pub const DNS_OFF_CHAIN: u32 = 13;
    /// Answers that match no query this scope sent (not learned).
    pub const DNS_UNMATCHED: u32 = 14;
    /// Answers with more addresses than `[limits] addresses_per_answer`
    /// (the rest not learned).
    pub const LEARN_CAPPED: u32 = 15;
    /// Connects, sends and packets of sockets in another network namespace
    /// than the runtime's (its containers'), passed unjudged.
    pub const OTHER_NETNS_PASSED: u32 = 16;
    /// Connects of a runtime's forwarder (docker-proxy) to its container.
    pub const FORWARD_ALLOWED: u32 = 17;
    /// Packets to a held container's DNS sockets dropped while ramd does
    /// not know the container's network namespace (its resolver asks again).
    pub const DNS_NETNS_UNKNOWN: u32 = 18;
    pub const SLOTS: u32 = 19;
    /// Display names, in slot order.
    pub const NAMES: [&str; 19] = [
        "connect_allowed",
        "connect_blocked",
        "sendmsg_allowed",
        "sendmsg_blocked",
        "egress_dropped",
        "would_block",
        "dns_answers",
        "dns_learned",
        "dns_not_allowed",
        "dns_malformed",
        "dns_tcp_split",
        "learn_map_full",
        "events_lost",
        "dns_off_chain",
        "dns_unmatched",
        "learn_capped",
        "other_netns_passed",
        "forward_allowed",
        "dns_netns_unknown",
    ];
}

#[cfg(feature = "user")]
mod pod {
    use super::*;
    // SAFETY: all of these are repr(C), Copy, and have no padding bytes
    // (explicit `_pad` fields fill every gap), so any byte pattern is valid.
    unsafe impl aya::Pod for NameRule {}
    // SAFETY: as above.
    unsafe impl aya::Pod for PortSet {}
    // SAFETY: as above.
    unsafe impl aya::Pod for CidrRule {}
    // SAFETY: as above.
    unsafe impl aya::Pod for Resolver {}
    // SAFETY: as above.
    unsafe impl aya::Pod for Learn4Key {}
    // SAFETY: as above.
    unsafe impl aya::Pod for Learn6Key {}
    // SAFETY: as above.
    unsafe impl aya::Pod for Learned {}
    // SAFETY: as above.
    unsafe impl aya::Pod for QueryKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for StreamKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for StreamState {}
    // SAFETY: as above.
    unsafe impl aya::Pod for QueryValue {}
    // SAFETY: as above.
    unsafe impl aya::Pod for NameKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for ScopeConfig {}
    // SAFETY: as above.
    unsafe impl aya::Pod for SocketNote {}
    // SAFETY: as above.
    unsafe impl aya::Pod for ForwardKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for ForwardDest {}
    // SAFETY: as above.
    unsafe impl aya::Pod for Member {}
    // SAFETY: as above.
    unsafe impl aya::Pod for CgroupPattern {}
    // SAFETY: as above.
    unsafe impl aya::Pod for CgroupLayout {}
}

/// Container cgroups ram knows, by cgroup id (`RAM_MEMBERS`). A container
/// target's programs are attached to the cgroup v2 root and judge only the
/// sockets of cgroups whose ancestor at the target's level is a member of
/// the target, or pending for the target's runtime.
///
/// `ram_cgroup_mkdir` writes a pending entry the moment the runtime makes a
/// container's cgroup (its path matches one of `RAM_CONTAINER_PATTERNS`),
/// before any process can run in it; ramd then reads the container's
/// configuration and either names the target it belongs to or removes the
/// entry (no container target wants it: it runs unjudged).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Member {
    /// The scope that judges it, or [`MEMBER_PENDING`].
    pub scope: u32,
    /// [`RUNTIME_DOCKER`] or [`RUNTIME_PODMAN`].
    pub runtime: u32,
    /// The cookie of the network namespace the runtime made for the
    /// container; 0 while ramd does not know it (pending, or the runtime
    /// has not recorded it yet). A container's DNS is trusted only in this
    /// namespace: one the container made itself (an unprivileged user
    /// namespace gives it CAP_NET_RAW there) could carry forged answers.
    /// While it is 0 the container learns nothing, and answers to its DNS
    /// sockets are dropped so that its resolver asks again.
    pub netns: u64,
}

/// `Member::scope` of a cgroup not classified yet: every container target
/// of its runtime judges it (held closed until ramd knows it).
pub const MEMBER_PENDING: u32 = u32::MAX;
pub const RUNTIME_DOCKER: u32 = 1;
pub const RUNTIME_PODMAN: u32 = 2;
pub const MEMBERS_CAPACITY: u32 = 16384;

/// Bytes of a cgroup path `ram_cgroup_mkdir` reads (paths are relative to
/// the hierarchy's root: "/system.slice/docker-<64 hex>.scope").
pub const CGROUP_PATH_LEN: usize = 128;
pub const PATTERN_PREFIX_LEN: usize = 64;
pub const PATTERN_SUFFIX_LEN: usize = 16;
/// Hex digits of a container id in its cgroup's name.
pub const CONTAINER_ID_LEN: u32 = 64;
pub const CONTAINER_PATTERNS: u32 = 8;

/// A container cgroup's path: `prefix`, then [`CONTAINER_ID_LEN`] lowercase
/// hex digits, then `suffix`, and nothing after it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CgroupPattern {
    /// 0: an unused slot.
    pub runtime: u32,
    pub prefix_len: u32,
    pub suffix_len: u32,
    pub _pad: u32,
    pub prefix: [u8; PATTERN_PREFIX_LEN],
    pub suffix: [u8; PATTERN_SUFFIX_LEN],
}

impl Default for CgroupPattern {
    fn default() -> Self {
        CgroupPattern {
            runtime: 0,
            prefix_len: 0,
            suffix_len: 0,
            _pad: 0,
            prefix: [0; PATTERN_PREFIX_LEN],
            suffix: [0; PATTERN_SUFFIX_LEN],
        }
    }
}

/// Where the fields `ram_cgroup_mkdir` reads sit in this kernel's structs,
/// from its BTF (ramd reads /sys/kernel/btf/vmlinux): `struct cgroup`'s
/// `kn` and `root`, `struct kernfs_node`'s `id` and `struct cgroup_root`'s
/// `hierarchy_id`. `ready` is 0 until ramd wrote them.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CgroupLayout {
    pub ready: u32,
    pub cgroup_kn: u32,
    pub cgroup_root: u32,
    pub kernfs_node_id: u32,
    pub cgroup_root_hierarchy_id: u32,
    pub _pad: u32,
}

/// `ScopeConfig::trusted_netns` of a container target: every container has
/// a namespace of its own, and DNS exchanges in any of them teach (see
/// `trust.rs` in ram-ebpf for why that is safe there).
pub const TRUSTED_NETNS_ANY: u64 = u64::MAX - 1;
