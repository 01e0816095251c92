//! The kernel's DNS parser (ram-common, run here on the host exactly as the
//! ingress program runs it) against hickory-proto, the full parser ramd
//! checks it with:
//! - generated answers (random CNAME chains, off-chain records, A/AAAA,
//!   other types; encoded by hickory, so names are compressed as resolvers
//!   do): the kernel learns exactly what hickory says is on the chain;
//! - the same answers written without compression (as CoreDNS and any
//!   server on miekg/dns write them) and in a random mix of encodings per
//!   name (in full, a pointer, labels then a pointer to a suffix; random
//!   case): the same agreement;
//! - mutations of those and of real captured answers (tests/corpus: dnsmasq
//!   and unbound): no panic, no read past the end, and never an address
//!   hickory would not have learned.
//!
//! Deterministic (a fixed-seed xorshift), so a failure reproduces; the
//! number of cases is bounded so CI time is too.
#![expect(clippy::unwrap_used, reason = "a test: a failed unwrap is a failed test")]

use std::{collections::BTreeSet, net::IpAddr};

use hickory_proto::{
    op::{Message, MessageType, OpCode, Query},
    rr::{
        rdata::{A, AAAA, CNAME, TXT},
        Name, RData, Record, RecordType,
    },
};
use ram::events::{kernel_learning, summarize_dns};
use ram_common::dns::MAX_ANSWERS;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What the kernel would learn from `message` (None: nothing).
fn kernel_learns(message: &[u8]) -> Option<BTreeSet<IpAddr>> {
    kernel_learning(message).map(|(_, addrs)| addrs.into_iter().collect())
}

const NAMES: [&str; 6] =
    ["registry.example.com.", "edge.cdn.net.", "pop.cdn.net.", "evil.example.", "cdn.net.", "x.registry.example.com."];

fn random_answer(rng: &mut Rng) -> Vec<u8> {
    random_message(rng).to_vec().unwrap()
}

fn random_message(rng: &mut Rng) -> Message {
    let name = |i: u64| Name::from_ascii(NAMES[i as usize]).unwrap();
    let mut msg = Message::new(rng.below(65536) as u16, MessageType::Response, OpCode::Query);
    let qtype = if rng.below(2) == 0 { RecordType::A } else { RecordType::AAAA };
    msg.add_query(Query::query(name(0), qtype));
    for _ in 0..rng.below(12) {
        let owner = name(rng.below(NAMES.len() as u64));
        let data = match rng.below(5) {
            0 => RData::CNAME(CNAME(name(rng.below(NAMES.len() as u64)))),
            1 | 2 => RData::A(A::new(10, 0, rng.below(4) as u8, rng.below(256) as u8)),
            3 => RData::AAAA(AAAA::new(0x2001, 0xdb8, 0, 0, 0, 0, rng.below(4) as u16, rng.below(65536) as u16)),
            _ => RData::TXT(TXT::new(vec!["v=ram".to_string()])),
        };
        msg.add_answer(Record::from_rdata(owner, rng.below(3600) as u32, data));
    }
    msg
}

/// `msg` written by hickory without any compression.
fn uncompressed(msg: &Message) -> Vec<u8> {
    use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};
    let mut bytes = Vec::new();
    let mut encoder = BinEncoder::new(&mut bytes);
    encoder.set_name_encoding(NameEncoding::Uncompressed);
    msg.emit(&mut encoder).unwrap();
    bytes
}

/// `msg` written with each name (owners and CNAME targets) encoded at
/// random: in full, as a pointer to an earlier copy, or as its first labels
/// followed by a pointer to an earlier copy of its suffix; labels written in
/// full get a random case.
fn mixed_encoding(rng: &mut Rng, msg: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&msg.id.to_be_bytes());
    out.extend_from_slice(&[0x81, 0x80, 0, 1]);
    out.extend_from_slice(&(msg.answers.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    // Where each suffix (lowercased text) was written in full.
    let mut suffixes: Vec<(String, usize)> = Vec::new();
    let mut write_name = |out: &mut Vec<u8>, rng: &mut Rng, name: &Name, may_point: bool| {
        let labels: Vec<String> = name.iter().map(|l| String::from_utf8_lossy(l).to_ascii_lowercase()).collect();
        let mut i = 0;
        while i < labels.len() {
            let suffix = labels[i..].join(".");
            let earlier = suffixes.iter().find(|(s, _)| *s == suffix).map(|(_, at)| *at);
            if let (true, Some(at), 0) = (may_point, earlier, rng.below(3)) {
                out.extend_from_slice(&(0xc000u16 | at as u16).to_be_bytes());
                return;
            }
            if earlier.is_none() {
                suffixes.push((suffix, out.len()));
            }
            let label: Vec<u8> =
                labels[i].bytes().map(|b| if rng.below(2) == 0 { b.to_ascii_uppercase() } else { b }).collect();
            out.push(label.len() as u8);
            out.extend_from_slice(&label);
            i += 1;
        }
        out.push(0);
    };
    let query = &msg.queries[0];
    write_name(&mut out, rng, query.name(), false);
    out.extend_from_slice(&u16::from(query.query_type()).to_be_bytes());
    out.extend_from_slice(&[0, 1]);
    for record in &msg.answers {
        write_name(&mut out, rng, &record.name, true);
        out.extend_from_slice(&u16::from(record.record_type()).to_be_bytes());
        out.extend_from_slice(&[0, 1]);
        out.extend_from_slice(&record.ttl.to_be_bytes());
        let rdata: Vec<u8> = match &record.data {
            RData::A(a) => a.0.octets().to_vec(),
            RData::AAAA(a) => a.0.octets().to_vec(),
            RData::CNAME(target) => {
                let length_at = out.len();
                out.extend_from_slice(&[0, 0]);
                write_name(&mut out, rng, &target.0, true);
                let length = (out.len() - length_at - 2) as u16;
                out[length_at..length_at + 2].copy_from_slice(&length.to_be_bytes());
                continue;
            }
            _ => vec![5, b'v', b'=', b'r', b'a', b'm'],
        };
        out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        out.extend_from_slice(&rdata);
    }
    out
}

#[test]
fn generated_answers_teach_exactly_what_the_full_parser_puts_on_the_chain() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for case in 0..5000 {
        let message = random_answer(&mut rng);
        let full =
            summarize_dns(&message).unwrap_or_else(|e| panic!("case {case}: hickory refuses its own output: {e}"));
        let expected: BTreeSet<IpAddr> = full.addrs.iter().copied().collect();
        let learned = kernel_learns(&message).unwrap_or_else(|| panic!("case {case}: kernel parser refused"));
        assert_eq!(learned, expected, "case {case}: {message:02x?}");
    }
}

#[test]
fn answers_without_compression_or_with_mixed_encodings_agree_too() {
    let mut rng = Rng(0x5eed_1234_abcd_0003);
    let (mut learned_uncompressed, mut learned_mixed) = (0, 0);
    for case in 0..5000 {
        let msg = random_message(&mut rng);
        for (encoding, message) in [("uncompressed", uncompressed(&msg)), ("mixed", mixed_encoding(&mut rng, &msg))] {
            let full = summarize_dns(&message)
                .unwrap_or_else(|e| panic!("case {case} ({encoding}): hickory refuses it: {e}: {message:02x?}"));
            let expected: BTreeSet<IpAddr> = full.addrs.iter().copied().collect();
            let learned = kernel_learns(&message)
                .unwrap_or_else(|| panic!("case {case} ({encoding}): kernel parser refused: {message:02x?}"));
            assert_eq!(learned, expected, "case {case} ({encoding}): {message:02x?}");
            if !learned.is_empty() {
                *(if encoding == "mixed" { &mut learned_mixed } else { &mut learned_uncompressed }) += 1;
            }
        }
    }
    // The cases must actually teach: owner names in full used to teach nothing.
    assert!(learned_uncompressed > 1000 && learned_mixed > 1000, "{learned_uncompressed} {learned_mixed}");
}

/// Real answers captured from dnsmasq and unbound (tests/corpus/*.bin).
fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "bin"))
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .collect();
    out.sort();
    out
}

#[test]
fn captured_answers_agree_with_the_full_parser() {
    let corpus = corpus();
    assert!(corpus.len() >= 6, "corpus too small: {}", corpus.len());
    for (file, message) in &corpus {
        let full = summarize_dns(message).unwrap_or_else(|e| panic!("{file}: {e}"));
        let learned = kernel_learns(message).unwrap_or_else(|| panic!("{file}: kernel parser refused"));
        let expected: BTreeSet<IpAddr> = full.addrs.iter().copied().collect();
        if expected.len() <= MAX_ANSWERS as usize {
            assert_eq!(learned, expected, "{file}");
        } else {
            // Answers past MAX_ANSWERS records are not walked (README: limits).
            assert!(learned.is_subset(&expected) && learned.len() == MAX_ANSWERS as usize, "{file}: {learned:?}");
        }
    }
}

#[test]
fn mutated_answers_never_teach_more_than_the_full_parser() {
    let mut rng = Rng(0x0ddb_a11c_afe0_0002);
    let mut seeds: Vec<Vec<u8>> = corpus().into_iter().map(|(_, m)| m).collect();
    seeds.extend((0..64).map(|_| random_answer(&mut rng)));
    seeds.extend((0..32).map(|_| uncompressed(&random_message(&mut rng))));
    let mixed: Vec<Message> = (0..32).map(|_| random_message(&mut rng)).collect();
    seeds.extend(mixed.iter().map(|m| mixed_encoding(&mut rng, m)));
    let (mut cases, mut refused, mut learned_some) = (0u32, 0u32, 0u32);
    for round in 0..40_000u32 {
        let mut message = seeds[rng.below(seeds.len() as u64) as usize].clone();
        for _ in 0..=rng.below(4) {
            match rng.below(4) {
                0 if !message.is_empty() => {
                    let at = rng.below(message.len() as u64) as usize;
                    message[at] = rng.below(256) as u8;
                }
                1 => message.truncate(rng.below(message.len() as u64 + 1) as usize),
                2 if !message.is_empty() => {
                    // A compression pointer anywhere, to anywhere.
                    let at = rng.below(message.len() as u64) as usize;
                    message[at] = 0xc0 | rng.below(4) as u8;
                }
                _ => {
                    let at = rng.below(message.len() as u64 + 1) as usize;
                    message.insert(at, rng.below(256) as u8);
                }
            }
        }
        cases += 1;
        let kernel = kernel_learns(&message);
        match (summarize_dns(&message), kernel) {
            (_, None) => refused += 1,
            (Ok(full), Some(learned)) => {
                learned_some += u32::from(!learned.is_empty());
                let allowed: BTreeSet<IpAddr> = full.addrs.iter().copied().collect();
                assert!(
                    learned.is_subset(&allowed),
                    "round {round}: kernel {learned:?} vs full {allowed:?}: {message:02x?}"
                );
            }
            // The kernel reads the answer section only; hickory refuses a
            // message whose later sections are broken. ramd then removes
            // what the kernel learned (see Daemon::handle_dns).
            (Err(_), Some(_)) => {}
        }
    }
    println!("{cases} mutated answers: {refused} refused by the kernel parser, {learned_some} taught something");
    assert!(learned_some > 1000, "the mutations hardly ever left a valid answer: {learned_some}");
}
