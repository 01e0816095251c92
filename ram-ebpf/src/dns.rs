//! cgroup_skb/ingress: learn the addresses of allowed names from DNS answers
//! of trusted resolvers, before the answer reaches the socket — so a process
//! that connects right after resolving is never denied.
//!
//! Every packet passes (this hook only learns); answers from resolvers are
//! also sent to ramd as events with their raw message.

use aya_ebpf::{
    bindings::__sk_buff,
    helpers::generated::{bpf_ktime_get_ns, bpf_skb_cgroup_id, bpf_skb_load_bytes},
    maps::lpm_trie::Key,
    programs::SkBuffContext,
};
use ram_common::{
    bounded::{get, index, put},
    dns::{
        collect_addresses, parse_question, read_step_code, walk_name, AddressRecord, LoopVars, Steps, HEADER_LEN,
        MAX_ANSWERS, RECORD_SLOTS, WINDOW, WINDOW_MASK,
    },
    event::{DnsEvent, EventHeader, KIND_DNS},
    maps::{counter, Learn4Key, Learn6Key, Learned},
    name::NAME_KEY_LEN,
    verdict::{clamp_ttl, name_allowed, name_port_set, scope_bit},
};

use crate::{
    events::send_dns,
    judge::{is_resolver, Dest, DNS_PORT},
    maps::{count, name_seed, scope, scope_config, RAM_HOSTS, RAM_LEARN4, RAM_LEARN6, RAM_NAMES, RAM_SCRATCH},
    queries::{answers_a_query, header_address, packet_family, query_key, transport_and_port},
    skb::{destination_at, load, source_at, IPPROTO_TCP, IPPROTO_UDP},
    stream::{each_message, Direction},
    trust::trusted_socket,
};
use crate::diag::{note, say, why};

const PASS: i32 = 1;
const NANOS_PER_SEC: u64 = 1_000_000_000;

#[inline(always)]
pub fn on_ingress(ctx: &SkBuffContext) -> i32 {
    let _ = find_answers(ctx);
    PASS
}

/// A length the verifier can see is within [1, WINDOW].
#[inline(always)]
fn window_len(len: u32) -> u32 {
    let len = if len > WINDOW as u32 { WINDOW as u32 } else { len };
    ((len.wrapping_sub(1)) & WINDOW_MASK as u32) + 1
}

/// Finds the DNS answers in a packet from a trusted resolver's port 53 —
/// the UDP payload, or each whole message at a tracked place of a TCP
/// stream — and learns from each.
#[inline(always)]
fn find_answers(ctx: &SkBuffContext) -> Option<()> {
    let scope = scope();
    let family = packet_family(ctx)?;
    let (protocol, l4, source) = if family == 4 {
        let ip: [u8; 20] = load(ctx, 0)?;
        (ip[9], ((ip[0] & 0x0f) as u32) * 4, Dest::v4([ip[12], ip[13], ip[14], ip[15]]))
    } else {
        let ip: [u8; 40] = load(ctx, 0)?;
        let mut source = [0u8; 16];
        source.copy_from_slice(&ip[8..24]);
        (ip[6], 40, Dest::v6(source))
    };
    // Cheapest tests first: most packets are not UDP or TCP from port 53,
    // and those leave before any map lookup.
    if protocol != IPPROTO_UDP && protocol != IPPROTO_TCP {
        return None;
    }
    let ports: [u8; 4] = load(ctx, l4)?;
    if u16::from_be_bytes([ports[0], ports[1]]) != DNS_PORT {
        return None;
    }
    if !is_resolver(scope, source) {
        return None;
    }
    let client_port = u16::from_be_bytes([ports[2], ports[3]]);
    let skb = ctx.skb.skb;
    if protocol == IPPROTO_UDP {
        let start = l4 + 8;
        // SAFETY: valid context.
        let len = unsafe { (*skb).len }.checked_sub(start)?;
        ram_learn_answer(skb, start, len, transport_and_port(IPPROTO_UDP, client_port));
        say!(ctx);
    } else if protocol == IPPROTO_TCP {
        ram_track_answers(skb, l4, client_port as u32);
    }
    Some(())
}

/// The answers of a TCP segment from a resolver (header at `l4`), each at
/// a tracked place of its stream. A global function, verified once.
#[no_mangle]
#[inline(never)]
pub extern "C" fn ram_track_answers(skb: *mut __sk_buff, l4: u32, client_port: u32) -> u32 {
    let ctx = SkBuffContext::new(skb);
    let tracked = each_message(&ctx, scope(), l4, Direction::Answers, |start, len| {
        ram_learn_answer(skb, start, len, transport_and_port(IPPROTO_TCP, client_port as u16));
        say!(&ctx);
    });
    u32::from(tracked.is_some())
}

/// Learns from the answer of `len` bytes at `start` of this packet, which
/// comes from a trusted resolver to the client (the packet's destination,
/// `transport_port`'s port). A global function: the verifier checks it
/// once, and the program calls it for each answer of a TCP segment at one
/// instruction each.
#[no_mangle]
#[inline(never)]
pub extern "C" fn ram_learn_answer(skb: *mut __sk_buff, start: u32, len: u32, transport_port: u32) -> u32 {
    let ctx = SkBuffContext::new(skb);
    u32::from(learn(&ctx, start, len, transport_port).is_some())
}

#[inline(always)]
fn learn(ctx: &SkBuffContext, start: u32, len: u32, transport_port: u32) -> Option<()> {
    let scope = scope();
    note!(|notes| *notes = crate::diag::Notes::default());
    if len < HEADER_LEN {
        return None;
    }
    if !trusted_socket(ctx.skb.skb, scope) {
        // Not a socket in the trusted network namespace that asked a
        // resolver: whatever it was sent, it answers no query ram trusts.
        count(scope, counter::DNS_ANSWERS);
        count(scope, counter::DNS_UNMATCHED);
        note!(|notes| {
            notes.why |= why::UNTRUSTED_SOCKET;
            notes.port = transport_port & 0xffff;
        });
        return None;
    }
    let family = packet_family(ctx)?;
    let beyond_window = len > WINDOW as u32;
    let len = window_len(len);
    let scratch = RAM_SCRATCH.get_ptr_mut(0)?;
    // SAFETY: per-CPU scratch, used by one program run at a time on this CPU.
    let scratch = unsafe { &mut *scratch };
    put(&mut scratch.beyond_window, u32::from(beyond_window));
    // SAFETY: `len` is within [1, WINDOW], the size of `msg`.
    let rc = unsafe { bpf_skb_load_bytes(ctx.skb.skb as *const _, start, scratch.msg.as_mut_ptr() as *mut _, len) };
    if rc != 0 {
        return None;
    }
    // From here on, where the message sits lives in memory only: the paths
    // that found it (IPv4/IPv6, UDP/TCP) then reach the parser in one state,
    // and the verifier walks the parser once instead of once per path.
    put(&mut scratch.message_start, start);
    put(&mut scratch.message_len, len);
    // The resolver is the answer's source, the client its destination.
    let resolver = header_address(ctx, family, source_at(family == 4))?;
    let client = header_address(ctx, family, destination_at(family == 4))?;
    scratch.query = query_key(scope, family, resolver, client, transport_port as u16, 0, 0);
    scratch.query.transport = (transport_port >> 16) as u8;
    count(scope, counter::DNS_ANSWERS);
    let question =
        match parse_question(&scratch.msg, get(&scratch.message_len), &mut scratch.key.data, &mut scratch.vars) {
            Ok(q) => q,
            Err(_) => {
                count(scope, counter::DNS_MALFORMED);
                note!(|notes| notes.why |= why::QUESTION_UNREADABLE);
                return None;
            }
        };
    let text_len = question.name.text_len;
    scratch.key.prefix_bits = text_len * 8;
    // SAFETY: NameKey has the layout of an LPM key over NAME_KEY_LEN bytes.
    let key = unsafe { &*(&scratch.key as *const _ as *const Key<[u8; NAME_KEY_LEN]>) };
    let (allowed, port_set) = match RAM_NAMES.get(key) {
        Some(rule) if name_allowed(rule, text_len, scope) => (true, name_port_set(rule, text_len, scope)),
        _ => (false, 0),
    };
    if !allowed {
        count(scope, counter::DNS_NOT_ALLOWED);
    }
    // Only an answer to a query this scope sent teaches.
    scratch.query.id = question.id;
    scratch.query.qtype = question.qtype;
    let matched = answers_a_query(&scratch.query, question.name.host_id, scope_config(scope).answer_window_ms);
    if !matched {
        count(scope, counter::DNS_UNMATCHED);
    }
    note!(|notes| {
        notes.text_len = text_len;
        notes.why |= if !allowed {
            why::NOT_ALLOWED
        } else if !matched {
            why::UNMATCHED
        } else {
            0
        };
    });
    put(&mut scratch.matched, u32::from(matched));
    let allowed = allowed && matched;
    // The verdict and the host id live in memory across the answer loop, so
    // the allowed and not-allowed paths walk it as one (older verifiers do
    // not prune them otherwise).
    put(&mut scratch.port_set, port_set);
    put(&mut scratch.allowed, u32::from(allowed));
    put(&mut scratch.host_id, question.name.host_id);
    put(&mut scratch.vars.seed, name_seed());
    let collected = collect_addresses(
        &scratch.msg,
        get(&scratch.message_len),
        &question,
        &mut scratch.vars,
        &mut scratch.records,
        &GlobalSteps,
    );
    // A malformed message teaches nothing (as the full parser in ramd
    // refuses it whole); only a message cut by the window keeps the records
    // that fit.
    if collected.is_err() {
        count(scope, counter::DNS_MALFORMED);
        if get(&scratch.beyond_window) == 0 {
            put(&mut scratch.vars.found, 0);
            note!(|notes| notes.why |= why::RECORDS_MALFORMED);
        }
    }
    if get(&scratch.vars.off_chain) != 0 {
        count(scope, counter::DNS_OFF_CHAIN);
        note!(|notes| notes.why |= why::OFF_CHAIN);
    }
    let allowed = get(&scratch.allowed) != 0;
    let host_id = get(&scratch.host_id);
    let config = scope_config(scope);
    // SAFETY: helper without preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    let mut found = get(&scratch.vars.found);
    let cap = if config.max_addresses == 0 { MAX_ANSWERS } else { config.max_addresses };
    if allowed && found > cap {
        count(scope, counter::LEARN_CAPPED);
        note!(|notes| {
            notes.why |= why::CAPPED;
            notes.found = found;
            notes.cap = cap;
        });
        found = cap;
    }
    put(&mut scratch.learned, 0);
    put(&mut scratch.next_record, 0);
    for _ in 0..MAX_ANSWERS {
        let i = get(&scratch.next_record);
        if !allowed || i >= found {
            break;
        }
        let record = scratch.records[index(i, RECORD_SLOTS - 1)];
        let ttl = clamp_ttl(record.ttl, config.min_ttl, config.max_ttl);
        let value =
            Learned { expires_ns: now + ttl as u64 * NANOS_PER_SEC, host_id, ttl, port_set: get(&scratch.port_set) };
        let inserted = if record.family == 4 {
            let key = Learn4Key { scope, addr: [record.addr[0], record.addr[1], record.addr[2], record.addr[3]] };
            RAM_LEARN4.insert(&key, &value, 0)
        } else {
            RAM_LEARN6.insert(&Learn6Key { scope, addr: record.addr }, &value, 0)
        };
        if inserted.is_ok() {
            let learned = get(&scratch.learned) + 1;
            put(&mut scratch.learned, learned);
        } else {
            // Map full: the address stays unknown, so connects to it fail closed.
            count(scope, counter::LEARN_MAP_FULL);
            note!(|notes| notes.why |= why::MAP_FULL);
        }
        put(&mut scratch.next_record, i + 1);
    }
    let learned = get(&scratch.learned);
    if learned > 0 {
        count(scope, counter::DNS_LEARNED);
        note!(|notes| {
            notes.why |= why::LEARNED;
            notes.learned = learned;
        });
        // The hosts map stores the key with its length in bits, like the trie.
        let _ = RAM_HOSTS.insert(&host_id, &scratch.key, 0);
    }
    let (start, len) = (get(&scratch.message_start), get(&scratch.message_len));
    let matched = get(&scratch.matched) != 0;
    emit_dns(ctx, scope, start, len, allowed, matched, learned);
    Some(())
}

/// The answer parser's steps as global functions: the verifier checks each
/// once, on its own, and a call costs one instruction where it is made.
/// Inline, a record loop of 32 records, each with a name walk of 32 steps,
/// costs the verifier several times more on every kernel. Both work on this
/// CPU's scratch — the memory the caller hands the parser (whose accesses
/// are all volatile) — and leave their outcome in its loop state.
struct GlobalSteps;

impl Steps for GlobalSteps {
    #[inline(always)]
    fn walk(&self, _msg: &[u8; WINDOW], start: u32, _vars: &mut LoopVars) {
        ram_walk_name(start);
    }

    #[inline(always)]
    fn read(&self, _msg: &[u8; WINDOW], _vars: &mut LoopVars, _records: &mut [AddressRecord; RECORD_SLOTS]) -> u32 {
        ram_read_record()
    }
}

/// [`walk_name`] on this CPU's scratch message. Without the scratch it
/// walks nothing, and the caller's "malformed" stands.
#[no_mangle]
#[inline(never)]
pub extern "C" fn ram_walk_name(start: u32) -> u32 {
    let Some(scratch) = RAM_SCRATCH.get_ptr_mut(0) else {
        return 1;
    };
    // SAFETY: this CPU's scratch; the caller is suspended in the call.
    let scratch = unsafe { &mut *scratch };
    walk_name(&scratch.msg, start, &mut scratch.vars);
    0
}

/// The record loop's step on this CPU's scratch; its error code (0: none).
#[no_mangle]
#[inline(never)]
pub extern "C" fn ram_read_record() -> u32 {
    let Some(scratch) = RAM_SCRATCH.get_ptr_mut(0) else {
        return ram_common::dns::error_code(ram_common::dns::DnsError::Truncated);
    };
    // SAFETY: as above.
    let scratch = unsafe { &mut *scratch };
    read_step_code(&scratch.msg, &mut scratch.vars, &mut scratch.records, &GlobalSteps)
}

#[inline(always)]
fn emit_dns(ctx: &SkBuffContext, scope: u32, start: u32, len: u32, allowed: bool, matched: bool, learned: u32) {
    send_dns(ctx, scope, |event| {
        // SAFETY: `event` points at writable memory of DnsEvent's size (a
        // ring-buffer reservation or this CPU's event buffer); every field
        // is written before it is sent.
        unsafe {
            (*event).header = EventHeader { kind: KIND_DNS, scope };
            (*event).cgroup_id = bpf_skb_cgroup_id(ctx.skb.skb);
            (*event).learned = learned;
            (*event).allowed = allowed as u32;
            (*event).matched = matched as u32;
            let len = window_len(len);
            let copied =
                bpf_skb_load_bytes(ctx.skb.skb as *const _, start, (*event).message.as_mut_ptr() as *mut _, len);
            (*event).message_len = if copied == 0 { len } else { 0 };
        }
    });
}
