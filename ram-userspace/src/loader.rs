//! Loading the embedded programs, attaching them to cgroups, pinning the links.
//!
//! One instance of the object is loaded per scope (policy target), with the
//! scope number as the load-time constant `RAM_SCOPE`; every instance opens
//! the same pinned maps. Links are attached with BPF_F_ALLOW_MULTI (a child
//! cgroup can add programs but never override ours) and pinned, so
//! enforcement continues when ramd exits or crashes; only [`uninstall`]
//! removes it.

use std::{
    collections::BTreeMap,
    fs::File,
    path::{Path, PathBuf},
};

use aya::{
    programs::{links::FdLink, CgroupAttachMode, CgroupSkb, CgroupSkbAttachType, CgroupSockAddr},
    Ebpf, EbpfLoader,
};
use ram_common::maps::{
    PINNED_MAPS, PROGRAMS, PROG_EGRESS, PROG_INGRESS, SCOPE_GLOBAL, SKB_TASK_INFO_GLOBAL, SOCK_ADDR_TASK_INFO_GLOBAL,
};
use serde::Serialize;

use crate::{
    cgroup::cgroup_id,
    error::{Error, Result},
    features::KernelFeatures,
    paths::{LinkPin, Paths},
    sys,
};

/// The eBPF object built by build.rs from ../ram-ebpf.
pub static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/ram-ebpf.o"));

/// A loaded program as `ramctl status` shows it.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ProgramStatus {
    pub name: String,
    pub id: u32,
    /// Instructions the verifier processed, as the kernel reports it (5.16+).
    pub verified_insns: Option<u32>,
    /// The same, measured by ramd from a statistics load where asked to
    /// (see `crate::verifier`).
    pub measured_insns: Option<u32>,
    /// Bytes of the program after the verifier (xlated) and after the JIT.
    pub xlated_bytes: Option<u32>,
    pub jited_bytes: u32,
}

/// The programs of one scope, loaded and attached to some cgroups.
pub struct ScopeInstance {
    pub scope: u32,
    ebpf: Ebpf,
    /// Verifier figures measured by [`crate::verifier`] where the kernel
    /// does not report them.
    measured: std::collections::BTreeMap<String, u32>,
    /// cgroup id → (path, pinned link files).
    attached: BTreeMap<u64, (PathBuf, Vec<PathBuf>)>,
}

/// The attach flags to ask for. From 5.7 aya attaches through a bpf_link,
/// which the kernel always runs in multi mode and which refuses any flag
/// (EINVAL); before that aya falls back to BPF_PROG_ATTACH, where we must ask
/// for BPF_F_ALLOW_MULTI ourselves. Either way a child cgroup can add
/// programs but never replace ours.
fn attach_mode() -> CgroupAttachMode {
    use aya::util::KernelVersion;
    // aya decides link vs. prog-attach from the same version check.
    if KernelVersion::current().is_ok_and(|v| v >= KernelVersion::new(5, 7, 0)) {
        CgroupAttachMode::Single
    } else {
        CgroupAttachMode::AllowMultiple
    }
}

/// Prepares bpffs and the pin directories (root-only).
pub fn prepare(paths: &Paths) -> Result<()> {
    if let Err(e) = sys::raise_memlock() {
        // Only kernels before 5.11 charge maps to the limit; there a load
        // that needs more fails below with its own clear error.
        tracing::debug!("{e}");
    }
    sys::ensure_bpffs(paths.bpffs_mount())?;
    sys::create_private_dir(&paths.pin_dir)?;
    sys::create_private_dir(&paths.maps_dir())?;
    sys::create_private_dir(&paths.links_dir())
}

impl ScopeInstance {
    /// Loads the programs for `scope`, reusing (or creating and pinning)
    /// the shared maps under the pin directory.
    /// With `measure_verifier`, the verifier cost is measured too (each
    /// program is verified a second time).
    pub fn load(
        paths: &Paths,
        scope: u32,
        target_name: &str,
        features: &KernelFeatures,
        measure_verifier: bool,
    ) -> Result<Self> {
        let pins: Vec<(&str, PathBuf)> = PINNED_MAPS.iter().map(|m| (*m, paths.map_pin(m))).collect();
        let sock_addr_task_info = u32::from(features.sock_addr_task_info);
        let skb_task_info = u32::from(features.skb_task_info);
        let mut loader = EbpfLoader::new();
        loader.override_global(SCOPE_GLOBAL, &scope, true);
        loader.override_global(SOCK_ADDR_TASK_INFO_GLOBAL, &sock_addr_task_info, true);
        loader.override_global(SKB_TASK_INFO_GLOBAL, &skb_task_info, true);
        for (name, path) in &pins {
            loader.map_pin_path(name, path.as_path());
        }
        let mut ebpf =
            loader.load(OBJECT).map_err(|e| Error::Load { target: target_name.to_string(), cause: Box::new(e) })?;
        for name in PROGRAMS {
            let program_error = |e| Error::Program { program: name.to_string(), cause: Box::new(e) };
            let program = ebpf.program_mut(name).ok_or_else(|| Error::Program {
                program: name.to_string(),
                cause: Box::new(aya::programs::ProgramError::UnexpectedProgramType),
            })?;
            if name == PROG_INGRESS || name == PROG_EGRESS {
                let p: &mut CgroupSkb = program.try_into().map_err(program_error)?;
                p.load().map_err(program_error)?;
            } else {
                let p: &mut CgroupSockAddr = program.try_into().map_err(program_error)?;
                p.load().map_err(program_error)?;
            }
        }
        let measured = if measure_verifier {
            crate::verifier::processed_insns(&ebpf).unwrap_or_else(|e| {
                tracing::warn!("cannot measure verifier cost: {e}");
                BTreeMap::new()
            })
        } else {
            BTreeMap::new()
        };
        Ok(ScopeInstance { scope, ebpf, measured, attached: BTreeMap::new() })
    }

    pub fn programs(&self) -> Vec<ProgramStatus> {
        PROGRAMS
            .iter()
            .filter_map(|name| {
                let info = self.ebpf.program(name)?.info().ok()?;
                Some(ProgramStatus {
                    name: name.to_string(),
                    id: info.id(),
                    verified_insns: info.verified_instruction_count(),
                    measured_insns: self.measured.get(*name).copied(),
                    xlated_bytes: info.size_translated(),
                    jited_bytes: info.size_jitted(),
                })
            })
            .collect()
    }

    pub fn attached(&self) -> impl Iterator<Item = (u64, &Path)> {
        self.attached.iter().map(|(id, (path, _))| (*id, path.as_path()))
    }

    pub fn is_attached(&self, cgroup_id: u64) -> bool {
        self.attached.contains_key(&cgroup_id)
    }

    /// Attaches every program to `cgroup` and pins the links. Returns the
    /// cgroup id. On failure, links made so far are detached again.
    pub fn attach(&mut self, paths: &Paths, cgroup: &Path) -> Result<u64> {
        let id = cgroup_id(cgroup).map_err(|e| Error::io(cgroup, e))?;
        if self.attached.contains_key(&id) {
            return Ok(id);
        }
        let dir = File::open(cgroup).map_err(|e| Error::io(cgroup, e))?;
        let mut pinned = Vec::new();
        for name in PROGRAMS {
            match self.attach_one(paths, name, &dir, cgroup, id) {
                Ok(path) => pinned.push(path),
                Err(e) => {
                    for path in &pinned {
                        let _ = std::fs::remove_file(path);
                    }
                    return Err(e);
                }
            }
        }
        self.attached.insert(id, (cgroup.to_path_buf(), pinned));
        Ok(id)
    }

    fn attach_one(&mut self, paths: &Paths, name: &str, dir: &File, cgroup: &Path, cgroup_id: u64) -> Result<PathBuf> {
        let attach_error =
            |e| Error::Attach { program: name.to_string(), cgroup: cgroup.to_path_buf(), cause: Box::new(e) };
        let program_error = |e| Error::Program { program: name.to_string(), cause: Box::new(e) };
        let program = self.ebpf.program_mut(name).ok_or_else(|| Error::Program {
            program: name.to_string(),
            cause: Box::new(aya::programs::ProgramError::UnexpectedProgramType),
        })?;
        let program_id = program.info().map_err(program_error)?.id();
        let link: FdLink = if name == PROG_INGRESS || name == PROG_EGRESS {
            let p: &mut CgroupSkb = program.try_into().map_err(program_error)?;
            let kind = if name == PROG_INGRESS { CgroupSkbAttachType::Ingress } else { CgroupSkbAttachType::Egress };
            let link_id = p.attach(dir, kind, attach_mode()).map_err(attach_error)?;
            let link = p.take_link(link_id).map_err(program_error)?;
            link.try_into().map_err(|e| Error::Link { program: name.to_string(), cause: Box::new(e) })?
        } else {
            let p: &mut CgroupSockAddr = program.try_into().map_err(program_error)?;
            let link_id = p.attach(dir, attach_mode()).map_err(attach_error)?;
            let link = p.take_link(link_id).map_err(program_error)?;
            link.try_into().map_err(|e| Error::Link { program: name.to_string(), cause: Box::new(e) })?
        };
        let pin = LinkPin { scope: self.scope, cgroup_id, program: name.to_string(), program_id };
        let path = paths.links_dir().join(pin.file_name());
        // A pinned link stays attached after this process exits.
        let pinned = link.pin(&path).map_err(|e| Error::Pin { path: path.clone(), cause: Box::new(e) })?;
        drop(pinned);
        Ok(path)
    }

    /// Detaches this instance from every cgroup (its pins were the only
    /// references to its links); returns how many links went.
    pub fn detach_all(&mut self) -> usize {
        let mut detached = 0;
        for (_, (cgroup, pins)) in std::mem::take(&mut self.attached) {
            for pin in pins {
                match std::fs::remove_file(&pin) {
                    Ok(()) => detached += 1,
                    Err(e) => tracing::warn!(pin = %pin.display(), cgroup = %cgroup.display(), "cannot detach: {e}"),
                }
            }
        }
        detached
    }

    /// Pin files this instance made.
    pub fn own_pins(&self) -> impl Iterator<Item = &PathBuf> {
        self.attached.values().flat_map(|(_, pins)| pins.iter())
    }
}

/// The link pins present in the pin directory.
pub fn link_pins(paths: &Paths) -> Vec<(LinkPin, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(paths.links_dir()) else {
        return Vec::new();
    };
    let mut pins: Vec<_> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            Some((LinkPin::parse(&name)?, e.path()))
        })
        .collect();
    pins.sort();
    pins
}

/// What [`uninstall`] removed.
#[derive(Debug, Default, Serialize)]
pub struct UninstallReport {
    pub links: usize,
    pub maps: usize,
}

/// Removes every link (detaching the programs) and then every map pin and
/// the pin directory itself. Links go first so nothing runs against a
/// half-removed set of maps.
pub fn uninstall(paths: &Paths) -> Result<UninstallReport> {
    let mut report = UninstallReport::default();
    if !paths.pin_dir.exists() {
        return Ok(report);
    }
    for dir in [paths.links_dir(), paths.maps_dir()] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            std::fs::remove_file(entry.path()).map_err(|e| Error::io(entry.path(), e))?;
            if dir == paths.links_dir() {
                report.links += 1;
            } else {
                report.maps += 1;
            }
        }
        std::fs::remove_dir(&dir).map_err(|e| Error::io(&dir, e))?;
    }
    std::fs::remove_dir(&paths.pin_dir).map_err(|e| Error::io(&paths.pin_dir, e))?;
    let _ = std::fs::remove_file(paths.status_file());
    Ok(report)
}
