//! ramd's work: load, attach, fill the maps, then follow events and targets.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    path::PathBuf,
    time::Duration,
};

use ram_common::{
    event::DnsEvent,
    maps::{ForwardDest, ForwardKey},
};
use tokio::signal::unix::{signal, SignalKind};
use tracing::{debug, error, info, warn};

use crate::{
    cgroup,
    error::Result,
    events::{self, BlockedRecord, Event, HostCache},
    features::KernelFeatures,
    forwarders::ForwarderScan,
    journal::Journal,
    layout,
    loader::{self, ScopeInstance},
    maps::Maps,
    paths::{LinkPin, Paths},
    policy::{CompiledPolicy, HostFacts, Limits, Policy, PolicyError, Selector},
    status::{CgroupStatus, DaemonStatus, ReloadStatus, TargetStatus},
    sys::monotonic_ns,
};

/// How often targets are looked for (a runtime started after ramd is
/// enforced within this time).
pub const TARGET_SCAN: Duration = Duration::from_millis(250);
/// How often the enforced cgroups are looked through for the runtime's
/// forwarders (docker-proxy is let through this long after it starts).
pub const FORWARDER_SCAN: Duration = Duration::from_millis(50);
/// How often expired learned addresses are removed.
pub const GC_INTERVAL: Duration = Duration::from_secs(5);
/// How long an expired address stays in the map (new connects are already
/// denied); the egress backstop still lets packets of flows that started
/// before expiry through during this time.
pub const EXPIRED_GRACE_NS: u64 = 60 * 1_000_000_000;
const HOST_CACHE_SIZE: usize = 4096;
/// "1": measure verifier cost where the kernel does not report it (before
/// 5.16); "always": measure it everywhere (the tests compare the two).
pub const MEASURE_VERIFIER_ENV: &str = "RAM_MEASURE_VERIFIER";

/// How often the policy file is checked for edits.
pub const POLICY_WATCH: Duration = Duration::from_millis(500);

/// What identifies a version of the policy file: an edit in place changes
/// its mtime or size, an atomic replace (rename) its inode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileStamp {
    inode: u64,
    len: u64,
    modified: Option<std::time::SystemTime>,
}

impl FileStamp {
    fn of(source: &PolicySource) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        let PolicySource::File(path) = source else { return None };
        let meta = std::fs::metadata(path).ok()?;
        Some(FileStamp { inode: meta.ino(), len: meta.len(), modified: meta.modified().ok() })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicySource {
    File(PathBuf),
    Embedded,
}

pub fn load_policy(source: &PolicySource, facts: &HostFacts) -> Result<Policy, PolicyError> {
    match source {
        PolicySource::File(path) => Policy::from_file(path, facts),
        PolicySource::Embedded => Policy::embedded_default(facts),
    }
}

pub struct Daemon {
    source: PolicySource,
    /// The policy file as last read, to notice edits.
    stamp: Option<FileStamp>,
    reload: ReloadStatus,
    paths: Paths,
    features: KernelFeatures,
    /// Map sizes in effect (from the policy ramd started with).
    limits: Limits,
    policy: Policy,
    compiled: CompiledPolicy,
    instances: Vec<ScopeInstance>,
    cgroup_root: PathBuf,
    hosts: HostCache,
    /// Why each pending scope is pending (logged once per change).
    notes: HashMap<u32, String>,
    /// Attach failures already logged, by (scope, cgroup id), so a cgroup
    /// that keeps failing is reported once rather than every scan.
    failures: HashMap<(u32, u64), String>,
    last_status: Option<DaemonStatus>,
    journal: Journal,
    /// A journal write failure is logged once.
    journal_failed: bool,
    /// Capacity counters as last reported, by (scope, counter).
    capacity_seen: HashMap<(u32, &'static str), u64>,
    /// Enforced processes already reported for holding CAP_NET_RAW.
    raw_capable: BTreeSet<u32>,
    forwarder_scan: ForwarderScan,
    /// What `RAM_FORWARDS` holds; None until first written (it may hold
    /// an earlier ramd's rows).
    forwards: Option<BTreeMap<ForwardKey, ForwardDest>>,
}

impl Daemon {
    /// Everything up to enforcement: a bad policy fails here, before any
    /// program is loaded or attached.
    pub fn start(source: &PolicySource, paths: Paths) -> Result<Self> {
        let facts = HostFacts::probe();
        let policy = load_policy(source, &facts)?;
        for warning in &policy.warnings {
            warn!("{warning}");
        }
        let mut compiled = policy.compile()?;
        let cgroup_root = cgroup::cgroup2_mount()?;
        let features = KernelFeatures::probe().with_overrides(|var| std::env::var(var).ok())?;
        info!("{}", features.summary());
        if let Some(missing) = features.missing() {
            return Err(crate::Error::KernelTooOld { release: features.release.clone(), missing });
        }
        compiled.trusted_netns = trusted_netns(&policy, &cgroup_root)?;
        loader::prepare(&paths)?;
        // Pinned maps that differ from what this build and policy want are
        // set aside before the load creates them afresh.
        let limits = policy.limits;
        let layouts = layout::wanted(
            loader::object(features.events),
            &loader::pinned_map_names(features.events),
            &loader::map_sizes(&limits),
        )?;
        for mismatch in layout::set_aside_mismatched(&paths, &layouts)? {
            info!(
                map = %mismatch.map,
                pinned = ?mismatch.pinned,
                wanted = ?mismatch.wanted,
                "map layout or size changed: replacing the map, carrying entries over where the layout allows"
            );
        }
        let mut instances = Vec::with_capacity(compiled.scopes.len());
        // Measuring verifies every program twice; only the first scope's
        // figures are needed (every scope loads the same code).
        let measure = match std::env::var(MEASURE_VERIFIER_ENV).as_deref() {
            Ok("always") => true,
            Ok("1") => !features.verified_insns,
            _ => false,
        };
        for scope in &compiled.scopes {
            instances.push(ScopeInstance::load(
                &paths,
                scope.scope,
                &scope.name,
                &features,
                &limits,
                measure && scope.scope == 0,
            )?);
        }
        // Rules go in before any attach, so the first verdict already has them,
        // with port sets in the half the pinned rules (of an earlier run) do
        // not use.
        let in_use = Maps::open(&paths)?.port_half_in_use()?;
        compiled.place_port_sets(1 - in_use.unwrap_or(1));
        Maps::open(&paths)?.apply_rules(&compiled)?;
        carry_maps_over(&paths, &layouts)?;
        let paths_run_dir = paths.run_dir.clone();
        crate::sys::create_private_dir(&paths_run_dir)?;
        let mut daemon = Daemon {
            stamp: FileStamp::of(source),
            source: source.clone(),
            reload: ReloadStatus::default(),
            paths,
            features,
            limits,
            policy,
            compiled,
            instances,
            cgroup_root,
            hosts: HostCache::new(HOST_CACHE_SIZE),
            notes: HashMap::new(),
            failures: HashMap::new(),
            last_status: None,
            journal: Journal::new(&paths_run_dir),
            journal_failed: false,
            capacity_seen: HashMap::new(),
            raw_capable: BTreeSet::new(),
            forwarder_scan: ForwarderScan::default(),
            forwards: None,
        };
        let revoked = daemon.revoke_unallowed()?;
        if revoked > 0 {
            info!(revoked, "removed learned addresses the policy no longer allows");
        }
        info!(policy = %daemon.policy.source, mode = %daemon.policy.mode, targets = daemon.instances.len(), "policy loaded");
        daemon.reconcile_targets();
        daemon.prune_previous_links();
        // What the old programs learned while the new ones were loading.
        carry_maps_over(&daemon.paths, &layouts)?;
        layout::remove_previous(&daemon.paths, &layouts);
        daemon.publish_status();
        Ok(daemon)
    }

    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// Did the policy file change since it was last read?
    pub fn policy_changed(&self) -> bool {
        FileStamp::of(&self.source) != self.stamp
    }

    /// Pinned links no current instance owns: an earlier run's, or those of
    /// instances being replaced. Attaching takes them over.
    fn adoptable_links(&self) -> Vec<(LinkPin, PathBuf)> {
        let own: BTreeSet<PathBuf> = self.instances.iter().flat_map(|i| i.own_pins().cloned()).collect();
        loader::link_pins(&self.paths).into_iter().filter(|(_, path)| !own.contains(path)).collect()
    }

    /// Reads the policy again and applies it as one step. A policy that does
    /// not parse, validate or load changes nothing; the outcome is logged
    /// and published for `ramctl reload`.
    pub fn reload(&mut self) {
        self.stamp = FileStamp::of(&self.source);
        let outcome = self.try_reload();
        self.reload.generation += 1;
        match outcome {
            Ok(summary) => {
                info!("policy reloaded: {summary}");
                self.reload.ok = true;
                self.reload.message = summary;
            }
            Err(e) => {
                error!("policy refused, nothing changed: {e}");
                self.reload.ok = false;
                self.reload.message = e.to_string();
            }
        }
        self.publish_status();
    }

    fn try_reload(&mut self) -> Result<String> {
        let policy = load_policy(&self.source, &HostFacts::probe())?;
        for warning in &policy.warnings {
            warn!("{warning}");
        }
        let mut compiled = policy.compile()?;
        compiled.trusted_netns = if policy.dns.netns == self.policy.dns.netns {
            self.compiled.trusted_netns
        } else {
            trusted_netns(&policy, &self.cgroup_root)?
        };
        compiled.place_port_sets(1 - self.compiled.port_half());
        if policy.limits != self.limits {
            warn!(
                "{}: [limits] changed; map sizes change when ramd restarts, until then {:?} stay",
                policy.source, self.limits
            );
        }
        // A scope keeps its programs while its target's selector is the same
        // (the scope number is baked into them); otherwise new programs are
        // loaded now, before anything changes, so a load failure changes nothing.
        let mut replacements = Vec::new();
        for settings in &compiled.scopes {
            let index = settings.scope as usize;
            let same = self.compiled.scopes.get(index).is_some_and(|old| old.selector == settings.selector);
            if !same {
                let instance = ScopeInstance::load(
                    &self.paths,
                    settings.scope,
                    &settings.name,
                    &self.features,
                    &self.limits,
                    false,
                )?;
                replacements.push((index, instance));
            }
        }
        // Entries learned while the last refresh ran may still hold port-set
        // ids of the half about to be rewritten: bring them to the current
        // half first.
        self.revoke_unallowed()?;
        // New rules in (every wanted row first, then stale rows out), then
        // what the old rules taught and the new ones do not allow is revoked.
        Maps::open(&self.paths)?.apply_rules(&compiled)?;
        let removed_scopes = self.instances.len().saturating_sub(compiled.scopes.len());
        let mut retired: Vec<ScopeInstance> = self.instances.drain(compiled.scopes.len()..).collect();
        for (index, instance) in replacements {
            if index < self.instances.len() {
                retired.push(std::mem::replace(&mut self.instances[index], instance));
            } else {
                self.instances.push(instance);
            }
        }
        self.compiled = compiled;
        self.policy = policy;
        let revoked = self.revoke_unallowed()?;
        // New programs attach before the ones they replace let go.
        self.notes.clear();
        self.reconcile_targets();
        let detached: usize = retired.iter_mut().map(|i| i.detach_all()).sum();
        Ok(format!(
            "{} targets, {} rules; {revoked} learned addresses revoked; {} target programs replaced or removed ({removed_scopes} removed, {detached} links detached)",
            self.compiled.scopes.len(),
            self.compiled.names.len() + self.compiled.cidrs.len(),
            retired.len(),
        ))
    }

    /// The cgroups a selector points at now, or why there are none.
    fn resolve(&self, selector: &Selector) -> (BTreeSet<PathBuf>, Option<String>) {
        match selector {
            Selector::Cgroup(path) if path.is_dir() => ([path.clone()].into(), None),
            Selector::Cgroup(path) => (BTreeSet::new(), Some(format!("waiting for cgroup {}", path.display()))),
            Selector::Process(name) => {
                let found = cgroup::processes_named(&self.cgroup_root, name);
                if found.is_empty() {
                    return (BTreeSet::new(), Some(format!("waiting for a process named {name}")));
                }
                let (root, own): (Vec<_>, Vec<_>) = found.into_iter().partition(|p| p.cgroup == self.cgroup_root);
                let note = (!root.is_empty()).then(|| {
                    format!(
                        "process {name} (pid {}) runs in the root cgroup; refusing to enforce the whole host (run it in its own cgroup, as systemd does)",
                        root[0].pid
                    )
                });
                (own.into_iter().map(|p| p.cgroup).collect(), note)
            }
        }
    }

    /// Attaches every scope to the cgroups its selector finds now.
    pub fn reconcile_targets(&mut self) {
        let mut adoptable = self.adoptable_links();
        for index in 0..self.instances.len() {
            let settings = &self.compiled.scopes[index];
            let (cgroups, note) = self.resolve(&settings.selector);
            let name = settings.name.clone();
            for path in cgroups {
                let instance = &mut self.instances[index];
                let Ok(id) = cgroup::cgroup_id(&path) else {
                    continue;
                };
                if instance.is_attached(id) {
                    continue;
                }
                match instance.attach(&self.paths, &path, &mut adoptable) {
                    Ok(id) => {
                        self.failures.remove(&(index as u32, id));
                        info!(target_name = %name, cgroup = %path.display(), cgroup_id = id, "enforcing")
                    }
                    Err(e) => {
                        let text = e.to_string();
                        if self.failures.insert((index as u32, id), text.clone()).as_ref() != Some(&text) {
                            error!(target_name = %name, cgroup = %path.display(), "cannot attach: {text}");
                        }
                    }
                }
            }
            let scope = index as u32;
            match note {
                Some(note) if self.notes.get(&scope) != Some(&note) => {
                    if self.instances[index].attached().next().is_none() {
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

    /// Lets each docker-proxy in an enforced cgroup reach its container
    /// (see `forwarders`), and nothing once it is gone.
    pub fn sync_forwarders(&mut self) {
        let scopes: Vec<(u32, Vec<PathBuf>)> = self
            .instances
            .iter()
            .map(|i| (i.scope, i.attached().map(|(_, path)| path.to_path_buf()).collect()))
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
            info!(
                target_name = %self.scope_name(key.scope),
                pid = key.tgid,
                "{} [{}] may connect to its container at {}",
                crate::forwarders::DOCKER_PROXY,
                key.tgid,
                crate::forwarders::describe(dest)
            );
        }
        self.forwards = Some(found);
    }

    /// Removes link pins left by an earlier ramd once they are replaced by
    /// ours, or belong to scopes this policy no longer has. Pins of a target
    /// that is still pending stay: enforcement continues until we take over.
    fn prune_previous_links(&mut self) {
        let own: BTreeSet<PathBuf> = self.instances.iter().flat_map(|i| i.own_pins().cloned()).collect();
        // The cgroups of earlier runs' attached programs (kernels before 5.7),
        // found in one walk, and only when there are such pins to release.
        let mut previous_cgroups: Option<HashMap<u64, PathBuf>> = None;
        for (pin, path) in loader::link_pins(&self.paths) {
            if own.contains(&path) {
                continue;
            }
            let replace = match self.instances.get(pin.scope as usize) {
                None => true,
                Some(instance) => instance.is_attached(pin.cgroup_id) || instance.attached().next().is_some(),
            };
            if replace {
                let attached = self
                    .instances
                    .iter()
                    .flat_map(|i| i.attached())
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

    /// Removes learned addresses whose question the policy no longer allows
    /// for their scope (and those of scopes that no longer exist).
    /// Removes learned addresses whose question the policy no longer allows
    /// for their scope, and gives the others the port set the policy now
    /// gives their name (set ids are renumbered by every compile).
    fn revoke_unallowed(&self) -> Result<usize> {
        let compiled = &self.compiled;
        Maps::open(&self.paths)?.refresh_learned(|scope, host| host.and_then(|h| compiled.name_port_set(scope, h)))
    }

    /// Says (once per interval, with how many) when the kernel could not
    /// send events because the ring buffer was full, or could not learn an
    /// address because a learned map was full. The kernel counts every case
    /// and keeps judging: a full map fails closed.
    fn report_capacity_problems(&mut self) {
        for settings in &self.compiled.scopes {
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

    /// Warns (once per process) about enforced processes holding
    /// CAP_NET_RAW: an AF_PACKET socket sends frames no cgroup hook sees, so
    /// such a process can reach any address. ram cannot close that path;
    /// dropping the capability does.
    fn warn_raw_capable(&mut self) {
        let mut seen = BTreeSet::new();
        for (index, instance) in self.instances.iter().enumerate() {
            for (_, cgroup) in instance.attached() {
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
                        target_name = %self.compiled.scopes[index].name,
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

    fn collect_expired(&self) -> Result<usize> {
        let now = monotonic_ns();
        Maps::open(&self.paths)?
            .prune_learned(|_, _, learned| learned.expires_ns.saturating_add(EXPIRED_GRACE_NS) > now)
    }

    pub fn status(&self) -> DaemonStatus {
        let targets = self
            .instances
            .iter()
            .zip(&self.compiled.scopes)
            .map(|(instance, settings)| {
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
        }
    }

    fn publish_status(&mut self) {
        let status = self.status();
        if self.last_status.as_ref() == Some(&status) {
            return;
        }
        if let Err(e) = status.write(&self.paths.status_file()) {
            warn!("cannot write status: {e}");
        }
        self.last_status = Some(status);
    }

    fn scope_name(&self, scope: u32) -> String {
        self.compiled.scopes.get(scope as usize).map(|s| s.name.clone()).unwrap_or_else(|| format!("scope {scope}"))
    }

    pub fn handle_event(&mut self, bytes: &[u8]) {
        match events::decode(bytes) {
            Some(Event::Blocked(event)) => {
                let record = BlockedRecord::new(&event, self.scope_name(event.header.scope), &self.hosts);
                record.log();
                if let Err(e) = self.journal.append(&record) {
                    if !self.journal_failed {
                        warn!("cannot keep blocked attempts for `ramctl blocked`: {e}");
                        self.journal_failed = true;
                    }
                }
            }
            Some(Event::Dns(event)) => self.handle_dns(&event),
            None => debug!(len = bytes.len(), "unknown event"),
        }
    }

    /// Names addresses for later log lines, and cross-checks what the kernel
    /// learned against the full parser: an address the kernel learned that
    /// hickory-proto (following the CNAME chain by name) and the policy would
    /// not have taught is removed at once, with an alert.
    fn handle_dns(&mut self, event: &DnsEvent) {
        let scope = event.header.scope;
        let len = (event.message_len as usize).min(event.message.len());
        let cut_by_window = len == event.message.len();
        let summary = match events::summarize_dns(&event.message[..len]) {
            Ok(summary) => summary,
            // The window cut it: the full parser checks the records that
            // are whole in it, which are all the kernel could learn from.
            Err(_) if cut_by_window => match events::summarize_dns_prefix(&event.message[..len]) {
                Ok(summary) => summary,
                Err(e) => {
                    if event.learned > 0 {
                        self.undo_learning(scope, &event.message[..len], &e);
                    }
                    return;
                }
            },
            Err(e) => {
                debug!("dns answer the full parser refuses: {e}");
                // What the kernel learned from it is undone.
                if event.learned > 0 {
                    self.undo_learning(scope, &event.message[..len], &e);
                }
                return;
            }
        };
        for addr in summary.addrs.iter().chain(&summary.off_chain) {
            self.hosts.remember(*addr, &summary.name);
        }
        debug!(
            target_name = %self.scope_name(scope),
            host = %summary.name,
            addrs = ?summary.addrs,
            off_chain = ?summary.off_chain,
            ttl = ?summary.ttl,
            allowed = event.allowed != 0,
            matched = event.matched != 0,
            learned = event.learned,
            "dns answer"
        );
        if event.learned == 0 {
            return;
        }
        let allowed = self.compiled.allows_name(scope, &summary.name);
        let Ok(host_id) = ram_common::name::host_id(&summary.name) else { return };
        for addr in events::not_to_learn(&summary, allowed) {
            match Maps::open(&self.paths).and_then(|mut maps| maps.forget_learned(scope, addr, host_id)) {
                Ok(true) => error!(
                    target_name = %self.scope_name(scope),
                    host = %summary.name,
                    %addr,
                    "ALERT: the kernel learned an address the full parser would not have; removed"
                ),
                Ok(false) => {}
                Err(e) => error!(%addr, "ALERT: cannot remove an address learned against the rules: {e}"),
            }
        }
    }

    fn undo_learning(&self, scope: u32, message: &[u8], why: &str) {
        let Some((host_id, addrs)) = events::kernel_learning(message) else { return };
        for addr in addrs {
            if let Ok(true) = Maps::open(&self.paths).and_then(|mut maps| maps.forget_learned(scope, addr, host_id)) {
                error!(target_name = %self.scope_name(scope), %addr, "ALERT: the kernel learned from an answer the full parser refuses ({why}); removed");
            }
        }
    }
}

/// Counters whose growth ramd reports (once per interval, with the count),
/// and what to say.
const REPORTED_COUNTERS: [(&str, &str); 5] = [
    ("events_lost", "events lost (event buffer full); counters still counted every verdict"),
    ("learn_map_full", "addresses not learned (learned-address map full); connects to them are denied"),
    ("dns_unmatched", "DNS answers that answer no query this target sent (forged or late): not learned"),
    ("dns_off_chain", "DNS answers with records for names off the question's CNAME chain: those not learned"),
    (
        "dns_tcp_split",
        "DNS-over-TCP answers split across segments: not learned (connects to their addresses are denied)",
    ),
];

/// Copies entries from maps set aside by [`layout::set_aside_mismatched`]
/// and says what was carried over or dropped.
fn carry_maps_over(paths: &Paths, layouts: &BTreeMap<String, layout::Layout>) -> Result<()> {
    for report in layout::carry_over(paths, layouts)? {
        if report.dropped > 0 {
            warn!(map = %report.map, copied = report.copied, dropped = report.dropped, "entries carried over; some could not be (learned addresses are learned again from the next answers)");
        } else if report.copied > 0 {
            info!(map = %report.map, copied = report.copied, "entries carried over to the replaced map");
        }
    }
    Ok(())
}

/// Runs ramd until SIGINT or SIGTERM. Enforcement stays in place afterwards.
pub async fn run(source: PolicySource, paths: Paths) -> Result<()> {
    let mut daemon = Daemon::start(&source, paths)?;
    let mut events = crate::event_source::start(daemon.paths(), daemon.features.events)?;
    let signal_error = |e| crate::Error::Sys { what: "installing signal handlers".into(), cause: e };
    let mut sigterm = signal(SignalKind::terminate()).map_err(signal_error)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(signal_error)?;
    let mut sighup = signal(SignalKind::hangup()).map_err(signal_error)?;
    let mut watch = tokio::time::interval(POLICY_WATCH);
    let mut scan = tokio::time::interval(TARGET_SCAN);
    let mut forwarder_scan = tokio::time::interval(FORWARDER_SCAN);
    let mut gc = tokio::time::interval(GC_INTERVAL);
    info!("ramd running; enforcement stays in place when it stops (`ramd --uninstall` removes it)");
    if let Err(e) = crate::sys::notify_ready() {
        warn!("cannot tell systemd that ramd is ready: {e}");
    }
    loop {
        tokio::select! {
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
            _ = sighup.recv() => daemon.reload(),
            _ = watch.tick() => {
                if daemon.policy_changed() {
                    info!("policy file changed");
                    daemon.reload();
                }
            }
            Some(record) = events.recv() => daemon.handle_event(&record),
            _ = forwarder_scan.tick() => daemon.sync_forwarders(),
            _ = scan.tick() => {
                daemon.reconcile_targets();
                daemon.prune_previous_links();
                daemon.publish_status();
            }
            _ = gc.tick() => {
                match daemon.collect_expired() {
                    Ok(0) => {}
                    Ok(n) => debug!(removed = n, "expired learned addresses removed"),
                    Err(e) => warn!("cannot remove expired addresses: {e}"),
                }
                daemon.report_capacity_problems();
                daemon.warn_raw_capable();
            }
        }
    }
    info!("stopping; programs stay attached and keep enforcing");
    Ok(())
}

/// The cookie of the network namespace whose DNS the policy trusts: its
/// `[dns] netns`, or ramd's own. The initial namespace (a host's ramd) the
/// programs name themselves; any other is asked of the kernel.
fn trusted_netns(policy: &Policy, cgroup_root: &std::path::Path) -> Result<u64> {
    let path = policy.dns.netns.clone().unwrap_or_else(|| crate::netns::OWN.into());
    if crate::netns::is_initial(&path)? {
        debug!(netns = %path.display(), "trusted network namespace: the initial one");
        return Ok(ram_common::maps::TRUSTED_NETNS_INITIAL);
    }
    debug!(netns = %path.display(), "learning the trusted network namespace's cookie");
    let cookie = crate::netns::cookie(&path, cgroup_root)?;
    debug!(netns = %path.display(), cookie, "trusted network namespace");
    Ok(cookie)
}
