//! The metrics listener as the daemon keeps it: opened at start, moved or
//! closed when a reload changes `[metrics] listen`, and its connections
//! handed to the metrics server with a snapshot of ramd's state.

use super::*;
use crate::metrics::{Conn, ListenAddr, Listener, ScrapeGate, Snapshot};

#[derive(Default)]
pub(crate) struct MetricsState {
    /// `ramd --metrics`: when given, the policy's `[metrics] listen` is not used.
    flag: Option<ListenAddr>,
    listener: Option<Listener>,
    gate: ScrapeGate,
    pub(super) reloads_ok: u64,
    pub(super) reloads_refused: u64,
}

impl Daemon {
    /// Opens the listener the flag (or else the policy) names. A failure is
    /// logged and ramd runs on without metrics: enforcement does not wait
    /// on a port. A reload tries again.
    pub fn start_metrics(&mut self, flag: Option<ListenAddr>) {
        self.metrics.flag = flag;
        if let Err(why) = self.apply_metrics_listen() {
            error!("no metrics: {why}");
        }
    }

    /// Where metrics should be served now: the flag wins over the policy.
    fn wanted_metrics_listen(&self) -> Option<ListenAddr> {
        self.metrics.flag.clone().or_else(|| self.policy.metrics.listen.clone())
    }

    /// Binds, moves or closes the listener as the flag or the policy say.
    /// A bind failure keeps the listener there was and says so.
    pub(super) fn apply_metrics_listen(&mut self) -> std::result::Result<(), String> {
        let wanted = self.wanted_metrics_listen();
        let current = self.metrics.listener.as_ref().map(|l| l.addr().clone());
        if wanted == current {
            return Ok(());
        }
        let Some(wanted) = wanted else {
            self.metrics.listener = None;
            if let Some(current) = current {
                info!(listen = %current, "metrics listener closed");
            }
            return Ok(());
        };
        let bound = match Listener::bind(&wanted) {
            // The listener there is holds the port (127.0.0.1:9464 →
            // 0.0.0.0:9464): let it go first, and take it back on failure.
            Err(crate::Error::Metrics { cause, .. })
                if cause.kind() == std::io::ErrorKind::AddrInUse && same_port(current.as_ref(), &wanted) =>
            {
                self.metrics.listener = None;
                Listener::bind(&wanted).inspect_err(|_| {
                    self.metrics.listener = current.as_ref().and_then(|old| Listener::bind(old).ok());
                })
            }
            other => other,
        };
        match bound {
            Ok(listener) => {
                match &wanted {
                    ListenAddr::Tcp(addr) => info!(listen = %wanted, "serving metrics at http://{addr}/metrics"),
                    ListenAddr::Unix(_) => info!(listen = %wanted, "serving metrics at /metrics on {wanted}"),
                }
                self.metrics.listener = Some(listener);
                Ok(())
            }
            Err(e) => {
                let kept = match self.metrics.listener.as_ref() {
                    Some(old) => format!("metrics stay on {}", old.addr()),
                    None => "no metrics listener".to_string(),
                };
                Err(format!("{e}; {kept}"))
            }
        }
    }

    /// The next connection to the metrics listener; never, without one.
    pub async fn metrics_connection(&self) -> Conn {
        match &self.metrics.listener {
            Some(listener) => listener.accept().await,
            None => std::future::pending().await,
        }
    }

    /// Answers a metrics connection on its own task, with ramd's state now.
    pub fn serve_metrics(&self, conn: Conn) {
        let status = self.last_status.clone().unwrap_or_else(|| self.status());
        let snapshot = Snapshot::new(&status, self.metrics.reloads_ok, self.metrics.reloads_refused);
        self.metrics.gate.serve(conn, self.paths.clone(), snapshot);
    }
}

fn same_port(current: Option<&ListenAddr>, wanted: &ListenAddr) -> bool {
    matches!((current, wanted), (Some(ListenAddr::Tcp(a)), ListenAddr::Tcp(b)) if a.port() == b.port())
}
