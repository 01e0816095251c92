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
    path::{Path, PathBuf},
};

use serde::Deserialize;

use crate::{
    cgroup::cgroup_id,
    error::{Error, Result},
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
    #[serde(rename = "Name", default)]
    name: String,
    #[serde(rename = "Config")]
    config: DockerConfig,
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(rename = "Image", default)]
    image: String,
    #[serde(rename = "Labels", default)]
    labels: Option<BTreeMap<String, String>>,
}

/// Where dockerd keeps its data: the default, daemon.json's, and each
/// running dockerd's `--data-root`.
pub fn docker_data_roots() -> Vec<PathBuf> {
    let mut roots = vec![PathBuf::from("/var/lib/docker")];
    // A data root of the caller's choosing, first (the tests' own).
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
    if let Ok(procs) = std::fs::read_dir("/proc") {
        for entry in procs.flatten() {
            let dir = entry.path();
            if std::fs::read_to_string(dir.join("comm")).map(|c| c.trim() == "dockerd").unwrap_or(false) {
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
    }
    roots.dedup();
    roots
}

/// What dockerd recorded about container `id`, from the first data root
/// that has it.
pub fn docker_container(id: &str, roots: &[PathBuf]) -> Result<ContainerInfo> {
    let mut last = None;
    for root in roots {
        let path = root.join("containers").join(id).join("config.v2.json");
        match std::fs::read(&path) {
            Ok(bytes) => return parse_docker_record(id, &bytes).map_err(|e| Error::io(&path, e)),
            Err(e) => last = Some(Error::io(&path, e)),
        }
    }
    Err(last.unwrap_or_else(|| Error::io(Path::new("/var/lib/docker"), std::io::ErrorKind::NotFound.into())))
}

fn parse_docker_record(id: &str, bytes: &[u8]) -> std::io::Result<ContainerInfo> {
    let record: DockerRecord = serde_json::from_slice(bytes)?;
    Ok(ContainerInfo {
        id: id.to_string(),
        name: record.name.trim_start_matches('/').to_string(),
        image: record.config.image,
        labels: record.config.labels.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_name_image_and_labels_from_dockers_record() {
        let record = br#"{"ID":"x","Name":"/builder","Config":{"Image":"moby/buildkit:v0.12","Labels":{"ci.job":"7"}},"State":{}}"#;
        let info = parse_docker_record("x", record).expect("record");
        assert_eq!(info.name, "builder");
        assert_eq!(info.image, "moby/buildkit:v0.12");
        assert_eq!(info.labels.get("ci.job").map(String::as_str), Some("7"));
        let no_labels = br#"{"Name":"/a","Config":{"Image":"alpine","Labels":null}}"#;
        assert!(parse_docker_record("y", no_labels).expect("record").labels.is_empty());
        assert!(parse_docker_record("z", b"{not json").is_err());
    }
}
