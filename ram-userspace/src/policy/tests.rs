//! Policy parsing and compilation, without root.

use std::{collections::BTreeMap, path::PathBuf};

use super::*;

fn facts() -> HostFacts {
    HostFacts {
        cgroup2_mount: Some(PathBuf::from("/sys/fs/cgroup")),
        resolv_conf: Some("# test\nnameserver 192.0.2.53\nnameserver fe80::1%eth0\n".into()),
        resolved_upstream: None,
    }
}

#[test]
fn containers_resolve_through_what_docker_gives_them() {
    use super::parse::docker_container_resolvers;
    let ip = |a: &str| a.parse::<std::net::IpAddr>().unwrap();
    // The host's own nameservers, when they are not loopback addresses.
    assert_eq!(docker_container_resolvers(&facts()), vec![ip("192.0.2.53"), ip("fe80::1")]);
    // systemd-resolved's stub: its upstream servers.
    let resolved = HostFacts {
        resolv_conf: Some("nameserver 127.0.0.53\noptions edns0\n".into()),
        resolved_upstream: Some("nameserver 198.51.100.1\n".into()),
        ..facts()
    };
    assert_eq!(docker_container_resolvers(&resolved), vec![ip("198.51.100.1")]);
    // Only a local resolver: Docker's fallback.
    let local = HostFacts { resolv_conf: Some("nameserver 127.0.0.1\n".into()), ..facts() };
    assert!(docker_container_resolvers(&local).contains(&ip("8.8.8.8")));
    // Trusted for docker container targets only, and only when the policy
    // names no resolvers.
    let text =
        "[[target]]\nprocess = \"dockerd\"\n[[target]]\ncontainers = \"docker\"\n[[allow]]\nhost = \"r.example\"\n";
    let policy = Policy::parse(text, "ram.toml", &resolved).unwrap();
    let c = policy.compile().unwrap();
    assert_eq!(c.resolvers.iter().find(|(a, _)| *a == ip("198.51.100.1")).map(|(_, m)| *m), Some(1 << 1));
    let named = format!("[dns]\nresolvers = [\"10.0.0.53\"]\n{text}");
    let c = Policy::parse(&named, "ram.toml", &resolved).unwrap().compile().unwrap();
    assert!(c.resolvers.iter().all(|(a, _)| *a == ip("10.0.0.53") || *a == ip("127.0.0.11")), "{:?}", c.resolvers);
}

fn parse(text: &str) -> Result<Policy, PolicyError> {
    Policy::parse(text, "ram.toml", &facts())
}

fn error(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

const TARGET: &str = "[[target]]\nprocess = \"dockerd\"\n";

#[test]
fn the_documented_example_parses() {
    let text = r#"
mode = "audit"
[dns]
resolvers = ["127.0.0.53"]
min_ttl = 30
max_ttl = 86400
[[target]]
cgroup = "/sys/fs/cgroup/system.slice/docker.service"
[[target]]
process = "dockerd"
[[allow]]
host = "registry.example.com"
[[allow]]
host = "*.example.net"
[[allow]]
cidr = "10.20.0.0/16"
"#;
    let p = parse(text).unwrap();
    assert_eq!(p.mode, Mode::Audit);
    assert_eq!(p.dns.resolvers, vec!["127.0.0.53".parse::<std::net::IpAddr>().unwrap()]);
    assert_eq!(p.targets.len(), 2);
    assert_eq!(p.targets[0].name, "docker.service");
    assert_eq!(p.targets[0].selector, Selector::Cgroup("/sys/fs/cgroup/system.slice/docker.service".into()));
    assert_eq!(p.targets[1].selector, Selector::Process("dockerd".into()));
    assert_eq!(p.targets[1].mode, Mode::Audit);
    assert_eq!(p.allow.len(), 3);
}

#[test]
fn the_embedded_default_is_docker_hub_on_dockerd_and_containerd() {
    let p = Policy::embedded_default(&facts()).unwrap();
    assert_eq!(p.mode, Mode::Enforce);
    let selectors: Vec<_> = p.targets.iter().map(|t| t.selector.clone()).collect();
    let runtime = |process: &str, unit: &str| Selector::ProcessOrUnit {
        process: process.into(),
        unit: Unit { name: unit.into(), cgroup: PathBuf::from("/sys/fs/cgroup/system.slice").join(unit) },
    };
    let buildkit = Selector::Containers(super::ContainerSelector {
        runtime: super::Runtime::Docker,
        image: Some("moby/buildkit*".into()),
        label: None,
    });
    assert_eq!(
        selectors,
        vec![runtime("dockerd", "docker.service"), runtime("containerd", "containerd.service"), buildkit]
    );
    let names: Vec<_> = p.targets.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["dockerd", "containerd", "buildkit"]);
    let c = p.compile().unwrap();
    for scope in [0, 1, 2] {
        assert!(c.allows_name(scope, "registry-1.docker.io"));
        assert!(c.allows_name(scope, "auth.docker.io"));
        assert!(c.allows_name(scope, "production.cloudflare.docker.com"));
        assert!(!c.allows_name(scope, "ghcr.io"));
        assert!(!c.allows_name(scope, "evil-registry-1.docker.io"));
    }
}

/// The Debian package's /etc/ram/ram.toml (dist/ram.toml) is a commented
/// copy of the embedded default: installing the package must enforce what
/// ramd enforces without a file, nothing more or less.
#[test]
fn the_packaged_example_policy_has_the_embedded_defaults_effect() {
    let example = Policy::parse(include_str!("../../../dist/ram.toml"), "ram.toml", &facts()).unwrap();
    let default = Policy::embedded_default(&facts()).unwrap();
    assert!(example.warnings.is_empty(), "{:?}", example.warnings);
    assert_eq!(example.mode, default.mode);
    assert_eq!(example.dns, default.dns);
    assert_eq!(example.limits, default.limits);
    assert_eq!(example.targets, default.targets);
    assert_eq!(example.allow, default.allow);
    assert_eq!(example.compile().unwrap(), default.compile().unwrap());
}

#[test]
fn resolvers_default_to_resolv_conf() {
    let p = parse(&format!("{TARGET}[[allow]]\nhost = \"a.example\"\n")).unwrap();
    let want: Vec<std::net::IpAddr> = vec!["192.0.2.53".parse().unwrap(), "fe80::1".parse().unwrap()];
    assert_eq!(p.dns.resolvers, want);
    let no_resolv = HostFacts { resolv_conf: None, ..facts() };
    let e = Policy::parse(&format!("{TARGET}[[allow]]\nhost = \"a.example\"\n"), "ram.toml", &no_resolv).unwrap_err();
    assert!(e.to_string().contains("dns.resolvers"), "{e}");
}

#[test]
fn syntax_errors_name_the_file_and_line() {
    let e = error("mode = \"enforce\"\n[[target]\n");
    assert!(e.starts_with("ram.toml: "), "{e}");
    assert!(e.contains("line 2"), "{e}");
}

#[test]
fn limits_are_validated_and_reach_the_compiled_scopes() {
    let p = parse(&format!("[limits]\nlearned_addresses = 1024\naddresses_per_answer = 4\n{TARGET}")).unwrap();
    assert_eq!((p.limits.learned_addresses, p.limits.addresses_per_answer), (1024, 4));
    assert_eq!(p.compile().unwrap().scopes[0].max_addresses, 4);
    let defaults = parse(TARGET).unwrap();
    assert_eq!((defaults.limits.learned_addresses, defaults.limits.addresses_per_answer), (65536, 24));
    assert_eq!((defaults.limits.host_rules, defaults.limits.address_rules), (4096, 1024));
    for (text, field) in [
        ("learned_addresses = 3", "limits.learned_addresses = \"3\""),
        ("learned_addresses = 99999999", "limits.learned_addresses = \"99999999\""),
        ("addresses_per_answer = 0", "limits.addresses_per_answer = \"0\""),
        ("addresses_per_answer = 25", "limits.addresses_per_answer = \"25\""),
        ("host_rules = 15", "limits.host_rules = \"15\""),
        ("host_rules = 262145", "limits.host_rules = \"262145\""),
        ("address_rules = 65537", "limits.address_rules = \"65537\""),
    ] {
        let err = parse(&format!("[limits]\n{text}\n{TARGET}")).unwrap_err().to_string();
        assert!(err.contains(field), "{err}");
    }
}

#[test]
fn metrics_listen_is_off_by_default_and_validated() {
    use crate::metrics::ListenAddr;
    assert_eq!(parse(TARGET).unwrap().metrics.listen, None);
    let p = parse(&format!("[metrics]\nlisten = \"127.0.0.1:9464\"\n{TARGET}")).unwrap();
    assert_eq!(p.metrics.listen, Some(ListenAddr::Tcp("127.0.0.1:9464".parse().unwrap())));
    let p = parse(&format!("[metrics]\nlisten = \"unix:/run/ram/metrics.sock\"\n{TARGET}")).unwrap();
    assert_eq!(p.metrics.listen, Some(ListenAddr::Unix("/run/ram/metrics.sock".into())));
    assert_eq!(
        error(&format!("[metrics]\nlisten = \"localhost:9464\"\n{TARGET}")),
        "ram.toml: metrics.listen = \"localhost:9464\": must be IP:PORT (127.0.0.1:9464, [::1]:9464; a host name \
         is not resolved) or unix:/PATH"
    );
    assert_eq!(
        error(&format!("[metrics]\nlisten = \"127.0.0.1\"\n{TARGET}")),
        "ram.toml: metrics.listen = \"127.0.0.1\": has no port; give IP:PORT, as in 127.0.0.1:9464"
    );
    let e = error(&format!("[metrics]\nlisten = \"unix:metrics.sock\"\n{TARGET}"));
    assert!(e.starts_with("ram.toml: metrics.listen = \"unix:metrics.sock\": "), "{e}");
    let e = error(&format!("[metrics]\nlisten = 9464\n{TARGET}"));
    assert!(e.contains("ram.toml") && e.contains("listen"), "{e}");
    let e = error(&format!("[metrics]\nport = 9464\n{TARGET}"));
    assert!(e.contains("ram.toml") && e.contains("port"), "{e}");
}

#[test]
fn unknown_keys_are_refused() {
    let e = error(&format!("{TARGET}[[allow]]\nhots = \"a.example\"\n"));
    assert!(e.contains("ram.toml") && e.contains("hots"), "{e}");
    let e = error(&format!("colour = \"blue\"\n{TARGET}"));
    assert!(e.contains("colour"), "{e}");
}

#[test]
fn bad_mode_is_refused() {
    let e = error(&format!("mode = \"block\"\n{TARGET}"));
    assert!(e.contains("block") && e.contains("enforce"), "{e}");
}

#[test]
fn a_policy_without_targets_is_refused() {
    let e = error("[[allow]]\nhost = \"a.example\"\n");
    assert_eq!(e, "ram.toml: target: no [[target]]: name at least one cgroup, process or unit to enforce");
}

#[test]
fn targets_need_exactly_one_selector() {
    let e = error("[[target]]\nname = \"x\"\n");
    assert!(e.contains("target[0]") && e.contains("needs"), "{e}");
    let e = error("[[target]]\nprocess = \"a\"\ncgroup = \"/sys/fs/cgroup/a\"\n");
    assert!(e.contains("target[0]") && e.contains("not both"), "{e}");
}

#[test]
fn cgroups_outside_the_v2_mount_are_refused() {
    let e = error("[[target]]\ncgroup = \"/sys/fs/cgroup-v1/docker\"\n");
    assert_eq!(
        e,
        "ram.toml: target[0].cgroup = \"/sys/fs/cgroup-v1/docker\": is outside the cgroup v2 mount /sys/fs/cgroup"
    );
    let e = error("[[target]]\ncgroup = \"system.slice/docker.service\"\n");
    assert!(e.contains("absolute"), "{e}");
    let e = error("[[target]]\ncgroup = \"/sys/fs/cgroup/../../etc\"\n");
    assert!(e.contains("`..`"), "{e}");
    let no_v2 = HostFacts { cgroup2_mount: None, ..facts() };
    let e = Policy::parse("[[target]]\ncgroup = \"/sys/fs/cgroup/x\"\n", "ram.toml", &no_v2).unwrap_err();
    assert!(e.to_string().contains("no cgroup v2 mount"), "{e}");
}

#[test]
fn units_are_cgroups_under_their_slice_of_the_v2_mount() {
    let p = parse("[[target]]\nunit = \"docker.service\"\n[[target]]\nunit = \"user.slice/user@1000.service\"\n[[target]]\nunit = \"machine.slice/libpod-ab12.scope\"\n").unwrap();
    let units: Vec<_> = p
        .targets
        .iter()
        .map(|t| match &t.selector {
            Selector::Unit(unit) => (t.name.as_str(), unit.name.as_str(), unit.cgroup.clone()),
            other => panic!("not a unit: {other:?}"),
        })
        .collect();
    assert_eq!(
        units,
        [
            ("docker", "docker.service", PathBuf::from("/sys/fs/cgroup/system.slice/docker.service")),
            ("user@1000", "user.slice/user@1000.service", PathBuf::from("/sys/fs/cgroup/user.slice/user@1000.service")),
            (
                "libpod-ab12.scope",
                "machine.slice/libpod-ab12.scope",
                PathBuf::from("/sys/fs/cgroup/machine.slice/libpod-ab12.scope")
            ),
        ]
    );
    // Slices nest as systemd nests them, and a hybrid host's mount is used.
    let hybrid = HostFacts { cgroup2_mount: Some("/sys/fs/cgroup/unified".into()), ..facts() };
    let p = Policy::parse("[[target]]\nunit = \"user.slice/user-1000.slice/user@1000.service\"\n", "ram.toml", &hybrid)
        .unwrap();
    assert_eq!(
        p.targets[0].selector.to_string(),
        "unit user.slice/user-1000.slice/user@1000.service at /sys/fs/cgroup/unified/user.slice/user-1000.slice/user@1000.service"
    );
    // systemd's escapes (`\x2d`) and instance names are unit characters.
    let p = parse("[[target]]\nunit = 'run-r\\x2dx:y_z.scope'\n").unwrap();
    assert_eq!(p.targets[0].name, "run-r\\x2dx:y_z.scope");
}

#[test]
fn bad_units_name_field_value_and_reason() {
    let unit_error = |unit: &str| error(&format!("[[target]]\nunit = \"{unit}\"\n"));
    assert_eq!(
        unit_error("docker service"),
        "ram.toml: target[0].unit = \"docker service\": contains ' '; unit names use ASCII letters, digits and `:-_.\\@`"
    );
    assert!(unit_error("dockér.service").contains("contains 'é'"), "{}", unit_error("dockér.service"));
    assert!(unit_error("../etc.service").contains("`..` is not a slice"), "{}", unit_error("../etc.service"));
    assert_eq!(
        unit_error("docker"),
        "ram.toml: target[0].unit = \"docker\": must end in .service or .scope, as in docker.service"
    );
    for (unit, reason) in [
        ("docker.socket", "must end in .service or .scope"),
        ("system.slice", "is a slice; name a .service or .scope unit in it"),
        (".service", "no name before its suffix"),
        ("getty@.service", "is a template"),
        ("", "names no unit"),
        ("system.slice/", "names no unit"),
        ("/docker.service", "empty part"),
        ("system.slice//docker.service", "empty part"),
        ("system/docker.service", "`system` is not a slice"),
        (".slice/docker.service", "no name before .slice"),
        ("-.slice/docker.service", "the cgroup root"),
    ] {
        let e = unit_error(unit);
        assert!(e.starts_with(&format!("ram.toml: target[0].unit = \"{unit}\": ")), "{unit}: {e}");
        assert!(e.contains(reason), "{unit}: {e}");
    }
    let long = format!("{}.service", "a".repeat(250));
    assert!(unit_error(&long).contains("longer than 255"), "{}", unit_error(&long));
    let no_v2 = HostFacts { cgroup2_mount: None, ..facts() };
    let e = Policy::parse("[[target]]\nunit = \"docker.service\"\n", "ram.toml", &no_v2).unwrap_err();
    assert_eq!(e.to_string(), "ram.toml: target[0].unit = \"docker.service\": this host has no cgroup v2 mount");
}

#[test]
fn process_and_unit_together_are_their_union_named_after_the_process() {
    let p = parse("[[target]]\nprocess = \"dockerd\"\nunit = \"docker.service\"\n").unwrap();
    let unit = Unit { name: "docker.service".into(), cgroup: "/sys/fs/cgroup/system.slice/docker.service".into() };
    assert_eq!(p.targets[0].selector, Selector::ProcessOrUnit { process: "dockerd".into(), unit });
    assert_eq!(p.targets[0].name, "dockerd");
    assert_eq!(
        p.targets[0].selector.to_string(),
        "process dockerd + unit docker.service at /sys/fs/cgroup/system.slice/docker.service"
    );
    // Without `name`, a unit alone names the target after the unit.
    let p = parse("[[target]]\nunit = \"containerd.service\"\n[[target]]\nname = \"d\"\nprocess = \"dockerd\"\nunit = \"docker.service\"\n").unwrap();
    let names: Vec<_> = p.targets.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["containerd", "d"]);
    // Both parts are validated.
    let e = error("[[target]]\nprocess = \"a/b\"\nunit = \"docker.service\"\n");
    assert!(e.starts_with("ram.toml: target[0].process = \"a/b\""), "{e}");
    let e = error("[[target]]\nprocess = \"dockerd\"\nunit = \"docker\"\n");
    assert!(e.starts_with("ram.toml: target[0].unit = \"docker\""), "{e}");
    // The same unit under two targets is two names for one cgroup.
    let e = error("[[target]]\nunit = \"docker.service\"\n[[target]]\nunit = \"docker.service\"\n");
    assert!(e.contains("target[1].name") && e.contains("distinct"), "{e}");
}

#[test]
fn cgroup_goes_alone() {
    let e = error("[[target]]\ncgroup = \"/sys/fs/cgroup/a\"\nunit = \"docker.service\"\n");
    assert_eq!(
        e,
        "ram.toml: target[0] = \"cgroup + unit\": give either `cgroup` alone, or `process` and/or `unit`, not both"
    );
    let e = error("[[target]]\ncgroup = \"/sys/fs/cgroup/a\"\nprocess = \"dockerd\"\nunit = \"docker.service\"\n");
    assert!(e.contains("target[0] = \"cgroup + process\"") && e.contains("not both"), "{e}");
    let e = error("[[target]]\nname = \"x\"\n");
    assert!(e.contains("`unit = \"name.service\"`"), "{e}");
}

#[test]
fn duplicate_target_names_are_refused() {
    let e = error("[[target]]\nprocess = \"dockerd\"\n[[target]]\nprocess = \"dockerd\"\n");
    assert!(e.contains("target[1].name") && e.contains("distinct"), "{e}");
}

#[test]
fn bad_hosts_name_field_and_value() {
    let e = error(&format!("{TARGET}[[allow]]\nhost = \"registry example.com\"\n"));
    assert!(e.starts_with("ram.toml: allow[0].host = \"registry example.com\": contains ' '"), "{e}");
    let e = error(&format!("{TARGET}[[allow]]\nhost = \"a.*.example\"\n"));
    assert!(e.contains("allow[0].host") && e.contains("first label"), "{e}");
    let e = error(&format!("{TARGET}[[allow]]\nhost = \"a..example\"\n"));
    assert!(e.contains("empty label"), "{e}");
    let e = error(&format!("{TARGET}[[allow]]\nhost = \"\"\n"));
    assert!(e.contains("is empty"), "{e}");
}

#[test]
fn bad_cidrs_name_field_and_value() {
    let e = error(&format!("{TARGET}[[allow]]\nhost = \"a.example\"\n[[allow]]\ncidr = \"10.0.0.0/33\"\n"));
    assert_eq!(e, "ram.toml: allow[1].cidr = \"10.0.0.0/33\": prefix length 33 exceeds 32");
    let e = error(&format!("{TARGET}[[allow]]\ncidr = \"10.20.1.0/16\"\n"));
    assert!(e.contains("host bits"), "{e}");
    let e = error(&format!("{TARGET}[[allow]]\ncidr = \"10.0.0.0/8\"\nhost = \"a.example\"\n"));
    assert!(e.contains("exactly one of"), "{e}");
    let e = error(&format!("{TARGET}[[allow]]\n"));
    assert!(e.contains("allow[0]"), "{e}");
}

#[test]
fn bad_dns_settings_are_refused() {
    let e = error(&format!("[dns]\nresolvers = [\"dns.example\"]\n{TARGET}"));
    assert!(e.contains("dns.resolvers[0] = \"dns.example\""), "{e}");
    let e = error(&format!("[dns]\nmin_ttl = 600\nmax_ttl = 60\n{TARGET}"));
    assert!(e.contains("dns.min_ttl = \"600\""), "{e}");
    let e = error(&format!("[dns]\nmin_ttl = -1\n{TARGET}"));
    assert!(e.contains("min_ttl"), "{e}");
}

#[test]
fn wildcards_cover_names_below_but_not_the_apex_or_lookalikes() {
    let p = parse(&format!("{TARGET}[[allow]]\nhost = \"*.example.net\"\n")).unwrap().compile().unwrap();
    assert!(p.allows_name(0, "a.example.net"));
    assert!(p.allows_name(0, "A.B.Example.NET."));
    assert!(!p.allows_name(0, "example.net"));
    assert!(!p.allows_name(0, "notexample.net"));
    assert!(!p.allows_name(0, "example.net.evil"));
}

#[test]
fn exact_rules_under_a_wildcard_do_not_shadow_it() {
    // The trie returns the longest match only: the exact entry
    // `x.registry.example.com` must still let names below it through the
    // wildcard above it, and a partial match of an exact entry must not.
    let text = format!(
        "{TARGET}[[allow]]\nhost = \"*.example.com\"\n[[allow]]\nhost = \"x.registry.example.com\"\n[[allow]]\nhost = \"registry.example.org\"\n"
    );
    let p = parse(&text).unwrap().compile().unwrap();
    assert!(p.allows_name(0, "y.x.registry.example.com"));
    assert!(p.allows_name(0, "x.registry.example.com"));
    assert!(p.allows_name(0, "xx.registry.example.com"));
    assert!(p.allows_name(0, "registry.example.org"));
    assert!(!p.allows_name(0, "a.registry.example.org"));
    assert!(!p.allows_name(0, "myregistry.example.org"));
    assert!(!p.allows_name(0, "example.com"));
}

#[test]
fn apex_and_wildcard_together() {
    let text = format!("{TARGET}[[allow]]\nhost = \"example.com\"\n[[allow]]\nhost = \"*.example.com\"\n");
    let p = parse(&text).unwrap().compile().unwrap();
    assert!(p.allows_name(0, "example.com"));
    assert!(p.allows_name(0, "www.example.com"));
    assert!(!p.allows_name(0, "myexample.com"));
    assert_eq!(p.names.len(), 2);
}

#[test]
fn every_rule_applies_to_every_target() {
    let text = "[[target]]\nprocess = \"a\"\n[[target]]\nprocess = \"b\"\n[[allow]]\nhost = \"r.example\"\n[[allow]]\ncidr = \"10.0.0.0/8\"\n";
    let p = parse(text).unwrap().compile().unwrap();
    assert_eq!(p.scopes.len(), 2);
    assert!(p.allows_name(0, "r.example") && p.allows_name(1, "r.example"));
    assert!(!p.allows_name(2, "r.example"));
    assert_eq!(p.cidrs.len(), 1);
    assert_eq!(p.cidrs[0].1.scopes, 0b11);
    assert!(p.resolvers.iter().all(|(_, scopes)| *scopes == 0b11));
}

#[test]
fn target_rules_apply_to_their_target_only() {
    let text = r#"
[[target]]
name = "dockerd"
process = "dockerd"
[[target]]
name = "buildkit"
process = "buildkitd"
mode = "audit"
[[target.allow]]
host = "cache.example.com"
[[target.allow]]
cidr = "10.9.0.0/16"
[[allow]]
host = "registry.example.com"
"#;
    let p = parse(text).unwrap();
    assert_eq!(p.targets[1].allow.len(), 2);
    assert_eq!(p.targets[1].mode, Mode::Audit);
    assert_eq!(p.targets[0].mode, Mode::Enforce);
    let c = p.compile().unwrap();
    assert!(c.allows_name(0, "registry.example.com") && c.allows_name(1, "registry.example.com"));
    assert!(!c.allows_name(0, "cache.example.com"));
    assert!(c.allows_name(1, "cache.example.com"));
    assert_eq!(c.cidrs.len(), 1);
    assert_eq!(c.cidrs[0].0, "10.9.0.0/16".parse().unwrap());
    assert_eq!(c.cidrs[0].1.scopes, 0b10);
}

#[test]
fn target_rules_are_validated_with_their_own_field_names() {
    let e = error("[[target]]\nprocess = \"dockerd\"\n[[target.allow]]\ncidr = \"10.0.0.0/40\"\n");
    assert!(e.contains("target[0].allow[0].cidr = \"10.0.0.0/40\""), "{e}");
    let e = error("[[target]]\nprocess = \"dockerd\"\n[[target.allow]]\nhots = \"x\"\n");
    assert!(e.contains("hots"), "{e}");
}

#[test]
fn wildcards_over_open_namespaces_are_accepted_with_a_warning() {
    let text = format!(
        "{TARGET}[[allow]]\nhost = \"*.team.s3.amazonaws.com\"\n[[allow]]\nhost = \"*.d1.cloudfront.net\"\n[[allow]]\nhost = \"*.docker.io\"\n[[allow]]\nhost = \"*.amazonaws.com\"\n"
    );
    let p = parse(&text).unwrap();
    assert_eq!(p.warnings.len(), 3, "{:?}", p.warnings);
    assert!(p.warnings[0].starts_with("ram.toml: allow[0].host = \"*.team.s3.amazonaws.com\": anyone can create a name below s3.amazonaws.com (an S3 bucket)"), "{}", p.warnings[0]);
    assert!(p.warnings[1].contains("CloudFront"), "{}", p.warnings[1]);
    assert!(p.warnings[2].contains("allow[3]"), "{}", p.warnings[2]);
    // Exact names inside those namespaces are fine.
    let exact = parse(&format!(
        "{TARGET}[[allow]]\nhost = \"prod-us-east-1-starport-layer-bucket.s3.us-east-1.amazonaws.com\"\n"
    ))
    .unwrap();
    assert!(exact.warnings.is_empty());
}

#[test]
fn the_trusted_network_namespace_is_a_bind_mounted_path() {
    let p = parse(&format!("[dns]\nresolvers = [\"127.0.0.53\"]\nnetns = \"/run/netns/ci\"\n{TARGET}")).unwrap();
    assert_eq!(p.dns.netns.as_deref(), Some(std::path::Path::new("/run/netns/ci")));
    let e = error(&format!("[dns]\nresolvers = [\"127.0.0.53\"]\nnetns = \"/proc/42/ns/net\"\n{TARGET}"));
    assert!(e.contains("dns.netns = \"/proc/42/ns/net\"") && e.contains("may be reused"), "{e}");
    let e = error(&format!("[dns]\nresolvers = [\"127.0.0.53\"]\nnetns = \"ci\"\n{TARGET}"));
    assert!(e.contains("dns.netns = \"ci\"") && e.contains("absolute path"), "{e}");
    // Unset: ramd's own namespace.
    assert_eq!(parse(&format!("[dns]\nresolvers = [\"127.0.0.53\"]\n{TARGET}")).unwrap().dns.netns, None);
}

#[test]
fn wildcards_over_public_suffixes_are_refused() {
    // TLDs, ICANN entries and private entries of the Public Suffix List.
    for suffix in ["com", "co.uk", "github.io", "s3.amazonaws.com", "blob.core.windows.net", "internal"] {
        let e = error(&format!("{TARGET}[[allow]]\nhost = \"x.example\"\n[[allow]]\nhost = \"*.{suffix}\"\n"));
        assert!(e.contains(&format!("allow[1].host = \"*.{suffix}\": {suffix} is a public suffix")), "*.{suffix}: {e}");
        let e = error(&format!("{TARGET}[[target.allow]]\nhost = \"*.{}\"\n", suffix.to_uppercase()));
        assert!(e.contains("target[0].allow[0].host") && e.contains("public suffix"), "{e}");
    }
    // Below a public suffix, a domain its owner controls: accepted.
    for fine in ["*.docker.io", "*.example.co.uk", "*.gcr.io", "*.quay.io", "*.pkg.dev"] {
        assert!(parse(&format!("{TARGET}[[allow]]\nhost = \"{fine}\"\n")).is_ok(), "{fine}");
    }
    // A preset whose registry documents only such a wildcard says so loudly.
    let p = parse(&format!("{TARGET}[[allow]]\npreset = \"acr\"\n")).unwrap();
    assert!(
        p.warnings.iter().any(|w| w.contains("(*.blob.core.windows.net): blob.core.windows.net is a public suffix")),
        "{:?}",
        p.warnings
    );
}

#[test]
fn presets_expand_to_their_hosts() {
    let p = parse(&format!(
        "{TARGET}[[allow]]\npreset = \"dockerhub\"\n[[allow]]\npreset = \"ecr\"\nregion = \"eu-west-1\"\n"
    ))
    .unwrap();
    let c = p.compile().unwrap();
    assert!(c.allows_name(0, "registry-1.docker.io"));
    assert!(c.allows_name(0, "auth.docker.io"));
    assert!(c.allows_name(0, "123456789012.dkr.ecr.eu-west-1.amazonaws.com"));
    assert!(!c.allows_name(0, "123456789012.dkr.ecr.us-east-1.amazonaws.com"));
    assert!(!c.allows_name(0, "ghcr.io"));
}

#[test]
fn bad_presets_name_field_and_value() {
    let e = error(&format!("{TARGET}[[allow]]\npreset = \"dockerhubb\"\n"));
    assert!(e.starts_with("ram.toml: allow[0].preset = \"dockerhubb\": no such preset; known: "), "{e}");
    let e = error(&format!("{TARGET}[[allow]]\npreset = \"ecr\"\n"));
    assert!(e.contains("allow[0].preset = \"ecr\"") && e.contains("needs `region`"), "{e}");
    let e = error(&format!("{TARGET}[[allow]]\npreset = \"ecr\"\nregion = \"US EAST\"\n"));
    assert!(e.contains("allow[0].region = \"US EAST\""), "{e}");
    let e = error(&format!("{TARGET}[[allow]]\nhost = \"a.example\"\nregion = \"us-east-1\"\n"));
    assert!(e.contains("allow[0].region"), "{e}");
}

#[test]
fn presets_with_open_wildcards_warn_and_say_which_preset() {
    let p = parse(&format!("{TARGET}[[allow]]\npreset = \"acr\"\n")).unwrap();
    assert!(
        p.warnings.iter().any(|w| w.contains("allow[0].preset = \"acr\" (*.blob.core.windows.net)")
            && w.contains("Azure storage account")),
        "{:?}",
        p.warnings
    );
}

#[test]
fn ports_are_kept_per_rule_and_add_up_per_destination() {
    let text = format!(
        "{TARGET}[[allow]]\nhost = \"r.example\"\nports = [443]\n[[allow]]\nhost = \"r.example\"\nports = [5000, 443]\n[[allow]]\nhost = \"*.cdn.example\"\nports = [443]\n[[allow]]\nhost = \"any.example\"\n[[allow]]\ncidr = \"10.0.0.0/8\"\nports = [8443]\n"
    );
    let c = parse(&text).unwrap().compile().unwrap();
    let set_of = |host: &str| c.name_port_set(0, host).map(|id| id as usize);
    let ports = |id: usize| c.port_sets[id - 1].iter().copied().collect::<Vec<u16>>();
    assert_eq!(ports(set_of("r.example").unwrap()), [443, 5000]);
    assert_eq!(ports(set_of("a.cdn.example").unwrap()), [443]);
    assert_eq!(set_of("any.example"), Some(0), "no ports given: any port");
    assert_eq!(set_of("other.example"), None);
    assert_eq!(ports(c.cidrs[0].1.ports[0] as usize), [8443]);
    // Set ids are shared: r.example's [443, 5000] and the cdn's [443] differ, the cdn and the cidr do not share.
    assert_eq!(c.port_sets.len(), 3);
}

#[test]
fn port_sets_move_between_halves_with_every_reference() {
    let text = format!(
        "{TARGET}[[allow]]\nhost = \"r.example\"\nports = [443]\n[[allow]]\nhost = \"any.example\"\n[[allow]]\ncidr = \"10.0.0.0/8\"\nports = [8443]\n"
    );
    let mut c = parse(&text).unwrap().compile().unwrap();
    let half0 = (c.name_port_set(0, "r.example"), c.cidrs[0].1.ports[0]);
    assert_eq!((c.port_half(), c.port_base), (0, 1));
    c.place_port_sets(1);
    assert_eq!((c.port_half(), c.port_base), (1, 128));
    assert_eq!(c.name_port_set(0, "r.example"), half0.0.map(|id| id + 127));
    assert_eq!(c.cidrs[0].1.ports[0], half0.1 + 127);
    assert_eq!(c.name_port_set(0, "any.example"), Some(0), "any port stays id 0");
    c.place_port_sets(0);
    assert_eq!((c.name_port_set(0, "r.example"), c.cidrs[0].1.ports[0]), half0);
}

#[test]
fn any_port_wins_over_a_list_for_the_same_name() {
    let text = format!("{TARGET}[[allow]]\nhost = \"r.x.example\"\nports = [443]\n[[allow]]\nhost = \"*.x.example\"\n");
    let c = parse(&text).unwrap().compile().unwrap();
    assert_eq!(c.name_port_set(0, "r.x.example"), Some(0));
}

#[test]
fn bad_ports_are_refused() {
    let e = error(&format!("{TARGET}[[allow]]\nhost = \"r.example\"\nports = [0]\n"));
    assert_eq!(e, "ram.toml: allow[0].ports = \"0\": ports are 1 to 65535");
    let e = error(&format!("{TARGET}[[allow]]\nhost = \"r.example\"\nports = [70000]\n"));
    assert!(e.contains("allow[0].ports = \"70000\""), "{e}");
    let e = error(&format!("{TARGET}[[allow]]\nhost = \"r.example\"\nports = []\n"));
    assert!(e.contains("allows nothing"), "{e}");
    let many: Vec<String> = (1..=17).map(|p| p.to_string()).collect();
    let e = error(&format!("{TARGET}[[allow]]\nhost = \"r.example\"\nports = [{}]\n", many.join(",")));
    assert!(e.contains("at most 16 ports"), "{e}");
    let e = error(&format!("{TARGET}[[allow]]\nhost = \"r.example\"\nports = [\"https\"]\n"));
    assert!(e.contains("ram.toml"), "{e}");
}

#[test]
fn containers_pass_by_default_and_enforce_judges_every_namespace() {
    use ram_common::maps::SCOPE_PASS_OTHER_NETNS;
    let compiled = parse(TARGET).unwrap().compile().unwrap();
    assert_eq!(compiled.scopes[0].containers, super::Containers::Pass);
    assert_eq!(compiled.scopes[0].flags(), SCOPE_PASS_OTHER_NETNS);
    let enforced = parse("[[target]]\nprocess = \"dockerd\"\ncontainers = \"enforce\"\n").unwrap().compile().unwrap();
    assert_eq!(enforced.scopes[0].flags(), 0);
    let e = error("[[target]]\nprocess = \"dockerd\"\ncontainers = \"open\"\n");
    assert!(e.starts_with("ram.toml: target[0].containers = \"open\""), "{e}");
    assert!(e.contains("pass") && e.contains("enforce") && e.contains("docker"), "{e}");
}

#[test]
fn a_longer_address_block_carries_the_grants_of_the_shorter_ones_holding_it() {
    use ram_common::{maps::ANY_PORT, verdict::scope_bit};
    let text = "[[target]]\nname = \"a\"\nprocess = \"dockerd\"\n[[target.allow]]\ncidr = \"10.0.0.0/8\"\n[[target]]\nname = \"b\"\nprocess = \"containerd\"\n[[target.allow]]\ncidr = \"10.20.0.0/16\"\n[[target.allow]]\ncidr = \"10.20.5.0/24\"\nports = [443]\n";
    let compiled = parse(text).unwrap().compile().unwrap();
    let rule = |block: &str| compiled.cidrs.iter().find(|(c, _)| c.to_string() == block).map(|(_, r)| *r).unwrap();
    let (a, b) = (compiled.scopes[0].scope, compiled.scopes[1].scope);
    let inner = rule("10.20.5.0/24");
    assert_eq!(inner.scopes, scope_bit(a) | scope_bit(b), "the /8 of a and the /16 of b hold the /24");
    assert_eq!(u32::from(inner.ports[b as usize]), ANY_PORT, "b's /16 allows any port there");
    assert_eq!(u32::from(inner.ports[a as usize]), ANY_PORT);
    assert_eq!(rule("10.20.0.0/16").scopes, scope_bit(a) | scope_bit(b));
    assert_eq!(rule("10.0.0.0/8").scopes, scope_bit(a));
}

#[test]
fn rootless_helpers_are_judged_unless_a_target_passing_its_containers_says_pass() {
    use ram_common::maps::{SCOPE_PASS_OTHER_NETNS, SCOPE_PASS_RELAYS};
    let compiled = parse("[[target]]\nprocess = \"podman\"\nrootless_helpers = \"pass\"\n").unwrap().compile().unwrap();
    assert_eq!(compiled.scopes[0].flags(), SCOPE_PASS_OTHER_NETNS | SCOPE_PASS_RELAYS);
    let judged = parse("[[target]]\nprocess = \"podman\"\nrootless_helpers = \"judge\"\n").unwrap().compile().unwrap();
    assert_eq!(judged.scopes[0].flags(), SCOPE_PASS_OTHER_NETNS);
    let e = error("[[target]]\nprocess = \"podman\"\ncontainers = \"enforce\"\nrootless_helpers = \"pass\"\n");
    assert!(e.starts_with("ram.toml: target[0].rootless_helpers = \"pass\""), "{e}");
    assert!(e.contains("containers = \"pass\""), "{e}");
    let e = error("[[target]]\ncontainers = \"docker\"\nrootless_helpers = \"pass\"\n");
    assert!(e.contains("target[0].rootless_helpers"), "{e}");
    let e = error("[[target]]\nprocess = \"podman\"\nrootless_helpers = \"yes\"\n");
    assert!(e.starts_with("ram.toml: target[0].rootless_helpers = \"yes\""), "{e}");
    assert!(e.contains("\"pass\"") && e.contains("\"judge\""), "{e}");
}

#[test]
fn container_targets_name_a_runtime_and_filter_by_image_and_label() {
    use super::{containers::LabelMatch, ContainerSelector, Runtime, Selector};
    use ram_common::maps::{RUNTIME_DOCKER, TRUSTED_NETNS_ANY};
    let text = "[[target]]\nprocess = \"dockerd\"\n[[target]]\nname = \"builders\"\ncontainers = \"docker\"\nimage = \"moby/buildkit*\"\nlabel = \"ci.job=7\"\n[[allow]]\nhost = \"r.example\"\n";
    let policy = parse(text).unwrap();
    assert_eq!(
        policy.targets[1].selector,
        Selector::Containers(ContainerSelector {
            runtime: Runtime::Docker,
            image: Some("moby/buildkit*".into()),
            label: Some(LabelMatch { key: "ci.job".into(), value: Some("7".into()) }),
        })
    );
    let compiled = policy.compile().unwrap();
    let builders = &compiled.scopes[1];
    assert_eq!(builders.membership(), (2, RUNTIME_DOCKER));
    assert_eq!(compiled.scopes[0].membership(), (0, 0));
    assert_eq!(builders.flags(), 0, "a container's sockets are all judged");
    assert_eq!(builders.trusted_netns(7), TRUSTED_NETNS_ANY);
    assert_eq!(compiled.scopes[0].trusted_netns(7), 7);
    // Docker's embedded DNS is trusted for the container target only.
    let embedded: std::net::IpAddr = "127.0.0.11".parse().unwrap();
    assert_eq!(compiled.resolvers.iter().find(|(a, _)| *a == embedded).map(|(_, m)| *m), Some(1 << 1));
    let default_name = parse("[[target]]\ncontainers = \"docker\"\n").unwrap();
    assert_eq!(default_name.targets[0].name, "docker-containers");
}

#[test]
fn container_targets_refuse_what_does_not_fit_them() {
    let e = error("[[target]]\ncontainers = \"docker\"\nprocess = \"dockerd\"\n");
    assert!(e.starts_with("ram.toml: target[0].process = \"dockerd\": a container target"), "{e}");
    let e = error("[[target]]\nprocess = \"dockerd\"\nimage = \"x*\"\n");
    assert!(e.starts_with("ram.toml: target[0].image = \"x*\": only a container target"), "{e}");
    let e = error("[[target]]\ncontainers = \"docker\"\nlabel = \"=v\"\n");
    assert!(e.starts_with("ram.toml: target[0].label = \"=v\""), "{e}");
    let e = error("[[target]]\ncontainers = \"docker\"\nimage = \"a b\"\n");
    assert!(e.contains("target[0].image"), "{e}");
    let e = error("[[target]]\ncontainers = \"podman\"\n");
    assert!(e.contains("not supported as targets yet"), "{e}");
}

#[test]
fn more_rules_than_the_kernel_holds_are_refused_naming_the_limit() {
    use ram_common::maps::{CIDR_CAPACITY, NAMES_CAPACITY};
    let hosts =
        |n: u32| -> String { (0..n).map(|i| format!("[[allow]]\nhost = \"h{i}.registry.example\"\n")).collect() };
    assert!(parse(&format!("{TARGET}{}", hosts(NAMES_CAPACITY))).unwrap().compile().is_ok());
    let e = parse(&format!("{TARGET}{}", hosts(NAMES_CAPACITY + 1))).unwrap().compile().unwrap_err().to_string();
    assert!(e.starts_with("ram.toml: allow[].host"), "{e}");
    assert!(e.contains(&format!("{} distinct host names", NAMES_CAPACITY + 1)), "{e}");
    assert!(e.contains(&format!("at most {NAMES_CAPACITY} ([limits] host_rules)")), "{e}");
    // Raised, the same policy fits; a reload is held to the running maps.
    let raised = parse(&format!("[limits]\nhost_rules = 8192\n{TARGET}{}", hosts(NAMES_CAPACITY + 1))).unwrap();
    let compiled = raised.compile().expect("fits the raised limit");
    let running = Limits { host_rules: NAMES_CAPACITY, ..raised.limits };
    let e = compiled.fits(&running, "ram.toml", " of the running ramd").unwrap_err().to_string();
    assert!(e.contains("([limits] host_rules of the running ramd)"), "{e}");
    let cidrs: String =
        (0..=CIDR_CAPACITY).map(|i| format!("[[allow]]\ncidr = \"10.{}.{}.0/24\"\n", i >> 8, i & 0xff)).collect();
    let e = parse(&format!("{TARGET}{cidrs}")).unwrap().compile().unwrap_err().to_string();
    assert!(e.contains("IPv4 address rules") && e.contains(&format!("at most {CIDR_CAPACITY}")), "{e}");
}

#[test]
fn explain_lists_the_host_rules_that_match_a_name() {
    let text = r#"
[[target]]
name = "dockerd"
process = "dockerd"
[[target.allow]]
host = "*.internal.example"
ports = [5000]
[[target]]
name = "buildkit"
process = "buildkitd"
[[allow]]
preset = "ghcr"
[[allow]]
host = "registry.internal.example"
"#;
    let policy = Policy::parse(text, "ram.toml", &facts()).unwrap();
    let matches = policy.host_rules_matching("dockerd", "Registry.Internal.Example.");
    assert_eq!(matches.len(), 2, "{matches:?}");
    assert_eq!(matches[0].pattern, "registry.internal.example");
    assert_eq!(matches[1].pattern, "*.internal.example");
    assert_eq!(matches[1].ports, Some(vec![5000]));
    // The other target has only the top-level rule.
    assert_eq!(policy.host_rules_matching("buildkit", "registry.internal.example").len(), 1);
    // A wildcard does not match its own suffix, nor a name that merely ends alike.
    assert!(policy.host_rules_matching("dockerd", "internal.example").is_empty());
    assert!(policy.host_rules_matching("dockerd", "xinternal.example").is_empty());
    // A preset's hosts match, and say where they came from.
    let ghcr = policy.host_rules_matching("buildkit", "ghcr.io");
    assert_eq!(ghcr.len(), 1, "{ghcr:?}");
    assert!(ghcr[0].origin.contains("preset"), "{ghcr:?}");
}

#[test]
fn lost_resolvers_are_those_a_scope_trusted_and_no_longer_does() {
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    let (a, b, c) = (ip("127.0.0.53"), ip("10.0.0.53"), ip("fd00::53"));
    // Added, or trusted by more scopes: nothing lost.
    assert_eq!(lost_resolvers(&[(a, 0b1)], &[(a, 0b11), (b, 0b11)]), vec![]);
    assert_eq!(lost_resolvers(&[], &[(a, 0b1)]), vec![]);
    // Removed: lost by every scope that trusted it; reordered: nothing.
    assert_eq!(lost_resolvers(&[(a, 0b11), (b, 0b11), (c, 0b1)], &[(b, 0b11)]), vec![(a, 0b11), (c, 0b1)]);
    assert_eq!(lost_resolvers(&[(a, 0b1), (b, 0b1)], &[(b, 0b1), (a, 0b1)]), vec![]);
    // Trusted by fewer scopes: those scopes lost it.
    assert_eq!(lost_resolvers(&[(a, 0b111)], &[(a, 0b101)]), vec![(a, 0b010)]);
    // An IPv4 address and its IPv4-mapped form are one resolver.
    assert_eq!(lost_resolvers(&[(ip("::ffff:127.0.0.53"), 0b1)], &[(a, 0b1)]), vec![]);
    assert_eq!(lost_resolvers(&[(a, 0b1)], &[(ip("::ffff:127.0.0.53"), 0b1)]), vec![]);
    // From a resolv.conf that names two to one that names one (a DHCP or
    // VPN rewrite), through the compiled policy.
    let text = "[[target]]\nprocess = \"dockerd\"\n[[allow]]\nhost = \"r.example\"\n";
    let host = |resolv: &str| {
        let facts = HostFacts { resolv_conf: Some(resolv.into()), ..facts() };
        Policy::parse(text, "ram.toml", &facts).unwrap().compile().unwrap().resolvers
    };
    let before = host("nameserver 192.0.2.53\nnameserver 192.0.2.54\n");
    let after = host("nameserver 192.0.2.54\n");
    assert_eq!(lost_resolvers(&before, &after), vec![(ip("192.0.2.53"), 0b1)]);
    assert_eq!(lost_resolvers(&after, &before), vec![]);
}

#[test]
fn resolver_rows_merge_by_address_and_scopes() {
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    let (a, b) = (ip("127.0.0.53"), ip("fd00::53"));
    assert_eq!(
        merge_resolver_rows(&[(a, 0b01)], &[(ip("::ffff:127.0.0.53"), 0b10), (b, 0b1)]),
        vec![(a, 0b11), (b, 0b1)]
    );
    assert_eq!(merge_resolver_rows(&[], &[]), vec![]);
    // A row trusted by no scope is no row.
    assert_eq!(merge_resolver_rows(&[(a, 0)], &[]), vec![]);
}

#[test]
fn targets_keep_their_scope_numbers_by_name_and_new_ones_take_unused_numbers() {
    use super::compile::scope_numbers;
    let none = BTreeMap::new();
    assert_eq!(scope_numbers(&["a", "b", "c"], &none), vec![0, 1, 2], "a first run numbers in order");
    let previous: BTreeMap<String, u32> = [("jobs".to_string(), 0), ("docker".to_string(), 1)].into();
    // A target put ahead of the others keeps nobody else's number.
    assert_eq!(scope_numbers(&["wide", "jobs", "docker"], &previous), vec![2, 0, 1]);
    // A number given up (docker removed) is not given to a new target while
    // a free one is left: the old programs of docker may still run.
    assert_eq!(scope_numbers(&["jobs", "new"], &previous), vec![0, 2]);
    // Renamed: a new target.
    assert_eq!(scope_numbers(&["jobs2"], &previous), vec![2]);
    // All 64 numbers had: a given-up one is reused.
    let full: BTreeMap<String, u32> = (0..64).map(|n| (format!("t{n}"), n)).collect();
    let mut names: Vec<String> = (1..64).map(|n| format!("t{n}")).collect();
    names.push("new".into());
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let numbers = scope_numbers(&refs, &full);
    assert_eq!(numbers[..63], (1..64).collect::<Vec<u32>>()[..]);
    assert_eq!(numbers[63], 0);
    // A previous number out of range, or two names claiming one number,
    // never yields a duplicate.
    let odd: BTreeMap<String, u32> = [("a".to_string(), 99), ("b".to_string(), 3)].into();
    let numbers = scope_numbers(&["a", "b", "c"], &odd);
    assert_eq!(numbers, vec![0, 3, 1]);
}

#[test]
fn rules_follow_their_targets_scope_numbers() {
    let policy = parse(
        "[[target]]\nname = \"wide\"\ncgroup = \"/sys/fs/cgroup/w\"\n[[target.allow]]\ncidr = \"10.0.0.0/8\"\n\
         [[target]]\nname = \"jobs\"\ncgroup = \"/sys/fs/cgroup/j\"\n[[target.allow]]\nhost = \"registry.test\"\n",
    )
    .unwrap();
    let jobs = &policy.targets[1];
    let previous: BTreeMap<String, u32> = [(scope_identity(&jobs.name, &jobs.selector), 0)].into();
    let compiled = policy.compile_numbered(&previous).unwrap();
    let number = |name: &str| compiled.scopes.iter().find(|s| s.name == name).unwrap().scope;
    assert_eq!((number("jobs"), number("wide")), (0, 1));
    assert_eq!(compiled.cidrs[0].1.scopes, 1 << 1, "wide's cidr rule is scope 1's");
    assert!(compiled.allows_name(0, "registry.test"));
    assert!(!compiled.allows_name(1, "registry.test"));
    // The same name on other cgroups is another scope: its old programs
    // (number 0, on /sys/fs/cgroup/j) must not read rules meant elsewhere.
    let moved =
        parse("[[target]]\nname = \"jobs\"\ncgroup = \"/sys/fs/cgroup/w\"\n[[target.allow]]\ncidr = \"10.0.0.0/8\"\n")
            .unwrap();
    let compiled = moved.compile_numbered(&previous).unwrap();
    assert_eq!(compiled.scopes[0].scope, 1, "a moved target takes a fresh number");
}
