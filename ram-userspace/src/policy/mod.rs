//! The policy file: parse, validate, compile.
//!
//! Parsing turns TOML into [`Policy`] and refuses anything doubtful with a
//! [`PolicyError`] naming the file, the field and the value. Nothing is
//! attached or written before a policy has passed all of it.

mod cidr;
mod compile;
pub mod containers;
mod parse;
pub mod presets;
mod unit;

pub use cidr::Cidr;
pub use compile::{
    lost_resolvers, merge_resolver_rows, scope_identity, Access, CompiledPolicy, NameEntry, ScopeSettings,
};
pub use containers::{ContainerInfo, ContainerSelector, Runtime};
pub use parse::HostFacts;
pub use unit::Unit;

use std::{net::IpAddr, path::PathBuf};

use ram_common::name::HostKey;
use serde::Serialize;

/// Where ramd reads its policy unless told otherwise.
pub const DEFAULT_POLICY_PATH: &str = "/etc/ram/ram.toml";
/// The embedded default: Docker Hub only, on the running dockerd/containerd.
pub const DEFAULT_POLICY: &str = include_str!("default.toml");
pub const DEFAULT_POLICY_SOURCE: &str = "<embedded default policy>";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Deny what the policy does not allow.
    Enforce,
    /// Allow everything; log and count what enforce would deny.
    Audit,
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Enforce => "enforce",
            Mode::Audit => "audit",
        })
    }
}

/// What a target does with sockets outside the runtime's network namespace
/// (`[dns] netns`, or ramd's own).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Containers {
    /// They are the runtime's containers' (or its embedded DNS server's,
    /// answering them) and pass unjudged: ram enforces the runtime.
    #[default]
    Pass,
    /// Every socket in the target's cgroups is judged, whatever its
    /// namespace (a target that is itself a container or a CI job).
    Enforce,
}

impl std::fmt::Display for Containers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Containers::Pass => "pass",
            Containers::Enforce => "enforce",
        })
    }
}

/// A validated policy.
#[derive(Clone, Debug)]
pub struct Policy {
    /// The file it came from (or the embedded default's label), for messages.
    pub source: String,
    pub mode: Mode,
    pub dns: DnsSettings,
    pub limits: Limits,
    pub metrics: MetricsSettings,
    pub targets: Vec<Target>,
    /// Top-level rules: they apply to every target.
    pub allow: Vec<AllowRule>,
    /// Accepted but worth an admin's second look (risky wildcards), each
    /// naming file, field and value.
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsSettings {
    /// Answers are learned only from these, and they are reachable on port 53.
    pub resolvers: Vec<IpAddr>,
    /// Besides `resolvers`, for docker container targets: what Docker
    /// gives containers on its default bridge (empty when the policy names
    /// its resolvers).
    pub container_resolvers: Vec<IpAddr>,
    /// The resolvers come from the host's resolv.conf (the policy names
    /// none), so they follow its changes.
    pub follows_host: bool,
    pub min_ttl: u32,
    pub max_ttl: u32,
    /// How long after its query an answer still teaches (ms).
    pub answer_window_ms: u32,
    /// The network namespace whose DNS exchanges are trusted (a path such
    /// as /run/netns/NAME); None: ramd's own.
    pub netns: Option<std::path::PathBuf>,
}

/// Map sizes. They size maps when ramd starts; a different value at the
/// next start replaces the maps and carries their entries over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Entries of each learned-address map (IPv4 and IPv6 have one each),
    /// shared by every target. When one is full, new addresses are not
    /// learned, so connects to them are denied (counted as learn_map_full).
    pub learned_addresses: u32,
    /// Addresses learned from one DNS answer at most (1 to
    /// `ram_common::dns::MAX_ANSWERS`); the rest are not learned and the
    /// kernel counts the answer (learn_capped).
    pub addresses_per_answer: u32,
    /// Entries of the host-name rule map: distinct host names (exact and
    /// wildcard) of the whole policy.
    pub host_rules: u32,
    /// Entries of each address-rule map (IPv4, IPv6): distinct `cidr` rules.
    pub address_rules: u32,
}

/// `[metrics]`: where ramd serves Prometheus metrics (`ramd --metrics`
/// overrides it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetricsSettings {
    /// None: no metrics listener.
    pub listen: Option<crate::metrics::ListenAddr>,
}

/// Bounds of `[limits] host_rules` and `address_rules`. A host rule costs
/// the kernel about 450 bytes (a 256-byte name key, its rule and the
/// trie's node), so the largest name map is about 120 MB.
pub const MAX_HOST_RULES: u32 = 1 << 18;
pub const MAX_ADDRESS_RULES: u32 = 1 << 16;
pub const MIN_RULES: u32 = 16;
pub const MIN_LEARNED_ADDRESSES: u32 = 16;
pub const MAX_LEARNED_ADDRESSES: u32 = 1 << 22;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Target {
    pub name: String,
    pub selector: Selector,
    pub mode: Mode,
    pub containers: Containers,
    /// `rootless_helpers = "pass"`: a rootless runtime's network helpers'
    /// sockets pass as its containers' do.
    pub rootless_helpers: bool,
    /// `[[target.allow]]` rules: for this target only, besides the top-level ones.
    #[serde(skip)]
    pub allow: Vec<AllowRule>,
}

/// How a target finds its cgroups.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Selector {
    /// One cgroup v2 directory (and everything below it).
    Cgroup(PathBuf),
    /// The cgroup of each running process with this name.
    Process(String),
    /// A systemd unit's cgroup, once systemd has made it.
    Unit(Unit),
    /// `process` and `unit` together: the union of their cgroups. On a
    /// systemd host the unit's cgroup is there before the runtime runs; on
    /// a host without systemd the process is still found.
    ProcessOrUnit { process: String, unit: Unit },
    /// Containers a runtime starts (`containers = "docker"`), filtered by
    /// image and label: the programs go on the cgroup v2 root and judge
    /// only the containers this target holds.
    Containers(ContainerSelector),
}

impl Selector {
    pub fn containers(&self) -> Option<&ContainerSelector> {
        match self {
            Selector::Containers(selector) => Some(selector),
            _ => None,
        }
    }
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit =
            |f: &mut std::fmt::Formatter<'_>, unit: &Unit| write!(f, "unit {} at {}", unit.name, unit.cgroup.display());
        match self {
            Selector::Cgroup(path) => write!(f, "cgroup {}", path.display()),
            Selector::Process(name) => write!(f, "process {name}"),
            Selector::Unit(u) => unit(f, u),
            Selector::ProcessOrUnit { process, unit: u } => {
                write!(f, "process {process} + ")?;
                unit(f, u)
            }
            Selector::Containers(selector) => write!(f, "{selector}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
#[expect(
    clippy::large_enum_variant,
    reason = "a policy holds rules by the thousand, not the million; boxing the key would only add indirection"
)]
pub enum AllowRule {
    /// `host = "..."`: an exact name or a `*.suffix` pattern (also what a
    /// `preset` expands to). `origin` names where it was written, for messages.
    Host { pattern: String, key: HostKey, origin: String, ports: Option<Vec<u16>> },
    /// `cidr = "..."`: addresses allowed without DNS.
    Cidr { block: Cidr, ports: Option<Vec<u16>> },
}

/// Why a policy was refused. Every variant names the file; field and value
/// where there is one.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{file}: cannot read: {cause}")]
    Read { file: String, cause: std::io::Error },
    #[error("{file}: {message}")]
    Syntax { file: String, message: String },
    #[error("{file}: {field} = {value}: {reason}")]
    Invalid { file: String, field: String, value: String, reason: String },
    #[error("{file}: {field}: {reason}")]
    Missing { file: String, field: String, reason: String },
}

impl Policy {
    /// Reads and validates a policy file.
    pub fn from_file(path: &std::path::Path, facts: &HostFacts) -> Result<Self, PolicyError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|cause| PolicyError::Read { file: file.clone(), cause })?;
        Self::parse(&text, &file, facts)
    }

    /// The embedded default policy.
    pub fn embedded_default(facts: &HostFacts) -> Result<Self, PolicyError> {
        Self::parse(DEFAULT_POLICY, DEFAULT_POLICY_SOURCE, facts)
    }

    /// Parses and validates policy text; `file` names it in errors.
    pub fn parse(text: &str, file: &str, facts: &HostFacts) -> Result<Self, PolicyError> {
        parse::parse(text, file, facts)
    }

    /// The host rules that match `host` for the target named `target`
    /// (top-level rules and its own), for `ramctl explain`: where each was
    /// written, its pattern and its ports. Every match is listed; the
    /// kernel applies the most specific.
    pub fn host_rules_matching(&self, target: &str, host: &str) -> Vec<RuleMatch> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let own = self.targets.iter().filter(|t| t.name == target).flat_map(|t| &t.allow);
        self.allow
            .iter()
            .chain(own)
            .filter_map(|rule| match rule {
                AllowRule::Host { pattern, origin, ports, .. } if host_matches(pattern, &host) => {
                    Some(RuleMatch { origin: origin.clone(), pattern: pattern.clone(), ports: ports.clone() })
                }
                _ => None,
            })
            .collect()
    }
}

/// A rule that matches a name (see [`Policy::host_rules_matching`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleMatch {
    pub origin: String,
    pub pattern: String,
    /// None: any port.
    pub ports: Option<Vec<u16>>,
}

/// `pattern` (lowercase: exact, or `*.suffix` for any name below suffix)
/// matches `host` (lowercase, without the trailing dot).
fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => {
            host.len() > suffix.len() + 1 && host.ends_with(suffix) && host[..host.len() - suffix.len()].ends_with('.')
        }
        None => pattern == host,
    }
}
#[cfg(test)]
mod tests;
