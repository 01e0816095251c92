//! Errors of reading the host and of the raw system calls (`cgroup`,
//! `sys`, `bpf_calls`, `btf`, `netns`, `routes`): what this machine's
//! files and kernel said, with the path or call they answered.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("{path}: {cause}")]
    Io { path: PathBuf, cause: std::io::Error },

    #[error("{what}: {cause}")]
    Sys { what: String, cause: std::io::Error },

    #[error("this kernel ({release}) lacks {missing}")]
    KernelTooOld { release: String, missing: &'static str },
    #[error("no cgroup v2 mount in /proc/self/mountinfo; ram needs cgroup v2")]
    NoCgroup2,
    #[error("cannot tell this process's cgroup v2: {reason}")]
    OwnCgroup { reason: String },
}

impl HostError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        HostError::Io { path: path.into(), cause: source }
    }
}

pub type Result<T, E = HostError> = std::result::Result<T, E>;
