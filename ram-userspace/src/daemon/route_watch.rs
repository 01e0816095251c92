//! Alerts when an address learned for an allowed name is routed into a
//! container network's bridge in the runtime's namespace (see
//! `crate::routes`): a Docker network made over a registry's address sends
//! the runtime's allowed connects to whatever container holds it there.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    time::Instant,
};

use super::*;
use crate::routes::{self, Route};

/// Addresses kept to check again when the routes change; the oldest go
/// first (an alert, not enforcement: a forgotten address is checked again
/// when it is learned again).
const REMEMBERED: usize = 16_384;
/// How often the routing table is read.
const REREAD: Duration = Duration::from_secs(2);

#[derive(Default)]
pub(super) struct RouteWatch {
    /// address → (scope, name), and the order they came in.
    allowed: BTreeMap<IpAddr, (u32, String)>,
    order: std::collections::VecDeque<IpAddr>,
    alerted: BTreeSet<(IpAddr, String)>,
    routes: Vec<Route>,
    read_at: Option<Instant>,
    read_failed: bool,
}

impl Daemon {
    /// The namespace whose routes carry the runtime's connects: the one
    /// whose DNS the policy trusts.
    fn runtime_netns(&self) -> std::path::PathBuf {
        self.policy.dns.netns.clone().unwrap_or_else(|| crate::netns::OWN.into())
    }

    /// Reads the routes again if they are older than `REREAD`; true when
    /// they changed.
    fn reread_routes(&mut self) -> bool {
        if self.route_watch.read_at.is_some_and(|at| at.elapsed() < REREAD) {
            return false;
        }
        self.route_watch.read_at = Some(Instant::now());
        match routes::read(&self.runtime_netns()) {
            Ok(routes) => {
                self.route_watch.read_failed = false;
                let changed = routes != self.route_watch.routes;
                self.route_watch.routes = routes;
                changed
            }
            Err(e) => {
                if !self.route_watch.read_failed {
                    warn!("cannot read the runtime's routes (no alert for allowed addresses routed into container networks): {e}");
                }
                self.route_watch.read_failed = true;
                false
            }
        }
    }

    /// Addresses the kernel learned for an allowed name: checked now, and
    /// again whenever the routes change.
    pub(super) fn watch_learned_routes(&mut self, scope: u32, name: &str, addrs: &[IpAddr]) {
        let changed = self.reread_routes();
        for addr in addrs {
            if self.route_watch.allowed.insert(*addr, (scope, name.to_string())).is_none() {
                self.route_watch.order.push_back(*addr);
                if self.route_watch.order.len() > REMEMBERED {
                    if let Some(old) = self.route_watch.order.pop_front() {
                        self.route_watch.allowed.remove(&old);
                    }
                }
            }
        }
        // New routes are checked against every remembered address here, as
        // a scan would have (it will not see them as new again).
        if changed {
            self.check_remembered_routes();
        } else {
            for addr in addrs {
                self.check_route(*addr);
            }
        }
    }

    /// Called every scan: when the routes changed, every remembered address
    /// is checked again.
    pub(super) fn recheck_routes(&mut self) {
        if self.reread_routes() {
            self.check_remembered_routes();
        }
    }

    fn check_remembered_routes(&mut self) {
        let addrs: Vec<IpAddr> = self.route_watch.allowed.keys().copied().collect();
        for addr in addrs {
            self.check_route(addr);
        }
    }

    fn check_route(&mut self, addr: IpAddr) {
        let Some(route) = routes::route_for(&self.route_watch.routes, addr) else { return };
        if !routes::is_container_bridge(&route.dev) {
            return;
        }
        if !self.route_watch.alerted.insert((addr, route.dev.clone())) {
            return;
        }
        let (scope, name) = self.route_watch.allowed.get(&addr).cloned().unwrap_or_default();
        error!(
            target_name = %self.scope_name(scope),
            host = %name,
            %addr,
            dev = %route.dev,
            route = %format!("{}/{}", route.net, route.prefix),
            "ALERT: an allowed registry's address is routed into a container network on this host: a container there can answer for it (remove the network or route, or check who made it)"
        );
    }
}
