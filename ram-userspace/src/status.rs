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
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadStatus {
    /// Counts reloads; `ramctl reload` waits for it to move.
    pub generation: u64,
    pub ok: bool,
    pub message: String,
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
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupStatus {
    pub path: String,
    pub id: u64,
}

impl DaemonStatus {
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
