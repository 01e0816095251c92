//! The kernel log: the programs' own account of the learning path (why an
//! answer taught nothing, with the name and the resolver), written with
//! aya-log at debug level in ram-ebpf's `diag` module.
//!
//! Off by default and then free: the level is the object's load-time
//! constant [`LEVEL_GLOBAL`] (frozen read-only data), so with 0 the
//! verifier removes every log call before the program runs. `ramd
//! --kernel-log debug`, or `ramctl debug on` at run time (the setting file
//! in the run directory, then a reload), loads the programs again with the
//! level set and swaps them into the pinned links, as an upgrade does.
//! Only the ring-buffer object has the log (Linux 5.8+).

use std::{
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use aya::Ebpf;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// aya-log-ebpf's level constant in the object.
pub const LEVEL_GLOBAL: &str = "AYA_LOG_LEVEL";

/// The run-time setting `ramctl debug` writes in the run directory.
pub const SETTING_FILE: &str = "kernel-log";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KernelLog {
    #[default]
    Off,
    Debug,
}

impl KernelLog {
    /// The value of [`LEVEL_GLOBAL`]: records of this level and above are
    /// written (0: none).
    pub fn level(self) -> u8 {
        match self {
            KernelLog::Off => 0,
            KernelLog::Debug => aya_log::Level::Debug as u8,
        }
    }

    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        match text.trim() {
            "off" => Ok(KernelLog::Off),
            "debug" | "on" => Ok(KernelLog::Debug),
            other => Err(format!("`{other}` is not a kernel log level: off or debug")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            KernelLog::Off => "off",
            KernelLog::Debug => "debug",
        }
    }
}

pub fn setting_path(run_dir: &Path) -> PathBuf {
    run_dir.join(SETTING_FILE)
}

/// The run-time setting, if `ramctl debug` (or ramd) wrote one.
pub fn read_setting(run_dir: &Path) -> Option<std::result::Result<KernelLog, String>> {
    let text = std::fs::read_to_string(setting_path(run_dir)).ok()?;
    Some(KernelLog::parse(&text))
}

pub fn write_setting(run_dir: &Path, setting: KernelLog) -> Result<()> {
    let path = setting_path(run_dir);
    let fresh = run_dir.join(format!("{SETTING_FILE}.new"));
    std::fs::write(&fresh, format!("{}\n", setting.as_str())).map_err(|e| Error::io(&fresh, e))?;
    std::fs::rename(&fresh, &path).map_err(|e| Error::io(&path, e))
}

/// Kernel log lines ramd logs per target and second at most: a process
/// that floods its resolver's port with forged answers must not flood the
/// journal through the kernel log. The rest are counted in one line.
pub const LINES_PER_SECOND: u64 = 200;

/// Forwards the programs' records to ramd's log, naming the target.
struct Sink {
    target: String,
    /// Lines logged in the current second, and those left out of it.
    logged: AtomicU64,
    left_out: AtomicU64,
}

impl log::Log for Sink {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.logged.fetch_add(1, Ordering::Relaxed) >= LINES_PER_SECOND {
            self.left_out.fetch_add(1, Ordering::Relaxed);
            return;
        }
        // Logged at info: an admin who turned the kernel log on wants to
        // see it whatever RUST_LOG says.
        // The programs pad names to one length with NUL bytes (one record
        // size is one verifier path): not part of the line; a name's other
        // control bytes (a label may hold any byte) are shown as `?`.
        let line: String = record
            .args()
            .to_string()
            .chars()
            .filter(|c| *c != '\0')
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        tracing::info!(target_name = %self.target, kernel_log = true, "kernel: {line}");
    }

    fn flush(&self) {}
}

impl Sink {
    /// A new second: says how many lines the last one left out.
    fn next_second(&self) {
        self.logged.store(0, Ordering::Relaxed);
        let left_out = self.left_out.swap(0, Ordering::Relaxed);
        if left_out > 0 {
            tracing::warn!(
                target_name = %self.target,
                kernel_log = true,
                left_out,
                "kernel: {left_out} more kernel log lines in the last second not logged (over {LINES_PER_SECOND} a second)"
            );
        }
    }
}

/// One scope's kernel log, read while it is on.
pub struct Reader {
    logger: Option<aya_log::EbpfLogger<Arc<Sink>>>,
    sink: Option<Arc<Sink>>,
    second: Instant,
}

impl Reader {
    /// Takes the object's log buffer when `setting` is on; a reader that
    /// reads nothing otherwise.
    pub fn start(ebpf: &mut Ebpf, target: &str, setting: KernelLog) -> Result<Self> {
        if setting == KernelLog::Off {
            return Ok(Reader { logger: None, sink: None, second: Instant::now() });
        }
        let sink =
            Arc::new(Sink { target: target.to_string(), logged: AtomicU64::new(0), left_out: AtomicU64::new(0) });
        let logger = aya_log::EbpfLogger::init_with_logger(ebpf, Arc::clone(&sink))
            .map_err(|e| Error::KernelLog { target: target.to_string(), cause: e.to_string() })?;
        Ok(Reader { logger: Some(logger), sink: Some(sink), second: Instant::now() })
    }

    /// Logs what the programs wrote since the last call.
    pub fn flush(&mut self) {
        if let Some(sink) = &self.sink {
            if self.second.elapsed() >= Duration::from_secs(1) {
                self.second = Instant::now();
                sink.next_second();
            }
        }
        let Some(logger) = self.logger.as_mut() else { return };
        // aya-log panics on a record it cannot decode; only ram's programs
        // write to this buffer, but a bug there must not take ramd down.
        let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| logger.flush()));
        if read.is_err() {
            tracing::error!(
                "the kernel log held a record aya-log cannot read; kernel log reading stops for this target"
            );
            self.logger = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_kernel_lines_is_cut_to_the_budget_and_counted() {
        let sink = Sink { target: "t".into(), logged: AtomicU64::new(0), left_out: AtomicU64::new(0) };
        for _ in 0..LINES_PER_SECOND + 50 {
            log::Log::log(&sink, &log::Record::builder().args(format_args!("line")).build());
        }
        assert_eq!(sink.left_out.load(Ordering::Relaxed), 50);
        sink.next_second();
        assert_eq!(sink.left_out.load(Ordering::Relaxed), 0);
        assert_eq!(sink.logged.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn settings_parse_and_off_is_level_zero() {
        assert_eq!(KernelLog::parse("off\n"), Ok(KernelLog::Off));
        assert_eq!(KernelLog::parse("debug"), Ok(KernelLog::Debug));
        assert_eq!(KernelLog::parse("on"), Ok(KernelLog::Debug));
        assert!(KernelLog::parse("loud").unwrap_err().contains("`loud`"));
        // Level 0 writes nothing: every aya-log level is 1 or more.
        assert_eq!(KernelLog::Off.level(), 0);
        assert!(KernelLog::Debug.level() >= aya_log::Level::Error as u8);
    }
}
