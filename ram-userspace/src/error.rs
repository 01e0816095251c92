//! Errors of the library, each with the context an operator needs.

use std::path::PathBuf;

use crate::policy::PolicyError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Policy(#[from] PolicyError),

    #[error(transparent)]
    PathChoice(#[from] crate::features::PathChoiceError),

    #[error(transparent)]
    Host(#[from] crate::host::HostError),

    #[error(transparent)]
    Load(#[from] crate::loader::LoadError),

    #[error("{path}: {cause}")]
    Io { path: PathBuf, cause: std::io::Error },

    #[error("map {map}: {}", chain(cause.as_ref()))]
    Map { map: String, cause: Box<aya::maps::MapError> },

    #[error("map {map} is missing from the eBPF object or the pin directory")]
    MissingMap { map: String },

    #[error("metrics listener {addr}: {cause}")]
    Metrics { addr: String, cause: std::io::Error },

    #[error("{what}: {cause}")]
    Sys { what: String, cause: std::io::Error },
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), cause: source }
    }

    pub fn map(map: &str, source: aya::maps::MapError) -> Self {
        Error::Map { map: map.to_string(), cause: Box::new(source) }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error and all its sources on one line: aya's errors keep the kernel's
/// answer (errno) in their source, which is what an operator needs to see.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text
}
