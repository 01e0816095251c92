//! What ramd keeps on disk for ramctl, one JSON object per line, rotated to
//! `<file>.1` at [`ROTATE_BYTES`] so at most two files of history are kept:
//! - `blocked.jsonl`: the blocked and would-block attempts ramd logged, for
//!   `ramctl blocked`, `suggest` and `explain`;
//! - `answers.jsonl`: the DNS answers ramd saw and what each taught (or why
//!   it taught nothing), for `ramctl explain`.

use std::{
    fs::{File, OpenOptions},
    io::Write,
    path::{Path, PathBuf},
};

use serde::Serialize;

pub const ROTATE_BYTES: u64 = 1 << 20;
pub const FILE_NAME: &str = "blocked.jsonl";
pub const ANSWERS_FILE_NAME: &str = "answers.jsonl";

/// The blocked-attempt journal's current file.
pub fn current(run_dir: &Path) -> PathBuf {
    run_dir.join(FILE_NAME)
}

/// The blocked-attempt journal's previous file.
pub fn previous(run_dir: &Path) -> PathBuf {
    rotated(&current(run_dir))
}

fn rotated(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}

/// Appends records; write errors are returned for the caller to log once,
/// never allowed to stop the event loop.
pub struct Journal {
    path: PathBuf,
    file: Option<File>,
}

impl Journal {
    /// The blocked-attempt journal.
    pub fn new(run_dir: &Path) -> Self {
        Journal { path: current(run_dir), file: None }
    }

    /// The DNS answer journal.
    pub fn answers(run_dir: &Path) -> Self {
        Journal { path: run_dir.join(ANSWERS_FILE_NAME), file: None }
    }

    pub fn append<T: Serialize>(&mut self, record: &T) -> std::io::Result<()> {
        if self.file.is_none() {
            self.file = Some(OpenOptions::new().create(true).append(true).open(&self.path)?);
        }
        let Some(file) = self.file.as_mut() else { return Ok(()) };
        let mut line = serde_json::to_vec(record).map_err(std::io::Error::other)?;
        line.push(b'\n');
        file.write_all(&line)?;
        if file.metadata()?.len() > ROTATE_BYTES {
            self.file = None;
            std::fs::rename(&self.path, rotated(&self.path))?;
        }
        Ok(())
    }
}

/// The last `limit` blocked attempts, newest first.
pub fn recent(run_dir: &Path, limit: usize) -> Vec<serde_json::Value> {
    recent_in(&current(run_dir), limit)
}

/// The last `limit` DNS answers, newest first.
pub fn recent_answers(run_dir: &Path, limit: usize) -> Vec<serde_json::Value> {
    recent_in(&run_dir.join(ANSWERS_FILE_NAME), limit)
}

fn recent_in(path: &Path, limit: usize) -> Vec<serde_json::Value> {
    let mut lines: Vec<String> = Vec::new();
    for path in [rotated(path), path.to_path_buf()] {
        if let Ok(text) = std::fs::read_to_string(path) {
            lines.extend(text.lines().map(str::to_string));
        }
    }
    lines.iter().rev().filter_map(|l| serde_json::from_str(l).ok()).take(limit).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::BlockedRecord;

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
            repeats: 0,
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
