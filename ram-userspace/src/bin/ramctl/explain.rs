//! `ramctl explain HOST [PORT] [--target NAME]`: why a pull of HOST works or
//! fails, put together from everything ram keeps: the policy's rules that
//! match the name (from the policy file ramd runs), the verdict now and the
//! addresses learned for it (from the kernel's maps), the recent DNS
//! answers for it and what each taught or why nothing (ramd's answer
//! journal), and the recent blocked attempts to it (ramd's blocked
//! journal).

use std::{collections::BTreeSet, net::IpAddr, path::Path};

use ram::{
    journal,
    maps::Maps,
    paths::Paths,
    policy::{HostFacts, Policy, RuleMatch},
    status::DaemonStatus,
};
use serde::Serialize;
use serde_json::Value;

use crate::{check, require_pins, table::Table};

#[derive(Serialize)]
struct TargetExplained {
    target: String,
    /// None when the policy file could not be read (the verdict stands).
    rules: Option<Vec<RuleMatch>>,
    verdict: ram::maps::Check,
    allowed: bool,
    learned: Vec<Learned>,
}

#[derive(Serialize)]
struct Learned {
    addr: IpAddr,
    expires_in_s: i64,
    ttl: u32,
}

#[derive(Serialize)]
struct Explained {
    host: String,
    port: Option<u16>,
    /// Where the rules were read from, or why they could not be.
    policy: String,
    targets: Vec<TargetExplained>,
    /// Newest first.
    answers: Vec<Value>,
    /// Newest first.
    attempts: Vec<Value>,
}

pub fn run(
    paths: &Paths,
    json: bool,
    host: &str,
    port: Option<u16>,
    target: Option<&str>,
    limit: usize,
) -> anyhow::Result<()> {
    require_pins(paths)?;
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.parse::<IpAddr>().is_ok() {
        anyhow::bail!(
            "`{host}` is an address: `ramctl explain` takes a name (`ramctl check {host}` judges an address)"
        );
    }
    let maps = Maps::open(paths)?;
    let scopes = check::scopes(paths, &maps, target)?;
    let (policy, policy_source) = running_policy(paths);
    let learned_rows = maps.learned()?;
    let mut targets = Vec::new();
    for (scope, name) in &scopes {
        let verdict = maps.check_host(*scope, &host, port)?;
        let learned = learned_rows
            .iter()
            .filter(|r| r.scope == *scope && r.host.as_deref() == Some(host.as_str()))
            .map(|r| Learned { addr: r.addr, expires_in_s: r.expires_in_s, ttl: r.ttl })
            .collect();
        targets.push(TargetExplained {
            target: name.clone(),
            rules: policy.as_ref().map(|p| p.host_rules_matching(name, &host)),
            allowed: verdict.allowed(),
            verdict,
            learned,
        });
    }
    let wanted_targets: BTreeSet<&str> = scopes.iter().map(|(_, n)| n.as_str()).collect();
    let in_targets = |v: &Value| v["target"].as_str().is_some_and(|t| wanted_targets.contains(t));
    let answers: Vec<Value> = journal::recent_answers(&paths.run_dir, usize::MAX)
        .into_iter()
        .filter(|a| a["name"] == host.as_str() && in_targets(a))
        .take(limit)
        .collect();
    // Attempts to the name, or to an address an answer for it gave.
    let addrs: BTreeSet<String> = answers
        .iter()
        .flat_map(|a| a["addrs"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a.as_str().map(str::to_string))
        .chain(targets.iter().flat_map(|t| t.learned.iter().map(|l| l.addr.to_string())))
        .collect();
    let attempts: Vec<Value> = journal::recent(&paths.run_dir, usize::MAX)
        .into_iter()
        .filter(|a| {
            in_targets(a)
                && (a["host"] == host.as_str() || a["daddr"].as_str().is_some_and(|d| addrs.contains(d)))
                && port.is_none_or(|p| a["dport"] == p)
        })
        .take(limit)
        .collect();
    let explained = Explained { host, port, policy: policy_source, targets, answers, attempts };
    if json {
        println!("{}", serde_json::to_string_pretty(&explained)?);
    } else {
        print_text(&explained);
    }
    Ok(())
}

/// The policy ramd runs, re-read from its file (or the embedded default),
/// and where it came from; None with the reason when it cannot be read.
fn running_policy(paths: &Paths) -> (Option<Policy>, String) {
    let Ok(status) = DaemonStatus::read(&paths.status_file()) else {
        return (None, "unknown: ramd's status file cannot be read (is ramd running?)".into());
    };
    let facts = HostFacts::probe();
    let loaded = if status.policy == ram::policy::DEFAULT_POLICY_SOURCE {
        Policy::embedded_default(&facts)
    } else {
        // ramd's path, relative to ramd's working directory if it was
        // given so: read through /proc while ramd runs.
        let path = Path::new(&status.policy);
        let path = if path.is_absolute() {
            path.to_path_buf()
        } else {
            Path::new(&format!("/proc/{}/cwd", status.pid)).join(path)
        };
        Policy::from_file(&path, &facts)
    };
    match loaded {
        Ok(policy) => {
            let source = policy.source.clone();
            (Some(policy), source)
        }
        Err(e) => (None, format!("{} cannot be read now: {e}", status.policy)),
    }
}

fn print_text(explained: &Explained) {
    let port = explained.port.map(|p| format!(" port {p}")).unwrap_or_default();
    println!("{}{port}\n", explained.host);
    println!("Rules that match it (from {}):", explained.policy);
    let mut rules = Table::new(&["TARGET", "RULE", "PORTS"]);
    for t in &explained.targets {
        match &t.rules {
            Some(found) if found.is_empty() => rules.row(vec![t.target.clone(), "none".into(), "-".into()]),
            Some(found) => {
                for rule in found {
                    let ports = rule.ports.as_ref().map_or_else(
                        || "any".to_string(),
                        |p| p.iter().map(u16::to_string).collect::<Vec<_>>().join(","),
                    );
                    rules.row(vec![t.target.clone(), format!("{} ({})", rule.origin, rule.pattern), ports]);
                }
            }
            None => rules.row(vec![t.target.clone(), "?".into(), "?".into()]),
        }
    }
    rules.print();

    println!("\nVerdict now (the kernel's maps):");
    let mut verdicts = Table::new(&["TARGET", "VERDICT", "WHY"]);
    for t in &explained.targets {
        let verdict = if t.allowed { "allowed" } else { "denied" };
        verdicts.row(vec![t.target.clone(), verdict.into(), check::describe(&t.verdict)]);
    }
    verdicts.print();

    println!("\nLearned for it:");
    let mut learned = Table::new(&["TARGET", "ADDRESS", "EXPIRES", "TTL"]);
    for t in &explained.targets {
        for l in &t.learned {
            let expires = if l.expires_in_s > 0 { format!("in {}s", l.expires_in_s) } else { "expired".into() };
            learned.row(vec![t.target.clone(), l.addr.to_string(), expires, format!("{}s", l.ttl)]);
        }
    }
    print_or_none(&learned, explained.targets.iter().all(|t| t.learned.is_empty()), "nothing learned now");

    println!("\nRecent DNS answers for it (newest first):");
    let mut answers = Table::new(&["WHEN", "TARGET", "ADDRESSES", "OUTCOME"]);
    for a in &explained.answers {
        let addrs: Vec<String> =
            a["addrs"].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_string)).collect();
        answers.row(vec![
            ago(a["at_unix_ms"].as_u64()),
            text(&a["target"]),
            if addrs.is_empty() { "-".into() } else { addrs.join(",") },
            text(&a["outcome"]),
        ]);
    }
    print_or_none(
        &answers,
        explained.answers.is_empty(),
        "none seen: no target resolved it through a trusted resolver since ramd's journal began",
    );

    println!("\nRecent blocked attempts to it (newest first):");
    let mut attempts = Table::new(&["WHEN", "EVENT", "TARGET", "PROCESS", "DESTINATION", "TIMES"]);
    for a in &explained.attempts {
        attempts.row(vec![
            ago(a["at_unix_ms"].as_u64()),
            text(&a["event"]),
            text(&a["target"]),
            format!("{}[{}]", text(&a["comm"]), a["pid"]),
            format!("{}:{}", text(&a["daddr"]), a["dport"]),
            (1 + a["repeats"].as_u64().unwrap_or(0)).to_string(),
        ]);
    }
    print_or_none(&attempts, explained.attempts.is_empty(), "none");
}

fn print_or_none(table: &Table, empty: bool, none: &str) {
    if empty {
        println!("  {none}");
    } else {
        table.print();
    }
}

fn text(v: &Value) -> String {
    v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())
}

/// "12s ago" from a Unix time in milliseconds.
fn ago(at_unix_ms: Option<u64>) -> String {
    let now = ram::sys::unix_ms();
    match at_unix_ms {
        Some(at) if at <= now => {
            let secs = (now - at) / 1000;
            match secs {
                0..=119 => format!("{secs}s ago"),
                120..=7199 => format!("{}m ago", secs / 60),
                _ => format!("{}h ago", secs / 3600),
            }
        }
        _ => "-".into(),
    }
}
