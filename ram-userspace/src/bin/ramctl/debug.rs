//! `ramctl debug [on|off]`: the programs' kernel log (see
//! `ram::kernel_log`). The setting goes in ramd's run directory, then a
//! reload loads every target's programs at the new level.

use anyhow::{bail, Context};
use ram::{
    kernel_log::{write_setting, KernelLog},
    paths::Paths,
    status::DaemonStatus,
};

use crate::reload;

/// How long to wait for ramd: the verifier checks every target's programs
/// again, and with the log on they are bigger (seconds per target under
/// software emulation).
const ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

pub fn run(paths: &Paths, json: bool, setting: Option<&str>) -> anyhow::Result<()> {
    let status = match setting {
        None => DaemonStatus::read(&paths.status_file()).context("reading ramd's status (is ramd running?)")?,
        Some(text) => {
            let wanted = KernelLog::parse(text).map_err(anyhow::Error::msg)?;
            write_setting(&paths.run_dir, wanted)?;
            let after = reload::request(paths, ANSWER_TIMEOUT)?;
            if !after.reload.ok {
                bail!("ramd refused the reload, nothing changed: {}", after.reload.message);
            }
            if after.kernel_log != wanted {
                bail!(
                    "the kernel log stays {} (ramd's log says why: it needs Linux 5.8's ring buffer)",
                    after.kernel_log.as_str()
                );
            }
            after
        }
    };
    if json {
        println!("{}", serde_json::json!({ "kernel_log": status.kernel_log }));
    } else {
        println!("kernel log: {}", status.kernel_log.as_str());
    }
    Ok(())
}
