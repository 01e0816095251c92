//! The recent blocked attempts, kept on disk for `ramctl blocked`: one JSON
//! object per line in <run dir>/blocked.jsonl, rotated to blocked.jsonl.1 at
//! [`ROTATE_BYTES`], so at most two files of history are kept.

use std::{
    fs::{File, OpenOptions},
    io::Write,
    path::{Path, PathBuf},
};

use crate::events::BlockedRecord;

pub const ROTATE_BYTES: u64 = 1 << 20;
pub const FILE_NAME: &str = "blocked.jsonl";

pub fn current(run_dir: &Path) -> PathBuf {
    run_dir.join(FILE_NAME)
}

pub fn previous(run_dir: &Path) -> PathBuf {
    run_dir.join(format!("{FILE_NAME}.1"))
}

/// Appends records; write errors are returned for the caller to log once,
/// never allowed to stop the event loop.
pub struct Journal {
    run_dir: PathBuf,
    file: Option<File>,
}

impl Journal {
    pub fn new(run_dir: &Path) -> Self {
        Journal { run_dir: run_dir.to_path_buf(), file: None }
    }

    pub fn append(&mut self, record: &BlockedRecord) -> std::io::Result<()> {
        let path = current(&self.run_dir);
        if self.file.is_none() {
            self.file = Some(OpenOptions::new().create(true).append(true).open(&path)?);
        }
        let Some(file) = self.file.as_mut() else { return Ok(()) };
        let mut line = serde_json::to_vec(record).map_err(std::io::Error::other)?;
        line.push(b'\n');
        file.write_all(&line)?;
        if file.metadata()?.len() > ROTATE_BYTES {
            self.file = None;
            std::fs::rename(&path, previous(&self.run_dir))?;
        }
        Ok(())
    }
}

/// The last `limit` records, newest first.
pub fn recent(run_dir: &Path, limit: usize) -> Vec<serde_json::Value> {
    let mut lines: Vec<String> = Vec::new();
    for path in [previous(run_dir), current(run_dir)] {
        if let Ok(text) = std::fs::read_to_string(path) {
            lines.extend(text.lines().map(str::to_string));
        }
    }
    lines.iter().rev().filter_map(|l| serde_json::from_str(l).ok()).take(limit).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_come_back_newest_first_across_a_rotation() {
        let dir = std::env::temp_dir().join(format!("ram-journal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut journal = Journal::new(&dir);
        let record = |pid: u32| BlockedRecord {
            event: "blocked",
            at_unix_ms: 1,
            target: "t".into(),
            pid,
            comm: "x".repeat(400),
            daddr: "127.0.0.1".parse().unwrap(),
            dport: 1,
            host: None,
            protocol: "tcp".into(),
            hook: "connect",
            cgroup_id: 1,
            container: None,
        };
        // Enough to rotate once (each line is about 500 bytes).
        for pid in 0..3000 {
            journal.append(&record(pid)).unwrap();
        }
        assert!(previous(&dir).exists());
        let recent = recent(&dir, 5);
        let pids: Vec<u64> = recent.iter().map(|r| r["pid"].as_u64().unwrap()).collect();
        assert_eq!(pids, [2999, 2998, 2997, 2996, 2995]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
