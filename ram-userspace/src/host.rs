//! The host facts policy validation needs, read from the host here so that
//! `policy` stays pure (and free of the cgroup and error modules).

use crate::policy::HostFacts;

impl HostFacts {
    pub fn probe() -> Self {
        HostFacts {
            cgroup2_mount: crate::cgroup::cgroup2_mount().ok(),
            resolv_conf: std::fs::read_to_string("/etc/resolv.conf").ok(),
        }
    }
}
