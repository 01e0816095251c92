//! The one door to the pinned maps: [`Maps`] opens every pin once, typed,
//! and its methods are all ramd and ramctl do with kernel state. Used by
//! ramd and by ramctl (which works from the pins even while ramd is down).
//!
//! - `apply`: the compiled policy goes in as rows;
//! - `learned`: learned addresses are read, swept, revoked;
//! - `read`: counters, rules and scope settings come out for ramctl;
//! - `check`: would a destination be allowed now, and by what;
//! - `members`: the container cgroups container targets hold;
//! - `occupancy`: how full the maps are, for the metrics.

mod apply;
mod check;
mod learned;
mod members;
mod occupancy;
mod read;

use aya::maps::{Array, HashMap, LpmTrie, Map, MapData, PerCpuArray};
pub use check::Check;
pub use learned::LearnedRow;
pub use occupancy::{occupancy, LearnedCensus, Occupancy, WALKED_MAPS};
use ram_common::{maps::*, name::NAME_KEY_LEN};
pub use read::{port_set_text, RuleRow};

use crate::{
    error::{Error, Result},
    paths::Paths,
};

/// Opens one pinned map, untyped (the event map, whose type depends on the
/// object in use, is opened this way).
pub(crate) fn open(paths: &Paths, name: &str) -> Result<Map> {
    let path = paths.map_pin(name);
    if !path.exists() {
        return Err(Error::MissingMap { map: name.to_string() });
    }
    let data = MapData::from_pin(&path).map_err(|e| Error::map(name, e))?;
    Map::from_map_data(data).map_err(|e| Error::map(name, e))
}

fn typed<T: TryFrom<Map, Error = aya::maps::MapError>>(paths: &Paths, name: &str) -> Result<T> {
    T::try_from(open(paths, name)?).map_err(|e| Error::map(name, e))
}

type NameTrie = LpmTrie<MapData, [u8; NAME_KEY_LEN], NameRule>;

/// Every pinned map ram keeps its state in, typed.
pub struct Maps {
    names: NameTrie,
    cidr4: LpmTrie<MapData, [u8; 4], CidrRule>,
    cidr6: LpmTrie<MapData, [u8; 16], CidrRule>,
    learn4: HashMap<MapData, Learn4Key, Learned>,
    learn6: HashMap<MapData, Learn6Key, Learned>,
    hosts: HashMap<MapData, u64, NameKey>,
    resolv4: HashMap<MapData, [u8; 4], Resolver>,
    resolv6: HashMap<MapData, [u8; 16], Resolver>,
    scopes: Array<MapData, ScopeConfig>,
    counters: PerCpuArray<MapData, u64>,
    ports: Array<MapData, PortSet>,
    forwards: HashMap<MapData, ForwardKey, ForwardDest>,
    members: HashMap<MapData, u64, Member>,
    container_patterns: Array<MapData, CgroupPattern>,
    cgroup_layout: Array<MapData, CgroupLayout>,
}

impl Maps {
    /// Opens every pin once. A map replaced since (a resize) needs a new
    /// handle: open one per piece of work.
    pub fn open(paths: &Paths) -> Result<Self> {
        Ok(Maps {
            names: typed(paths, MAP_NAMES)?,
            cidr4: typed(paths, MAP_CIDR4)?,
            cidr6: typed(paths, MAP_CIDR6)?,
            learn4: typed(paths, MAP_LEARN4)?,
            learn6: typed(paths, MAP_LEARN6)?,
            hosts: typed(paths, MAP_HOSTS)?,
            resolv4: typed(paths, MAP_RESOLV4)?,
            resolv6: typed(paths, MAP_RESOLV6)?,
            scopes: typed(paths, MAP_SCOPES)?,
            counters: typed(paths, MAP_COUNTERS)?,
            ports: typed(paths, MAP_PORTS)?,
            forwards: typed(paths, MAP_FORWARDS)?,
            members: typed(paths, MAP_MEMBERS)?,
            container_patterns: typed(paths, MAP_CONTAINER_PATTERNS)?,
            cgroup_layout: typed(paths, MAP_CGROUP_LAYOUT)?,
        })
    }
}
