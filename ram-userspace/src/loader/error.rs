//! Errors of loading, attaching and pinning the programs (`loader`, and
//! what only it uses: `verifier`, `kernel_log`), each naming the target,
//! program, cgroup or pin it concerns.

use std::path::PathBuf;

use crate::{error::chain, host::HostError};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The host's own answer (bpffs, pin directories, cgroups, raw bpf(2)
    /// calls), passed on unchanged: its text already says what failed.
    #[error(transparent)]
    Host(#[from] HostError),

    #[error("{path}: {cause}")]
    Io { path: PathBuf, cause: std::io::Error },

    #[error("loading the eBPF object for target `{target}`: {}", chain(cause.as_ref()))]
    Load { target: String, cause: Box<aya::EbpfError> },

    #[error("the kernel log of target `{target}`: {cause}")]
    KernelLog { target: String, cause: String },

    #[error("program {program}: {}", chain(cause.as_ref()))]
    Program { program: String, cause: Box<aya::programs::ProgramError> },

    #[error("attaching {program} to cgroup {cgroup}: {}", chain(cause.as_ref()))]
    Attach { program: String, cgroup: PathBuf, cause: Box<aya::programs::ProgramError> },

    #[error("{program}: the kernel gave no bpf_link to pin (kernel older than 5.7?): {}", chain(cause.as_ref()))]
    Link { program: String, cause: Box<aya::programs::links::LinkError> },

    #[error("pinning {path}: {}", chain(cause.as_ref()))]
    Pin { path: PathBuf, cause: Box<aya::pin::PinError> },

    /// A loaded program's map, found by its id (the verifier measure).
    #[error("map by id: {}", chain(cause.as_ref()))]
    MapById { cause: Box<aya::maps::MapError> },

    /// Loading the verifier measure's second copy.
    #[error("measuring verifier cost: {cause}")]
    Measure { cause: String },
}

impl LoadError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LoadError::Io { path: path.into(), cause: source }
    }

    /// A file that was not there, whether the loader or the host's call
    /// found it missing: a pin another instance already took over.
    pub fn is_not_found(&self) -> bool {
        match self {
            LoadError::Io { cause, .. } | LoadError::Host(HostError::Io { cause, .. }) => {
                cause.kind() == std::io::ErrorKind::NotFound
            }
            _ => false,
        }
    }
}

pub type Result<T, E = LoadError> = std::result::Result<T, E>;
