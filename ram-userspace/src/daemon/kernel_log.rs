//! The programs' kernel log in ramd (see `crate::kernel_log`): `ramctl
//! debug on|off` writes the setting in the run directory and asks for a
//! reload, which loads every target's programs again at the new level and
//! swaps them into the pinned links; ramd reads each target's log on its
//! 50 ms tick.

use super::*;
use crate::{
    features::EventsPath,
    kernel_log::{read_setting, write_setting},
};

impl Daemon {
    /// Takes the level `ramctl debug` asked for, if any. Returns the level
    /// in effect before, for a refused reload to go back to.
    pub(super) fn take_kernel_log_setting(&mut self) -> KernelLog {
        let before = self.kernel_log;
        match read_setting(&self.paths.run_dir) {
            Some(Ok(wanted)) => self.kernel_log = kernel_log_for(&self.features, wanted),
            Some(Err(why)) => warn!("{}: {why}", crate::kernel_log::setting_path(&self.paths.run_dir).display()),
            None => {}
        }
        if self.kernel_log != before {
            info!(level = self.kernel_log.as_str(), "kernel log changes: every target's programs are loaded again");
        }
        before
    }

    /// Writes the level in effect where `ramctl debug` reads and writes it.
    pub(super) fn publish_kernel_log_setting(&self) {
        if let Err(e) = write_setting(&self.paths.run_dir, self.kernel_log) {
            warn!("cannot record the kernel log level for `ramctl debug`: {e}");
        }
    }

    /// Logs what the programs wrote to their kernel log.
    pub(super) fn read_kernel_logs(&mut self) {
        for scope in &mut self.scopes {
            scope.instance.read_kernel_log();
        }
    }
}

/// The level ramd can give: the log needs a BPF ring buffer (Linux 5.8+).
pub(super) fn kernel_log_for(features: &KernelFeatures, wanted: KernelLog) -> KernelLog {
    if wanted != KernelLog::Off && features.events != EventsPath::RingBuffer {
        warn!("the kernel log needs a BPF ring buffer (Linux 5.8+): it stays off");
        return KernelLog::Off;
    }
    wanted
}
