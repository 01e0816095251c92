//! Snapshot + readings → the text a scraper reads, through
//! prometheus-client's encoders (Prometheus text 0.0.4, or OpenMetrics when
//! the scraper asks for it).
//!
//! The values are read fresh for each scrape, so they are encoded as
//! constant metrics by a collector instead of living in the library's
//! atomics; families and their label sets come out in a fixed order.

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{counter::ConstCounter, gauge::ConstGauge, MetricType},
    registry::{Registry, Unit},
};
use ram_common::maps::counter;

use super::{Readings, Snapshot};

/// The text format of a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4: what every scraper reads.
    Prometheus,
    /// OpenMetrics 1.0 text, for a scraper that says it accepts it.
    OpenMetrics,
}

impl Format {
    /// The format for a request's `Accept` header.
    pub fn for_accept(accept: Option<&str>) -> Self {
        match accept {
            Some(accept) if accept.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Prometheus,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// Where each kernel counter slot shows: its family, and the value of the
/// family's second label where it has one (`outcome`, `reason`). Every slot
/// of `counter::NAMES` is here once (a test holds it to that), so a slot
/// added to the kernel cannot go unexported unnoticed.
const COUNTER_SLOTS: [(&str, &str, Option<&str>); counter::NAMES.len()] = [
    ("connect_allowed", ATTEMPTS, Some("allowed")),
    ("sendmsg_allowed", ATTEMPTS, Some("allowed")),
    ("connect_blocked", ATTEMPTS, Some("blocked")),
    ("sendmsg_blocked", ATTEMPTS, Some("blocked")),
    ("egress_dropped", ATTEMPTS, Some("blocked")),
    ("would_block", ATTEMPTS, Some("would_block")),
    ("dns_answers", DNS_ANSWERS, None),
    ("dns_learned", DNS_LEARNED, None),
    ("dns_not_allowed", DNS_REFUSED, Some("not_allowed")),
    ("dns_unmatched", DNS_REFUSED, Some("unmatched")),
    ("dns_malformed", DNS_REFUSED, Some("malformed")),
    ("dns_tcp_split", DNS_REFUSED, Some("tcp_split")),
    ("dns_netns_unknown", DNS_REFUSED, Some("netns_unknown")),
    ("dns_off_chain", DNS_PARTIAL, Some("off_chain")),
    ("learn_capped", DNS_PARTIAL, Some("capped")),
    ("learn_map_full", LEARN_MAP_FULL, None),
    ("other_netns_passed", PASSED, Some("other_netns")),
    ("forward_allowed", PASSED, Some("forwarder")),
    ("events_lost", EVENTS_LOST, None),
];

const ATTEMPTS: &str = "ram_attempts";
const DNS_ANSWERS: &str = "ram_dns_answers";
const DNS_LEARNED: &str = "ram_dns_answers_learned";
const DNS_REFUSED: &str = "ram_dns_answers_refused";
const DNS_PARTIAL: &str = "ram_dns_answers_partial";
const LEARN_MAP_FULL: &str = "ram_learn_map_full";
const PASSED: &str = "ram_passed";
const EVENTS_LOST: &str = "ram_events_lost";

/// The kernel counter families, in output order: (name, second label, help).
const COUNTER_FAMILIES: [(&str, Option<&str>, &str); 8] = [
    (
        ATTEMPTS,
        Some("outcome"),
        "Connects, UDP sends and packets judged by a target's programs, by outcome: allowed counts connect \
         and sendmsg verdicts only (packets the egress backstop lets through are not counted); blocked counts \
         connects and sends refused and packets the egress backstop dropped; would_block counts what audit mode \
         let through",
    ),
    (DNS_ANSWERS, None, "DNS answers from a configured resolver seen by a target's ingress program"),
    (DNS_LEARNED, None, "DNS answers that taught a target at least one address"),
    (
        DNS_REFUSED,
        Some("reason"),
        "DNS answers that taught nothing, by reason: not_allowed (the policy does not allow the question), \
         unmatched (no query of the target's matches it), malformed; tcp_split counts DNS-over-TCP messages \
         not read at a message boundary. One answer may count under two reasons",
    ),
    (
        DNS_PARTIAL,
        Some("reason"),
        "DNS answers with records that were not learned, by reason: off_chain (owned by a name off the \
         question's CNAME chain), capped (past [limits] addresses_per_answer)",
    ),
    (LEARN_MAP_FULL, None, "Addresses not learned because a learned-address map was full; connects to them are denied"),
    (
        PASSED,
        Some("reason"),
        "Connects, sends and packets let through besides the policy, by reason: other_netns (a socket in \
         another network namespace than the runtime's: its containers'), forwarder (docker-proxy to its container)",
    ),
    (
        EVENTS_LOST,
        None,
        "Events the kernel could not hand to ramd (event buffer full); the other counters still counted them",
    ),
];

type Labels = Vec<(&'static str, String)>;

#[derive(Clone, Copy, Debug)]
enum Value {
    Int(u64),
    Seconds(f64),
}

#[derive(Debug)]
struct Family {
    name: &'static str,
    help: String,
    unit: Option<Unit>,
    kind: MetricType,
    samples: Vec<(Labels, Value)>,
}

impl Family {
    fn new(name: &'static str, kind: MetricType, help: &str) -> Self {
        Family { name, help: help.to_string(), unit: None, kind, samples: Vec::new() }
    }

    fn with(mut self, labels: Labels, value: u64) -> Self {
        self.samples.push((labels, Value::Int(value)));
        self
    }
}

/// The families of one scrape, encoded in order.
#[derive(Debug)]
struct Exposition(Vec<Family>);

impl Collector for Exposition {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for family in &self.0 {
            let mut metric = encoder.encode_descriptor(family.name, &family.help, family.unit.as_ref(), family.kind)?;
            for (labels, value) in &family.samples {
                let sample = metric.encode_family(labels)?;
                match (family.kind, *value) {
                    (MetricType::Counter, Value::Int(v)) => ConstCounter::new(v).encode(sample)?,
                    (MetricType::Counter, Value::Seconds(v)) => ConstCounter::new(v).encode(sample)?,
                    (_, Value::Int(v)) => ConstGauge::new(v as i64).encode(sample)?,
                    (_, Value::Seconds(v)) => ConstGauge::new(v).encode(sample)?,
                }
            }
        }
        Ok(())
    }
}

/// The response body for one scrape.
pub fn encode(snapshot: &Snapshot, readings: &Readings, format: Format) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Exposition(families(snapshot, readings))));
    let mut text = String::new();
    match format {
        Format::Prometheus => prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)?,
        Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut text, &registry)?,
    }
    Ok(text)
}

fn families(snapshot: &Snapshot, readings: &Readings) -> Vec<Family> {
    let mut out = counter_families(snapshot, readings);
    let live = &readings.learned_live;
    out.push(
        Family::new(
            "ram_learned_addresses",
            MetricType::Gauge,
            "Learned addresses allowed now (not expired), over all targets, by address family",
        )
        .with(vec![("family", "ipv4".into())], live[0])
        .with(vec![("family", "ipv6".into())], live[1]),
    );
    let mut entries = Family::new(
        "ram_map_entries",
        MetricType::Gauge,
        "Entries in each of ram's pinned hash and LPM-trie maps, counted at scrape time",
    );
    let mut capacity =
        Family::new("ram_map_capacity", MetricType::Gauge, "The most entries each map holds (its max_entries)");
    for map in &readings.maps {
        entries = entries.with(vec![("map", map_label(map.map))], map.entries);
        capacity = capacity.with(vec![("map", map_label(map.map))], u64::from(map.capacity));
    }
    out.push(entries);
    out.push(capacity);
    out.push(
        Family::new("ram_reloads", MetricType::Counter, "Policy reloads since ramd started, by outcome")
            .with(vec![("outcome", "ok".into())], snapshot.reloads_ok)
            .with(vec![("outcome", "refused".into())], snapshot.reloads_refused),
    );
    let stats = Family::new(
        "ram_bpf_stats_enabled",
        MetricType::Gauge,
        "1 when kernel.bpf_stats_enabled is 1: then ram_program_run_seconds_total and ram_program_runs_total are \
         given",
    );
    out.push(stats.with(Vec::new(), u64::from(readings.bpf_stats)));
    if readings.bpf_stats {
        out.extend(program_families(snapshot, readings));
    }
    out.push(
        Family::new("ram_build_info", MetricType::Gauge, "ramd's version, as a label; always 1")
            .with(vec![("version", env!("CARGO_PKG_VERSION").into())], 1),
    );
    let attached = snapshot.targets.iter().filter(|t| t.attached).count() as u64;
    out.push(
        Family::new(
            "ram_targets",
            MetricType::Gauge,
            "Targets of the policy in effect, by state: attached (enforcing at least one cgroup) or pending \
             (nothing to attach to yet)",
        )
        .with(vec![("state", "attached".into())], attached)
        .with(vec![("state", "pending".into())], snapshot.targets.len() as u64 - attached),
    );
    let mut took = Family::new(
        "ram_scrape_collect",
        MetricType::Gauge,
        "Time this scrape took to read the kernel's counters and walk its maps (ram_map_entries)",
    );
    took.unit = Some(Unit::Seconds);
    took.samples.push((Vec::new(), Value::Seconds(readings.collect_seconds)));
    out.push(took);
    out
}

/// The kernel's counters per target, summed into their families.
fn counter_families(snapshot: &Snapshot, readings: &Readings) -> Vec<Family> {
    COUNTER_FAMILIES
        .iter()
        .map(|(family, second, help)| {
            let mut out = Family::new(family, MetricType::Counter, help);
            for target in &snapshot.targets {
                let Some((_, values)) = readings.counters.iter().find(|(scope, _)| *scope == target.scope) else {
                    continue;
                };
                // Label values in slot order, each once, with the sum of its slots.
                let mut sums: Vec<(Option<&str>, u64)> = Vec::new();
                for (slot, slot_family, value) in COUNTER_SLOTS {
                    if slot_family != *family {
                        continue;
                    }
                    let count = values.iter().find(|(name, _)| *name == slot).map_or(0, |(_, v)| *v);
                    match sums.iter_mut().find(|(label, _)| *label == value) {
                        Some((_, sum)) => *sum += count,
                        None => sums.push((value, count)),
                    }
                }
                for (value, sum) in sums {
                    let mut labels: Labels = vec![("target", target.name.clone())];
                    if let (Some(key), Some(value)) = (second, value) {
                        labels.push((key, value.to_string()));
                    }
                    out = out.with(labels, sum);
                }
            }
            out
        })
        .collect()
}

fn program_families(snapshot: &Snapshot, readings: &Readings) -> [Family; 2] {
    let mut seconds = Family::new(
        "ram_program_run",
        MetricType::Counter,
        "Time the kernel spent running each of a target's programs (bpf_prog_info run_time_ns), counted while \
         kernel.bpf_stats_enabled is 1; starts again from 0 when the program is replaced",
    );
    seconds.unit = Some(Unit::Seconds);
    let mut runs = Family::new(
        "ram_program_runs",
        MetricType::Counter,
        "Runs of each of a target's programs (bpf_prog_info run_cnt), counted while kernel.bpf_stats_enabled is 1",
    );
    for target in &snapshot.targets {
        for (program, id) in &target.programs {
            let Some(found) = readings.programs.iter().find(|p| p.id == *id) else { continue };
            let labels: Labels = vec![("target", target.name.clone()), ("program", program.clone())];
            seconds.samples.push((labels.clone(), Value::Seconds(found.run_time_ns as f64 / 1e9)));
            runs = runs.with(labels, found.runs);
        }
    }
    [seconds, runs]
}

/// `RAM_LEARN4` → `learn4`: the label names the map as ramctl's users
/// know it, in Prometheus's lowercase.
fn map_label(map: &str) -> String {
    map.strip_prefix("RAM_").unwrap_or(map).to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        maps::Occupancy,
        metrics::{ProgramRuns, TargetState},
    };

    fn snapshot() -> Snapshot {
        Snapshot {
            targets: vec![
                TargetState {
                    scope: 0,
                    name: "docker".into(),
                    attached: true,
                    programs: vec![("ram_connect4".into(), 41), ("ram_dns_ingress".into(), 45)],
                },
                TargetState { scope: 1, name: "buildkit".into(), attached: false, programs: Vec::new() },
            ],
            reloads_ok: 2,
            reloads_refused: 1,
        }
    }

    fn readings(bpf_stats: bool) -> Readings {
        let counts = |base: u64| counter::NAMES.iter().enumerate().map(|(i, n)| (*n, base + i as u64)).collect();
        Readings {
            counters: vec![(0, counts(100)), (1, counts(0))],
            learned_live: [7, 1],
            maps: vec![
                Occupancy { map: "RAM_LEARN4", entries: 9, capacity: 65536 },
                Occupancy { map: "RAM_CONTAINER_SOCKETS", entries: 0, capacity: 65536 },
            ],
            bpf_stats,
            programs: vec![
                ProgramRuns { id: 41, run_time_ns: 1_500_000_000, runs: 3 },
                ProgramRuns { id: 45, run_time_ns: 250, runs: 1 },
            ],
            collect_seconds: 0.25,
        }
    }

    fn lines(text: &str) -> Vec<&str> {
        text.lines().collect()
    }

    #[test]
    fn every_kernel_counter_is_exported_once() {
        let mut slots: Vec<&str> = COUNTER_SLOTS.iter().map(|(slot, _, _)| *slot).collect();
        slots.sort_unstable();
        let mut names = counter::NAMES.to_vec();
        names.sort_unstable();
        assert_eq!(slots, names);
        for (_, family, value) in COUNTER_SLOTS {
            let (_, second, _) = COUNTER_FAMILIES.iter().find(|(f, _, _)| *f == family).expect("family listed");
            assert_eq!(second.is_some(), value.is_some(), "{family}");
        }
    }

    #[test]
    fn counters_sum_into_their_families_per_target() {
        let text = encode(&snapshot(), &readings(false), Format::Prometheus).unwrap();
        let lines = lines(&text);
        // Slot values are base + slot index: connect_allowed 0, sendmsg_allowed 2,
        // connect_blocked 1, sendmsg_blocked 3, egress_dropped 4, would_block 5.
        for line in [
            "# HELP ram_attempts_total Connects, UDP sends and packets judged by a target's programs, by outcome: \
             allowed counts connect and sendmsg verdicts only (packets the egress backstop lets through are not \
             counted); blocked counts connects and sends refused and packets the egress backstop dropped; \
             would_block counts what audit mode let through",
            "# TYPE ram_attempts_total counter",
            "ram_attempts_total{target=\"docker\",outcome=\"allowed\"} 202",
            "ram_attempts_total{target=\"docker\",outcome=\"blocked\"} 308",
            "ram_attempts_total{target=\"docker\",outcome=\"would_block\"} 105",
            "ram_attempts_total{target=\"buildkit\",outcome=\"allowed\"} 2",
            "ram_dns_answers_total{target=\"docker\"} 106",
            "ram_dns_answers_learned_total{target=\"docker\"} 107",
            "ram_dns_answers_refused_total{target=\"docker\",reason=\"not_allowed\"} 108",
            "ram_dns_answers_refused_total{target=\"docker\",reason=\"malformed\"} 109",
            "ram_dns_answers_refused_total{target=\"docker\",reason=\"tcp_split\"} 110",
            "ram_dns_answers_refused_total{target=\"docker\",reason=\"unmatched\"} 114",
            "ram_dns_answers_partial_total{target=\"docker\",reason=\"off_chain\"} 113",
            "ram_dns_answers_partial_total{target=\"docker\",reason=\"capped\"} 115",
            "ram_learn_map_full_total{target=\"docker\"} 111",
            "ram_passed_total{target=\"docker\",reason=\"other_netns\"} 116",
            "ram_passed_total{target=\"docker\",reason=\"forwarder\"} 117",
            "ram_events_lost_total{target=\"docker\"} 112",
            "ram_events_lost_total{target=\"buildkit\"} 12",
        ] {
            assert!(lines.contains(&line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn ramd_state_maps_and_learned_addresses() {
        let text = encode(&snapshot(), &readings(false), Format::Prometheus).unwrap();
        let lines = lines(&text);
        for line in [
            "# TYPE ram_learned_addresses gauge",
            "ram_learned_addresses{family=\"ipv4\"} 7",
            "ram_learned_addresses{family=\"ipv6\"} 1",
            "ram_map_entries{map=\"learn4\"} 9",
            "ram_map_capacity{map=\"learn4\"} 65536",
            "ram_map_entries{map=\"container_sockets\"} 0",
            "ram_reloads_total{outcome=\"ok\"} 2",
            "ram_reloads_total{outcome=\"refused\"} 1",
            "ram_bpf_stats_enabled 0",
            "ram_scrape_collect_seconds 0.25",
            "ram_targets{state=\"attached\"} 1",
            "ram_targets{state=\"pending\"} 1",
        ] {
            assert!(lines.contains(&line), "missing {line:?} in\n{text}");
        }
        let version = format!("ram_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"));
        assert!(lines.contains(&version.as_str()), "{text}");
        // Without bpf_stats there are no run times to give, not zeros.
        assert!(!text.contains("# TYPE ram_program_run"), "{text}");
    }

    #[test]
    fn program_run_times_when_bpf_stats_are_enabled() {
        let text = encode(&snapshot(), &readings(true), Format::Prometheus).unwrap();
        let lines = lines(&text);
        for line in [
            "ram_bpf_stats_enabled 1",
            "# TYPE ram_program_run_seconds_total counter",
            "ram_program_run_seconds_total{target=\"docker\",program=\"ram_connect4\"} 1.5",
            "ram_program_run_seconds_total{target=\"docker\",program=\"ram_dns_ingress\"} 2.5e-7",
            "ram_program_runs_total{target=\"docker\",program=\"ram_connect4\"} 3",
        ] {
            assert!(lines.contains(&line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn openmetrics_when_asked_for_it() {
        assert_eq!(Format::for_accept(None), Format::Prometheus);
        assert_eq!(Format::for_accept(Some("text/plain;version=0.0.4")), Format::Prometheus);
        let prometheus_accept = "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4";
        assert_eq!(Format::for_accept(Some(prometheus_accept)), Format::OpenMetrics);
        let text = encode(&snapshot(), &readings(true), Format::OpenMetrics).unwrap();
        let lines = lines(&text);
        for line in [
            "# TYPE ram_attempts counter",
            "ram_attempts_total{target=\"docker\",outcome=\"blocked\"} 308",
            "# TYPE ram_program_run_seconds counter",
            "# UNIT ram_program_run_seconds seconds",
        ] {
            assert!(lines.contains(&line), "missing {line:?} in\n{text}");
        }
        assert_eq!(lines.last(), Some(&"# EOF"));
    }

    #[test]
    fn label_values_are_escaped() {
        let mut snapshot = snapshot();
        snapshot.targets[0].name = "a \"quoted\" \\ name\n".into();
        let text = encode(&snapshot, &readings(false), Format::Prometheus).unwrap();
        assert!(text.contains(r#"ram_dns_answers_total{target="a \"quoted\" \\ name\n"} 106"#), "{text}");
    }
}
