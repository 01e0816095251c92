//! Errors of the pinned maps (`maps`, and the modules that open pinned maps
//! by name: `layout`, `event_source`), each naming the map it concerns.

use std::path::PathBuf;

use crate::{error::chain, host::HostError};

#[derive(Debug, thiserror::Error)]
pub enum MapsError {
    /// The host's own answer (moving a pin, making the set-aside
    /// directory), passed on unchanged: its text already says what failed.
    #[error(transparent)]
    Host(#[from] HostError),

    #[error("{path}: {cause}")]
    Io { path: PathBuf, cause: std::io::Error },

    #[error("map {map}: {}", chain(cause.as_ref()))]
    Map { map: String, cause: Box<aya::maps::MapError> },

    #[error("map {map} is missing from the eBPF object or the pin directory")]
    MissingMap { map: String },

    /// A walk of a map's entries or another raw call on one.
    #[error("{what}: {cause}")]
    Sys { what: String, cause: std::io::Error },

    /// What `ramctl check` was given cannot be a key of the name trie.
    #[error("`{host}` is not a host name: {cause}")]
    NotAHostName { host: String, cause: String },
}

impl MapsError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        MapsError::Io { path: path.into(), cause: source }
    }

    pub fn map(map: &str, source: aya::maps::MapError) -> Self {
        MapsError::Map { map: map.to_string(), cause: Box::new(source) }
    }
}

pub type Result<T, E = MapsError> = std::result::Result<T, E>;
