//! Errors of the library, each with the context an operator needs.

use std::path::PathBuf;

use crate::policy::PolicyError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Policy(#[from] PolicyError),

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("loading the eBPF object for target `{target}`: {source}")]
    Load {
        target: String,
        #[source]
        source: Box<aya::EbpfError>,
    },

    #[error("program {program}: {source}")]
    Program {
        program: String,
        #[source]
        source: Box<aya::programs::ProgramError>,
    },

    #[error("attaching {program} to cgroup {cgroup}: {source}")]
    Attach {
        program: String,
        cgroup: PathBuf,
        #[source]
        source: Box<aya::programs::ProgramError>,
    },

    #[error("{program}: the kernel gave no bpf_link to pin (kernel older than 5.7?): {source}")]
    Link {
        program: String,
        #[source]
        source: Box<aya::programs::links::LinkError>,
    },

    #[error("pinning {path}: {source}")]
    Pin {
        path: PathBuf,
        #[source]
        source: Box<aya::pin::PinError>,
    },

    #[error("map {map}: {source}")]
    Map {
        map: String,
        #[source]
        source: Box<aya::maps::MapError>,
    },

    #[error("map {map} is missing from the eBPF object or the pin directory")]
    MissingMap { map: String },

    #[error("{what}: {source}")]
    Sys {
        what: String,
        #[source]
        source: std::io::Error,
    },

    #[error("no cgroup v2 mount in /proc/self/mountinfo; ram needs cgroup v2")]
    NoCgroup2,
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    pub fn map(map: &str, source: aya::maps::MapError) -> Self {
        Error::Map { map: map.to_string(), source: Box::new(source) }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
