//! `ramctl check`: would a connect be allowed now, and by what: the
//! kernel's own verdict (`ram_common::verdict::judge`) over the pinned
//! maps.

use std::net::IpAddr;

use aya::maps::{lpm_trie::Key, Array, MapData};
use ram_common::{
    family,
    maps::{Learned, PortSet},
    verdict::{judge, scope_bit, Expiry, Tables, Verdict},
};
use serde::Serialize;

use super::{
    family::{FamilyMaps, MapFamily},
    port_set_text, Maps,
};
use crate::{
    maps::{MapsError, Result},
    sys::monotonic_ns,
};

/// Why a destination is allowed for a scope, or that it is not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Check {
    /// A configured resolver, on port 53.
    Resolver,
    /// Inside an address rule.
    Cidr {
        rule: String,
    },
    /// Learned from an answer for `host`.
    Learned {
        host: Option<String>,
        expires_in_s: i64,
    },
    /// Learned once, but expired: new connects are denied.
    Expired {
        host: Option<String>,
    },
    /// The name is allowed: its addresses are learned when it is resolved.
    NameAllowed {
        learned: Vec<IpAddr>,
    },
    Denied {
        reason: String,
    },
}

impl Check {
    pub fn allowed(&self) -> bool {
        !matches!(self, Check::Denied { .. } | Check::Expired { .. })
    }
}

/// The pinned maps, as seen for one destination of one scope: what
/// `ram_common::verdict::judge` reads (the kernel reads its own maps the
/// same way). A map that cannot be read holds nothing: fail closed.
struct PinnedTables<'a, F: MapFamily> {
    maps: &'a FamilyMaps<F>,
    ports: &'a Array<MapData, PortSet>,
    scope: u32,
    addr: F::Bytes,
}

impl<F: MapFamily> Tables for PinnedTables<'_, F> {
    fn is_resolver(&self) -> bool {
        self.maps.resolver_scopes(self.addr) & scope_bit(self.scope) != 0
    }

    fn cidr_port_set(&self) -> Option<u32> {
        let rule = self.maps.cidr_rule(self.addr)?;
        (rule.scopes & scope_bit(self.scope) != 0).then(|| rule.ports[(self.scope & 63) as usize] as u32)
    }

    fn learned(&self) -> Option<(u32, u64)> {
        self.maps.learned_entry(self.scope, self.addr).map(|learned| (learned.port_set, learned.expires_ns))
    }

    fn port_allowed(&self, set: u32, port: u16) -> bool {
        ram_common::verdict::port_allowed(set, self.ports.get(&set, 0).ok().as_ref(), port)
    }

    fn now_ns(&self) -> u64 {
        monotonic_ns()
    }
}

impl<F: MapFamily> PinnedTables<'_, F> {
    /// Why port `port` is refused: the ports of the learned entry, or else
    /// of the address rule, that hold the destination.
    fn port_refusal(&self, port: Option<u16>) -> String {
        let learned = self.maps.learned_entry(self.scope, self.addr).map(|l| l.port_set);
        let set = learned.or_else(|| self.cidr_port_set()).unwrap_or(0);
        let allowed = match self.ports.get(&set, 0) {
            Ok(ports) => port_set_text(set, &ports),
            Err(_) => "none".to_string(),
        };
        match port {
            Some(port) => format!("port {port} is not among the ports the rule allows ({allowed})"),
            None => format!("only the rule's ports are allowed ({allowed})"),
        }
    }
}

impl Maps {
    /// Would a connect from `scope` to `addr`:`port` be allowed now? The
    /// kernel's verdict (`ram_common::verdict::judge`) over the pinned maps,
    /// with what made it.
    pub fn check_addr(&self, scope: u32, addr: IpAddr, port: Option<u16>) -> Result<Check> {
        // IPv4-mapped IPv6 is judged as IPv4, as the kernel does.
        match family::judged(addr) {
            IpAddr::V4(v4) => self.check_in(&self.v4, scope, v4.octets(), port),
            IpAddr::V6(v6) => self.check_in(&self.v6, scope, v6.octets(), port),
        }
    }

    fn check_in<F: MapFamily>(
        &self,
        maps: &FamilyMaps<F>,
        scope: u32,
        bytes: F::Bytes,
        port: Option<u16>,
    ) -> Result<Check> {
        let addr = F::ip(bytes);
        let tables = PinnedTables { maps, ports: &self.ports, scope, addr: bytes };
        let host =
            |learned: &Learned| -> Result<Option<String>> { Ok(self.host_names()?.get(&learned.host_id).cloned()) };
        let verdict = judge(&tables, port, Expiry::Strict);
        Ok(match verdict {
            Verdict::Resolver => Check::Resolver,
            Verdict::Cidr => {
                let rule = self
                    .rules()?
                    .into_iter()
                    .filter(|r| r.kind == "cidr" && r.scopes.contains(&scope))
                    .filter_map(|r| r.rule.parse::<crate::policy::Cidr>().ok())
                    .filter(|c| c.contains(addr))
                    .max_by_key(|c| c.prefix)
                    .map(|c| c.to_string())
                    .unwrap_or_default();
                Check::Cidr { rule }
            }
            Verdict::Learned | Verdict::Expired => match maps.learned_entry(scope, bytes) {
                // The verdict says which (red team 15: whole seconds left,
                // rounded down, called the last second expired while
                // connects passed).
                Some(learned) if verdict == Verdict::Learned => {
                    let left = (learned.expires_ns as i128 - monotonic_ns() as i128) / 1_000_000_000;
                    Check::Learned { host: host(&learned)?, expires_in_s: left.max(0) as i64 }
                }
                Some(learned) => Check::Expired { host: host(&learned)? },
                // Removed since the verdict (expiry, a revocation).
                None => Check::Denied { reason: "no rule allows it and no allowed name resolved to it".into() },
            },
            Verdict::PortRefused => Check::Denied { reason: tables.port_refusal(port) },
            Verdict::Denied if tables.is_resolver() => {
                Check::Denied { reason: "a resolver, but only port 53 is open to it".into() }
            }
            Verdict::Denied => Check::Denied { reason: "no rule allows it and no allowed name resolved to it".into() },
        })
    }

    /// Is `host` (on `port`, when given) allowed for `scope`, as the kernel
    /// would judge a connect to an address learned for it?
    pub fn check_host(&self, scope: u32, host: &str, port: Option<u16>) -> Result<Check> {
        let key = ram_common::name::encode_host(host)
            .map_err(|e| MapsError::NotAHostName { host: host.to_string(), cause: format!("{e:?}") })?;
        if key.wildcard {
            return Ok(Check::Denied { reason: "give a host name, not a pattern".into() });
        }
        let rule = self
            .names
            .get(&Key::new(key.prefix_bits(), key.data), 0)
            .ok()
            .filter(|rule| ram_common::verdict::name_allowed(rule, key.len, scope));
        let Some(rule) = rule else {
            return Ok(Check::Denied { reason: "no host rule allows this name".into() });
        };
        if let Some(port) = port {
            // The port set the rule gives the addresses this name teaches.
            let id = ram_common::verdict::name_port_set(&rule, key.len, scope);
            let set = self.ports.get(&id, 0).ok();
            if !ram_common::verdict::port_allowed(id, set.as_ref(), port) {
                let allowed = set.map_or_else(|| "none".to_string(), |set| port_set_text(id, &set));
                return Ok(Check::Denied {
                    reason: format!("port {port} is not among the ports the rule allows ({allowed})"),
                });
            }
        }
        let wanted = host.trim_end_matches('.').to_ascii_lowercase();
        let learned = self
            .learned()?
            .into_iter()
            .filter(|r| r.scope == scope && r.host.as_deref() == Some(wanted.as_str()) && r.expires_in_s > 0)
            .map(|r| r.addr)
            .collect();
        Ok(Check::NameAllowed { learned })
    }
}
