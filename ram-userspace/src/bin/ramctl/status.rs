//! `ramctl status`: is ramd running, what is attached, what was counted.

use ram::{loader, maps::Maps, paths::Paths, status::DaemonStatus, sys::pid_alive};
use serde_json::json;

use crate::{require_pins, scope_label, table::Table};

pub fn run(paths: &Paths, json_out: bool) -> anyhow::Result<()> {
    require_pins(paths)?;
    let daemon = DaemonStatus::read(&paths.status_file()).ok();
    let running = daemon.as_ref().is_some_and(|d| pid_alive(d.pid));
    let links = loader::link_pins(paths);
    let scopes: Vec<u32> = match &daemon {
        Some(d) => d.targets.iter().map(|t| t.scope).collect(),
        None => Maps::open(paths)?.scope_configs()?.into_iter().map(|(s, _)| s).collect(),
    };
    let names = crate::scope_names(paths);
    let maps = Maps::open(paths)?;
    let mut counters = Vec::new();
    for scope in &scopes {
        counters.push((*scope, maps.counters(*scope)?));
    }
    if json_out {
        let targets: Vec<serde_json::Value> = scopes
            .iter()
            .map(|scope| {
                let target = daemon.as_ref().and_then(|d| d.targets.iter().find(|t| t.scope == *scope));
                let counts: serde_json::Map<String, serde_json::Value> = counters
                    .iter()
                    .find(|(s, _)| s == scope)
                    .map(|(_, c)| c.iter().map(|(k, v)| (k.to_string(), json!(v))).collect())
                    .unwrap_or_default();
                json!({
                    "scope": scope,
                    "name": scope_label(&names, *scope),
                    "selector": target.map(|t| t.selector.clone()),
                    "mode": target.map(|t| t.mode.clone()),
                    "state": target.map(|t| t.state.clone()),
                    "note": target.and_then(|t| t.note.clone()),
                    "containers": target.map(|t| t.containers.clone()).unwrap_or_default(),
                    "cgroups": target.map(|t| t.cgroups.clone()).unwrap_or_default(),
                    "programs": target.map(|t| t.programs.clone()).unwrap_or_default(),
                    "links": links.iter().filter(|(p, _)| p.scope == *scope).count(),
                    "counters": counts,
                })
            })
            .collect();
        let out = json!({
            "ramd": {
                "running": running,
                "pid": daemon.as_ref().map(|d| d.pid),
                "policy": daemon.as_ref().map(|d| d.policy.clone()),
                "mode": daemon.as_ref().map(|d| d.mode.clone()),
            },
            "kernel_log": daemon.as_ref().map(|d| d.kernel_log),
            "kernel": daemon.as_ref().map(|d| d.kernel.clone()),
            "pin_dir": paths.pin_dir,
            "links": links.len(),
            "targets": targets,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    match &daemon {
        Some(d) if running => println!("ramd: running (pid {}), policy {}, mode {}", d.pid, d.policy, d.mode),
        Some(d) => println!("ramd: not running (last pid {}); pinned programs keep enforcing", d.pid),
        None => println!("ramd: no status file at {}", paths.status_file().display()),
    }
    if let Some(d) = &daemon {
        println!("{}", d.kernel.summary());
        println!("kernel log: {} (`ramctl debug on|off`)", d.kernel_log.as_str());
    }
    println!("pins: {} ({} links)", paths.pin_dir.display(), links.len());
    println!();
    // The selector last: a unit's cgroup path makes it the widest cell.
    let mut table = Table::new(&["TARGET", "MODE", "STATE", "CGROUPS", "PROGRAMS", "SELECTOR"]);
    for scope in &scopes {
        let target = daemon.as_ref().and_then(|d| d.targets.iter().find(|t| t.scope == *scope));
        let cgroups =
            target.map(|t| t.cgroups.iter().map(|c| c.path.clone()).collect::<Vec<_>>().join(",")).unwrap_or_default();
        let programs = target.map(|t| t.programs.len()).unwrap_or(0);
        table.row(vec![
            scope_label(&names, *scope),
            target.map(|t| t.mode.clone()).unwrap_or_else(|| "-".into()),
            target.map(|t| t.state.clone()).unwrap_or_else(|| "-".into()),
            if cgroups.is_empty() { "-".into() } else { cgroups },
            programs.to_string(),
            target.map(|t| t.selector.clone()).unwrap_or_else(|| "-".into()),
        ]);
    }
    table.print();
    for target in daemon.iter().flat_map(|d| d.targets.iter()) {
        if let Some(note) = &target.note {
            println!("  {}: {note}", target.name);
        }
    }
    let held: Vec<_> = daemon.iter().flat_map(|d| d.targets.iter()).filter(|t| !t.containers.is_empty()).collect();
    if !held.is_empty() {
        println!();
        let mut table = Table::new(&["TARGET", "CONTAINER", "ID", "IMAGE"]);
        for target in held {
            for c in &target.containers {
                table.row(vec![target.name.clone(), c.name.clone(), c.id.chars().take(12).collect(), c.image.clone()]);
            }
        }
        table.print();
    }
    println!();
    let mut table = Table::new(&["TARGET", "COUNTER", "VALUE"]);
    for (scope, values) in &counters {
        for (name, value) in values {
            table.row(vec![scope_label(&names, *scope), name.to_string(), value.to_string()]);
        }
    }
    table.print();
    Ok(())
}
