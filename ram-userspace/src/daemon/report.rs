//! Reporting: the status file ramctl reads, and counters worth a warning.

use super::*;

impl Daemon {
    /// Says (once per interval, with how many) when the kernel could not
    /// send events because the ring buffer was full, or could not learn an
    /// address because a learned map was full. The kernel counts every case
    /// and keeps judging: a full map fails closed.
    pub(super) fn report_capacity_problems(&mut self) {
        for settings in self.scopes.iter().map(|s| &s.settings) {
            let Ok(counters) = Maps::open(&self.paths).and_then(|maps| maps.counters(settings.scope)) else { continue };
            for (name, value) in counters {
                let Some(what) = REPORTED_COUNTERS.iter().find(|(n, _)| *n == name).map(|(_, what)| *what) else {
                    continue;
                };
                let seen = self.capacity_seen.entry((settings.scope, name)).or_insert(value);
                if value > *seen {
                    warn!(target_name = %settings.name, count = value - *seen, total = value, "{what}");
                    *seen = value;
                }
            }
        }
    }

    pub fn status(&self) -> DaemonStatus {
        let targets = self
            .scopes
            .iter()
            .map(|Scope { settings, instance }| {
                let cgroups: Vec<CgroupStatus> = instance
                    .attached()
                    .map(|(id, path)| CgroupStatus { path: path.display().to_string(), id })
                    .collect();
                TargetStatus {
                    scope: settings.scope,
                    name: settings.name.clone(),
                    selector: settings.selector.to_string(),
                    mode: settings.mode.to_string(),
                    state: if cgroups.is_empty() { "pending" } else { "attached" }.to_string(),
                    cgroups,
                    programs: instance.programs(),
                    note: self.notes.get(&settings.scope).cloned(),
                    containers_target: settings.selector.containers().map(|c| c.runtime.to_string()),
                    containers: self.held_by(settings.scope),
                }
            })
            .collect();
        DaemonStatus {
            reload: self.reload.clone(),
            pid: std::process::id(),
            kernel: self.features.clone(),
            policy: self.policy.source.clone(),
            mode: self.policy.mode.to_string(),
            targets,
            kernel_log: self.kernel_log,
        }
    }

    pub(super) fn publish_status(&mut self) {
        let status = self.status();
        if self.last_status.as_ref() == Some(&status) {
            return;
        }
        if let Err(e) = status.write(&self.paths.status_file()) {
            warn!("cannot write status: {e}");
        }
        self.last_status = Some(status);
    }

    pub(super) fn scope_name(&self, scope: u32) -> String {
        self.scope(scope).map(|s| s.settings.name.clone()).unwrap_or_else(|| format!("scope {scope}"))
    }
}
