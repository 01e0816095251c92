//! `ramctl check`: would a connect be allowed now, and by what, judged
//! from the maps in the kernel's order.

use std::net::IpAddr;

use aya::maps::lpm_trie::Key;
use ram_common::maps::{Learn4Key, Learn6Key, MAP_PORTS};
use serde::Serialize;

use super::{port_set_text, Maps};
use crate::{
    error::{Error, Result},
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

impl Maps {
    /// Would a connect from `scope` to `addr`:`port` be allowed now? Judged
    /// from the maps, in the kernel's order: resolver, address rule, learned.
    pub fn check_addr(&self, scope: u32, addr: IpAddr, port: Option<u16>) -> Result<Check> {
        let bit = ram_common::verdict::scope_bit(scope);
        // IPv4-mapped IPv6 is judged as IPv4, as the kernel does.
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(addr),
            v4 => v4,
        };
        let port_sets = &self.ports;
        let port_allowed = |set: u32| -> Result<Option<String>> {
            let Some(port) = port else { return Ok(None) };
            let id = set;
            let set = port_sets.get(&id, 0).map_err(|e| Error::map(MAP_PORTS, e))?;
            Ok((!ram_common::verdict::port_allowed(id, Some(&set), port))
                .then(|| format!("port {port} is not among the ports the rule allows ({})", port_set_text(id, &set))))
        };
        let (resolver, cidr_hit, learned_value) = match addr {
            IpAddr::V4(v4) => (
                self.resolv4.get(&v4.octets(), 0).ok().is_some_and(|r| r.scopes & bit != 0),
                self.cidr4.get(&Key::new(32, v4.octets()), 0).ok().filter(|r| r.scopes & bit != 0),
                self.learn4.get(&Learn4Key { scope, addr: v4.octets() }, 0).ok(),
            ),
            IpAddr::V6(v6) => (
                self.resolv6.get(&v6.octets(), 0).ok().is_some_and(|r| r.scopes & bit != 0),
                self.cidr6.get(&Key::new(128, v6.octets()), 0).ok().filter(|r| r.scopes & bit != 0),
                self.learn6.get(&Learn6Key { scope, addr: v6.octets() }, 0).ok(),
            ),
        };
        if resolver && port.is_none_or(|p| p == 53) {
            return Ok(Check::Resolver);
        }
        if let Some(hit) = cidr_hit {
            if let Some(reason) = port_allowed(hit.ports[scope as usize & 63] as u32)? {
                return Ok(Check::Denied { reason });
            }
            let rule = self
                .rules()?
                .into_iter()
                .filter(|r| r.kind == "cidr" && r.scopes.contains(&scope))
                .filter_map(|r| r.rule.parse::<crate::policy::Cidr>().ok())
                .filter(|c| c.contains(addr))
                .max_by_key(|c| c.prefix)
                .map(|c| c.to_string())
                .unwrap_or_default();
            return Ok(Check::Cidr { rule });
        }
        if let Some(value) = learned_value {
            if let Some(reason) = port_allowed(value.port_set)? {
                return Ok(Check::Denied { reason });
            }
            let host = self.host_names()?.get(&value.host_id).cloned();
            let left = (value.expires_ns as i128 - monotonic_ns() as i128) / 1_000_000_000;
            return Ok(if left > 0 {
                Check::Learned { host, expires_in_s: left as i64 }
            } else {
                Check::Expired { host }
            });
        }
        let reason = if resolver {
            "a resolver, but only port 53 is open to it"
        } else {
            "no rule allows it and no allowed name resolved to it"
        };
        Ok(Check::Denied { reason: reason.into() })
    }

    /// Is `host` (on `port`, when given) allowed for `scope`, as the kernel
    /// would judge a connect to an address learned for it?
    pub fn check_host(&self, scope: u32, host: &str, port: Option<u16>) -> Result<Check> {
        let key = ram_common::name::encode_host(host).map_err(|e| Error::Sys {
            what: format!("`{host}` is not a host name"),
            cause: std::io::Error::other(format!("{e:?}")),
        })?;
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
