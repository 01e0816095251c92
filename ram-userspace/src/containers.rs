//! What a runtime recorded about its containers, and where their cgroups
//! are: what ramd needs to decide which container target (if any) holds a
//! container the kernel saw appear (see `policy::containers` for the
//! decision, `ram_common::maps::Member` for the kernel side).
//!
//! dockerd writes `<data-root>/containers/<id>/config.v2.json` when the
//! container is created, before its cgroup exists; the data root is
//! /var/lib/docker, `data-root` in /etc/docker/daemon.json, or the
//! `--data-root` of a running dockerd.

use std::{
    collections::BTreeMap,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use serde::Deserialize;

use crate::{
    cgroup::cgroup_id,
    error::{Error, Result},
    forwarders::{installed_files, runs_as_root},
    policy::{containers::ContainerPath, ContainerInfo, Runtime},
};

/// An extra docker data root to look in (the tests point it at their own).
pub const DOCKER_ROOT_ENV: &str = "RAM_DOCKER_ROOT";

/// A container's cgroup as found in the cgroup tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerCgroup {
    pub cgroup_id: u64,
    pub path: PathBuf,
    pub runtime: Runtime,
    pub container_id: String,
}

/// Every container cgroup of `runtimes` under the cgroup v2 root.
pub fn container_cgroups(root: &Path, runtimes: &[Runtime]) -> Vec<ContainerCgroup> {
    let mut found = Vec::new();
    for &runtime in runtimes {
        for kind in runtime.cgroup_patterns() {
            found.extend(cgroups_of_kind(root, runtime, &kind));
        }
    }
    found
}

fn cgroups_of_kind(root: &Path, runtime: Runtime, kind: &ContainerPath) -> Vec<ContainerCgroup> {
    let Ok(entries) = std::fs::read_dir(root.join(kind.parent)) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            let container_id = kind.container_id(name.to_str()?)?.to_string();
            let path = entry.path();
            let cgroup_id = cgroup_id(&path).ok()?;
            Some(ContainerCgroup { cgroup_id, path, runtime, container_id })
        })
        .collect()
}

#[derive(Deserialize)]
struct DockerRecord {
    #[serde(rename = "ID", default)]
    id: String,
    #[serde(rename = "Name", default)]
    name: String,
    #[serde(rename = "Config")]
    config: DockerConfig,
    #[serde(rename = "NetworkSettings", default)]
    network: Option<DockerNetwork>,
}

#[derive(Deserialize)]
struct DockerNetwork {
    /// The file of the network namespace dockerd made for the container
    /// (`/var/run/docker/netns/<sandbox>`; `.../default` for the host's).
    #[serde(rename = "SandboxKey", default)]
    sandbox_key: String,
}

/// What ramd takes from a runtime's record of a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// What the targets' filters match on.
    pub info: ContainerInfo,
    /// The network namespace the runtime made for the container, once it
    /// has recorded it: the one namespace the container's DNS is trusted
    /// in.
    pub netns: Option<PathBuf>,
    /// Whose network namespace the container uses (hostconfig.json,
    /// written when the container is created).
    pub network: NetworkMode,
}

/// A container's `HostConfig.NetworkMode`, as far as trust goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetworkMode {
    /// A namespace of its own, made by the runtime (a bridge, a
    /// user-defined network, `none`).
    Own,
    /// The host's (`--network host`).
    Host,
    /// Another container's (`--network container:X`): X's id or name.
    Container(String),
}

impl NetworkMode {
    fn parse(mode: &str) -> Self {
        match mode {
            "host" => NetworkMode::Host,
            _ => match mode.strip_prefix("container:") {
                Some(other) => NetworkMode::Container(other.to_string()),
                None => NetworkMode::Own,
            },
        }
    }
}

#[derive(Deserialize)]
struct DockerHostConfig {
    #[serde(rename = "NetworkMode", default)]
    network_mode: String,
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(rename = "Image", default)]
    image: String,
    #[serde(rename = "Labels", default)]
    labels: Option<BTreeMap<String, String>>,
}

/// Where dockerd keeps its data: the default, daemon.json's, and the
/// `--data-root` of each running dockerd that is the host's own (the
/// installed file, run as root, in ramd's mount namespace): anyone can
/// name a process dockerd, and a record under a root of their choosing
/// would decide their own container. With userns-remap, records live in
/// `<root>/<uid>.<gid>/`.
pub fn docker_data_roots() -> Vec<PathBuf> {
    let mut roots = vec![PathBuf::from("/var/lib/docker")];
    // A data root of the caller's choosing, first (the tests' own; only
    // whoever starts ramd sets its environment).
    if let Some(root) = std::env::var_os(DOCKER_ROOT_ENV) {
        roots.insert(0, PathBuf::from(root));
    }
    if let Ok(text) = std::fs::read_to_string("/etc/docker/daemon.json") {
        if let Some(root) = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("data-root").and_then(|r| r.as_str()).map(PathBuf::from))
        {
            roots.push(root);
        }
    }
    let dockerd_files = installed_files("dockerd");
    let own_mounts = std::fs::metadata("/proc/self/ns/mnt").map(|m| m.ino()).ok();
    if let Ok(procs) = std::fs::read_dir("/proc") {
        for entry in procs.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
            let dir = entry.path();
            let is_hosts_dockerd = std::fs::metadata(dir.join("exe"))
                .is_ok_and(|m| dockerd_files.contains(&(m.dev(), m.ino())))
                && runs_as_root(pid)
                && std::fs::metadata(dir.join("ns/mnt")).ok().map(|m| m.ino()) == own_mounts;
            if !is_hosts_dockerd {
                continue;
            }
            let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
            let args: Vec<String> =
                cmdline.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
            for (i, arg) in args.iter().enumerate() {
                if let Some(root) = arg.strip_prefix("--data-root=") {
                    roots.push(PathBuf::from(root));
                } else if arg == "--data-root" {
                    roots.extend(args.get(i + 1).map(PathBuf::from));
                }
            }
        }
    }
    // userns-remap: a directory per remapped root.
    let remapped: Vec<PathBuf> = roots
        .iter()
        .flat_map(|root| std::fs::read_dir(root).into_iter().flatten().flatten())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).and_then(|n| n.split_once('.')).is_some_and(|(u, g)| {
                !u.is_empty() && !g.is_empty() && u.bytes().chain(g.bytes()).all(|b| b.is_ascii_digit())
            })
        })
        .collect();
    roots.extend(remapped);
    let mut seen = std::collections::BTreeSet::new();
    roots.retain(|r| seen.insert(r.clone()));
    roots
}

/// An extra directory of runtime-made network namespace files to trust
/// (the tests point it at their own).
pub const DOCKER_NETNS_ENV: &str = "RAM_DOCKER_NETNS";

/// Where dockerd keeps a file of each network namespace it makes for its
/// containers (`<exec-root>/netns`; `default` is the host's, for
/// `--network host`). Only root can put a namespace there.
fn docker_netns_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from("/var/run/docker/netns"), PathBuf::from("/run/docker/netns")];
    if let Some(dir) = std::env::var_os(DOCKER_NETNS_ENV) {
        dirs.insert(0, PathBuf::from(dir));
    }
    dirs
}

/// The file of the runtime-made network namespace a process of `cgroup`
/// is in, if any. dockerd records a container's namespace only once the
/// container runs (after its first instruction); its processes are in it
/// from the start. A process in a namespace of its own making (an
/// unprivileged user namespace suffices) matches no runtime file: such a
/// container's DNS stays untrusted.
///
/// Every process of the container's cgroup tree counts (a container may
/// nest cgroups of its own, as docker:dind does). The host's namespace
/// does not: runc puts the container's first process in its cgroup while
/// that process is still in the host's namespace, and a container of the
/// host's network is known from its record. The processes left must all
/// be in one namespace, or none is taken.
pub fn runtime_netns_of(cgroup: &Path) -> Option<PathBuf> {
    let namespaces = netns_of(cgroup);
    let only = match namespaces.len() {
        1 => namespaces.into_iter().next()?,
        _ => return None,
    };
    docker_netns_dirs()
        .iter()
        .flat_map(|dir| std::fs::read_dir(dir).into_iter().flatten().flatten())
        .map(|entry| entry.path())
        .find(|path| std::fs::metadata(path).is_ok_and(|m| (m.dev(), m.ino()) == only))
}

/// The network namespaces (device, inode of their files) the processes of
/// a cgroup tree are in, the host's aside.
pub fn netns_of(cgroup: &Path) -> std::collections::BTreeSet<(u64, u64)> {
    let namespace = |path: &str| std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()));
    let host: std::collections::BTreeSet<(u64, u64)> =
        ["/proc/1/ns/net", "/proc/self/ns/net"].into_iter().filter_map(namespace).collect();
    cgroup_tree_pids(cgroup)
        .into_iter()
        .filter_map(|pid| namespace(&format!("/proc/{pid}/ns/net")))
        .filter(|ns| !host.contains(ns))
        .collect()
}

/// Is any process in the cgroup tree (a container's cgroup is made before
/// its first process is in it)?
pub fn has_processes(cgroup: &Path) -> bool {
    !cgroup_tree_pids(cgroup).is_empty()
}

/// The pids of a cgroup and of every cgroup below it (bounded: a container
/// could make a deep tree to slow ramd down).
fn cgroup_tree_pids(cgroup: &Path) -> Vec<String> {
    const MAX_CGROUPS: usize = 256;
    let mut pending = vec![cgroup.to_path_buf()];
    let mut pids = Vec::new();
    let mut visited = 0;
    while let Some(dir) = pending.pop() {
        visited += 1;
        if visited > MAX_CGROUPS {
            break;
        }
        if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
            pids.extend(procs.lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()));
        }
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pending.push(entry.path());
            }
        }
    }
    pids
}

/// A record is a small JSON file; anything larger is not dockerd's.
const MAX_RECORD_BYTES: u64 = 4 << 20;

/// Reads a record without following a symlink and without blocking: only a
/// regular file of at most [`MAX_RECORD_BYTES`] (a FIFO or a device in its
/// place would stall or exhaust ramd).
fn read_record(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::{io::Read, os::unix::fs::OpenOptionsExt};
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "not a regular file"));
    }
    if meta.len() > MAX_RECORD_BYTES {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "larger than any container record"));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_RECORD_BYTES).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// What dockerd recorded about container `id`, from the first data root
/// that has it.
pub fn docker_container(id: &str, roots: &[PathBuf]) -> Result<Recorded> {
    let mut last = None;
    for root in roots {
        let path = root.join("containers").join(id).join("config.v2.json");
        match read_record(&path) {
            Ok(bytes) => {
                let mut recorded = parse_docker_record(id, &bytes).map_err(|e| Error::io(&path, e))?;
                // Written with the record, when the container is created:
                // without it, whose namespace the container uses is not
                // known, and it stays held closed.
                let host_config = root.join("containers").join(id).join("hostconfig.json");
                let bytes = read_record(&host_config).map_err(|e| Error::io(&host_config, e))?;
                recorded.network = parse_network_mode(&bytes).map_err(|e| Error::io(&host_config, e))?;
                return Ok(recorded);
            }
            Err(e) => last = Some(Error::io(&path, e)),
        }
    }
    Err(last.unwrap_or_else(|| Error::io(Path::new("/var/lib/docker"), std::io::ErrorKind::NotFound.into())))
}

fn parse_docker_record(id: &str, bytes: &[u8]) -> std::io::Result<Recorded> {
    let record: DockerRecord = serde_json::from_slice(bytes)?;
    // The record of another container, put in this one's place, decides nothing.
    if record.id != id {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("the record is of container {:?}", record.id),
        ));
    }
    let info = ContainerInfo {
        id: id.to_string(),
        name: record.name.trim_start_matches('/').to_string(),
        image: record.config.image,
        labels: record.config.labels.unwrap_or_default(),
    };
    // Only an absolute path is dockerd's; it is written by dockerd into its
    // own root-owned data root, like the rest of the record.
    let netns = record.network.map(|n| PathBuf::from(n.sandbox_key)).filter(|p| p.is_absolute());
    Ok(Recorded { info, netns, network: NetworkMode::Own })
}

fn parse_network_mode(bytes: &[u8]) -> std::io::Result<NetworkMode> {
    let config: DockerHostConfig = serde_json::from_slice(bytes)?;
    Ok(NetworkMode::parse(&config.network_mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_name_image_and_labels_from_dockers_record() {
        let record = br#"{"ID":"x","Name":"/builder","Config":{"Image":"moby/buildkit:v0.12","Labels":{"ci.job":"7"}},"State":{}}"#;
        let recorded = parse_docker_record("x", record).expect("record");
        assert_eq!(recorded.netns, None, "not recorded yet");
        let info = recorded.info;
        assert_eq!(info.name, "builder");
        assert_eq!(info.image, "moby/buildkit:v0.12");
        assert_eq!(info.labels.get("ci.job").map(String::as_str), Some("7"));
        let no_labels = br#"{"ID":"y","Name":"/a","Config":{"Image":"alpine","Labels":null}}"#;
        assert!(parse_docker_record("y", no_labels).expect("record").info.labels.is_empty());
        let started = br#"{"ID":"s","Name":"/a","Config":{"Image":"alpine"},"NetworkSettings":{"SandboxKey":"/var/run/docker/netns/0123abcd"}}"#;
        assert_eq!(
            parse_docker_record("s", started).expect("record").netns,
            Some(PathBuf::from("/var/run/docker/netns/0123abcd"))
        );
        let relative =
            br#"{"ID":"r","Name":"/a","Config":{"Image":"alpine"},"NetworkSettings":{"SandboxKey":"netns/x"}}"#;
        assert_eq!(parse_docker_record("r", relative).expect("record").netns, None, "not a path dockerd writes");
        let empty = br#"{"ID":"e","Name":"/a","Config":{"Image":"alpine"},"NetworkSettings":{"SandboxKey":""}}"#;
        assert_eq!(parse_docker_record("e", empty).expect("record").netns, None);
        assert!(parse_docker_record("z", b"{not json").is_err());
        assert!(parse_docker_record("z", record).is_err(), "another container's record");
    }

    #[test]
    fn reads_whose_network_namespace_a_container_uses() {
        let mode = |text: &str| parse_network_mode(text.as_bytes()).expect("hostconfig");
        assert_eq!(mode(r#"{"NetworkMode":"default"}"#), NetworkMode::Own);
        assert_eq!(mode(r#"{"NetworkMode":"bridge"}"#), NetworkMode::Own);
        assert_eq!(mode(r#"{"NetworkMode":"my-net"}"#), NetworkMode::Own);
        assert_eq!(mode(r#"{"NetworkMode":"none"}"#), NetworkMode::Own);
        assert_eq!(mode(r#"{"NetworkMode":"host"}"#), NetworkMode::Host);
        assert_eq!(mode(r#"{"NetworkMode":"container:abc123"}"#), NetworkMode::Container("abc123".into()));
        assert_eq!(mode(r#"{}"#), NetworkMode::Own);
        assert!(parse_network_mode(b"[").is_err());
    }

    #[test]
    fn a_record_is_read_only_from_a_small_regular_file() {
        let dir = std::env::temp_dir().join(format!("ram-record-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("config.v2.json");
        std::fs::write(&file, b"{}").unwrap();
        assert_eq!(read_record(&file).unwrap(), b"{}");
        let link = dir.join("link");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(read_record(&link).is_err(), "a symlink is not followed");
        let fifo = dir.join("fifo");
        let _ = std::fs::remove_file(&fifo);
        let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
        assert!(read_record(&fifo).is_err(), "a FIFO is refused without blocking");
        assert!(read_record(Path::new("/dev/zero")).is_err(), "a device is refused");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
