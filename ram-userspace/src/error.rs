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

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    /// The umbrella adds nothing to an area's error: an operator reads the
    /// same line, with the same sources, as before the areas had types.
    #[test]
    fn the_umbrella_shows_each_areas_error_unchanged() {
        let cases: [(Error, &str); 6] = [
            (HostError::NoCgroup2.into(), "no cgroup v2 mount in /proc/self/mountinfo; ram needs cgroup v2"),
            (
                HostError::KernelTooOld { release: "5.4.0".into(), missing: "bpf_link" }.into(),
                "this kernel (5.4.0) lacks bpf_link",
            ),
            (
                LoadError::Host(HostError::io("/sys/fs/bpf/ram", io::Error::other("gone"))).into(),
                "/sys/fs/bpf/ram: gone",
            ),
            (LoadError::Measure { cause: "no .text".into() }.into(), "measuring verifier cost: no .text"),
            (
                MapsError::MissingMap { map: "ram_names".into() }.into(),
                "map ram_names is missing from the eBPF object or the pin directory",
            ),
            (
                MapsError::NotAHostName { host: "a..b".into(), cause: "EmptyLabel".into() }.into(),
                "`a..b` is not a host name: EmptyLabel",
            ),
        ];
        for (error, text) in cases {
            assert_eq!(error.to_string(), text);
            assert_eq!(chain(&error), text);
            assert!(std::error::Error::source(&error).is_none(), "{text}");
        }
    }

    #[test]
    fn a_missing_pin_is_not_found_wherever_the_io_error_arose() {
        let missing = || io::Error::from(io::ErrorKind::NotFound);
        assert!(LoadError::io("/pin", missing()).is_not_found());
        assert!(LoadError::Host(HostError::io("/pin", missing())).is_not_found());
        assert!(!LoadError::io("/pin", io::Error::from(io::ErrorKind::PermissionDenied)).is_not_found());
        assert!(!LoadError::Host(HostError::Sys { what: "detach".into(), cause: missing() }).is_not_found());
    }
}
