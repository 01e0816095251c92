//! Container targets: `containers = "docker"`, with optional `image` and
//! `label` filters. Which containers a target holds is decided here, from
//! what the runtime recorded about each (see `crate::containers` for the
//! reading); this module stays pure.

use std::collections::BTreeMap;

use ram_common::maps::{CgroupPattern, PATTERN_PREFIX_LEN, PATTERN_SUFFIX_LEN, RUNTIME_DOCKER};
use serde::Serialize;

/// A runtime whose containers a target can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    Docker,
}

impl Runtime {
    /// `ram_common::maps::Member::runtime`.
    pub fn kernel_id(self) -> u32 {
        match self {
            Runtime::Docker => RUNTIME_DOCKER,
        }
    }

    /// The cgroup v2 paths (relative to the root) of this runtime's
    /// containers: dockerd's systemd cgroup driver
    /// (`system.slice/docker-<id>.scope`) and its cgroupfs driver
    /// (`docker/<id>`). Both are two levels below the root.
    pub fn cgroup_patterns(self) -> Vec<ContainerPath> {
        match self {
            Runtime::Docker => vec![
                ContainerPath { parent: "system.slice", prefix: "docker-", suffix: ".scope" },
                ContainerPath { parent: "docker", prefix: "", suffix: "" },
            ],
        }
    }

    /// Depth of its containers' cgroups below the v2 root.
    pub fn level(self) -> u32 {
        2
    }
}

impl std::fmt::Display for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Runtime::Docker => "docker",
        })
    }
}

/// Where a runtime puts a container's cgroup: `<parent>/<prefix><id><suffix>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContainerPath {
    pub parent: &'static str,
    pub prefix: &'static str,
    pub suffix: &'static str,
}

impl ContainerPath {
    /// The container id in a cgroup directory name of this kind.
    pub fn container_id<'a>(&self, name: &'a str) -> Option<&'a str> {
        let id = name.strip_prefix(self.prefix)?.strip_suffix(self.suffix)?;
        (id.len() == 64 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))).then_some(id)
    }

    /// The row `ram_cgroup_mkdir` matches paths against.
    pub fn kernel_pattern(&self, runtime: Runtime) -> CgroupPattern {
        let prefix = format!("/{}/{}", self.parent, self.prefix);
        let mut pattern = CgroupPattern {
            runtime: runtime.kernel_id(),
            prefix_len: prefix.len() as u32,
            suffix_len: self.suffix.len() as u32,
            ..CgroupPattern::default()
        };
        // The patterns are this module's constants, all far shorter.
        let (p, s) = (prefix.len().min(PATTERN_PREFIX_LEN), self.suffix.len().min(PATTERN_SUFFIX_LEN));
        pattern.prefix[..p].copy_from_slice(&prefix.as_bytes()[..p]);
        pattern.suffix[..s].copy_from_slice(&self.suffix.as_bytes()[..s]);
        pattern
    }
}

/// `label = "KEY"` or `label = "KEY=VALUE"`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct LabelMatch {
    pub key: String,
    pub value: Option<String>,
}

impl LabelMatch {
    pub fn parse(text: &str) -> Result<Self, String> {
        let (key, value) = match text.split_once('=') {
            Some((key, value)) => (key, Some(value.to_string())),
            None => (text, None),
        };
        if key.is_empty() {
            return Err("the label key must not be empty (KEY or KEY=VALUE)".into());
        }
        Ok(LabelMatch { key: key.to_string(), value })
    }
}

impl std::fmt::Display for LabelMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.value {
            Some(value) => write!(f, "{}={value}", self.key),
            None => f.write_str(&self.key),
        }
    }
}

/// Which containers a container target holds.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct ContainerSelector {
    pub runtime: Runtime,
    /// A pattern where `*` stands for any run of characters, matched
    /// against the image reference the container was started from, as
    /// written, and both in full (`moby/x` is `docker.io/moby/x`).
    pub image: Option<String>,
    pub label: Option<LabelMatch>,
}

/// What a runtime recorded about one container.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ContainerInfo {
    pub id: String,
    pub name: String,
    pub image: String,
    pub labels: BTreeMap<String, String>,
}

impl ContainerSelector {
    pub fn matches(&self, container: &ContainerInfo) -> bool {
        let image_ok = self.image.as_deref().is_none_or(|pattern| {
            let written = container.image.as_str();
            glob(pattern, written) || glob(&full_reference(pattern), &full_reference(written))
        });
        let label_ok = self.label.as_ref().is_none_or(|label| match (container.labels.get(&label.key), &label.value) {
            (Some(_), None) => true,
            (Some(value), Some(wanted)) => value == wanted,
            (None, _) => false,
        });
        image_ok && label_ok
    }
}

impl std::fmt::Display for ContainerSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} containers", self.runtime)?;
        if let Some(image) = &self.image {
            write!(f, " of image {image}")?;
        }
        if let Some(label) = &self.label {
            write!(f, " labelled {label}")?;
        }
        Ok(())
    }
}

/// An image reference in full: the registry (docker.io when none is
/// named) and, on Docker Hub, `library/` for official images.
pub fn full_reference(reference: &str) -> String {
    let first = reference.split('/').next().unwrap_or_default();
    let has_registry = reference.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    if has_registry {
        return reference.to_string();
    }
    if reference.contains('/') {
        format!("docker.io/{reference}")
    } else {
        format!("docker.io/library/{reference}")
    }
}

/// `*` matches any run of characters (none included); all else literally.
pub fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || !text[first.len()..].ends_with(last) || text.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(image: &str, labels: &[(&str, &str)]) -> ContainerInfo {
        ContainerInfo {
            id: "a".repeat(64),
            name: "c".into(),
            image: image.into(),
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    #[test]
    fn globs_match_runs_of_characters() {
        assert!(glob("moby/buildkit*", "moby/buildkit:buildx-stable-1"));
        assert!(glob("moby/buildkit*", "moby/buildkit"));
        assert!(!glob("moby/buildkit*", "moby/other"));
        assert!(glob("*buildkit*", "docker.io/moby/buildkit:v0.12"));
        assert!(glob("a*b*c", "axxbyyc"));
        assert!(!glob("a*b*c", "axxcyyb"));
        assert!(!glob("ab*ba", "aba"));
        assert!(glob("exact", "exact") && !glob("exact", "exact2"));
    }

    #[test]
    fn images_match_as_written_or_in_full() {
        let builders =
            ContainerSelector { runtime: Runtime::Docker, image: Some("moby/buildkit*".into()), label: None };
        assert!(builders.matches(&container("moby/buildkit:buildx-stable-1", &[])));
        // As written, or both in full: `moby/...` is `docker.io/moby/...`.
        assert!(builders.matches(&container("docker.io/moby/buildkit:latest", &[])));
        assert!(!builders.matches(&container("ghcr.io/moby/buildkit:latest", &[])));
        let full =
            ContainerSelector { runtime: Runtime::Docker, image: Some("docker.io/moby/buildkit*".into()), label: None };
        assert!(full.matches(&container("moby/buildkit:latest", &[])));
        let official = ContainerSelector {
            runtime: Runtime::Docker,
            image: Some("docker.io/library/alpine*".into()),
            label: None,
        };
        assert!(official.matches(&container("alpine:3", &[])));
        assert!(!official.matches(&container("registry.example.com/alpine:3", &[])));
        assert_eq!(full_reference("localhost:5000/x"), "localhost:5000/x");
    }

    #[test]
    fn labels_match_by_key_or_key_and_value() {
        let key = ContainerSelector {
            runtime: Runtime::Docker,
            image: None,
            label: Some(LabelMatch::parse("ci.job").unwrap()),
        };
        assert!(key.matches(&container("x", &[("ci.job", "42")])));
        assert!(!key.matches(&container("x", &[("other", "1")])));
        let value = ContainerSelector {
            runtime: Runtime::Docker,
            image: None,
            label: Some(LabelMatch::parse("ci.job=42").unwrap()),
        };
        assert!(value.matches(&container("x", &[("ci.job", "42")])));
        assert!(!value.matches(&container("x", &[("ci.job", "43")])));
        assert!(LabelMatch::parse("=x").is_err());
    }

    #[test]
    fn container_ids_come_only_from_names_of_the_runtimes_kind() {
        let id = "0123456789abcdef".repeat(4);
        let [systemd, cgroupfs] = [Runtime::Docker.cgroup_patterns()[0], Runtime::Docker.cgroup_patterns()[1]];
        assert_eq!(systemd.container_id(&format!("docker-{id}.scope")), Some(id.as_str()));
        assert_eq!(systemd.container_id(&format!("docker-{id}.service")), None);
        assert_eq!(systemd.container_id("docker.service"), None);
        assert_eq!(cgroupfs.container_id(&id), Some(id.as_str()));
        assert_eq!(cgroupfs.container_id(&id.to_uppercase()), None);
        let pattern = systemd.kernel_pattern(Runtime::Docker);
        assert_eq!(&pattern.prefix[..pattern.prefix_len as usize], b"/system.slice/docker-");
        assert_eq!(&pattern.suffix[..pattern.suffix_len as usize], b".scope");
    }
}
