//! [`Policy`] → the rows ramd writes into the kernel's maps.
//!
//! Scopes: target `i` of the policy is scope `i`; sets of scopes are bit
//! masks. Names: one trie entry per distinct key, carrying which scopes allow
//! a whole match and which allow names below it (see
//! `ram_common::verdict::name_allowed`). Since the trie returns only the
//! longest matching entry, each entry also carries the wildcard scopes of
//! every shorter wildcard that covers it.

use std::{collections::BTreeMap, net::IpAddr};

use ram_common::{
    maps::{NameRule, MODE_AUDIT, MODE_ENFORCE},
    name::{encode_host, NAME_KEY_LEN},
    verdict::{name_allowed, scope_bit},
};
use serde::Serialize;

use super::{AllowRule, Cidr, Mode, Policy, Selector};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ScopeSettings {
    pub scope: u32,
    pub name: String,
    pub selector: Selector,
    pub mode: Mode,
    pub min_ttl: u32,
    pub max_ttl: u32,
}

impl ScopeSettings {
    pub fn kernel_mode(&self) -> u32 {
        match self.mode {
            Mode::Enforce => MODE_ENFORCE,
            Mode::Audit => MODE_AUDIT,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameEntry {
    pub key: [u8; NAME_KEY_LEN],
    pub len: u32,
    /// The rule as written (lowercased), for display.
    pub pattern: String,
    pub wildcard: bool,
    pub rule: NameRule,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompiledPolicy {
    pub scopes: Vec<ScopeSettings>,
    pub names: Vec<NameEntry>,
    pub cidrs: Vec<(Cidr, u64)>,
    pub resolvers: Vec<(IpAddr, u64)>,
}

impl Policy {
    pub fn compile(&self) -> CompiledPolicy {
        let scopes: Vec<ScopeSettings> = self
            .targets
            .iter()
            .enumerate()
            .map(|(i, t)| ScopeSettings {
                scope: i as u32,
                name: t.name.clone(),
                selector: t.selector.clone(),
                mode: t.mode,
                min_ttl: self.dns.min_ttl,
                max_ttl: self.dns.max_ttl,
            })
            .collect();
        // Top-level rules apply to every target.
        let every_scope = scopes.iter().fold(0u64, |mask, s| mask | scope_bit(s.scope));

        // Distinct keys with the scopes of the exact and wildcard rules behind them.
        let mut by_key: BTreeMap<Vec<u8>, (NameEntry, u64)> = BTreeMap::new();
        let mut cidrs: BTreeMap<Cidr, u64> = BTreeMap::new();
        let rules = self.allow.iter().map(|rule| (rule, every_scope)).chain(
            self.targets
                .iter()
                .enumerate()
                .flat_map(|(i, t)| t.allow.iter().map(move |rule| (rule, scope_bit(i as u32)))),
        );
        for (rule, rule_scopes) in rules {
            match rule {
                AllowRule::Host { pattern, key, .. } => {
                    let bytes = key.data[..key.len as usize].to_vec();
                    let (entry, wildcard_scopes) = by_key.entry(bytes).or_insert_with(|| {
                        (
                            NameEntry {
                                key: key.data,
                                len: key.len,
                                pattern: pattern.clone(),
                                wildcard: key.wildcard,
                                rule: NameRule { key_len: key.len, ..NameRule::default() },
                            },
                            0,
                        )
                    });
                    if key.wildcard {
                        *wildcard_scopes |= rule_scopes;
                    } else {
                        entry.rule.full_scopes |= rule_scopes;
                    }
                }
                AllowRule::Cidr(cidr) => *cidrs.entry(*cidr).or_default() |= rule_scopes,
            }
        }
        let wildcards: Vec<(Vec<u8>, u64)> = by_key
            .iter()
            .filter(|(_, (entry, _))| entry.wildcard)
            .map(|(bytes, (_, scopes))| (bytes.clone(), *scopes))
            .collect();
        let names = by_key
            .into_iter()
            .map(|(bytes, (mut entry, _))| {
                let covering = wildcards
                    .iter()
                    .filter(|(w, _)| bytes.starts_with(w))
                    .fold(0u64, |mask, (_, scopes)| mask | scopes);
                entry.rule.partial_scopes = covering;
                entry.rule.full_scopes |= covering;
                entry
            })
            .collect();
        let resolvers = self.dns.resolvers.iter().map(|addr| (*addr, every_scope)).collect();
        CompiledPolicy { scopes, names, cidrs: cidrs.into_iter().collect(), resolvers }
    }
}

impl CompiledPolicy {
    /// Would the kernel learn answers for `host` in `scope`? Mirrors the
    /// kernel's single longest-prefix lookup, so tests of this function test
    /// the compiled entries the kernel receives.
    pub fn allows_name(&self, scope: u32, host: &str) -> bool {
        let Ok(key) = encode_host(host) else {
            return false;
        };
        if key.wildcard {
            return false;
        }
        let name = &key.data[..key.len as usize];
        self.names
            .iter()
            .filter(|e| name.starts_with(&e.key[..e.len as usize]))
            .max_by_key(|e| e.len)
            .is_some_and(|e| name_allowed(&e.rule, key.len, scope))
    }

    pub fn scope_named(&self, name: &str) -> Option<&ScopeSettings> {
        self.scopes.iter().find(|s| s.name == name)
    }
}
