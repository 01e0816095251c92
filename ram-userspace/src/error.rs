//! The umbrella error of ramd and ramctl: each area's own error, passed
//! through unchanged (`?` converts), and the few errors the daemon, the
//! status file, the container records and the metrics listener make
//! themselves. Each area's type lives with it: `policy::PolicyError`,
//! `features::PathChoiceError`, `host::HostError`, `loader::LoadError`,
//! `maps::MapsError`.

use std::path::PathBuf;

use crate::{host::HostError, loader::LoadError, maps::MapsError, policy::PolicyError};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Policy(#[from] PolicyError),

    #[error(transparent)]
    PathChoice(#[from] crate::features::PathChoiceError),

    #[error(transparent)]
    Host(#[from] HostError),

    #[error(transparent)]
    Load(#[from] LoadError),

    #[error(transparent)]
    Maps(#[from] MapsError),

    #[error("{path}: {cause}")]
    Io { path: PathBuf, cause: std::io::Error },

    #[error("metrics listener {addr}: {cause}")]
    Metrics { addr: String, cause: std::io::Error },

    #[error("{what}: {cause}")]
    Sys { what: String, cause: std::io::Error },
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), cause: source }
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
