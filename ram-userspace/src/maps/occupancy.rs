//! How full the maps are, for the metrics: entries counted at scrape time,
//! capacity from the kernel's map info.
//!
//! Hash maps are read with BPF_MAP_LOOKUP_BATCH, a few thousand entries a
//! call: a full learned map of 1,048,576 entries took about 1.5 s to walk
//! key by key (two calls an entry), too much to repeat every scrape. LPM
//! tries have no batch lookup and are walked key by key (they hold a few
//! thousand rules at most).

use std::{io, os::fd::AsFd};

use aya::maps::{IterableMap, MapData};
use ram_common::maps::*;

use super::Maps;
use crate::{
    bpf_calls,
    maps::{MapsError, Result},
    paths::Paths,
};

/// The pinned maps whose entries come and go (hash, LRU hash, LPM trie).
/// Arrays are always full and are left out; the learned maps are counted
/// by [`Maps::learned_census`], which reads their values too.
pub const WALKED_MAPS: [&str; 11] = [
    MAP_NAMES,
    MAP_CIDR4,
    MAP_CIDR6,
    MAP_HOSTS,
    MAP_RESOLV4,
    MAP_RESOLV6,
    MAP_QUERIES,
    MAP_SOCKETS,
    MAP_CONTAINER_SOCKETS,
    MAP_PRIVILEGED_SOCKETS,
    MAP_FORWARDS,
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Occupancy {
    pub map: &'static str,
    pub entries: u64,
    pub capacity: u32,
}

/// The learned maps' entries, those of them not expired yet, and their
/// capacity (the policy's `[limits] learned_addresses` as the maps were made).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LearnedCensus {
    /// IPv4, IPv6.
    pub entries: [u64; 2],
    pub live: [u64; 2],
    pub capacity: [u32; 2],
}

// The census reads the expiry straight from the value bytes.
const _: () = assert!(std::mem::offset_of!(Learned, expires_ns) == 0);

/// Entries and capacity of one pinned map.
pub fn occupancy(paths: &Paths, name: &'static str) -> Result<Occupancy> {
    let data = MapData::from_pin(paths.map_pin(name)).map_err(|e| MapsError::map(name, e))?;
    let info = data.info().map_err(|e| MapsError::map(name, e))?;
    let capacity = info.max_entries();
    let (key_size, value_size) = (info.key_size() as usize, info.value_size() as usize);
    let walk_error = |cause| MapsError::Sys { what: format!("counting the entries of map {name}"), cause };
    let mut entries = 0u64;
    match bpf_calls::lookup_batches(data.fd().as_fd(), key_size, value_size, |_, _| entries += 1) {
        Ok(()) => {}
        Err(e) if bpf_calls::batch_unsupported(&e) => {
            entries = walk_keys(&data, key_size, capacity).map_err(walk_error)?
        }
        Err(e) => return Err(walk_error(e)),
    }
    Ok(Occupancy { map: name, entries: entries.min(u64::from(capacity)), capacity })
}

/// Counts keys one call at a time. A hash map walk restarts from the top
/// when the key it stands on is deleted meanwhile (an LRU eviction): the
/// count stops at the capacity, so such a walk still ends.
fn walk_keys(data: &MapData, key_size: usize, capacity: u32) -> io::Result<u64> {
    let fd = data.fd().as_fd();
    let mut key = vec![0u8; key_size];
    let mut next = vec![0u8; key_size];
    let mut entries = 0u64;
    while entries < u64::from(capacity) && bpf_calls::next_key(fd, (entries > 0).then_some(key.as_slice()), &mut next)?
    {
        key.copy_from_slice(&next);
        entries += 1;
    }
    Ok(entries)
}

impl Maps {
    /// Counts the learned addresses, and those still allowed at `now`
    /// (CLOCK_MONOTONIC ns; expired ones wait for ramd's sweep).
    pub fn learned_census(&self, now: u64) -> Result<LearnedCensus> {
        let mut census = LearnedCensus::default();
        let maps = [
            (IterableMap::map(&self.v4.learn), MAP_LEARN4, std::mem::size_of::<Learn4Key>()),
            (IterableMap::map(&self.v6.learn), MAP_LEARN6, std::mem::size_of::<Learn6Key>()),
        ];
        for (i, (data, name, key_size)) in maps.into_iter().enumerate() {
            census.capacity[i] = data.info().map_err(|e| MapsError::map(name, e))?.max_entries();
            let (entries, live) = (&mut census.entries[i], &mut census.live[i]);
            bpf_calls::lookup_batches(data.fd().as_fd(), key_size, std::mem::size_of::<Learned>(), |_, value| {
                *entries += 1;
                let expires = value.first_chunk::<8>().map_or(0, |b| u64::from_ne_bytes(*b));
                *live += u64::from(expires > now);
            })
            .map_err(|cause| MapsError::Sys { what: format!("reading map {name}"), cause })?;
        }
        Ok(census)
    }
}
