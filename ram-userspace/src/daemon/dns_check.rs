//! Events from the kernel: blocked attempts to log, and DNS answers to
//! cross-check with the full parser (what the kernel learned and the full
//! parser would not have is removed).

use super::*;
use crate::{
    events::{AnswerRecord, DnsSummary},
    sys::unix_ms,
};

impl Daemon {
    pub fn handle_event(&mut self, bytes: &[u8]) {
        match events::decode(bytes) {
            Some(Event::Blocked(event)) => {
                let mut record = BlockedRecord::new(&event, self.scope_name(event.header.scope), &self.hosts);
                record.container = self.container_label(event.cgroup_id);
                let lines = self.log_limiter.attempt(record, std::time::Instant::now());
                self.log_blocked(lines);
            }
            Some(Event::Dns(event)) => self.handle_dns(&event),
            None => debug!(len = bytes.len(), "unknown event"),
        }
    }

    /// Names addresses for later log lines, and cross-checks what the kernel
    /// learned against the full parser: an address the kernel learned that
    /// hickory-proto (following the CNAME chain by name) and the policy would
    /// not have taught is removed at once, with an alert.
    pub(super) fn handle_dns(&mut self, event: &DnsEvent) {
        let scope = event.header.scope;
        let len = (event.message_len as usize).min(event.message.len());
        let cut_by_window = len == event.message.len();
        let parsed = match events::summarize_dns(&event.message[..len]) {
            // The window cut it: the full parser checks the records that
            // are whole in it, which are all the kernel could learn from.
            Err(_) if cut_by_window => events::summarize_dns_prefix(&event.message[..len]),
            parsed => parsed,
        };
        self.keep_answer(scope, &event.message[..len], &parsed, event);
        let summary = match parsed {
            Ok(summary) => summary,
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
            self.hosts.remember(event.cgroup_id, *addr, &summary.name);
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
        if allowed {
            self.watch_learned_routes(scope, &summary.name, &summary.addrs);
        }
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

    /// Keeps what an answer taught, or why nothing, for `ramctl explain`.
    fn keep_answer(&mut self, scope: u32, message: &[u8], parsed: &Result<DnsSummary, String>, event: &DnsEvent) {
        let record = match parsed {
            Ok(summary) => AnswerRecord {
                at_unix_ms: unix_ms(),
                target: self.scope_name(scope),
                name: summary.name.clone(),
                addrs: summary.addrs.clone(),
                off_chain: summary.off_chain.clone(),
                ttl: summary.ttl,
                learned: event.learned,
                outcome: events::answer_outcome(
                    summary,
                    self.compiled.allows_name(scope, &summary.name),
                    event.matched != 0,
                    event.learned,
                ),
            },
            Err(e) => AnswerRecord {
                at_unix_ms: unix_ms(),
                target: self.scope_name(scope),
                name: events::question_name(message).unwrap_or_default(),
                addrs: Vec::new(),
                off_chain: Vec::new(),
                ttl: None,
                learned: event.learned,
                outcome: format!("nothing learned: malformed, the full parser refuses it ({e})"),
            },
        };
        if let Err(e) = self.answers.append(&record) {
            if !self.journal_failed {
                warn!("cannot keep DNS answers for `ramctl explain`: {e}");
                self.journal_failed = true;
            }
        }
    }

    /// Logs the repeats of blocked attempts whose window has ended.
    pub(super) fn log_ended_repeats(&mut self) {
        let lines = self.log_limiter.sweep(std::time::Instant::now());
        self.log_blocked(lines);
    }

    /// Logs blocked attempts, and keeps the same lines for `ramctl blocked`
    /// and `ramctl suggest` (a retry loop would otherwise rotate every other
    /// attempt out of their history).
    fn log_blocked(&mut self, lines: crate::log_limit::Lines) {
        for record in lines.summaries.iter().chain(&lines.attempts) {
            record.log();
            if let Err(e) = self.journal.append(record) {
                if !self.journal_failed {
                    warn!("cannot keep blocked attempts for `ramctl blocked`: {e}");
                    self.journal_failed = true;
                }
            }
        }
        if lines.overflow > 0 {
            warn!(
                not_logged = lines.overflow,
                "{} blocked attempts not logged: more than {} distinct processes and destinations in {} s (counted in the metrics)",
                lines.overflow,
                crate::log_limit::MAX_TRACKED,
                crate::log_limit::WINDOW.as_secs()
            );
        }
    }

    pub(super) fn undo_learning(&self, scope: u32, message: &[u8], why: &str) {
        let Some((host_id, addrs)) = events::kernel_learning(message) else { return };
        for addr in addrs {
            if let Ok(true) = Maps::open(&self.paths).and_then(|mut maps| maps.forget_learned(scope, addr, host_id)) {
                error!(target_name = %self.scope_name(scope), %addr, "ALERT: the kernel learned from an answer the full parser refuses ({why}); removed");
            }
        }
    }
}
