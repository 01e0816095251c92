//! Blocked-attempt log lines, limited per process and destination: a retry
//! loop must not flood the journal. The first attempt of a (target, process,
//! destination, protocol, hook) is logged at once; repeats within
//! [`WINDOW`] are counted, not logged, and one line at the window's end says
//! how many there were. Counters and `ramctl blocked` still see every
//! attempt: only the log lines are limited.

use std::{
    collections::HashMap,
    net::IpAddr,
    time::{Duration, Instant},
};

use crate::events::BlockedRecord;

/// How long repeats of one attempt stay folded into one line.
pub const WINDOW: Duration = Duration::from_secs(10);

/// Distinct attempts followed at once. Beyond it, new ones are counted in
/// one overflow line (a scan of many destinations is still reported, and
/// ramd's memory stays bounded).
pub const MAX_TRACKED: usize = 4096;

/// What makes two attempts "the same" for the log.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct AttemptKey {
    target: String,
    pid: u32,
    daddr: IpAddr,
    dport: u16,
    protocol: String,
    hook: &'static str,
    event: &'static str,
}

impl AttemptKey {
    fn of(record: &BlockedRecord) -> Self {
        AttemptKey {
            target: record.target.clone(),
            pid: record.pid,
            daddr: record.daddr,
            dport: record.dport,
            protocol: record.protocol.clone(),
            hook: record.hook,
            event: record.event,
        }
    }
}

struct Window {
    opened: Instant,
    /// Attempts since the logged one, not logged.
    repeats: u64,
    /// The latest of them, to log at the window's end.
    latest: BlockedRecord,
}

/// Lines to log now.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Lines {
    /// Logged as they are (`repeats` 0).
    pub attempts: Vec<BlockedRecord>,
    /// The end of a window with repeats: the latest attempt, with
    /// `repeats` set to how many were not logged.
    pub summaries: Vec<BlockedRecord>,
    /// Attempts not logged because [`MAX_TRACKED`] others were followed.
    pub overflow: u64,
}

pub struct LogLimiter {
    window: Duration,
    max_tracked: usize,
    open: HashMap<AttemptKey, Window>,
    overflow: u64,
}

impl Default for LogLimiter {
    fn default() -> Self {
        LogLimiter::new(WINDOW, MAX_TRACKED)
    }
}

impl LogLimiter {
    pub fn new(window: Duration, max_tracked: usize) -> Self {
        LogLimiter { window, max_tracked, open: HashMap::new(), overflow: 0 }
    }

    /// One attempt: what to log for it now (maybe nothing).
    pub fn attempt(&mut self, record: BlockedRecord, now: Instant) -> Lines {
        let mut lines = Lines::default();
        let key = AttemptKey::of(&record);
        let full = self.open.len() >= self.max_tracked;
        match self.open.get_mut(&key) {
            Some(window) if now.duration_since(window.opened) < self.window => {
                window.repeats += 1;
                window.latest = record;
            }
            Some(window) => {
                // The window ended before the sweep saw it: close it, and
                // this attempt opens the next.
                if window.repeats > 0 {
                    lines.summaries.push(summary(window));
                }
                *window = Window { opened: now, repeats: 0, latest: record.clone() };
                lines.attempts.push(record);
            }
            None if full => self.overflow += 1,
            None => {
                self.open.insert(key, Window { opened: now, repeats: 0, latest: record.clone() });
                lines.attempts.push(record);
            }
        }
        lines
    }

    /// Closes the windows that have ended: a line for each that had
    /// repeats, and the overflow count since the last sweep.
    pub fn sweep(&mut self, now: Instant) -> Lines {
        let mut lines = Lines { overflow: std::mem::take(&mut self.overflow), ..Lines::default() };
        let window = self.window;
        self.open.retain(|_, open| {
            if now.duration_since(open.opened) < window {
                return true;
            }
            if open.repeats > 0 {
                lines.summaries.push(summary(open));
            }
            false
        });
        lines
    }
}

fn summary(window: &Window) -> BlockedRecord {
    BlockedRecord { repeats: window.repeats, ..window.latest.clone() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(pid: u32, daddr: &str) -> BlockedRecord {
        BlockedRecord {
            event: "blocked",
            at_unix_ms: 0,
            target: "docker".into(),
            pid,
            comm: "dockerd".into(),
            daddr: daddr.parse().unwrap(),
            dport: 443,
            host: None,
            protocol: "tcp".into(),
            hook: "connect",
            cgroup_id: 1,
            container: None,
            repeats: 0,
        }
    }

    #[test]
    fn a_retry_loop_is_one_line_and_a_count() {
        let mut limiter = LogLimiter::new(Duration::from_secs(10), 16);
        let start = Instant::now();
        let first = limiter.attempt(attempt(7, "192.0.2.1"), start);
        assert_eq!(first.attempts.len(), 1);
        for i in 1..=999u64 {
            let lines = limiter.attempt(attempt(7, "192.0.2.1"), start + Duration::from_millis(i * 9));
            assert!(lines.attempts.is_empty() && lines.summaries.is_empty(), "repeat {i} was logged");
        }
        assert_eq!(limiter.sweep(start + Duration::from_secs(9)), Lines::default());
        let end = limiter.sweep(start + Duration::from_secs(10));
        assert_eq!(end.summaries.len(), 1);
        assert_eq!(end.summaries[0].repeats, 999);
        // The window is closed: the next attempt is logged again.
        let again = limiter.attempt(attempt(7, "192.0.2.1"), start + Duration::from_secs(11));
        assert_eq!(again.attempts.len(), 1);
    }

    #[test]
    fn other_processes_and_destinations_are_logged_on_their_own() {
        let mut limiter = LogLimiter::new(Duration::from_secs(10), 16);
        let now = Instant::now();
        assert_eq!(limiter.attempt(attempt(7, "192.0.2.1"), now).attempts.len(), 1);
        assert_eq!(limiter.attempt(attempt(8, "192.0.2.1"), now).attempts.len(), 1);
        assert_eq!(limiter.attempt(attempt(7, "192.0.2.2"), now).attempts.len(), 1);
        let mut other_port = attempt(7, "192.0.2.1");
        other_port.dport = 80;
        assert_eq!(limiter.attempt(other_port, now).attempts.len(), 1);
        let mut audit = attempt(7, "192.0.2.1");
        audit.event = "would_block";
        assert_eq!(limiter.attempt(audit, now).attempts.len(), 1);
    }

    #[test]
    fn a_window_the_sweep_missed_is_closed_by_the_next_attempt() {
        let mut limiter = LogLimiter::new(Duration::from_secs(10), 16);
        let start = Instant::now();
        limiter.attempt(attempt(7, "192.0.2.1"), start);
        limiter.attempt(attempt(7, "192.0.2.1"), start + Duration::from_secs(1));
        let lines = limiter.attempt(attempt(7, "192.0.2.1"), start + Duration::from_secs(12));
        assert_eq!(lines.summaries.len(), 1);
        assert_eq!(lines.summaries[0].repeats, 1);
        assert_eq!(lines.attempts.len(), 1);
        assert_eq!(lines.attempts[0].repeats, 0);
    }

    #[test]
    fn beyond_the_tracked_limit_attempts_are_counted_as_overflow() {
        let mut limiter = LogLimiter::new(Duration::from_secs(10), 2);
        let now = Instant::now();
        limiter.attempt(attempt(1, "192.0.2.1"), now);
        limiter.attempt(attempt(2, "192.0.2.1"), now);
        for pid in 3..10 {
            assert!(limiter.attempt(attempt(pid, "192.0.2.1"), now).attempts.is_empty());
        }
        assert_eq!(limiter.sweep(now).overflow, 7);
        assert_eq!(limiter.sweep(now).overflow, 0, "the overflow is reported once");
        // Once the windows end, new attempts are followed again.
        limiter.sweep(now + Duration::from_secs(10));
        assert_eq!(limiter.attempt(attempt(3, "192.0.2.1"), now + Duration::from_secs(10)).attempts.len(), 1);
    }
}
