//! `ramctl reload`: ask ramd to read its policy again and report the outcome.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use ram::{paths::Paths, status::DaemonStatus, sys::pid_alive};

/// How long to wait for ramd to answer; loading programs for new targets
/// takes the verifier a moment.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

pub fn run(paths: &Paths, json: bool) -> anyhow::Result<()> {
    let after = request(paths, ANSWER_TIMEOUT)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&after.reload)?);
    } else if after.reload.ok {
        println!("reloaded: {}", after.reload.message);
    }
    if !after.reload.ok {
        bail!("policy refused, nothing changed: {}", after.reload.message);
    }
    Ok(())
}

/// Asks ramd to reload and waits for its answer: ramd's status after it.
pub fn request(paths: &Paths, timeout: Duration) -> anyhow::Result<DaemonStatus> {
    let before = DaemonStatus::read(&paths.status_file()).context("reading ramd's status (is ramd running?)")?;
    if !pid_alive(before.pid) {
        bail!("ramd (pid {}) is not running", before.pid);
    }
    // Whatever the caller wrote (policy, kernel log setting) is in place
    // now: the reload that answers must begin after this.
    let asked_ns = ram::sys::monotonic_ns();
    // SAFETY: sending SIGHUP to the pid ramd wrote in its status file.
    if unsafe { libc::kill(before.pid as i32, libc::SIGHUP) } != 0 {
        bail!("cannot signal ramd (pid {}): {}", before.pid, std::io::Error::last_os_error());
    }
    let deadline = Instant::now() + timeout;
    let after = loop {
        if let Ok(now) = DaemonStatus::read(&paths.status_file()) {
            // A ramd that does not say when its reload began (started_ns
            // 0, an older build) is taken at its generation.
            let began_after = now.reload.started_ns >= asked_ns || now.reload.started_ns == 0;
            if now.reload.generation > before.reload.generation && began_after {
                break now;
            }
        }
        if Instant::now() > deadline {
            bail!("ramd did not answer within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Ok(after)
}
