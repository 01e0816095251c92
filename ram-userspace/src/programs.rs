//! One table of ram's programs: the name of each entry function in
//! ram-ebpf, its program type and its attach type. The loader, the
//! verifier measurement and attach/detach all read it.

use aya_obj::generated::{bpf_attach_type, bpf_prog_type};
use ram_common::maps::{
    PROGRAMS, PROG_CONNECT4, PROG_CONNECT6, PROG_EGRESS, PROG_INGRESS, PROG_SENDMSG4, PROG_SENDMSG6, PROG_SOCK_CREATE,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProgramSpec {
    pub name: &'static str,
    pub prog_type: bpf_prog_type,
    pub attach_type: bpf_attach_type,
}

const fn spec(name: &'static str, prog_type: bpf_prog_type, attach_type: bpf_attach_type) -> ProgramSpec {
    ProgramSpec { name, prog_type, attach_type }
}

use bpf_attach_type::*;
use bpf_prog_type::*;

pub const TABLE: [ProgramSpec; PROGRAMS.len()] = [
    spec(PROG_CONNECT4, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_INET4_CONNECT),
    spec(PROG_CONNECT6, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_INET6_CONNECT),
    spec(PROG_SENDMSG4, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_UDP4_SENDMSG),
    spec(PROG_SENDMSG6, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_UDP6_SENDMSG),
    spec(PROG_INGRESS, BPF_PROG_TYPE_CGROUP_SKB, BPF_CGROUP_INET_INGRESS),
    spec(PROG_EGRESS, BPF_PROG_TYPE_CGROUP_SKB, BPF_CGROUP_INET_EGRESS),
    spec(PROG_SOCK_CREATE, BPF_PROG_TYPE_CGROUP_SOCK, BPF_CGROUP_INET_SOCK_CREATE),
];

/// The table row of a program, by name.
pub fn find(name: &str) -> Option<&'static ProgramSpec> {
    TABLE.iter().find(|spec| spec.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lists_every_program_once_in_order() {
        let names: Vec<&str> = TABLE.iter().map(|s| s.name).collect();
        assert_eq!(names, PROGRAMS.to_vec());
        assert_eq!(find("ram_unknown"), None);
        assert_eq!(find(PROG_SOCK_CREATE).map(|s| s.attach_type), Some(BPF_CGROUP_INET_SOCK_CREATE));
    }
}
