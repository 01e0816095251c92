//! The one door to the pinned maps: [`Maps`] opens every pin once, typed,
//! and its methods are all ramd and ramctl do with kernel state. Used by
//! ramd and by ramctl (which works from the pins even while ramd is down).
//!
//! - `family`: each address family's three maps, written once for both;
//! - `apply`: the compiled policy goes in as rows;
//! - `learned`: learned addresses are read, swept, revoked;
//! - `read`: counters, rules and scope settings come out for ramctl;
//! - `check`: would a destination be allowed now, and by what;
//! - `members`: the container cgroups container targets hold;
//! - `occupancy`: how full the maps are, for the metrics;
//! - `layout`: maps whose layout changed are set aside, made afresh and
//!   their entries carried over (before the programs load).

mod apply;
mod check;
mod error;
mod family;
pub mod layout;
mod learned;
mod members;
mod occupancy;
mod read;

use aya::maps::{Array, HashMap, LpmTrie, Map, MapData, PerCpuArray};
pub use check::Check;
pub use error::{MapsError, Result};
use family::FamilyMaps;
pub use learned::LearnedRow;
pub use occupancy::{occupancy, LearnedCensus, Occupancy, WALKED_MAPS};
use ram_common::family::{V4, V6};
use ram_common::{maps::*, name::NAME_KEY_LEN};
pub use read::{port_set_text, RuleRow};

use crate::paths::Paths;

/// Opens one pinned map, untyped (the event map, whose type depends on the
/// object in use, is opened this way).
pub(crate) fn open(paths: &Paths, name: &str) -> Result<Map> {
    let path = paths.map_pin(name);
    if !path.exists() {
        return Err(MapsError::MissingMap { map: name.to_string() });
    }
    let data = MapData::from_pin(&path).map_err(|e| MapsError::map(name, e))?;
    Map::from_map_data(data).map_err(|e| MapsError::map(name, e))
}

fn typed<T: TryFrom<Map, Error = aya::maps::MapError>>(paths: &Paths, name: &str) -> Result<T> {
    T::try_from(open(paths, name)?).map_err(|e| MapsError::map(name, e))
}

type NameTrie = LpmTrie<MapData, [u8; NAME_KEY_LEN], NameRule>;

/// Every pinned map ram keeps its state in, typed.
pub struct Maps {
    names: NameTrie,
    /// Address rules, learned addresses and resolvers, per family.
    v4: FamilyMaps<V4>,
    v6: FamilyMaps<V6>,
    hosts: HashMap<MapData, u64, NameKey>,
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
            v4: FamilyMaps::open(paths)?,
            v6: FamilyMaps::open(paths)?,
            hosts: typed(paths, MAP_HOSTS)?,
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
