//! Container targets: the watch that holds each new container's cgroup the
//! moment it is made, and which target (if any) holds each container once
//! ramd has read what the runtime recorded about it.

use ram_common::maps::{CgroupPattern, Member, MEMBER_PENDING};

use super::*;
use crate::{
    btf,
    containers::{self as runtime_records, ContainerCgroup, NetworkMode},
    loader::ContainerWatch,
    policy::{ContainerInfo, Runtime},
    status::ContainerStatus,
};

/// How long a container may stay pending, its record unreadable, or its
/// network namespace unknown, before ramd says so (it stays held closed,
/// or learns nothing, meanwhile).
const UNREADABLE_WARNING_NS: u64 = 2_000_000_000;

/// Where a `--network container:X` container's processes are.
enum Joined {
    /// Not settled in one namespace yet.
    Unknown,
    /// The host's (X is of the host's network).
    Host,
    /// This namespace (device, inode).
    Namespace((u64, u64)),
}

/// A container a container target holds.
pub(crate) struct Held {
    scope: u32,
    info: ContainerInfo,
    /// Its cgroup.
    path: PathBuf,
    /// The cookie of the network namespace its runtime made for it; 0 while
    /// not known (its DNS teaches nothing until it is).
    netns: u64,
    /// The file that namespace was probed from, and its (device, inode).
    netns_file: Option<PathBuf>,
    netns_id: Option<(u64, u64)>,
    /// Final: from the runtime's record (or none can be trusted). Until
    /// then ramd keeps reading the record.
    settled: bool,
    /// `--network container:X`: the cgroup id of the held container whose
    /// namespace it is in, if any; it stays decided only while that one
    /// stays held in that namespace.
    joined: Option<Option<u64>>,
}

#[derive(Default)]
pub(crate) struct ContainerState {
    watch: Option<ContainerWatch>,
    /// cgroup id → the container target holding it.
    held: BTreeMap<u64, Held>,
    /// cgroup id → a container no container target wants, and whether it
    /// is in another container's namespace (decided again while young: its
    /// processes may not have been where they stay).
    released: BTreeMap<u64, (ContainerInfo, Option<u64>)>,

    /// cgroup id → when its record was first found unreadable, or its
    /// network namespace unknown.
    unreadable: BTreeMap<u64, u64>,
    /// cgroup id → when ramd first saw it.
    seen: BTreeMap<u64, u64>,
    /// dockerd's data roots and when they were looked up (a walk of /proc:
    /// not on every 50 ms tick while a container is undecided).
    data_roots: Option<(u64, Vec<PathBuf>)>,
}

/// How long a lookup of dockerd's data roots is used for.
const DATA_ROOTS_TTL_NS: u64 = 5_000_000_000;

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
            return Ok(ContainerWatch::remove(&self.paths)?);
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
            .filter(|(_, held)| target_under(&held.info) != Some(held.scope))
            .map(|(id, _)| *id)
            .collect();
        // A container in another's namespace trusts it only while that one
        // is held: after the switch it is decided again, and learns nothing
        // meanwhile (the other may be let go).
        let joiners: Vec<u64> = self
            .containers
            .held
            .iter()
            .filter(|(id, held)| held.joined.is_some() && !changing.contains(id))
            .map(|(id, _)| *id)
            .collect();
        if !changing.is_empty() || !joiners.is_empty() {
            let mut maps = Maps::open(&self.paths)?;
            for id in changing {
                // Pending, it is judged by every container target: it
                // teaches none until decided again (its namespace's owner
                // may be let go by this very reload).
                maps.set_member(id, Member { scope: MEMBER_PENDING, runtime: Runtime::Docker.kernel_id(), netns: 0 })?;
                self.containers.held.remove(&id);
            }
            for id in joiners {
                self.withdraw_trust(&mut maps, id)?;
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
        self.containers.released.retain(|id, _| ids.contains(id));
        self.containers.unreadable.retain(|id, _| ids.contains(id));
        self.containers.seen.retain(|id, _| ids.contains(id));
        let now = monotonic_ns();
        for id in &ids {
            self.containers.seen.entry(*id).or_insert(now);
        }
        // Every 50 ms: the pins are opened only when a container is new
        // (a cgroup the kernel may have entered as pending), not decided yet,
        // made undecided by a reload, or held without its namespace known.
        if ids.iter().all(|id| self.is_settled(*id) || self.is_released_for_good(*id)) {
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
        let stale =
            self.containers.data_roots.as_ref().is_none_or(|(at, _)| now.saturating_sub(*at) > DATA_ROOTS_TTL_NS);
        let mut roots = (!stale).then(|| self.containers.data_roots.as_ref().map(|(_, r)| r.clone())).flatten();
        let mut joiners = Vec::new();
        let mut unreadable = BTreeSet::new();
        for container in &present {
            let id = container.cgroup_id;
            let decided = match entries.get(&id) {
                Some(member) if member.scope != MEMBER_PENDING => {
                    self.containers
                        .held
                        .get(&id)
                        .is_some_and(|held| held.scope == member.scope && held.netns == member.netns)
                        && self.is_settled(id)
                }
                Some(_) => false,
                None => self.is_released_for_good(id),
            };
            if decided {
                continue;
            }
            let roots = roots.get_or_insert_with(|| {
                let found = runtime_records::docker_data_roots();
                self.containers.data_roots = Some((now, found.clone()));
                found
            });
            match runtime_records::docker_container(&container.container_id, roots) {
                Ok(recorded) if matches!(recorded.network, NetworkMode::Container(_)) => {
                    joiners.push((container, recorded))
                }
                Ok(recorded) => self.decide(&mut maps, container, recorded, &Undecided::default()),
                Err(e) => {
                    unreadable.insert(id);
                    if self.overdue(id) {
                        warn!(cgroup = %container.path.display(), "container held closed: cannot read what its runtime recorded: {e}");
                    }
                }
            }
        }
        // Containers in another's namespace last, once the others are
        // decided. Those that may still turn out to own a namespace: the
        // ones whose record cannot be read yet, and held ones whose
        // namespace is not known; a joiner waits (held closed) only for
        // those that could own its namespace.
        let undecided: Vec<PathBuf> = present
            .iter()
            .filter(|c| unreadable.contains(&c.cgroup_id))
            .map(|c| c.path.clone())
            .chain(
                self.containers
                    .held
                    .values()
                    .filter(|held| held.joined.is_none() && held.netns_id.is_none())
                    .map(|held| held.path.clone()),
            )
            .collect();
        // Those whose record cannot be read: a joiner that may name one
        // (by id) waits rather than be let go.
        let unreadable_ids: Vec<String> =
            present.iter().filter(|c| unreadable.contains(&c.cgroup_id)).map(|c| c.container_id.clone()).collect();
        let waits_for = Undecided { paths: &undecided, ids: &unreadable_ids };
        // A joiner may name another joiner (`container:J1`, J1 itself in
        // H's namespace): the named one is decided first, so that the
        // other finds it held. Docker cannot make a cycle (the named
        // container must run first); should one appear, all are decided.
        let mut remaining = joiners;
        while !remaining.is_empty() {
            let infos: Vec<(u64, ContainerInfo)> =
                remaining.iter().map(|(c, r)| (c.cgroup_id, r.info.clone())).collect();
            let (ready, waiting): (Vec<_>, Vec<_>) = remaining.into_iter().partition(|(c, r)| {
                let NetworkMode::Container(reference) = &r.network else { return true };
                !infos.iter().any(|(other, info)| *other != c.cgroup_id && names_container(info, reference))
            });
            let progress = !ready.is_empty();
            for (container, recorded) in ready {
                self.decide(&mut maps, container, recorded, &waits_for);
            }
            if !progress {
                for (container, recorded) in waiting {
                    self.decide(&mut maps, container, recorded, &waits_for);
                }
                break;
            }
            remaining = waiting;
        }
    }

    /// Let go, and not to be looked at again: a container in another's
    /// namespace is decided again for a while (its processes may not have
    /// been where they stay; its owner may not have been decided).
    fn is_released_for_good(&self, id: u64) -> bool {
        const JOINER_RECHECK_NS: u64 = 10_000_000_000;
        self.containers.released.get(&id).is_some_and(|(_, released_at)| {
            released_at.is_none_or(|at| monotonic_ns().saturating_sub(at) > JOINER_RECHECK_NS)
        })
    }

    /// Has container `id` been undecided (or without its namespace) for
    /// longer than ramd stays quiet about? True once: the caller warns.
    fn overdue(&mut self, id: u64) -> bool {
        // 0: warned already.
        let since = *self.containers.unreadable.entry(id).or_insert_with(monotonic_ns);
        if since != 0 && monotonic_ns().saturating_sub(since) > UNREADABLE_WARNING_NS {
            self.containers.unreadable.insert(id, 0);
            return true;
        }
        false
    }

    /// The cookie of the network namespace the runtime made for a
    /// container, and whether it is final: the one its record names is;
    /// the runtime-made one its processes are in, taken until the runtime
    /// has recorded one, is not (the record, once written, wins). 0 while
    /// neither is known, or the namespace cannot be probed.
    fn own_netns(
        &mut self,
        id: u64,
        cgroup: &std::path::Path,
        recorded: &runtime_records::Recorded,
    ) -> (u64, Option<PathBuf>, bool) {
        // A record's namespace may be a previous run's, gone: then the
        // processes tell.
        if let Some(path) = &recorded.netns {
            if let Ok(cookie) = self.netns_cookie(id, path) {
                return (cookie, Some(path.clone()), true);
            }
        }
        let file = runtime_records::runtime_netns_of(cgroup);
        let found = match &file {
            Some(path) => self.netns_cookie(id, path),
            None => Err(crate::error::Error::io(
                cgroup,
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "none recorded, and its processes are in no one namespace its runtime made",
                ),
            )),
        };
        match found {
            Ok(cookie) => (cookie, file, false),
            Err(e) => {
                if self.overdue(id) {
                    warn!(
                        container = %recorded.info.name,
                        "container enforced, but its DNS teaches nothing: its network namespace is not known: {e}"
                    );
                }
                (0, None, false)
            }
        }
    }

    /// A namespace file's cookie; the one already held for this container
    /// when the file is the same (a probe forks a process).
    fn netns_cookie(&self, id: u64, path: &std::path::Path) -> Result<u64> {
        if let Some(held) = self.containers.held.get(&id) {
            if held.netns != 0 && held.netns_file.as_deref() == Some(path) {
                return Ok(held.netns);
            }
        }
        Ok(crate::netns::cookie(path, &self.cgroup_root)?)
    }

    /// Is a held container decided for good: its namespace final, and, if
    /// it is in another container's namespace, that one still held there?
    fn is_settled(&self, id: u64) -> bool {
        let Some(held) = self.containers.held.get(&id) else { return false };
        if !held.settled {
            return false;
        }
        match held.joined {
            Some(Some(owner)) => self
                .containers
                .held
                .get(&owner)
                .is_some_and(|owner| owner.settled && owner.netns == held.netns && owner.netns != 0),
            _ => true,
        }
    }

    /// The namespace the processes of a `--network container:X` container
    /// are in, by what they are in, not by X's name (a rename, or a
    /// name that is another container's id prefix, would mislead).
    fn joined_namespace(&self, id: u64, cgroup: &std::path::Path) -> Joined {
        let namespaces = runtime_records::netns_of(cgroup);
        let mut namespaces = namespaces.into_iter();
        match (namespaces.next(), namespaces.next()) {
            (Some(only), None) => Joined::Namespace(only),
            // Nested namespaces of its own (dind, buildkitd's steps) besides
            // the one it joined: the one a held container owns, if just one
            // is (the others' answers never match its entry anyway).
            (Some(first), Some(second)) => {
                let owned: Vec<(u64, u64)> = [first, second]
                    .into_iter()
                    .chain(namespaces)
                    .filter(|ns| self.owner_of(id, *ns).is_some())
                    .collect();
                match owned.as_slice() {
                    [only] => Joined::Namespace(*only),
                    _ => Joined::Unknown,
                }
            }
            // No process yet (its cgroup is made first): not known. runc's
            // first process is in the host's namespace for a moment; still
            // there after that, they are in the host's (X's is).
            (None, _) => {
                if !runtime_records::has_processes(cgroup) {
                    Joined::Unknown
                } else if self.age(id) > UNREADABLE_WARNING_NS {
                    Joined::Host
                } else {
                    Joined::Unknown
                }
            }
        }
    }

    /// How long ago ramd first saw container `id`'s cgroup.
    fn age(&self, id: u64) -> u64 {
        self.containers.seen.get(&id).map_or(0, |since| monotonic_ns().saturating_sub(*since))
    }

    /// The held container (not itself in another's namespace) whose
    /// namespace is `ns`.
    fn owner_of(&self, id: u64, ns: (u64, u64)) -> Option<(u64, &Held)> {
        self.containers
            .held
            .iter()
            .find(|(other, held)| **other != id && held.joined.is_none() && held.netns_id == Some(ns))
            .map(|(other, held)| (*other, held))
    }

    /// The target of a held container (a joiner too: its scope is what
    /// judges it) that a `container:REFERENCE` could name (see
    /// [`names_container`]). Only ever used to judge a joiner that would
    /// otherwise run unjudged, so naming too many is safe.
    fn held_by_reference(&self, id: u64, reference: &str) -> Option<u32> {
        self.containers
            .held
            .iter()
            .filter(|(other, _)| **other != id)
            .find(|(_, held)| names_container(&held.info, reference))
            .map(|(_, held)| held.scope)
    }

    /// The host's namespace for a container of the host's network.
    fn host_netns(&self, id: u64, info: &ContainerInfo) -> (u64, Option<PathBuf>, bool) {
        let own = std::path::Path::new(crate::netns::OWN);
        match self.netns_cookie(id, own) {
            Ok(cookie) => (cookie, Some(own.to_path_buf()), true),
            Err(e) => {
                warn!(container = %info.name, "cannot tell the host's network namespace: {e}");
                (0, None, false)
            }
        }
    }

    fn decide(
        &mut self,
        maps: &mut Maps,
        container: &ContainerCgroup,
        recorded: runtime_records::Recorded,
        undecided: &Undecided,
    ) {
        let id = container.cgroup_id;
        let own_target = self
            .scopes
            .iter()
            .find(|s| {
                s.settings
                    .selector
                    .containers()
                    .is_some_and(|c| c.runtime == container.runtime && c.matches(&recorded.info))
            })
            .map(|s| s.settings.scope);
        // Whose namespace it uses decides what its DNS is trusted in, and,
        // for a namespace a held container uses, who judges it.
        let mut joined = None;
        let (scope, netns, netns_file, settled) = match &recorded.network {
            NetworkMode::Container(reference) => {
                // The held container its record names: while there is one,
                // the joiner is judged with it wherever its processes are
                // now (one can leave the namespace and keep a socket there,
                // unjudged). What its DNS is trusted in is decided by where
                // its processes are, not by the name (a rename can move it).
                let named_owner = self.held_by_reference(id, reference);
                // It may name one whose record cannot be read yet: wait.
                if named_owner.is_none() && undecided.ids.iter().any(|other| names_id(other, reference)) {
                    return;
                }
                match self.joined_namespace(id, &container.path) {
                    Joined::Unknown => return,
                    Joined::Host => match (own_target, named_owner) {
                        (None, None) => return self.release(maps, id, &recorded.info, true),
                        (Some(scope), _) | (None, Some(scope)) => {
                            let (netns, file, settled) = self.host_netns(id, &recorded.info);
                            (scope, netns, file, settled)
                        }
                    },
                    Joined::Namespace(ns) => {
                        match self.owner_of(id, ns) {
                            // A held container's namespace: whoever joins it
                            // is judged with it (an unjudged process there
                            // could answer as the resolver), and trusts what
                            // it trusts.
                            Some((owner_id, owner)) => {
                                joined = Some(Some(owner_id));
                                (
                                    own_target.unwrap_or(owner.scope),
                                    owner.netns,
                                    owner.netns_file.clone(),
                                    owner.settled && owner.netns != 0,
                                )
                            }
                            // A container not decided yet may be the one
                            // whose namespace this is (its processes are
                            // there, or it has none yet): wait, held closed.
                            None if undecided
                                .paths
                                .iter()
                                .any(|path| *path != container.path && could_own(path, ns)) =>
                            {
                                return
                            }
                            // A namespace no held container owns (an
                            // unjudged container's): nothing learned there
                            // can be trusted.
                            None => match own_target.or(named_owner) {
                                None => return self.release(maps, id, &recorded.info, true),
                                Some(scope) => {
                                    joined = Some(None);
                                    // Said once: settled, it is not decided again until a reload.
                                    warn!(
                                        container = %recorded.info.name,
                                        peer = %reference,
                                        "container enforced, but its DNS teaches nothing: it is in the network namespace of a container no container target holds"
                                    );
                                    (scope, 0, None, true)
                                }
                            },
                        }
                    }
                }
            }
            NetworkMode::Host => match own_target {
                None => return self.release(maps, id, &recorded.info, false),
                Some(scope) => {
                    let (netns, file, settled) = self.host_netns(id, &recorded.info);
                    (scope, netns, file, settled)
                }
            },
            NetworkMode::Own => match own_target {
                None => return self.release(maps, id, &recorded.info, false),
                Some(scope) => {
                    let (netns, file, settled) = self.own_netns(id, &container.path, &recorded);
                    (scope, netns, file, settled)
                }
            },
        };
        let netns_id = netns_file.as_deref().and_then(|f| {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(f).ok().map(|m| (m.dev(), m.ino()))
        });
        if netns != 0 {
            self.containers.unreadable.remove(&id);
        }
        let member = Member { scope, runtime: container.runtime.kernel_id(), netns };
        let info = recorded.info;
        if let Err(e) = maps.set_member(id, member) {
            warn!(container = %info.name, "cannot record the container's target (it stays held closed): {e}");
            return;
        }
        // Gone meanwhile (the kernel removed its entry at rmdir): the write
        // above made a new one, for no cgroup; take it out again.
        if !container.path.exists() {
            let _ = maps.remove_member(id);
            return;
        }
        let known = self.containers.held.get(&id).is_some_and(|held| held.scope == scope);
        if !known {
            let target_name = self.scopes.iter().find(|s| s.settings.scope == scope).map(|s| s.settings.name.clone());
            info!(
                target_name = %target_name.unwrap_or_default(),
                container = %info.name,
                container_id = %short(&info.id),
                image = %info.image,
                cgroup_id = id,
                "enforcing container"
            );
        } else if netns != 0 {
            debug!(container = %info.name, netns, "container's network namespace known: its DNS teaches");
        }
        // Held now: a later release starts its own recheck window.
        self.containers.released.remove(&id);
        self.containers.held.insert(
            id,
            Held { scope, info, path: container.path.clone(), netns, netns_file, netns_id, settled, joined },
        );
    }

    /// Takes the namespace out of a held container's entry (it stays held
    /// by its target) until it is decided again.
    fn withdraw_trust(&mut self, maps: &mut Maps, id: u64) -> Result<()> {
        let Some(held) = self.containers.held.get_mut(&id) else { return Ok(()) };
        maps.set_member(id, Member { scope: held.scope, runtime: Runtime::Docker.kernel_id(), netns: 0 })?;
        held.netns = 0;
        held.settled = false;
        Ok(())
    }

    /// No container target wants it: it runs unjudged.
    fn release(&mut self, maps: &mut Maps, id: u64, info: &ContainerInfo, joiner: bool) {
        self.containers.unreadable.remove(&id);
        // Whoever trusted its namespace stops before it runs unjudged there.
        let joiners: Vec<u64> =
            self.containers.held.iter().filter(|(_, held)| held.joined == Some(Some(id))).map(|(j, _)| *j).collect();
        for joiner in joiners {
            if let Err(e) = self.withdraw_trust(maps, joiner) {
                warn!(cgroup_id = joiner, "cannot withdraw a namespace's trust (the container stays held): {e}");
                return;
            }
        }
        if let Err(e) = maps.remove_member(id) {
            warn!(container = %info.name, "cannot release the container (it stays held closed): {e}");
            return;
        }
        debug!(container = %info.name, image = %info.image, "container matches no container target");
        // A joiner let go again within its recheck window keeps the time of
        // its first release, so that the window ends.
        let first_release = self.containers.released.get(&id).and_then(|(_, at)| *at);
        let released_at = joiner.then(|| first_release.unwrap_or_else(monotonic_ns));
        self.containers.released.insert(id, (info.clone(), released_at));
    }

    /// "name (id, image)" of the container a cgroup belongs to, for log lines.
    pub(super) fn container_label(&self, cgroup_id: u64) -> Option<String> {
        let info = &self.containers.held.get(&cgroup_id)?.info;
        Some(format!("{} ({}, {})", info.name, short(&info.id), info.image))
    }

    /// The cgroups of the containers a scope holds.
    pub(super) fn held_cgroups(&self, scope: u32) -> Vec<PathBuf> {
        self.containers.held.values().filter(|held| held.scope == scope).map(|held| held.path.clone()).collect()
    }

    /// The containers a scope holds, for `ramctl status`.
    pub(super) fn held_by(&self, scope: u32) -> Vec<ContainerStatus> {
        self.containers
            .held
            .iter()
            .filter(|(_, held)| held.scope == scope)
            .map(|(id, held)| ContainerStatus {
                id: held.info.id.clone(),
                name: held.info.name.clone(),
                image: held.info.image.clone(),
                cgroup_id: *id,
            })
            .collect()
    }
}

/// Containers not decided yet, which a joiner may have to wait for: the
/// cgroups that could own a namespace, and the ids of those whose record
/// cannot be read.
#[derive(Default)]
struct Undecided<'a> {
    paths: &'a [PathBuf],
    ids: &'a [String],
}

/// Could `container:REFERENCE` name the container with this id?
fn names_id(id: &str, reference: &str) -> bool {
    let reference = reference.trim_start_matches('/');
    !reference.is_empty() && id.starts_with(reference)
}

/// Could `container:REFERENCE` name this container? Docker takes a full
/// id, a name, or a unique id prefix of any length, and keeps the
/// reference as the user wrote it.
fn names_container(info: &ContainerInfo, reference: &str) -> bool {
    names_id(&info.id, reference) || info.name.trim_start_matches('/') == reference.trim_start_matches('/')
}

/// Could the container in `cgroup` own network namespace `ns`: are its
/// processes there, or has it none yet?
fn could_own(cgroup: &std::path::Path, ns: (u64, u64)) -> bool {
    let namespaces = runtime_records::netns_of(cgroup);
    // Processes in a namespace of their own mean it has processes: the
    // second walk of its tree is needed only when none is.
    namespaces.contains(&ns) || (namespaces.is_empty() && !runtime_records::has_processes(cgroup))
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}
