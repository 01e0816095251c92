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
    net::{Ipv4Addr, Ipv6Addr},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use aya::{
    maps::{MapData, RingBuf},
    Ebpf,
};
use aya_log_common::{ArgumentKind, DisplayHint, LogValueLength, RecordFieldKind};
use serde::{Deserialize, Serialize};

use crate::loader::{LoadError, Result};

/// aya-log-ebpf's level constant in the object.
pub const LEVEL_GLOBAL: &str = "AYA_LOG_LEVEL";

/// aya-log-ebpf's ring buffer in the object.
const LOG_MAP: &str = "AYA_LOGS";

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
            KernelLog::Debug => aya_log_common::Level::Debug.into(),
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

/// Writes the setting (`ramctl debug` asks with it; ramd's start records
/// the level it gives), under the setting's lock.
pub fn write_setting(run_dir: &Path, setting: KernelLog) -> Result<()> {
    let _lock = SettingLock::take(run_dir)?;
    write_unlocked(run_dir, setting)
}

/// Writes `setting` only if the file still holds `expected` (None: no
/// readable setting), both under the setting's lock: ramd putting back the
/// level in effect never overwrites a request `ramctl debug` made after
/// ramd read the file. Whether it wrote.
pub fn replace_setting_if(run_dir: &Path, expected: Option<KernelLog>, setting: KernelLog) -> Result<bool> {
    let _lock = SettingLock::take(run_dir)?;
    if read_setting(run_dir).and_then(std::result::Result::ok) != expected {
        return Ok(false);
    }
    write_unlocked(run_dir, setting).map(|()| true)
}

fn write_unlocked(run_dir: &Path, setting: KernelLog) -> Result<()> {
    let path = setting_path(run_dir);
    let fresh = run_dir.join(format!("{SETTING_FILE}.new"));
    std::fs::write(&fresh, format!("{}\n", setting.as_str())).map_err(|e| LoadError::io(&fresh, e))?;
    std::fs::rename(&fresh, &path).map_err(|e| LoadError::io(&path, e))
}

/// An exclusive flock on `<run dir>/kernel-log.lock`, held while the
/// setting is read and written; released when dropped (the file closes).
struct SettingLock {
    _held: std::fs::File,
}

impl SettingLock {
    fn take(run_dir: &Path) -> Result<Self> {
        let path = run_dir.join(format!("{SETTING_FILE}.lock"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| LoadError::io(&path, e))?;
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&file), libc::LOCK_EX) } != 0 {
            return Err(LoadError::io(&path, std::io::Error::last_os_error()));
        }
        Ok(SettingLock { _held: file })
    }
}

/// Kernel log lines ramd logs per target and second at most: a process
/// that floods its resolver's port with forged answers must not flood the
/// journal through the kernel log. The rest are counted in one line.
pub const LINES_PER_SECOND: u64 = 200;

/// Records ramd reads from one target's kernel log per call of
/// [`Reader::flush`] (every 50 ms) at most: whatever a flood writes, the
/// event loop spends a bounded time here and goes on (reloads, events,
/// containers). What is not read waits in the ring buffer, where the
/// kernel drops new records while it is full.
pub const RECORDS_PER_FLUSH: u64 = 64;

/// Forwards the programs' records to ramd's log, naming the target.
struct Sink {
    target: String,
    /// Lines logged in the current second, and those left out of it.
    logged: u64,
    left_out: u64,
    /// Records that could not be decoded (said once).
    undecodable: u64,
}

impl Sink {
    fn new(target: &str) -> Self {
        Sink { target: target.to_string(), logged: 0, left_out: 0, undecodable: 0 }
    }

    fn log(&mut self, line: &str) {
        if self.logged >= LINES_PER_SECOND {
            self.left_out += 1;
            return;
        }
        self.logged += 1;
        // Logged at info: an admin who turned the kernel log on wants to
        // see it whatever RUST_LOG says.
        tracing::info!(target_name = %self.target, kernel_log = true, "kernel: {line}");
    }

    fn undecodable(&mut self) {
        if self.undecodable == 0 {
            tracing::error!(target_name = %self.target, "the kernel log held a record ramd cannot read; skipped");
        }
        self.undecodable += 1;
    }

    /// A new second: says how many lines the last one left out.
    fn next_second(&mut self) {
        self.logged = 0;
        let left_out = std::mem::take(&mut self.left_out);
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
    ring: Option<RingBuf<MapData>>,
    sink: Sink,
    second: Instant,
}

impl Reader {
    /// Takes the object's log buffer when `setting` is on; a reader that
    /// reads nothing otherwise.
    pub fn start(ebpf: &mut Ebpf, target: &str, setting: KernelLog) -> Result<Self> {
        let sink = Sink::new(target);
        if setting == KernelLog::Off {
            return Ok(Reader { ring: None, sink, second: Instant::now() });
        }
        let error = |cause: String| LoadError::KernelLog { target: target.to_string(), cause };
        let map = ebpf.take_map(LOG_MAP).ok_or_else(|| error(format!("the object has no {LOG_MAP} map")))?;
        let ring = RingBuf::try_from(map).map_err(|e| error(e.to_string()))?;
        Ok(Reader { ring: Some(ring), sink, second: Instant::now() })
    }

    /// Logs what the programs wrote since the last call, up to
    /// [`RECORDS_PER_FLUSH`] records.
    pub fn flush(&mut self) {
        if self.second.elapsed() >= Duration::from_secs(1) {
            self.second = Instant::now();
            self.sink.next_second();
        }
        let Some(ring) = self.ring.as_mut() else { return };
        for _ in 0..RECORDS_PER_FLUSH {
            let Some(item) = ring.next() else { break };
            match decode(&item) {
                Some(line) => self.sink.log(&line),
                None => self.sink.undecodable(),
            }
        }
    }
}

/// Takes `n` bytes off the front of `buf`.
fn take<'a>(buf: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let slice: &'a [u8] = buf;
    let (head, rest) = (slice.get(..n)?, slice.get(n..)?);
    *buf = rest;
    Some(head)
}

/// One field of a record: its kind byte and its value.
fn field<'a>(buf: &mut &'a [u8]) -> Option<(u8, &'a [u8])> {
    let kind = take(buf, 1)?[0];
    let len = LogValueLength::from_ne_bytes(take(buf, std::mem::size_of::<LogValueLength>())?.try_into().ok()?);
    Some((kind, take(buf, len.into())?))
}

/// The line an aya-log record says (aya-log-ebpf's wire format: the
/// record's length, six header fields, then its arguments), or None when
/// it is malformed. Never panics, whatever the bytes.
///
/// A value written into the format (`{}`, the question's name among them)
/// is shown with hostname characters only: a label may hold any byte, and
/// a name is what a process in the cgroup asks for, so spaces, colons or
/// the programs' own phrases in it would read as a line of their own. The
/// programs pad names with NUL bytes to one length (one record size is one
/// verifier path): dropped.
fn decode(record: &[u8]) -> Option<String> {
    let mut buf = record;
    let size: usize =
        LogValueLength::from_ne_bytes(take(&mut buf, std::mem::size_of::<LogValueLength>())?.try_into().ok()?).into();
    let mut buf = record.get(std::mem::size_of::<LogValueLength>()..size)?;
    let mut num_args = None;
    let mut header_fields = 0;
    while header_fields < 6 {
        let (kind, value) = field(&mut buf)?;
        if kind == u8::from(RecordFieldKind::NumArgs) {
            num_args = Some(u32::from_ne_bytes(value.try_into().ok()?));
        }
        header_fields += 1;
    }
    let mut line = String::new();
    let mut hint = None;
    for _ in 0..num_args? {
        let (kind, value) = field(&mut buf)?;
        let argument = std::mem::take(&mut hint);
        match kind {
            k if k == u8::from(ArgumentKind::DisplayHint) => hint = Some(*value.first()?),
            k if k == u8::from(ArgumentKind::Str) => match argument {
                // A literal of the format string.
                None => line.push_str(std::str::from_utf8(value).ok()?),
                // A value: hostname characters only.
                Some(_) => line.extend(value.iter().filter(|b| **b != 0).map(|b| shown(*b))),
            },
            k if k == u8::from(ArgumentKind::U32) => {
                line.push_str(&u32::from_ne_bytes(value.try_into().ok()?).to_string())
            }
            k if k == u8::from(ArgumentKind::U64) => {
                line.push_str(&u64::from_ne_bytes(value.try_into().ok()?).to_string())
            }
            k if k == u8::from(ArgumentKind::ArrU8Len16) || k == u8::from(ArgumentKind::Ipv6Addr) => {
                let octets: [u8; 16] = value.try_into().ok()?;
                if argument == Some(u8::from(DisplayHint::Ip)) || k == u8::from(ArgumentKind::Ipv6Addr) {
                    line.push_str(&Ipv6Addr::from(octets).to_string());
                } else {
                    line.extend(octets.iter().map(|b| format!("{b:02x}")));
                }
            }
            k if k == u8::from(ArgumentKind::ArrU8Len4) || k == u8::from(ArgumentKind::Ipv4Addr) => {
                let octets: [u8; 4] = value.try_into().ok()?;
                line.push_str(&Ipv4Addr::from(octets).to_string());
            }
            _ => line.push('?'),
        }
    }
    Some(line)
}

/// A byte of a name as the log shows it: letters (lowercase), digits, `-`,
/// `_`, `*` and the dots between labels; anything else as `?`.
fn shown(byte: u8) -> char {
    match byte {
        b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => byte as char,
        b'A'..=b'Z' => byte.to_ascii_lowercase() as char,
        _ => '?',
    }
}

#[cfg(test)]
mod tests {
    use aya_log_common::{Argument, Field, Header, Level};

    use super::*;

    #[test]
    fn ramd_never_puts_back_a_level_over_a_newer_request() {
        let dir = std::env::temp_dir().join(format!("ram-klog-setting-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        // No file yet: ramd records the level in effect.
        assert!(replace_setting_if(&dir, None, KernelLog::Off).expect("write"));
        // ramd read "off"; meanwhile ramctl asked for debug: left alone.
        write_setting(&dir, KernelLog::Debug).expect("request");
        assert!(!replace_setting_if(&dir, Some(KernelLog::Off), KernelLog::Off).expect("compare"));
        assert_eq!(read_setting(&dir), Some(Ok(KernelLog::Debug)));
        // A refused request (what ramd read is still there) is put back.
        assert!(replace_setting_if(&dir, Some(KernelLog::Debug), KernelLog::Off).expect("write"));
        assert_eq!(read_setting(&dir), Some(Ok(KernelLog::Off)));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A literal (no hint) or a value with its hint, and how to write it.
    type Part<'a> = (Option<DisplayHint>, &'a dyn Fn(&mut Vec<u8>));

    /// A record as aya-log-ebpf writes it for `debug!(ctx, "...", args)`.
    fn record(parts: &[Part<'_>]) -> Vec<u8> {
        let mut args = Vec::new();
        let mut count = 0u32;
        for (hint, write) in parts {
            if let Some(hint) = hint {
                let (kind, value) = hint.as_argument();
                Field::new(kind, value)
                    .unwrap()
                    .with_bytes(&mut |b| {
                        args.extend_from_slice(b);
                        Some(())
                    })
                    .unwrap();
                count += 1;
            }
            write(&mut args);
            count += 1;
        }
        let header = Header::new("ram", Level::Debug, "ram::diag::on", "src/diag.rs", 7, count).unwrap();
        let mut body = Vec::new();
        header
            .with_bytes(&mut |b| {
                body.extend_from_slice(b);
                Some(())
            })
            .unwrap();
        body.extend_from_slice(&args);
        let size = (body.len() + 2) as u16;
        let mut out = size.to_ne_bytes().to_vec();
        out.extend_from_slice(&body);
        // The ring buffer's slot is a power of two: padding after the record.
        out.resize(out.len().next_power_of_two(), 0xa5);
        out
    }

    fn arg(value: impl Argument) -> impl Fn(&mut Vec<u8>) {
        let (kind, bytes) = value.as_argument();
        let bytes = bytes.as_ref().to_vec();
        move |out: &mut Vec<u8>| {
            Field::new(kind, bytes.as_slice())
                .unwrap()
                .with_bytes(&mut |b| {
                    out.extend_from_slice(b);
                    Some(())
                })
                .unwrap()
        }
    }

    /// The programs' NOT_ALLOWED line with `name` (padded to 128 bytes).
    fn not_allowed(name: &[u8]) -> Vec<u8> {
        let mut padded = [0u8; 128];
        padded[..name.len()].copy_from_slice(name);
        let text = String::from_utf8(padded.iter().map(|b| b & 0x7f).collect()).unwrap();
        let mut resolver = [0u8; 16];
        resolver[10..].copy_from_slice(&[0xff, 0xff, 127, 0, 0, 53]);
        let (name_arg, resolver_arg) = (arg(text.as_str()), arg(resolver));
        let (lit1, lit2) = (arg(" from "), arg(": not learned: no rule of this target allows the name"));
        record(&[
            (Some(DisplayHint::Default), &name_arg),
            (None, &lit1),
            (Some(DisplayHint::Ip), &resolver_arg),
            (None, &lit2),
        ])
    }

    #[test]
    fn a_record_reads_as_the_programs_line() {
        assert_eq!(
            decode(&not_allowed(b"blocked.registry.test")).as_deref(),
            Some("blocked.registry.test from ::ffff:127.0.0.53: not learned: no rule of this target allows the name")
        );
        let (lit, count) = (arg("learned "), arg(3u32));
        assert_eq!(
            decode(&record(&[(None, &lit), (Some(DisplayHint::Default), &count)])).as_deref(),
            Some("learned 3")
        );
    }

    /// A label may hold any byte: a name asked for from inside the cgroup
    /// must not read as another name, or as a line of the programs' own.
    #[test]
    fn a_name_shows_hostname_characters_only() {
        let forged = b"ghcr.io from ::ffff:127.0.0.53: learned 2 address(es) --";
        let line = decode(&not_allowed(forged)).unwrap();
        assert!(
            line.starts_with(
                "ghcr.io?from???ffff?127.0.0.53??learned?2?address?es??-- from ::ffff:127.0.0.53: not learned"
            ),
            "{line}"
        );
        assert_eq!(decode(&not_allowed(b"GHCR.io\n\x1b[0m")).unwrap().split(' ').next(), Some("ghcr.io???0m"));
    }

    #[test]
    fn no_bytes_make_the_reader_panic() {
        let good = not_allowed(b"blocked.registry.test");
        for cut in 0..good.len() {
            let _ = decode(&good[..cut]);
        }
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..20_000 {
            let mut bytes = good.clone();
            for _ in 0..1 + round % 8 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let at = (seed as usize) % bytes.len();
                bytes[at] = (seed >> 32) as u8;
            }
            let _ = decode(&bytes);
        }
        assert_eq!(decode(&[]), None);
        assert_eq!(decode(&[0xff, 0xff]), None);
    }

    #[test]
    fn a_flood_of_kernel_lines_is_cut_to_the_budget_and_counted() {
        let mut sink = Sink::new("t");
        for _ in 0..LINES_PER_SECOND + 50 {
            sink.log("line");
        }
        assert_eq!(sink.left_out, 50);
        sink.next_second();
        assert_eq!(sink.left_out, 0);
        assert_eq!(sink.logged, 0);
    }

    #[test]
    fn settings_parse_and_off_is_level_zero() {
        assert_eq!(KernelLog::parse("off\n"), Ok(KernelLog::Off));
        assert_eq!(KernelLog::parse("debug"), Ok(KernelLog::Debug));
        assert_eq!(KernelLog::parse("on"), Ok(KernelLog::Debug));
        assert!(KernelLog::parse("loud").unwrap_err().contains("`loud`"));
        // Level 0 writes nothing: every aya-log level is 1 or more.
        assert_eq!(KernelLog::Off.level(), 0);
        assert!(KernelLog::Debug.level() >= u8::from(aya_log_common::Level::Error));
    }
}
