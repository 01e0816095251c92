//! Registry presets: `[[allow]] preset = "dockerhub"` expands to every host a
//! pull from that registry needs (API, token service, blob storage/CDN).
//!
//! The data is registry-hosts.toml beside this file, researched with a source
//! for every fact (each preset's `sources`); what the research could not
//! confirm is listed under `[notes.<name>].unconfirmed` and shown by
//! `ramctl presets`. Host strings may hold `{region}`, which the rule's
//! `region` fills in (ECR).

use std::{collections::BTreeMap, sync::OnceLock};

use serde::{Deserialize, Serialize};

const DATA: &str = include_str!("registry-hosts.toml");

#[derive(Deserialize)]
struct File {
    presets: BTreeMap<String, PresetData>,
    #[serde(default)]
    notes: BTreeMap<String, Notes>,
}

#[derive(Deserialize)]
struct PresetData {
    description: String,
    #[serde(default)]
    hosts: Vec<String>,
    #[serde(default)]
    wildcards: Vec<String>,
    #[serde(default)]
    sources: Vec<String>,
}

#[derive(Deserialize, Default)]
struct Notes {
    #[serde(default)]
    ports: Vec<u16>,
    #[serde(default)]
    unconfirmed: Vec<String>,
}

/// One preset as ramctl shows it.
#[derive(Clone, Debug, Serialize)]
pub struct Preset {
    /// The name policies use (`ecr-public`; `ecr_public` is accepted too).
    pub name: String,
    pub description: String,
    pub hosts: Vec<String>,
    pub wildcards: Vec<String>,
    /// Ports the registry uses (443 unless the research says otherwise).
    pub ports: Vec<u16>,
    /// Facts the research could not confirm.
    pub unconfirmed: Vec<String>,
    pub sources: Vec<String>,
    /// Template parameters the hosts need (`region`).
    pub needs_region: bool,
}

fn load() -> Result<Vec<Preset>, String> {
    let file: File = toml::from_str(DATA).map_err(|e| format!("embedded registry-hosts.toml: {e}"))?;
    Ok(file
        .presets
        .into_iter()
        .map(|(key, data)| {
            let notes = file.notes.get(&key);
            let needs_region = data.hosts.iter().chain(&data.wildcards).any(|h| h.contains("{region}"));
            Preset {
                name: key.replace('_', "-"),
                description: data.description,
                hosts: data.hosts,
                wildcards: data.wildcards,
                ports: notes.map(|n| n.ports.clone()).filter(|p| !p.is_empty()).unwrap_or_else(|| vec![443]),
                unconfirmed: notes.map(|n| n.unconfirmed.clone()).unwrap_or_default(),
                sources: data.sources,
                needs_region,
            }
        })
        .collect())
}

/// Every preset, by name.
pub fn all() -> &'static [Preset] {
    static PRESETS: OnceLock<Vec<Preset>> = OnceLock::new();
    // The data is compiled in and checked by a unit test, so a parse error
    // cannot reach a user; an empty list would still refuse every preset rule.
    PRESETS.get_or_init(|| load().unwrap_or_default())
}

pub fn find(name: &str) -> Option<&'static Preset> {
    let wanted = name.trim().to_ascii_lowercase().replace('_', "-");
    all().iter().find(|p| p.name == wanted)
}

/// The host patterns of a preset with its template filled in.
pub fn expand(preset: &Preset, region: Option<&str>) -> Result<Vec<String>, String> {
    let region = match (preset.needs_region, region) {
        (true, None) => {
            return Err(format!("preset {} needs `region` (for example region = \"us-east-1\")", preset.name))
        }
        (false, Some(_)) => return Err(format!("preset {} takes no `region`", preset.name)),
        (true, Some(r))
            if r.is_empty() || !r.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') =>
        {
            return Err(format!("`{r}` is not a region name (like us-east-1)"));
        }
        (_, r) => r,
    };
    Ok(preset
        .hosts
        .iter()
        .chain(&preset.wildcards)
        .map(|h| match region {
            Some(r) => h.replace("{region}", r),
            None => h.clone(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_required_preset_is_there_and_encodes() {
        assert!(load().is_ok());
        for name in [
            "dockerhub",
            "ghcr",
            "ecr",
            "ecr-public",
            "gcr",
            "artifact-registry",
            "quay",
            "mcr",
            "acr",
            "gitlab",
            "k8s",
            "nvidia",
            "chainguard",
            "redhat",
        ] {
            let preset = find(name).unwrap_or_else(|| panic!("no preset {name}"));
            let region = preset.needs_region.then_some("us-east-1");
            let hosts = expand(preset, region).unwrap();
            assert!(!hosts.is_empty(), "{name}");
            for host in hosts {
                ram_common::name::encode_host(&host).unwrap_or_else(|e| panic!("{name}: {host}: {e:?}"));
            }
            assert!(!preset.sources.is_empty(), "{name} cites no source");
        }
        assert!(find("ECR_PUBLIC").is_some());
    }

    #[test]
    fn ecr_needs_a_region() {
        let ecr = find("ecr").unwrap();
        assert!(expand(ecr, None).unwrap_err().contains("needs `region`"));
        assert!(expand(ecr, Some("us-east-1; rm")).is_err());
        let hosts = expand(ecr, Some("eu-west-1")).unwrap();
        assert!(hosts.contains(&"*.dkr.ecr.eu-west-1.amazonaws.com".to_string()), "{hosts:?}");
        assert!(expand(find("dockerhub").unwrap(), Some("eu-west-1")).is_err());
    }
}
