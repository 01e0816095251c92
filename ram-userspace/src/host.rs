//! The host facts policy validation needs, read from the host here so that
//! `policy` stays pure (and free of the cgroup and error modules).

mod error;

pub use error::{HostError, Result};

use crate::policy::HostFacts;

impl HostFacts {
    pub fn probe() -> Self {
        HostFacts {
            cgroup2_mount: crate::cgroup::cgroup2_mount().ok(),
            resolv_conf: std::fs::read_to_string(resolv_conf_path()).ok(),
            resolved_upstream: std::fs::read_to_string(RESOLVED_UPSTREAM).ok(),
        }
    }
}

/// systemd-resolved's list of upstream servers.
pub const RESOLVED_UPSTREAM: &str = "/run/systemd/resolve/resolv.conf";
/// Another resolv.conf to read instead of /etc/resolv.conf (the tests').
pub const RESOLV_CONF_ENV: &str = "RAM_RESOLV_CONF";

/// The resolv.conf whose nameservers are the default resolvers.
pub fn resolv_conf_path() -> std::path::PathBuf {
    std::env::var_os(RESOLV_CONF_ENV).map(Into::into).unwrap_or_else(|| "/etc/resolv.conf".into())
}
