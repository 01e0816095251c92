//! [`Policy`] → the rows ramd writes into the kernel's maps.
//!
//! Scopes: each target has a number (see [`scope_numbers`]: a target keeps
//! its number from run to run, by name); sets of scopes are bit masks. Names: one trie entry per distinct key, carrying which scopes allow
//! a whole match and which allow names below it (see
//! `ram_common::verdict::name_allowed`). Since the trie returns only the
//! longest matching entry, each entry also carries the wildcard scopes of
//! every shorter wildcard that covers it.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use ram_common::{
    maps::{
        CidrRule, NameRule, ANY_PORT, MODE_AUDIT, MODE_ENFORCE, PORTS_PER_SET, PORT_HALF_BASE, PORT_SETS_PER_HALF,
        RESOLVERS_CAPACITY, SCOPE_PASS_OTHER_NETNS, SCOPE_PASS_RELAYS, TRUSTED_NETNS_ANY,
    },
    name::{encode_host, NAME_KEY_LEN},
    verdict::{name_allowed, scope_bit},
};
use serde::Serialize;

use super::{AllowRule, Cidr, Containers, Limits, Mode, Policy, PolicyError, Runtime, Selector};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ScopeSettings {
    pub scope: u32,
    pub name: String,
    pub selector: Selector,
    pub mode: Mode,
    pub min_ttl: u32,
    pub max_ttl: u32,
    /// Addresses learned from one answer at most.
    pub max_addresses: u32,
    /// How long after its query an answer still teaches (ms).
    pub answer_window_ms: u32,
    pub containers: Containers,
    /// `rootless_helpers = "pass"`.
    pub rootless_helpers: bool,
}

impl ScopeSettings {
    pub fn kernel_mode(&self) -> u32 {
        match self.mode {
            Mode::Enforce => MODE_ENFORCE,
            Mode::Audit => MODE_AUDIT,
        }
    }

    /// `ScopeConfig::trusted_netns`: a container target trusts each
    /// container's own namespace; every other target the runtime's.
    pub fn trusted_netns(&self, runtime_netns: u64) -> u64 {
        if self.selector.containers().is_some() {
            TRUSTED_NETNS_ANY
        } else {
            runtime_netns
        }
    }

    /// The load-time (level, runtime) of a container target's programs;
    /// (0, 0) for a runtime target (see `ram_common::maps::MEMBER_LEVEL_GLOBAL`).
    pub fn membership(&self) -> (u32, u32) {
        match self.selector.containers() {
            Some(c) => (c.runtime.level(), c.runtime.kernel_id()),
            None => (0, 0),
        }
    }

    /// `ScopeConfig::flags`.
    pub fn flags(&self) -> u32 {
        if self.selector.containers().is_some() {
            // A container's sockets are all its own: every one is judged.
            return 0;
        }
        match self.containers {
            Containers::Pass if self.rootless_helpers => SCOPE_PASS_OTHER_NETNS | SCOPE_PASS_RELAYS,
            Containers::Pass => SCOPE_PASS_OTHER_NETNS,
            Containers::Enforce => 0,
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
    pub cidrs: Vec<(Cidr, CidrRule)>,
    pub resolvers: Vec<(IpAddr, u64)>,
    /// Port sets with ids `port_base..` (set 0, any port, is implicit).
    pub port_sets: Vec<BTreeSet<u16>>,
    /// Id of the first port set: the base of the half of the id space this
    /// policy uses (see `ram_common::maps::PORT_HALF_BASE`).
    pub port_base: u32,
    /// The cookie of the network namespace whose DNS is trusted: a host
    /// fact the caller fills in (see `netns::cookie`); 0 trusts none.
    pub trusted_netns: u64,
}

/// What a scope number stays with: a target's name and what it enforces
/// (its selector). A target whose selector changes is another scope: its
/// old programs still enforce the old cgroups until the new ones attach,
/// and must not read rules meant for other cgroups meanwhile.
pub fn scope_identity(name: &str, selector: &Selector) -> String {
    format!("{name}\n{}", serde_json::to_string(selector).unwrap_or_default())
}

/// The scope number of each target (`names`: their identities, see
/// [`scope_identity`], in policy order), given the numbers of the targets
/// in effect (`previous`, by identity). Programs have their scope number
/// built in, and the rules are written for the new numbers before the new
/// programs replace the old ones: a target that kept its name and selector
/// keeps its number, so that its old programs read its own new rules
/// meanwhile, never another target's. A new target takes the
/// lowest number no target had or has (a number just given up may still
/// be in use by its old programs); only when none is left, a given-up one.
pub fn scope_numbers(names: &[&str], previous: &BTreeMap<String, u32>) -> Vec<u32> {
    let limit = ram_common::maps::MAX_SCOPES;
    let mut taken = BTreeSet::new();
    let mut numbers: Vec<Option<u32>> =
        names.iter().map(|name| previous.get(*name).copied().filter(|n| *n < limit && taken.insert(*n))).collect();
    let given_up: BTreeSet<u32> = previous.values().copied().filter(|n| !taken.contains(n)).collect();
    for number in numbers.iter_mut().filter(|n| n.is_none()) {
        let fresh = (0..limit).find(|n| !taken.contains(n) && !given_up.contains(n));
        let any = || (0..limit).find(|n| !taken.contains(n));
        // The parser allows at most MAX_SCOPES targets, so one is free.
        let chosen = fresh.or_else(any).unwrap_or(0);
        taken.insert(chosen);
        *number = Some(chosen);
    }
    numbers.into_iter().map(|n| n.unwrap_or(0)).collect()
}

impl Policy {
    /// [`Policy::compile_numbered`] for a first run: targets numbered in order.
    pub fn compile(&self) -> Result<CompiledPolicy, PolicyError> {
        self.compile_numbered(&BTreeMap::new())
    }

    /// Fails only when port lists do not fit the kernel's port sets.
    /// `previous`: the scope numbers of the targets in effect, by
    /// [`scope_identity`].
    pub fn compile_numbered(&self, previous: &BTreeMap<String, u32>) -> Result<CompiledPolicy, PolicyError> {
        let identities: Vec<String> = self.targets.iter().map(|t| scope_identity(&t.name, &t.selector)).collect();
        let names: Vec<&str> = identities.iter().map(String::as_str).collect();
        let numbers = scope_numbers(&names, previous);
        let scopes: Vec<ScopeSettings> = self
            .targets
            .iter()
            .enumerate()
            .map(|(i, t)| ScopeSettings {
                scope: numbers[i],
                name: t.name.clone(),
                selector: t.selector.clone(),
                mode: t.mode,
                min_ttl: self.dns.min_ttl,
                max_addresses: self.limits.addresses_per_answer,
                answer_window_ms: self.dns.answer_window_ms,
                max_ttl: self.dns.max_ttl,
                containers: t.containers,
                rootless_helpers: t.rootless_helpers,
            })
            .collect();
        // Top-level rules apply to every target.
        let all: Vec<u32> = scopes.iter().map(|s| s.scope).collect();
        let rules = self.allow.iter().map(|rule| (rule, all.clone())).chain(
            self.targets.iter().zip(&numbers).flat_map(|(t, n)| t.allow.iter().map(move |rule| (rule, vec![*n]))),
        );

        // Distinct keys, with what exact and wildcard rules grant each scope.
        struct KeyRules {
            entry: NameEntry,
            exact: Grants,
            wildcard: Grants,
        }
        let mut by_key: BTreeMap<Vec<u8>, KeyRules> = BTreeMap::new();
        let mut cidr_grants: BTreeMap<Cidr, Grants> = BTreeMap::new();
        for (rule, rule_scopes) in rules {
            match rule {
                AllowRule::Host { pattern, key, ports, .. } => {
                    let bytes = key.data[..key.len as usize].to_vec();
                    let rules = by_key.entry(bytes).or_insert_with(|| KeyRules {
                        entry: NameEntry {
                            key: key.data,
                            len: key.len,
                            pattern: pattern.clone(),
                            wildcard: key.wildcard,
                            rule: NameRule { key_len: key.len, ..NameRule::default() },
                        },
                        exact: Grants::default(),
                        wildcard: Grants::default(),
                    });
                    let grants = if key.wildcard { &mut rules.wildcard } else { &mut rules.exact };
                    for scope in &rule_scopes {
                        grants.grant(*scope, ports.as_deref());
                    }
                }
                AllowRule::Cidr { block, ports } => {
                    let grants = cidr_grants.entry(*block).or_default();
                    for scope in &rule_scopes {
                        grants.grant(*scope, ports.as_deref());
                    }
                }
            }
        }
        let mut port_sets = PortSets::default();
        // Wildcard keys by length: a key is covered by the wildcards whose
        // key is a prefix of it, found with one lookup per wildcard length
        // (there are few), not a scan of every wildcard per key.
        let mut wildcards: BTreeMap<usize, std::collections::HashMap<Vec<u8>, Grants>> = BTreeMap::new();
        for (bytes, rules) in by_key.iter().filter(|(_, r)| r.entry.wildcard) {
            wildcards.entry(bytes.len()).or_default().insert(bytes.clone(), rules.wildcard.clone());
        }
        let mut names = Vec::with_capacity(by_key.len());
        for (bytes, rules) in by_key {
            let mut entry = rules.entry;
            // The trie returns only the longest match: fold in every shorter
            // wildcard that covers this key.
            let mut partial = Grants::default();
            for (len, keys) in wildcards.range(..=bytes.len()) {
                if let Some(grants) = keys.get(&bytes[..*len]) {
                    partial.merge(grants);
                }
            }
            let mut full = rules.exact.clone();
            full.merge(&partial);
            entry.rule.partial_scopes = partial.scopes();
            entry.rule.full_scopes = full.scopes();
            for (scope, access) in &partial.0 {
                entry.rule.partial_ports[*scope as usize & 63] = port_sets.id(&self.source, &entry.pattern, access)?;
            }
            for (scope, access) in &full.0 {
                entry.rule.full_ports[*scope as usize & 63] = port_sets.id(&self.source, &entry.pattern, access)?;
            }
            names.push(entry);
        }
        let mut cidrs = Vec::with_capacity(cidr_grants.len());
        for (block, own) in &cidr_grants {
            // The trie returns only the longest block holding an address:
            // fold in every shorter block that holds this one (red team 15:
            // a /24 for port 443 hid a /16 for any port, and another
            // target's /16 a target's /8), one lookup per shorter length.
            let mut grants = own.clone();
            for prefix in 0..block.prefix {
                if let Some(covering) = cidr_grants.get(&block.widened(prefix)) {
                    grants.merge(covering);
                }
            }
            let block = *block;
            let mut rule = CidrRule { scopes: grants.scopes(), ..CidrRule::default() };
            for (scope, access) in &grants.0 {
                rule.ports[*scope as usize & 63] = port_sets.id(&self.source, &block.to_string(), access)?;
            }
            cidrs.push((block, rule));
        }
        let every_scope = all.iter().fold(0u64, |mask, s| mask | scope_bit(*s));
        let mut resolvers: Vec<(IpAddr, u64)> = self.dns.resolvers.iter().map(|addr| (*addr, every_scope)).collect();
        // Docker's embedded DNS server answers containers on user-defined
        // networks at 127.0.0.11 in their own namespace (dockerd answers,
        // from outside the container's cgroup): trusted for docker
        // container targets only. A container cannot answer as it: egress
        // refuses what a judged socket sends from a resolver's address and
        // port 53.
        let docker_containers: u64 = scopes
            .iter()
            .filter(|s| s.selector.containers().is_some_and(|c| c.runtime == Runtime::Docker))
            .fold(0, |mask, s| mask | scope_bit(s.scope));
        if docker_containers != 0 {
            // And what Docker gives containers on its default bridge.
            let extra =
                std::iter::once(IpAddr::from([127, 0, 0, 11])).chain(self.dns.container_resolvers.iter().copied());
            for addr in extra {
                match resolvers.iter_mut().find(|(a, _)| *a == addr) {
                    Some((_, mask)) => *mask |= docker_containers,
                    None => resolvers.push((addr, docker_containers)),
                }
            }
        }
        let compiled = CompiledPolicy {
            scopes,
            names,
            cidrs,
            resolvers,
            port_sets: port_sets.sets,
            port_base: PORT_HALF_BASE[0],
            trusted_netns: 0,
        };
        compiled.fits(&self.limits, &self.source, "")?;
        Ok(compiled)
    }
}

impl CompiledPolicy {
    /// Refuses rules the kernel's maps, sized by `limits`, cannot hold,
    /// naming the field and the limit, so that --check-config, start and
    /// reload all say so before anything is written (never a raw map
    /// error). `later`: what to do when the limit is the running ramd's.
    pub fn fits(&self, limits: &Limits, source: &str, later: &str) -> Result<(), PolicyError> {
        let v4 = |a: &IpAddr| a.is_ipv4() || matches!(a, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some());
        let v4_cidrs = self.cidrs.iter().filter(|(c, _)| c.addr.is_ipv4()).count();
        let v4_resolvers = self.resolvers.iter().filter(|(a, _)| v4(a)).count();
        let host_rules = "allow[].host";
        let address_rules = "allow[].cidr";
        for (count, limit, what, field, setting) in [
            (
                self.names.len(),
                limits.host_rules,
                "distinct host names (exact and wildcard)",
                host_rules,
                Some("host_rules"),
            ),
            (v4_cidrs, limits.address_rules, "distinct IPv4 address rules", address_rules, Some("address_rules")),
            (
                self.cidrs.len() - v4_cidrs,
                limits.address_rules,
                "distinct IPv6 address rules",
                address_rules,
                Some("address_rules"),
            ),
            (v4_resolvers, RESOLVERS_CAPACITY, "IPv4 resolvers", "dns.resolvers", None),
            (self.resolvers.len() - v4_resolvers, RESOLVERS_CAPACITY, "IPv6 resolvers", "dns.resolvers", None),
        ] {
            if count > limit as usize {
                let raise = setting.map(|s| format!(" ([limits] {s}{later})")).unwrap_or_default();
                return Err(PolicyError::Invalid {
                    file: source.to_string(),
                    field: field.to_string(),
                    value: format!("{count} {what}"),
                    reason: format!("the kernel's map holds at most {limit}{raise}"),
                });
            }
        }
        Ok(())
    }
}

/// The resolvers `before` trusted that `after` no longer trusts, each with
/// the scopes (a bit mask) that lost it, in address order. Rows are
/// (resolver, scopes) as in [`CompiledPolicy::resolvers`]; an IPv4 address
/// and its IPv4-mapped IPv6 form are one resolver (the kernel keys both
/// alike). A resolver added, or trusted by more scopes, loses nothing.
pub fn lost_resolvers(before: &[(IpAddr, u64)], after: &[(IpAddr, u64)]) -> Vec<(IpAddr, u64)> {
    let by_addr = |rows: &[(IpAddr, u64)]| {
        let mut out: BTreeMap<IpAddr, u64> = BTreeMap::new();
        for (addr, scopes) in rows {
            *out.entry(addr.to_canonical()).or_default() |= *scopes;
        }
        out
    };
    let after = by_addr(after);
    by_addr(before)
        .into_iter()
        .filter_map(|(addr, scopes)| {
            let lost = scopes & !after.get(&addr).copied().unwrap_or(0);
            (lost != 0).then_some((addr, lost))
        })
        .collect()
}

/// `a` and `b` together: one row per resolver (an IPv4 address and its
/// IPv4-mapped form as one), with the scopes of both.
pub fn merge_resolver_rows(a: &[(IpAddr, u64)], b: &[(IpAddr, u64)]) -> Vec<(IpAddr, u64)> {
    let mut out: BTreeMap<IpAddr, u64> = BTreeMap::new();
    for (addr, scopes) in a.iter().chain(b) {
        *out.entry(addr.to_canonical()).or_default() |= *scopes;
    }
    out.into_iter().filter(|(_, scopes)| *scopes != 0).collect()
}

/// Which ports a scope may use towards a destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    AnyPort,
    Ports(BTreeSet<u16>),
}

/// What the rules behind one key (or address block) grant, per scope.
#[derive(Clone, Debug, Default)]
struct Grants(BTreeMap<u32, Access>);

impl Grants {
    fn grant(&mut self, scope: u32, ports: Option<&[u16]>) {
        let access = match ports {
            None => Access::AnyPort,
            Some(ports) => Access::Ports(ports.iter().copied().collect()),
        };
        self.add(scope, &access);
    }

    /// Rules add up: any port beats a list, lists join.
    fn add(&mut self, scope: u32, access: &Access) {
        let merged = match (self.0.remove(&scope), access) {
            (None, a) => a.clone(),
            (Some(Access::AnyPort), _) | (_, Access::AnyPort) => Access::AnyPort,
            (Some(Access::Ports(mut have)), Access::Ports(more)) => {
                have.extend(more);
                Access::Ports(have)
            }
        };
        self.0.insert(scope, merged);
    }

    fn merge(&mut self, other: &Grants) {
        for (scope, access) in &other.0 {
            self.add(*scope, access);
        }
    }

    fn scopes(&self) -> u64 {
        self.0.keys().fold(0u64, |mask, s| mask | scope_bit(*s))
    }
}

/// Interned port sets; set 0 is "any port".
#[derive(Default)]
struct PortSets {
    sets: Vec<BTreeSet<u16>>,
}

impl PortSets {
    fn id(&mut self, file: &str, rule: &str, access: &Access) -> Result<u8, PolicyError> {
        let Access::Ports(ports) = access else { return Ok(0) };
        if ports.len() > PORTS_PER_SET {
            return Err(PolicyError::Invalid {
                file: file.to_string(),
                field: "ports".into(),
                value: format!("\"{rule}\""),
                reason: format!(
                    "the rules for this destination add up to {} ports; at most {PORTS_PER_SET}",
                    ports.len()
                ),
            });
        }
        if let Some(i) = self.sets.iter().position(|s| s == ports) {
            return Ok(i as u8 + 1);
        }
        if self.sets.len() >= PORT_SETS_PER_HALF as usize {
            return Err(PolicyError::Invalid {
                file: file.to_string(),
                field: "ports".into(),
                value: format!("\"{rule}\""),
                reason: format!("more than {PORT_SETS_PER_HALF} distinct port lists"),
            });
        }
        self.sets.push(ports.clone());
        Ok(self.sets.len() as u8)
    }
}

impl CompiledPolicy {
    /// Moves the port sets (and every rule's reference to them) to `half`
    /// of the id space.
    pub fn place_port_sets(&mut self, half: usize) {
        let (from, to) = (self.port_base, PORT_HALF_BASE[half & 1]);
        let move_id = |id: &mut u8| {
            if u32::from(*id) != ANY_PORT {
                *id = (u32::from(*id) - from + to) as u8;
            }
        };
        for entry in &mut self.names {
            entry.rule.full_ports.iter_mut().chain(entry.rule.partial_ports.iter_mut()).for_each(move_id);
        }
        for (_, rule) in &mut self.cidrs {
            rule.ports.iter_mut().for_each(move_id);
        }
        self.port_base = to;
    }

    /// The half of the port-set id space this policy uses.
    pub fn port_half(&self) -> usize {
        usize::from(self.port_base == PORT_HALF_BASE[1])
    }

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

    /// The port set id the kernel would store with an answer for `host` in
    /// `scope`; None when the name is not allowed there.
    pub fn name_port_set(&self, scope: u32, host: &str) -> Option<u32> {
        let key = encode_host(host).ok().filter(|k| !k.wildcard)?;
        let name = &key.data[..key.len as usize];
        let entry = self.names.iter().filter(|e| name.starts_with(&e.key[..e.len as usize])).max_by_key(|e| e.len)?;
        name_allowed(&entry.rule, key.len, scope)
            .then(|| ram_common::verdict::name_port_set(&entry.rule, key.len, scope))
    }
}
