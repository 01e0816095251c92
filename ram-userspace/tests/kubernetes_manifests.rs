//! deploy/kubernetes/, checked offline: no cluster and no root. A cluster
//! would refuse, or run wrongly, manifests that fail these checks: each one
//! names what would break. The policy in the ConfigMap goes through ram's
//! own parser and compiler (what `ramd --check-config` runs), ramd's
//! arguments through ramd's own command line (clap) and `--metrics` through
//! ramd's own listen-address parser.
//!
//! `each_check_fails_on_a_manifest_that_breaks_it` breaks the manifests one
//! way at a time, in memory, and requires the matching complaint, so no
//! check here passes whatever the manifests say.
#![expect(clippy::unwrap_used, reason = "a test: a failed unwrap is a failed test")]

use std::{
    collections::BTreeMap,
    path::{Component, Path, PathBuf},
};

use clap::Parser;
use ram::{
    cli::ramd::Args,
    metrics::ListenAddr,
    paths::{DEFAULT_PIN_DIR, DEFAULT_RUN_DIR, PIN_DIR_ENV, RUN_DIR_ENV},
    policy::{HostFacts, Policy, Selector},
};
use yaml_rust2::{Yaml, YamlLoader};

/// What `$(HOST_IP)` (the node's address, status.hostIP) stands for here:
/// TEST-NET-1, an address no host has.
const NODE_IP: &str = "192.0.2.1";
/// The runtime a Kubernetes node's kubelet drives, which the policy must enforce.
const NODE_RUNTIME_UNIT: &str = "containerd.service";
/// Where every pod's sandbox (pause) image comes from on a kubeadm cluster.
const PAUSE_REGISTRY: &str = "registry.k8s.io";
/// The node's bpffs, where the pins must be to outlive the pod.
const NODE_BPFFS: &str = "/sys/fs/bpf";
/// The node's cgroup v2 mount, where unit and cgroup targets are.
const NODE_CGROUP: &str = "/sys/fs/cgroup";

fn manifest_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes")
}

/// Every file of deploy/kubernetes/, by name.
fn read_files() -> BTreeMap<String, String> {
    std::fs::read_dir(manifest_dir())
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            (entry.file_name().into_string().unwrap(), std::fs::read_to_string(entry.path()).unwrap())
        })
        .collect()
}

struct Doc {
    file: String,
    yaml: Yaml,
}

impl Doc {
    fn kind(&self) -> &str {
        self.yaml["kind"].as_str().unwrap_or("")
    }

    fn name(&self) -> &str {
        self.yaml["metadata"]["name"].as_str().unwrap_or("")
    }
}

fn is_manifest(file: &str) -> bool {
    file.ends_with(".yaml") || file.ends_with(".yml")
}

/// Every document of every manifest; a document that does not parse, or
/// lacks apiVersion, kind or metadata.name, is a problem.
fn parse(files: &BTreeMap<String, String>, problems: &mut Vec<String>) -> Vec<Doc> {
    let mut docs = Vec::new();
    for (file, text) in files.iter().filter(|(file, _)| is_manifest(file)) {
        let parsed = match YamlLoader::load_from_str(text) {
            Ok(parsed) => parsed,
            Err(e) => {
                problems.push(format!("{file}: does not parse as YAML: {e}"));
                continue;
            }
        };
        for (i, yaml) in parsed.into_iter().enumerate() {
            for field in ["apiVersion", "kind"] {
                if yaml[field].as_str().is_none() {
                    problems.push(format!("{file}: document {i} has no {field}"));
                }
            }
            if yaml["metadata"]["name"].as_str().is_none() {
                problems.push(format!("{file}: document {i} has no metadata.name"));
            }
            docs.push(Doc { file: file.clone(), yaml });
        }
    }
    docs
}

fn strings(yaml: &Yaml) -> Vec<&str> {
    yaml.as_vec().map(|v| v.iter().filter_map(Yaml::as_str).collect()).unwrap_or_default()
}

/// `..` taken out lexically, as the kernel resolves a relative link.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// A container's volume mount with the volume it mounts.
struct Mount<'a> {
    path: PathBuf,
    mount: &'a Yaml,
    volume: &'a Yaml,
}

impl Mount<'_> {
    fn name(&self) -> &str {
        self.mount["name"].as_str().unwrap_or("")
    }
}

/// The node's path behind `path` in the container: through the innermost
/// mount that holds it, if that is a hostPath volume.
fn node_path<'m, 'a>(mounts: &'m [Mount<'a>], path: &Path) -> Option<(PathBuf, &'m Mount<'a>)> {
    let mount = mounts.iter().filter(|m| path.starts_with(&m.path)).max_by_key(|m| m.path.as_os_str().len())?;
    let host = mount.volume["hostPath"]["path"].as_str()?;
    Some((Path::new(host).join(path.strip_prefix(&mount.path).ok()?), mount))
}

/// Kubernetes' `$(VAR)` expansion in command and args, from the
/// container's env: a fieldRef to the node's address is [`NODE_IP`]; a
/// name not defined stays as written (as Kubernetes leaves it).
fn expand(text: &str, env: &BTreeMap<String, Option<String>>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("$(") {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find(')') else { break };
        let reference = &rest[start..start + len + 1];
        match env.get(&reference[2..len]) {
            Some(Some(value)) => out.push_str(value),
            _ => out.push_str(reference),
        }
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    out
}

/// The registry host an image reference is pulled from (Docker Hub's for
/// a reference without one).
fn registry_host(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first.split(':').next().unwrap_or(first).to_string()
        }
        _ => "registry-1.docker.io".to_string(),
    }
}

/// What is wrong with the manifests (and the Dockerfile beside them); empty
/// when nothing is.
fn problems(files: &BTreeMap<String, String>) -> Vec<String> {
    let mut problems = Vec::new();
    let docs = parse(files, &mut problems);
    let mut fail = |message: String| problems.push(message);

    // Kinds, API versions, one of each.
    let expected = [("Namespace", "v1"), ("ServiceAccount", "v1"), ("ConfigMap", "v1"), ("DaemonSet", "apps/v1")];
    for (kind, api) in expected {
        let found: Vec<&Doc> = docs.iter().filter(|d| d.kind() == kind).collect();
        if found.len() != 1 {
            fail(format!("expected one {kind}, found {}", found.len()));
        }
        for doc in found {
            if doc.yaml["apiVersion"].as_str() != Some(api) {
                fail(format!(
                    "{}: {kind} {} has apiVersion {:?}, not {api}",
                    doc.file,
                    doc.name(),
                    doc.yaml["apiVersion"]
                ));
            }
        }
    }
    let find = |kind: &str| docs.iter().find(|d| d.kind() == kind);
    let (Some(namespace), Some(config_map), Some(daemon_set)) =
        (find("Namespace"), find("ConfigMap"), find("DaemonSet"))
    else {
        return problems;
    };
    let service_account = find("ServiceAccount");

    // Labels and annotations are strings to the API server (an unquoted
    // true or 9464 is refused).
    let pod = &daemon_set.yaml["spec"]["template"];
    let metadata = docs
        .iter()
        .map(|d| (d.file.as_str(), &d.yaml["metadata"]))
        .chain([(daemon_set.file.as_str(), &pod["metadata"])]);
    for (file, meta) in metadata {
        for field in ["labels", "annotations"] {
            for (key, value) in meta[field].as_hash().into_iter().flatten() {
                if value.as_str().is_none() {
                    fail(format!("{file}: {field} {key:?} = {value:?} is not a string (quote it)"));
                }
            }
        }
    }

    // One namespace, admitted to run privileged pods.
    let ns = namespace.name();
    for doc in docs.iter().filter(|d| d.kind() != "Namespace") {
        if doc.yaml["metadata"]["namespace"].as_str() != Some(ns) {
            fail(format!(
                "{}: {} {} is in namespace {:?}, not {ns} (the Namespace of {})",
                doc.file,
                doc.kind(),
                doc.name(),
                doc.yaml["metadata"]["namespace"],
                namespace.file
            ));
        }
    }
    if namespace.yaml["metadata"]["labels"]["pod-security.kubernetes.io/enforce"].as_str() != Some("privileged") {
        fail(format!(
            "{}: namespace {ns} lacks the label pod-security.kubernetes.io/enforce: privileged; a cluster enforcing \
             baseline refuses ramd's hostPID, hostNetwork, hostPath and privileged pod",
            namespace.file
        ));
    }

    // The DaemonSet's pod.
    let ds = &daemon_set.file;
    let spec = &pod["spec"];
    let match_labels = daemon_set.yaml["spec"]["selector"]["matchLabels"].as_hash();
    if match_labels.is_none_or(|m| m.is_empty()) {
        fail(format!("{ds}: spec.selector.matchLabels is empty"));
    }
    for (key, value) in match_labels.into_iter().flatten() {
        if &pod["metadata"]["labels"][key.as_str().unwrap_or("")] != value {
            fail(format!("{ds}: the selector's {key:?} = {value:?} is not a label of the pod template (refused)"));
        }
    }
    if let Some(account) = service_account {
        if spec["serviceAccountName"].as_str() != Some(account.name()) {
            fail(format!(
                "{ds}: serviceAccountName {:?} is not the ServiceAccount {} of {}",
                spec["serviceAccountName"],
                account.name(),
                account.file
            ));
        }
    }
    if spec["hostPID"].as_bool() != Some(true) {
        fail(format!("{ds}: hostPID is not true: ramd finds `process` targets in the node's /proc"));
    }
    if spec["hostNetwork"].as_bool() != Some(true) {
        fail(format!(
            "{ds}: hostNetwork is not true: ramd trusts DNS in its own network namespace, which must be the node's, \
             where the runtime resolves (in a pod network no pull would ever be allowed)"
        ));
    }
    let tolerates_all = spec["tolerations"].as_vec().into_iter().flatten().any(|t| {
        t["operator"].as_str() == Some("Exists") && t["key"].as_str().is_none() && t["effect"].as_str().is_none()
    });
    if !tolerates_all {
        fail(format!("{ds}: no toleration `operator: Exists` without key and effect: tainted nodes would run no ramd"));
    }
    if let Some(class @ ("system-node-critical" | "system-cluster-critical")) = spec["priorityClassName"].as_str() {
        let quota = docs.iter().filter(|d| d.kind() == "ResourceQuota").any(|q| {
            q.yaml["spec"]["scopeSelector"]["matchExpressions"].as_vec().into_iter().flatten().any(|e| {
                e["scopeName"].as_str() == Some("PriorityClass")
                    && e["operator"].as_str() == Some("In")
                    && strings(&e["values"]).contains(&class)
            })
        });
        if !quota {
            fail(format!(
                "{ds}: priorityClassName {class} outside kube-system, and no ResourceQuota in {ns} scoped to it: \
                 clusters that keep the system classes to kube-system (GKE) refuse the pods"
            ));
        }
    }

    // The ramd container.
    let containers: Vec<&Yaml> = spec["containers"]
        .as_vec()
        .into_iter()
        .flatten()
        .filter(|c| strings(&c["command"]).first().is_some_and(|cmd| cmd.ends_with("/ramd")))
        .collect();
    let [container] = containers.as_slice() else {
        fail(format!("{ds}: expected one container whose command is ramd, found {}", containers.len()));
        return problems;
    };
    let container: &Yaml = container;
    let security = &container["securityContext"];
    if security["privileged"].as_bool() != Some(true) {
        fail(format!(
            "{ds}: the ramd container is not privileged: on cgroup v2 containerd then gives it a cgroup namespace \
             (and /proc/PID/cgroup no longer names the node's cgroups), and Bidirectional propagation is refused"
        ));
    }
    if !security["capabilities"]["drop"].is_badvalue() {
        fail(format!("{ds}: the ramd container drops capabilities ramd uses"));
    }
    if !container["resources"]["limits"]["memory"].is_badvalue() {
        fail(format!(
            "{ds}: the ramd container has a memory limit: from Linux 5.11 ram's maps are charged to its memory \
             cgroup, and a map that does not fit fails ramd's start"
        ));
    }

    // Its command line, as Kubernetes expands it and ramd parses it.
    let mut env: BTreeMap<String, Option<String>> = BTreeMap::new();
    for var in container["env"].as_vec().into_iter().flatten() {
        let value = match (var["value"].as_str(), var["valueFrom"]["fieldRef"]["fieldPath"].as_str()) {
            (Some(value), _) => Some(value.to_string()),
            (None, Some("status.hostIP")) => Some(NODE_IP.to_string()),
            _ => None,
        };
        env.insert(var["name"].as_str().unwrap_or("").to_string(), value);
    }
    let command = strings(&container["command"]);
    let argv: Vec<String> =
        command.iter().chain(strings(&container["args"]).iter()).map(|arg| expand(arg, &env)).collect();
    let args = match Args::try_parse_from(&argv) {
        Ok(args) => args,
        Err(e) => {
            fail(format!("{ds}: ramd refuses its arguments {argv:?}: {e}"));
            return problems;
        }
    };
    let from_env = |var: &str, default: &str| {
        env.get(var).cloned().flatten().map(PathBuf::from).unwrap_or_else(|| PathBuf::from(default))
    };
    let pin_dir = args.pin_dir.clone().unwrap_or_else(|| from_env(PIN_DIR_ENV, DEFAULT_PIN_DIR));
    let run_dir = args.run_dir.clone().unwrap_or_else(|| from_env(RUN_DIR_ENV, DEFAULT_RUN_DIR));

    // Volumes and mounts.
    let volumes: BTreeMap<&str, &Yaml> =
        spec["volumes"].as_vec().into_iter().flatten().map(|v| (v["name"].as_str().unwrap_or(""), v)).collect();
    let mut mounts = Vec::new();
    for mount in container["volumeMounts"].as_vec().into_iter().flatten() {
        let name = mount["name"].as_str().unwrap_or("");
        match (volumes.get(name), mount["mountPath"].as_str()) {
            (Some(volume), Some(path)) => mounts.push(Mount { path: PathBuf::from(path), mount, volume }),
            (None, _) => fail(format!("{ds}: volumeMount {name} names no volume")),
            (_, None) => fail(format!("{ds}: volumeMount {name} has no mountPath")),
        }
        let propagation = mount["mountPropagation"].as_str().unwrap_or("None");
        if !["None", "HostToContainer", "Bidirectional"].contains(&propagation) {
            fail(format!("{ds}: volumeMount {name}: mountPropagation {propagation} does not exist"));
        }
    }
    for (name, volume) in &volumes {
        let kind = volume["hostPath"]["type"].as_str().unwrap_or("");
        let known =
            ["", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice", "BlockDevice"];
        if !known.contains(&kind) {
            fail(format!("{ds}: volume {name}: hostPath type {kind} does not exist"));
        }
    }
    let is_directory =
        |mount: &Mount| matches!(mount.volume["hostPath"]["type"].as_str(), Some("Directory" | "DirectoryOrCreate"));

    // Pins: on the node's bpffs, mounted back to the node when ramd mounts it.
    let bpffs = pin_dir.parent().unwrap_or(Path::new("/"));
    match node_path(&mounts, bpffs) {
        Some((node, mount)) if node == Path::new(NODE_BPFFS) => {
            if mount.mount["mountPropagation"].as_str() != Some("Bidirectional") {
                fail(format!(
                    "{ds}: volumeMount {} (the pins' bpffs, {}) is not mountPropagation: Bidirectional: a bpffs \
                     ramd mounts there would die with the pod's mount namespace, and the pins and enforcement with it",
                    mount.name(),
                    bpffs.display()
                ));
            }
            if !is_directory(mount) {
                fail(format!("{ds}: volume of {} is not a hostPath of type Directory", mount.name()));
            }
        }
        other => fail(format!(
            "{ds}: the pin directory {} is not on the node's {NODE_BPFFS} (a hostPath volume; found {:?}): \
             enforcement would not outlive the pod",
            pin_dir.display(),
            other.map(|(node, _)| node)
        )),
    }
    // The cgroup v2 hierarchy: unit targets are paths in it.
    match node_path(&mounts, Path::new(NODE_CGROUP)) {
        Some((node, mount)) if node == Path::new(NODE_CGROUP) => {
            if !is_directory(mount) {
                fail(format!("{ds}: volume of {} is not a hostPath of type Directory", mount.name()));
            }
        }
        other => fail(format!(
            "{ds}: {NODE_CGROUP} in the container is not the node's {NODE_CGROUP} (found {:?})",
            other.map(|(node, _)| node)
        )),
    }
    // The run directory: on the node, and made there on a node's first run.
    match node_path(&mounts, &run_dir) {
        Some((_, mount)) if mount.path == run_dir && mount.volume["hostPath"]["type"].as_str() == Some("Directory") => {
            fail(format!(
                "{ds}: the run directory {} is a hostPath of type Directory, which a fresh node does not have: \
                 the pod would not start (DirectoryOrCreate)",
                run_dir.display()
            ))
        }
        Some(_) => {}
        None => fail(format!(
            "{ds}: the run directory {} is not on the node: the status file and the blocked-attempt journal \
             would go with every restart",
            run_dir.display()
        )),
    }

    // The policy: the ConfigMap, mounted as a directory where --config points.
    let Some(config) = args.config.clone() else {
        fail(format!("{ds}: ramd has no --config: it would run on /etc/ram/ram.toml of the image, or the default"));
        return problems;
    };
    let file_name = config.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let policy_mount = mounts.iter().find(|m| Some(m.path.as_path()) == config.parent());
    let mut policy_key = None;
    let mut mounted = false;
    match policy_mount {
        Some(mount) if mount.volume["configMap"]["name"].as_str() == Some(config_map.name()) => {
            mounted = true;
            if !mount.mount["subPath"].is_badvalue() {
                fail(format!(
                    "{ds}: the policy's volumeMount {} uses subPath: the kubelet never updates a subPath mount, so \
                     a changed ConfigMap would never reach ramd",
                    mount.name()
                ));
            }
            let items = mount.volume["configMap"]["items"].as_vec();
            policy_key = match items {
                Some(items) => items
                    .iter()
                    .find(|item| item["path"].as_str() == Some(file_name))
                    .and_then(|item| item["key"].as_str()),
                None => Some(file_name),
            };
        }
        _ => fail(format!(
            "{ds}: --config {} is not in a directory where the ConfigMap {} is mounted",
            config.display(),
            config_map.name()
        )),
    }
    let policy_text = policy_key.and_then(|key| config_map.yaml["data"][key].as_str());
    if mounted && policy_text.is_none() {
        fail(format!("{}: the ConfigMap has no data key {policy_key:?} for {}", config_map.file, config.display()));
    }

    // The resolvers ramd trusts by default: the node's resolv.conf, not the
    // copy the kubelet gives the pod.
    let resolv_conf = env.get(ram::host::RESOLV_CONF_ENV).cloned().flatten();
    if let Some(path) = &resolv_conf {
        let path = Path::new(path);
        if node_path(&mounts, path).map(|(node, _)| node) != Some(PathBuf::from("/etc/resolv.conf")) {
            fail(format!(
                "{ds}: {} = {} is not the node's /etc/resolv.conf",
                ram::host::RESOLV_CONF_ENV,
                path.display()
            ));
        }
        // systemd-resolved's link, relative: it must lead to the node's file.
        let stub = normalize(&path.parent().unwrap_or(Path::new("/")).join("../run/systemd/resolve/stub-resolv.conf"));
        if node_path(&mounts, &stub).map(|(node, _)| node)
            != Some(PathBuf::from("/run/systemd/resolve/stub-resolv.conf"))
        {
            fail(format!(
                "{ds}: {} is not the node's /run/systemd/resolve/stub-resolv.conf: on systemd-resolved nodes \
                 resolv.conf links there, and ramd would find no resolver",
                stub.display()
            ));
        }
    }

    // Metrics: where Prometheus and the readiness probe connect.
    match args.metrics.as_deref().map(str::parse::<ListenAddr>) {
        Some(Ok(ListenAddr::Tcp(addr))) => {
            if !(addr.ip().is_unspecified() || addr.ip().to_string() == NODE_IP) {
                fail(format!(
                    "{ds}: --metrics listens on {}: Prometheus and the readiness probe connect to the pod's \
                     address, which with hostNetwork is the node's ($(HOST_IP))",
                    addr.ip()
                ));
            }
            let port = addr.port();
            let annotations = &pod["metadata"]["annotations"];
            if annotations["prometheus.io/scrape"].as_str() != Some("true") {
                fail(format!("{ds}: the pod template has no prometheus.io/scrape: \"true\""));
            }
            if annotations["prometheus.io/port"].as_str() != Some(port.to_string().as_str()) {
                fail(format!(
                    "{ds}: prometheus.io/port is {:?}, not --metrics' port {port}",
                    annotations["prometheus.io/port"]
                ));
            }
            if annotations["prometheus.io/path"].as_str().is_some_and(|p| p != "/metrics") {
                fail(format!("{ds}: prometheus.io/path is not /metrics (ramd answers 404 elsewhere)"));
            }
            let declared = container["ports"].as_vec().into_iter().flatten().find(|p| {
                p["containerPort"].as_i64() == Some(i64::from(port))
                    && p["protocol"].as_str().is_none_or(|proto| proto == "TCP")
            });
            let Some(declared) = declared else {
                fail(format!("{ds}: no TCP containerPort {port} (--metrics' port) is declared"));
                return problems;
            };
            if declared["hostPort"].as_i64().is_some_and(|p| p != i64::from(port)) {
                fail(format!("{ds}: hostPort of containerPort {port} differs (hostNetwork needs them equal)"));
            }
            let probe = &container["readinessProbe"]["httpGet"];
            let probe_port_ok = match &probe["port"] {
                Yaml::Integer(p) => *p == i64::from(port),
                Yaml::String(name) => declared["name"].as_str() == Some(name.as_str()),
                _ => false,
            };
            if !probe_port_ok || probe["path"].as_str() != Some("/metrics") {
                fail(format!(
                    "{ds}: the readiness probe is not an httpGet of /metrics on --metrics' port {port} (found {:?} {:?})",
                    probe["path"], probe["port"]
                ));
            }
        }
        Some(Ok(other)) => fail(format!("{ds}: --metrics {other} is not a TCP address Prometheus can scrape")),
        Some(Err(why)) => fail(format!("{ds}: --metrics {:?}: {why}", args.metrics.as_deref().unwrap_or(""))),
        None => fail(format!("{ds}: ramd has no --metrics, yet the pod template asks Prometheus to scrape it")),
    }

    // The policy, through ram's parser and compiler, on the facts of a node
    // as the pod sees it: the node's cgroup v2 at /sys/fs/cgroup (checked
    // above) and a resolver in resolv.conf (systemd-resolved's).
    if let Some(text) = policy_text {
        let facts = HostFacts {
            cgroup2_mount: Some(PathBuf::from(NODE_CGROUP)),
            resolv_conf: Some("nameserver 127.0.0.53\n".into()),
            resolved_upstream: None,
        };
        let source = format!("{}: {}", config_map.file, policy_key.unwrap_or(""));
        match Policy::parse(text, &source, &facts).and_then(|policy| Ok((policy.compile()?, policy))) {
            Err(e) => fail(format!("ram refuses the ConfigMap's policy: {e}")),
            Ok((compiled, policy)) => {
                if resolv_conf.is_none() && policy.dns.follows_host {
                    fail(format!(
                        "{ds}: the policy names no resolvers and {} is not set: ramd would trust the pod's \
                         resolv.conf (the kubelet's copy), not the one the node's runtime resolves with",
                        ram::host::RESOLV_CONF_ENV
                    ));
                }
                let runs_runtime = compiled.scopes.iter().any(|scope| match &scope.selector {
                    Selector::Unit(unit) | Selector::ProcessOrUnit { unit, .. } => unit.name == NODE_RUNTIME_UNIT,
                    _ => false,
                });
                if !runs_runtime {
                    fail(format!("{source}: no target names unit {NODE_RUNTIME_UNIT}, the kubelet's runtime"));
                }
                let image = container["image"].as_str().unwrap_or("");
                let needed = [
                    (registry_host(image), format!("ram's own image {image}")),
                    (PAUSE_REGISTRY.to_string(), "the pause image every pod needs".to_string()),
                ];
                for scope in &compiled.scopes {
                    for (host, why) in &needed {
                        if !compiled.allows_name(scope.scope, host) {
                            fail(format!("{source}: target {} may not pull from {host} ({why})", scope.name));
                        }
                    }
                }
            }
        }
    }

    // The image: the Dockerfile puts ramd where the command runs it, from
    // paths its build context keeps.
    let dockerfile = files.get("Dockerfile").map(String::as_str).unwrap_or("");
    let ignore = files.get("Dockerfile.dockerignore").map(String::as_str).unwrap_or("");
    let bins = dockerfile.lines().find_map(|l| l.strip_prefix("ARG BINS=")).unwrap_or("");
    let copy = dockerfile.lines().find(|l| l.starts_with("COPY ") && l.contains("/ramd "));
    let words: Vec<&str> = copy.map(|l| l.split_whitespace().skip(1).collect()).unwrap_or_default();
    match words.split_last() {
        Some((dest, sources)) if sources.iter().any(|s| s.ends_with("/ramctl")) => {
            let installed = Path::new(dest).join("ramd");
            if command.first().map(Path::new) != Some(installed.as_path()) {
                fail(format!(
                    "Dockerfile: installs ramd as {}, the DaemonSet runs {:?}",
                    installed.display(),
                    command.first()
                ));
            }
            for source in sources {
                let source = source.replace("${BINS}", bins);
                if !ignore.lines().any(|l| l.trim() == format!("!{source}")) {
                    fail(format!("Dockerfile.dockerignore: keeps {source} out of the build context"));
                }
            }
        }
        _ => fail("Dockerfile: no `COPY .../ramd .../ramctl DEST` line".to_string()),
    }
    problems
}

#[test]
fn the_manifests_give_ramd_what_it_needs() {
    let problems = problems(&read_files());
    assert!(problems.is_empty(), "deploy/kubernetes/:\n  {}", problems.join("\n  "));
}

/// One way to break the manifests: in `file`, the first `from` after
/// `after` (or from the start) becomes `to`; a complaint must contain `expect`.
struct Breakage {
    file: &'static str,
    after: &'static str,
    from: &'static str,
    to: &'static str,
    expect: &'static str,
}

const fn breakage(
    file: &'static str,
    after: &'static str,
    from: &'static str,
    to: &'static str,
    expect: &'static str,
) -> Breakage {
    Breakage { file, after, from, to, expect }
}

const DS: &str = "30-daemonset.yaml";
const CM: &str = "20-configmap.yaml";

const BREAKAGES: &[Breakage] = &[
    breakage(DS, "", "hostPID: true", "hostPID: [true", "does not parse"),
    breakage("10-serviceaccount.yaml", "", "kind: ServiceAccount", "kind: Secret", "expected one ServiceAccount"),
    breakage(DS, "", "apiVersion: apps/v1", "apiVersion: extensions/v1beta1", "apiVersion"),
    breakage(DS, "", "prometheus.io/scrape: \"true\"", "prometheus.io/scrape: true", "is not a string"),
    breakage(CM, "", "namespace: ram-system", "namespace: default", "not ram-system"),
    breakage("00-namespace.yaml", "", "enforce: privileged", "enforce: baseline", "pod-security"),
    breakage(DS, "template:", "component: ramd", "component: ram-daemon", "not a label of the pod template"),
    breakage(DS, "", "serviceAccountName: ramd", "serviceAccountName: default", "serviceAccountName"),
    breakage(DS, "", "hostPID: true", "hostPID: false", "hostPID"),
    breakage(DS, "", "hostNetwork: true", "hostNetwork: false", "hostNetwork"),
    breakage(
        DS,
        "",
        "- operator: Exists",
        "- key: node-role.kubernetes.io/control-plane\n          operator: Exists",
        "toleration",
    ),
    breakage(
        "05-resourcequota.yaml",
        "",
        "[\"system-node-critical\"]",
        "[\"system-cluster-critical\"]",
        "ResourceQuota",
    ),
    breakage(
        DS,
        "",
        "command: [\"/usr/sbin/ramd\"]",
        "command: [\"/usr/sbin/ramctl\"]",
        "one container whose command is ramd",
    ),
    breakage(DS, "", "privileged: true", "privileged: false", "not privileged"),
    breakage(
        DS,
        "securityContext:",
        "privileged: true",
        "privileged: true\n            capabilities:\n              drop: [ALL]",
        "drops capabilities",
    ),
    breakage(
        DS,
        "",
        "            requests:",
        "            limits:\n              memory: 128Mi\n            requests:",
        "memory limit",
    ),
    breakage(DS, "", "- --config", "- --configuration", "refuses its arguments"),
    breakage(DS, "volumeMounts:", "mountPropagation: Bidirectional", "mountPropagation: Both", "does not exist"),
    breakage(DS, "", "type: DirectoryOrCreate", "type: DirOrCreate", "does not exist"),
    breakage(
        DS,
        "volumeMounts:",
        "mountPropagation: Bidirectional",
        "mountPropagation: HostToContainer",
        "Bidirectional",
    ),
    breakage(DS, "volumes:", "path: /sys/fs/bpf", "path: /var/lib/ram/bpf", "not on the node's /sys/fs/bpf"),
    breakage(DS, "", "mountPath: /sys/fs/bpf", "mountPath: /bpf", "not on the node's /sys/fs/bpf"),
    breakage(
        DS,
        "volumes:",
        "path: /sys/fs/cgroup",
        "path: /sys/fs/cgroup/kubepods.slice",
        "not the node's /sys/fs/cgroup",
    ),
    breakage(DS, "", "mountPath: /sys/fs/cgroup", "mountPath: /host/cgroup", "not the node's /sys/fs/cgroup"),
    breakage(DS, "path: /run/ram", "type: DirectoryOrCreate", "type: Directory", "fresh node"),
    breakage(DS, "", "mountPath: /run/ram", "mountPath: /var/run/ram", "run directory /run/ram is not on the node"),
    breakage(DS, "", "- /etc/ram/ram.toml", "- /etc/ram-policy/ram.toml", "not in a directory where the ConfigMap"),
    breakage(DS, "configMap:", "name: ram-policy", "name: ram-config", "not in a directory where the ConfigMap"),
    breakage(DS, "", "mountPath: /etc/ram", "mountPath: /etc/ram\n              subPath: ram.toml", "subPath"),
    breakage(CM, "", "ram.toml: |", "policy.toml: |", "no data key"),
    breakage(DS, "", "value: /host/etc/resolv.conf", "value: /etc/resolv.conf", "not the node's /etc/resolv.conf"),
    breakage(DS, "", "mountPath: /host/run", "mountPath: /host/run-node", "stub-resolv.conf"),
    breakage(DS, "", "- name: RAM_RESOLV_CONF\n", "- name: RAM_RESOLV_CONF_UNUSED\n", "names no resolvers"),
    breakage(DS, "", "$(HOST_IP):9464", "127.0.0.1:9464", "listens on 127.0.0.1"),
    breakage(DS, "", "$(HOST_IP):9464", "$(NODE_IP):9464", "--metrics \"$(NODE_IP):9464\""),
    breakage(DS, "", "$(HOST_IP):9464", "unix:/run/ram/metrics.sock", "not a TCP address"),
    breakage(DS, "", "prometheus.io/scrape: \"true\"", "prometheus.io/scrape: \"false\"", "prometheus.io/scrape"),
    breakage(DS, "", "prometheus.io/port: \"9464\"", "prometheus.io/port: \"9465\"", "prometheus.io/port"),
    breakage(DS, "", "$(HOST_IP):9464", "$(HOST_IP):9465", "prometheus.io/port"),
    breakage(DS, "", "prometheus.io/path: \"/metrics\"", "prometheus.io/path: \"/\"", "prometheus.io/path"),
    breakage(DS, "", "containerPort: 9464", "containerPort: 9465", "no TCP containerPort 9464"),
    breakage(DS, "readinessProbe:", "path: /metrics", "path: /healthz", "readiness probe"),
    breakage(DS, "readinessProbe:", "port: metrics", "port: http", "readiness probe"),
    breakage(CM, "", "mode = \"audit\"", "mode = \"auditing\"", "ram refuses the ConfigMap's policy"),
    breakage(
        CM,
        "",
        "unit = \"containerd.service\"",
        "unit = \"docker.service\"",
        "no target names unit containerd.service",
    ),
    breakage(
        CM,
        "",
        "host = \"registry.example.com\"",
        "host = \"registry.example.org\"",
        "may not pull from registry.example.com",
    ),
    breakage(CM, "", "preset = \"k8s\"", "preset = \"quay\"", "may not pull from registry.k8s.io"),
    breakage("Dockerfile", "", "/usr/sbin/", "/usr/local/bin/", "installs ramd as /usr/local/bin/ramd"),
    breakage(
        "Dockerfile.dockerignore",
        "",
        "!target/vm/build/x86_64-unknown-linux-gnu/vm/ramctl",
        "!target/release/ramctl",
        "keeps",
    ),
];

#[test]
fn each_check_fails_on_a_manifest_that_breaks_it() {
    let files = read_files();
    let mut missed = Vec::new();
    for b in BREAKAGES {
        let mut broken = files.clone();
        let text = broken.get_mut(b.file).unwrap_or_else(|| panic!("no file {}", b.file));
        let start = text.find(b.after).unwrap_or_else(|| panic!("{}: no {:?}", b.file, b.after));
        let at =
            text[start..].find(b.from).unwrap_or_else(|| panic!("{}: no {:?} after {:?}", b.file, b.from, b.after))
                + start;
        let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
        assert!(!text[line_start..at].trim_start().starts_with('#'), "{}: {:?} is in a comment", b.file, b.from);
        text.replace_range(at..at + b.from.len(), b.to);
        let problems = problems(&broken);
        match problems.iter().find(|p| p.contains(b.expect)) {
            Some(problem) => println!("{}: {:?} -> {:?}: {problem}", b.file, b.from, b.to),
            None => missed.push(format!(
                "{}: {:?} -> {:?}: no complaint contains {:?}; complaints: {problems:?}",
                b.file, b.from, b.to, b.expect
            )),
        }
    }
    assert!(missed.is_empty(), "breakages no check caught:\n  {}", missed.join("\n  "));
}

/// The ConfigMap's policy as an admin checks it: `ramd --check-config`, on
/// this machine's facts (its resolv.conf and cgroup v2 mount).
#[test]
fn the_configmaps_policy_passes_ramd_check_config() {
    let files = read_files();
    let docs = YamlLoader::load_from_str(&files[CM]).unwrap();
    let policy = docs[0]["data"]["ram.toml"].as_str().unwrap();
    let path = std::env::temp_dir().join(format!("ram-k8s-policy-{}.toml", std::process::id()));
    std::fs::write(&path, policy).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ramd")).arg("--check-config").arg(&path).output().unwrap();
    std::fs::remove_file(&path).unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "ramd --check-config failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(": valid"), "{stdout}");
    assert!(stdout.contains("containerd: process containerd + unit containerd.service"), "{stdout}");
    assert!(stdout.contains("crio: process crio + unit crio.service"), "{stdout}");
    assert!(stdout.contains("host      registry.k8s.io"), "{stdout}");
}
