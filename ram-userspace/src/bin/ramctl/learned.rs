//! `ramctl learned`: addresses learned from DNS answers.

use ram::{maps::Maps, paths::Paths};

use crate::{require_pins, scope_label, scope_names, table::Table};

pub fn run(paths: &Paths, json: bool) -> anyhow::Result<()> {
    require_pins(paths)?;
    let rows = Maps::open(paths)?.learned()?;
    let names = scope_names(paths);
    if json {
        let items: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "addr": r.addr.to_string(),
                    "host": r.host,
                    "expires_in_s": r.expires_in_s,
                    "ttl": r.ttl,
                    "target": scope_label(&names, r.scope),
                    "scope": r.scope,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(());
    }
    let mut table = Table::new(&["ADDRESS", "HOST", "EXPIRES IN", "TTL", "TARGET"]);
    for r in &rows {
        let left = if r.expires_in_s >= 0 { format!("{}s", r.expires_in_s) } else { "expired".into() };
        table.row(vec![
            r.addr.to_string(),
            r.host.clone().unwrap_or_else(|| "-".into()),
            left,
            format!("{}s", r.ttl),
            scope_label(&names, r.scope),
        ]);
    }
    table.print();
    Ok(())
}
