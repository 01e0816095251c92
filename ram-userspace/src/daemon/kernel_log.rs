//! The programs' kernel log in ramd (see `crate::kernel_log`): `ramctl
//! debug on|off` writes the setting in the run directory and asks for a
//! reload, which loads every target's programs again at the new level and
//! swaps them into the pinned links; ramd reads each target's log on its
//! 50 ms tick.

use super::*;
use crate::{
    features::EventsPath,
    kernel_log::{read_setting, replace_setting_if, write_setting},
};

impl Daemon {
    /// Takes the level `ramctl debug` asked for, if any. Returns the level
    /// in effect before, for a refused reload to go back to, and the level
    /// the setting file asked for, for [`Daemon::settle_kernel_log_setting`].
    pub(super) fn take_kernel_log_setting(&mut self) -> (KernelLog, Option<KernelLog>) {
        let before = self.kernel_log;
        let asked = match read_setting(&self.paths.run_dir) {
            Some(Ok(wanted)) => {
                self.kernel_log = kernel_log_for(&self.features, wanted);
                Some(wanted)
            }
            Some(Err(why)) => {
                warn!("{}: {why}", crate::kernel_log::setting_path(&self.paths.run_dir).display());
                None
            }
            None => None,
        };
        if self.kernel_log != before {
            info!(level = self.kernel_log.as_str(), "kernel log changes: every target's programs are loaded again");
        }
        (before, asked)
    }

    /// After a reload: the setting file says the level in effect where the
    /// reload could not give what it asked for (refused, or a kernel without
    /// a ring buffer), unless a newer request came in meanwhile. Written
    /// back unconditionally, it overwrote a `ramctl debug on` written while
    /// a reload woken by a policy edit was under way, and the reload ramctl
    /// then asked for read "off".
    pub(super) fn settle_kernel_log_setting(&self, asked: Option<KernelLog>) {
        if asked == Some(self.kernel_log) {
            return;
        }
        if let Err(e) = replace_setting_if(&self.paths.run_dir, asked, self.kernel_log) {
            warn!("cannot record the kernel log level for `ramctl debug`: {e}");
        }
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
