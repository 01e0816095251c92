//! `ramctl blocked [-n N] [--follow]`: recent blocked and would-block
//! attempts, newest first; `--follow` then streams new ones as they happen.

use std::{
    io::{Read, Seek, SeekFrom},
    os::unix::fs::MetadataExt,
    time::Duration,
};

use ram::{journal, paths::Paths};

use crate::table::Table;

fn row(v: &serde_json::Value) -> Vec<String> {
    let text = |k: &str| v[k].as_str().map(str::to_string).unwrap_or_else(|| v[k].to_string());
    vec![
        text("event"),
        text("target"),
        format!("{}[{}]", text("comm"), v["pid"]),
        format!("{}:{}", text("daddr"), v["dport"]),
        v["host"].as_str().unwrap_or("-").to_string(),
        format!("{}/{}", text("protocol"), text("hook")),
        // A record can stand for a retry loop's repeats (ramd folds them).
        (1 + v["repeats"].as_u64().unwrap_or(0)).to_string(),
    ]
}

const HEADER: [&str; 7] = ["EVENT", "TARGET", "PROCESS", "DESTINATION", "HOST", "HOW", "TIMES"];

pub fn run(paths: &Paths, json: bool, limit: usize, follow: bool) -> anyhow::Result<()> {
    let recent = journal::recent(&paths.run_dir, limit);
    if json && !follow {
        println!("{}", serde_json::to_string_pretty(&recent)?);
        return Ok(());
    }
    if json {
        for v in &recent {
            println!("{v}");
        }
    } else {
        let mut table = Table::new(&HEADER);
        for v in &recent {
            table.row(row(v));
        }
        table.print();
    }
    if !follow {
        return Ok(());
    }
    // Stream what is appended from now on; start over when ramd rotates.
    let path = journal::current(&paths.run_dir);
    let mut offset = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let mut inode = std::fs::metadata(&path).map(|m| m.ino()).unwrap_or(0);
    let mut pending = String::new();
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let Ok(meta) = std::fs::metadata(&path) else { continue };
        if meta.ino() != inode || meta.len() < offset {
            inode = meta.ino();
            offset = 0;
        }
        if meta.len() == offset {
            continue;
        }
        let mut file = std::fs::File::open(&path)?;
        file.seek(SeekFrom::Start(offset))?;
        let mut chunk = String::new();
        offset += file.read_to_string(&mut chunk)? as u64;
        pending.push_str(&chunk);
        while let Some(end) = pending.find('\n') {
            let line: String = pending.drain(..=end).collect();
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line.trim()) else { continue };
            if json {
                println!("{v}");
            } else {
                println!("{}", row(&v).join("  "));
            }
        }
    }
}
