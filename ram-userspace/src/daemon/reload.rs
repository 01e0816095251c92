//! Reload: a new policy applied as one step, or nothing changed.

use std::net::IpAddr;

use ram_common::verdict::scope_bit;

use super::*;
use crate::policy::{lost_resolvers, merge_resolver_rows};

// Revocations due and not yet done, in the run directory: written before
// the rules that remove a trusted resolver go into the maps, removed once
// what it taught is revoked. A ramd that stops in between (killed, a
// crash, a start or reload that fails after the rules went in) finds it at
// its next start or reload: the pinned resolver rows no longer say which
// resolver went, so without it nothing would ever be revoked.
fn pending_path(paths: &Paths) -> PathBuf {
    paths.pending_revocation_file()
}

/// The revocations a run before this one left undone (none when unreadable:
/// the file is ramd's own, written whole by a rename).
pub(super) fn pending_revocation(paths: &Paths) -> Vec<(IpAddr, u64)> {
    std::fs::read(pending_path(paths)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

/// Writes down `lost` (a revocation due) before the rules change; a write
/// that fails stops the start or reload before anything changed.
pub(super) fn note_pending_revocation(paths: &Paths, lost: &[(IpAddr, u64)]) -> Result<()> {
    if lost.is_empty() {
        return Ok(());
    }
    let path = pending_path(paths);
    let mut fresh = path.clone().into_os_string();
    fresh.push(".new");
    let fresh = PathBuf::from(fresh);
    let text = serde_json::to_vec(lost).map_err(|e| crate::Error::io(&fresh, std::io::Error::other(e)))?;
    std::fs::write(&fresh, text).map_err(|e| crate::Error::io(&fresh, e))?;
    std::fs::rename(&fresh, &path).map_err(|e| crate::Error::io(&path, e))
}

/// The revocation written down is done.
pub(super) fn clear_pending_revocation(paths: &Paths) {
    let _ = std::fs::remove_file(pending_path(paths));
}

impl Daemon {
    /// Reads the policy again and applies it as one step. A policy that does
    /// not parse, validate or load changes nothing; the outcome is logged
    /// and published for `ramctl reload`.
    pub fn reload(&mut self) {
        let started_ns = crate::sys::monotonic_ns();
        let (kernel_log_before, kernel_log_asked) = self.take_kernel_log_setting();
        self.stamp = FileStamp::of(&self.source);
        self.resolver_stamps = FileStamp::of_resolvers();
        let outcome = self.try_reload();
        self.reload.generation += 1;
        self.reload.started_ns = started_ns;
        match outcome {
            Ok(summary) => {
                self.metrics.reloads_ok += 1;
                // The new policy is in effect whatever the listener does.
                let summary = match self.apply_metrics_listen() {
                    Ok(()) => summary,
                    Err(why) => {
                        error!("metrics listener not changed: {why}");
                        format!("{summary}; metrics listener not changed: {why}")
                    }
                };
                info!("policy reloaded: {summary}");
                self.reload.ok = true;
                self.reload.message = summary;
            }
            Err(e) => {
                // Nothing changed, the kernel log level included.
                self.kernel_log = kernel_log_before;
                self.metrics.reloads_refused += 1;
                error!("policy refused, nothing changed: {e}");
                self.reload.ok = false;
                self.reload.message = e.to_string();
            }
        }
        self.settle_kernel_log_setting(kernel_log_asked);
        self.publish_status();
    }

    pub(super) fn try_reload(&mut self) -> Result<String> {
        let policy = load_policy(&self.source, &HostFacts::probe())?;
        if policy.dns.resolvers != self.policy.dns.resolvers {
            info!(before = ?self.policy.dns.resolvers, after = ?policy.dns.resolvers, "trusted resolvers change");
        }
        for warning in &policy.warnings {
            warn!("{warning}");
        }
        let mut compiled = policy.compile_numbered(&self.scope_numbers())?;
        // The maps were sized when ramd started: a policy that outgrows
        // them is refused whole (a raised [limits] takes effect at restart).
        compiled.fits(
            &self.limits,
            &policy.source,
            " of the running ramd, sized at its start: restart ramd to resize",
        )?;
        compiled.trusted_netns = if policy.dns.netns == self.policy.dns.netns {
            self.compiled.trusted_netns
        } else {
            trusted_netns(&policy, &self.cgroup_root)?
        };
        compiled.place_port_sets(1 - self.compiled.port_half());
        // Trusted resolvers that go (an admin's edit, or resolv.conf
        // rewritten by DHCP, a VPN or NetworkManager): what they taught is
        // revoked once the new rules are in, below. In another network
        // namespace the same addresses are other servers: all go.
        // What the maps hold counts too: a reload that failed after its
        // rules went in left them, not `self.compiled`'s.
        let before = merge_resolver_rows(&self.compiled.resolvers, &Maps::open(&self.paths)?.resolvers()?);
        let lost = if compiled.trusted_netns == self.compiled.trusted_netns {
            lost_resolvers(&before, &compiled.resolvers)
        } else {
            lost_resolvers(&before, &[])
        };
        // And what a run before this one left undone.
        let lost = merge_resolver_rows(&lost, &pending_revocation(&self.paths));
        if policy.limits != self.limits {
            warn!(
                "{}: [limits] changed; map sizes change when ramd restarts, until then {:?} stay",
                policy.source, self.limits
            );
        }
        // A scope keeps its programs while its target's selector is the same
        // (the scope number is baked into them); otherwise new programs are
        // loaded now, before anything changes, so a load failure changes nothing.
        let mut replacements = BTreeMap::new();
        for settings in &compiled.scopes {
            // The kernel log level is a load-time constant too (`ramctl debug`).
            let same = self.scope(settings.scope).is_some_and(|old| {
                old.settings.selector == settings.selector && old.instance.kernel_log() == self.kernel_log
            });
            if !same {
                let instance = ScopeInstance::load(
                    &self.paths,
                    settings.scope,
                    &settings.name,
                    &self.features,
                    &self.limits,
                    loader::InstanceOptions {
                        membership: settings.membership(),
                        measure_verifier: false,
                        kernel_log: self.kernel_log,
                    },
                )?;
                replacements.insert(settings.scope, instance);
            }
        }
        // A new container target's programs attach before anything changes:
        // a pending container (one changing target, below) is judged by
        // every container target's programs on the root, which must all be
        // there (red team 13; see `Daemon::start`). They find no rules of
        // their number yet, and refuse. A replaced one of a number in use
        // takes its link over later, as before (its old programs read the
        // same target's rules meanwhile); a reload that fails from here
        // leaves the new ones' links to the prune, refusing until then.
        let mut adoptable = self.adoptable_links();
        for settings in compiled.scopes.iter().filter(|s| s.selector.containers().is_some()) {
            if self.scope(settings.scope).is_some() {
                continue;
            }
            if let Some(instance) = replacements.get_mut(&settings.scope) {
                instance.attach(&self.paths, &self.cgroup_root, &mut adoptable)?;
                info!(target_name = %settings.name, cgroup = %self.cgroup_root.display(), "enforcing");
            }
        }
        // Entries learned while the last refresh ran may still hold port-set
        // ids of the half about to be rewritten: bring them to the current
        // half first.
        self.revoke_unallowed()?;
        // A container whose target changes is held closed until decided
        // under the new targets; the others keep theirs throughout.
        self.hold_containers_changing_target(&compiled)?;
        // New rules in (every wanted row first, then stale rows out), then
        // what the old rules taught and the new ones do not allow is revoked.
        // A revocation due is written down first: should ramd stop before
        // it is done, the next start or reload does it.
        note_pending_revocation(&self.paths, &lost)?;
        if let Err(e) = Maps::open(&self.paths).and_then(|mut maps| maps.apply_rules(&compiled)) {
            // A refused reload changes nothing: the rules in effect go back.
            if let Err(back) = Maps::open(&self.paths).and_then(|mut maps| maps.apply_rules(&self.compiled)) {
                error!("ALERT: a failed reload left rules it could not take back (fix the cause and reload): {back}");
            }
            // What was learned under the refused rules meanwhile goes too.
            if let Err(back) = self.revoke_unallowed() {
                error!("ALERT: a failed reload could not revoke what its rules taught meanwhile: {back}");
            }
            return Err(e.into());
        }
        // A scope whose programs are replaced with its selector unchanged
        // (the kernel log level changed) keeps every cgroup its old
        // programs enforce, not only those its selector finds now: a
        // process target whose process has exited (a runtime restarting)
        // still enforces its cgroup, and whatever stays in it.
        let carried: Vec<(u32, Vec<PathBuf>)> = replacements
            .keys()
            .filter_map(|&number| {
                let old = self.scope(number)?;
                let new = compiled.scopes.iter().find(|s| s.scope == number)?;
                (old.settings.selector == new.selector)
                    .then(|| (number, old.instance.attached().map(|(_, path)| path.to_path_buf()).collect()))
            })
            .collect();
        // Each target takes its new settings, under its number; those whose
        // selector changed, their new programs too. Scopes whose number no
        // target has now are retired.
        let mut old: BTreeMap<u32, Scope> = self.scopes.drain(..).map(|s| (s.settings.scope, s)).collect();
        let mut retired: Vec<ScopeInstance> = Vec::new();
        for settings in std::mem::take(&mut compiled.scopes) {
            let number = settings.scope;
            let scope = match (replacements.remove(&number), old.remove(&number)) {
                (Some(instance), previous) => {
                    retired.extend(previous.map(|p| p.instance));
                    Scope { settings, instance }
                }
                (None, Some(previous)) => Scope { settings, instance: previous.instance },
                // Not replaced means a scope of that number with the same
                // selector exists.
                (None, None) => continue,
            };
            self.scopes.push(scope);
        }
        let removed_scopes = old.len();
        retired.extend(old.into_values().map(|s| s.instance));
        self.compiled = compiled;
        self.policy = policy;
        // The new policy is in effect from here: what fails now is logged,
        // and the switch carries on (the programs must still be swapped).
        let revoked = self.revoke_unallowed().unwrap_or_else(|e| {
            error!("cannot revoke what the new policy no longer allows (the next reload or restart does): {e}");
            0
        });
        // The removed resolvers are out of the maps: nothing more is learned
        // from them, and what they taught goes now rather than at its TTL.
        let untrusted = match self.revoke_untrusted(&lost) {
            Ok(n) => {
                clear_pending_revocation(&self.paths);
                n
            }
            Err(e) => {
                error!(
                    "cannot revoke what removed resolvers taught (written down; the next reload or restart does): {e}"
                );
                0
            }
        };
        // New programs attach before the ones they replace let go.
        self.notes.clear();
        self.reconcile_targets();
        self.keep_enforcing(carried);
        let detached: usize = retired.iter_mut().map(|i| i.detach_all()).sum();
        // Only now: a run started before this point numbers its targets as
        // the previous programs, still attached, were numbered.
        self.save_scope_numbers();
        if let Err(e) = self.setup_container_watch() {
            warn!("container watch: {e}");
        }
        self.sync_containers();
        Ok(format!(
            "{} targets, {} rules; {revoked} learned addresses revoked; {untrusted} learned addresses revoked as trusted resolvers were removed ({}); {} target programs replaced or removed ({removed_scopes} removed, {detached} links detached)",
            self.scopes.len(),
            self.compiled.names.len() + self.compiled.cidrs.len(),
            resolver_list(&lost).unwrap_or_else(|| "none removed".into()),
            retired.len(),
        ))
    }

    /// Attaches each replaced scope's new programs to the cgroups its old
    /// ones enforced (`carried`, by scope number) that reconciling did not
    /// find, taking over the old links; before the old programs let go.
    fn keep_enforcing(&mut self, carried: Vec<(u32, Vec<PathBuf>)>) {
        let mut adoptable = self.adoptable_links();
        for (number, cgroups) in carried {
            let Some(scope) = self.scopes.iter_mut().find(|s| s.settings.scope == number) else { continue };
            for path in cgroups {
                // A cgroup that is gone took its attachments with it.
                let Ok(id) = cgroup::cgroup_id(&path) else { continue };
                if scope.instance.is_attached(id) {
                    continue;
                }
                match scope.instance.attach(&self.paths, &path, &mut adoptable) {
                    Ok(_) => info!(
                        target_name = %scope.settings.name,
                        cgroup = %path.display(),
                        "enforcing still (its programs replaced; the target's selector finds it no more)"
                    ),
                    Err(e) => {
                        error!(target_name = %scope.settings.name, cgroup = %path.display(), "cannot attach: {e}")
                    }
                }
            }
        }
    }

    /// Removes learned addresses whose question the policy no longer allows
    /// for their scope, and gives the others the port set the policy now
    /// gives their name (set ids are renumbered by every compile).
    pub(super) fn revoke_unallowed(&self) -> Result<usize> {
        let compiled = &self.compiled;
        Ok(Maps::open(&self.paths)?
            .refresh_learned(|scope, host| host.and_then(|h| compiled.name_port_set(scope, h)))?)
    }

    /// Revokes every address learned by a scope that lost a trusted
    /// resolver (`lost`, from [`lost_resolvers`]): a learned entry does not
    /// record which resolver taught it, so whatever that scope learned may
    /// have come from one no longer trusted. Clients learn again through
    /// the resolvers that stay at their next lookup. Returns how many.
    pub(super) fn revoke_untrusted(&self, lost: &[(IpAddr, u64)]) -> Result<usize> {
        let scopes = lost.iter().fold(0u64, |mask, (_, scopes)| mask | scopes);
        let Some(removed) = resolver_list(lost) else { return Ok(0) };
        let revoked = Maps::open(&self.paths)?.prune_learned(|scope, _, _| scope_bit(scope) & scopes == 0)?;
        warn!(
            removed = %removed,
            revoked,
            "trusted resolvers removed ({removed}): {revoked} learned addresses revoked, learned again through the remaining resolvers"
        );
        Ok(revoked)
    }
}

/// The resolvers of `lost`, for the log; None when there are none.
fn resolver_list(lost: &[(IpAddr, u64)]) -> Option<String> {
    (!lost.is_empty()).then(|| lost.iter().map(|(addr, _)| addr.to_string()).collect::<Vec<_>>().join(", "))
}
