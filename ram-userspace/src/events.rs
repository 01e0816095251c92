//! Ring-buffer events → log lines.
//!
//! Blocked events become one line each with who (pid, comm), where (address,
//! port) and, when a DNS answer named that address, which host. DNS events
//! carry the raw answer, which is parsed again here with hickory-proto to
//! name addresses (including answers for names the policy does not allow, so
//! a blocked attempt can still be named).

use std::{
    collections::{HashMap, VecDeque},
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use hickory_proto::{op::Message, rr::RData};
use ram_common::event::{
    BlockedEvent, DnsEvent, EventHeader, ACTION_WOULD_BLOCK, HOOK_CONNECT, HOOK_EGRESS, HOOK_SENDMSG, KIND_BLOCKED,
    KIND_DNS,
};
use serde::Serialize;

/// A decoded event.
pub enum Event {
    Blocked(BlockedEvent),
    Dns(Box<DnsEvent>),
}

fn read<T: aya::Pod>(bytes: &[u8]) -> Option<T> {
    if bytes.len() < std::mem::size_of::<T>() {
        return None;
    }
    // SAFETY: length checked; T is Pod (valid for any bytes); read_unaligned
    // copes with the ring buffer's alignment.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr() as *const T) })
}

/// Decodes one ring-buffer record; None for unknown kinds or short records.
pub fn decode(bytes: &[u8]) -> Option<Event> {
    let header: EventHeader = read(bytes)?;
    match header.kind {
        KIND_BLOCKED => read(bytes).map(Event::Blocked),
        KIND_DNS => read::<DnsEvent>(bytes).map(|e| Event::Dns(Box::new(e))),
        _ => None,
    }
}

pub fn event_addr(family: u8, addr: &[u8; 16]) -> IpAddr {
    if family == 4 {
        IpAddr::V4(Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]))
    } else {
        IpAddr::V6(Ipv6Addr::from(*addr))
    }
}

pub fn comm(raw: &[u8; 16]) -> String {
    let end = raw.iter().position(|b| *b == 0).unwrap_or(raw.len());
    // A process names itself (PR_SET_NAME takes any bytes): a newline or an
    // escape sequence in it would start a log line of its own in the text
    // log (journald splits lines).
    String::from_utf8_lossy(&raw[..end]).chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

pub fn protocol_name(protocol: u8) -> String {
    match protocol {
        1 => "icmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        43 => "ipv6-route".into(),
        58 => "icmpv6".into(),
        255 => "raw".into(),
        other => format!("ip-proto-{other}"),
    }
}

pub fn hook_name(hook: u8) -> &'static str {
    match hook {
        HOOK_CONNECT => "connect",
        HOOK_SENDMSG => "sendmsg",
        HOOK_EGRESS => "egress",
        _ => "unknown",
    }
}

/// What a DNS answer said, per the full parser.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DnsSummary {
    pub name: String,
    /// Addresses of records owned by the question or a name on its CNAME
    /// chain: what may be learned.
    pub addrs: Vec<IpAddr>,
    /// Addresses of records owned by any other name: never learned.
    pub off_chain: Vec<IpAddr>,
    /// Smallest TTL of the address records on the chain.
    pub ttl: Option<u32>,
}

/// Parses a DNS message with hickory-proto and follows the question's
/// CNAME chain by name, comparing names exactly (the kernel compares
/// hashes of them).
pub fn summarize_dns(message: &[u8]) -> Result<DnsSummary, String> {
    let msg = Message::from_vec(message).map_err(|e| e.to_string())?;
    let question = msg.queries.first().ok_or("no question")?;
    Ok(chain_summary(question.name(), &msg.answers))
}

/// The same for the first bytes of an answer cut short (the kernel sees
/// at most `dns::WINDOW` bytes): the question and the answer records that
/// are whole in them, read one by one as far as they go. The kernel learns
/// from exactly those, so they are what its learning is checked against.
pub fn summarize_dns_prefix(message: &[u8]) -> Result<DnsSummary, String> {
    use hickory_proto::{
        op::{Header, Query},
        rr::Record,
        serialize::binary::{BinDecodable, BinDecoder},
    };
    let mut decoder = BinDecoder::new(message);
    let header = Header::read(&mut decoder).map_err(|e| e.to_string())?;
    if header.counts.queries != 1 {
        return Err("not one question".into());
    }
    let question = Query::read(&mut decoder).map_err(|e| e.to_string())?;
    let mut answers = Vec::new();
    for _ in 0..header.counts.answers {
        match Record::read(&mut decoder) {
            Ok(record) => answers.push(record),
            Err(_) => break,
        }
    }
    Ok(chain_summary(question.name(), &answers))
}

/// The question's name of a message the full parser refuses as a whole,
/// when the question itself can be read.
pub fn question_name(message: &[u8]) -> Option<String> {
    use hickory_proto::{
        op::{Header, Query},
        serialize::binary::{BinDecodable, BinDecoder},
    };
    let mut decoder = BinDecoder::new(message);
    Header::read(&mut decoder).ok()?;
    let question = Query::read(&mut decoder).ok()?;
    Some(question.name().to_ascii().trim_end_matches('.').to_ascii_lowercase())
}

/// Follows the question's CNAME chain by name through `answers`.
fn chain_summary(question: &hickory_proto::rr::Name, answers: &[hickory_proto::rr::Record]) -> DnsSummary {
    let fold = |name: &hickory_proto::rr::Name| name.to_ascii().trim_end_matches('.').to_ascii_lowercase();
    let name = fold(question);
    let mut chain = vec![name.clone()];
    let (mut addrs, mut off_chain) = (Vec::new(), Vec::new());
    let mut ttl: Option<u32> = None;
    for record in answers {
        let on_chain = chain.contains(&fold(&record.name));
        let addr = match &record.data {
            RData::CNAME(target) if on_chain => {
                chain.push(fold(&target.0));
                continue;
            }
            RData::A(a) => IpAddr::V4(a.0),
            RData::AAAA(a) => IpAddr::V6(a.0),
            _ => continue,
        };
        if on_chain {
            addrs.push(addr);
            ttl = Some(ttl.map_or(record.ttl, |t| t.min(record.ttl)));
        } else {
            off_chain.push(addr);
        }
    }
    DnsSummary { name, addrs, off_chain, ttl }
}

/// What the kernel's parser (ram-common, the code the ingress program runs)
/// learns from `message`: the question's host id and the addresses, or None
/// when it learns nothing. ramd uses it to undo what the kernel learned from
/// an answer the full parser refuses; the agreement tests use it too.
pub fn kernel_learning(message: &[u8]) -> Option<(u64, Vec<IpAddr>)> {
    use ram_common::dns::{collect_addresses, parse_question, AddressRecord, Inline, LoopVars, RECORD_SLOTS, WINDOW};
    let mut window = [0u8; WINDOW];
    let len = message.len().min(WINDOW);
    window[..len].copy_from_slice(&message[..len]);
    let mut key = [0u8; ram_common::name::NAME_KEY_LEN];
    let mut vars = LoopVars::default();
    let question = parse_question(&window, len as u32, &mut key, &mut vars).ok()?;
    let mut records = [AddressRecord::default(); RECORD_SLOTS];
    let found = collect_addresses(&window, len as u32, &question, &mut vars, &mut records, &Inline).ok()?;
    let addrs = records[..found as usize].iter().map(|r| event_addr(r.family, &r.addr)).collect();
    Some((question.name.host_id, addrs))
}

/// What the kernel learned from an answer that the full parser says it
/// must not have: addresses off the CNAME chain, or every address when the
/// policy does not allow the question. It should always be empty; ramd
/// removes whatever it names from the learned maps and raises an alert.
pub fn not_to_learn(summary: &DnsSummary, policy_allows_name: bool) -> Vec<IpAddr> {
    if policy_allows_name {
        summary.off_chain.iter().copied().filter(|a| !summary.addrs.contains(a)).collect()
    } else {
        summary.addrs.iter().chain(&summary.off_chain).copied().collect()
    }
}

/// Recently seen address → hostname, from DNS answers, per cgroup: the
/// name an answer to a socket of that cgroup gave the address. Bounded: the
/// oldest names are forgotten first.
///
/// Per cgroup, because a name is what whoever asked chose: a process of
/// another cgroup (another target's, a container's, a build step's) could
/// otherwise resolve a name of its own to the address a runtime is refused,
/// and the runtime's blocked line, its hint and `ramctl suggest` would name
/// that name as the rule to add (whose owner then points it anywhere).
pub struct HostCache {
    names: HashMap<(u64, IpAddr), String>,
    order: VecDeque<(u64, IpAddr)>,
    capacity: usize,
}

impl HostCache {
    pub fn new(capacity: usize) -> Self {
        HostCache { names: HashMap::new(), order: VecDeque::new(), capacity }
    }

    /// `host` gave `addr` in an answer to a socket of cgroup `cgroup_id`.
    pub fn remember(&mut self, cgroup_id: u64, addr: IpAddr, host: &str) {
        if self.names.insert((cgroup_id, addr), host.to_string()).is_none() {
            self.order.push_back((cgroup_id, addr));
            while self.order.len() > self.capacity {
                if let Some(old) = self.order.pop_front() {
                    self.names.remove(&old);
                }
            }
        }
    }

    /// The name an answer to cgroup `cgroup_id` last gave `addr`.
    pub fn get(&self, cgroup_id: u64, addr: &IpAddr) -> Option<&str> {
        self.names.get(&(cgroup_id, *addr)).map(String::as_str)
    }
}

/// A DNS answer ramd saw, and what it taught, for `ramctl explain`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct AnswerRecord {
    /// When ramd read it (milliseconds since the Unix epoch).
    pub at_unix_ms: u64,
    pub target: String,
    /// The question's name ("" when even the question could not be read).
    pub name: String,
    /// Addresses on the question's CNAME chain.
    pub addrs: Vec<IpAddr>,
    /// Addresses owned by other names: never learned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub off_chain: Vec<IpAddr>,
    pub ttl: Option<u32>,
    pub learned: u32,
    /// What it taught, or why it taught nothing, in words.
    pub outcome: String,
}

/// What an answer taught, or why nothing: the learning path's checks in the
/// kernel's order, from what the kernel reported (`matched`, `learned`)
/// and the policy (`name_allowed`).
pub fn answer_outcome(summary: &DnsSummary, name_allowed: bool, matched: bool, learned: u32) -> String {
    let off_chain = match summary.off_chain.len() {
        0 => String::new(),
        n => format!("; {n} address(es) of other names than the question's CNAME chain ignored"),
    };
    if learned > 0 {
        let of = summary.addrs.len() as u32;
        let rest = if learned < of {
            format!(" of {of} (the rest: over [limits] addresses_per_answer, or the learned-address map is full)")
        } else {
            String::new()
        };
        return format!("learned {learned} address(es){rest}{off_chain}");
    }
    let why = if !name_allowed {
        format!("no rule of this target allows {}", summary.name)
    } else if !matched {
        "it answers no query this target sent: forged, sent to another socket or from another resolver, or later than [dns] answer_window".to_string()
    } else if summary.addrs.is_empty() {
        "no A or AAAA record on the question's CNAME chain".to_string()
    } else {
        "allowed and matched, yet nothing learned: the learned-address map is full (ram_learned_map_full in the metrics)".to_string()
    };
    format!("nothing learned: {why}{off_chain}")
}

/// A blocked attempt, ready to log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BlockedRecord {
    /// "blocked", or "would_block" in audit mode.
    pub event: &'static str,
    /// When ramd read it (milliseconds since the Unix epoch).
    pub at_unix_ms: u64,
    pub target: String,
    pub pid: u32,
    pub comm: String,
    pub daddr: IpAddr,
    pub dport: u16,
    pub host: Option<String>,
    pub protocol: String,
    pub hook: &'static str,
    pub cgroup_id: u64,
    /// The container the attempt came from, for container targets:
    /// "name (id, image)".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Attempts like this one (same target, process, destination,
    /// protocol and hook) that were not logged (see [`crate::log_limit`]);
    /// 0 for an attempt as it happened.
    #[serde(skip_serializing_if = "is_zero")]
    pub repeats: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl BlockedRecord {
    pub fn new(event: &BlockedEvent, target: String, hosts: &HostCache) -> Self {
        let daddr = event_addr(event.family, &event.addr);
        BlockedRecord {
            event: if event.action == ACTION_WOULD_BLOCK { "would_block" } else { "blocked" },
            at_unix_ms: crate::sys::unix_ms(),
            target,
            pid: event.pid,
            comm: comm(&event.comm),
            daddr,
            dport: event.port,
            host: hosts.get(event.cgroup_id, &daddr).map(str::to_string),
            protocol: protocol_name(event.protocol),
            hook: hook_name(event.hook),
            cgroup_id: event.cgroup_id,
            container: None,
            repeats: 0,
        }
    }

    /// What an admin can do about it: see the verdict and the rule that
    /// would allow it.
    pub fn hint(&self) -> String {
        let port = self.dport;
        let target = &self.target;
        match &self.host {
            Some(host) => format!(
                "`ramctl check {host} {port} --target {target}` shows the verdict; to allow it, add host = \"{host}\" to an [[allow]] of target {target}"
            ),
            None => format!(
                "no trusted DNS answer named {addr} (a hard-coded address, or another resolver): `ramctl check {addr} {port} --target {target}` shows the verdict; allow it by name, or with cidr = \"{addr}/{bits}\" only if it is meant to bypass DNS",
                addr = self.daddr,
                bits = if self.daddr.is_ipv4() { 32 } else { 128 },
            ),
        }
    }

    /// Logs the record: one line, with every field as a structured field.
    /// With `repeats`, the line stands for that many more attempts.
    pub fn log(&self) {
        let host = self.host.as_deref().unwrap_or("-");
        let container = self.container.as_deref().map(|c| format!(" in container {c}")).unwrap_or_default();
        let repeats = match self.repeats {
            0 => String::new(),
            n => format!(
                " ({n} more like it in the last {} s, not logged one by one)",
                crate::log_limit::WINDOW.as_secs()
            ),
        };
        let hint = self.hint();
        tracing::warn!(
            event = self.event,
            target_name = %self.target,
            pid = self.pid,
            comm = %self.comm,
            daddr = %self.daddr,
            dport = self.dport,
            host = %host,
            protocol = %self.protocol,
            hook = self.hook,
            cgroup_id = self.cgroup_id,
            container = self.container.as_deref().unwrap_or("-"),
            repeats = self.repeats,
            hint = %hint,
            "{} {} {} to {} port {} ({host}) by {}[{}]{container}{repeats}: {hint}",
            self.event.replace('_', " "),
            self.protocol,
            self.hook,
            self.daddr,
            self.dport,
            self.comm,
            self.pid,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ram_common::event::ACTION_BLOCKED;

    fn answer() -> Vec<u8> {
        // Response for allowed.registry.test A: 127.10.0.1, TTL 60, owner as pointer.
        let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
        for label in ["allowed", "registry", "test"] {
            m.push(label.len() as u8);
            m.extend_from_slice(label.as_bytes());
        }
        m.extend_from_slice(&[0, 0, 1, 0, 1]);
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 10, 0, 1]);
        m
    }

    #[test]
    fn dns_answers_are_summarised_by_the_full_parser() {
        let s = summarize_dns(&answer()).unwrap();
        assert_eq!(s.name, "allowed.registry.test");
        assert_eq!(s.addrs, vec!["127.10.0.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(s.ttl, Some(60));
        assert!(summarize_dns(&answer()[..20]).is_err());
    }

    /// An answer built by hickory-proto: question, then `records`.
    fn hickory_answer(question: &str, records: Vec<hickory_proto::rr::Record>) -> Vec<u8> {
        use hickory_proto::{
            op::{MessageType, Query},
            rr::{Name, RecordType},
        };
        let mut msg = Message::new(7, MessageType::Response, hickory_proto::op::OpCode::Query);
        msg.add_query(Query::query(Name::from_ascii(question).unwrap(), RecordType::A));
        for record in records {
            msg.add_answer(record);
        }
        msg.to_vec().unwrap()
    }

    #[test]
    fn an_answer_cut_by_the_window_is_checked_as_far_as_it_goes() {
        use hickory_proto::rr::{rdata::A, Name, Record};
        let name = |n: &str| Name::from_ascii(n).unwrap();
        let mut records: Vec<Record> = (0..60u8)
            .map(|i| Record::from_rdata(name("registry.example.com."), 60, RData::A(A::new(10, 0, 0, i))))
            .collect();
        records.insert(3, Record::from_rdata(name("evil.example."), 60, RData::A(A::new(10, 6, 6, 6))));
        let message = hickory_answer("registry.example.com.", records);
        assert!(message.len() > ram_common::dns::WINDOW);
        let window = &message[..ram_common::dns::WINDOW];
        assert!(summarize_dns(window).is_err(), "the full parser refuses a cut message whole");
        let s = summarize_dns_prefix(window).unwrap();
        assert_eq!(s.name, "registry.example.com");
        assert_eq!(s.off_chain, vec!["10.6.6.6".parse::<IpAddr>().unwrap()]);
        // The whole records in 1024 bytes: the header, the question, and
        // records of 16 bytes (the off-chain one is longer).
        assert!(s.addrs.len() > 50 && s.addrs.len() < 60, "{}", s.addrs.len());
        assert_eq!(not_to_learn(&s, true), s.off_chain);
    }

    #[test]
    fn the_full_parser_follows_the_cname_chain_by_name() {
        use hickory_proto::rr::{
            rdata::{A, CNAME},
            Name, Record,
        };
        let name = |n: &str| Name::from_ascii(n).unwrap();
        let message = hickory_answer(
            "Registry.Example.com.",
            vec![
                Record::from_rdata(name("registry.example.com."), 30, RData::CNAME(CNAME(name("edge.cdn.net.")))),
                Record::from_rdata(name("EDGE.cdn.net."), 60, RData::A(A::new(10, 0, 0, 1))),
                Record::from_rdata(name("evil.example."), 60, RData::A(A::new(10, 6, 6, 6))),
            ],
        );
        let s = summarize_dns(&message).unwrap();
        assert_eq!(s.name, "registry.example.com");
        assert_eq!(s.addrs, vec!["10.0.0.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(s.off_chain, vec!["10.6.6.6".parse::<IpAddr>().unwrap()]);
        assert_eq!(not_to_learn(&s, true), s.off_chain);
        assert_eq!(not_to_learn(&s, false).len(), 2, "a name the policy refuses teaches nothing");
    }

    #[test]
    fn blocked_events_decode_and_name_their_host() {
        let mut addr = [0u8; 16];
        addr[..4].copy_from_slice(&[127, 10, 0, 2]);
        let mut comm_raw = [0u8; 16];
        comm_raw[..7].copy_from_slice(b"dockerd");
        let event = BlockedEvent {
            header: EventHeader { kind: KIND_BLOCKED, scope: 0 },
            cgroup_id: 99,
            pid: 1234,
            port: 5000,
            family: 4,
            protocol: 6,
            comm: comm_raw,
            addr,
            hook: HOOK_CONNECT,
            action: ACTION_BLOCKED,
            _pad: [0; 6],
        };
        // SAFETY: BlockedEvent is plain data.
        let bytes =
            unsafe { std::slice::from_raw_parts(&event as *const _ as *const u8, std::mem::size_of::<BlockedEvent>()) };
        let Some(Event::Blocked(decoded)) = decode(bytes) else { panic!("not a blocked event") };
        let mut hosts = HostCache::new(2);
        hosts.remember(99, "127.10.0.2".parse().unwrap(), "blocked.registry.test");
        // Another cgroup's answer names it otherwise: not this attempt's name.
        hosts.remember(100, "127.10.0.2".parse().unwrap(), "evil.attacker.test");
        let record = BlockedRecord::new(&decoded, "docker".into(), &hosts);
        assert_eq!(record.event, "blocked");
        assert_eq!(record.comm, "dockerd");
        assert_eq!(record.daddr.to_string(), "127.10.0.2");
        assert_eq!(record.dport, 5000);
        assert_eq!(record.host.as_deref(), Some("blocked.registry.test"));
        assert_eq!(record.hook, "connect");
        assert!(decode(&bytes[..10]).is_none());
    }

    #[test]
    fn an_answers_outcome_names_why_it_taught_nothing() {
        let summary = DnsSummary {
            name: "ghcr.io".into(),
            addrs: vec!["192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap()],
            off_chain: vec![],
            ttl: Some(60),
        };
        assert_eq!(answer_outcome(&summary, true, true, 2), "learned 2 address(es)");
        assert!(answer_outcome(&summary, true, true, 1).contains("of 2 (the rest"));
        assert!(answer_outcome(&summary, false, true, 0).contains("no rule of this target allows ghcr.io"));
        assert!(answer_outcome(&summary, true, false, 0).contains("answers no query this target sent"));
        assert!(answer_outcome(&summary, true, true, 0).contains("map is full"));
        let empty = DnsSummary { addrs: vec![], off_chain: vec!["192.0.2.9".parse().unwrap()], ..summary };
        let outcome = answer_outcome(&empty, true, true, 0);
        assert!(outcome.contains("no A or AAAA") && outcome.contains("1 address(es) of other names"), "{outcome}");
    }

    #[test]
    fn a_process_name_cannot_start_a_log_line_of_its_own() {
        assert_eq!(comm(b"x\nWARN\x1b[0m\0\0\0\0\0\0"), "x?WARN?[0m");
        assert_eq!(comm(b"dockerd\0\0\0\0\0\0\0\0\0"), "dockerd");
    }

    #[test]
    fn host_cache_forgets_the_oldest() {
        let mut cache = HostCache::new(2);
        for (i, host) in ["a", "b", "c"].iter().enumerate() {
            cache.remember(7, IpAddr::V4(Ipv4Addr::new(10, 0, 0, i as u8)), host);
        }
        assert_eq!(cache.get(7, &"10.0.0.0".parse().unwrap()), None);
        assert_eq!(cache.get(7, &"10.0.0.2".parse().unwrap()), Some("c"));
        assert_eq!(cache.get(8, &"10.0.0.2".parse().unwrap()), None, "another cgroup's answer");
    }
}
