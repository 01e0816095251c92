//! `ramctl presets`: the registry presets a policy can name, with their hosts.

use ram::policy::presets;

pub fn run(json: bool) -> anyhow::Result<()> {
    let all = presets::all();
    if json {
        println!("{}", serde_json::to_string_pretty(all)?);
        return Ok(());
    }
    for preset in all {
        let region = if preset.needs_region { " (needs region)" } else { "" };
        let ports: Vec<String> = preset.ports.iter().map(|p| p.to_string()).collect();
        println!("{}{region}  ports {}", preset.name, ports.join(","));
        for host in preset.hosts.iter().chain(&preset.wildcards) {
            println!("    {host}");
        }
        if !preset.unconfirmed.is_empty() {
            println!("    unconfirmed: {} point(s); see --json", preset.unconfirmed.len());
        }
    }
    Ok(())
}
