//! Targets: finding each scope's cgroups, attaching, taking over earlier
//! links, the runtime's forwarders, and the CAP_NET_RAW warning.

use super::*;

impl Daemon {
    /// Pinned links no current instance owns: an earlier run's, or those of
    /// programs being replaced. Attaching takes them over.
    pub(super) fn adoptable_links(&self) -> loader::AdoptableLinks {
        let own: BTreeSet<PathBuf> = self.scopes.iter().flat_map(|s| s.instance.own_pins().cloned()).collect();
        let pins = loader::link_pins(&self.paths).into_iter().filter(|(_, path)| !own.contains(path)).collect();
        loader::AdoptableLinks::new(pins)
    }

    /// The cgroups a selector points at now, or why there are none.
    pub(super) fn resolve(&self, selector: &Selector) -> (BTreeSet<PathBuf>, Option<String>) {
        let waiting = |found: &BTreeSet<PathBuf>, root_note: Option<String>, what: String| {
            // A process in the root cgroup is refused: say so even when
            // another of the target's cgroups is enforced.
            root_note.or_else(|| found.is_empty().then(|| format!("waiting for {what}")))
        };
        match selector {
            Selector::Cgroup(path) if path.is_dir() => ([path.clone()].into(), None),
            // The root: a container's sockets meet the programs wherever
            // its cgroup is; they judge only the containers this target
            // holds (see `ram_common::maps::Member`).
            Selector::Containers(_) => ([self.cgroup_root.clone()].into(), None),
            Selector::Cgroup(path) => (BTreeSet::new(), Some(format!("waiting for cgroup {}", path.display()))),
            Selector::Process(name) => {
                let (found, root_note) = self.resolve_process(name);
                let note = waiting(&found, root_note, format!("a process named {name}"));
                (found, note)
            }
            Selector::Unit(unit) => {
                let found = resolve_unit(unit);
                let note = waiting(&found, None, unit_cgroup(unit));
                (found, note)
            }
            Selector::ProcessOrUnit { process, unit } => {
                let (mut found, root_note) = self.resolve_process(process);
                found.extend(resolve_unit(unit));
                let note = waiting(&found, root_note, format!("a process named {process} or {}", unit_cgroup(unit)));
                (found, note)
            }
        }
    }

    /// The cgroups of the processes named `name`, and a note when one of
    /// them runs in the root cgroup (which is never enforced).
    fn resolve_process(&self, name: &str) -> (BTreeSet<PathBuf>, Option<String>) {
        let found = cgroup::processes_named(&self.cgroup_root, name);
        let (root, own): (Vec<_>, Vec<_>) = found.into_iter().partition(|p| p.cgroup == self.cgroup_root);
        let note = root.first().map(|p| {
            format!(
                "process {name} (pid {}) runs in the root cgroup; refusing to enforce the whole host (run it in its own cgroup, as systemd does)",
                p.pid
            )
        });
        (own.into_iter().map(|p| p.cgroup).collect(), note)
    }

    /// Attaches every scope to the cgroups its selector finds now.
    pub fn reconcile_targets(&mut self) {
        let mut adoptable = self.adoptable_links();
        for index in 0..self.scopes.len() {
            let settings = &self.scopes[index].settings;
            let (cgroups, note) = self.resolve(&settings.selector);
            let name = settings.name.clone();
            for path in cgroups {
                let instance = &mut self.scopes[index].instance;
                let Ok(id) = cgroup::cgroup_id(&path) else {
                    continue;
                };
                if instance.is_attached(id) {
                    continue;
                }
                match instance.attach(&self.paths, &path, &mut adoptable) {
                    Ok(id) => {
                        self.failures.remove(&(self.scopes[index].settings.scope, id));
                        info!(target_name = %name, cgroup = %path.display(), cgroup_id = id, "enforcing")
                    }
                    Err(e) => {
                        let text = e.to_string();
                        if self.failures.insert((self.scopes[index].settings.scope, id), text.clone()).as_ref()
                            != Some(&text)
                        {
                            error!(target_name = %name, cgroup = %path.display(), "cannot attach: {text}");
                        }
                    }
                }
            }
            let scope = self.scopes[index].settings.scope;
            match note {
                Some(note) if self.notes.get(&scope) != Some(&note) => {
                    if self.scopes[index].instance.attached().next().is_none() {
                        warn!(target_name = %name, "pending: {note}");
                    } else {
                        warn!(target_name = %name, "{note}");
                    }
                    self.notes.insert(scope, note);
                }
                Some(_) => {}
                None => {
                    self.notes.remove(&scope);
                }
            }
        }
    }

    /// At start: every cgroup an earlier run's programs of a target still
    /// enforce, which this run's selector no longer finds (a process
    /// target's runtime restarted in another cgroup, leaving processes
    /// behind), stays enforced by the target's new programs, which take
    /// the links over. Otherwise the prune would let it go (red team 13).
    pub(super) fn keep_previous_cgroups(&mut self) {
        let adoptable = self.adoptable_links();
        let wanted: BTreeSet<(u32, u64)> = adoptable
            .pins()
            .filter(|pin| self.scope(pin.scope).is_some_and(|s| s.settings.selector.containers().is_none()))
            .map(|pin| (pin.scope, pin.cgroup_id))
            .collect();
        if wanted.is_empty() {
            return;
        }
        let ids: BTreeSet<u64> = wanted.iter().map(|(_, id)| *id).collect();
        let found = cgroup::find_by_ids(&self.cgroup_root, &ids);
        let mut adoptable = adoptable;
        for (number, id) in wanted {
            // A cgroup that is gone took its attachments with it.
            let Some(path) = found.get(&id) else { continue };
            let Some(index) = self.scopes.iter().position(|s| s.settings.scope == number) else { continue };
            let scope = &mut self.scopes[index];
            if scope.instance.is_attached(id) {
                continue;
            }
            match scope.instance.attach(&self.paths, path, &mut adoptable) {
                Ok(_) => info!(
                    target_name = %scope.settings.name,
                    cgroup = %path.display(),
                    "enforcing still (the previous run enforced it; the target's selector finds it no more)"
                ),
                Err(e) => error!(target_name = %scope.settings.name, cgroup = %path.display(), "cannot attach: {e}"),
            }
        }
    }

    /// Lets each docker-proxy in an enforced cgroup reach its container,
    /// and each aardvark-dns answer its clients (see `forwarders`), and
    /// nothing once it is gone.
    pub fn sync_forwarders(&mut self) {
        // A container target's programs sit on the root; docker-proxy runs
        // in the runtime's cgroup, never in a container.
        let scopes: Vec<(u32, bool, Vec<PathBuf>)> = self
            .scopes
            .iter()
            .filter(|s| s.settings.selector.containers().is_none())
            .map(|s| {
                let pass_relays = s.settings.flags() & ram_common::maps::SCOPE_PASS_RELAYS != 0;
                (s.instance.scope, pass_relays, s.instance.attached().map(|(_, path)| path.to_path_buf()).collect())
            })
            .collect();
        let found = self.forwarder_scan.scan(&scopes);
        if self.forwards.as_ref() == Some(&found) {
            return;
        }
        let before = self.forwards.clone().unwrap_or_default();
        if let Err(e) = Maps::open(&self.paths).and_then(|mut maps| maps.sync_forwards(&found)) {
            warn!("cannot update the runtime's forwarders: {e}");
            return;
        }
        for (key, dest) in found.iter().filter(|(k, _)| !before.contains_key(k)) {
            let (program, reach) = if dest.family == ram_common::maps::FORWARD_RELAY {
                ("rootless network helper", "")
            } else if dest.family == 0 {
                (crate::forwarders::AARDVARK_DNS, "answer ")
            } else {
                (crate::forwarders::DOCKER_PROXY, "connect to its container at ")
            };
            info!(
                target_name = %self.scope_name(key.scope),
                pid = key.tgid,
                "{program} [{}] may {reach}{}",
                key.tgid,
                crate::forwarders::describe(dest)
            );
        }
        self.forwards = Some(found);
    }

    /// Removes link pins left by an earlier ramd once they are replaced by
    /// ours, or belong to scopes this policy no longer has. Pins of a target
    /// that is still pending stay: enforcement continues until we take over.
    pub(super) fn prune_previous_links(&mut self) {
        let own: BTreeSet<PathBuf> = self.scopes.iter().flat_map(|s| s.instance.own_pins().cloned()).collect();
        // The cgroups of earlier runs' attached programs (kernels before 5.7),
        // found in one walk, and only when there are such pins to release.
        let mut previous_cgroups: Option<HashMap<u64, PathBuf>> = None;
        for (pin, path) in loader::link_pins(&self.paths) {
            if own.contains(&path) {
                continue;
            }
            let replace = match self.scope(pin.scope).map(|s| &s.instance) {
                None => true,
                Some(instance) => instance.is_attached(pin.cgroup_id) || instance.attached().next().is_some(),
            };
            if replace {
                let attached = self
                    .scopes
                    .iter()
                    .flat_map(|s| s.instance.attached())
                    .find(|(id, _)| *id == pin.cgroup_id)
                    .map(|(_, path)| path.to_path_buf());
                let (paths, root) = (&self.paths, &self.cgroup_root);
                let locate = |id: u64| {
                    attached.or_else(|| {
                        let found = previous_cgroups.get_or_insert_with(|| {
                            loader::attached_program_cgroups(paths, Some(root)).unwrap_or_default()
                        });
                        found.get(&id).cloned()
                    })
                };
                match loader::release(&path, locate) {
                    Ok(()) => debug!(pin = %path.display(), "removed a link of the previous run"),
                    Err(e) => {
                        warn!(pin = %path.display(), "cannot remove a link of the previous run: {e}")
                    }
                }
            }
        }
    }

    /// Warns (once per process) about enforced processes holding
    /// CAP_NET_RAW: an AF_PACKET socket sends frames no cgroup hook sees, so
    /// such a process can reach any address. ram cannot close that path;
    /// dropping the capability does.
    pub(super) fn warn_raw_capable(&mut self) {
        let mut seen = BTreeSet::new();
        for scope in &self.scopes {
            // A container target enforces its containers' cgroups, not the
            // root its programs are attached to.
            let cgroups: Vec<PathBuf> = match scope.settings.selector.containers() {
                Some(_) => self.held_cgroups(scope.settings.scope),
                None => scope.instance.attached().map(|(_, path)| path.to_path_buf()).collect(),
            };
            for cgroup in &cgroups {
                for pid in cgroup::processes_below(cgroup) {
                    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { continue };
                    if !cgroup::has_net_raw(&status) {
                        continue;
                    }
                    seen.insert(pid);
                    if self.raw_capable.contains(&pid) {
                        continue;
                    }
                    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                    warn!(
                        target_name = %scope.settings.name,
                        pid,
                        comm = %comm.trim(),
                        cgroup = %cgroup.display(),
                        "enforced process holds CAP_NET_RAW: its AF_PACKET sockets bypass every cgroup hook; drop the capability if it does not need it"
                    );
                }
            }
        }
        // Forget processes that exited or lost the capability.
        self.raw_capable = seen;
    }
}

/// A unit's cgroup once systemd has made it: when the unit starts its
/// first process, ExecStartPre included.
fn resolve_unit(unit: &Unit) -> BTreeSet<PathBuf> {
    if unit.cgroup.is_dir() {
        [unit.cgroup.clone()].into()
    } else {
        BTreeSet::new()
    }
}

fn unit_cgroup(unit: &Unit) -> String {
    format!("unit {}'s cgroup {}", unit.name, unit.cgroup.display())
}
