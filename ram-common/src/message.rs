//! The DNS message window and the parser's loop-carried state, shared by
//! the parser (`dns`) and the name encoder (`name`).

/// Bytes of a DNS message the parser looks at. Larger answers (EDNS) are
/// parsed up to here; records past the window are not learned.
pub const WINDOW: usize = 1024;
pub const WINDOW_MASK: usize = WINDOW - 1;
/// Names on an answer's CNAME chain (the question and the CNAME targets)
/// that records may be owned by; a longer chain's tail teaches nothing.
pub const MAX_CHAIN: u32 = 8;
/// Why a message teaches nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DnsError {
    /// The message ends before a field it announces.
    Truncated,
    /// A name is malformed, too long, or compressed where it may not be.
    BadName,
    /// Not a standard query response with exactly one question.
    NotAnswer,
}

/// Loop-carried parser state. Accessed only through
/// [`get`](crate::bounded::get) and [`put`](crate::bounded::put).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct LoopVars {
    pub error: u32,
    pub found: u32,
    pub len: u32,
    pub first: u32,
    pub count: u32,
    pub off: u32,
    pub next: u32,
    pub done: u32,
    pub answers: u32,
    /// Address records not owned by a name on the chain (not learned).
    pub off_chain: u32,
    /// Hashes of the names on the CNAME chain (see `walk_name`);
    /// `chain_len` names so far.
    pub chain: [u64; MAX_CHAIN as usize],
    pub chain_len: u32,
    /// The name hash's starting value (a secret random seed in the kernel;
    /// any value compares names the same way).
    pub seed: u64,
    /// Name walk: characters of text so far, bytes left in the current
    /// label, and the offset just past the name where it is written (0
    /// until the walk reaches its terminating zero or first pointer).
    pub text: u32,
    pub left: u32,
    pub end: u32,
    /// What the record loop walks next: an owner, or a CNAME's target.
    pub phase: u32,
    /// Where that CNAME's target starts, and where its rdata ends.
    pub target_at: u32,
    pub rdata_end: u32,
    /// Bytes of a label the walk hashes in one step (1..=8).
    pub chunk: u32,
    /// 1 when the owner of the record being read is on the chain.
    pub on_chain: u32,
    pub hash: u64,
}
