//! DNS answer parsing shared by the kernel's ingress program and the host.
//!
//! Written for the verifier: the message sits in a fixed window, every index is
//! masked into it, every loop is bounded by a constant, and loop-carried values
//! go through [`LoopVars`] with volatile accesses (the kernel keeps them in a
//! per-CPU map, which lets the verifier prune loop states). Offsets are also
//! checked against the real message length, so stale bytes past the end are
//! never read as data.

use crate::name::{key_from_wire, NameSpan, MAX_LABEL, NAME_KEY_LEN};

/// Bytes of a DNS message the parser looks at. Larger answers (EDNS) are
/// parsed up to here; records past the window are not learned.
pub const WINDOW: usize = 1024;
pub const WINDOW_MASK: usize = WINDOW - 1;
/// Answer records walked per message; later ones are not learned.
pub const MAX_ANSWERS: u32 = 24;
/// Labels of an answer's owner name before it must end or turn into a
/// compression pointer. Servers compress owners (dnsmasq, unbound and BIND
/// all do), so real owners are a pointer or a few labels; a longer one stops
/// the walk (fail closed). The bound keeps the verifier's path count small:
/// the owner loop is nested in the answer loop.
pub const MAX_OWNER_LABELS: u32 = 10;
/// Names on an answer's CNAME chain (the question and the CNAME targets)
/// that records may be owned by; a longer chain's tail teaches nothing.
pub const MAX_CHAIN: u32 = 8;
/// The chain is a bit per message offset (where each name on it starts):
/// one bit test per record, no loop, so the verifier's work stays flat.
const CHAIN_WORDS: usize = WINDOW / 64;
/// Fixed DNS header size.
pub const HEADER_LEN: u32 = 12;

pub const TYPE_A: u16 = 1;
pub const TYPE_CNAME: u16 = 5;
pub const TYPE_AAAA: u16 = 28;
pub const CLASS_IN: u16 = 1;

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

/// Loop-carried parser state. Accessed only through [`get`] and [`put`].
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
    /// Message offsets where the names on the CNAME chain start, one bit
    /// each; `chain_len` names so far.
    pub chain: [u64; CHAIN_WORDS],
    pub chain_len: u32,
    pub hash: u64,
}

/// Reads a loop-carried value back from memory so the verifier sees an
/// unknown (prunable) scalar instead of a distinct constant per iteration.
#[inline(always)]
pub fn get<T: Copy>(slot: &T) -> T {
    // SAFETY: `slot` is a valid, aligned reference.
    unsafe { core::ptr::read_volatile(slot) }
}

#[inline(always)]
pub fn put<T: Copy>(slot: &mut T, value: T) {
    // SAFETY: `slot` is a valid, aligned, exclusive reference.
    unsafe { core::ptr::write_volatile(slot, value) }
}

/// Passes a value through memory: every path that reaches this point leaves
/// with the same unknown (but re-checked) scalar, so the verifier explores
/// what follows once instead of once per incoming path.
#[inline(always)]
pub fn launder(slot: &mut u32, value: u32) -> u32 {
    put(slot, value);
    get(slot)
}

/// `value & mask` as an index the verifier can always see bounded.
///
/// LLVM drops a mask it can prove redundant (say, after `off < len` with
/// `len <= WINDOW`), leaving the verifier to prove the bound from the
/// comparison — which kernels before 5.16 cannot when `len` was spilled to
/// the stack as 32 bits ("unbounded memory access" on 5.10). Passing the
/// value through a volatile read hides it from LLVM, so the mask stays.
#[inline(always)]
pub fn index(value: u32, mask: usize) -> usize {
    let slot = value;
    // SAFETY: reads a local.
    let opaque = unsafe { core::ptr::read_volatile(&slot) };
    opaque as usize & mask
}

#[inline(always)]
fn byte(msg: &[u8; WINDOW], off: u32) -> u8 {
    msg[index(off, WINDOW_MASK)]
}

#[inline(always)]
fn be16(msg: &[u8; WINDOW], off: u32) -> u16 {
    (byte(msg, off) as u16) << 8 | byte(msg, off + 1) as u16
}

#[inline(always)]
fn be32(msg: &[u8; WINDOW], off: u32) -> u32 {
    (be16(msg, off) as u32) << 16 | be16(msg, off + 2) as u32
}

/// The question of a response, encoded as a name key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Question {
    pub id: u16,
    pub name: NameSpan,
    pub qtype: u16,
    pub answer_count: u16,
    /// Offset of the first answer record.
    pub answers_at: u32,
}

/// Parses the header and the single question of a response, writing the
/// question name's key into `key`.
#[inline(always)]
pub fn parse_question(
    msg: &[u8; WINDOW],
    len: u32,
    key: &mut [u8; NAME_KEY_LEN],
    vars: &mut LoopVars,
) -> Result<Question, DnsError> {
    parse_header_and_question(msg, len, key, vars, true)
}

/// The same for a query (QR clear): what the egress program records so an
/// answer can be matched to it.
#[inline(always)]
pub fn parse_query(
    msg: &[u8; WINDOW],
    len: u32,
    key: &mut [u8; NAME_KEY_LEN],
    vars: &mut LoopVars,
) -> Result<Question, DnsError> {
    parse_header_and_question(msg, len, key, vars, false)
}

#[inline(always)]
fn parse_header_and_question(
    msg: &[u8; WINDOW],
    len: u32,
    key: &mut [u8; NAME_KEY_LEN],
    vars: &mut LoopVars,
    response: bool,
) -> Result<Question, DnsError> {
    let len = launder(&mut vars.len, len);
    if len < HEADER_LEN || len > WINDOW as u32 {
        return Err(DnsError::Truncated);
    }
    let flags = be16(msg, 2);
    let is_response = flags & 0x8000 != 0;
    let opcode = (flags >> 11) & 0xf;
    if is_response != response || opcode != 0 || be16(msg, 4) != 1 {
        return Err(DnsError::NotAnswer);
    }
    let name = key_from_wire(msg, len, HEADER_LEN, key, vars)?;
    if name.end + 4 > len {
        return Err(DnsError::Truncated);
    }
    Ok(Question {
        id: be16(msg, 0),
        name,
        qtype: be16(msg, name.end),
        answer_count: be16(msg, 6),
        answers_at: name.end + 4,
    })
}

/// An address record from the answer section.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AddressRecord {
    /// The address; for A records the first 4 bytes, the rest zero.
    pub addr: [u8; 16],
    pub ttl: u32,
    /// 4 for A, 6 for AAAA.
    pub family: u8,
    pub _pad: [u8; 3],
}

/// Room for the address records of one answer (a power of two, so a slot
/// index can be masked into it).
pub const RECORD_SLOTS: usize = 32;
const _: () = assert!(RECORD_SLOTS >= MAX_ANSWERS as usize && RECORD_SLOTS.is_power_of_two());

/// Walks the answer section and writes each A/AAAA record of class IN owned
/// by a name on the question's CNAME chain into `records`; returns how many.
/// Stops at the first malformed record (those before it are kept and counted
/// in `vars.found`).
///
/// The chain is followed through compression pointers, as every common
/// resolver writes answers (dnsmasq, unbound, BIND, systemd-resolved, Docker's
/// embedded DNS): a record is on the chain when its owner is a pointer to the
/// question name or to the target of an earlier CNAME on the chain. Records
/// owned by anything else — another name, or a name written out in full — are
/// counted in `vars.off_chain` and not learned: an answer cannot vouch for
/// names it was not asked about.
///
/// Collecting first and acting (map updates) in a second, simple loop keeps
/// the verifier's work per answer small: this loop has few paths per
/// iteration and no helper calls.
#[inline(always)]
pub fn collect_addresses(
    msg: &[u8; WINDOW],
    len: u32,
    question: &Question,
    vars: &mut LoopVars,
    records: &mut [AddressRecord; RECORD_SLOTS],
) -> Result<u32, DnsError> {
    let len = launder(&mut vars.len, len);
    let total = launder(&mut vars.count, (question.answer_count as u32).min(MAX_ANSWERS));
    let first = launder(&mut vars.first, question.answers_at);
    put(&mut vars.found, 0);
    if len > WINDOW as u32 {
        return Err(DnsError::Truncated);
    }
    put(&mut vars.off, first);
    put(&mut vars.answers, 0);
    put(&mut vars.error, NO_ERROR);
    put(&mut vars.off_chain, 0);
    // The chain starts with the question name, always at offset 12.
    for word in vars.chain.iter_mut() {
        put(word, 0);
    }
    put(&mut vars.chain_len, 0);
    chain_push(vars, HEADER_LEN);
    // Every way out of an iteration (a record read, or an error recorded in
    // vars.error) meets at its end, and the loop has one exit; so the
    // verifier sees few distinct states and walks what follows the loop once.
    for _ in 0..MAX_ANSWERS {
        let walked = get(&vars.answers);
        if walked >= total || get(&vars.error) != NO_ERROR {
            break;
        }
        match read_record(msg, len, vars) {
            Ok(Some(record)) => {
                let found = get(&vars.found);
                records[index(found, RECORD_SLOTS - 1)] = record;
                put(&mut vars.found, found + 1);
            }
            Ok(None) => {}
            Err(e) => put(&mut vars.error, error_code(e)),
        }
        put(&mut vars.answers, walked + 1);
    }
    match get(&vars.error) {
        NO_ERROR => Ok(get(&vars.found)),
        code => Err(error_from(code)),
    }
}

const NO_ERROR: u32 = 0;

fn error_code(error: DnsError) -> u32 {
    match error {
        DnsError::Truncated => 1,
        DnsError::BadName => 2,
        DnsError::NotAnswer => 3,
    }
}

fn error_from(code: u32) -> DnsError {
    match code {
        2 => DnsError::BadName,
        3 => DnsError::NotAnswer,
        _ => DnsError::Truncated,
    }
}

/// Reads the record at vars.off and moves vars.off past it; the address
/// when it is an A/AAAA record of class IN owned by a name on the chain. A
/// CNAME on the chain adds its target to the chain.
#[inline(always)]
fn read_record(msg: &[u8; WINDOW], len: u32, vars: &mut LoopVars) -> Result<Option<AddressRecord>, DnsError> {
    let owner = get(&vars.off);
    let on_chain = chain_contains(vars, pointer_target(msg, owner));
    let owner_end = skip_name(msg, len, owner, vars)?;
    if owner_end + 10 > len {
        return Err(DnsError::Truncated);
    }
    let rtype = be16(msg, owner_end);
    let class = be16(msg, owner_end + 2);
    let ttl = be32(msg, owner_end + 4);
    let rdlen = be16(msg, owner_end + 8) as u32;
    let rdata = owner_end + 10;
    if rdata + rdlen > len {
        return Err(DnsError::Truncated);
    }
    put(&mut vars.off, rdata + rdlen);
    if rtype == TYPE_CNAME && class == CLASS_IN && on_chain && rdlen > 0 {
        // The target is where its name starts: the rdata itself, or where
        // the rdata points when it is nothing but a pointer.
        let target = match pointer_target(msg, rdata) {
            NOT_A_POINTER => rdata,
            pointed => pointed,
        };
        chain_push(vars, target);
        return Ok(None);
    }
    let family = match (rtype, rdlen) {
        (TYPE_A, 4) if class == CLASS_IN => 4,
        (TYPE_AAAA, 16) if class == CLASS_IN => 6,
        _ => return Ok(None),
    };
    if !on_chain {
        let off_chain = get(&vars.off_chain);
        put(&mut vars.off_chain, off_chain + 1);
        return Ok(None);
    }
    // Always 16 bytes (no branch on the length), then clear what an A
    // record does not own.
    let mut addr = [0u8; 16];
    for (i, slot) in addr.iter_mut().enumerate() {
        *slot = byte(msg, rdata + i as u32);
    }
    if family == 4 {
        for slot in addr.iter_mut().skip(4) {
            *slot = 0;
        }
    }
    Ok(Some(AddressRecord { addr, ttl, family, _pad: [0; 3] }))
}

/// No offset: a name that does not start with a compression pointer.
const NOT_A_POINTER: u32 = u32::MAX;

/// Where the name at `off` points when it is a compression pointer.
#[inline(always)]
fn pointer_target(msg: &[u8; WINDOW], off: u32) -> u32 {
    let first = byte(msg, off) as u32;
    if first & 0xc0 == 0xc0 {
        (first & 0x3f) << 8 | byte(msg, off + 1) as u32
    } else {
        NOT_A_POINTER
    }
}

#[inline(always)]
fn chain_contains(vars: &LoopVars, target: u32) -> bool {
    // Offsets past the window (NOT_A_POINTER included) are never on it.
    if target >= WINDOW as u32 {
        return false;
    }
    let word = get(&vars.chain[index(target >> 6, CHAIN_WORDS - 1)]);
    word & (1u64 << (target & 63)) != 0
}

#[inline(always)]
fn chain_push(vars: &mut LoopVars, target: u32) {
    let len = get(&vars.chain_len);
    if len < MAX_CHAIN && target < WINDOW as u32 {
        let slot = &mut vars.chain[index(target >> 6, CHAIN_WORDS - 1)];
        let word = get(slot);
        put(slot, word | 1u64 << (target & 63));
        put(&mut vars.chain_len, len + 1);
    }
}

/// Returns the offset just past a (possibly compressed) name at `start`.
#[inline(always)]
fn skip_name(msg: &[u8; WINDOW], len: u32, start: u32, vars: &mut LoopVars) -> Result<u32, DnsError> {
    put(&mut vars.next, start);
    put(&mut vars.done, 0);
    for _ in 0..MAX_OWNER_LABELS {
        let off = get(&vars.next);
        if off >= len {
            return Err(DnsError::Truncated);
        }
        let label = byte(msg, off) as u32;
        if label == 0 {
            put(&mut vars.next, off + 1);
            put(&mut vars.done, 1);
            break;
        }
        if label & 0xc0 == 0xc0 {
            // A compression pointer ends the name in place.
            put(&mut vars.next, off + 2);
            put(&mut vars.done, 1);
            break;
        }
        if label > MAX_LABEL {
            return Err(DnsError::BadName);
        }
        put(&mut vars.next, off + label + 1);
    }
    if get(&vars.done) == 0 {
        return Err(DnsError::BadName);
    }
    Ok(get(&vars.next))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::vec::Vec;

    /// Builds DNS responses by hand so every field is under the test's control.
    pub struct Msg(pub Vec<u8>);

    impl Msg {
        pub fn response(id: u16, qname: &str, qtype: u16, answers: u16) -> Self {
            let mut m = Vec::new();
            m.extend_from_slice(&id.to_be_bytes());
            m.extend_from_slice(&0x8180u16.to_be_bytes());
            m.extend_from_slice(&1u16.to_be_bytes());
            m.extend_from_slice(&answers.to_be_bytes());
            m.extend_from_slice(&[0, 0, 0, 0]);
            push_name(&mut m, qname);
            m.extend_from_slice(&qtype.to_be_bytes());
            m.extend_from_slice(&CLASS_IN.to_be_bytes());
            Msg(m)
        }

        /// Appends a record whose owner is a pointer to the question name.
        pub fn record_ptr(mut self, rtype: u16, ttl: u32, rdata: &[u8]) -> Self {
            self.0.extend_from_slice(&[0xc0, 12]);
            self.rr_tail(rtype, ttl, rdata)
        }

        /// Appends a record whose owner is a pointer to `offset`.
        pub fn record_at(mut self, offset: u16, rtype: u16, ttl: u32, rdata: &[u8]) -> Self {
            self.0.extend_from_slice(&(0xc000 | offset).to_be_bytes());
            self.rr_tail(rtype, ttl, rdata)
        }

        pub fn record_named(mut self, owner: &str, rtype: u16, ttl: u32, rdata: &[u8]) -> Self {
            push_name(&mut self.0, owner);
            self.rr_tail(rtype, ttl, rdata)
        }

        fn rr_tail(mut self, rtype: u16, ttl: u32, rdata: &[u8]) -> Self {
            self.0.extend_from_slice(&rtype.to_be_bytes());
            self.0.extend_from_slice(&CLASS_IN.to_be_bytes());
            self.0.extend_from_slice(&ttl.to_be_bytes());
            self.0.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            self.0.extend_from_slice(rdata);
            self
        }

        pub fn window(&self) -> ([u8; WINDOW], u32) {
            let mut w = [0u8; WINDOW];
            let n = self.0.len().min(WINDOW);
            w[..n].copy_from_slice(&self.0[..n]);
            (w, n as u32)
        }
    }

    pub fn push_name(m: &mut Vec<u8>, name: &str) {
        for label in name.split('.').filter(|l| !l.is_empty()) {
            m.push(label.len() as u8);
            m.extend_from_slice(label.as_bytes());
        }
        m.push(0);
    }

    fn parse(msg: &Msg) -> Result<(Question, Vec<AddressRecord>), DnsError> {
        let (w, len) = msg.window();
        let mut key = [0u8; NAME_KEY_LEN];
        let mut vars = LoopVars::default();
        let q = parse_question(&w, len, &mut key, &mut vars)?;
        let mut records = [AddressRecord::default(); RECORD_SLOTS];
        let n = collect_addresses(&w, len, &q, &mut vars, &mut records)?;
        Ok((q, records[..n as usize].to_vec()))
    }

    #[test]
    fn a_records_with_pointer_owners() {
        let msg = Msg::response(7, "Registry.Example.com", TYPE_A, 2)
            .record_ptr(TYPE_A, 300, &[10, 0, 0, 1])
            .record_ptr(TYPE_A, 60, &[10, 0, 0, 2]);
        let (q, found) = parse(&msg).unwrap();
        assert_eq!(q.id, 7);
        assert_eq!(q.name.text_len, 20);
        assert_eq!(q.qtype, TYPE_A);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].addr, [10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(found[0].ttl, 300);
        assert_eq!(found[1].ttl, 60);
    }

    #[test]
    fn cname_chain_then_aaaa() {
        let v6 = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let mut cname = Vec::new();
        push_name(&mut cname, "cdn.example.net");
        let msg = Msg::response(1, "registry.example.com", TYPE_AAAA, 2).record_ptr(TYPE_CNAME, 30, &cname);
        let target = msg.0.len() as u16 - cname.len() as u16;
        let msg = msg.record_at(target, TYPE_AAAA, 120, &v6);
        let (_, found) = parse(&msg).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].family, 6);
        assert_eq!(found[0].addr, v6);
    }

    #[test]
    fn a_chain_of_cnames_is_followed_even_through_pointer_targets() {
        // registry → CNAME edge.cdn.net → CNAME pop.cdn.net → A, each owner
        // a pointer to the previous CNAME's target.
        let mut first = Vec::new();
        push_name(&mut first, "edge.cdn.net");
        let msg = Msg::response(1, "registry.example.com", TYPE_A, 3).record_ptr(TYPE_CNAME, 30, &first);
        let edge = msg.0.len() as u16 - first.len() as u16;
        let mut second = Vec::new();
        push_name(&mut second, "pop.cdn.net");
        let msg = msg.record_at(edge, TYPE_CNAME, 30, &second);
        let pop = msg.0.len() as u16 - second.len() as u16;
        let msg = msg.record_at(pop, TYPE_A, 60, &[10, 9, 9, 9]);
        let (_, found) = parse(&msg).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(&found[0].addr[..4], &[10, 9, 9, 9]);
    }

    #[test]
    fn records_for_names_off_the_chain_teach_nothing() {
        // An allowed question whose answer also vouches for another name:
        // written out in full, or as a pointer to a name that is not on the
        // chain (the owner of an unrelated record).
        let mut other = Vec::new();
        push_name(&mut other, "evil.example");
        let msg = Msg::response(1, "registry.example.com", TYPE_A, 4)
            .record_ptr(TYPE_A, 60, &[10, 0, 0, 1])
            .record_named("evil.example", TYPE_A, 60, &[10, 6, 6, 6]);
        let evil_owner = (msg.0.len() - 14 - other.len()) as u16;
        let msg = msg.record_at(evil_owner, TYPE_A, 60, &[10, 6, 6, 7]).record_at(
            HEADER_LEN as u16 + 1,
            TYPE_A,
            60,
            &[10, 6, 6, 8],
        );
        let (w, len) = msg.window();
        let mut key = [0u8; NAME_KEY_LEN];
        let mut vars = LoopVars::default();
        let q = parse_question(&w, len, &mut key, &mut vars).unwrap();
        let mut records = [AddressRecord::default(); RECORD_SLOTS];
        let n = collect_addresses(&w, len, &q, &mut vars, &mut records).unwrap();
        assert_eq!(n, 1, "only the question's own record");
        assert_eq!(&records[0].addr[..4], &[10, 0, 0, 1]);
        assert_eq!(vars.off_chain, 3);
        // A CNAME off the chain does not extend it.
        let mut target = Vec::new();
        push_name(&mut target, "sneaky.example");
        let msg =
            Msg::response(1, "registry.example.com", TYPE_A, 2).record_named("evil.example", TYPE_CNAME, 30, &target);
        let sneaky = msg.0.len() as u16 - target.len() as u16;
        let msg = msg.record_at(sneaky, TYPE_A, 60, &[10, 6, 6, 9]);
        let (_, found) = parse(&msg).unwrap();
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn wrong_rdata_lengths_and_classes_are_skipped() {
        let mut msg = Msg::response(1, "a.example", TYPE_A, 3).record_ptr(TYPE_A, 1, &[1, 2, 3]).record_ptr(
            TYPE_AAAA,
            1,
            &[1, 2, 3, 4],
        );
        // A record of class CH (3).
        msg.0.extend_from_slice(&[0xc0, 12, 0, 1, 0, 3, 0, 0, 0, 1, 0, 4, 9, 9, 9, 9]);
        let (_, found) = parse(&msg).unwrap();
        assert!(found.is_empty());
    }

    #[test]
    fn truncated_messages_fail_without_reading_past_the_end() {
        let msg = Msg::response(1, "registry.example.com", TYPE_A, 1).record_ptr(TYPE_A, 1, &[10, 0, 0, 1]);
        for cut in 0..msg.0.len() {
            let short = Msg(msg.0[..cut].to_vec());
            let r = parse(&short);
            assert!(r.is_err() || r.as_ref().unwrap().1.is_empty(), "cut at {cut}: {r:?}");
        }
        // The record count claims more than the message holds.
        let lying = Msg::response(1, "x.example", TYPE_A, 5).record_ptr(TYPE_A, 1, &[10, 0, 0, 1]);
        let (w, len) = lying.window();
        let mut key = [0u8; NAME_KEY_LEN];
        let mut vars = LoopVars::default();
        let q = parse_question(&w, len, &mut key, &mut vars).unwrap();
        let mut records = [AddressRecord::default(); RECORD_SLOTS];
        let r = collect_addresses(&w, len, &q, &mut vars, &mut records);
        assert_eq!(r, Err(DnsError::Truncated));
        assert_eq!(vars.found, 1, "records before the damage are still collected");
        assert_eq!(&records[0].addr[..4], &[10, 0, 0, 1]);
    }

    #[test]
    fn a_query_parses_as_a_query_only() {
        let mut query = Msg::response(0x1234, "Registry.Example.com", TYPE_AAAA, 0);
        query.0[2] = 0x01; // QR clear, RD set
        let (w, len) = query.window();
        let mut key = [0u8; NAME_KEY_LEN];
        let mut vars = LoopVars::default();
        let q = parse_query(&w, len, &mut key, &mut vars).unwrap();
        assert_eq!((q.id, q.qtype), (0x1234, TYPE_AAAA));
        // The same name in an answer gives the same host id (case folded).
        let answer = Msg::response(0x1234, "registry.example.COM", TYPE_AAAA, 0);
        let (w2, len2) = answer.window();
        let a = parse_question(&w2, len2, &mut key, &mut vars).unwrap();
        assert_eq!(a.name.host_id, q.name.host_id);
        assert_eq!(parse_query(&w2, len2, &mut key, &mut vars).unwrap_err(), DnsError::NotAnswer);
    }

    #[test]
    fn queries_and_multi_question_messages_are_not_answers() {
        let mut query = Msg::response(1, "x.example", TYPE_A, 0);
        query.0[2] = 0x01;
        assert_eq!(parse(&query).unwrap_err(), DnsError::NotAnswer);
        let mut two = Msg::response(1, "x.example", TYPE_A, 0);
        two.0[5] = 2;
        assert_eq!(parse(&two).unwrap_err(), DnsError::NotAnswer);
    }

    #[test]
    fn pointer_loops_and_bad_labels_are_malformed() {
        let mut msg = Msg::response(1, "x.example", TYPE_A, 1);
        // Owner label length 0x50: neither a label (> 63) nor a pointer.
        msg.0.extend_from_slice(&[0x50, 0, 0, 0]);
        assert_eq!(parse(&msg).unwrap_err(), DnsError::BadName);
        // A question name whose label runs past the message.
        let mut short = Msg::response(1, "x.example", TYPE_A, 0);
        short.0[12] = 60;
        assert!(parse(&short).is_err());
    }

    #[test]
    fn answers_are_capped() {
        let mut msg = Msg::response(1, "x.example", TYPE_A, 40);
        for i in 0..40u8 {
            msg = msg.record_ptr(TYPE_A, 1, &[10, 0, 0, i]);
        }
        let (_, found) = parse(&msg).unwrap();
        assert_eq!(found.len(), MAX_ANSWERS as usize);
    }
}
