//! What the kernel says at scrape time: counters, learned addresses, map
//! occupancy, program run times. Blocking (bpf(2) calls, one per map entry
//! for the walks): the server runs it off the daemon's loop.

use std::collections::BTreeSet;

use crate::{
    error::Result,
    maps::{self, Maps, Occupancy},
    paths::Paths,
    sys::monotonic_ns,
};

use super::Snapshot;

/// Where the kernel says whether it counts program run time.
const BPF_STATS_ENABLED: &str = "/proc/sys/kernel/bpf_stats_enabled";

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Readings {
    /// Per target scope, its counters (summed over CPUs) by name.
    pub counters: Vec<(u32, Vec<(&'static str, u64)>)>,
    /// Learned addresses not expired: IPv4, IPv6.
    pub learned_live: [u64; 2],
    pub maps: Vec<Occupancy>,
    /// kernel.bpf_stats_enabled is 1 (else `programs` is empty).
    pub bpf_stats: bool,
    pub programs: Vec<ProgramRuns>,
    /// How long reading all of the above took (set by the server).
    pub collect_seconds: f64,
}

/// bpf_prog_info's run statistics of one program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramRuns {
    pub id: u32,
    pub run_time_ns: u64,
    pub runs: u64,
}

/// Reads everything the exposition needs for `snapshot`'s targets.
pub fn collect(paths: &Paths, snapshot: &Snapshot) -> Result<Readings> {
    let handle = Maps::open(paths)?;
    let mut counters = Vec::with_capacity(snapshot.targets.len());
    for target in &snapshot.targets {
        counters.push((target.scope, handle.counters(target.scope)?));
    }
    let census = handle.learned_census(monotonic_ns())?;
    let mut occupancy = Vec::with_capacity(maps::WALKED_MAPS.len() + 2);
    for (i, map) in [ram_common::maps::MAP_LEARN4, ram_common::maps::MAP_LEARN6].into_iter().enumerate() {
        occupancy.push(Occupancy { map, entries: census.entries[i], capacity: census.capacity[i] });
    }
    for map in maps::WALKED_MAPS {
        occupancy.push(maps::occupancy(paths, map)?);
    }
    let bpf_stats = std::fs::read_to_string(BPF_STATS_ENABLED).is_ok_and(|v| v.trim() == "1");
    let programs = if bpf_stats { program_runs(snapshot) } else { Vec::new() };
    Ok(Readings { counters, learned_live: census.live, maps: occupancy, bpf_stats, programs, collect_seconds: 0.0 })
}

/// Run statistics of the snapshot's programs. The kernel lists programs
/// by id only through all of them; the walk stops once every one is found.
/// A program unloaded meanwhile (a reload replaced it) is left out.
fn program_runs(snapshot: &Snapshot) -> Vec<ProgramRuns> {
    let mut wanted: BTreeSet<u32> =
        snapshot.targets.iter().flat_map(|t| t.programs.iter().map(|(_, id)| *id)).collect();
    let mut out = Vec::with_capacity(wanted.len());
    for info in aya::programs::loaded_programs() {
        if wanted.is_empty() {
            break;
        }
        let Ok(info) = info else { continue };
        if wanted.remove(&info.id()) {
            out.push(ProgramRuns {
                id: info.id(),
                run_time_ns: info.run_time().as_nanos() as u64,
                runs: info.run_count(),
            });
        }
    }
    out
}
