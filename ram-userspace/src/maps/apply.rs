//! The compiled policy into the maps, and the runtime's forwarders.

use std::collections::{BTreeMap, HashMap as StdHashMap, HashSet};

use aya::maps::lpm_trie::Key;
use ram_common::maps::*;

use super::Maps;
use crate::{
    maps::{MapsError, Result},
    policy::CompiledPolicy,
};

impl Maps {
    /// Writes the compiled policy into the maps: first the removal of rows no
    /// longer wanted, then every wanted row. A rule present before and after
    /// never disappears in between; the maps never hold more rows than the
    /// new policy has (which `CompiledPolicy::fits` checked), so they cannot
    /// fill half way; and a rule the new policy drops is gone before any
    /// rule it adds is in.
    pub fn apply_rules(&mut self, policy: &CompiledPolicy) -> Result<()> {
        // Port sets first: the rules written next refer to them by number. Only
        // the half this policy uses is written; the other keeps the sets the
        // learned entries refer to until refresh_learned gives them new ids.
        let port_sets = &mut self.ports;
        for slot in 0..PORT_SETS_PER_HALF {
            let set = match policy.port_sets.get(slot as usize) {
                Some(ports) => {
                    let mut set = PortSet { count: ports.len() as u32, ..PortSet::default() };
                    for (slot, port) in set.ports.iter_mut().zip(ports) {
                        *slot = *port;
                    }
                    set
                }
                None => PortSet::default(),
            };
            port_sets.set(policy.port_base + slot, set, 0).map_err(|e| MapsError::map(MAP_PORTS, e))?;
        }
        let names = &mut self.names;
        let wanted: HashSet<_> = policy.names.iter().map(|entry| (entry.len * 8, entry.key)).collect();
        let stale: Vec<_> =
            names.keys().filter_map(|k| k.ok()).filter(|k| !wanted.contains(&(k.prefix_len(), k.data()))).collect();
        for key in stale {
            names.remove(&key).map_err(|e| MapsError::map(MAP_NAMES, e))?;
        }
        for entry in &policy.names {
            let key = Key::new(entry.len * 8, entry.key);
            names.insert(&key, entry.rule, 0).map_err(|e| MapsError::map(MAP_NAMES, e))?;
        }

        self.v4.apply(policy)?;
        self.v6.apply(policy)?;

        let scopes = &mut self.scopes;
        for index in 0..MAX_SCOPES {
            let config = policy
                .scopes
                .iter()
                .find(|s| s.scope == index)
                .map(|s| ScopeConfig {
                    mode: s.kernel_mode(),
                    min_ttl: s.min_ttl,
                    max_ttl: s.max_ttl,
                    max_addresses: s.max_addresses,
                    answer_window_ms: s.answer_window_ms,
                    flags: s.flags(),
                    trusted_netns: s.trusted_netns(policy.trusted_netns),
                })
                .unwrap_or_default();
            scopes.set(index, config, 0).map_err(|e| MapsError::map(MAP_SCOPES, e))?;
        }
        Ok(())
    }

    /// Makes `RAM_FORWARDS` hold exactly `forwards` (new rows first).
    pub fn sync_forwards(&mut self, forwards: &BTreeMap<ForwardKey, ForwardDest>) -> Result<()> {
        let map = &mut self.forwards;
        let present: StdHashMap<ForwardKey, ForwardDest> = map.iter().filter_map(|row| row.ok()).collect();
        for (key, dest) in forwards {
            if present.get(key) != Some(dest) {
                map.insert(key, dest, 0).map_err(|e| MapsError::map(MAP_FORWARDS, e))?;
            }
        }
        for key in present.keys().filter(|k| !forwards.contains_key(k)) {
            map.remove(key).map_err(|e| MapsError::map(MAP_FORWARDS, e))?;
        }
        Ok(())
    }
}
