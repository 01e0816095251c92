//! Prometheus metrics: ramd answers `GET /metrics` on a listener of its
//! own (off unless `[metrics] listen` or `ramd --metrics` names one).
//!
//! Every figure is read when it is scraped: the kernel's counters and map
//! occupancy from the pinned maps (so they survive ramd's restarts, as the
//! counters `ramctl status` shows do), program run times from the kernel,
//! and ramd's own state (targets, reloads) from a [`Snapshot`] the daemon's
//! loop hands to each connection. Nothing is counted twice in userspace.
//!
//! - `listen`: the listen address (`IP:PORT` or `unix:/PATH`);
//! - `collect`: what the kernel says ([`Readings`]);
//! - `exposition`: snapshot + readings → Prometheus or OpenMetrics text;
//! - `http`: the request line and the response, nothing more;
//! - `server`: the listener and one task per connection.

mod collect;
mod exposition;
mod http;
mod listen;
mod server;

pub use collect::{collect, ProgramRuns, Readings};
pub use exposition::{encode, Format};
pub use listen::ListenAddr;
pub use server::{Conn, Listener, ScrapeGate};

use crate::status::DaemonStatus;

/// What ramd's loop knows that the kernel does not: its targets and their
/// programs, and how reloads went. Cloned into each scrape.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub targets: Vec<TargetState>,
    pub reloads_ok: u64,
    pub reloads_refused: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetState {
    pub scope: u32,
    pub name: String,
    /// Attached to at least one cgroup (else pending).
    pub attached: bool,
    /// (program name, kernel program id) of this target's loaded programs.
    pub programs: Vec<(String, u32)>,
}

impl Snapshot {
    pub fn new(status: &DaemonStatus, reloads_ok: u64, reloads_refused: u64) -> Self {
        let targets = status
            .targets
            .iter()
            .map(|t| TargetState {
                scope: t.scope,
                name: t.name.clone(),
                attached: t.state == "attached",
                programs: t.programs.iter().map(|p| (p.name.clone(), p.id)).collect(),
            })
            .collect();
        Snapshot { targets, reloads_ok, reloads_refused }
    }
}
