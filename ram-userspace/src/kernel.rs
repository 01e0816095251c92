//! Reading and writing the pinned maps: the policy goes in as rows, learned
//! addresses and counters come out. Used by ramd and by ramctl (which works
//! from the pins even while ramd is down).

use std::{
    collections::{HashMap as StdHashMap, HashSet},
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use aya::maps::{lpm_trie::Key, Array, HashMap, LpmTrie, Map, MapData, PerCpuArray};
use ram_common::{
    maps::*,
    name::{text_from_key, NAME_KEY_LEN},
};
use serde::Serialize;

use crate::{
    error::{Error, Result},
    paths::Paths,
    policy::CompiledPolicy,
    sys::monotonic_ns,
};

pub(crate) fn open(paths: &Paths, name: &str) -> Result<Map> {
    let path = paths.map_pin(name);
    if !path.exists() {
        return Err(Error::MissingMap { map: name.to_string() });
    }
    let data = MapData::from_pin(&path).map_err(|e| Error::map(name, e))?;
    Map::from_map_data(data).map_err(|e| Error::map(name, e))
}

macro_rules! typed {
    ($paths:expr, $name:expr, $ty:ty) => {{
        let map = open($paths, $name)?;
        <$ty>::try_from(map).map_err(|e| Error::map($name, e))?
    }};
}

type NameTrie = LpmTrie<MapData, [u8; NAME_KEY_LEN], NameRule>;

/// Writes the compiled policy into the maps: every desired row first, then
/// the removal of rows no longer wanted, so a rule present before and after
/// never disappears in between.
pub fn apply_rules(paths: &Paths, policy: &CompiledPolicy) -> Result<()> {
    // Port sets first: the rules written next refer to them by number. Only
    // the half this policy uses is written; the other keeps the sets the
    // learned entries refer to until refresh_learned gives them new ids.
    let mut port_sets = typed!(paths, MAP_PORTS, Array<MapData, PortSet>);
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
        port_sets.set(policy.port_base + slot, set, 0).map_err(|e| Error::map(MAP_PORTS, e))?;
    }
    let mut names = typed!(paths, MAP_NAMES, NameTrie);
    let mut wanted = HashSet::new();
    for entry in &policy.names {
        let key = Key::new(entry.len * 8, entry.key);
        names.insert(&key, entry.rule, 0).map_err(|e| Error::map(MAP_NAMES, e))?;
        wanted.insert((entry.len * 8, entry.key));
    }
    let stale: Vec<_> =
        names.keys().filter_map(|k| k.ok()).filter(|k| !wanted.contains(&(k.prefix_len(), k.data()))).collect();
    for key in stale {
        names.remove(&key).map_err(|e| Error::map(MAP_NAMES, e))?;
    }

    let v4: Vec<([u8; 4], u32, CidrRule)> = policy
        .cidrs
        .iter()
        .filter_map(|(c, r)| match c.addr {
            IpAddr::V4(a) => Some((a.octets(), c.prefix as u32, *r)),
            IpAddr::V6(_) => None,
        })
        .collect();
    let v6: Vec<([u8; 16], u32, CidrRule)> = policy
        .cidrs
        .iter()
        .filter_map(|(c, r)| match c.addr {
            IpAddr::V6(a) => Some((a.octets(), c.prefix as u32, *r)),
            IpAddr::V4(_) => None,
        })
        .collect();
    sync_trie(typed!(paths, MAP_CIDR4, LpmTrie<MapData, [u8; 4], CidrRule>), MAP_CIDR4, &v4)?;
    sync_trie(typed!(paths, MAP_CIDR6, LpmTrie<MapData, [u8; 16], CidrRule>), MAP_CIDR6, &v6)?;

    let r4: Vec<([u8; 4], u64)> = policy
        .resolvers
        .iter()
        .filter_map(|(a, s)| match a {
            IpAddr::V4(a) => Some((a.octets(), *s)),
            IpAddr::V6(a) => a.to_ipv4_mapped().map(|v4| (v4.octets(), *s)),
        })
        .collect();
    let r6: Vec<([u8; 16], u64)> = policy
        .resolvers
        .iter()
        .filter_map(|(a, s)| match a {
            IpAddr::V6(a) if a.to_ipv4_mapped().is_none() => Some((a.octets(), *s)),
            _ => None,
        })
        .collect();
    sync_hash(typed!(paths, MAP_RESOLV4, HashMap<MapData, [u8; 4], Resolver>), MAP_RESOLV4, &r4)?;
    sync_hash(typed!(paths, MAP_RESOLV6, HashMap<MapData, [u8; 16], Resolver>), MAP_RESOLV6, &r6)?;

    let mut scopes = typed!(paths, MAP_SCOPES, Array<MapData, ScopeConfig>);
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
                trusted_netns: policy.trusted_netns,
            })
            .unwrap_or_default();
        scopes.set(index, config, 0).map_err(|e| Error::map(MAP_SCOPES, e))?;
    }
    Ok(())
}

fn sync_trie<K: aya::Pod + Eq + std::hash::Hash>(
    mut trie: LpmTrie<MapData, K, CidrRule>,
    name: &str,
    rows: &[(K, u32, CidrRule)],
) -> Result<()> {
    let mut wanted = HashSet::new();
    for (addr, prefix, rule) in rows {
        trie.insert(&Key::new(*prefix, *addr), *rule, 0).map_err(|e| Error::map(name, e))?;
        wanted.insert((*prefix, *addr));
    }
    let stale: Vec<_> =
        trie.keys().filter_map(|k| k.ok()).filter(|k| !wanted.contains(&(k.prefix_len(), k.data()))).collect();
    for key in stale {
        trie.remove(&key).map_err(|e| Error::map(name, e))?;
    }
    Ok(())
}

/// Makes `RAM_FORWARDS` hold exactly `forwards` (new rows first).
pub fn sync_forwards(paths: &Paths, forwards: &std::collections::BTreeMap<ForwardKey, ForwardDest>) -> Result<()> {
    let mut map = typed!(paths, MAP_FORWARDS, HashMap<MapData, ForwardKey, ForwardDest>);
    let present: StdHashMap<ForwardKey, ForwardDest> = map.iter().filter_map(|row| row.ok()).collect();
    for (key, dest) in forwards {
        if present.get(key) != Some(dest) {
            map.insert(key, dest, 0).map_err(|e| Error::map(MAP_FORWARDS, e))?;
        }
    }
    for key in present.keys().filter(|k| !forwards.contains_key(k)) {
        map.remove(key).map_err(|e| Error::map(MAP_FORWARDS, e))?;
    }
    Ok(())
}

fn sync_hash<K: aya::Pod + Eq + std::hash::Hash>(
    mut map: HashMap<MapData, K, Resolver>,
    name: &str,
    rows: &[(K, u64)],
) -> Result<()> {
    for (key, scopes) in rows {
        map.insert(key, Resolver { scopes: *scopes }, 0).map_err(|e| Error::map(name, e))?;
    }
    let wanted: HashSet<K> = rows.iter().map(|(k, _)| *k).collect();
    let stale: Vec<K> = map.keys().filter_map(|k| k.ok()).filter(|k| !wanted.contains(k)).collect();
    for key in stale {
        map.remove(&key).map_err(|e| Error::map(name, e))?;
    }
    Ok(())
}

/// One learned address, as ramctl shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LearnedRow {
    pub scope: u32,
    pub addr: IpAddr,
    /// The question that taught it; None when the hosts map lost it.
    pub host: Option<String>,
    /// Seconds until new connects are denied (negative: expired, awaiting
    /// removal).
    pub expires_in_s: i64,
    pub ttl: u32,
}

fn host_names(paths: &Paths) -> Result<StdHashMap<u64, String>> {
    let hosts = typed!(paths, MAP_HOSTS, HashMap<MapData, u64, NameKey>);
    let mut out = StdHashMap::new();
    for item in hosts.iter() {
        let (id, key) = item.map_err(|e| Error::map(MAP_HOSTS, e))?;
        let mut text = [0u8; NAME_KEY_LEN];
        let n = text_from_key(&key.data, (key.prefix_bits / 8) as usize, &mut text);
        out.insert(id, String::from_utf8_lossy(&text[..n]).into_owned());
    }
    Ok(out)
}

/// Every learned address, with its host and time left.
pub fn learned(paths: &Paths) -> Result<Vec<LearnedRow>> {
    let hosts = host_names(paths)?;
    let now = monotonic_ns() as i128;
    let row = |scope: u32, addr: IpAddr, value: Learned| LearnedRow {
        scope,
        addr,
        host: hosts.get(&value.host_id).cloned(),
        expires_in_s: ((value.expires_ns as i128 - now) / 1_000_000_000) as i64,
        ttl: value.ttl,
    };
    let mut rows = Vec::new();
    let v4 = typed!(paths, MAP_LEARN4, HashMap<MapData, Learn4Key, Learned>);
    for item in v4.iter() {
        let (k, v) = item.map_err(|e| Error::map(MAP_LEARN4, e))?;
        rows.push(row(k.scope, IpAddr::V4(Ipv4Addr::from(k.addr)), v));
    }
    let v6 = typed!(paths, MAP_LEARN6, HashMap<MapData, Learn6Key, Learned>);
    for item in v6.iter() {
        let (k, v) = item.map_err(|e| Error::map(MAP_LEARN6, e))?;
        rows.push(row(k.scope, IpAddr::V6(Ipv6Addr::from(k.addr)), v));
    }
    rows.sort_by(|a, b| (a.scope, &a.host, a.addr).cmp(&(b.scope, &b.host, b.addr)));
    Ok(rows)
}

/// What to do with one learned entry.
enum Fate {
    Keep,
    Remove,
    Rewrite(Learned),
}

/// The two learned maps differ only in their key's address width.
trait LearnKey: aya::Pod + Eq + std::hash::Hash {
    fn scope(&self) -> u32;
}

impl LearnKey for Learn4Key {
    fn scope(&self) -> u32 {
        self.scope
    }
}

impl LearnKey for Learn6Key {
    fn scope(&self) -> u32 {
        self.scope
    }
}

/// Applies `fate` to every entry of one learned map; returns how many were
/// removed. Entries that vanish meanwhile (expired and collected, or a
/// racing update) count as handled.
fn sweep<K: LearnKey>(
    map: &mut HashMap<MapData, K, Learned>,
    hosts: &StdHashMap<u64, String>,
    fate: &mut impl FnMut(u32, Option<&str>, &Learned) -> Fate,
) -> usize {
    let entries: Vec<(K, Learned)> = map.iter().filter_map(|i| i.ok()).collect();
    let mut removed = 0;
    for (key, value) in entries {
        match fate(key.scope(), hosts.get(&value.host_id).map(String::as_str), &value) {
            Fate::Keep => {}
            Fate::Remove => removed += usize::from(map.remove(&key).is_ok()),
            Fate::Rewrite(new) => {
                let _ = map.insert(key, new, BPF_EXIST);
            }
        }
    }
    removed
}

fn sweep_learned(paths: &Paths, mut fate: impl FnMut(u32, Option<&str>, &Learned) -> Fate) -> Result<usize> {
    let hosts = host_names(paths)?;
    let mut v4 = typed!(paths, MAP_LEARN4, HashMap<MapData, Learn4Key, Learned>);
    let mut v6 = typed!(paths, MAP_LEARN6, HashMap<MapData, Learn6Key, Learned>);
    Ok(sweep(&mut v4, &hosts, &mut fate) + sweep(&mut v6, &hosts, &mut fate))
}

/// Removes learned addresses for which `keep` says no; returns how many.
pub fn prune_learned(paths: &Paths, mut keep: impl FnMut(u32, Option<&str>, &Learned) -> bool) -> Result<usize> {
    sweep_learned(paths, |scope, host, value| if keep(scope, host, value) { Fate::Keep } else { Fate::Remove })
}

/// Removes what scope `scope` learned for `addr` when it was learned for
/// `host_id`; returns whether something was removed.
pub fn forget_learned(paths: &Paths, scope: u32, addr: IpAddr, host_id: u64) -> Result<bool> {
    let owned = |value: Result<Learned, aya::maps::MapError>| value.is_ok_and(|v| v.host_id == host_id);
    Ok(match addr {
        IpAddr::V4(v4) => {
            let mut map = typed!(paths, MAP_LEARN4, HashMap<MapData, Learn4Key, Learned>);
            let key = Learn4Key { scope, addr: v4.octets() };
            owned(map.get(&key, 0)) && map.remove(&key).is_ok()
        }
        IpAddr::V6(v6) => {
            let mut map = typed!(paths, MAP_LEARN6, HashMap<MapData, Learn6Key, Learned>);
            let key = Learn6Key { scope, addr: v6.octets() };
            owned(map.get(&key, 0)) && map.remove(&key).is_ok()
        }
    })
}

/// BPF_EXIST: update only an entry that is still there.
const BPF_EXIST: u64 = aya_obj::generated::BPF_EXIST as u64;

/// Revokes learned addresses for which `port_set` says None (the name is no
/// longer allowed there) and rewrites the port set of the others when it
/// changed. Returns how many were revoked.
pub fn refresh_learned(paths: &Paths, mut port_set: impl FnMut(u32, Option<&str>) -> Option<u32>) -> Result<usize> {
    sweep_learned(paths, |scope, host, value| match port_set(scope, host) {
        None => Fate::Remove,
        Some(set) if set != value.port_set => Fate::Rewrite(Learned { port_set: set, ..*value }),
        Some(_) => Fate::Keep,
    })
}

/// Counter totals (summed over CPUs) of one scope, in `counter::NAMES` order.
pub fn counters(paths: &Paths, scope: u32) -> Result<Vec<(&'static str, u64)>> {
    let array = typed!(paths, MAP_COUNTERS, PerCpuArray<MapData, u64>);
    let mut out = Vec::with_capacity(counter::NAMES.len());
    for (slot, name) in counter::NAMES.iter().enumerate() {
        let index = scope * counter::SLOTS + slot as u32;
        let values = array.get(&index, 0).map_err(|e| Error::map(MAP_COUNTERS, e))?;
        out.push((*name, values.iter().sum()));
    }
    Ok(out)
}

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

/// The half of the port-set id space the rules in the maps use (None when
/// no rule has a port set): the next apply must use the other one.
pub fn port_half_in_use(paths: &Paths) -> Result<Option<usize>> {
    let half_of = |ids: &[u8]| {
        ids.iter().find(|id| u32::from(**id) != ANY_PORT).map(|id| usize::from(u32::from(*id) >= PORT_HALF_BASE[1]))
    };
    let names = typed!(paths, MAP_NAMES, NameTrie);
    for item in names.iter() {
        let (_, rule) = item.map_err(|e| Error::map(MAP_NAMES, e))?;
        if let Some(half) = half_of(&rule.full_ports).or_else(|| half_of(&rule.partial_ports)) {
            return Ok(Some(half));
        }
    }
    let c4 = typed!(paths, MAP_CIDR4, LpmTrie<MapData, [u8; 4], CidrRule>);
    for item in c4.iter() {
        let (_, rule) = item.map_err(|e| Error::map(MAP_CIDR4, e))?;
        if let Some(half) = half_of(&rule.ports) {
            return Ok(Some(half));
        }
    }
    let c6 = typed!(paths, MAP_CIDR6, LpmTrie<MapData, [u8; 16], CidrRule>);
    for item in c6.iter() {
        let (_, rule) = item.map_err(|e| Error::map(MAP_CIDR6, e))?;
        if let Some(half) = half_of(&rule.ports) {
            return Ok(Some(half));
        }
    }
    Ok(None)
}

/// The port sets, as text by set id.
fn port_texts(paths: &Paths) -> Result<Vec<String>> {
    let sets = typed!(paths, MAP_PORTS, Array<MapData, PortSet>);
    let mut out = Vec::with_capacity(PORT_SETS as usize);
    for index in 0..PORT_SETS {
        let set = sets.get(&index, 0).map_err(|e| Error::map(MAP_PORTS, e))?;
        out.push(port_set_text(index, &set));
    }
    Ok(out)
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

/// The rules the kernel enforces, read back from the maps.
pub fn rules(paths: &Paths) -> Result<Vec<RuleRow>> {
    let texts = port_texts(paths)?;
    let mut rows = Vec::new();
    let names = typed!(paths, MAP_NAMES, NameTrie);
    for item in names.iter() {
        let (key, rule) = item.map_err(|e| Error::map(MAP_NAMES, e))?;
        let len = (key.prefix_len() / 8) as usize;
        let mut text = [0u8; NAME_KEY_LEN];
        let n = text_from_key(&key.data(), len, &mut text);
        let text = String::from_utf8_lossy(&text[..n]).into_owned();
        // Wildcard keys end in a dot, which reads as a leading dot.
        let (kind, rule_text, scopes, sets) = match text.strip_prefix('.') {
            Some(suffix) => ("wildcard", format!("*.{suffix}"), scope_list(rule.partial_scopes), &rule.partial_ports),
            None => ("host", text.clone(), scope_list(rule.full_scopes), &rule.full_ports),
        };
        let ports = ports_of(&texts, &scopes, sets);
        rows.push(RuleRow { kind, rule: rule_text, scopes, ports });
    }
    let c4 = typed!(paths, MAP_CIDR4, LpmTrie<MapData, [u8; 4], CidrRule>);
    for item in c4.iter() {
        let (key, rule) = item.map_err(|e| Error::map(MAP_CIDR4, e))?;
        let rule_text = format!("{}/{}", Ipv4Addr::from(key.data()), key.prefix_len());
        let scopes = scope_list(rule.scopes);
        let ports = ports_of(&texts, &scopes, &rule.ports);
        rows.push(RuleRow { kind: "cidr", rule: rule_text, scopes, ports });
    }
    let c6 = typed!(paths, MAP_CIDR6, LpmTrie<MapData, [u8; 16], CidrRule>);
    for item in c6.iter() {
        let (key, rule) = item.map_err(|e| Error::map(MAP_CIDR6, e))?;
        let rule_text = format!("{}/{}", Ipv6Addr::from(key.data()), key.prefix_len());
        let scopes = scope_list(rule.scopes);
        let ports = ports_of(&texts, &scopes, &rule.ports);
        rows.push(RuleRow { kind: "cidr", rule: rule_text, scopes, ports });
    }
    let r4 = typed!(paths, MAP_RESOLV4, HashMap<MapData, [u8; 4], Resolver>);
    for item in r4.iter() {
        let (addr, r) = item.map_err(|e| Error::map(MAP_RESOLV4, e))?;
        let scopes = scope_list(r.scopes);
        let ports = vec!["53".to_string(); scopes.len()];
        rows.push(RuleRow { kind: "resolver", rule: format!("{}:53", Ipv4Addr::from(addr)), scopes, ports });
    }
    let r6 = typed!(paths, MAP_RESOLV6, HashMap<MapData, [u8; 16], Resolver>);
    for item in r6.iter() {
        let (addr, r) = item.map_err(|e| Error::map(MAP_RESOLV6, e))?;
        let scopes = scope_list(r.scopes);
        let ports = vec!["53".to_string(); scopes.len()];
        rows.push(RuleRow { kind: "resolver", rule: format!("[{}]:53", Ipv6Addr::from(addr)), scopes, ports });
    }
    rows.sort_by(|a, b| (a.kind, &a.rule).cmp(&(b.kind, &b.rule)));
    Ok(rows)
}

/// Mode and TTL bounds per configured scope, read back from the maps.
pub fn scope_configs(paths: &Paths) -> Result<Vec<(u32, ScopeConfig)>> {
    let scopes = typed!(paths, MAP_SCOPES, Array<MapData, ScopeConfig>);
    let mut out = Vec::new();
    for index in 0..MAX_SCOPES {
        let config = scopes.get(&index, 0).map_err(|e| Error::map(MAP_SCOPES, e))?;
        if config.mode != 0 {
            out.push((index, config));
        }
    }
    Ok(out)
}

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

/// Would a connect from `scope` to `addr`:`port` be allowed now? Judged
/// from the maps, in the kernel's order: resolver, address rule, learned.
pub fn check_addr(paths: &Paths, scope: u32, addr: IpAddr, port: Option<u16>) -> Result<Check> {
    let bit = ram_common::verdict::scope_bit(scope);
    // IPv4-mapped IPv6 is judged as IPv4, as the kernel does.
    let addr = match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(addr),
        v4 => v4,
    };
    let port_sets = typed!(paths, MAP_PORTS, Array<MapData, PortSet>);
    let port_allowed = |set: u32| -> Result<Option<String>> {
        let Some(port) = port else { return Ok(None) };
        let id = set;
        let set = port_sets.get(&id, 0).map_err(|e| Error::map(MAP_PORTS, e))?;
        Ok((!ram_common::verdict::port_allowed(id, Some(&set), port))
            .then(|| format!("port {port} is not among the ports the rule allows ({})", port_set_text(id, &set))))
    };
    let (resolver, cidr_hit, learned_value) = match addr {
        IpAddr::V4(v4) => {
            let resolvers = typed!(paths, MAP_RESOLV4, HashMap<MapData, [u8; 4], Resolver>);
            let cidrs = typed!(paths, MAP_CIDR4, LpmTrie<MapData, [u8; 4], CidrRule>);
            let learned = typed!(paths, MAP_LEARN4, HashMap<MapData, Learn4Key, Learned>);
            (
                resolvers.get(&v4.octets(), 0).ok().is_some_and(|r| r.scopes & bit != 0),
                cidrs.get(&Key::new(32, v4.octets()), 0).ok().filter(|r| r.scopes & bit != 0),
                learned.get(&Learn4Key { scope, addr: v4.octets() }, 0).ok(),
            )
        }
        IpAddr::V6(v6) => {
            let resolvers = typed!(paths, MAP_RESOLV6, HashMap<MapData, [u8; 16], Resolver>);
            let cidrs = typed!(paths, MAP_CIDR6, LpmTrie<MapData, [u8; 16], CidrRule>);
            let learned = typed!(paths, MAP_LEARN6, HashMap<MapData, Learn6Key, Learned>);
            (
                resolvers.get(&v6.octets(), 0).ok().is_some_and(|r| r.scopes & bit != 0),
                cidrs.get(&Key::new(128, v6.octets()), 0).ok().filter(|r| r.scopes & bit != 0),
                learned.get(&Learn6Key { scope, addr: v6.octets() }, 0).ok(),
            )
        }
    };
    if resolver && port.is_none_or(|p| p == 53) {
        return Ok(Check::Resolver);
    }
    if let Some(hit) = cidr_hit {
        if let Some(reason) = port_allowed(hit.ports[scope as usize & 63] as u32)? {
            return Ok(Check::Denied { reason });
        }
        let rule = rules(paths)?
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
        let host = host_names(paths)?.get(&value.host_id).cloned();
        let left = (value.expires_ns as i128 - monotonic_ns() as i128) / 1_000_000_000;
        return Ok(if left > 0 { Check::Learned { host, expires_in_s: left as i64 } } else { Check::Expired { host } });
    }
    let reason = if resolver {
        "a resolver, but only port 53 is open to it"
    } else {
        "no rule allows it and no allowed name resolved to it"
    };
    Ok(Check::Denied { reason: reason.into() })
}

/// Is `host` an allowed name for `scope` (one trie lookup, as the kernel
/// does for a DNS question), and what has it taught so far?
/// Is `host` (on `port`, when given) allowed for `scope`, as the kernel
/// would judge a connect to an address learned for it?
pub fn check_host(paths: &Paths, scope: u32, host: &str, port: Option<u16>) -> Result<Check> {
    let key = ram_common::name::encode_host(host).map_err(|e| Error::Sys {
        what: format!("`{host}` is not a host name"),
        cause: std::io::Error::other(format!("{e:?}")),
    })?;
    if key.wildcard {
        return Ok(Check::Denied { reason: "give a host name, not a pattern".into() });
    }
    let names = typed!(paths, MAP_NAMES, NameTrie);
    let rule = names
        .get(&Key::new(key.prefix_bits(), key.data), 0)
        .ok()
        .filter(|rule| ram_common::verdict::name_allowed(rule, key.len, scope));
    let Some(rule) = rule else {
        return Ok(Check::Denied { reason: "no host rule allows this name".into() });
    };
    if let Some(port) = port {
        // The port set the rule gives the addresses this name teaches.
        let id = ram_common::verdict::name_port_set(&rule, key.len, scope);
        let port_sets = typed!(paths, MAP_PORTS, Array<MapData, PortSet>);
        let set = port_sets.get(&id, 0).ok();
        if !ram_common::verdict::port_allowed(id, set.as_ref(), port) {
            let allowed = set.map_or_else(|| "none".to_string(), |set| port_set_text(id, &set));
            return Ok(Check::Denied {
                reason: format!("port {port} is not among the ports the rule allows ({allowed})"),
            });
        }
    }
    let wanted = host.trim_end_matches('.').to_ascii_lowercase();
    let learned = learned(paths)?
        .into_iter()
        .filter(|r| r.scope == scope && r.host.as_deref() == Some(wanted.as_str()) && r.expires_in_s > 0)
        .map(|r| r.addr)
        .collect();
    Ok(Check::NameAllowed { learned })
}
