//! The kernel's DNS parser (ram-common, run here on the host exactly as the
//! ingress program runs it) against hickory-proto, the full parser ramd
//! checks it with:
//! - generated answers (random CNAME chains, off-chain records, A/AAAA,
//!   other types; encoded by hickory, so names are compressed as resolvers
//!   do): the kernel learns exactly what hickory says is on the chain;
//! - mutations of those and of real captured answers (tests/corpus: dnsmasq
//!   and unbound): no panic, no read past the end, and never an address
//!   hickory would not have learned.
//!
//! Deterministic (a fixed-seed xorshift), so a failure reproduces; the
//! number of cases is bounded so CI time is too.

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
    msg.to_vec().unwrap()
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
