//! One address family's three maps (address rules, learned addresses,
//! trusted resolvers), written once for IPv4 and IPv6 over
//! `ram_common::family::Family`.

use std::collections::HashSet;

use aya::maps::{lpm_trie::Key, HashMap, LpmTrie, MapData};
use ram_common::{
    family::{Family, V4, V6},
    maps::{CidrRule, Learned, Resolver, MAP_CIDR4, MAP_CIDR6, MAP_LEARN4, MAP_LEARN6, MAP_RESOLV4, MAP_RESOLV6},
};

use super::typed;
use crate::{
    maps::{MapsError, Result},
    paths::Paths,
    policy::CompiledPolicy,
};

/// A family as the pinned maps hold it: its key types are plain data, and
/// its maps have names.
pub(crate) trait MapFamily: Family<Bytes: aya::Pod, LearnKey: aya::Pod + Eq + std::hash::Hash> {
    const CIDR_MAP: &'static str;
    const LEARN_MAP: &'static str;
    const RESOLV_MAP: &'static str;
}

impl MapFamily for V4 {
    const CIDR_MAP: &'static str = MAP_CIDR4;
    const LEARN_MAP: &'static str = MAP_LEARN4;
    const RESOLV_MAP: &'static str = MAP_RESOLV4;
}

impl MapFamily for V6 {
    const CIDR_MAP: &'static str = MAP_CIDR6;
    const LEARN_MAP: &'static str = MAP_LEARN6;
    const RESOLV_MAP: &'static str = MAP_RESOLV6;
}

/// The three maps of one family.
pub(crate) struct FamilyMaps<F: MapFamily> {
    pub(super) cidr: LpmTrie<MapData, F::Bytes, CidrRule>,
    pub(super) learn: HashMap<MapData, F::LearnKey, Learned>,
    pub(super) resolv: HashMap<MapData, F::Bytes, Resolver>,
}

impl<F: MapFamily> FamilyMaps<F> {
    pub(super) fn open(paths: &Paths) -> Result<Self> {
        Ok(FamilyMaps {
            cidr: typed(paths, F::CIDR_MAP)?,
            learn: typed(paths, F::LEARN_MAP)?,
            resolv: typed(paths, F::RESOLV_MAP)?,
        })
    }

    /// Every address rule: (address, prefix length, rule).
    pub(super) fn cidr_rows(&self) -> Result<Vec<(F::Bytes, u32, CidrRule)>> {
        let mut rows = Vec::new();
        for item in self.cidr.iter() {
            let (key, rule) = item.map_err(|e| MapsError::map(F::CIDR_MAP, e))?;
            rows.push((key.data(), key.prefix_len(), rule));
        }
        Ok(rows)
    }

    /// Every trusted resolver, with the scopes that trust it.
    pub(super) fn resolver_rows(&self) -> Result<Vec<(F::Bytes, u64)>> {
        let mut rows = Vec::new();
        for item in self.resolv.iter() {
            let (addr, resolver) = item.map_err(|e| MapsError::map(F::RESOLV_MAP, e))?;
            rows.push((addr, resolver.scopes));
        }
        Ok(rows)
    }

    /// Every learned entry: (scope, address, entry).
    pub(super) fn learned_rows(&self) -> Result<Vec<(u32, F::Bytes, Learned)>> {
        let mut rows = Vec::new();
        for item in self.learn.iter() {
            let (key, value) = item.map_err(|e| MapsError::map(F::LEARN_MAP, e))?;
            let (scope, addr) = F::learn_key_parts(&key);
            rows.push((scope, addr, value));
        }
        Ok(rows)
    }

    /// What `scope` learned for `addr`, if anything (a map that cannot be
    /// read holds nothing).
    pub(super) fn learned_entry(&self, scope: u32, addr: F::Bytes) -> Option<Learned> {
        self.learn.get(&F::learn_key(scope, addr), 0).ok()
    }

    /// The longest address rule holding `addr`.
    pub(super) fn cidr_rule(&self, addr: F::Bytes) -> Option<CidrRule> {
        self.cidr.get(&Key::new(F::BITS, addr), 0).ok()
    }

    /// The scopes that trust `addr` as a resolver (0: none).
    pub(super) fn resolver_scopes(&self, addr: F::Bytes) -> u64 {
        self.resolv.get(&addr, 0).map_or(0, |r| r.scopes)
    }

    /// Removes what `scope` learned for `addr` when it was learned for
    /// `host_id`; whether something was removed.
    pub(super) fn forget(&mut self, scope: u32, addr: F::Bytes, host_id: u64) -> bool {
        let key = F::learn_key(scope, addr);
        self.learn.get(&key, 0).is_ok_and(|v| v.host_id == host_id) && self.learn.remove(&key).is_ok()
    }

    /// Makes the address rules and resolvers of this family those of
    /// `policy` (stale rows out first, then every wanted row).
    pub(super) fn apply(&mut self, policy: &CompiledPolicy) -> Result<()> {
        let cidrs: Vec<(F::Bytes, u32, CidrRule)> = policy
            .cidrs
            .iter()
            .filter_map(|(c, r)| F::written(c.addr).map(|addr| (addr, c.prefix as u32, *r)))
            .collect();
        let wanted: HashSet<_> = cidrs.iter().map(|(addr, prefix, _)| (*prefix, *addr)).collect();
        let stale: Vec<_> =
            self.cidr.keys().filter_map(|k| k.ok()).filter(|k| !wanted.contains(&(k.prefix_len(), k.data()))).collect();
        for key in stale {
            self.cidr.remove(&key).map_err(|e| MapsError::map(F::CIDR_MAP, e))?;
        }
        for (addr, prefix, rule) in &cidrs {
            self.cidr.insert(&Key::new(*prefix, *addr), *rule, 0).map_err(|e| MapsError::map(F::CIDR_MAP, e))?;
        }

        // A resolver written as ::ffff:a.b.c.d is an IPv4 one.
        let resolvers: Vec<(F::Bytes, u64)> =
            policy.resolvers.iter().filter_map(|(addr, scopes)| F::judged(*addr).map(|a| (a, *scopes))).collect();
        let wanted: HashSet<F::Bytes> = resolvers.iter().map(|(addr, _)| *addr).collect();
        let stale: Vec<F::Bytes> = self.resolv.keys().filter_map(|k| k.ok()).filter(|k| !wanted.contains(k)).collect();
        for key in stale {
            self.resolv.remove(&key).map_err(|e| MapsError::map(F::RESOLV_MAP, e))?;
        }
        for (addr, scopes) in &resolvers {
            self.resolv.insert(addr, Resolver { scopes: *scopes }, 0).map_err(|e| MapsError::map(F::RESOLV_MAP, e))?;
        }
        Ok(())
    }
}
