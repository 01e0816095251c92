//! ramd's work: load, attach, fill the maps, then follow events and targets.

mod containers;
mod dns_check;
mod kernel_log;
mod metrics;
mod policy_watch;
mod reload;
mod report;
mod route_watch;
mod targets;

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
    kernel_log::KernelLog,
    loader::{self, ScopeInstance},
    maps::{layout, Maps},
    paths::Paths,
    policy::{CompiledPolicy, HostFacts, Limits, Policy, PolicyError, ScopeSettings, Selector, Unit},
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
        let PolicySource::File(path) = source else { return None };
        Self::of_path(path)
    }

    fn of_path(path: &std::path::Path) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path).ok()?;
        Some(FileStamp { inode: meta.ino(), len: meta.len(), modified: meta.modified().ok() })
    }

    /// The files default resolvers come from: resolv.conf and
    /// systemd-resolved's upstream list.
    fn of_resolvers() -> [Option<Self>; 2] {
        [
            Self::of_path(&crate::host::resolv_conf_path()),
            Self::of_path(std::path::Path::new(crate::host::RESOLVED_UPSTREAM)),
        ]
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
    /// The resolver files as last read (they matter when the policy names
    /// no resolvers: DHCP, a VPN or NetworkManager rewrite them).
    resolver_stamps: [Option<FileStamp>; 2],
    reload: ReloadStatus,
    paths: Paths,
    features: KernelFeatures,
    /// Map sizes in effect (from the policy ramd started with).
    limits: Limits,
    policy: Policy,
    /// The rules as compiled (its `scopes` are moved into `scopes` below
    /// once applied).
    compiled: CompiledPolicy,
    /// One per `[[target]]`, in scope order: its settings and its loaded
    /// programs together.
    scopes: Vec<Scope>,
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
    /// The programs' kernel log level (every scope's programs have it).
    kernel_log: KernelLog,
    /// DNS answers and what each taught, for `ramctl explain`.
    answers: Journal,
    /// Blocked-attempt log lines, limited per process and destination.
    log_limiter: crate::log_limit::LogLimiter,
    /// Capacity counters as last reported, by (scope, counter).
    capacity_seen: HashMap<(u32, &'static str), u64>,
    /// Enforced processes already reported for holding CAP_NET_RAW.
    raw_capable: BTreeSet<u32>,
    forwarder_scan: ForwarderScan,
    /// What `RAM_FORWARDS` holds; None until first written (it may hold
    /// an earlier ramd's rows).
    forwards: Option<BTreeMap<ForwardKey, ForwardDest>>,
    containers: containers::ContainerState,
    /// Allowed addresses and the routes they take (see `route_watch`).
    route_watch: route_watch::RouteWatch,
    /// The metrics listener, if any, and reload counts for it.
    metrics: metrics::MetricsState,
    /// Held while ramd runs (see [`lock_run_dir`]).
    _run_lock: std::fs::File,
}

/// Where ramd takes its lock: in the run directory, which an uninstall
/// (removing the pin directory under a running ramd) leaves alone.
const LOCK_FILE: &str = "ramd.lock";

/// Takes the run directory (and so the pins it goes with) for this ramd
/// alone: flock on a file there, released when ramd exits however it
/// exits; waits while another ramd holds it.
fn lock_run_dir(paths: &Paths) -> Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    crate::sys::create_private_dir(&paths.run_dir)?;
    let path = paths.run_dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| crate::Error::io(&path, e))?;
    let lock = |how: libc::c_int| {
        // SAFETY: flock on an fd this function owns.
        let rc = unsafe { libc::flock(file.as_raw_fd(), how) };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    match lock(libc::LOCK_EX | libc::LOCK_NB) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => {
            warn!(
                lock = %path.display(),
                "another ramd runs on this run directory and its pins; waiting for it to stop (its programs enforce meanwhile)"
            );
            lock(libc::LOCK_EX).map_err(|e| crate::Error::io(&path, e))?;
            info!("the other ramd stopped; starting");
        }
        Err(e) => return Err(crate::Error::io(&path, e)),
    }
    Ok(file)
}

/// One `[[target]]` of the policy in effect: its settings and the copy of
/// the programs loaded for it.
pub(crate) struct Scope {
    settings: ScopeSettings,
    instance: ScopeInstance,
}

/// Where ramd keeps its targets' scope numbers for the next run (see
/// `policy::compile::scope_numbers`).
const SCOPE_NUMBERS_FILE: &str = "scope-numbers.json";

/// The scope numbers the previous run gave its targets, by identity; none when
/// there was no previous run (or its file cannot be read: targets are then
/// numbered in order, as on a first run).
fn previous_scope_numbers(paths: &Paths) -> BTreeMap<String, u32> {
    let path = paths.run_dir.join(SCOPE_NUMBERS_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            warn!(file = %path.display(), "cannot read the previous run's target numbers (numbering in order): {e}");
            BTreeMap::new()
        }),
        Err(_) => BTreeMap::new(),
    }
}

impl Daemon {
    /// The scope with number `scope`.
    pub(crate) fn scope(&self, scope: u32) -> Option<&Scope> {
        self.scopes.iter().find(|s| s.settings.scope == scope)
    }

    /// The scope numbers in effect, by target identity (name and selector).
    fn scope_numbers(&self) -> BTreeMap<String, u32> {
        self.scopes
            .iter()
            .map(|s| (crate::policy::scope_identity(&s.settings.name, &s.settings.selector), s.settings.scope))
            .collect()
    }

    /// Writes the scope numbers in effect for the next run (atomically: a
    /// torn file would renumber).
    fn save_scope_numbers(&self) {
        let path = self.paths.run_dir.join(SCOPE_NUMBERS_FILE);
        let partial = path.with_extension("json.partial");
        let written = serde_json::to_vec(&self.scope_numbers())
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&partial, bytes))
            .and_then(|()| std::fs::rename(&partial, &path));
        if let Err(e) = written {
            error!(file = %path.display(), "ALERT: cannot keep the targets' numbers for the next run (a restart with reordered targets could judge by another's rules until its programs attach): {e}");
        }
    }

    /// Everything up to enforcement: a bad policy fails here, before any
    /// program is loaded or attached.
    pub fn start(source: &PolicySource, paths: Paths, kernel_log: KernelLog) -> Result<Self> {
        // One ramd at a time: a second one (an upgrade that overlaps, a ramd
        // run by hand beside the unit) waits here, before it reads anything,
        // while the first one's programs enforce (red team 13: two pruned
        // each other's links; red team 14: one that read the policy before
        // waiting put back what the first had reloaded away).
        let run_lock = lock_run_dir(&paths)?;
        let facts = HostFacts::probe();
        let policy = load_policy(source, &facts)?;
        for warning in &policy.warnings {
            warn!("{warning}");
        }
        let mut compiled = policy.compile_numbered(&previous_scope_numbers(&paths))?;
        let cgroup_root = cgroup::cgroup2_mount()?;
        let features = KernelFeatures::probe().with_overrides(|var| std::env::var(var).ok())?;
        info!("{}", features.summary());
        if let Some(missing) = features.missing() {
            return Err(crate::host::HostError::KernelTooOld { release: features.release.clone(), missing }.into());
        }
        compiled.trusted_netns = trusted_netns(&policy, &cgroup_root)?;
        let kernel_log = kernel_log::kernel_log_for(&features, kernel_log);
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
                loader::InstanceOptions {
                    membership: scope.membership(),
                    measure_verifier: measure && scope.scope == 0,
                    kernel_log,
                },
            )?);
        }
        // Container targets' programs are attached first (before the rules
        // and the pending marks go in): a pending container is judged by
        // every container target's programs on the root, all of which must
        // allow, which holds only once the new targets' are there. A new
        // target's programs find no rules of its number yet, and refuse
        // (red team 13: a container moved to a target listed first was
        // judged by its old target's new rules alone until the new attach).
        let mut adoptable = loader::AdoptableLinks::previous(&paths);
        for (settings, instance) in compiled.scopes.iter().zip(instances.iter_mut()) {
            if settings.selector.containers().is_some() {
                instance.attach(&paths, &cgroup_root, &mut adoptable)?;
                info!(target_name = %settings.name, cgroup = %cgroup_root.display(), "enforcing");
            }
        }
        // Rules go in before any other attach, so the first verdict already
        // has them, with port sets in the half the pinned rules (of an
        // earlier run) do not use.
        let in_use = Maps::open(&paths)?.port_half_in_use()?;
        compiled.place_port_sets(1 - in_use.unwrap_or(1));
        // Before this run's rules go in: a container entry a previous run
        // left would otherwise be judged by whichever target now has its
        // old scope number, and trust the namespace that run trusted.
        Maps::open(&paths)?.set_all_members_pending()?;
        // Resolvers an earlier run trusted and this policy does not: what
        // they taught is revoked once this run's rules are in (as a reload
        // does). Trusted in another network namespace, the same addresses
        // are other servers: all go (the earlier run's namespace is in the
        // pinned scope settings).
        let pinned = Maps::open(&paths)?;
        let netns_changed = pinned.scope_configs()?.iter().any(|(_, config)| {
            config.trusted_netns != ram_common::maps::TRUSTED_NETNS_ANY
                && config.trusted_netns != compiled.trusted_netns
        });
        let after = if netns_changed { Vec::new() } else { compiled.resolvers.clone() };
        let lost = crate::policy::lost_resolvers(&pinned.resolvers()?, &after);
        drop(pinned);
        // And what an earlier run left undone (it stopped between writing
        // its rules and revoking); written down before the rules go in.
        crate::sys::create_private_dir(&paths.run_dir)?;
        let lost = crate::policy::merge_resolver_rows(&lost, &reload::pending_revocation(&paths));
        reload::note_pending_revocation(&paths, &lost)?;
        Maps::open(&paths)?.apply_rules(&compiled)?;
        let scopes = std::mem::take(&mut compiled.scopes)
            .into_iter()
            .zip(instances)
            .map(|(settings, instance)| Scope { settings, instance })
            .collect();
        carry_maps_over(&paths, &layouts, 0)?;
        let paths_run_dir = paths.run_dir.clone();
        crate::sys::create_private_dir(&paths_run_dir)?;
        let mut daemon = Daemon {
            stamp: FileStamp::of(source),
            resolver_stamps: FileStamp::of_resolvers(),
            source: source.clone(),
            reload: ReloadStatus::default(),
            paths,
            features,
            limits,
            policy,
            compiled,
            scopes,
            cgroup_root,
            hosts: HostCache::new(HOST_CACHE_SIZE),
            notes: HashMap::new(),
            failures: HashMap::new(),
            last_status: None,
            journal: Journal::new(&paths_run_dir),
            journal_failed: false,
            answers: Journal::answers(&paths_run_dir),
            kernel_log,
            log_limiter: Default::default(),
            capacity_seen: HashMap::new(),
            raw_capable: BTreeSet::new(),
            forwarder_scan: ForwarderScan::default(),
            forwards: None,
            containers: containers::ContainerState::default(),
            route_watch: Default::default(),
            metrics: metrics::MetricsState::default(),
            _run_lock: run_lock,
        };
        let revoked = daemon.revoke_unallowed()?;
        if revoked > 0 {
            info!(revoked, "removed learned addresses the policy no longer allows");
        }
        daemon.revoke_untrusted(&lost)?;
        info!(policy = %daemon.policy.source, mode = %daemon.policy.mode, targets = daemon.scopes.len(), "policy loaded");
        daemon.reconcile_targets();
        daemon.keep_previous_cgroups();
        if let Err(e) = daemon.setup_container_watch() {
            // Container targets still hold every container ramd has seen;
            // only the kernel's hold of a new one before ramd sees it is lost.
            error!(
                "container watch unavailable: a new container is judged only once ramd has seen it (within 50 ms): {e}"
            );
        }
        // Containers that ran before ramd (or while it was down) are decided
        // before ramd says it is ready.
        daemon.sync_containers();
        daemon.prune_previous_links();
        // Only now that the previous run's programs are replaced: a start
        // interrupted before this numbers its targets as they were.
        daemon.save_scope_numbers();
        // What the old programs learned while the new ones were loading;
        // not what was revoked above, which is still in their maps: the
        // scopes that lost a resolver are left behind, and what the policy
        // no longer allows is revoked again.
        let lost_scopes = lost.iter().fold(0u64, |mask, (_, scopes)| mask | scopes);
        carry_maps_over(&daemon.paths, &layouts, lost_scopes)?;
        daemon.revoke_unallowed()?;
        reload::clear_pending_revocation(&daemon.paths);
        layout::remove_previous(&daemon.paths, &layouts);
        // A start sets the level (`--kernel-log`), whatever a run before
        // was switched to.
        daemon.publish_kernel_log_setting();
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

    /// Did the host's resolver files change while the policy takes its
    /// resolvers from them?
    pub fn resolvers_changed(&self) -> bool {
        self.policy.dns.follows_host && FileStamp::of_resolvers() != self.resolver_stamps
    }

    fn collect_expired(&self) -> Result<usize> {
        let now = monotonic_ns();
        let expired = Maps::open(&self.paths)?
            .prune_learned(|_, _, learned| learned.expires_ns.saturating_add(EXPIRED_GRACE_NS) > now)?;
        Ok(expired)
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
/// and says what was carried over or dropped; learned addresses of the
/// scopes in `skip_scopes` (a bit mask) stay behind.
fn carry_maps_over(paths: &Paths, layouts: &BTreeMap<String, layout::Layout>, skip_scopes: u64) -> Result<()> {
    let skip = |map: &str, key: &[u8]| {
        (map == ram_common::maps::MAP_LEARN4 || map == ram_common::maps::MAP_LEARN6)
            && key
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_ne_bytes)
                .is_some_and(|scope| ram_common::verdict::scope_bit(scope) & skip_scopes != 0)
    };
    for report in layout::carry_over(paths, layouts, &skip)? {
        if report.dropped > 0 {
            warn!(map = %report.map, copied = report.copied, dropped = report.dropped, "entries carried over; some could not be (learned addresses are learned again from the next answers)");
        } else if report.copied > 0 {
            info!(map = %report.map, copied = report.copied, "entries carried over to the replaced map");
        }
    }
    Ok(())
}

/// What `ramd`'s command line adds to the policy.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `--metrics ADDR`: serve metrics there, whatever `[metrics] listen` says.
    pub metrics: Option<crate::metrics::ListenAddr>,
    /// `--kernel-log`: the programs' kernel log at start.
    pub kernel_log: KernelLog,
}

/// Runs ramd until SIGINT or SIGTERM. Enforcement stays in place afterwards.
pub async fn run(source: PolicySource, paths: Paths, options: Options) -> Result<()> {
    let mut daemon = Daemon::start(&source, paths, options.kernel_log)?;
    daemon.start_metrics(options.metrics);
    let mut events = crate::event_source::start(daemon.paths(), daemon.features.events)?;
    let signal_error = |e| crate::Error::Sys { what: "installing signal handlers".into(), cause: e };
    let mut sigterm = signal(SignalKind::terminate()).map_err(signal_error)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(signal_error)?;
    let mut sighup = signal(SignalKind::hangup()).map_err(signal_error)?;
    let mut watch = tokio::time::interval(POLICY_WATCH);
    // An edit wakes ramd at once; the poll above stays for what inotify
    // cannot see.
    let file_watch = match &source {
        PolicySource::File(path) => policy_watch::PolicyWatch::new(path),
        PolicySource::Embedded => None,
    };
    let file_changed = || async {
        match &file_watch {
            Some(watch) => watch.changed().await,
            None => std::future::pending().await,
        }
    };
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
            _ = file_changed() => {
                if daemon.policy_changed() {
                    info!("policy file changed");
                    daemon.reload();
                }
            }
            _ = watch.tick() => {
                if daemon.policy_changed() {
                    info!("policy file changed");
                    daemon.reload();
                } else if daemon.resolvers_changed() {
                    info!(resolv_conf = %crate::host::resolv_conf_path().display(), "the host's resolvers changed: the trusted resolvers follow");
                    daemon.reload();
                }
            }
            Some(record) = events.recv() => daemon.handle_event(&record),
            conn = daemon.metrics_connection() => daemon.serve_metrics(conn),
            _ = forwarder_scan.tick() => {
                daemon.read_kernel_logs();
                daemon.sync_forwarders();
                daemon.sync_containers();
            }
            _ = scan.tick() => {
                daemon.reconcile_targets();
                daemon.log_ended_repeats();
                daemon.recheck_routes();
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

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    /// A Kubernetes ConfigMap volume as the kubelet writes it: the file is a
    /// link through `..data` into a timestamped directory, and an update
    /// writes a new directory, points a new `..data` link at it, renames
    /// that over the old one and removes the old directory. The policy's
    /// path never changes, and the new file may have the old one's size
    /// and mtime; it is another inode, which the stamp (metadata follows
    /// the links) sees.
    #[test]
    fn a_configmap_update_through_the_data_link_changes_the_stamp() {
        let volume = std::env::temp_dir().join(format!("ram-configmap-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&volume);
        std::fs::create_dir_all(volume.join("..2024_01_01_00_00_00.1")).unwrap();
        let policy = "mode = \"enforce\"\n";
        std::fs::write(volume.join("..2024_01_01_00_00_00.1/ram.toml"), policy).unwrap();
        symlink("..2024_01_01_00_00_00.1", volume.join("..data")).unwrap();
        symlink("..data/ram.toml", volume.join("ram.toml")).unwrap();
        let source = PolicySource::File(volume.join("ram.toml"));
        let before = FileStamp::of(&source);
        assert!(before.is_some());
        assert_eq!(FileStamp::of(&source), before, "an unchanged volume must not look changed");

        let old_mtime = std::fs::metadata(volume.join("ram.toml")).unwrap().modified().unwrap();
        std::fs::create_dir_all(volume.join("..2024_01_01_00_01_00.2")).unwrap();
        let new_file = volume.join("..2024_01_01_00_01_00.2/ram.toml");
        std::fs::write(&new_file, policy).unwrap();
        std::fs::File::options().write(true).open(&new_file).unwrap().set_modified(old_mtime).unwrap();
        symlink("..2024_01_01_00_01_00.2", volume.join("..data_tmp")).unwrap();
        std::fs::rename(volume.join("..data_tmp"), volume.join("..data")).unwrap();
        std::fs::remove_dir_all(volume.join("..2024_01_01_00_00_00.1")).unwrap();
        let after = FileStamp::of(&source);
        std::fs::remove_dir_all(&volume).unwrap();
        assert!(after.is_some());
        assert_ne!(after, before, "the swapped ..data link must read as a changed policy file");
    }
}
