//! `ramctl rules`: the compiled rules as the kernel holds them.

use ram::{maps::Maps, paths::Paths};

use crate::{require_pins, scope_label, scope_names, table::Table};

pub fn run(paths: &Paths, json: bool) -> anyhow::Result<()> {
    require_pins(paths)?;
    let rows = Maps::open(paths)?.rules()?;
    let names = scope_names(paths);
    let targets = |scopes: &[u32]| -> Vec<String> { scopes.iter().map(|s| scope_label(&names, *s)).collect() };
    if json {
        let items: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                let ports: serde_json::Map<String, serde_json::Value> =
                    targets(&r.scopes).into_iter().zip(&r.ports).map(|(t, p)| (t, serde_json::json!(p))).collect();
                serde_json::json!({ "kind": r.kind, "rule": r.rule, "targets": targets(&r.scopes), "ports": ports })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(());
    }
    let mut table = Table::new(&["KIND", "RULE", "TARGETS (PORTS)"]);
    for r in &rows {
        let by_target: Vec<String> =
            targets(&r.scopes).into_iter().zip(&r.ports).map(|(t, p)| format!("{t} ({p})")).collect();
        table.row(vec![r.kind.to_string(), r.rule.clone(), by_target.join(", ")]);
    }
    table.print();
    Ok(())
}
