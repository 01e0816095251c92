//! `ramctl suggest`: from blocked and would-block attempts (the journal of
//! `ramctl blocked`), the `[[allow]]` rules that would have allowed them,
//! as a TOML fragment to review and append to the policy. A registry preset
//! when the names match one, exact hosts (with the ports seen) otherwise;
//! never a wildcard the admin did not write. Attempts to addresses no DNS
//! answer named are listed in comments: no name, no rule to suggest.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write,
};

use serde::Deserialize;

use crate::policy::presets::{self, Preset};

/// The fields of a journal record this needs.
#[derive(Clone, Debug, Deserialize)]
pub struct Attempt {
    pub event: String,
    #[serde(default)]
    pub at_unix_ms: u64,
    pub target: String,
    pub comm: String,
    pub daddr: String,
    pub dport: u16,
    pub host: Option<String>,
    /// More attempts like this one that ramd folded into this record.
    #[serde(default)]
    pub repeats: u64,
}

/// What one suggested rule covers.
#[derive(Default)]
struct Covered {
    attempts: u64,
    ports: BTreeSet<u16>,
    hosts: BTreeSet<String>,
    who: BTreeSet<String>,
}

impl Covered {
    fn add(&mut self, attempt: &Attempt, host: &str) {
        self.attempts += 1 + attempt.repeats;
        self.ports.insert(attempt.dport);
        self.hosts.insert(host.to_string());
        self.who.insert(format!("{} ({})", attempt.comm, attempt.target));
    }

    fn comment(&self) -> String {
        format!(
            "# covers {} attempt{} to {} on port{} {}, by {}",
            self.attempts,
            if self.attempts == 1 { "" } else { "s" },
            self.hosts.iter().cloned().collect::<Vec<_>>().join(", "),
            if self.ports.len() == 1 { "" } else { "s" },
            self.ports.iter().map(u16::to_string).collect::<Vec<_>>().join(", "),
            self.who.iter().cloned().collect::<Vec<_>>().join(", "),
        )
    }
}

/// Does `host` match a preset's host pattern (exact, `*.suffix`, and a
/// `{region}` label)? Returns the region it names, if any.
fn matches_pattern(pattern: &str, host: &str) -> Option<Option<String>> {
    let pattern_labels: Vec<&str> = pattern.split('.').collect();
    let host_labels: Vec<&str> = host.split('.').collect();
    let mut region = None;
    let (mut p, mut h) = (pattern_labels.len(), host_labels.len());
    while p > 0 {
        p -= 1;
        let label = pattern_labels[p];
        if label == "*" && p == 0 {
            // One label or more, not none.
            return (h > 0).then_some(region);
        }
        if h == 0 {
            return None;
        }
        h -= 1;
        if label == "{region}" {
            region = Some(host_labels[h].to_string());
        } else if !label.eq_ignore_ascii_case(host_labels[h]) {
            return None;
        }
    }
    (h == 0).then_some(region)
}

/// The preset (and region) a host belongs to, if any.
fn preset_of(host: &str) -> Option<(&'static Preset, Option<String>)> {
    presets::all().iter().find_map(|preset| {
        preset.hosts.iter().chain(&preset.wildcards).find_map(|pattern| {
            let region = matches_pattern(pattern, host)?;
            // A region must be one the preset accepts.
            if preset.needs_region && presets::expand(preset, region.as_deref()).is_err() {
                return None;
            }
            Some((preset, region))
        })
    })
}

/// The fragment for `attempts` no older than `since_unix_ms`.
pub fn suggest(attempts: &[Attempt], since_unix_ms: u64) -> String {
    let recent: Vec<&Attempt> = attempts
        .iter()
        .filter(|a| a.at_unix_ms >= since_unix_ms && (a.event == "blocked" || a.event == "would_block"))
        .collect();
    let total: u64 = recent.iter().map(|a| 1 + a.repeats).sum();
    let mut by_preset: BTreeMap<(String, Option<String>), Covered> = BTreeMap::new();
    let mut by_host: BTreeMap<String, Covered> = BTreeMap::new();
    let mut unnamed: BTreeMap<String, Covered> = BTreeMap::new();
    for attempt in &recent {
        match attempt.host.as_deref().map(|h| h.trim_end_matches('.').to_ascii_lowercase()) {
            Some(host) if !host.is_empty() && host != "-" => match preset_of(&host) {
                Some((preset, region)) => {
                    by_preset.entry((preset.name.clone(), region)).or_default().add(attempt, &host)
                }
                None => by_host.entry(host.clone()).or_default().add(attempt, &host),
            },
            _ => unnamed.entry(attempt.daddr.clone()).or_default().add(attempt, &attempt.daddr),
        }
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Suggested by `ramctl suggest` from {} blocked or would-block attempt{}.\n# Review each rule before adding it to the policy.",
        total,
        if total == 1 { "" } else { "s" }
    );
    for ((name, region), covered) in &by_preset {
        let _ = writeln!(out, "\n{}\n[[allow]]\npreset = \"{name}\"", covered.comment());
        if let Some(region) = region {
            let _ = writeln!(out, "region = \"{region}\"");
        }
    }
    for (host, covered) in &by_host {
        let ports = covered.ports.iter().map(u16::to_string).collect::<Vec<_>>().join(", ");
        let _ = writeln!(out, "\n{}\n[[allow]]\nhost = \"{host}\"\nports = [{ports}]", covered.comment());
    }
    if !unnamed.is_empty() {
        let _ = writeln!(
            out,
            "\n# No rule suggested for these: no DNS answer named the address (a hard-coded\n# address, or a name resolved elsewhere). If one is wanted, a `cidr` rule allows it."
        );
        for covered in unnamed.values() {
            let _ = writeln!(out, "{}", covered.comment().replacen("# covers", "#   seen:", 1));
        }
    }
    if recent.is_empty() {
        let _ = writeln!(out, "# Nothing was blocked in that time: nothing to suggest.");
    }
    out
}

/// `30s`, `10m`, `2h`, `7d` in milliseconds.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let count: u64 = number.parse().map_err(|_| format!("`{text}` is not a duration like 30s, 10m, 2h or 7d"))?;
    let scale = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("`{text}` is not a duration like 30s, 10m, 2h or 7d")),
    };
    count.checked_mul(scale).ok_or_else(|| format!("`{text}` is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{HostFacts, Policy};

    fn attempt(host: Option<&str>, addr: &str, port: u16, at: u64) -> Attempt {
        Attempt {
            event: "would_block".into(),
            at_unix_ms: at,
            target: "dockerd".into(),
            comm: "dockerd".into(),
            daddr: addr.into(),
            dport: port,
            host: host.map(str::to_string),
            repeats: 0,
        }
    }

    #[test]
    fn presets_exact_hosts_and_unnamed_addresses() {
        let attempts = vec![
            attempt(Some("ghcr.io"), "140.82.1.1", 443, 10),
            attempt(Some("pkg-containers.githubusercontent.com"), "185.199.1.1", 443, 11),
            attempt(Some("123456789012.dkr.ecr.eu-west-1.amazonaws.com"), "3.3.3.3", 443, 12),
            attempt(Some("registry.internal.example"), "10.1.1.1", 5000, 13),
            attempt(Some("registry.internal.example"), "10.1.1.1", 443, 14),
            attempt(None, "192.0.2.7", 443, 15),
            attempt(Some("old.example"), "192.0.2.8", 443, 1),
        ];
        let out = suggest(&attempts, 10);
        assert!(out.contains("preset = \"ghcr\""), "{out}");
        assert!(out.contains("preset = \"ecr\"\nregion = \"eu-west-1\""), "{out}");
        assert!(out.contains("host = \"registry.internal.example\"\nports = [443, 5000]"), "{out}");
        assert!(out.contains("#   seen: 1 attempt to 192.0.2.7"), "{out}");
        assert!(out.contains("from 6 blocked or would-block attempts"), "{out}");
        assert!(!out.contains("old.example"), "older than --since: {out}");
        assert!(!out.contains("host = \"*"), "no wildcard is invented: {out}");
        // The fragment is a policy's rules: appended to one, it is accepted.
        let facts = HostFacts {
            cgroup2_mount: Some("/sys/fs/cgroup".into()),
            resolv_conf: Some("nameserver 192.0.2.53\n".into()),
            resolved_upstream: None,
        };
        let policy = format!("[[target]]\nprocess = \"dockerd\"\n{out}");
        let parsed = Policy::parse(&policy, "ram.toml", &facts).unwrap_or_else(|e| panic!("{e}\n{policy}"));
        assert!(parsed.compile().is_ok());
    }

    #[test]
    fn a_record_standing_for_a_retry_loop_counts_every_attempt() {
        let mut looped = attempt(Some("registry.internal.example"), "10.1.1.1", 443, 10);
        looped.repeats = 41;
        let out = suggest(&[looped, attempt(Some("registry.internal.example"), "10.1.1.1", 443, 11)], 0);
        assert!(out.contains("# covers 43 attempts to registry.internal.example"), "{out}");
        assert!(out.contains("from 43 blocked or would-block attempts"), "{out}");
    }

    #[test]
    fn patterns_match_labels_and_capture_a_region() {
        assert_eq!(matches_pattern("ghcr.io", "GHCR.io"), Some(None));
        assert_eq!(matches_pattern("*.example.com", "a.b.example.com"), Some(None));
        assert_eq!(matches_pattern("*.example.com", "example.com"), None);
        assert_eq!(
            matches_pattern("*.dkr.ecr.{region}.amazonaws.com", "1.dkr.ecr.us-east-1.amazonaws.com"),
            Some(Some("us-east-1".into()))
        );
        assert_eq!(matches_pattern("ghcr.io", "evil-ghcr.io"), None);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(30_000));
        assert_eq!(parse_duration("2h"), Ok(7_200_000));
        assert!(parse_duration("2 weeks").is_err());
        assert!(parse_duration("h").is_err());
    }
}
