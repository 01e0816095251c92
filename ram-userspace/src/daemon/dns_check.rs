//! Events from the kernel: blocked attempts to log, and DNS answers to
//! cross-check with the full parser (what the kernel learned and the full
//! parser would not have is removed).

use super::*;

impl Daemon {
    pub fn handle_event(&mut self, bytes: &[u8]) {
        match events::decode(bytes) {
            Some(Event::Blocked(event)) => {
                let mut record = BlockedRecord::new(&event, self.scope_name(event.header.scope), &self.hosts);
                record.container = self.container_label(event.cgroup_id);
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
    pub(super) fn handle_dns(&mut self, event: &DnsEvent) {
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

    pub(super) fn undo_learning(&self, scope: u32, message: &[u8], why: &str) {
        let Some((host_id, addrs)) = events::kernel_learning(message) else { return };
        for addr in addrs {
            if let Ok(true) = Maps::open(&self.paths).and_then(|mut maps| maps.forget_learned(scope, addr, host_id)) {
                error!(target_name = %self.scope_name(scope), %addr, "ALERT: the kernel learned from an answer the full parser refuses ({why}); removed");
            }
        }
    }
}
