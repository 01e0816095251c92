//! TOML → [`Policy`], refusing anything doubtful.

use std::{
    collections::HashSet,
    net::IpAddr,
    path::{Component, Path, PathBuf},
};

use ram_common::{
    maps::{CIDR_CAPACITY, DNS_ANSWER_WINDOW_MS, LEARN_CAPACITY, MAX_SCOPES, NAMES_CAPACITY, PORTS_PER_SET},
    name::{encode_host, HostError, MAX_HOST_LEN},
};
use serde::Deserialize;

use super::{
    containers::LabelMatch, presets, AllowRule, Cidr, ContainerSelector, Containers, DnsSettings, Limits,
    MetricsSettings, Mode, Policy, PolicyError, Runtime, Selector, Target, Unit, MAX_ADDRESS_RULES, MAX_HOST_RULES,
    MAX_LEARNED_ADDRESSES, MIN_LEARNED_ADDRESSES, MIN_RULES,
};
use crate::metrics::ListenAddr;

pub const DEFAULT_MIN_TTL: u32 = 30;
pub const DEFAULT_MAX_TTL: u32 = 86400;

/// What validation needs to know about the host, gathered once so parsing
/// stays a pure function that tests can feed.
#[derive(Clone, Debug, Default)]
pub struct HostFacts {
    pub cgroup2_mount: Option<PathBuf>,
    /// Contents of /etc/resolv.conf, for default resolvers.
    pub resolv_conf: Option<String>,
    /// Contents of systemd-resolved's upstream list
    /// (/run/systemd/resolve/resolv.conf), which Docker gives containers
    /// when the host's resolv.conf names only 127.0.0.53.
    pub resolved_upstream: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    mode: Option<Mode>,
    #[serde(default)]
    dns: RawDns,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    metrics: RawMetrics,
    #[serde(default)]
    target: Vec<RawTarget>,
    #[serde(default)]
    allow: Vec<RawAllow>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDns {
    resolvers: Option<Vec<String>>,
    min_ttl: Option<u32>,
    max_ttl: Option<u32>,
    /// Seconds (fractions allowed) an answer may take and still teach.
    answer_window: Option<f64>,
    /// The network namespace whose DNS is trusted.
    netns: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    learned_addresses: Option<i64>,
    addresses_per_answer: Option<i64>,
    host_rules: Option<i64>,
    address_rules: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    /// `IP:PORT` or `unix:/PATH`; absent: no metrics.
    listen: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    name: Option<String>,
    cgroup: Option<String>,
    process: Option<String>,
    /// A systemd unit (`docker.service`, `SLICE/UNIT`).
    unit: Option<String>,
    mode: Option<Mode>,
    /// "pass" or "enforce" (a runtime target's containers), or "docker"
    /// (a container target).
    containers: Option<String>,
    /// "pass" or "judge" (the default): a rootless runtime's network
    /// helpers (slirp4netns, pasta).
    rootless_helpers: Option<String>,
    /// A container target's image pattern and label.
    image: Option<String>,
    label: Option<String>,
    /// `[[target.allow]]` tables: rules for this target only.
    #[serde(default)]
    allow: Vec<RawAllow>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAllow {
    host: Option<String>,
    cidr: Option<String>,
    /// A registry preset (see policy/presets.rs), with `region` for ECR.
    preset: Option<String>,
    region: Option<String>,
    /// Destination ports this rule allows (any when absent).
    ports: Option<Vec<i64>>,
}

struct Ctx<'a> {
    file: &'a str,
}

impl Ctx<'_> {
    fn invalid(
        &self,
        field: impl Into<String>,
        value: impl std::fmt::Display,
        reason: impl Into<String>,
    ) -> PolicyError {
        PolicyError::Invalid {
            file: self.file.to_string(),
            field: field.into(),
            value: format!("\"{value}\""),
            reason: reason.into(),
        }
    }

    fn missing(&self, field: impl Into<String>, reason: impl Into<String>) -> PolicyError {
        PolicyError::Missing { file: self.file.to_string(), field: field.into(), reason: reason.into() }
    }
}

pub(super) fn parse(text: &str, file: &str, facts: &HostFacts) -> Result<Policy, PolicyError> {
    let raw: RawPolicy = toml::from_str(text)
        .map_err(|e| PolicyError::Syntax { file: file.to_string(), message: e.to_string().trim_end().to_string() })?;
    let ctx = Ctx { file };
    let mode = raw.mode.unwrap_or(Mode::Enforce);
    let allow = allow_rules(&ctx, "allow", &raw.allow)?;
    let targets = targets(&ctx, &raw.target, mode, facts)?;
    let every_rule: Vec<&AllowRule> = allow.iter().chain(targets.iter().flat_map(|t| &t.allow)).collect();
    let needs_dns = every_rule.iter().any(|r| matches!(r, AllowRule::Host { .. }));
    let dns = dns_settings(&ctx, &raw.dns, facts, needs_dns)?;
    let limits = limits(&ctx, &raw.limits)?;
    let metrics = metrics_settings(&ctx, &raw.metrics)?;
    let warnings = every_rule
        .iter()
        .filter_map(|rule| match rule {
            AllowRule::Host { pattern, key, origin, .. } if key.wildcard => {
                open_namespace(pattern).map(|why| format!("{file}: {origin}: {why}"))
            }
            _ => None,
        })
        .collect();
    Ok(Policy { source: file.to_string(), mode, dns, limits, metrics, targets, allow, warnings })
}

fn limits(ctx: &Ctx, raw: &RawLimits) -> Result<Limits, PolicyError> {
    let learned_addresses = match raw.learned_addresses {
        None => LEARN_CAPACITY,
        Some(n) if (MIN_LEARNED_ADDRESSES as i64..=MAX_LEARNED_ADDRESSES as i64).contains(&n) => n as u32,
        Some(n) => {
            return Err(ctx.invalid(
                "limits.learned_addresses",
                n,
                format!("must be between {MIN_LEARNED_ADDRESSES} and {MAX_LEARNED_ADDRESSES}"),
            ))
        }
    };
    let most = ram_common::dns::MAX_ANSWERS as i64;
    let addresses_per_answer = match raw.addresses_per_answer {
        None => most as u32,
        Some(n) if (1..=most).contains(&n) => n as u32,
        Some(n) => return Err(ctx.invalid("limits.addresses_per_answer", n, format!("must be between 1 and {most}"))),
    };
    let sized = |field: &str, value: Option<i64>, default: u32, max: u32| match value {
        None => Ok(default),
        Some(n) if (MIN_RULES as i64..=max as i64).contains(&n) => Ok(n as u32),
        Some(n) => Err(ctx.invalid(field, n, format!("must be between {MIN_RULES} and {max}"))),
    };
    let host_rules = sized("limits.host_rules", raw.host_rules, NAMES_CAPACITY, MAX_HOST_RULES)?;
    let address_rules = sized("limits.address_rules", raw.address_rules, CIDR_CAPACITY, MAX_ADDRESS_RULES)?;
    Ok(Limits { learned_addresses, addresses_per_answer, host_rules, address_rules })
}

fn metrics_settings(ctx: &Ctx, raw: &RawMetrics) -> Result<MetricsSettings, PolicyError> {
    let listen = match &raw.listen {
        None => None,
        Some(text) => Some(text.parse::<ListenAddr>().map_err(|reason| ctx.invalid("metrics.listen", text, reason))?),
    };
    Ok(MetricsSettings { listen })
}

/// Namespaces where anyone can create names (a bucket, a site, an app):
/// a wildcard over them lets pulls reach hosts anyone controls.
const OPEN_NAMESPACES: &[(&str, &str)] = &[
    ("s3.amazonaws.com", "an S3 bucket"),
    ("amazonaws.com", "an S3 bucket or a load balancer"),
    ("cloudfront.net", "a CloudFront distribution"),
    ("blob.core.windows.net", "an Azure storage account"),
    ("azureedge.net", "an Azure CDN endpoint"),
    ("storage.googleapis.com", "a Cloud Storage bucket"),
    ("googleapis.com", "a Cloud Storage bucket"),
    ("appspot.com", "an App Engine app"),
    ("r2.cloudflarestorage.com", "an R2 bucket"),
    ("r2.dev", "an R2 bucket"),
    ("workers.dev", "a Cloudflare Worker"),
    ("pages.dev", "a Cloudflare Pages site"),
    ("github.io", "a GitHub Pages site"),
    ("githubusercontent.com", "a GitHub repository's content"),
    ("herokuapp.com", "a Heroku app"),
    ("netlify.app", "a Netlify site"),
    ("vercel.app", "a Vercel deployment"),
    ("fastly.net", "a Fastly service"),
];

/// The suffix of a `*.suffix` pattern when it is a public suffix: a
/// top-level domain, or an ICANN or private entry of the Public Suffix List
/// (`co.uk`, `github.io`, `s3.amazonaws.com`). A name the list does not
/// know is judged by its last label, as the list's own default rule `*`
/// says: a single label (`*.com`, `*.internal`) is a suffix.
pub(super) fn public_suffix_wildcard(pattern: &str) -> Option<String> {
    let suffix = pattern.strip_prefix("*.")?.trim_end_matches('.').to_ascii_lowercase();
    let found = psl::suffix(suffix.as_bytes())?;
    (found.as_bytes() == suffix.as_bytes()).then_some(suffix)
}

/// Why `*.suffix` is risky, when it covers (or sits inside) an open
/// namespace, or is itself a public suffix (only a preset can say so: a
/// written rule of that kind is refused).
fn open_namespace(pattern: &str) -> Option<String> {
    let suffix = pattern.strip_prefix("*.")?;
    let covers = |ns: &str| suffix == ns || suffix.ends_with(&format!(".{ns}")) || ns.ends_with(&format!(".{suffix}"));
    let namespace = OPEN_NAMESPACES.iter().find(|(ns, _)| covers(ns));
    if let Some(public) = public_suffix_wildcard(pattern) {
        let what = namespace.map(|(_, what)| format!(" ({what})")).unwrap_or_default();
        return Some(format!(
            "{public} is a public suffix{what}: anyone can register a name below it, so this wildcard lets \
             pulls reach hosts anyone controls; the registry documents no narrower name"
        ));
    }
    let (namespace, what) = namespace?;
    Some(format!(
        "anyone can create a name below {namespace} ({what}), so this wildcard lets pulls reach hosts \
         anyone controls; allow the exact hosts the registry uses instead"
    ))
}

fn allow_rules(ctx: &Ctx, field: &str, raw: &[RawAllow]) -> Result<Vec<AllowRule>, PolicyError> {
    let mut rules = Vec::new();
    for (i, rule) in raw.iter().enumerate() {
        rules.extend(allow_rule(ctx, &format!("{field}[{i}]"), rule)?);
    }
    Ok(rules)
}

fn host_rule(
    ctx: &Ctx,
    field: &str,
    origin: String,
    host: &str,
    ports: &Option<Vec<u16>>,
) -> Result<AllowRule, PolicyError> {
    let key = encode_host(host).map_err(|e| ctx.invalid(field, host, host_error(e)))?;
    Ok(AllowRule::Host { pattern: host.trim_end_matches('.').to_ascii_lowercase(), key, origin, ports: ports.clone() })
}

fn port_list(ctx: &Ctx, field: &str, raw: &Option<Vec<i64>>) -> Result<Option<Vec<u16>>, PolicyError> {
    let Some(list) = raw else { return Ok(None) };
    let field = format!("{field}.ports");
    if list.is_empty() {
        return Err(ctx.invalid(&field, "[]", "an empty list allows nothing; leave `ports` out to allow any port"));
    }
    let mut ports = Vec::with_capacity(list.len());
    for port in list {
        match u16::try_from(*port) {
            Ok(p) if p > 0 => ports.push(p),
            _ => return Err(ctx.invalid(&field, port, "ports are 1 to 65535")),
        }
    }
    ports.sort_unstable();
    ports.dedup();
    if ports.len() > PORTS_PER_SET {
        return Err(ctx.invalid(&field, ports.len(), format!("at most {PORTS_PER_SET} ports per rule")));
    }
    Ok(Some(ports))
}

fn dns_settings(ctx: &Ctx, raw: &RawDns, facts: &HostFacts, needs_dns: bool) -> Result<DnsSettings, PolicyError> {
    let resolvers = match &raw.resolvers {
        Some(list) => list
            .iter()
            .enumerate()
            .map(|(i, text)| {
                text.trim().parse::<IpAddr>().map_err(|_| {
                    ctx.invalid(
                        format!("dns.resolvers[{i}]"),
                        text,
                        "not an IP address (resolvers are reached on port 53)",
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => facts.resolv_conf.as_deref().map(nameservers).unwrap_or_default(),
    };
    // What Docker gives containers on its default bridge: only when the
    // policy names no resolvers (an admin's list is the whole truth).
    let container_resolvers = match &raw.resolvers {
        Some(_) => Vec::new(),
        None => docker_container_resolvers(facts),
    };
    if resolvers.is_empty() && needs_dns {
        return Err(ctx.missing(
            "dns.resolvers",
            "host rules need a trusted resolver; none is set and /etc/resolv.conf names no nameserver",
        ));
    }
    let min_ttl = raw.min_ttl.unwrap_or(DEFAULT_MIN_TTL);
    let max_ttl = raw.max_ttl.unwrap_or(DEFAULT_MAX_TTL);
    if max_ttl == 0 {
        return Err(ctx.invalid("dns.max_ttl", max_ttl, "must be at least 1 second"));
    }
    if min_ttl > max_ttl {
        return Err(ctx.invalid("dns.min_ttl", min_ttl, format!("is larger than dns.max_ttl ({max_ttl})")));
    }
    let answer_window_ms = match raw.answer_window {
        None => DNS_ANSWER_WINDOW_MS,
        Some(s) if (0.1..=60.0).contains(&s) => (s * 1000.0).round() as u32,
        Some(s) => return Err(ctx.invalid("dns.answer_window", s, "must be between 0.1 and 60 seconds")),
    };
    let netns = match raw.netns.as_deref() {
        None => None,
        Some(path) if path.starts_with("/proc/") => {
            return Err(ctx.invalid(
                "dns.netns",
                path,
                "names a process, whose id may be reused by another once it exits; bind-mount the namespace \
                 (ip netns attach NAME PID) and use /run/netns/NAME",
            ))
        }
        Some(path) if path.starts_with('/') => Some(std::path::PathBuf::from(path)),
        Some(path) => {
            return Err(ctx.invalid(
                "dns.netns",
                path,
                "must be an absolute path to a network namespace (/run/netns/NAME)",
            ))
        }
    };
    let follows_host = raw.resolvers.is_none();
    Ok(DnsSettings { resolvers, container_resolvers, follows_host, min_ttl, max_ttl, answer_window_ms, netns })
}

/// The resolvers Docker writes into a default-bridge container's
/// resolv.conf: the host's nameservers that are not loopback addresses
/// (from systemd-resolved's upstream list when the host names 127.0.0.53),
/// or, when none is left, Docker's fallback (Google's public DNS).
pub fn docker_container_resolvers(facts: &HostFacts) -> Vec<IpAddr> {
    let host = facts.resolv_conf.as_deref().map(nameservers).unwrap_or_default();
    let stub: IpAddr = [127, 0, 0, 53].into();
    let source = match &facts.resolved_upstream {
        Some(upstream) if host.contains(&stub) => nameservers(upstream),
        _ => host,
    };
    let usable: Vec<IpAddr> = source.into_iter().filter(|a| !a.is_loopback()).collect();
    if !usable.is_empty() {
        return usable;
    }
    ["8.8.8.8", "8.8.4.4", "2001:4860:4860::8888", "2001:4860:4860::8844"]
        .iter()
        .filter_map(|a| a.parse().ok())
        .collect()
}

/// The `nameserver` addresses of a resolv.conf.
pub fn nameservers(resolv_conf: &str) -> Vec<IpAddr> {
    resolv_conf
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("nameserver")).then(|| words.next()).flatten()
        })
        // An IPv6 zone (fe80::1%eth0) is not part of the address.
        .filter_map(|addr| addr.split('%').next()?.parse().ok())
        .collect()
}

fn targets(ctx: &Ctx, raw: &[RawTarget], default_mode: Mode, facts: &HostFacts) -> Result<Vec<Target>, PolicyError> {
    if raw.is_empty() {
        return Err(ctx.missing("target", "no [[target]]: name at least one cgroup, process or unit to enforce"));
    }
    if raw.len() > MAX_SCOPES as usize {
        return Err(ctx.invalid("target", raw.len(), format!("at most {MAX_SCOPES} targets are supported")));
    }
    let mut names = HashSet::new();
    let mut out = Vec::with_capacity(raw.len());
    for (i, target) in raw.iter().enumerate() {
        let field = format!("target[{i}]");
        let (containers, runtime) = match target.containers.as_deref() {
            None | Some("pass") => (Containers::Pass, None),
            Some("enforce") => (Containers::Enforce, None),
            Some("docker") => (Containers::Enforce, Some(Runtime::Docker)),
            Some("podman") => {
                return Err(ctx.invalid(
                    format!("{field}.containers"),
                    "podman",
                    "podman containers are not supported as targets yet; enforce podman itself with `process = \"podman\"`",
                ))
            }
            Some(other) => {
                return Err(ctx.invalid(
                    format!("{field}.containers"),
                    other,
                    "must be \"pass\" or \"enforce\" (what a runtime target does with its containers' sockets), or \"docker\" (a target of the containers dockerd starts)",
                ))
            }
        };
        let selector = match runtime {
            Some(runtime) => container_selector(ctx, &field, target, runtime)?,
            None => {
                for (key, value) in [("image", &target.image), ("label", &target.label)] {
                    if let Some(value) = value {
                        return Err(ctx.invalid(
                            format!("{field}.{key}"),
                            value,
                            "only a container target (containers = \"docker\") filters by image or label",
                        ));
                    }
                }
                selector(ctx, &field, target, facts)?
            }
        };
        let name = match &target.name {
            Some(name) if name.trim().is_empty() => {
                return Err(ctx.invalid(format!("{field}.name"), name, "must not be empty"))
            }
            Some(name) => name.clone(),
            None => default_target_name(&selector),
        };
        if !names.insert(name.clone()) {
            return Err(ctx.invalid(
                format!("{field}.name"),
                &name,
                "another target has this name; give each a distinct `name`",
            ));
        }
        let allow = allow_rules(ctx, &format!("{field}.allow"), &target.allow)?;
        let rootless_helpers = match target.rootless_helpers.as_deref() {
            None | Some("judge") => false,
            Some("pass") if runtime.is_none() && containers == Containers::Pass => true,
            Some("pass") => {
                return Err(ctx.invalid(
                    format!("{field}.rootless_helpers"),
                    "pass",
                    "only a runtime target whose containers pass (containers = \"pass\", the default) passes its rootless network helpers",
                ))
            }
            Some(other) => {
                return Err(ctx.invalid(
                    format!("{field}.rootless_helpers"),
                    other,
                    "must be \"pass\" (slirp4netns and pasta carry the containers' traffic unjudged) or \"judge\" (the default)",
                ))
            }
        };
        out.push(Target {
            name,
            selector,
            mode: target.mode.unwrap_or(default_mode),
            containers,
            rootless_helpers,
            allow,
        });
    }
    Ok(out)
}

/// A container target: no cgroup, process or unit of its own.
fn container_selector(ctx: &Ctx, field: &str, target: &RawTarget, runtime: Runtime) -> Result<Selector, PolicyError> {
    for (key, value) in [("cgroup", &target.cgroup), ("process", &target.process), ("unit", &target.unit)] {
        if let Some(value) = value {
            return Err(ctx.invalid(
                format!("{field}.{key}"),
                value,
                format!("a container target (containers = \"{runtime}\") finds its cgroups itself; give a separate target for the runtime"),
            ));
        }
    }
    let image = match target.image.as_deref() {
        Some(image) if image.trim().is_empty() || image.chars().any(char::is_whitespace) => {
            return Err(ctx.invalid(
                format!("{field}.image"),
                image,
                "must be an image reference pattern without spaces (`*` for any run of characters)",
            ))
        }
        other => other.map(str::to_string),
    };
    let label = match target.label.as_deref() {
        Some(text) => {
            Some(LabelMatch::parse(text).map_err(|reason| ctx.invalid(format!("{field}.label"), text, reason))?)
        }
        None => None,
    };
    Ok(Selector::Containers(ContainerSelector { runtime, image, label }))
}

/// A target's `cgroup`, or its `process` and/or `unit` (their union).
fn selector(ctx: &Ctx, field: &str, target: &RawTarget, facts: &HostFacts) -> Result<Selector, PolicyError> {
    let process = |name| process_name(ctx, &format!("{field}.process"), name);
    let unit = |text: &str| {
        let field = format!("{field}.unit");
        let Some(mount) = &facts.cgroup2_mount else {
            return Err(ctx.invalid(&field, text, "this host has no cgroup v2 mount"));
        };
        Unit::parse(text, mount).map_err(|reason| ctx.invalid(&field, text, reason))
    };
    Ok(match (&target.cgroup, &target.process, &target.unit) {
        (Some(_), process, unit) if process.is_some() || unit.is_some() => {
            let with = if process.is_some() { "process" } else { "unit" };
            return Err(ctx.invalid(
                field,
                format!("cgroup + {with}"),
                "give either `cgroup` alone, or `process` and/or `unit`, not both",
            ));
        }
        (Some(path), _, _) => Selector::Cgroup(cgroup_path(ctx, &format!("{field}.cgroup"), path, facts)?),
        (None, Some(name), None) => Selector::Process(process(name)?),
        (None, None, Some(text)) => Selector::Unit(unit(text)?),
        (None, Some(name), Some(text)) => Selector::ProcessOrUnit { process: process(name)?, unit: unit(text)? },
        (None, None, None) => {
            return Err(ctx.missing(
                field,
                "needs `cgroup = \"/sys/fs/cgroup/...\"`, `process = \"name\"` or `unit = \"name.service\"`",
            ))
        }
    })
}

fn default_target_name(selector: &Selector) -> String {
    match selector {
        Selector::Process(name) | Selector::ProcessOrUnit { process: name, .. } => name.clone(),
        Selector::Unit(unit) => unit.default_target_name(),
        Selector::Containers(selector) => format!("{}-containers", selector.runtime),
        Selector::Cgroup(path) => {
            path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string())
        }
    }
}

fn cgroup_path(ctx: &Ctx, field: &str, text: &str, facts: &HostFacts) -> Result<PathBuf, PolicyError> {
    let path = Path::new(text);
    if !path.is_absolute() {
        return Err(ctx.invalid(field, text, "must be an absolute path to a cgroup v2 directory"));
    }
    if path.components().any(|c| matches!(c, Component::ParentDir | Component::CurDir)) {
        return Err(ctx.invalid(field, text, "must not contain `.` or `..`"));
    }
    let Some(mount) = &facts.cgroup2_mount else {
        return Err(ctx.invalid(field, text, "this host has no cgroup v2 mount"));
    };
    if !path.starts_with(mount) {
        return Err(ctx.invalid(field, text, format!("is outside the cgroup v2 mount {}", mount.display())));
    }
    Ok(path.components().collect())
}

fn process_name(ctx: &Ctx, field: &str, name: &str) -> Result<String, PolicyError> {
    if name.is_empty() || name.contains('/') || name.contains('\0') {
        return Err(ctx.invalid(field, name, "must be a process name as in /proc/PID/comm (no `/`)"));
    }
    Ok(name.to_string())
}

fn allow_rule(ctx: &Ctx, field: &str, raw: &RawAllow) -> Result<Vec<AllowRule>, PolicyError> {
    let given = [raw.host.is_some(), raw.cidr.is_some(), raw.preset.is_some()].iter().filter(|b| **b).count();
    if given > 1 {
        return Err(ctx.invalid(
            field,
            "more than one of host, cidr, preset",
            "give exactly one of `host`, `cidr` or `preset`",
        ));
    }
    if raw.region.is_some() && raw.preset.is_none() {
        return Err(ctx.invalid(
            format!("{field}.region"),
            raw.region.as_deref().unwrap_or(""),
            "`region` goes with `preset`",
        ));
    }
    let ports = port_list(ctx, field, &raw.ports)?;
    if let Some(host) = &raw.host {
        let origin = format!("{field}.host = \"{host}\"");
        if let Some(suffix) = public_suffix_wildcard(host) {
            return Err(ctx.invalid(
                format!("{field}.host"),
                host,
                format!(
                    "{suffix} is a public suffix (a top-level domain or an entry of the Public Suffix List): \
                     anyone can register a name below it, so this wildcard would allow hosts anyone controls; \
                     allow the registry's exact hosts, or a wildcard below a domain its owner controls"
                ),
            ));
        }
        return Ok(vec![host_rule(ctx, &format!("{field}.host"), origin, host, &ports)?]);
    }
    if let Some(cidr) = &raw.cidr {
        let block = cidr.parse::<Cidr>().map_err(|reason| ctx.invalid(format!("{field}.cidr"), cidr, reason))?;
        return Ok(vec![AllowRule::Cidr { block, ports }]);
    }
    let Some(name) = &raw.preset else {
        return Err(ctx.missing(field, "needs `host = \"...\"`, `cidr = \"...\"` or `preset = \"...\"`"));
    };
    let preset = presets::find(name).ok_or_else(|| {
        let known: Vec<&str> = presets::all().iter().map(|p| p.name.as_str()).collect();
        ctx.invalid(format!("{field}.preset"), name, format!("no such preset; known: {}", known.join(", ")))
    })?;
    let hosts = presets::expand(preset, raw.region.as_deref()).map_err(|reason| {
        let (f, v) = match &raw.region {
            Some(r) => (format!("{field}.region"), r.clone()),
            None => (format!("{field}.preset"), name.clone()),
        };
        ctx.invalid(f, v, reason)
    })?;
    hosts
        .iter()
        .map(|host| {
            host_rule(
                ctx,
                &format!("{field}.preset"),
                format!("{field}.preset = \"{}\" ({host})", preset.name),
                host,
                &ports,
            )
        })
        .collect()
}

fn host_error(error: HostError) -> String {
    match error {
        HostError::Empty => "is empty".into(),
        HostError::TooLong => format!("is longer than {MAX_HOST_LEN} characters, the longest name ram learns"),
        HostError::EmptyLabel => "has an empty label (`..`, or a leading dot)".into(),
        HostError::LabelTooLong => "has a label longer than 63 characters".into(),
        HostError::BadChar(c) => format!(
            "contains {:?}; host names use letters, digits, `-` and `_` (an address block goes in `cidr`)",
            c as char
        ),
        HostError::BadWildcard => "`*` may only be the whole first label, as in `*.example.com`".into(),
    }
}
