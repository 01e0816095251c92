//! What ramctl reads back: counters, the rules the kernel enforces, the
//! scopes' settings.

use std::net::IpAddr;

use ram_common::{
    family::{Family, V4, V6},
    maps::*,
    name::{text_from_key, NAME_KEY_LEN},
};
use serde::Serialize;

use super::Maps;
use super::{MapsError, Result};

/// A compiled rule as read back from the maps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleRow {
    /// "host", "wildcard", "cidr" or "resolver".
    pub kind: &'static str,
    pub rule: String,
    /// Scopes the rule allows (for wildcards: names below the suffix).
    pub scopes: Vec<u32>,
    /// For each of `scopes`, the ports allowed ("any", or "443,5000").
    pub ports: Vec<String>,
}

pub fn port_set_text(id: u32, set: &PortSet) -> String {
    if id == ANY_PORT {
        return "any".into();
    }
    if set.count == 0 {
        return "none".into();
    }
    let ports: Vec<String> = set.ports.iter().take(set.count as usize).map(|p| p.to_string()).collect();
    ports.join(",")
}

fn ports_of(texts: &[String], scopes: &[u32], sets: &[u8; MAX_SCOPES as usize]) -> Vec<String> {
    scopes.iter().map(|s| texts.get(sets[*s as usize & 63] as usize).cloned().unwrap_or_else(|| "?".into())).collect()
}

fn scope_list(mask: u64) -> Vec<u32> {
    (0..64).filter(|s| mask & (1u64 << s) != 0).collect()
}

impl Maps {
    /// Counter totals (summed over CPUs) of one scope, in `counter::NAMES` order.
    pub fn counters(&self, scope: u32) -> Result<Vec<(&'static str, u64)>> {
        let array = &self.counters;
        let mut out = Vec::with_capacity(counter::NAMES.len());
        for (slot, name) in counter::NAMES.iter().enumerate() {
            let index = scope * counter::SLOTS + slot as u32;
            let values = array.get(&index, 0).map_err(|e| MapsError::map(MAP_COUNTERS, e))?;
            out.push((*name, values.iter().sum()));
        }
        Ok(out)
    }

    /// The half of the port-set id space the rules in the maps use (None when
    /// no rule has a port set): the next apply must use the other one.
    pub fn port_half_in_use(&self) -> Result<Option<usize>> {
        let half_of = |ids: &[u8]| {
            ids.iter().find(|id| u32::from(**id) != ANY_PORT).map(|id| usize::from(u32::from(*id) >= PORT_HALF_BASE[1]))
        };
        for item in self.names.iter() {
            let (_, rule) = item.map_err(|e| MapsError::map(MAP_NAMES, e))?;
            if let Some(half) = half_of(&rule.full_ports).or_else(|| half_of(&rule.partial_ports)) {
                return Ok(Some(half));
            }
        }
        let v4 = self.v4.cidr_rows()?.into_iter().map(|(_, _, rule)| rule);
        for rule in v4.chain(self.v6.cidr_rows()?.into_iter().map(|(_, _, rule)| rule)) {
            if let Some(half) = half_of(&rule.ports) {
                return Ok(Some(half));
            }
        }
        Ok(None)
    }

    /// The port sets, as text by set id.
    fn port_texts(&self) -> Result<Vec<String>> {
        let sets = &self.ports;
        let mut out = Vec::with_capacity(PORT_SETS as usize);
        for index in 0..PORT_SETS {
            let set = sets.get(&index, 0).map_err(|e| MapsError::map(MAP_PORTS, e))?;
            out.push(port_set_text(index, &set));
        }
        Ok(out)
    }

    /// The rules the kernel enforces, read back from the maps.
    pub fn rules(&self) -> Result<Vec<RuleRow>> {
        let texts = self.port_texts()?;
        let mut rows = Vec::new();
        for item in self.names.iter() {
            let (key, rule) = item.map_err(|e| MapsError::map(MAP_NAMES, e))?;
            let len = (key.prefix_len() / 8) as usize;
            let mut text = [0u8; NAME_KEY_LEN];
            let n = text_from_key(&key.data(), len, &mut text);
            let text = String::from_utf8_lossy(&text[..n]).into_owned();
            // Wildcard keys end in a dot, which reads as a leading dot.
            let (kind, rule_text, scopes, sets) = match text.strip_prefix('.') {
                Some(suffix) => {
                    ("wildcard", format!("*.{suffix}"), scope_list(rule.partial_scopes), &rule.partial_ports)
                }
                None => ("host", text.clone(), scope_list(rule.full_scopes), &rule.full_ports),
            };
            let ports = ports_of(&texts, &scopes, sets);
            rows.push(RuleRow { kind, rule: rule_text, scopes, ports });
        }
        let cidrs = self.v4.cidr_rows()?.into_iter().map(|(a, prefix, rule)| (V4::ip(a), prefix, rule));
        for (addr, prefix, rule) in cidrs.chain(self.v6.cidr_rows()?.into_iter().map(|(a, p, r)| (V6::ip(a), p, r))) {
            let scopes = scope_list(rule.scopes);
            let ports = ports_of(&texts, &scopes, &rule.ports);
            rows.push(RuleRow { kind: "cidr", rule: format!("{addr}/{prefix}"), scopes, ports });
        }
        for (addr, scopes) in self.resolvers()? {
            let scopes = scope_list(scopes);
            let ports = vec!["53".to_string(); scopes.len()];
            let rule = std::net::SocketAddr::new(addr, 53).to_string();
            rows.push(RuleRow { kind: "resolver", rule, scopes, ports });
        }
        rows.sort_by(|a, b| (a.kind, &a.rule).cmp(&(b.kind, &b.rule)));
        Ok(rows)
    }

    /// The trusted resolvers the maps hold, with the scopes that trust each
    /// (an earlier run's, before this run's rules go in).
    pub fn resolvers(&self) -> Result<Vec<(IpAddr, u64)>> {
        let v4 = self.v4.resolver_rows()?.into_iter().map(|(addr, scopes)| (V4::ip(addr), scopes));
        Ok(v4.chain(self.v6.resolver_rows()?.into_iter().map(|(addr, scopes)| (V6::ip(addr), scopes))).collect())
    }

    /// Mode and TTL bounds per configured scope, read back from the maps.
    pub fn scope_configs(&self) -> Result<Vec<(u32, ScopeConfig)>> {
        let scopes = &self.scopes;
        let mut out = Vec::new();
        for index in 0..MAX_SCOPES {
            let config = scopes.get(&index, 0).map_err(|e| MapsError::map(MAP_SCOPES, e))?;
            if config.mode != 0 {
                out.push((index, config));
            }
        }
        Ok(out)
    }
}
