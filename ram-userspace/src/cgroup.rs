//! Finding cgroup v2 directories: the mount, a process's cgroup, a cgroup's id.

use std::{
    io,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use crate::host::{HostError, Result};

/// Linux keeps the first 15 bytes of a process name in /proc/PID/comm.
pub const COMM_LEN: usize = 15;

/// The cgroup v2 mount point, from /proc/self/mountinfo (it is
/// /sys/fs/cgroup on pure v2 hosts, /sys/fs/cgroup/unified on hybrid ones).
pub fn cgroup2_mount() -> Result<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| HostError::io("/proc/self/mountinfo", e))?;
    parse_mountinfo(&text).ok_or(HostError::NoCgroup2)
}

/// The first cgroup2 mount point in mountinfo text.
pub fn parse_mountinfo(text: &str) -> Option<PathBuf> {
    text.lines().find_map(|line| {
        let (mount, fs) = line.split_once(" - ")?;
        if fs.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        Some(PathBuf::from(unescape(mount.split_whitespace().nth(4)?)))
    })
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() && bytes[i + 1..i + 4].iter().all(|b| (b'0'..=b'7').contains(b)) {
            let v = bytes[i + 1..i + 4].iter().fold(0u32, |acc, b| acc * 8 + (b - b'0') as u32);
            out.push(v as u8);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The cgroup v2 path of a /proc/PID/cgroup file's text ("0::/path").
pub fn parse_proc_cgroup(text: &str) -> Option<&str> {
    text.lines().find_map(|line| line.strip_prefix("0::"))
}

/// This process's cgroup v2 directory and every one above it up to the
/// mount, innermost first, each with its id: a program attached to any of
/// them judges this process.
pub fn own_cgroups(mount: &Path) -> Result<Vec<(PathBuf, u64)>> {
    let text = std::fs::read_to_string("/proc/self/cgroup").map_err(|e| HostError::io("/proc/self/cgroup", e))?;
    let own = own_cgroup_path(mount, &text).map_err(|reason| HostError::OwnCgroup { reason })?;
    // /proc/self/cgroup is relative to this process's cgroup namespace: the
    // path is only ours when the directory lists us.
    let procs =
        std::fs::read_to_string(own.join("cgroup.procs")).map_err(|e| HostError::io(own.join("cgroup.procs"), e))?;
    let pid = std::process::id();
    if !procs.lines().any(|line| line.trim().parse() == Ok(pid)) {
        return Err(HostError::OwnCgroup {
            reason: format!("{} does not list this process (pid {pid}; in a cgroup namespace?)", own.display()),
        });
    }
    own.ancestors()
        .take_while(|dir| dir.starts_with(mount))
        .map(|dir| Ok((dir.to_path_buf(), cgroup_id(dir).map_err(|e| HostError::io(dir, e))?)))
        .collect()
}

/// The directory under `mount` that a /proc/PID/cgroup text names.
pub fn own_cgroup_path(mount: &Path, proc_cgroup: &str) -> std::result::Result<PathBuf, String> {
    let rel = parse_proc_cgroup(proc_cgroup).ok_or("/proc/self/cgroup has no cgroup v2 line (0::/...)")?;
    // A cgroup outside this process's cgroup namespace shows as /../..;
    // " (deleted)" follows a removed one.
    let path = Path::new(rel);
    if !path.is_absolute() || path.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
        return Err(format!("/proc/self/cgroup names {rel:?}, outside this cgroup namespace"));
    }
    if rel.ends_with(" (deleted)") {
        return Err(format!("/proc/self/cgroup names {rel:?}, a removed cgroup"));
    }
    // Joining "" would add a trailing `/` to the mount.
    Ok(path.components().skip(1).fold(mount.to_path_buf(), |dir, part| dir.join(part)))
}

/// A running process and its cgroup v2 directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessCgroup {
    pub pid: u32,
    pub cgroup: PathBuf,
}

/// Every running process whose name (/proc/PID/comm, at most 15 bytes) is
/// `name`, with its cgroup v2 directory under `mount`.
pub fn processes_named(mount: &Path, name: &str) -> Vec<ProcessCgroup> {
    let comm_name = &name.as_bytes()[..name.len().min(COMM_LEN)];
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        // Processes can exit between the listing and the reads: skip them.
        let Ok(comm) = std::fs::read(entry.path().join("comm")) else {
            continue;
        };
        if comm.strip_suffix(b"\n").unwrap_or(&comm) != comm_name {
            continue;
        }
        let Ok(cgroups) = std::fs::read_to_string(entry.path().join("cgroup")) else {
            continue;
        };
        if let Some(rel) = parse_proc_cgroup(&cgroups) {
            let cgroup = mount.join(rel.trim_start_matches('/'));
            found.push(ProcessCgroup { pid, cgroup });
        }
    }
    found
}

/// A cgroup's id: the inode number of its directory (what
/// bpf_get_current_cgroup_id() reports).
pub fn cgroup_id(path: &Path) -> io::Result<u64> {
    Ok(std::fs::metadata(path)?.ino())
}

/// CAP_NET_RAW's bit in /proc/PID/status CapEff.
const CAP_NET_RAW: u32 = 13;

/// The pids in `cgroup` and every cgroup below it.
pub fn processes_below(cgroup: &Path) -> Vec<u32> {
    let mut pids = Vec::new();
    let mut pending = vec![cgroup.to_path_buf()];
    while let Some(dir) = pending.pop() {
        if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
            pids.extend(text.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
        }
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        pending.extend(entries.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()));
    }
    pids
}

/// Does the status text of a process show CAP_NET_RAW in its effective set?
pub fn has_net_raw(proc_status: &str) -> bool {
    proc_status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_NET_RAW) != 0)
}

/// The directories of the cgroups `ids` under `root`, in one walk of the
/// tree (used only to detach programs from cgroups whose path was not kept:
/// uninstall and restarts on kernels before 5.7). Cgroups that no longer
/// exist are missing from the result.
pub fn find_by_ids(root: &Path, ids: &std::collections::BTreeSet<u64>) -> std::collections::HashMap<u64, PathBuf> {
    let mut found = std::collections::HashMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        if found.len() == ids.len() {
            break;
        }
        if let Some(id) = cgroup_id(&dir).ok().filter(|id| ids.contains(id)) {
            found.insert(id, dir.clone());
        }
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pending.push(entry.path());
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cap_net_raw_from_proc_status() {
        let root = "Name:\tdockerd\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        let plain = "Name:\tapp\nCapEff:\t0000000000000000\n";
        let only_raw = "CapEff:\t0000000000002000\n";
        assert!(has_net_raw(root));
        assert!(!has_net_raw(plain));
        assert!(has_net_raw(only_raw));
        assert!(!has_net_raw("garbage"));
    }

    #[test]
    fn finds_the_cgroup2_mount_on_hybrid_and_pure_hosts() {
        let hybrid = "25 24 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755\n\
                      26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw\n\
                      27 25 0:24 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n";
        assert_eq!(parse_mountinfo(hybrid), Some(PathBuf::from("/sys/fs/cgroup/unified")));
        let pure =
            "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(parse_mountinfo(pure), Some(PathBuf::from("/sys/fs/cgroup")));
        let escaped = "30 23 0:26 / /mnt/my\\040cgroup rw - cgroup2 cgroup2 rw\n";
        assert_eq!(parse_mountinfo(escaped), Some(PathBuf::from("/mnt/my cgroup")));
        assert_eq!(parse_mountinfo("27 25 0:24 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n"), None);
    }

    #[test]
    fn reads_the_v2_line_of_proc_cgroup() {
        let text = "12:pids:/docker\n1:name=systemd:/system.slice/docker.service\n0::/system.slice/docker.service\n";
        assert_eq!(parse_proc_cgroup(text), Some("/system.slice/docker.service"));
        assert_eq!(parse_proc_cgroup("0::/\n"), Some("/"));
        assert_eq!(parse_proc_cgroup("1:cpu:/\n"), None);
    }

    #[test]
    fn places_its_own_cgroup_under_the_mount() {
        let mount = Path::new("/sys/fs/cgroup/unified");
        let text = "1:name=systemd:/system.slice/docker.service\n0::/system.slice/docker.service\n";
        assert_eq!(own_cgroup_path(mount, text), Ok(mount.join("system.slice/docker.service")));
        assert_eq!(own_cgroup_path(mount, "0::/\n"), Ok(mount.to_path_buf()));
        assert_eq!(own_cgroup_path(mount, "0::/\n").map(|p| p.display().to_string()), Ok(mount.display().to_string()));
        assert!(own_cgroup_path(mount, "1:cpu:/\n").unwrap_err().contains("no cgroup v2 line"));
        assert!(own_cgroup_path(mount, "0::/../../x\n").unwrap_err().contains("outside this cgroup namespace"));
        assert!(own_cgroup_path(mount, "0::/a (deleted)\n").unwrap_err().contains("removed"));
    }

    #[test]
    fn finds_this_test_process_by_name() {
        let me = std::fs::read_to_string("/proc/self/comm").unwrap();
        let found = processes_named(Path::new("/cg"), me.trim_end());
        let my_pid = std::process::id();
        assert!(found.iter().any(|p| p.pid == my_pid), "{found:?}");
        assert!(found.iter().all(|p| p.cgroup.starts_with("/cg")));
    }
}
