//! `ramctl await-enforced`: the `ExecStartPre=` of a runtime's systemd unit.
//!
//! systemd makes the unit's cgroup before it runs ExecStartPre, and runs it
//! there; ramd attaches to a `unit` target's cgroup as soon as it appears.
//! Waiting here until ramd reports this very cgroup (or one above it) as
//! enforced means the runtime's first instruction already runs enforced.
//! On timeout this fails, so the unit does not start: never fail open.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use ram::{cgroup, loader, paths::Paths, status::DaemonStatus, sys::pid_alive};
use serde_json::json;

/// How often the status file is read again (ramd looks for new cgroups
/// every 250 ms; this adds little to that).
const POLL: Duration = Duration::from_millis(20);

pub fn run(paths: &Paths, json_out: bool, timeout_s: f64) -> anyhow::Result<()> {
    let timeout = Duration::try_from_secs_f64(timeout_s)
        .with_context(|| format!("--timeout {timeout_s}: not a number of seconds"))?;
    let mount = cgroup::cgroup2_mount()?;
    // Innermost first; a program attached to any of them judges this process.
    let chain = cgroup::own_cgroups(&mount)?;
    let ids: Vec<u64> = chain.iter().map(|(_, id)| *id).collect();
    let (own, own_id) = chain.first().cloned().context("no cgroup of this process under the cgroup v2 mount")?;
    let deadline = Instant::now() + timeout;
    loop {
        let status = DaemonStatus::read(&paths.status_file());
        if let Ok(status) = &status {
            // The link pins are the enforcement itself: a status file left
            // behind by a ramd whose pins were removed does not count.
            let pins = loader::link_pins(paths);
            let pinned = |scope, id| pins.iter().any(|(pin, _)| pin.scope == scope && pin.cgroup_id == id);
            if let Some(found) = status.enforcing(&ids, pinned) {
                let (target, attached) = (found.target, &found.cgroup.path);
                if json_out {
                    let out = json!({
                        "enforced": true,
                        "cgroup": own,
                        "target": target.name,
                        "attached": attached,
                        "mode": target.mode,
                    });
                    println!("{out}");
                } else {
                    let audit = if target.mode == "audit" { "; audit mode: logs, blocks nothing" } else { "" };
                    println!(
                        "enforced: cgroup {} by target {} (attached to {attached}, mode {}{audit})",
                        own.display(),
                        target.name,
                        target.mode,
                    );
                }
                return Ok(());
            }
        }
        if Instant::now() >= deadline {
            bail!(
                "cgroup {} (id {}) is not enforced after {timeout:?}: {}",
                own.display(),
                own_id,
                why_not(paths, &status, &own)
            );
        }
        std::thread::sleep(POLL);
    }
}

/// What to look at when the wait timed out.
fn why_not(paths: &Paths, status: &ram::error::Result<DaemonStatus>, own: &std::path::Path) -> String {
    let status = match status {
        Err(e) => return format!("cannot read ramd's status ({e}); is ramd running?"),
        Ok(status) if !pid_alive(status.pid) => {
            return format!("ramd is not running (last pid {}); start it (systemctl start ramd)", status.pid)
        }
        Ok(status) => status,
    };
    let unit = own
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".service") || name.ends_with(".scope"));
    let hint = match unit {
        Some(unit) => format!("a target with `unit = \"{unit}\"` (or a `cgroup` above it)"),
        None => "a target whose `unit` or `cgroup` is this cgroup or one above it".to_string(),
    };
    let pending: Vec<String> = status
        .targets
        .iter()
        .filter(|t| t.state != "attached")
        .map(|t| match &t.note {
            Some(note) => format!("{} ({note})", t.name),
            None => t.name.clone(),
        })
        .collect();
    let pending = if pending.is_empty() { String::new() } else { format!("; pending: {}", pending.join(", ")) };
    let file: PathBuf = paths.status_file();
    format!(
        "no target of ramd (pid {}, {}) is attached to it or to a cgroup above it; the policy needs {hint}{pending}",
        status.pid,
        file.display()
    )
}
