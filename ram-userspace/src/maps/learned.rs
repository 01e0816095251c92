//! Learned addresses: read for ramctl, swept of the expired, revoked when
//! a rule goes, forgotten when ramd's own parser disagrees.

use std::{collections::HashMap as StdHashMap, net::IpAddr};

use ram_common::{
    family::{Family, V4, V6},
    maps::{Learned, MAP_HOSTS},
    name::{text_from_key, NAME_KEY_LEN},
};
use serde::Serialize;

use super::{
    family::{FamilyMaps, MapFamily},
    Maps,
};
use crate::{
    maps::{MapsError, Result},
    sys::monotonic_ns,
};

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

/// BPF_EXIST: update only an entry that is still there.
const BPF_EXIST: u64 = aya_obj::generated::BPF_EXIST as u64;

/// What to do with one learned entry.
enum Fate {
    Keep,
    Remove,
    Rewrite(Learned),
}

/// Applies `fate` to every entry of one learned map; returns how many were
/// removed. Entries that vanish meanwhile (expired and collected, or a
/// racing update) count as handled.
fn sweep<F: MapFamily>(
    maps: &mut FamilyMaps<F>,
    hosts: &StdHashMap<u64, String>,
    fate: &mut impl FnMut(u32, Option<&str>, &Learned) -> Fate,
) -> usize {
    let map = &mut maps.learn;
    let entries: Vec<(F::LearnKey, Learned)> = map.iter().filter_map(|i| i.ok()).collect();
    let mut removed = 0;
    for (key, value) in entries {
        let (scope, _) = F::learn_key_parts(&key);
        match fate(scope, hosts.get(&value.host_id).map(String::as_str), &value) {
            Fate::Keep => {}
            Fate::Remove => removed += usize::from(map.remove(&key).is_ok()),
            Fate::Rewrite(new) => {
                let _ = map.insert(key, new, BPF_EXIST);
            }
        }
    }
    removed
}

impl Maps {
    /// The hosts map as text, by host id.
    pub(super) fn host_names(&self) -> Result<StdHashMap<u64, String>> {
        let hosts = &self.hosts;
        let mut out = StdHashMap::new();
        for item in hosts.iter() {
            let (id, key) = item.map_err(|e| MapsError::map(MAP_HOSTS, e))?;
            let mut text = [0u8; NAME_KEY_LEN];
            let n = text_from_key(&key.data, (key.prefix_bits / 8) as usize, &mut text);
            out.insert(id, String::from_utf8_lossy(&text[..n]).into_owned());
        }
        Ok(out)
    }

    /// Every learned address, with its host and time left.
    pub fn learned(&self) -> Result<Vec<LearnedRow>> {
        let hosts = self.host_names()?;
        let now = monotonic_ns() as i128;
        let row = |scope: u32, addr: IpAddr, value: Learned| LearnedRow {
            scope,
            addr,
            host: hosts.get(&value.host_id).cloned(),
            expires_in_s: ((value.expires_ns as i128 - now) / 1_000_000_000) as i64,
            ttl: value.ttl,
        };
        let mut rows = Vec::new();
        for (scope, addr, value) in self.v4.learned_rows()? {
            rows.push(row(scope, V4::ip(addr), value));
        }
        for (scope, addr, value) in self.v6.learned_rows()? {
            rows.push(row(scope, V6::ip(addr), value));
        }
        rows.sort_by(|a, b| (a.scope, &a.host, a.addr).cmp(&(b.scope, &b.host, b.addr)));
        Ok(rows)
    }

    fn sweep_learned(&mut self, mut fate: impl FnMut(u32, Option<&str>, &Learned) -> Fate) -> Result<usize> {
        let hosts = self.host_names()?;
        Ok(sweep(&mut self.v4, &hosts, &mut fate) + sweep(&mut self.v6, &hosts, &mut fate))
    }

    /// Removes learned addresses for which `keep` says no; returns how many.
    pub fn prune_learned(&mut self, mut keep: impl FnMut(u32, Option<&str>, &Learned) -> bool) -> Result<usize> {
        self.sweep_learned(|scope, host, value| if keep(scope, host, value) { Fate::Keep } else { Fate::Remove })
    }

    /// Removes what scope `scope` learned for `addr` when it was learned for
    /// `host_id`; returns whether something was removed.
    pub fn forget_learned(&mut self, scope: u32, addr: IpAddr, host_id: u64) -> Result<bool> {
        // As the answer wrote it: the kernel learns an AAAA record in the
        // IPv6 map whatever it holds.
        Ok(match addr {
            IpAddr::V4(v4) => self.v4.forget(scope, v4.octets(), host_id),
            IpAddr::V6(v6) => self.v6.forget(scope, v6.octets(), host_id),
        })
    }

    /// Revokes learned addresses for which `port_set` says None (the name is no
    /// longer allowed there) and rewrites the port set of the others when it
    /// changed. Returns how many were revoked.
    pub fn refresh_learned(&mut self, mut port_set: impl FnMut(u32, Option<&str>) -> Option<u32>) -> Result<usize> {
        self.sweep_learned(|scope, host, value| match port_set(scope, host) {
            None => Fate::Remove,
            Some(set) if set != value.port_set => Fate::Rewrite(Learned { port_set: set, ..*value }),
            Some(_) => Fate::Keep,
        })
    }
}
