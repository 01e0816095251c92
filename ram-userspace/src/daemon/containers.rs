//! Container targets: the watch that holds each new container's cgroup the
//! moment it is made, and which target (if any) holds each container once
//! ramd has read what the runtime recorded about it.

use ram_common::maps::{CgroupPattern, Member, MEMBER_PENDING};

use super::*;
use crate::{
    btf,
    containers::{self as runtime_records, ContainerCgroup},
    loader::ContainerWatch,
    policy::{ContainerInfo, Runtime},
    status::ContainerStatus,
};

/// How long a container may stay pending, its record unreadable, before
/// ramd says so (it stays held meanwhile).
const UNREADABLE_WARNING_NS: u64 = 2_000_000_000;

#[derive(Default)]
pub(crate) struct ContainerState {
    watch: Option<ContainerWatch>,
    /// cgroup id → the scope holding it, what the runtime recorded, and
    /// the cgroup's path.
    held: BTreeMap<u64, (u32, ContainerInfo, PathBuf)>,
    /// cgroup ids no container target wants.
    released: BTreeSet<u64>,
    /// cgroup id → when its record was first found unreadable.
    unreadable: BTreeMap<u64, u64>,
}

impl Daemon {
    fn container_runtimes(&self) -> Vec<Runtime> {
        let mut runtimes: Vec<Runtime> =
            self.scopes.iter().filter_map(|s| s.settings.selector.containers().map(|c| c.runtime)).collect();
        runtimes.dedup();
        runtimes
    }

    /// Loads the watch (and tells it this kernel's struct layout and the
    /// runtimes' container paths) while a container target exists;
    /// removes it otherwise.
    pub(super) fn setup_container_watch(&mut self) -> Result<()> {
        let runtimes = self.container_runtimes();
        if runtimes.is_empty() {
            if self.containers.watch.take().is_some() || self.paths.watch_dir().exists() {
                info!("no container targets: the container watch is removed");
            }
            return ContainerWatch::remove(&self.paths);
        }
        let mut maps = Maps::open(&self.paths)?;
        maps.write_cgroup_layout(btf::kernel_cgroup_layout()?)?;
        let patterns: Vec<CgroupPattern> = runtimes
            .iter()
            .flat_map(|&runtime| runtime.cgroup_patterns().into_iter().map(move |p| p.kernel_pattern(runtime)))
            .collect();
        maps.write_container_patterns(&patterns)?;
        if self.containers.watch.is_none() {
            self.containers.watch = Some(ContainerWatch::install(&self.paths, &self.features, &self.limits)?);
            info!("container watch on: a new container is held from its first instruction until ramd knows it");
        }
        Ok(())
    }

    /// Before a reload switches: a held container whose target changes
    /// under `compiled` is held closed (pending) until
    /// [`Daemon::sync_containers`] decides it after the switch; one that
    /// keeps its target keeps it throughout (its allowed connects never
    /// fail for a reload). Released containers are decided again after.
    pub(super) fn hold_containers_changing_target(&mut self, compiled: &CompiledPolicy) -> Result<()> {
        let target_under = |info: &ContainerInfo| {
            compiled
                .scopes
                .iter()
                .find(|s| s.selector.containers().is_some_and(|c| c.runtime == Runtime::Docker && c.matches(info)))
                .map(|s| s.scope)
        };
        let changing: Vec<u64> = self
            .containers
            .held
            .iter()
            .filter(|(_, (scope, info, _))| target_under(info) != Some(*scope))
            .map(|(id, _)| *id)
            .collect();
        if !changing.is_empty() {
            let mut maps = Maps::open(&self.paths)?;
            for id in changing {
                maps.set_member(id, Member { scope: MEMBER_PENDING, runtime: Runtime::Docker.kernel_id() })?;
                self.containers.held.remove(&id);
            }
        }
        self.containers.released.clear();
        Ok(())
    }

    /// Decides each container not decided yet: the first container target
    /// of its runtime whose image and label filters match holds it; none
    /// does, and it runs unjudged. One whose record cannot be read yet
    /// stays held closed.
    pub fn sync_containers(&mut self) {
        let runtimes = self.container_runtimes();
        if runtimes.is_empty() {
            return;
        }
        let present = runtime_records::container_cgroups(&self.cgroup_root, &runtimes);
        // Forget what is gone (the kernel drops its entry on rmdir).
        let ids: BTreeSet<u64> = present.iter().map(|c| c.cgroup_id).collect();
        self.containers.held.retain(|id, _| ids.contains(id));
        self.containers.released.retain(|id| ids.contains(id));
        self.containers.unreadable.retain(|id, _| ids.contains(id));
        // Every 50 ms: the pins are opened only when a container is new
        // (a cgroup the kernel may have entered as pending), not decided yet,
        // or made undecided by a reload.
        if ids.iter().all(|id| self.containers.held.contains_key(id) || self.containers.released.contains(id)) {
            return;
        }
        let mut maps = match Maps::open(&self.paths) {
            Ok(maps) => maps,
            Err(e) => {
                warn!("cannot open the pinned maps to decide containers: {e}");
                return;
            }
        };
        let entries: BTreeMap<u64, Member> = maps.members().into_iter().collect();
        let mut roots = None;
        for container in &present {
            let id = container.cgroup_id;
            let decided = match entries.get(&id) {
                Some(member) if member.scope != MEMBER_PENDING => {
                    self.containers.held.get(&id).is_some_and(|(scope, ..)| *scope == member.scope)
                }
                Some(_) => false,
                None => self.containers.released.contains(&id),
            };
            if decided {
                continue;
            }
            let roots = roots.get_or_insert_with(runtime_records::docker_data_roots);
            match runtime_records::docker_container(&container.container_id, roots) {
                Ok(info) => self.decide(&mut maps, container, info),
                Err(e) => {
                    // 0: warned already.
                    let since = *self.containers.unreadable.entry(id).or_insert_with(monotonic_ns);
                    if since != 0 && monotonic_ns().saturating_sub(since) > UNREADABLE_WARNING_NS {
                        warn!(cgroup = %container.path.display(), "container held closed: cannot read what its runtime recorded: {e}");
                        self.containers.unreadable.insert(id, 0);
                    }
                }
            }
        }
    }

    fn decide(&mut self, maps: &mut Maps, container: &ContainerCgroup, info: ContainerInfo) {
        let id = container.cgroup_id;
        self.containers.unreadable.remove(&id);
        let holder = self.scopes.iter().find(|s| {
            s.settings.selector.containers().is_some_and(|c| c.runtime == container.runtime && c.matches(&info))
        });
        match holder {
            Some(scope) => {
                let member = Member { scope: scope.settings.scope, runtime: container.runtime.kernel_id() };
                if let Err(e) = maps.set_member(id, member) {
                    warn!(container = %info.name, "cannot record the container's target (it stays held closed): {e}");
                    return;
                }
                info!(
                    target_name = %scope.settings.name,
                    container = %info.name,
                    container_id = %short(&info.id),
                    image = %info.image,
                    cgroup_id = id,
                    "enforcing container"
                );
                self.containers.held.insert(id, (scope.settings.scope, info, container.path.clone()));
            }
            None => {
                if let Err(e) = maps.remove_member(id) {
                    warn!(container = %info.name, "cannot release the container (it stays held closed): {e}");
                    return;
                }
                debug!(container = %info.name, image = %info.image, "container matches no container target");
                self.containers.released.insert(id);
            }
        }
    }

    /// "name (id, image)" of the container a cgroup belongs to, for log lines.
    pub(super) fn container_label(&self, cgroup_id: u64) -> Option<String> {
        let (_, info, _) = self.containers.held.get(&cgroup_id)?;
        Some(format!("{} ({}, {})", info.name, short(&info.id), info.image))
    }

    /// The cgroups of the containers a scope holds.
    pub(super) fn held_cgroups(&self, scope: u32) -> Vec<PathBuf> {
        self.containers.held.values().filter(|(s, ..)| *s == scope).map(|(.., path)| path.clone()).collect()
    }

    /// The containers a scope holds, for `ramctl status`.
    pub(super) fn held_by(&self, scope: u32) -> Vec<ContainerStatus> {
        self.containers
            .held
            .iter()
            .filter(|(_, (s, ..))| *s == scope)
            .map(|(id, (_, info, _))| ContainerStatus {
                id: info.id.clone(),
                name: info.name.clone(),
                image: info.image.clone(),
                cgroup_id: *id,
            })
            .collect()
    }
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}
