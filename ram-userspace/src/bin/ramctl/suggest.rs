//! `ramctl suggest [--since DURATION]`: the rules that would have allowed
//! the recent blocked and would-block attempts (see `ram::suggest`).

use anyhow::anyhow;
use ram::{
    journal,
    paths::Paths,
    suggest::{parse_duration, suggest, Attempt},
};

pub fn run(paths: &Paths, json: bool, since: Option<&str>) -> anyhow::Result<()> {
    let since_ms = match since {
        Some(text) => {
            let window = parse_duration(text).map_err(|why| anyhow!("--since {why}"))?;
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as u64;
            now.saturating_sub(window)
        }
        None => 0,
    };
    let attempts: Vec<Attempt> = journal::recent(&paths.run_dir, usize::MAX)
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect();
    let fragment = suggest(&attempts, since_ms);
    if json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "fragment": fragment }))?);
    } else {
        print!("{fragment}");
    }
    Ok(())
}
