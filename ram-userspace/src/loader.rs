//! Loading the embedded programs, attaching them to cgroups, pinning the links.
//!
//! One instance of the object is loaded per scope (policy target), with the
//! scope number as the load-time constant `RAM_SCOPE`; every instance opens
//! the same pinned maps. Programs are attached in multi mode (a child cgroup
//! can add programs but never override ours) and the attachment is pinned,
//! so enforcement continues when ramd exits or crashes; only [`uninstall`]
//! removes it. From 5.7 the pin is a bpf_link; before, the program is
//! attached with BPF_PROG_ATTACH and the program itself is pinned (see
//! `crate::prog_attach`).

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    fs::File,
    os::fd::AsFd,
    path::{Path, PathBuf},
};

use aya::{
    programs::{
        links::FdLink, CgroupAttachMode, CgroupSkb, CgroupSkbAttachType, CgroupSock, CgroupSockAddr, RawTracePoint,
    },
    Ebpf, EbpfLoader,
};
use aya_obj::generated::{bpf_attach_type, bpf_prog_type};
use ram_common::maps::{
    MAP_CIDR4, MAP_CIDR6, MAP_EVENTS, MAP_LEARN4, MAP_LEARN6, MAP_NAMES, MAP_PERF_EVENTS, MEMBER_LEVEL_GLOBAL,
    MEMBER_RUNTIME_GLOBAL, NAME_SEED_GLOBAL, PINNED_MAPS, PROGRAMS, PROG_CGROUP_MKDIR, PROG_CGROUP_RMDIR, SCOPE_GLOBAL,
    SKB_TASK_INFO_GLOBAL, SOCK_ADDR_TASK_INFO_GLOBAL,
};
use serde::Serialize;

mod error;

pub use error::{LoadError, Result};

use crate::{
    bpf_calls,
    cgroup::{cgroup_id, find_by_ids},
    features::{AttachPath, EventsPath, KernelFeatures},
    kernel_log::KernelLog,
    paths::{LinkPin, Paths, PinKind},
    policy::Limits,
    sys,
};

/// The eBPF objects built by build.rs from ../ram-ebpf: events through a
/// ring buffer, or (for kernels before 5.8) through a perf event array.
static OBJECT_RING: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/ram-ebpf.o"));
static OBJECT_PERF: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/ram-ebpf-perf.o"));

/// The object that sends events the chosen way.
pub fn object(events: EventsPath) -> &'static [u8] {
    match events {
        EventsPath::RingBuffer => OBJECT_RING,
        EventsPath::PerfEventArray => OBJECT_PERF,
    }
}

/// The event map of the object that sends events the chosen way.
pub fn events_map(events: EventsPath) -> &'static str {
    match events {
        EventsPath::RingBuffer => MAP_EVENTS,
        EventsPath::PerfEventArray => MAP_PERF_EVENTS,
    }
}

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
    attach_path: AttachPath,
    ebpf: Ebpf,
    /// Verifier figures measured by [`crate::verifier`] where the kernel
    /// does not report them.
    measured: std::collections::BTreeMap<String, u32>,
    /// The level its programs were loaded with, and their log's reader.
    kernel_log: KernelLog,
    log_reader: crate::kernel_log::Reader,
    /// cgroup id → (path, pinned link files).
    attached: BTreeMap<u64, (PathBuf, Vec<PathBuf>)>,
}

/// The object with the shared maps opened from (or created at) their pins
/// and an instance's load-time constants set; no program loaded yet.
fn open_object(
    paths: &Paths,
    scope: u32,
    (member_level, member_runtime): (u32, u32),
    features: &KernelFeatures,
    limits: &Limits,
    kernel_log: KernelLog,
) -> std::result::Result<Ebpf, aya::EbpfError> {
    let pins: Vec<(&str, PathBuf)> =
        PINNED_MAPS.iter().chain([&events_map(features.events)]).map(|m| (*m, paths.map_pin(m))).collect();
    let sock_addr_task_info = u32::from(features.sock_addr_task_info);
    let skb_task_info = u32::from(features.skb_task_info);
    let mut loader = EbpfLoader::new();
    loader.override_global(SCOPE_GLOBAL, &scope, true);
    let seed = name_seed();
    loader.override_global(NAME_SEED_GLOBAL, &seed, true);
    for (map, size) in map_sizes(limits) {
        loader.map_max_entries(map, size);
    }
    loader.override_global(SOCK_ADDR_TASK_INFO_GLOBAL, &sock_addr_task_info, true);
    loader.override_global(SKB_TASK_INFO_GLOBAL, &skb_task_info, true);
    loader.override_global(MEMBER_LEVEL_GLOBAL, &member_level, true);
    loader.override_global(MEMBER_RUNTIME_GLOBAL, &member_runtime, true);
    // Only the ring-buffer object has the kernel log (it may be absent).
    let level = kernel_log.level();
    loader.override_global(crate::kernel_log::LEVEL_GLOBAL, &level, false);
    for (name, path) in &pins {
        loader.map_pin_path(name, path.as_path());
    }
    loader.load(object(features.events))
}

/// How one scope's programs are loaded, besides the host and the policy.
#[derive(Clone, Copy, Debug)]
pub struct InstanceOptions {
    /// The container gate's constants (see `ScopeSettings::membership`).
    pub membership: (u32, u32),
    /// Measure the verifier's cost too (each program is verified twice).
    pub measure_verifier: bool,
    /// The kernel log level, a load-time constant.
    pub kernel_log: KernelLog,
}

/// The container watch: `ram_cgroup_mkdir` and `ram_cgroup_rmdir` on their
/// raw tracepoints, loaded once (not per scope) while a policy has
/// container targets. Their links are pinned under `PIN_DIR/watch`, so a
/// container made while ramd is down is still held.
pub struct ContainerWatch {
    _ebpf: Ebpf,
}

impl ContainerWatch {
    /// Loads and attaches both programs and pins their links in place of
    /// an earlier run's (both run for a moment: writing the same pending
    /// entry twice does no harm).
    pub fn install(paths: &Paths, features: &KernelFeatures, limits: &Limits) -> Result<Self> {
        let load_error = |e| LoadError::Load { target: "container watch".into(), cause: Box::new(e) };
        let mut ebpf = open_object(paths, 0, (0, 0), features, limits, KernelLog::Off).map_err(load_error)?;
        let dir = paths.watch_dir();
        sys::create_private_dir(&dir)?;
        for (name, tracepoint) in [(PROG_CGROUP_MKDIR, "cgroup_mkdir"), (PROG_CGROUP_RMDIR, "cgroup_rmdir")] {
            let program_error = |e| LoadError::Program { program: name.to_string(), cause: Box::new(e) };
            let program: &mut RawTracePoint = ebpf
                .program_mut(name)
                .ok_or(aya::programs::ProgramError::UnexpectedProgramType)
                .and_then(|p| p.try_into())
                .map_err(program_error)?;
            program.load().map_err(program_error)?;
            let id = program.attach(tracepoint).map_err(program_error)?;
            let link: FdLink = program.take_link(id).map_err(program_error)?.into();
            let pin = dir.join(name);
            let fresh = dir.join(format!("{name}_new"));
            let _ = std::fs::remove_file(&fresh);
            let pinned = link.pin(&fresh).map_err(|e| LoadError::Pin { path: fresh.clone(), cause: Box::new(e) })?;
            drop(pinned);
            // Replaces (and so detaches) an earlier run's link.
            std::fs::rename(&fresh, &pin).map_err(|e| LoadError::io(&pin, e))?;
        }
        Ok(ContainerWatch { _ebpf: ebpf })
    }

    /// Detaches an earlier run's watch (a policy without container targets).
    pub fn remove(paths: &Paths) -> Result<()> {
        let dir = paths.watch_dir();
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Ok(());
        };
        for entry in entries.flatten() {
            std::fs::remove_file(entry.path()).map_err(|e| LoadError::io(entry.path(), e))?;
        }
        std::fs::remove_dir(&dir).map_err(|e| LoadError::io(&dir, e))
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
    sys::create_private_dir(&paths.links_dir())?;
    Ok(())
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
        limits: &Limits,
        options: InstanceOptions,
    ) -> Result<Self> {
        let InstanceOptions { membership, measure_verifier, kernel_log } = options;
        let mut ebpf = open_object(paths, scope, membership, features, limits, kernel_log)
            .map_err(|e| LoadError::Load { target: target_name.to_string(), cause: Box::new(e) })?;
        for name in PROGRAMS {
            let program_error = |e| LoadError::Program { program: name.to_string(), cause: Box::new(e) };
            let program = ebpf.program_mut(name).ok_or_else(|| LoadError::Program {
                program: name.to_string(),
                cause: Box::new(aya::programs::ProgramError::UnexpectedProgramType),
            })?;
            match program_spec(name)?.prog_type {
                bpf_prog_type::BPF_PROG_TYPE_CGROUP_SKB => {
                    let p: &mut CgroupSkb = program.try_into().map_err(program_error)?;
                    p.load().map_err(program_error)?;
                }
                bpf_prog_type::BPF_PROG_TYPE_CGROUP_SOCK => {
                    let p: &mut CgroupSock = program.try_into().map_err(program_error)?;
                    p.load().map_err(program_error)?;
                }
                _ => {
                    let p: &mut CgroupSockAddr = program.try_into().map_err(program_error)?;
                    p.load().map_err(program_error)?;
                }
            }
        }
        let measured = if measure_verifier {
            crate::verifier::processed_insns(&ebpf, object(features.events)).unwrap_or_else(|e| {
                tracing::warn!("cannot measure verifier cost: {e}");
                BTreeMap::new()
            })
        } else {
            BTreeMap::new()
        };
        let log_reader = crate::kernel_log::Reader::start(&mut ebpf, target_name, kernel_log)?;
        Ok(ScopeInstance {
            scope,
            attach_path: features.attach,
            ebpf,
            measured,
            kernel_log,
            log_reader,
            attached: BTreeMap::new(),
        })
    }

    /// The kernel log level its programs were loaded with.
    pub fn kernel_log(&self) -> KernelLog {
        self.kernel_log
    }

    /// Logs what its programs wrote to the kernel log since the last call.
    pub fn read_kernel_log(&mut self) {
        self.log_reader.flush();
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
    /// A pinned link of an earlier run (or of a replaced instance) on the
    /// same cgroup and hook, listed in `adoptable`, is taken over with
    /// BPF_LINK_UPDATE instead: the hook switches to the new program in one
    /// step. What is taken over is removed from `adoptable`.
    pub fn attach(&mut self, paths: &Paths, cgroup: &Path, adoptable: &mut AdoptableLinks) -> Result<u64> {
        let id = cgroup_id(cgroup).map_err(|e| LoadError::io(cgroup, e))?;
        if self.attached.contains_key(&id) {
            return Ok(id);
        }
        let dir = File::open(cgroup).map_err(|e| LoadError::io(cgroup, e))?;
        let mut pinned = Vec::new();
        for name in PROGRAMS {
            match self.attach_one(paths, name, &dir, cgroup, id, adoptable) {
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

    fn attach_one(
        &mut self,
        paths: &Paths,
        name: &str,
        dir: &File,
        cgroup: &Path,
        cgroup_id: u64,
        adoptable: &mut AdoptableLinks,
    ) -> Result<PathBuf> {
        let program_error = |e| LoadError::Program { program: name.to_string(), cause: Box::new(e) };
        let program = self.ebpf.program_mut(name).ok_or_else(|| LoadError::Program {
            program: name.to_string(),
            cause: Box::new(aya::programs::ProgramError::UnexpectedProgramType),
        })?;
        let program_id = program.info().map_err(program_error)?.id();
        let kind = match self.attach_path {
            AttachPath::Link => PinKind::Link,
            AttachPath::ProgAttach => PinKind::AttachedProgram,
        };
        let pin = LinkPin { scope: self.scope, cgroup_id, program: name.to_string(), program_id, kind };
        let path = paths.links_dir().join(pin.file_name());
        match self.attach_path {
            AttachPath::Link => {
                let fd = program.fd().map_err(program_error)?;
                if let Some(taken) = take_over_link(adoptable, self.scope, cgroup_id, name, fd.as_fd(), &path) {
                    return Ok(taken);
                }
                let link = attach_link(program, name, dir, cgroup)?;
                // A pinned link stays attached after this process exits.
                let pinned = link.pin(&path).map_err(|e| LoadError::Pin { path: path.clone(), cause: Box::new(e) })?;
                drop(pinned);
            }
            AttachPath::ProgAttach => {
                let fd = program.fd().map_err(program_error)?;
                // Pin first: an attachment must never exist without the pin
                // that lets a later ramd detach it.
                bpf_calls::pin_object(fd.as_fd(), &path)?;
                if let Err(e) = bpf_calls::attach(dir, cgroup, fd.as_fd(), name) {
                    let _ = std::fs::remove_file(&path);
                    return Err(e.into());
                }
            }
        }
        Ok(path)
    }

    /// Detaches this instance from every cgroup; returns how many
    /// attachments went.
    pub fn detach_all(&mut self) -> usize {
        let mut detached = 0;
        for (_, (cgroup, pins)) in std::mem::take(&mut self.attached) {
            for pin in pins {
                match release(&pin, |_| Some(cgroup.clone())) {
                    Ok(()) => detached += 1,
                    // Taken over by the instance that replaced this one.
                    Err(e) if e.is_not_found() => {}
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

/// Pinned links no current instance owns (an earlier run's, or those of
/// programs being replaced), which attaching may take over.
pub struct AdoptableLinks {
    pins: Vec<(LinkPin, PathBuf)>,
}

impl AdoptableLinks {
    pub fn new(pins: Vec<(LinkPin, PathBuf)>) -> Self {
        Self { pins }
    }

    /// Every link pin in the pin directory: an earlier run's.
    pub fn previous(paths: &Paths) -> Self {
        Self::new(link_pins(paths))
    }

    /// The pins not taken yet.
    pub fn pins(&self) -> impl Iterator<Item = &LinkPin> {
        self.pins.iter().map(|(pin, _)| pin)
    }

    /// The link `scope` may take over on this cgroup and hook: its own
    /// scope's, never another's. Container targets share the root cgroup,
    /// and switching one's link to another's program leaves a pending
    /// container judged by that target's rules alone until its own attach
    /// (red team 7's renumbering bypass, and red team 13's by a renamed
    /// target's link). A link whose target is gone stays until pruned: its
    /// scope's rules are gone too, so it refuses what it judges meanwhile.
    fn take(&mut self, scope: u32, cgroup_id: u64, name: &str) -> Option<PathBuf> {
        let index = self.pins.iter().position(|(pin, _)| {
            pin.kind == PinKind::Link && pin.cgroup_id == cgroup_id && pin.program == name && pin.scope == scope
        })?;
        Some(self.pins.remove(index).1)
    }
}

/// Switches a pinned link of an earlier run on this cgroup and hook (see
/// [`AdoptableLinks::take`]) to `program` and renames its pin to `new_pin`;
/// returns the pin's path, or None when there is no such link or the kernel
/// refuses the update (the caller then attaches a new link, and the old one
/// is pruned later).
fn take_over_link(
    adoptable: &mut AdoptableLinks,
    scope: u32,
    cgroup_id: u64,
    name: &str,
    program: std::os::fd::BorrowedFd<'_>,
    new_pin: &Path,
) -> Option<PathBuf> {
    let old_pin = adoptable.take(scope, cgroup_id, name)?;
    if let Err(e) = bpf_calls::update_link(&old_pin, program) {
        tracing::warn!(pin = %old_pin.display(), "cannot update the link, attaching a new one: {e}");
        return None;
    }
    tracing::debug!(from = %old_pin.display(), to = %new_pin.display(), "link updated to the new program");
    match bpf_calls::move_pin(&old_pin, new_pin) {
        Ok(()) => Some(new_pin.to_path_buf()),
        // The link runs our program either way; only its name is stale.
        Err(e) => {
            tracing::warn!(pin = %old_pin.display(), "cannot rename the updated link's pin: {e}");
            Some(old_pin)
        }
    }
}

/// max_entries the policy sets, by map name.
pub fn map_sizes(limits: &Limits) -> [(&'static str, u32); 5] {
    [
        (MAP_LEARN4, limits.learned_addresses),
        (MAP_LEARN6, limits.learned_addresses),
        (MAP_NAMES, limits.host_rules),
        (MAP_CIDR4, limits.address_rules),
        (MAP_CIDR6, limits.address_rules),
    ]
}

/// Every shared map the object for `events` uses, by name.
pub fn pinned_map_names(events: EventsPath) -> Vec<&'static str> {
    PINNED_MAPS.iter().copied().chain([events_map(events)]).collect()
}

/// The program table's row for `name` (every name in PROGRAMS has one).
fn program_spec(name: &str) -> Result<&'static crate::programs::ProgramSpec> {
    crate::programs::find(name).ok_or_else(|| LoadError::Program {
        program: name.to_string(),
        cause: Box::new(aya::programs::ProgramError::UnexpectedProgramType),
    })
}

/// Attaches `program` to `cgroup` through a bpf_link (5.7+), which the
/// kernel always runs in multi mode.
fn attach_link(program: &mut aya::programs::Program, name: &str, dir: &File, cgroup: &Path) -> Result<FdLink> {
    let attach_error =
        |e| LoadError::Attach { program: name.to_string(), cgroup: cgroup.to_path_buf(), cause: Box::new(e) };
    let program_error = |e| LoadError::Program { program: name.to_string(), cause: Box::new(e) };
    let link_error = |e| LoadError::Link { program: name.to_string(), cause: Box::new(e) };
    // A link refuses attach flags (EINVAL): Single asks for none.
    let spec = program_spec(name)?;
    match spec.prog_type {
        bpf_prog_type::BPF_PROG_TYPE_CGROUP_SKB => {
            let p: &mut CgroupSkb = program.try_into().map_err(program_error)?;
            let kind = if spec.attach_type == bpf_attach_type::BPF_CGROUP_INET_INGRESS {
                CgroupSkbAttachType::Ingress
            } else {
                CgroupSkbAttachType::Egress
            };
            let link_id = p.attach(dir, kind, CgroupAttachMode::Single).map_err(attach_error)?;
            p.take_link(link_id).map_err(program_error)?.try_into().map_err(link_error)
        }
        bpf_prog_type::BPF_PROG_TYPE_CGROUP_SOCK => {
            let p: &mut CgroupSock = program.try_into().map_err(program_error)?;
            let link_id = p.attach(dir, CgroupAttachMode::Single).map_err(attach_error)?;
            p.take_link(link_id).map_err(program_error)?.try_into().map_err(link_error)
        }
        _ => {
            let p: &mut CgroupSockAddr = program.try_into().map_err(program_error)?;
            let link_id = p.attach(dir, CgroupAttachMode::Single).map_err(attach_error)?;
            p.take_link(link_id).map_err(program_error)?.try_into().map_err(link_error)
        }
    }
}

/// Ends the attachment a pin holds: removing a link's pin detaches it; an
/// attached program is detached from its cgroup first (`locate` gives the
/// cgroup's directory from its id) and then unpinned. A cgroup that no
/// longer exists took its attachments with it.
pub fn release(pin_path: &Path, locate: impl FnOnce(u64) -> Option<PathBuf>) -> Result<()> {
    let name = pin_path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    if let Some(pin) = LinkPin::parse(name).filter(|p| p.kind == PinKind::AttachedProgram) {
        if let Some(cgroup) = locate(pin.cgroup_id).filter(|c| c.exists()) {
            bpf_calls::detach(&cgroup, pin_path, &pin.program)?;
        }
    }
    std::fs::remove_file(pin_path).map_err(|e| LoadError::io(pin_path, e))
}

/// Finds the cgroups of every attached-program pin in one walk under
/// `cgroup_root` (None: the cgroup v2 mount).
pub fn attached_program_cgroups(paths: &Paths, cgroup_root: Option<&Path>) -> Result<HashMap<u64, PathBuf>> {
    let ids: BTreeSet<u64> = link_pins(paths)
        .into_iter()
        .filter(|(p, _)| p.kind == PinKind::AttachedProgram)
        .map(|(p, _)| p.cgroup_id)
        .collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let root = match cgroup_root {
        Some(root) => root.to_path_buf(),
        None => crate::cgroup::cgroup2_mount()?,
    };
    Ok(find_by_ids(&root, &ids))
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

/// Removes every attachment (detaching the programs) and then every map pin
/// and the pin directory itself. Attachments go first so nothing runs
/// against a half-removed set of maps.
pub fn uninstall(paths: &Paths) -> Result<UninstallReport> {
    let mut report = UninstallReport::default();
    if !paths.pin_dir.exists() {
        return Ok(report);
    }
    let cgroups = attached_program_cgroups(paths, None)?;
    ContainerWatch::remove(paths)?;
    for dir in [paths.links_dir(), paths.maps_dir(), paths.previous_maps_dir()] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if dir == paths.links_dir() {
                release(&entry.path(), |id| cgroups.get(&id).cloned())?;
                report.links += 1;
            } else {
                std::fs::remove_file(entry.path()).map_err(|e| LoadError::io(entry.path(), e))?;
                report.maps += 1;
            }
        }
        std::fs::remove_dir(&dir).map_err(|e| LoadError::io(&dir, e))?;
    }
    std::fs::remove_dir(&paths.pin_dir).map_err(|e| LoadError::io(&paths.pin_dir, e))?;
    let _ = std::fs::remove_file(paths.status_file());
    // A revocation an interrupted run left for the next: nothing is
    // learned any more.
    let _ = std::fs::remove_file(paths.pending_revocation_file());
    Ok(report)
}

/// The DNS parser's name-hash seed: random, once per ramd process (every
/// program instance of a run shares it; a restart draws a new one).
fn name_seed() -> u64 {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SEED.get_or_init(|| {
        let mut bytes = [0u8; 8];
        // /dev/urandom does not block and never runs dry; should it be
        // unreadable, the std hasher's per-process random keys stand in.
        match std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes)) {
            Ok(()) => u64::from_ne_bytes(bytes),
            Err(_) => {
                use std::hash::{BuildHasher, Hasher};
                let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
                hasher.write_u64(crate::sys::monotonic_ns());
                hasher.finish()
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pin(scope: u32, cgroup_id: u64, program: &str) -> (LinkPin, PathBuf) {
        let pin = LinkPin { scope, cgroup_id, program: program.into(), program_id: 7, kind: PinKind::Link };
        let path = PathBuf::from(pin.file_name());
        (pin, path)
    }

    #[test]
    fn a_link_is_taken_over_by_its_own_scope_only() {
        // Container targets 0 and 1 share the root (cgroup 1); 5 is a renamed
        // target's old number.
        let pins = vec![pin(0, 1, "ram_connect4"), pin(1, 1, "ram_connect4"), pin(5, 9, "ram_connect4")];
        let mut adoptable = AdoptableLinks::new(pins);
        assert_eq!(adoptable.take(2, 1, "ram_connect4"), None, "scope 2 must not switch scope 0's or 1's link");
        assert_eq!(adoptable.take(1, 1, "ram_connect6"), None, "another hook");
        assert_eq!(adoptable.take(1, 1, "ram_connect4"), Some(pin(1, 1, "ram_connect4").1));
        assert_eq!(adoptable.take(1, 1, "ram_connect4"), None, "taken once");
        assert_eq!(adoptable.take(0, 1, "ram_connect4"), Some(pin(0, 1, "ram_connect4").1));
        assert_eq!(adoptable.take(2, 9, "ram_connect4"), None, "a gone target's link is pruned, not taken");
        let attached = LinkPin { kind: PinKind::AttachedProgram, ..pin(3, 4, "ram_egress").0 };
        let mut adoptable = AdoptableLinks::new(vec![(attached.clone(), attached.file_name().into())]);
        assert_eq!(adoptable.take(3, 4, "ram_egress"), None, "BPF_PROG_ATTACH attachments are not links");
    }
}
