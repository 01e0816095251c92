//! The bench's policy-change and memory figures:
//! - policy change to enforced: from the moment the policy changes (`ramctl
//!   reload` after the file was written, or the file written alone) to the
//!   first connect the removed rule refuses and the first the new rule
//!   allows, each seen by a probe connecting in a loop in the enforced
//!   cgroup (CLOCK_MONOTONIC on both sides);
//! - ramd's resident memory, idle and while a loop of blocked connects
//!   runs in the enforced cgroup (each one an event ramd reads and logs).

use std::{
    fmt::Write as _,
    io::{BufRead, BufReader},
    process::{Child, Stdio},
    time::Duration,
};

use anyhow::{bail, Context, Result};

use super::{median, spread, Plan, Scene};

/// The address rule the bench's policy starts with (the connect figures'
/// listener is in it) and the one it swaps to and back.
pub(super) const FIRST_CIDR: &str = "127.20.0.0/16";
const SECOND_CIDR: &str = "127.21.0.0/16";
const IN_FIRST: &str = "127.20.0.1";
const IN_SECOND: &str = "127.21.0.1";
/// A port nothing listens on: a connect ram lets through is refused by
/// the kernel (ECONNREFUSED), one it refuses fails with EPERM.
const CLOSED_PORT: &str = "9";
/// An address outside every rule, for the blocked loop.
const BLOCKED: &str = "127.42.0.1";

/// How often ramd looks at the policy file (ram-userspace's POLICY_WATCH;
/// xtask does not link the daemon).
const RAMD_POLICY_WATCH: Duration = Duration::from_millis(500);

/// Milliseconds from a policy change to each effect, per repetition.
#[derive(Default)]
pub(super) struct Reloads {
    ramctl_denies: Vec<f64>,
    ramctl_allows: Vec<f64>,
    edit_denies: Vec<f64>,
    edit_allows: Vec<f64>,
}

/// ramd's resident memory in kB.
pub(super) struct Memory {
    idle_kb: u64,
    loaded_kb: u64,
    peak_kb: u64,
    blocked_per_s: f64,
}

/// CLOCK_MONOTONIC now, in ns (what ram-probe connect-until prints).
fn monotonic_ns() -> u64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// A probe looping connects until one has the outcome it waits for.
struct Watch {
    child: Child,
    what: String,
}

impl Watch {
    /// Milliseconds from `since` (CLOCK_MONOTONIC ns) to the outcome.
    fn ms_since(self, since: u64) -> Result<f64> {
        let out = self.child.wait_with_output().with_context(|| format!("probe {}", self.what))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let at = text
            .split_whitespace()
            .find_map(|w| w.strip_prefix("at_ns="))
            .and_then(|v| v.parse::<u64>().ok())
            .with_context(|| format!("{}: the probe said {text}", self.what))?;
        Ok(at.saturating_sub(since) as f64 / 1e6)
    }
}

impl Scene {
    /// The ram setup's policy, with `cidr` as its address rule.
    pub(super) fn bench_policy(&self, cidr: &str) -> String {
        format!(
            "mode = \"enforce\"\n[dns]\nresolvers = [\"127.0.0.53\"]\nnetns = \"/run/netns/{}\"\n[[target]]\nname = \"bench\"\ncgroup = \"{}\"\n[[allow]]\ncidr = \"{cidr}\"\n[[allow]]\nhost = \"{}\"\n",
            self.netns[1],
            self.cgroups[1].display(),
            super::REGISTRY
        )
    }

    /// Starts a probe in the enforced cgroup that connects to `addr` until
    /// the outcome is `expect`, and waits until it loops.
    fn watch(&self, addr: &str, expect: &str) -> Result<Watch> {
        let mut child = self
            .probe_command(&self.netns[1], Some(&self.cgroups[1]))
            .args(["connect-until", addr, CLOSED_PORT, expect, "10000"])
            .stdout(Stdio::piped())
            .spawn()
            .context("start a connect-until probe")?;
        let stdout = child.stdout.as_mut().context("probe stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        if line.trim() != "ready" {
            bail!("probe for {addr} {expect}: {line}");
        }
        Ok(Watch { child, what: format!("{addr} {expect}") })
    }

    /// Swaps the policy's address rule from `from` to `to` and measures
    /// until `from`'s address is refused and `to`'s allowed (a connection
    /// refused: nothing listens there, but ram let the connect through).
    fn swap(&self, to: &str, deny_addr: &str, allow_addr: &str, by_ramctl: bool) -> Result<(f64, f64)> {
        let denies = self.watch(deny_addr, "EPERM")?;
        let allows = self.watch(allow_addr, "ECONNREFUSED")?;
        let config = self.run_dir_path("ram.toml")?;
        let policy = self.bench_policy(to);
        let since = if by_ramctl {
            std::fs::write(&config, policy)?;
            let since = monotonic_ns();
            let out = self.ramctl(&["reload"])?;
            if !out.status.success() {
                bail!("ramctl reload: {}", String::from_utf8_lossy(&out.stderr));
            }
            since
        } else {
            let since = monotonic_ns();
            std::fs::write(&config, policy)?;
            since
        };
        let result = (denies.ms_since(since)?, allows.ms_since(since)?);
        // Let ramd's file watch see the write before the next change (after
        // a ramctl reload it finds the file it has already loaded).
        std::thread::sleep(RAMD_POLICY_WATCH + Duration::from_millis(100));
        Ok(result)
    }

    /// Each repetition swaps the address rule by `ramctl reload` and back by
    /// editing the file.
    pub(super) fn reloads(&self, plan: &Plan) -> Result<Reloads> {
        let mut reloads = Reloads::default();
        for _ in 0..plan.repetitions {
            let (denies, allows) = self.swap(SECOND_CIDR, IN_FIRST, IN_SECOND, true)?;
            reloads.ramctl_denies.push(denies);
            reloads.ramctl_allows.push(allows);
            let (denies, allows) = self.swap(FIRST_CIDR, IN_SECOND, IN_FIRST, false)?;
            reloads.edit_denies.push(denies);
            reloads.edit_allows.push(allows);
        }
        Ok(reloads)
    }

    /// ramd's VmRSS, or VmHWM (its peak), in kB.
    fn ramd_memory_kb(&self, field: &str) -> Result<u64> {
        let pid = self.ramd.as_ref().context("ramd is not running")?.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("no {field} in /proc/{pid}/status"))
    }

    /// ramd's memory idle, then at the end of a loop of blocked connects.
    pub(super) fn memory(&self, plan: &Plan) -> Result<Memory> {
        std::thread::sleep(Duration::from_millis(500));
        let idle_kb = self.ramd_memory_kb("VmRSS:")?;
        let out = self
            .probe_command(&self.netns[1], Some(&self.cgroups[1]))
            .args(["connect-loop", BLOCKED, "9", &(plan.loop_ms * 2).to_string()])
            .output()
            .context("run the blocked loop")?;
        let loaded_kb = self.ramd_memory_kb("VmRSS:")?;
        let peak_kb = self.ramd_memory_kb("VmHWM:")?;
        let text = String::from_utf8_lossy(&out.stdout);
        let failed =
            text.split_whitespace().find_map(|w| w.strip_prefix("failed=")).and_then(|v| v.parse::<f64>().ok());
        let Some(failed) = failed.filter(|f| *f > 0.0) else {
            bail!("the blocked loop was not blocked: {text}");
        };
        Ok(Memory { idle_kb, loaded_kb, peak_kb, blocked_per_s: failed / (plan.loop_ms * 2) as f64 * 1000.0 })
    }
}

/// The figures' rows and JSON.
pub(super) fn report(md: &mut String, reloads: &Reloads, memory: &Memory) -> serde_json::Value {
    for (name, values) in [
        ("`ramctl reload` to a removed rule refusing", &reloads.ramctl_denies),
        ("`ramctl reload` to a new rule allowing", &reloads.ramctl_allows),
        ("file edit to a removed rule refusing", &reloads.edit_denies),
        ("file edit to a new rule allowing", &reloads.edit_allows),
    ] {
        let _ = writeln!(
            md,
            "| policy change, {name}: ms | {:.1} | | | {:.1} % | ≤ 100 ms |",
            median(values),
            spread(values)
        );
    }
    let mb = |kb: u64| kb as f64 / 1024.0;
    let _ = writeln!(md, "| ramd resident memory, idle: MB | {:.1} | | | | ≤ 30 MB |", mb(memory.idle_kb));
    let _ = writeln!(
        md,
        "| ramd resident memory, under {:.0} blocked connects/s: MB (peak {:.1}) | {:.1} | {:.1} (idle) | {:.2} | | ≤ 30 MB |",
        memory.blocked_per_s,
        mb(memory.peak_kb),
        mb(memory.loaded_kb),
        mb(memory.idle_kb),
        if memory.idle_kb > 0 { memory.loaded_kb as f64 / memory.idle_kb as f64 } else { 0.0 }
    );
    serde_json::json!({
        "policy_change_ms": {
            "ramctl_reload_denies": reloads.ramctl_denies,
            "ramctl_reload_allows": reloads.ramctl_allows,
            "file_edit_denies": reloads.edit_denies,
            "file_edit_allows": reloads.edit_allows,
        },
        "ramd_memory_kb": {
            "idle": memory.idle_kb,
            "blocked_loop": memory.loaded_kb,
            "peak": memory.peak_kb,
            "blocked_per_s": memory.blocked_per_s,
        },
    })
}
