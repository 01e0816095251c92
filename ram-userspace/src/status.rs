//! What ramd tells ramctl: a JSON file in the run directory, replaced
//! atomically whenever something changes. Counters, rules and learned
//! addresses are not here; ramctl reads those from the pinned maps.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{
    error::{Error, Result},
    features::KernelFeatures,
    loader::ProgramStatus,
};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonStatus {
    pub pid: u32,
    /// The last reload's outcome (generation 0: none yet).
    pub reload: ReloadStatus,
    /// What the kernel offers and so which paths ramd took.
    pub kernel: KernelFeatures,
    pub policy: String,
    pub mode: String,
    pub targets: Vec<TargetStatus>,
    /// The programs' kernel log level in effect (`ramctl debug`).
    #[serde(default)]
    pub kernel_log: crate::kernel_log::KernelLog,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadStatus {
    /// Counts reloads; `ramctl reload` waits for it to move.
    pub generation: u64,
    pub ok: bool,
    pub message: String,
    /// CLOCK_MONOTONIC ns when this reload began, before it read the policy
    /// or the kernel log setting: `ramctl` waits for one that began after
    /// it asked (a reload already under way, woken by an edit of the
    /// policy file, read what was there before). 0 from a ramd before it.
    #[serde(default)]
    pub started_ns: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetStatus {
    pub scope: u32,
    pub name: String,
    pub selector: String,
    pub mode: String,
    /// "attached" or "pending" (nothing to attach to yet).
    pub state: String,
    pub cgroups: Vec<CgroupStatus>,
    pub programs: Vec<ProgramStatus>,
    /// Why a target is pending, when there is more to say than "not found".
    pub note: Option<String>,
    /// A container target's runtime ("docker"); None for a runtime target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub containers_target: Option<String>,
    /// A container target's containers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<ContainerStatus>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerStatus {
    pub id: String,
    pub name: String,
    pub image: String,
    pub cgroup_id: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupStatus {
    pub path: String,
    pub id: u64,
}

/// A target that enforces a given cgroup (see [`DaemonStatus::enforcing`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enforcing<'a> {
    pub target: &'a TargetStatus,
    /// The attached cgroup: the one asked about or one above it.
    pub cgroup: &'a CgroupStatus,
}

impl DaemonStatus {
    /// The first target attached to one of `cgroup_ids` (a cgroup and those
    /// above it: a program attached to a cgroup judges all below it) for
    /// which `pinned` holds, or None.
    pub fn enforcing(&self, cgroup_ids: &[u64], pinned: impl Fn(u32, u64) -> bool) -> Option<Enforcing<'_>> {
        cgroup_ids.iter().find_map(|id| {
            // A container target's programs sit on the root but judge only
            // its containers: they enforce no cgroup as such.
            self.targets.iter().filter(|t| t.state == "attached" && t.containers_target.is_none()).find_map(|target| {
                let cgroup = target.cgroups.iter().find(|c| c.id == *id && pinned(target.scope, c.id))?;
                Some(Enforcing { target, cgroup })
            })
        })
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_vec_pretty(self).map_err(|e| Error::io(path, e.into()))?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    }

    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_slice(&text).map_err(|e| Error::io(path, e.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(scope: u32, name: &str, state: &str, ids: &[u64]) -> TargetStatus {
        TargetStatus {
            scope,
            name: name.into(),
            selector: String::new(),
            mode: "enforce".into(),
            state: state.into(),
            cgroups: ids.iter().map(|id| CgroupStatus { path: format!("/cg/{id}"), id: *id }).collect(),
            programs: Vec::new(),
            note: None,
            containers_target: None,
            containers: Vec::new(),
        }
    }

    #[test]
    fn a_container_targets_root_attachment_enforces_no_cgroup() {
        let mut containers = target(0, "builders", "attached", &[1]);
        containers.containers_target = Some("docker".into());
        let status = DaemonStatus { targets: vec![containers], ..DaemonStatus::default() };
        assert!(status.enforcing(&[30, 20, 1], |_, _| true).is_none());
    }

    #[test]
    fn a_cgroup_is_enforced_by_a_target_attached_to_it_or_above_it() {
        let status = DaemonStatus {
            targets: vec![target(0, "pending", "pending", &[]), target(1, "docker", "attached", &[10, 20])],
            ..DaemonStatus::default()
        };
        let pinned = |_, _| true;
        // Innermost first: the cgroup itself (30, not attached), then its parent (20).
        let found = status.enforcing(&[30, 20, 1], pinned).expect("enforced");
        assert_eq!((found.target.name.as_str(), found.cgroup.id), ("docker", 20));
        assert_eq!(status.enforcing(&[30, 1], pinned), None);
        // A cgroup whose link pin is gone (uninstalled under a stale status) is not enforced.
        assert_eq!(status.enforcing(&[20], |scope, id| (scope, id) != (1, 20)), None);
    }
}
