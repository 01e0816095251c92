//! `ramctl check HOST|ADDR [PORT] [--target NAME]`: would a connect be
//! allowed now, and by which rule? Exit status 0 when allowed for every
//! target checked, 2 when denied for one.

use std::net::IpAddr;

use anyhow::bail;
use ram::{
    maps::{Check, Maps},
    paths::Paths,
};

use crate::{require_pins, scope_names, table::Table};

/// The targets to judge for: every one, or the one named. Names come from
/// ramd's status file; without it, scopes by number.
pub fn scopes(paths: &Paths, maps: &Maps, target: Option<&str>) -> anyhow::Result<Vec<(u32, String)>> {
    let names = scope_names(paths);
    let mut scopes: Vec<(u32, String)> = if names.is_empty() {
        maps.scope_configs()?.into_iter().map(|(s, _)| (s, format!("scope {s}"))).collect()
    } else {
        names.into_iter().collect()
    };
    scopes.sort();
    if let Some(wanted) = target {
        scopes.retain(|(_, name)| name == wanted);
        if scopes.is_empty() {
            bail!("no target named `{wanted}`");
        }
    }
    Ok(scopes)
}

pub fn run(
    paths: &Paths,
    json: bool,
    destination: &str,
    port: Option<u16>,
    target: Option<&str>,
) -> anyhow::Result<bool> {
    require_pins(paths)?;
    let maps = Maps::open(paths)?;
    let scopes = scopes(paths, &maps, target)?;
    let addr = destination.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().ok();
    let mut results = Vec::new();
    for (scope, name) in &scopes {
        let check = match addr {
            Some(addr) => maps.check_addr(*scope, addr, port)?,
            None => maps.check_host(*scope, destination, port)?,
        };
        results.push((name.clone(), check));
    }
    let all_allowed = results.iter().all(|(_, c)| c.allowed());
    if json {
        let items: Vec<serde_json::Value> = results
            .iter()
            .map(|(target, check)| {
                let mut value = serde_json::to_value(check).unwrap_or_default();
                value["target"] = serde_json::json!(target);
                value["allowed"] = serde_json::json!(check.allowed());
                value
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(all_allowed);
    }
    let mut table = Table::new(&["TARGET", "VERDICT", "WHY"]);
    for (target, check) in &results {
        let why = describe(check);
        let verdict = if check.allowed() { "allowed" } else { "denied" };
        table.row(vec![target.clone(), verdict.into(), why]);
    }
    table.print();
    Ok(all_allowed)
}

/// Why, in words, for the table.
pub fn describe(check: &Check) -> String {
    match check {
        Check::Resolver => "a configured resolver (port 53)".to_string(),
        Check::Cidr { rule } => format!("address rule {rule}"),
        Check::Learned { host, expires_in_s } => {
            format!("learned from {} ({expires_in_s}s left)", host.as_deref().unwrap_or("an allowed name"))
        }
        Check::Expired { host } => {
            format!("learned from {} but expired", host.as_deref().unwrap_or("an allowed name"))
        }
        Check::NameAllowed { learned } if learned.is_empty() => {
            "name allowed; its addresses are learned when it is resolved".into()
        }
        Check::NameAllowed { learned } => {
            format!("name allowed; learned {}", learned.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", "))
        }
        Check::Denied { reason } => reason.clone(),
    }
}
