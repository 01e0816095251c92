//! Root integration tests against the real kernel: a test cgroup and network
//! namespace, ramd attached to the cgroup, ram-probe inside it.
//!
//! "Allowed" shows as ECONNREFUSED (the SYN reached the namespace's loopback
//! and nothing listened) or a reply; "denied" as EPERM from the hook, or no
//! reply for packets the egress backstop drops.

use std::{
    path::{Path, PathBuf},
    thread::sleep,
    time::Duration,
};

use ram_tests::*;

/// The probe's namespace is the runtime's (`[dns] netns`): sockets there
/// are judged; those of other namespaces would be its containers'.
fn cidr_policy(cgroup: &TestCgroup, netns: &Netns, extra: &str) -> String {
    format!(
        r#"
[dns]
resolvers = ["127.0.0.53"]
{}[[target]]
name = "probe"
cgroup = "{}"
[[allow]]
cidr = "127.20.0.0/16"
[[allow]]
cidr = "fd00:20::/64"
{extra}
"#,
        netns.dns_trust(),
        cgroup.path.display()
    )
}

#[test]
fn connect_and_sendmsg_verdicts_for_v4_v6_and_v4_mapped() {
    require_root();
    let netns = Netns::new("k-verdicts");
    netns.add_addr("fd00:20::1/128");
    netns.add_addr("fd00:30::1/128");
    let cgroup = TestCgroup::new("k-verdicts");
    let ramd = Ramd::start(&cidr_policy(&cgroup, &netns, ""));
    let inside = |args: &[&str]| probe(Some(&cgroup), Some(&netns), args);

    // TCP connect: allowed by a cidr rule, denied otherwise.
    assert_eq!(inside(&["connect", "127.20.0.1", "9"]), "ECONNREFUSED");
    assert_eq!(inside(&["connect", "127.30.0.1", "9"]), "EPERM");
    assert_eq!(inside(&["connect", "fd00:20::1", "9"]), "ECONNREFUSED");
    assert_eq!(inside(&["connect", "fd00:30::1", "9"]), "EPERM");
    assert_eq!(inside(&["connect", "::1", "9"]), "EPERM");
    // IPv4-mapped IPv6 is judged as IPv4.
    assert_eq!(inside(&["connect", "::ffff:127.20.0.1", "9"]), "ECONNREFUSED");
    assert_eq!(inside(&["connect", "::ffff:127.30.0.1", "9"]), "EPERM");
    // Unconnected UDP (sendmsg), port 443 included.
    assert_eq!(inside(&["sendto", "127.20.0.1", "443"]), "ok");
    assert_eq!(inside(&["sendto", "127.30.0.1", "443"]), "EPERM");
    assert_eq!(inside(&["sendto", "::ffff:127.30.0.1", "443"]), "EPERM");
    assert_eq!(inside(&["sendto", "fd00:30::1", "443"]), "EPERM");
    // Port 53 is open only towards the configured resolver.
    assert_eq!(inside(&["sendto", "127.0.0.53", "53"]), "ok");
    assert_eq!(inside(&["sendto", "127.0.0.54", "53"]), "EPERM");
    assert_eq!(inside(&["sendto", "127.0.0.53", "54"]), "EPERM");

    // The same namespace outside the cgroup is not enforced.
    assert_eq!(probe(None, Some(&netns), &["connect", "127.30.0.1", "9"]), "ECONNREFUSED");

    assert!(ramd.counter("probe", "connect_blocked") >= 4);
    assert!(ramd.counter("probe", "connect_allowed") >= 3);
    assert!(ramd.counter("probe", "sendmsg_blocked") >= 5);
    let out = ramd.ramctl(&["check", "127.20.7.7", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!((v[0]["verdict"].as_str(), v[0]["rule"].as_str()), (Some("cidr"), Some("127.20.0.0/16")), "{v}");
    assert!(ramd.ramctl(&["check", "::ffff:127.20.0.1"]).status.success());
    assert_eq!(ramd.ramctl(&["check", "fd00:30::1", "--target", "probe"]).status.code(), Some(2));

    // Every denial is logged with who and where.
    let line = ramd.wait_log("blocked log line for 127.30.0.1", |e| {
        e["event"] == "blocked" && e["daddr"] == "127.30.0.1" && e["dport"] == 9 && e["comm"] == "ram-probe"
    });
    assert!(line["pid"].as_u64().unwrap_or(0) > 0, "{line}");
    assert_eq!(line["protocol"], "tcp");
    let v6 = ramd.log_events().into_iter().any(|e| e["event"] == "blocked" && e["daddr"] == "fd00:30::1");
    assert!(v6, "no blocked log line for fd00:30::1");
}

#[test]
fn egress_backstop_drops_raw_icmp_to_addresses_not_allowed() {
    require_root();
    let netns = Netns::new("k-egress");
    let cgroup = TestCgroup::new("k-egress");
    let ramd = Ramd::start(&cidr_policy(&cgroup, &netns, ""));
    // Raw sockets skip the sock_addr hooks; the egress program still sees
    // the real destination.
    assert_eq!(probe(Some(&cgroup), Some(&netns), &["raw-ping", "127.20.0.1"]), "reply");
    assert_ne!(probe(Some(&cgroup), Some(&netns), &["raw-ping", "127.30.0.1"]), "reply");
    assert_eq!(probe(None, Some(&netns), &["raw-ping", "127.30.0.1"]), "reply");
    assert!(ramd.counter("probe", "egress_dropped") >= 1);
    ramd.wait_log("egress log line", |e| {
        e["event"] == "blocked" && e["hook"] == "egress" && e["daddr"] == "127.30.0.1"
    });
}

#[test]
fn sockets_outside_the_runtimes_namespace_are_its_containers_and_pass() {
    require_root();
    let netns = Netns::new("k-containers");
    let cgroup = TestCgroup::new("k-containers");
    let ramd = Ramd::start(&cidr_policy(&cgroup, &netns, ""));
    let runtime = |args: &[&str]| probe(Some(&cgroup), Some(&netns), args);
    // The same cgroup, in a namespace of its own: a container of the
    // runtime on a hybrid host (or its embedded DNS server's socket).
    let container = |args: &[&str]| {
        let mut all = vec!["in-own-netns"];
        all.extend_from_slice(args);
        probe(Some(&cgroup), Some(&netns), &all)
    };
    assert_eq!(runtime(&["connect", "127.30.0.1", "9"]), "EPERM");
    assert_ne!(runtime(&["raw-ping", "127.30.0.1"]), "reply");
    assert_eq!(container(&["connect", "127.30.0.1", "9"]), "ECONNREFUSED");
    assert_eq!(container(&["connect", "::1", "9"]), "ECONNREFUSED");
    assert_eq!(container(&["sendto", "127.30.0.1", "443"]), "ok");
    // A raw socket meets no connect or sendmsg hook: sock_create noted it.
    assert_eq!(container(&["raw-ping", "127.30.0.1"]), "reply", "{}", ramd.log_text());
    assert!(ramd.counter("probe", "other_netns_passed") >= 4);
    // The runtime's own sockets are still judged after all that.
    assert_eq!(runtime(&["connect", "127.30.0.1", "9"]), "EPERM");
    assert_eq!(runtime(&["connect", "127.20.0.1", "9"]), "ECONNREFUSED");

    // containers = "enforce": every namespace is judged, at once.
    ramd.write_policy(&cidr_policy(&cgroup, &netns, "").replacen(
        "[[target]]\n",
        "[[target]]\ncontainers = \"enforce\"\n",
        1,
    ));
    let out = ramd.ramctl(&["reload"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(container(&["connect", "127.30.0.1", "9"]), "EPERM");
    assert_eq!(container(&["sendto", "127.30.0.1", "443"]), "EPERM");
    assert_ne!(container(&["raw-ping", "127.30.0.1"]), "reply");
    assert_eq!(container(&["connect", "127.20.0.1", "9"]), "ECONNREFUSED");
}

#[test]
fn a_containers_socket_flood_does_not_crowd_out_the_runtimes_dns() {
    require_root();
    let scene = Scene::new("k-flood", &[("unused.registry.test", "127.10.0.9")], 300);
    // A resolver that answers after 1.5 s: time for the flood to note more
    // sockets than a notes map holds between the runtime's query and its
    // answer.
    let (_server, policy) = extra_resolver(
        &scene,
        "127.0.0.57",
        &["delay=1500", "a.registry.test=127.10.0.1"],
        "",
        "[[allow]]\nhost = \"a.registry.test\"\n",
    );
    let ramd = Ramd::start(&policy);
    // One flood per CPU, from a namespace of the target's own cgroup (a
    // container): a socket, one datagram, closed, again and again.
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let mut floods: Vec<Proc> = (0..cpus)
        .map(|_| {
            let mut cmd = std::process::Command::new(probe_bin());
            cmd.args(["in-own-netns", "socket-flood", "127.0.0.1", "9", "400000"]).stdout(std::process::Stdio::null());
            place(&mut cmd, Some(&scene.cgroup.path), Some(&scene.netns));
            Proc::spawn("flood", &mut cmd)
        })
        .collect();
    sleep(Duration::from_millis(200));
    let during = scene.inside(&["resolve-connect", "127.0.0.57", "a.registry.test", "5000"]);
    let flooded = ramd.counter("docker", "other_netns_passed");
    let still_flooding = floods.iter_mut().all(|f| f.is_running());
    assert_eq!(during, "127.10.0.1 ECONNREFUSED", "{}", ramd.log_text());
    assert!(flooded >= 65536, "the flood noted only {flooded} sockets during the exchange");
    assert!(still_flooding, "a flood ended before the answer came");
}

/// Floods of ordinary sockets (as nobody, in the runtime's namespace, to
/// the resolver's port 53: each one a DNS note) while `during` runs.
fn with_socket_floods<T>(cgroup: &TestCgroup, netns: &Netns, during: impl FnOnce() -> T) -> T {
    let floods: Vec<Proc> = (0..2)
        .map(|_| {
            let mut cmd = std::process::Command::new("setpriv");
            cmd.args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
                .arg(probe_bin())
                .args(["socket-flood", "127.0.0.53", "53", "70000"])
                .stdout(std::process::Stdio::null());
            place(&mut cmd, Some(&cgroup.path), Some(netns));
            Proc::spawn("flood", &mut cmd)
        })
        .collect();
    let out = during();
    drop(floods);
    out
}

#[test]
fn privileged_sockets_notes_survive_a_flood_of_ordinary_sockets() {
    require_root();
    let netns = Netns::new("k-privflood");
    let cgroup = TestCgroup::new("k-privflood");
    let ramd = Ramd::start(&cidr_policy(&cgroup, &netns, ""));
    let dir = TempDir::new("k-privflood");
    // A raw socket made under ram, used after the flood to send a "kernel
    // answer" with a payload to a blocked address: still refused.
    let raw = with_socket_floods(&cgroup, &netns, || {
        probe(Some(&cgroup), Some(&netns), &["raw-icmp-reply-after", "127.30.0.1", "3000"])
    });
    assert_eq!(raw, "EPERM");
    // A UDP docker-proxy (Docker's file, run by a stand-in named dockerd)
    // forwarding to an echo server outside the cgroup: its flow keeps
    // working through the flood.
    let echo_server = {
        let mut cmd = std::process::Command::new(probe_bin());
        cmd.args(["listen", "127.30.0.2", "7777"]).stdout(std::process::Stdio::null());
        place(&mut cmd, None, Some(&netns));
        Proc::spawn("echo", &mut cmd)
    };
    let stand_in = dir.path.join("dockerd");
    std::fs::copy("/bin/dash", &stand_in).expect("copy dash");
    // Not exec'd: docker-proxy must be the stand-in's child.
    let script = "/usr/sbin/docker-proxy -proto udp -host-ip 127.0.0.1 -host-port 18090 \
         -container-ip 127.30.0.2 -container-port 7777 3>/dev/null; true";
    let mut cmd = std::process::Command::new(&stand_in);
    cmd.args(["-c", script]).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    place(&mut cmd, Some(&cgroup.path), Some(&netns));
    let _proxy = Proc::spawn("docker-proxy", &mut cmd);
    let registered = wait_for(Duration::from_secs(10), || {
        ramd.log_text().contains("may connect to its container at 127.30.0.2 port 7777").then_some(())
    });
    assert!(registered.is_some(), "the stand-in's docker-proxy was not registered:\n{}", ramd.log_text());
    let pair = with_socket_floods(&cgroup, &netns, || {
        probe(None, Some(&netns), &["udp-echo-pair", "127.0.0.1", "18090", "3000"])
    });
    assert_eq!(pair, "ok ok", "{}", ramd.log_text());
    drop(echo_server);
}

#[test]
fn a_server_in_an_enforced_cgroup_accepts_clients_from_anywhere() {
    require_root();
    let netns = Netns::new("k-server");
    let cgroup = TestCgroup::new("k-server");
    let _ramd = Ramd::start(&cidr_policy(&cgroup, &netns, ""));
    // docker-proxy and dockerd's API are such servers: their SYN-ACK (owned
    // by the listener on recent kernels) answers a connection another
    // process opened, to an address no rule names.
    let mut cmd = std::process::Command::new(probe_bin());
    cmd.args(["listen", "127.30.0.1", "7070"]).stdout(std::process::Stdio::null());
    place(&mut cmd, Some(&cgroup.path), Some(&netns));
    let _server = Proc::spawn("server", &mut cmd);
    let up = wait_for(Duration::from_secs(10), || {
        (probe(None, Some(&netns), &["connect", "127.30.0.1", "7070"]) == "ok").then_some(())
    });
    assert!(up.is_some(), "a client outside the cgroup could not connect to the enforced server");
    // The server's own connects are still judged.
    assert_eq!(probe(Some(&cgroup), Some(&netns), &["connect", "127.30.0.1", "7070"]), "EPERM");
}

#[test]
fn learns_from_a_real_resolver_before_the_answer_reaches_the_socket() {
    require_root();
    let netns = Netns::new("k-learn");
    netns.add_addr("fd00:10::1/128");
    let dir = TempDir::new("k-learn");
    let _dns = dnsmasq(
        &netns,
        &dir,
        "127.0.0.53",
        &[
            ("allowed.registry.test", "127.10.0.1"),
            ("allowed.registry.test", "fd00:10::1"),
            ("blocked.registry.test", "127.10.0.2"),
            ("mirror.allowed.test", "127.10.0.3"),
        ],
        300,
    );
    let cgroup = TestCgroup::new("k-learn");
    let policy = format!(
        r#"
[dns]
resolvers = ["127.0.0.53"]
{}[[target]]
name = "probe"
cgroup = "{}"
[[allow]]
host = "allowed.registry.test"
[[allow]]
host = "*.allowed.test"
"#,
        netns.dns_trust(),
        cgroup.path.display()
    );
    let ramd = Ramd::start(&policy);
    let inside = |args: &[&str]| probe(Some(&cgroup), Some(&netns), args);

    // Before any lookup the address is unknown.
    assert_eq!(inside(&["connect", "127.10.0.1", "5000"]), "EPERM");
    // Resolve and connect at once: the address is learned before the answer
    // reaches the socket.
    assert_eq!(inside(&["resolve-connect", "127.0.0.53", "allowed.registry.test", "5000"]), "127.10.0.1 ECONNREFUSED");
    assert_eq!(
        inside(&["resolve-connect", "127.0.0.53", "allowed.registry.test", "5000", "aaaa"]),
        "fd00:10::1 ECONNREFUSED"
    );
    assert_eq!(inside(&["resolve-connect", "127.0.0.53", "mirror.allowed.test", "5000"]), "127.10.0.3 ECONNREFUSED");
    // A name the policy does not allow teaches nothing.
    assert_eq!(inside(&["resolve-connect", "127.0.0.53", "blocked.registry.test", "5000"]), "127.10.0.2 EPERM");
    // Learning outside the cgroup does not help a process inside.
    assert_eq!(probe(None, Some(&netns), &["resolve", "127.0.0.53", "blocked.registry.test"]), "127.10.0.2");
    assert_eq!(inside(&["connect", "127.10.0.2", "5000"]), "EPERM");

    let learned = ramd.ramctl_json(&["learned"]).expect("ramctl learned");
    let rows = learned.as_array().expect("array");
    let row = rows.iter().find(|r| r["addr"] == "127.10.0.1").unwrap_or_else(|| panic!("not learned: {learned}"));
    assert_eq!(row["host"], "allowed.registry.test");
    let left = row["expires_in_s"].as_i64().unwrap();
    assert!(left > 250 && left <= 300, "{row}");
    assert!(rows.iter().any(|r| r["addr"] == "fd00:10::1" && r["host"] == "allowed.registry.test"), "{learned}");
    assert!(rows.iter().any(|r| r["addr"] == "127.10.0.3" && r["host"] == "mirror.allowed.test"), "{learned}");
    assert!(!rows.iter().any(|r| r["addr"] == "127.10.0.2"), "{learned}");
    assert!(ramd.counter("probe", "dns_not_allowed") >= 1);

    // ramctl check answers from the same maps.
    let check = |args: &[&str]| {
        let mut all = vec!["check"];
        all.extend_from_slice(args);
        all.push("--json");
        let out = ramd.ramctl(&all);
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        (out.status.code(), json[0].clone())
    };
    let (code, v) = check(&["allowed.registry.test"]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["verdict"], "name_allowed", "{v}");
    assert!(v["learned"].as_array().unwrap().iter().any(|a| a == "127.10.0.1"), "{v}");
    let (code, v) = check(&["127.10.0.1", "5000"]);
    assert_eq!(
        (code, v["verdict"].as_str(), v["host"].as_str()),
        (Some(0), Some("learned"), Some("allowed.registry.test")),
        "{v}"
    );
    let (code, v) = check(&["127.10.0.2", "5000"]);
    assert_eq!((code, v["verdict"].as_str()), (Some(2), Some("denied")), "{v}");
    let (code, v) = check(&["blocked.registry.test"]);
    assert_eq!((code, v["verdict"].as_str()), (Some(2), Some("denied")), "{v}");
    let (code, v) = check(&["127.0.0.53", "53"]);
    assert_eq!((code, v["verdict"].as_str()), (Some(0), Some("resolver")), "{v}");
    let (code, _) = check(&["127.0.0.53", "80"]);
    assert_eq!(code, Some(2));

    // The blocked attempt is logged with the name a DNS answer gave it.
    ramd.wait_log("named blocked line", |e| {
        e["event"] == "blocked" && e["daddr"] == "127.10.0.2" && e["host"] == "blocked.registry.test"
    });
}

#[test]
fn learns_from_dns_over_tcp() {
    require_root();
    let scene = Scene::new("k-tcp", &[("allowed.registry.test", "127.10.0.1")], 300);
    let _ramd = Ramd::start(&scene.policy("", "[[allow]]\nhost = \"allowed.registry.test\"\n"));
    let out = scene.inside(&["resolve-connect", "127.0.0.53", "allowed.registry.test", "5000", "tcp"]);
    assert_eq!(out, "127.10.0.1 ECONNREFUSED");
}

/// A DNS-over-TCP answer split across segments (length prefix first) is
/// never learned in part: the client gets its answer, the connect is
/// denied, and the split is counted and reported.
#[test]
fn a_split_tcp_answer_fails_closed_and_is_reported() {
    require_root();
    let scene = Scene::new("k-split", &[("unused.registry.test", "127.10.0.9")], 300);
    let (_server, policy) = extra_resolver(
        &scene,
        "127.0.0.55",
        &["split", "allowed.registry.test=127.10.0.1"],
        "",
        "[[allow]]\nhost = \"allowed.registry.test\"\n",
    );
    let ramd = Ramd::start(&policy);
    let out = scene.inside(&["resolve-connect", "127.0.0.55", "allowed.registry.test", "5000", "tcp"]);
    assert_eq!(out, "127.10.0.1 EPERM", "the client has its answer; ram learned nothing from it");
    assert!(ramd.counter("docker", "dns_tcp_split") >= 1);
    let reported = wait_for(Duration::from_secs(12), || {
        ramd.log_events().into_iter().find(|e| e["message"].as_str().is_some_and(|m| m.contains("split")))
    });
    assert!(reported.is_some(), "split answers not reported:\n{}", ramd.log_text());
}

#[test]
fn learned_addresses_expire_after_their_ttl() {
    require_root();
    let scene = Scene::new("k-ttl", &[("short.registry.test", "127.10.0.1")], 1);
    let ramd = Ramd::start(&scene.policy("min_ttl = 1\nmax_ttl = 2\n", "[[allow]]\nhost = \"short.registry.test\"\n"));
    assert_eq!(
        scene.inside(&["resolve-connect", "127.0.0.53", "short.registry.test", "5000"]),
        "127.10.0.1 ECONNREFUSED"
    );
    sleep(Duration::from_millis(2500));
    assert_eq!(scene.inside(&["connect", "127.10.0.1", "5000"]), "EPERM");
    // Resolving again teaches it again.
    assert_eq!(
        scene.inside(&["resolve-connect", "127.0.0.53", "short.registry.test", "5000"]),
        "127.10.0.1 ECONNREFUSED"
    );
    drop(ramd);
}

#[test]
fn enforcement_outlives_ramd_until_uninstalled() {
    require_root();
    let netns = Netns::new("k-pins");
    let cgroup = TestCgroup::new("k-pins");
    let mut ramd = Ramd::start(&cidr_policy(&cgroup, &netns, ""));
    let inside = |args: &[&str]| probe(Some(&cgroup), Some(&netns), args);
    assert_eq!(inside(&["connect", "127.30.0.1", "9"]), "EPERM");
    ramd.stop();
    // Stopped, not uninstalled: still enforced, still inspectable.
    assert_eq!(inside(&["connect", "127.30.0.1", "9"]), "EPERM");
    assert_eq!(inside(&["connect", "127.20.0.1", "9"]), "ECONNREFUSED");
    let status = ramd.ramctl_json(&["status"]).expect("status from pins");
    assert_eq!(status["ramd"]["running"], false);
    assert_eq!(status["links"], 7);
    let report = ramd.ramctl_json(&["uninstall"]).expect("ramctl uninstall");
    assert_eq!(report["links"], 7, "{report}");
    assert!(!ramd.pin_dir.exists());
    // ramd --uninstall does the same, and a second time finds nothing to do.
    let out = ramd.uninstall();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("removed 0 links"));
    assert_eq!(inside(&["connect", "127.30.0.1", "9"]), "ECONNREFUSED");
}

#[test]
fn a_target_that_appears_later_is_attached() {
    require_root();
    let netns = Netns::new("k-later");
    let cgroup_path = cgroup2_mount().join(unique("k-later"));
    let policy = format!(
        "[dns]\nresolvers = [\"127.0.0.53\"]\n{}[[target]]\nname = \"late\"\ncgroup = \"{}\"\n[[allow]]\ncidr = \"127.20.0.0/16\"\n",
        netns.dns_trust(),
        cgroup_path.display()
    );
    let ramd = Ramd::start_pending(&policy);
    let pending = wait_for(Duration::from_secs(30), || {
        let s = ramd.ramctl_json(&["status"])?;
        (s["targets"][0]["state"] == "pending").then_some(s)
    });
    let pending = pending.unwrap_or_else(|| panic!("not pending:\n{}", ramd.log_text()));
    assert!(pending["targets"][0]["note"].as_str().unwrap_or("").contains("waiting for cgroup"), "{pending}");
    std::fs::create_dir(&cgroup_path).expect("mkdir cgroup");
    let cgroup = TestCgroup { path: cgroup_path };
    ramd.wait_attached();
    assert_eq!(probe(Some(&cgroup), Some(&netns), &["connect", "127.30.0.1", "9"]), "EPERM");
}

#[test]
fn a_bad_policy_attaches_nothing_and_names_the_problem() {
    require_root();
    let cgroup = TestCgroup::new("k-bad");
    let dir = TempDir::new("k-bad");
    let bad = dir.write(
        "bad.toml",
        &format!("[[target]]\ncgroup = \"{}\"\n[[allow]]\ncidr = \"10.0.0.0/33\"\n", cgroup.path.display()),
    );
    let check = std::process::Command::new(bin("ramd")).arg("--check-config").arg(&bad).output().expect("ramd");
    assert!(!check.status.success());
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(
        stderr.contains("bad.toml") && stderr.contains("allow[0].cidr") && stderr.contains("10.0.0.0/33"),
        "{stderr}"
    );

    let pin_dir = std::path::PathBuf::from("/sys/fs/bpf").join(unique("bad-pins"));
    let run = std::process::Command::new(bin("ramd"))
        .arg("--config")
        .arg(&bad)
        .arg("--pin-dir")
        .arg(&pin_dir)
        .arg("--run-dir")
        .arg(dir.path.join("run"))
        .output()
        .expect("ramd");
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("exceeds 32"));
    assert!(!pin_dir.exists(), "a refused policy must not install anything");

    let good = dir.write(
        "good.toml",
        &format!("[[target]]\ncgroup = \"{}\"\n[[allow]]\ncidr = \"10.0.0.0/8\"\n", cgroup.path.display()),
    );
    let check = std::process::Command::new(bin("ramd")).arg("--check-config").arg(&good).output().expect("ramd");
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    assert!(String::from_utf8_lossy(&check.stdout).contains("cidr      10.0.0.0/8"));
}

#[test]
fn a_process_target_enforces_the_cgroup_of_that_process() {
    require_root();
    let netns = Netns::new("k-proc");
    let cgroup = TestCgroup::new("k-proc");
    let dir = TempDir::new("k-proc");
    // A process name no other process on the host has (comm keeps 15 bytes).
    let name = format!("rampx{}", std::process::id());
    let holder = dir.path.join(&name);
    std::fs::copy(probe_bin(), &holder).expect("copy probe");
    let mut cmd = std::process::Command::new(&holder);
    cmd.args(["hold", "120"]).stdout(std::process::Stdio::null());
    place(&mut cmd, Some(&cgroup.path), Some(&netns));
    let mut holder_proc = Proc::spawn(&name, &mut cmd);

    let policy = format!(
        "[dns]\nresolvers = [\"127.0.0.53\"]\n{}[[target]]\nprocess = \"{name}\"\n[[allow]]\ncidr = \"127.20.0.0/16\"\n",
        netns.dns_trust()
    );
    let ramd = Ramd::start(&policy);
    let status = ramd.ramctl_json(&["status"]).expect("status");
    let cgroups = status["targets"][0]["cgroups"].as_array().expect("cgroups").clone();
    assert_eq!(cgroups.len(), 1, "{status}");
    assert_eq!(cgroups[0]["path"], cgroup.path.display().to_string(), "{status}");
    assert_eq!(probe(Some(&cgroup), Some(&netns), &["connect", "127.30.0.1", "9"]), "EPERM");
    assert_eq!(probe(Some(&cgroup), Some(&netns), &["connect", "127.20.0.1", "9"]), "ECONNREFUSED");

    // The process restarts in another cgroup (as a runtime restarted by
    // systemd might): that cgroup is enforced as soon as ramd's scan sees it.
    holder_proc.stop(Duration::from_secs(5));
    let moved = TestCgroup::new("k-proc-moved");
    let mut cmd = std::process::Command::new(&holder);
    cmd.args(["hold", "120"]).stdout(std::process::Stdio::null());
    place(&mut cmd, Some(&moved.path), Some(&netns));
    let started = std::time::Instant::now();
    let _moved_holder = Proc::spawn(&name, &mut cmd);
    let enforced = wait_for(Duration::from_secs(5), || {
        (probe(Some(&moved), Some(&netns), &["connect", "127.30.0.1", "9"]) == "EPERM").then_some(started.elapsed())
    });
    let after =
        enforced.unwrap_or_else(|| panic!("the restarted process's cgroup was not enforced:\n{}", ramd.log_text()));
    println!("restarted process enforced after {after:?} (ramd scans every 250 ms)");
}

/// Red team 8: `ramctl debug on` (and off) loads every target's programs
/// again and swaps them in. A process target whose process has exited (a
/// runtime restarting, crashed, or killed by a child) still enforces its
/// cgroup, and whatever stays there or is started there is judged; the
/// swap attached the new programs only where the target's process was
/// found at that moment and detached the old ones everywhere.
#[test]
fn debug_on_keeps_enforcing_a_cgroup_whose_target_process_has_exited() {
    require_root();
    let netns = Netns::new("k-klogproc");
    let cgroup = TestCgroup::new("k-klogproc");
    let dir = TempDir::new("k-klogproc");
    let name = format!("ramkx{}", std::process::id());
    let holder = dir.path.join(&name);
    std::fs::copy(probe_bin(), &holder).expect("copy probe");
    let mut cmd = std::process::Command::new(&holder);
    cmd.args(["hold", "120"]).stdout(std::process::Stdio::null());
    place(&mut cmd, Some(&cgroup.path), Some(&netns));
    let mut runtime = Proc::spawn(&name, &mut cmd);
    let policy = format!(
        "[dns]\nresolvers = [\"127.0.0.53\"]\n{}[[target]]\nprocess = \"{name}\"\n[[allow]]\ncidr = \"127.20.0.0/16\"\n",
        netns.dns_trust()
    );
    let ramd = Ramd::start(&policy);
    if ramd.ramctl_json(&["status"]).expect("status")["kernel"]["events"] != "ring-buffer" {
        return;
    }
    assert_eq!(probe(Some(&cgroup), Some(&netns), &["connect", "127.30.0.1", "9"]), "EPERM");
    // The runtime exits; its cgroup stays enforced.
    runtime.stop(Duration::from_secs(5));
    sleep(Duration::from_millis(600));
    assert_eq!(probe(Some(&cgroup), Some(&netns), &["connect", "127.30.0.1", "9"]), "EPERM");
    for level in ["on", "off"] {
        let out = ramd.ramctl(&["debug", level]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(
            probe(Some(&cgroup), Some(&netns), &["connect", "127.30.0.1", "9"]),
            "EPERM",
            "`ramctl debug {level}` left the cgroup unenforced:\n{}",
            ramd.log_text()
        );
    }
}

/// Loads every program through ramd and reports what the verifier said, one
/// `RAM-VERIFIER {json}` line per program (collected by `cargo xtask
/// vm-test` for each kernel).
#[test]
fn every_program_loads_attaches_and_reports_its_verifier_cost() {
    require_root();
    let cgroup = TestCgroup::new("k-report");
    let netns = Netns::new("k-report");
    // Measure verifier cost as well: the VM guests' kernels predate
    // bpf_prog_info.verified_insns; where the kernel reports it, the two
    // figures are compared.
    let ramd = Ramd::start_with_env(&cidr_policy(&cgroup, &netns, ""), &[("RAM_MEASURE_VERIFIER", "always")]);
    let status = ramd.ramctl_json(&["status"]).expect("status");
    let programs = status["targets"][0]["programs"].as_array().expect("programs").clone();
    let names: Vec<&str> = programs.iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "ram_connect4",
            "ram_connect6",
            "ram_sendmsg4",
            "ram_sendmsg6",
            "ram_dns_ingress",
            "ram_egress",
            "ram_sock_create"
        ],
        "{status}"
    );
    assert_eq!(status["links"], 7, "{status}");
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    for p in &programs {
        assert!(p["xlated_bytes"].as_u64().unwrap_or(0) > 0, "{p}");
        let measured = p["measured_insns"].as_u64().unwrap_or_else(|| panic!("not measured: {p}"));
        assert!(measured > 0, "{p}");
        // Where the kernel reports the figure too, ramd's measurement of the
        // same program must agree with it.
        if let Some(reported) = p["verified_insns"].as_u64() {
            assert_eq!(measured, reported, "{p}");
        }
        println!(
            "RAM-VERIFIER {}",
            serde_json::json!({
                "kernel": release.trim(),
                "program": p["name"],
                "loaded": true,
                "verified_insns": p["verified_insns"].as_u64().or(p["measured_insns"].as_u64()),
                "reported_by_kernel": p["verified_insns"].is_u64(),
                "xlated_bytes": p["xlated_bytes"],
                "jited_bytes": p["jited_bytes"],
            })
        );
    }
}

#[test]
fn per_target_rules_and_learned_addresses_stay_in_their_target() {
    require_root();
    let netns = Netns::new("k-scopes");
    let dir = TempDir::new("k-scopes");
    let _dns = dnsmasq(
        &netns,
        &dir,
        "127.0.0.53",
        &[("a.registry.test", "127.10.0.1"), ("b.registry.test", "127.10.0.2")],
        300,
    );
    let docker = TestCgroup::new("k-scopes-a");
    let builder = TestCgroup::new("k-scopes-b");
    let policy = format!(
        r#"
[dns]
resolvers = ["127.0.0.53"]
{}[[target]]
name = "docker"
cgroup = "{}"
[[target.allow]]
host = "a.registry.test"
[[target]]
name = "builder"
cgroup = "{}"
[[target.allow]]
host = "b.registry.test"
[[allow]]
cidr = "127.20.0.0/16"
"#,
        netns.dns_trust(),
        docker.path.display(),
        builder.path.display()
    );
    let ramd = Ramd::start(&policy);
    let in_docker = |args: &[&str]| probe(Some(&docker), Some(&netns), args);
    let in_builder = |args: &[&str]| probe(Some(&builder), Some(&netns), args);

    assert_eq!(in_docker(&["resolve-connect", "127.0.0.53", "a.registry.test", "5000"]), "127.10.0.1 ECONNREFUSED");
    assert_eq!(in_docker(&["resolve-connect", "127.0.0.53", "b.registry.test", "5000"]), "127.10.0.2 EPERM");
    // What docker learned does not open anything for builder.
    assert_eq!(in_builder(&["connect", "127.10.0.1", "5000"]), "EPERM");
    assert_eq!(in_builder(&["resolve-connect", "127.0.0.53", "a.registry.test", "5000"]), "127.10.0.1 EPERM");
    assert_eq!(in_builder(&["resolve-connect", "127.0.0.53", "b.registry.test", "5000"]), "127.10.0.2 ECONNREFUSED");
    // Top-level rules apply to both.
    assert_eq!(in_docker(&["connect", "127.20.0.1", "9"]), "ECONNREFUSED");
    assert_eq!(in_builder(&["connect", "127.20.0.1", "9"]), "ECONNREFUSED");

    let learned = ramd.ramctl_json(&["learned"]).expect("learned");
    let rows = learned.as_array().expect("array");
    let targets_of = |addr: &str| -> Vec<String> {
        rows.iter().filter(|r| r["addr"] == addr).map(|r| r["target"].as_str().unwrap_or("").to_string()).collect()
    };
    assert_eq!(targets_of("127.10.0.1"), ["docker"], "{learned}");
    assert_eq!(targets_of("127.10.0.2"), ["builder"], "{learned}");
}

#[test]
fn audit_mode_lets_everything_through_and_logs_what_it_would_block() {
    require_root();
    let netns = Netns::new("k-audit");
    let enforced = TestCgroup::new("k-audit-e");
    let audited = TestCgroup::new("k-audit-a");
    let policy = format!(
        "[dns]\nresolvers = [\"127.0.0.53\"]\n{}[[target]]\nname = \"enforced\"\ncgroup = \"{}\"\n[[target]]\nname = \"audited\"\nmode = \"audit\"\ncgroup = \"{}\"\n[[allow]]\ncidr = \"127.20.0.0/16\"\n",
        netns.dns_trust(),
        enforced.path.display(),
        audited.path.display()
    );
    let ramd = Ramd::start(&policy);
    assert_eq!(probe(Some(&audited), Some(&netns), &["connect", "127.30.0.1", "9"]), "ECONNREFUSED");
    assert_eq!(probe(Some(&audited), Some(&netns), &["sendto", "127.30.0.1", "443"]), "ok");
    assert_eq!(probe(Some(&enforced), Some(&netns), &["connect", "127.30.0.1", "9"]), "EPERM");
    assert!(ramd.counter("audited", "would_block") >= 2);
    assert_eq!(ramd.counter("audited", "connect_blocked"), 0);
    assert!(ramd.counter("enforced", "connect_blocked") >= 1);
    ramd.wait_log("would_block line", |e| {
        e["event"] == "would_block" && e["daddr"] == "127.30.0.1" && e["target_name"] == "audited"
    });

    // ramctl blocked: newest first, both kinds, with their target.
    let recent = ramd.ramctl_json(&["blocked", "-n", "10"]).expect("ramctl blocked");
    let rows = recent.as_array().expect("array");
    assert_eq!(rows[0]["event"], "blocked", "{recent}");
    assert_eq!(rows[0]["target"], "enforced", "{recent}");
    assert!(rows.iter().any(|r| r["event"] == "would_block" && r["target"] == "audited"), "{recent}");
    let times: Vec<u64> = rows.iter().filter_map(|r| r["at_unix_ms"].as_u64()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{recent}");

    // --follow streams an attempt made after it started.
    let follow_out = ramd.dir.path.join("follow.out");
    let mut follow_cmd = std::process::Command::new(bin("ramctl"));
    follow_cmd
        .args(["blocked", "--follow", "--json", "-n", "0", "--pin-dir"])
        .arg(&ramd.pin_dir)
        .arg("--run-dir")
        .arg(ramd.run_dir())
        .stdout(std::fs::File::create(&follow_out).expect("out"));
    let _follow = Proc::spawn("ramctl blocked --follow", &mut follow_cmd);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(probe(Some(&enforced), Some(&netns), &["connect", "127.30.0.77", "7"]), "EPERM");
    let streamed = wait_for(Duration::from_secs(10), || {
        let text = std::fs::read_to_string(&follow_out).ok()?;
        text.contains("127.30.0.77").then_some(text)
    });
    assert!(streamed.is_some(), "--follow did not stream the new attempt");

    // Global audit mode: every target lets it through.
    drop(ramd);
    let global = policy.replacen("[dns]", "mode = \"audit\"\n[dns]", 1).replace("mode = \"audit\"\ncgroup", "cgroup");
    let ramd = Ramd::start(&global);
    assert_eq!(probe(Some(&enforced), Some(&netns), &["connect", "127.30.0.1", "9"]), "ECONNREFUSED");
    assert!(ramd.counter("enforced", "would_block") >= 1);
}

/// A retry loop is one log line and a count: the first attempt is logged
/// with what to do about it, its repeats within the window are folded into
/// one line at the window's end, and counters and `ramctl blocked` still
/// see every attempt.
#[test]
fn a_retry_loop_is_logged_once_with_a_count_and_what_to_do() {
    require_root();
    let netns = Netns::new("k-loglimit");
    let cgroup = TestCgroup::new("k-loglimit");
    let ramd = Ramd::start(&cidr_policy(&cgroup, &netns, ""));
    let before = ramd.counter("probe", "connect_blocked");
    let outcome = probe(Some(&cgroup), Some(&netns), &["connect-loop", "127.30.0.9", "9", "300"]);
    let failed: u64 = outcome
        .split_whitespace()
        .find_map(|field| field.strip_prefix("failed="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no failure count: {outcome}"));
    assert!(failed >= 100, "the loop made too few attempts to mean anything: {outcome}");
    assert!(ramd.counter("probe", "connect_blocked") >= before + failed, "not every attempt was counted");

    // The first attempt: one line, saying how to check it and what to add.
    let first = ramd.wait_log("the loop's first line", |e| e["event"] == "blocked" && e["daddr"] == "127.30.0.9");
    let hint = first["hint"].as_str().unwrap_or_default();
    assert!(hint.contains("ramctl check 127.30.0.9 9 --target probe"), "{first}");
    assert!(hint.contains("cidr = \"127.30.0.9/32\""), "{first}");
    // The window's end: one more line, counting the rest.
    let summary = ramd.wait_log_for("the loop's repeats", Duration::from_secs(20), |e| {
        e["event"] == "blocked" && e["daddr"] == "127.30.0.9" && e["repeats"].as_u64().unwrap_or(0) > 0
    });
    let lines: Vec<_> =
        ramd.log_events().into_iter().filter(|e| e["event"] == "blocked" && e["daddr"] == "127.30.0.9").collect();
    assert_eq!(lines.len(), 2, "a retry loop flooded the log: {} lines", lines.len());
    assert_eq!(lines[0]["repeats"], 0, "{}", lines[0]);
    let repeats = summary["repeats"].as_u64().unwrap_or(0);
    // Events can be lost to a full buffer (counted apart); most are not.
    assert!(repeats >= 50 && repeats < failed, "repeats {repeats} of {failed} attempts");
    assert!(summary["message"].as_str().unwrap_or_default().contains("more like it"), "{summary}");

    // `ramctl blocked` keeps the same two records (a loop would otherwise
    // rotate all other history out), and they count every attempt.
    let kept = ramd.ramctl_json(&["blocked", "-n", "100"]).expect("ramctl blocked");
    let kept: Vec<_> = kept.as_array().expect("array").iter().filter(|r| r["daddr"] == "127.30.0.9").cloned().collect();
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert_eq!(kept[0]["repeats"].as_u64(), Some(repeats), "newest first: {kept:?}");

    // Another destination from the same loop's kind is logged at once.
    assert_eq!(probe(Some(&cgroup), Some(&netns), &["connect", "127.30.0.10", "9"]), "EPERM");
    ramd.wait_log("another destination's line", |e| e["event"] == "blocked" && e["daddr"] == "127.30.0.10");
}

#[test]
fn reload_adds_removes_revokes_and_refuses_bad_policies() {
    require_root();
    let scene = Scene::new("k-reload", &[("a.registry.test", "127.10.0.1"), ("b.registry.test", "127.10.0.2")], 300);
    let policy = |rules: &str| scene.policy("", rules);
    let ramd = Ramd::start(&policy("[[allow]]\nhost = \"a.registry.test\"\n"));
    let inside = |args: &[&str]| scene.inside(args);
    let reload = |expect_ok: bool| {
        let out = ramd.ramctl(&["reload"]);
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.success(), expect_ok, "ramctl reload: {text}");
        text
    };
    assert_eq!(inside(&["resolve-connect", "127.0.0.53", "a.registry.test", "5000"]), "127.10.0.1 ECONNREFUSED");
    assert_eq!(inside(&["resolve-connect", "127.0.0.53", "b.registry.test", "5000"]), "127.10.0.2 EPERM");

    // Add a rule: the new name works, what was learned keeps working.
    ramd.write_policy(&policy("[[allow]]\nhost = \"a.registry.test\"\n[[allow]]\nhost = \"b.registry.test\"\n"));
    reload(true);
    assert_eq!(inside(&["connect", "127.10.0.1", "5000"]), "ECONNREFUSED");
    assert_eq!(inside(&["resolve-connect", "127.0.0.53", "b.registry.test", "5000"]), "127.10.0.2 ECONNREFUSED");

    // Remove a rule: its learned addresses stop at once.
    ramd.write_policy(&policy("[[allow]]\nhost = \"b.registry.test\"\n"));
    reload(true);
    assert_eq!(inside(&["connect", "127.10.0.1", "5000"]), "EPERM");
    let learned = ramd.ramctl_json(&["learned"]).expect("learned");
    assert!(!learned.as_array().unwrap().iter().any(|r| r["addr"] == "127.10.0.1"), "{learned}");
    assert_eq!(inside(&["connect", "127.10.0.2", "5000"]), "ECONNREFUSED");

    // A bad file changes nothing and the refusal says why.
    ramd.write_policy(&policy("[[allow]]\ncidr = \"127.30.0.0/33\"\n"));
    let text = reload(false);
    assert!(text.contains("allow[0].cidr") && text.contains("exceeds 32"), "{text}");
    assert_eq!(inside(&["connect", "127.10.0.2", "5000"]), "ECONNREFUSED");
    assert_eq!(inside(&["connect", "127.30.0.1", "9"]), "EPERM");
    assert!(ramd.log_text().contains("policy refused, nothing changed"));

    // An edit of the file alone is picked up too.
    ramd.write_policy(&policy("[[allow]]\nhost = \"b.registry.test\"\n[[allow]]\ncidr = \"127.30.0.0/16\"\n"));
    let opened =
        wait_for(Duration::from_secs(10), || (inside(&["connect", "127.30.0.1", "9"]) == "ECONNREFUSED").then_some(()));
    assert!(opened.is_some(), "the edited policy was not applied:\n{}", ramd.log_text());
}

#[test]
fn reload_adds_moves_and_removes_targets() {
    require_root();
    let netns = Netns::new("k-retarget");
    let first = TestCgroup::new("k-retarget-a");
    let second = TestCgroup::new("k-retarget-b");
    let policy = |targets: &[&TestCgroup]| {
        let mut text = format!("[dns]\nresolvers = [\"127.0.0.53\"]\n{}", netns.dns_trust());
        for (i, cgroup) in targets.iter().enumerate() {
            text += &format!("[[target]]\nname = \"t{i}\"\ncgroup = \"{}\"\n", cgroup.path.display());
        }
        text + "[[allow]]\ncidr = \"127.20.0.0/16\"\n"
    };
    let ramd = Ramd::start(&policy(&[&first]));
    let blocked = |cgroup: &TestCgroup| probe(Some(cgroup), Some(&netns), &["connect", "127.30.0.1", "9"]);
    let reload = |text: &str| {
        ramd.write_policy(text);
        let out = ramd.ramctl(&["reload"]);
        assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stderr), ramd.log_text());
    };
    assert_eq!(blocked(&first), "EPERM");
    assert_eq!(blocked(&second), "ECONNREFUSED");
    // A target added: scope 1, new programs.
    reload(&policy(&[&first, &second]));
    assert_eq!(blocked(&first), "EPERM");
    assert_eq!(blocked(&second), "EPERM");
    // Scope 0 now names the second cgroup (new programs there), scope 1
    // is gone: the first cgroup is let go.
    reload(&policy(&[&second]));
    assert_eq!(blocked(&first), "ECONNREFUSED");
    assert_eq!(blocked(&second), "EPERM");
    let status = ramd.ramctl_json(&["status"]).expect("status");
    let targets = status["targets"].as_array().expect("targets");
    assert_eq!(targets.len(), 1, "{status}");
    assert_eq!(targets[0]["cgroups"][0]["path"], second.path.display().to_string(), "{status}");
}

#[test]
fn kill_9_keeps_enforcing_and_learning_and_a_restart_adopts_the_state() {
    require_root();
    let scene = Scene::new("k-kill", &[("a.registry.test", "127.10.0.1"), ("b.registry.test", "127.10.0.2")], 300);
    let policy = scene.policy("", "[[allow]]\nhost = \"a.registry.test\"\n[[allow]]\nhost = \"b.registry.test\"\n");
    let mut ramd = Ramd::start(&policy);
    let inside = |args: &[&str]| scene.inside(args);
    assert_eq!(inside(&["resolve-connect", "127.0.0.53", "a.registry.test", "5000"]), "127.10.0.1 ECONNREFUSED");

    ramd.kill();
    // Without ramd: still enforced, and the kernel still learns.
    assert_eq!(inside(&["connect", "127.30.0.1", "9"]), "EPERM");
    assert_eq!(inside(&["connect", "127.10.0.1", "5000"]), "ECONNREFUSED");
    assert_eq!(inside(&["resolve-connect", "127.0.0.53", "b.registry.test", "5000"]), "127.10.0.2 ECONNREFUSED");

    // A restarted ramd adopts the pins: what was learned is still there.
    ramd.restart();
    let learned = ramd.ramctl_json(&["learned"]).expect("learned");
    let rows = learned.as_array().expect("array");
    for addr in ["127.10.0.1", "127.10.0.2"] {
        assert!(rows.iter().any(|r| r["addr"] == addr), "{addr} lost across the restart: {learned}");
    }
    assert_eq!(inside(&["connect", "127.10.0.1", "5000"]), "ECONNREFUSED");
    assert_eq!(inside(&["connect", "127.30.0.1", "9"]), "EPERM");
    // One set of programs, not two: the previous run's links were replaced.
    let status = ramd.ramctl_json(&["status"]).expect("status");
    assert_eq!(status["links"], 7, "{status}");
}

#[test]
fn rules_with_ports_allow_only_those_ports() {
    require_root();
    let scene = Scene::new("k-ports", &[("r.registry.test", "127.10.0.1")], 300);
    let policy = scene.policy(
        "",
        "[[allow]]\nhost = \"r.registry.test\"\nports = [443, 5000]\n[[allow]]\ncidr = \"127.20.0.0/16\"\nports = [8443]\n[[allow]]\ncidr = \"127.10.0.0/24\"\nports = [9000]\n",
    );
    let ramd = Ramd::start(&policy);
    let inside = |args: &[&str]| scene.inside(args);
    assert_eq!(inside(&["resolve-connect", "127.0.0.53", "r.registry.test", "5000"]), "127.10.0.1 ECONNREFUSED");
    assert_eq!(inside(&["connect", "127.10.0.1", "443"]), "ECONNREFUSED");
    assert_eq!(inside(&["connect", "127.10.0.1", "22"]), "EPERM");
    assert_eq!(inside(&["sendto", "127.10.0.1", "53"]), "EPERM");
    assert_eq!(inside(&["connect", "127.20.0.1", "8443"]), "ECONNREFUSED");
    assert_eq!(inside(&["connect", "127.20.0.1", "443"]), "EPERM");
    let out = ramd.ramctl(&["check", "127.10.0.1", "22", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(v[0]["reason"].as_str().unwrap_or("").contains("port 22"), "{v}");
    // An address rule and a learned entry are separate grants: the rule's
    // ports do not hide the learned entry's (ramctl check once said denied
    // where the kernel allowed; both now read ram_common::verdict::judge).
    assert_eq!(inside(&["connect", "127.10.0.1", "9000"]), "ECONNREFUSED");
    let out = ramd.ramctl(&["check", "127.10.0.1", "5000", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v[0]["verdict"], "learned", "{v}");
    let out = ramd.ramctl(&["check", "127.10.0.1", "9000", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!((out.status.code(), v[0]["verdict"].as_str()), (Some(0), Some("cidr")), "{v}");
    // By name too: the port counts as the kernel counts it.
    let out = ramd.ramctl(&["check", "r.registry.test", "80", "--json"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stdout));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(v[0]["reason"].as_str().unwrap_or("").contains("port 80"), "{v}");
    assert_eq!(ramd.ramctl(&["check", "r.registry.test", "443"]).status.code(), Some(0));
    assert_eq!(ramd.ramctl(&["check", "r.registry.test"]).status.code(), Some(0));
    let rules = ramd.ramctl_json(&["rules"]).expect("rules");
    let host = rules.as_array().unwrap().iter().find(|r| r["rule"] == "r.registry.test").expect("rule");
    assert_eq!(host["ports"]["docker"], "443,5000", "{rules}");

    // A reload that changes the ports applies them to what was learned.
    ramd.write_policy(&policy.replace("ports = [443, 5000]", "ports = [22]"));
    assert!(ramd.ramctl(&["reload"]).status.success());
    assert_eq!(inside(&["connect", "127.10.0.1", "22"]), "ECONNREFUSED");
    assert_eq!(inside(&["connect", "127.10.0.1", "5000"]), "EPERM");
}

/// Programs attached to `cgroup` for each of ram's attach types.
fn attached_programs(cgroup: &TestCgroup) -> Vec<(String, Vec<u32>)> {
    ram_common::maps::PROGRAMS
        .into_iter()
        .map(|name| {
            let attach_type = ram::bpf_calls::attach_type(name).expect("attach type");
            (name.to_string(), ram::bpf_calls::query(&cgroup.path, attach_type).expect("BPF_PROG_QUERY"))
        })
        .collect()
}

/// The paths for kernels before 5.7 and 5.8, forced on this kernel:
/// BPF_PROG_ATTACH with pinned programs instead of bpf_links, and events
/// through a perf event array instead of a ring buffer. Everything a user
/// relies on must hold on them too.
#[test]
fn fallback_paths_enforce_log_survive_restarts_and_uninstall() {
    require_root();
    let scene = Scene::new("k-fallback", &[("a.registry.test", "127.10.0.1"), ("b.registry.test", "127.10.0.2")], 300);
    let policy = scene.policy("", "[[allow]]\nhost = \"a.registry.test\"\n");
    let env = [("RAM_EVENTS_PATH", "perf"), ("RAM_ATTACH_PATH", "prog-attach")];
    let mut ramd = Ramd::start_with_env(&policy, &env);
    let inside = |args: &[&str]| scene.inside(args);
    let status = ramd.ramctl_json(&["status"]).expect("status");
    assert_eq!(status["kernel"]["events"], "perf-event-array", "{status}");
    assert_eq!(status["kernel"]["attach"], "prog-attach", "{status}");

    // Verdicts, learning and both kinds of event, through the perf buffers.
    assert_eq!(inside(&["resolve-connect", "127.0.0.53", "a.registry.test", "5000"]), "127.10.0.1 ECONNREFUSED");
    assert_eq!(inside(&["resolve-connect", "127.0.0.53", "b.registry.test", "5000"]), "127.10.0.2 EPERM");
    ramd.wait_log("dns line from the perf buffer", |e| e["host"] == "a.registry.test" && e["learned"] == 1);
    ramd.wait_log("blocked line from the perf buffer", |e| {
        e["event"] == "blocked" && e["daddr"] == "127.10.0.2" && e["comm"] == "ram-probe"
    });
    let first = attached_programs(&scene.cgroup);
    for (name, ids) in &first {
        assert_eq!(ids.len(), 1, "{name}: one program attached, got {ids:?}");
    }

    // kill -9: the attachments belong to the cgroup, not to ramd.
    ramd.kill();
    assert_eq!(inside(&["connect", "127.30.0.1", "9"]), "EPERM");
    assert_eq!(inside(&["connect", "127.10.0.1", "5000"]), "ECONNREFUSED");
    assert_eq!(attached_programs(&scene.cgroup), first);

    // A restart attaches new programs, then detaches the previous run's:
    // one program per hook, none of them the old ones, and still enforcing.
    ramd.restart();
    let replaced = wait_for(Duration::from_secs(10), || {
        let now = attached_programs(&scene.cgroup);
        let one_each = now.iter().all(|(_, ids)| ids.len() == 1);
        (one_each && now.iter().zip(&first).all(|((_, new), (_, old))| new != old)).then_some(now)
    });
    assert!(replaced.is_some(), "previous programs not replaced: {:?}", attached_programs(&scene.cgroup));
    assert_eq!(inside(&["connect", "127.30.0.1", "9"]), "EPERM");
    assert_eq!(inside(&["connect", "127.10.0.1", "5000"]), "ECONNREFUSED");
    let status = ramd.ramctl_json(&["status"]).expect("status");
    assert_eq!(status["links"], 7, "{status}");

    // Uninstall detaches every program from the cgroup.
    ramd.stop();
    let report = ramd.ramctl_json(&["uninstall"]).expect("ramctl uninstall");
    assert_eq!(report["links"], 7, "{report}");
    for (name, ids) in attached_programs(&scene.cgroup) {
        assert!(ids.is_empty(), "{name} still attached after uninstall: {ids:?}");
    }
    assert_eq!(inside(&["connect", "127.30.0.1", "9"]), "ECONNREFUSED");
}

/// A full learned-address map fails closed: what does not fit is not
/// learned (so denied), what was learned stays allowed, the kernel counts
/// each miss, and ramd reports them with their count once per interval.
#[test]
fn a_full_learned_map_fails_closed_counts_and_reports() {
    require_root();
    let names: Vec<(String, String)> = (1..=20).map(|i| (format!("n{i}.fill.test"), format!("127.11.0.{i}"))).collect();
    let records: Vec<(&str, &str)> = names.iter().map(|(n, a)| (n.as_str(), a.as_str())).collect();
    let scene = Scene::new("k-full", &records, 300);
    let policy = scene.policy("[limits]\nlearned_addresses = 16\n", "[[allow]]\nhost = \"*.fill.test\"\n");
    let ramd = Ramd::start(&policy);
    let inside = |args: &[&str]| scene.inside(args);
    for (name, addr) in &names[..16] {
        assert_eq!(inside(&["resolve-connect", "127.0.0.53", name, "443"]), format!("{addr} ECONNREFUSED"));
    }
    for (name, addr) in &names[16..] {
        assert_eq!(inside(&["resolve-connect", "127.0.0.53", name, "443"]), format!("{addr} EPERM"), "{name}");
    }
    // The first sixteen are still allowed; the map did not evict them.
    assert_eq!(inside(&["connect", "127.11.0.1", "443"]), "ECONNREFUSED");
    assert_eq!(ramd.counter("docker", "learn_map_full"), 4);
    let reported = wait_for(Duration::from_secs(12), || {
        let lines: Vec<serde_json::Value> = ramd
            .log_events()
            .into_iter()
            .filter(|e| e["message"].as_str().is_some_and(|m| m.contains("learned-address map full")))
            .collect();
        let total: u64 = lines.iter().filter_map(|e| e["count"].as_u64()).sum();
        (total == 4).then_some(lines)
    });
    let lines = reported.unwrap_or_else(|| panic!("map-full not reported with its count:\n{}", ramd.log_text()));
    assert!(lines.len() <= 2, "reported more often than once per interval: {lines:?}");
}

/// Logging never holds up the kernel: with ramd frozen (SIGSTOP) the ring
/// buffer fills, connects are still denied, every verdict is still counted,
/// what could not be sent is counted too, and ramd reports the loss once it
/// runs again.
#[test]
fn a_full_ring_buffer_loses_events_but_no_verdict() {
    require_root();
    let netns = Netns::new("k-ring");
    let cgroup = TestCgroup::new("k-ring");
    let ramd = Ramd::start(&cidr_policy(&cgroup, &netns, ""));
    let before = ramd.counter("probe", "connect_blocked");
    let pid = ramd.proc.as_ref().expect("ramd").pid();
    // SAFETY: signalling our own child by pid.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    // 64-byte events in a 1 MiB ring: 30,000 attempts overflow it.
    let rounds = 15_000;
    let out = probe(
        Some(&cgroup),
        Some(&netns),
        &["expect-loop", &format!("rounds={rounds}"), "connect,127.30.0.1,9=EPERM", "sendto,127.30.0.1,53=EPERM"],
    );
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    assert!(out.contains("wrong=0"), "{out}");
    let blocked = ramd.counter("probe", "connect_blocked") - before;
    let sendmsg_blocked = ramd.counter("probe", "sendmsg_blocked");
    assert_eq!(blocked, rounds, "every denied connect is counted");
    assert!(sendmsg_blocked >= rounds, "every denied sendmsg is counted: {sendmsg_blocked}");
    let lost = ramd.counter("probe", "events_lost");
    assert!(lost > 0, "30,000 events fitted in the ring buffer?");
    let reported = wait_for(Duration::from_secs(12), || {
        ramd.log_events().into_iter().find(|e| {
            e["message"].as_str().is_some_and(|m| m.contains("events lost")) && e["total"].as_u64() == Some(lost)
        })
    });
    assert!(reported.is_some(), "the loss of {lost} events was not reported:\n{}", ramd.log_text());
}

/// A pinned map whose layout differs from this build's (as after an
/// upgrade that changed a map) is replaced, not reused: ramd says so, the
/// old entries are not guessed at, and enforcement and learning work on the
/// new map.
#[test]
fn a_pinned_map_with_another_layout_is_replaced() {
    require_root();
    let scene = Scene::new("k-layout", &[("a.registry.test", "127.10.0.1")], 300);
    let policy = scene.policy("", "[[allow]]\nhost = \"a.registry.test\"\n");
    let ramd = Ramd::start_prepared(&policy, |pin_dir| {
        let maps = pin_dir.join("maps");
        std::fs::create_dir_all(&maps).expect("maps dir");
        // RAM_LEARN4 of an imagined older build: 8-byte values.
        let map = create_hash_map(8, 8, 64);
        bpf_pin(&map, &maps.join("RAM_LEARN4"));
    });
    let line = ramd.wait_log("layout change", |e| {
        e["message"].as_str().is_some_and(|m| m.contains("map layout or size changed")) && e["map"] == "RAM_LEARN4"
    });
    println!("{line}");
    let inside = |args: &[&str]| scene.inside(args);
    assert_eq!(inside(&["resolve-connect", "127.0.0.53", "a.registry.test", "5000"]), "127.10.0.1 ECONNREFUSED");
    assert_eq!(inside(&["connect", "127.30.0.1", "9"]), "EPERM");
    let learned = ramd.ramctl_json(&["learned"]).expect("learned");
    assert!(learned.as_array().unwrap().iter().any(|r| r["addr"] == "127.10.0.1"), "{learned}");
    assert!(!ramd.pin_dir.join("previous-maps").exists(), "the replaced map was not removed");
}

/// BPF_MAP_CREATE of a hash map; the fd.
fn create_hash_map(key_size: u32, value_size: u32, max_entries: u32) -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    #[repr(C)]
    struct Attr {
        map_type: u32,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
        map_flags: u32,
    }
    let attr = Attr { map_type: 1, key_size, value_size, max_entries, map_flags: 0 };
    // SAFETY: a valid BPF_MAP_CREATE attribute of its own size.
    let fd = unsafe { libc::syscall(libc::SYS_bpf, 0, &attr as *const Attr, std::mem::size_of::<Attr>()) };
    assert!(fd >= 0, "BPF_MAP_CREATE: {}", std::io::Error::last_os_error());
    // SAFETY: the kernel just returned this descriptor.
    unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) }
}

fn bpf_pin(fd: &std::os::fd::OwnedFd, path: &std::path::Path) {
    use std::os::fd::AsFd;
    ram::bpf_calls::pin_object(fd.as_fd(), path).expect("pin");
}

/// An answer larger than 512 bytes (EDNS, 40 address records) still
/// teaches: the records inside the parser's bounds are learned.
#[test]
fn a_large_edns_answer_teaches() {
    require_root();
    let addrs: Vec<String> = (1..=40).map(|i| format!("127.12.0.{i}")).collect();
    let records: Vec<(&str, &str)> = addrs.iter().map(|a| ("many.registry.test", a.as_str())).collect();
    let scene = Scene::new("k-edns", &records, 300);
    let ramd = Ramd::start(&scene.policy("", "[[allow]]\nhost = \"many.registry.test\"\n"));
    let out = scene.inside(&["resolve-connect", "127.0.0.53", "many.registry.test", "443"]);
    assert!(out.ends_with("ECONNREFUSED"), "{out}");
    let learned = ramd.ramctl_json(&["learned"]).expect("learned");
    let count = learned.as_array().unwrap().iter().filter(|r| r["host"] == "many.registry.test").count();
    assert_eq!(count, ram_common::dns::MAX_ANSWERS as usize, "{learned}");
}

/// `[limits] addresses_per_answer` caps what one answer teaches; the kernel
/// counts the capped answer.
#[test]
fn addresses_per_answer_are_capped_and_counted() {
    require_root();
    let addrs: Vec<String> = (1..=10).map(|i| format!("127.13.0.{i}")).collect();
    let records: Vec<(&str, &str)> = addrs.iter().map(|a| ("ten.registry.test", a.as_str())).collect();
    let scene = Scene::new("k-cap", &records, 300);
    let policy = scene.policy("[limits]\naddresses_per_answer = 3\n", "[[allow]]\nhost = \"ten.registry.test\"\n");
    let ramd = Ramd::start(&policy);
    let out = scene.inside(&["resolve-connect", "127.0.0.53", "ten.registry.test", "443"]);
    assert!(out.ends_with("ECONNREFUSED"), "{out}");
    let learned = ramd.ramctl_json(&["learned"]).expect("learned");
    let count = learned.as_array().unwrap().iter().filter(|r| r["host"] == "ten.registry.test").count();
    assert_eq!(count, 3, "{learned}");
    assert_eq!(ramd.counter("docker", "learn_capped"), 1);
}

/// ramd's cross-check: should the kernel ever learn an address the full
/// parser would not have (here planted in the map as a parser slip would
/// leave it: an off-chain record's address, under the question's host), the
/// next answer that carries it makes ramd remove it and raise an alert.
#[test]
fn an_address_the_full_parser_rejects_is_removed_with_an_alert() {
    use aya::maps::{HashMap, Map, MapData};
    use ram_common::maps::{Learn4Key, Learned};
    require_root();
    let scene = Scene::new("k-cross", &[("unused.registry.test", "127.10.0.9")], 300);
    let (_server, policy) = extra_resolver(
        &scene,
        "127.0.0.56",
        &["allowed.registry.test=127.10.0.1", "+evil.example=127.10.0.66"],
        "",
        "[[allow]]\nhost = \"allowed.registry.test\"\n",
    );
    let ramd = Ramd::start(&policy);

    // The slip: 127.10.0.66 in the learned map under allowed.registry.test.
    let pin = ramd.pin_dir.join("maps/RAM_LEARN4");
    let map = Map::from_map_data(MapData::from_pin(&pin).expect("pinned map")).expect("map");
    let mut learned: HashMap<MapData, Learn4Key, Learned> = HashMap::try_from(map).expect("learned map");
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    let value = Learned {
        expires_ns: (now.tv_sec as u64 + 300) * 1_000_000_000,
        host_id: ram_common::name::host_id("allowed.registry.test").unwrap(),
        ttl: 300,
        port_set: 0,
    };
    learned.insert(Learn4Key { scope: 0, addr: [127, 10, 0, 66] }, value, 0).expect("plant");
    assert_eq!(scene.inside(&["connect", "127.10.0.66", "443"]), "ECONNREFUSED", "the planted entry allows");

    // An answer carrying 127.10.0.66 off the chain: the kernel learns only
    // 127.10.0.1; ramd finds the planted entry and removes it.
    let out = scene.inside(&["resolve-connect", "127.0.0.56", "allowed.registry.test", "443"]);
    assert_eq!(out, "127.10.0.1 ECONNREFUSED");
    let alert = ramd.wait_log("cross-check alert", |e| {
        e["level"] == "ERROR"
            && e["message"].as_str().is_some_and(|m| m.starts_with("ALERT"))
            && e["addr"] == "127.10.0.66"
    });
    println!("{alert}");
    assert_eq!(scene.inside(&["connect", "127.10.0.66", "443"]), "EPERM", "removed");
    assert!(ramd.counter("docker", "dns_off_chain") >= 1);
}

/// `ramctl explain HOST` puts together, for one name, the rules that match
/// it, the verdict (ports included), what was learned for it, the answers
/// for it with what each taught or why nothing, and the attempts to it.
#[test]
fn explain_shows_rules_verdict_learning_answers_and_attempts_for_a_name() {
    require_root();
    let scene = Scene::new(
        "k-explain",
        &[("allowed.registry.test", "127.10.0.1"), ("blocked.registry.test", "127.10.0.2")],
        300,
    );
    let ramd = Ramd::start(&scene.policy("", "[[allow]]\nhost = \"allowed.registry.test\"\nports = [443]\n"));
    assert_eq!(
        scene.inside(&["resolve-connect", "127.0.0.53", "allowed.registry.test", "443"]),
        "127.10.0.1 ECONNREFUSED"
    );
    assert_eq!(scene.inside(&["resolve-connect", "127.0.0.53", "blocked.registry.test", "443"]), "127.10.0.2 EPERM");
    ramd.wait_log("the blocked line", |e| e["event"] == "blocked" && e["daddr"] == "127.10.0.2");

    let explained = |args: &[&str], ready: &dyn Fn(&serde_json::Value) -> bool| {
        let mut all = vec!["explain"];
        all.extend_from_slice(args);
        wait_for(Duration::from_secs(5), || ramd.ramctl_json(&all).filter(|v| ready(v)))
            .unwrap_or_else(|| panic!("ramctl explain {args:?}: {:?}", ramd.ramctl_json(&all)))
    };
    let allowed =
        explained(&["allowed.registry.test", "443"], &|v| v["answers"].as_array().is_some_and(|a| !a.is_empty()));
    let target = &allowed["targets"][0];
    assert_eq!(target["target"], "docker", "{allowed}");
    assert_eq!(target["rules"][0]["pattern"], "allowed.registry.test", "{allowed}");
    assert!(target["rules"][0]["origin"].as_str().unwrap_or_default().contains("allow[0].host"), "{allowed}");
    assert_eq!(target["rules"][0]["ports"][0], 443, "{allowed}");
    assert_eq!(target["allowed"], true, "{allowed}");
    assert_eq!(target["learned"][0]["addr"], "127.10.0.1", "{allowed}");
    assert!(allowed["answers"][0]["outcome"].as_str().unwrap_or_default().starts_with("learned 1"), "{allowed}");
    assert_eq!(allowed["attempts"].as_array().map(Vec::len), Some(0), "{allowed}");
    // The port the rule does not allow is judged as the kernel would.
    let other_port = explained(&["allowed.registry.test", "80"], &|_| true);
    assert_eq!(other_port["targets"][0]["allowed"], false, "{other_port}");

    let blocked = explained(&["blocked.registry.test"], &|v| {
        v["answers"].as_array().is_some_and(|a| !a.is_empty())
            && v["attempts"].as_array().is_some_and(|a| !a.is_empty())
    });
    let target = &blocked["targets"][0];
    assert_eq!(target["rules"].as_array().map(Vec::len), Some(0), "{blocked}");
    assert_eq!(target["allowed"], false, "{blocked}");
    let outcome = blocked["answers"][0]["outcome"].as_str().unwrap_or_default();
    assert!(outcome.contains("no rule of this target allows blocked.registry.test"), "{blocked}");
    assert_eq!(blocked["attempts"][0]["daddr"], "127.10.0.2", "{blocked}");
    assert_eq!(blocked["attempts"][0]["dport"], 443, "{blocked}");

    // The text form says the same, in sections.
    let text = ramd.ramctl(&["explain", "blocked.registry.test"]);
    assert!(text.status.success());
    let text = String::from_utf8_lossy(&text.stdout);
    println!("{text}");
    for part in ["Rules that match it", "none", "denied", "no host rule allows this name", "127.10.0.2:443"] {
        assert!(text.contains(part), "no `{part}` in:\n{text}");
    }
    // An address is refused with the command that judges it.
    let out = ramd.ramctl(&["explain", "127.10.0.2"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("ramctl check 127.10.0.2"));
}

/// The programs' kernel log: off at start (and then the verifier removes
/// every log call: the loaded programs are smaller than with it on); `ramctl
/// debug on` swaps programs logging why an answer taught nothing, with the
/// name and the resolver, into the links without a moment unenforced;
/// `ramctl debug off` swaps the silent ones back.
#[test]
fn the_kernel_log_says_why_an_answer_taught_nothing_and_is_gone_when_off() {
    require_root();
    let scene =
        Scene::new("k-klog", &[("allowed.registry.test", "127.10.0.1"), ("blocked.registry.test", "127.10.0.2")], 300);
    let ramd = Ramd::start(&scene.policy("", "[[allow]]\nhost = \"allowed.registry.test\"\n"));
    let status = ramd.ramctl_json(&["status"]).expect("status");
    if status["kernel"]["events"] != "ring-buffer" {
        assert_eq!(status["kernel"]["events"], "perf-event-array", "{status}");
        // The perf-event object for kernels before 5.8 has no kernel log.
        let out = ramd.ramctl(&["debug", "on"]);
        assert!(!out.status.success(), "debug on without a ring buffer must fail");
        return;
    }
    let dns_ingress_bytes = |status: &serde_json::Value| {
        status["targets"][0]["programs"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == "ram_dns_ingress"))
            .and_then(|p| p["xlated_bytes"].as_u64())
            .expect("ram_dns_ingress's size")
    };
    assert_eq!(ramd.ramctl_json(&["debug"]).expect("debug")["kernel_log"], "off");
    let off_bytes = dns_ingress_bytes(&status);
    let kernel_lines = || ramd.log_events().into_iter().filter(|e| e["kernel_log"] == true).count();

    let on = ramd.ramctl(&["debug", "on"]);
    assert!(on.status.success(), "{}", String::from_utf8_lossy(&on.stderr));
    let status = ramd.ramctl_json(&["status"]).expect("status");
    assert_eq!(status["kernel_log"], "debug", "{status}");
    let on_bytes = dns_ingress_bytes(&status);
    assert!(on_bytes > off_bytes, "with the log off the verifier removes its calls: {off_bytes} vs {on_bytes}");
    assert_eq!(status["links"], 7, "{status}");
    assert_eq!(scene.inside(&["resolve-connect", "127.0.0.53", "blocked.registry.test", "443"]), "127.10.0.2 EPERM");
    let why = ramd.wait_log("the kernel's reason", |e| {
        e["kernel_log"] == true
            && e["message"].as_str().is_some_and(|m| {
                m.contains("blocked.registry.test from ::ffff:127.0.0.53")
                    && m.contains("no rule of this target allows the name")
            })
    });
    assert_eq!(why["target_name"], "docker", "{why}");
    assert_eq!(
        scene.inside(&["resolve-connect", "127.0.0.53", "allowed.registry.test", "443"]),
        "127.10.0.1 ECONNREFUSED"
    );
    ramd.wait_log("the kernel's learning", |e| {
        e["kernel_log"] == true
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("allowed.registry.test from ::ffff:127.0.0.53: learned 1"))
    });
    // An answer from a resolver the policy does not trust never reaches
    // the learning path; a forged one to a socket that asked nobody does.
    let off = ramd.ramctl(&["debug", "off"]);
    assert!(off.status.success(), "{}", String::from_utf8_lossy(&off.stderr));
    let status = ramd.ramctl_json(&["status"]).expect("status");
    assert_eq!(status["kernel_log"], "off", "{status}");
    assert_eq!(dns_ingress_bytes(&status), off_bytes, "off again: the same program as at start");
    // Enforcement held through both swaps, and nothing more is logged.
    std::thread::sleep(Duration::from_millis(300));
    let lines = kernel_lines();
    assert_eq!(scene.inside(&["resolve-connect", "127.0.0.53", "blocked.registry.test", "443"]), "127.10.0.2 EPERM");
    assert_eq!(scene.inside(&["connect", "127.10.0.1", "443"]), "ECONNREFUSED");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(kernel_lines(), lines, "the kernel log spoke while off");
}

/// A second resolver at `addr` (ram-probe serve-dns with `args`), and the
/// scene's policy naming it as the only resolver plus `dns` lines.
fn extra_resolver(scene: &Scene, addr: &str, args: &[&str], dns: &str, rules: &str) -> (Proc, String) {
    let mut cmd = std::process::Command::new(probe_bin());
    cmd.args(["serve-dns", addr, "300"]).args(args).stdout(std::process::Stdio::null());
    place(&mut cmd, None, Some(&scene.netns));
    let server = Proc::spawn("serve-dns", &mut cmd);
    let up = wait_for(Duration::from_secs(5), || {
        let out = probe(None, Some(&scene.netns), &["resolve", addr, "up.test"]);
        (!out.starts_with("resolve-failed:ETIMEDOUT") && !out.contains("ECONNREFUSED")).then_some(())
    });
    assert!(up.is_some(), "resolver at {addr} did not start");
    let policy = scene.policy(dns, rules).replace("resolvers = [\"127.0.0.53\"]", &format!("resolvers = [\"{addr}\"]"));
    (server, policy)
}

/// An answer that arrives after `[dns] answer_window` matches no query:
/// the client still gets it, ram learns nothing and counts it.
#[test]
fn a_late_answer_teaches_nothing() {
    require_root();
    let scene = Scene::new("k-late", &[("unused.registry.test", "127.10.0.9")], 300);
    let (_server, policy) = extra_resolver(
        &scene,
        "127.0.0.57",
        &["delay=1500", "allowed.registry.test=127.10.0.1"],
        "answer_window = 1\n",
        "[[allow]]\nhost = \"allowed.registry.test\"\n",
    );
    let ramd = Ramd::start(&policy);
    let before = ramd.counter("docker", "dns_unmatched");
    let out = scene.inside(&["resolve-connect", "127.0.0.57", "allowed.registry.test", "443"]);
    assert_eq!(out, "127.10.0.1 EPERM", "answered after 1.5 s, window 1 s");
    assert!(ramd.counter("docker", "dns_unmatched") > before);
}

/// An answer to a question the policy does not allow teaches nothing, even
/// when it also carries a record for an allowed name.
#[test]
fn an_answer_for_another_name_cannot_vouch_for_an_allowed_one() {
    require_root();
    let scene = Scene::new("k-vouch", &[("unused.registry.test", "127.10.0.9")], 300);
    let (_server, policy) = extra_resolver(
        &scene,
        "127.0.0.58",
        &["other.test=127.10.0.77", "+allowed.registry.test=127.10.0.1"],
        "",
        "[[allow]]\nhost = \"allowed.registry.test\"\n",
    );
    let ramd = Ramd::start(&policy);
    assert_eq!(scene.inside(&["resolve-connect", "127.0.0.58", "other.test", "443"]), "127.10.0.77 EPERM");
    assert_eq!(scene.inside(&["connect", "127.10.0.1", "443"]), "EPERM", "the extra record taught nothing");
    assert!(ramd.counter("docker", "dns_not_allowed") >= 1);
}

/// A container's cgroup as dockerd's cgroupfs driver names it
/// (`<v2 root>/docker/<64 hex>`), with the record dockerd would have written
/// for it in `data_root`. The parent is made if missing and removed after
/// if this test made it.
struct FakeContainer {
    cgroup: TestCgroup,
    id: String,
}

fn fake_container(netns: &Netns, data_root: &Path, image: &str, tag: u64) -> FakeContainer {
    fake_container_in(Some(netns), data_root, image, tag)
}

/// As [`fake_container`]; with `netns` None, the record names no sandbox
/// yet (dockerd records it when the container's network is set up).
fn fake_container_in(netns: Option<&Netns>, data_root: &Path, image: &str, tag: u64) -> FakeContainer {
    fake_container_with(netns, "default", data_root, image, tag)
}

/// As [`fake_container_in`], with dockerd's hostconfig.json naming the
/// container's `NetworkMode` (`default`, `host`, `container:<id>`).
fn fake_container_with(
    netns: Option<&Netns>,
    network_mode: &str,
    data_root: &Path,
    image: &str,
    tag: u64,
) -> FakeContainer {
    fake_container_recorded(netns, network_mode, data_root, image, tag, true).0
}

/// As [`fake_container_with`]; with `recorded` false its config.v2.json
/// is not written before its cgroup is made (dockerd has not written it
/// yet): returned with its text, for the test to write when it wants.
fn fake_container_recorded(
    netns: Option<&Netns>,
    network_mode: &str,
    data_root: &Path,
    image: &str,
    tag: u64,
    recorded: bool,
) -> (FakeContainer, PathBuf, String) {
    let id = format!(
        "{:016x}{:016x}{:016x}{:016x}",
        tag.wrapping_mul(0x9e37_79b9) | 1 << 60,
        std::process::id(),
        0x7a11_u64,
        tag
    );
    let record = data_root.join("containers").join(&id);
    std::fs::create_dir_all(&record).expect("record dir");
    let text = format!(
        r#"{{"ID":"{id}","Name":"/ram-test-{tag}","Config":{{"Image":"{image}","Labels":{{"ci.job":"{tag}"}}}}{}}}"#,
        netns.map(|n| format!(r#","NetworkSettings":{{"SandboxKey":"{}"}}"#, n.file().display())).unwrap_or_default()
    );
    if recorded {
        std::fs::write(record.join("config.v2.json"), &text).expect("record");
    }
    // An empty mode: no hostconfig.json (not written yet, or unreadable).
    if !network_mode.is_empty() {
        std::fs::write(record.join("hostconfig.json"), format!(r#"{{"NetworkMode":"{network_mode}"}}"#))
            .expect("hostconfig");
    }
    let path = cgroup2_mount().join("docker").join(&id);
    std::fs::create_dir(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
    (FakeContainer { cgroup: TestCgroup { path }, id }, record.join("config.v2.json"), text)
}

/// Issue 14: a container target (`containers = "docker"` with an image
/// filter) judges a container from the first instruction of its first
/// process: the kernel holds each new container cgroup the moment it is
/// made (ram_cgroup_mkdir), before ramd has read anything. Fifty containers
/// in a row connect the instant their cgroup exists; every one is refused.
/// ramd then decides: the matching ones stay enforced (named in the log and
/// in `ramctl status`), the others are let go, and ordinary cgroups were
/// never judged.
#[test]
fn a_container_target_judges_each_new_container_from_its_first_instruction() {
    require_root();
    let netns = Netns::new("k-ctr");
    let data_root = TempDir::new("k-ctr-docker");
    let parent = cgroup2_mount().join("docker");
    let made_parent = !parent.exists();
    std::fs::create_dir_all(&parent).expect("docker parent cgroup");
    struct RemoveParent(Option<PathBuf>);
    impl Drop for RemoveParent {
        fn drop(&mut self) {
            if let Some(p) = &self.0 {
                let _ = std::fs::remove_dir(p);
            }
        }
    }
    // Declared before the containers: dropped after them.
    let _parent_guard = RemoveParent(made_parent.then(|| parent.clone()));
    let policy = format!(
        "[dns]\nresolvers = [\"127.0.0.53\"]\n{}[[target]]\nname = \"builders\"\ncontainers = \"docker\"\nimage = \"ram-test/builder*\"\n[[allow]]\ncidr = \"127.20.0.0/16\"\n",
        netns.dns_trust()
    );
    let data_root_text = data_root.path.display().to_string();
    let ramd = Ramd::start_with_env(&policy, &[("RAM_DOCKER_ROOT", data_root_text.as_str())]);
    ramd.wait_attached();
    let outside = TestCgroup::new("k-ctr-outside");
    assert_eq!(
        probe(Some(&outside), Some(&netns), &["connect", "127.30.0.1", "9"]),
        "ECONNREFUSED",
        "a cgroup that is no container was judged"
    );
    let mut containers = Vec::new();
    for round in 0..50u64 {
        let image = if round % 2 == 0 { "ram-test/builder:1" } else { "ram-test/other:1" };
        let container = fake_container(&netns, &data_root.path, image, round);
        // The cgroup exists this instant: a builder is refused from the
        // first instruction, whether or not ramd has looked yet; another
        // image is held or already let go.
        let verdict = probe(Some(&container.cgroup), Some(&netns), &["connect", "127.30.0.1", "9"]);
        if image.starts_with("ram-test/builder") {
            assert_eq!(verdict, "EPERM", "round {round} ({image}): not refused from its first instruction");
        } else {
            assert!(verdict == "EPERM" || verdict == "ECONNREFUSED", "round {round} ({image}): {verdict}");
        }
        containers.push((container, image));
    }
    // The hold itself, without racing ramd: a container whose record ramd
    // cannot read yet stays held closed, whatever its image, until it can.
    // (Its record is written only after: hiding it after the fact raced
    // ramd, which could decide in between; seen on 6.1 under emulation.)
    let (early, record, text) =
        fake_container_recorded(Some(&netns), "default", &data_root.path, "ram-test/other:2", 1000, false);
    for _ in 0..5 {
        assert_eq!(probe(Some(&early.cgroup), Some(&netns), &["connect", "127.30.0.1", "9"]), "EPERM", "not held");
        sleep(Duration::from_millis(100));
    }
    std::fs::write(&record, text).expect("record");
    containers.push((early, "ram-test/other:2"));
    // ramd decides: the builders stay enforced, the others go free.
    for (container, image) in &containers {
        let want = if image.starts_with("ram-test/builder") { "EPERM" } else { "ECONNREFUSED" };
        let settled = wait_for(Duration::from_secs(10), || {
            let v = probe(Some(&container.cgroup), Some(&netns), &["connect", "127.30.0.1", "9"]);
            (v == want).then_some(v)
        });
        assert!(settled.is_some(), "{} ({image}) never became {want}:\n{}", container.id, ramd.log_text());
        // Allowed destinations stay allowed for the held ones.
        assert_eq!(probe(Some(&container.cgroup), Some(&netns), &["connect", "127.20.0.1", "9"]), "ECONNREFUSED");
    }
    let status = ramd.ramctl_json(&["status"]).expect("status");
    let held: Vec<&str> = status["targets"][0]["containers"]
        .as_array()
        .map(|a| a.iter().filter_map(|c| c["image"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(held.len(), 25, "ramctl status: {status}");
    assert!(held.iter().all(|i| i.starts_with("ram-test/builder")), "{held:?}");
    let blocked = ramd.wait_log("a blocked line naming the container", |e| {
        e["event"] == "blocked" && e["container"].as_str().is_some_and(|c| c.contains("ram-test/builder"))
    });
    println!("{blocked}");
    assert_eq!(
        probe(Some(&outside), Some(&netns), &["connect", "127.30.0.1", "9"]),
        "ECONNREFUSED",
        "a cgroup that is no container was judged"
    );
    drop(containers);
}

// ---------------------------------------------------------------------
// Red-team review of container targets (branch containers, c6f89fa).
// ---------------------------------------------------------------------

/// `<v2 root>/docker`, made for the test and removed after it if it made it.
struct DockerParent(Option<PathBuf>);

impl DockerParent {
    fn new() -> Self {
        let parent = cgroup2_mount().join("docker");
        let made = !parent.exists();
        std::fs::create_dir_all(&parent).expect("docker parent cgroup");
        DockerParent(made.then_some(parent))
    }
}

impl Drop for DockerParent {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = std::fs::remove_dir(p);
        }
    }
}

fn red_policy(netns: &Netns, rules: &str) -> String {
    format!(
        "[dns]\nresolvers = [\"127.0.0.53\"]\n{}[[target]]\nname = \"jobs\"\ncontainers = \"docker\"\nimage = \"ram-test/job*\"\n{rules}",
        netns.dns_trust()
    )
}

/// RED 1 (bypass). ramd takes a container's record from the first data
/// root that has it, and the roots include the `--data-root` of ANY
/// process whose comm is "dockerd" — its owner, its cgroup, its binary are
/// never checked. Where the real record is not in /var/lib/docker or
/// daemon.json's data-root (dockerd with userns-remap keeps it under
/// /var/lib/docker/<uid>.<gid>/containers; `--config-file`; ...), the
/// container stays held pending, and a process INSIDE it that names a
/// "dockerd" with a data root it wrote (a real container finds its upper
/// dir's host path in /proc/self/mountinfo) gets itself released:
/// unjudged, it connects anywhere.
#[test]
fn a_held_container_cannot_release_itself_through_a_fake_dockerd() {
    require_root();
    let netns = Netns::new("k-red-root");
    // Where "dockerd" really keeps the record: a root ramd does not know.
    let real_root = TempDir::new("k-red-real");
    let known_root = TempDir::new("k-red-known");
    let evil = TempDir::new("k-red-evil");
    let _parent = DockerParent::new();
    let policy = red_policy(&netns, "[[allow]]\ncidr = \"127.20.0.0/16\"\n");
    let known = known_root.path.display().to_string();
    let ramd = Ramd::start_with_env(&policy, &[("RAM_DOCKER_ROOT", known.as_str())]);
    ramd.wait_attached();
    let container = fake_container(&netns, &real_root.path, "ram-test/job:1", 7001);
    for _ in 0..5 {
        assert_eq!(probe(Some(&container.cgroup), Some(&netns), &["connect", "127.30.0.1", "9"]), "EPERM");
        sleep(Duration::from_millis(100));
    }
    // Inside the container: a record saying it is some other image, and a
    // process named dockerd pointing ramd at it.
    let record = evil.path.join("containers").join(&container.id);
    std::fs::create_dir_all(&record).expect("evil record dir");
    std::fs::write(
        record.join("config.v2.json"),
        format!(
            r#"{{"ID":"{}","Name":"/innocent","Config":{{"Image":"ram-test/not-a-job:1","Labels":{{}}}}}}"#,
            container.id
        ),
    )
    .expect("evil record");
    let fake = evil.path.join("dockerd");
    std::fs::copy(probe_bin(), &fake).expect("copy probe as dockerd");
    let mut cmd = std::process::Command::new(&fake);
    cmd.args(["hold", "30", &format!("--data-root={}", evil.path.display())]);
    cmd.stdout(std::process::Stdio::null());
    place(&mut cmd, Some(&container.cgroup.path), Some(&netns));
    let _fake_dockerd = Proc::spawn("fake-dockerd", &mut cmd);
    let released = wait_for(Duration::from_secs(5), || {
        let v = probe(Some(&container.cgroup), Some(&netns), &["connect", "127.30.0.1", "9"]);
        (v == "ECONNREFUSED").then_some(v)
    });
    println!("{}", ramd.log_text());
    assert!(released.is_none(), "BYPASS: the held container released itself through a fake dockerd's --data-root");
}

/// RED 2 (bypass with Docker's default capabilities). `docker run` grants
/// CAP_NET_RAW unless told otherwise; an AF_PACKET frame meets no cgroup
/// hook, so a held container answers its own query as the host's
/// resolver (trusted for container targets in every namespace) and
/// teaches an address of its choosing for an allowed name. The frame goes
/// out on `lo` and comes back in as received: 127.0.0.11 does not work
/// that way (a loopback source is martian without route_localnet), the
/// host's non-loopback resolver, which default-bridge containers use,
/// does. The namespace plays a default-bridge container: its address
/// 10.77.0.2, the host's resolver 10.77.0.53 reached through its gateway.
/// A known gap, not a passing case: a container with CAP_NET_RAW (Docker's
/// default) writes frames no cgroup hook sees (AF_PACKET), so it can answer
/// its own queries, and indeed reach any address without DNS at all. ramd
/// warns about every held container that holds the capability; the README
/// says to drop it. Kept, ignored, so the gap stays in view: run it with
/// `--ignored` (it fails while the gap is open).
#[test]
#[ignore = "known gap: AF_PACKET bypasses cgroup hooks (CAP_NET_RAW); see README"]
fn af_packet_answers_forged_by_a_container_with_cap_net_raw_teach_it() {
    require_root();
    let netns = Netns::new("k-red-pkt");
    netns.add_host_interface("eth-red", &["10.77.0.2/24"]);
    let data_root = TempDir::new("k-red-pkt-docker");
    let _parent = DockerParent::new();
    let policy = format!(
        "[dns]\nresolvers = [\"127.0.0.53\", \"10.77.0.53\"]\n{}[[target]]\nname = \"jobs\"\ncontainers = \"docker\"\nimage = \"ram-test/job*\"\n[[allow]]\nhost = \"registry.test\"\n",
        netns.dns_trust()
    );
    let root = data_root.path.display().to_string();
    let ramd = Ramd::start_with_env(&policy, &[("RAM_DOCKER_ROOT", root.as_str())]);
    ramd.wait_attached();
    let container = fake_container(&netns, &data_root.path, "ram-test/job:1", 7002);
    assert_eq!(probe(Some(&container.cgroup), Some(&netns), &["connect", "127.30.0.9", "9"]), "EPERM");
    let mut outs = Vec::new();
    for (resolver, client) in [("127.0.0.11", "127.0.0.1"), ("10.77.0.53", "10.77.0.2")] {
        let out = probe(
            Some(&container.cgroup),
            Some(&netns),
            &["packet-forge", resolver, "registry.test", "127.30.0.9", "9", client],
        );
        println!("as {resolver} to {client}: {out}");
        outs.push(out);
    }
    println!("{}", ramd.log_text());
    for out in outs {
        assert!(!out.ends_with("ECONNREFUSED"), "BYPASS: {out}");
    }
}

/// RED 3 (legitimate use refused). Docker's embedded DNS: the container
/// asks 127.0.0.11:53, and iptables rules Docker writes into the
/// container's namespace DNAT that to 127.0.0.11:<port dockerd listens on>
/// (OUTPUT) and SNAT the reply back to port 53 (POSTROUTING). cgroup egress
/// runs after both hooks, so ram sees the query going to the random port:
/// it is not recorded as a query, and is judged (and refused) as a packet
/// to a destination outside the policy.
#[test]
fn a_held_container_learns_through_dockers_embedded_dns_behind_its_nat() {
    require_root();
    let netns = Netns::new("k-red-dnat");
    let dir = TempDir::new("k-red-dnat");
    let data_root = TempDir::new("k-red-dnat-docker");
    let _parent = DockerParent::new();
    // dockerd's embedded DNS: outside the container's cgroup, in its namespace.
    let mut cmd = std::process::Command::new("dnsmasq");
    cmd.args(["--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--bind-interfaces"])
        .args(["--listen-address=127.0.0.11", "--port=41234", "--local-ttl=60", "--user=root"])
        .arg(format!("--pid-file={}", dir.path.join("dnsmasq.pid").display()))
        .arg("--address=/registry.test/127.20.0.5")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    place(&mut cmd, None, Some(&netns));
    let _dns = Proc::spawn("embedded-dns", &mut cmd);
    for rule in [
        "-t nat -A OUTPUT -d 127.0.0.11/32 -p udp --dport 53 -j DNAT --to-destination 127.0.0.11:41234",
        "-t nat -A POSTROUTING -s 127.0.0.11/32 -p udp --sport 41234 -j SNAT --to-source :53",
        "-t nat -A OUTPUT -d 127.0.0.11/32 -p tcp --dport 53 -j DNAT --to-destination 127.0.0.11:41234",
        "-t nat -A POSTROUTING -s 127.0.0.11/32 -p tcp --sport 41234 -j SNAT --to-source :53",
    ] {
        let mut args = vec!["netns", "exec", netns.name.as_str(), "iptables"];
        args.extend(rule.split(' '));
        run(std::process::Command::new("ip").args(&args));
    }
    let before = wait_for(Duration::from_secs(10), || {
        let v = probe(None, Some(&netns), &["resolve", "127.0.0.11", "registry.test"]);
        (v == "127.20.0.5").then_some(v)
    });
    assert!(before.is_some(), "the DNAT'd embedded DNS does not answer without ram");
    let policy = red_policy(&netns, "[[allow]]\nhost = \"registry.test\"\n");
    let root = data_root.path.display().to_string();
    let ramd = Ramd::start_with_env(&policy, &[("RAM_DOCKER_ROOT", root.as_str())]);
    ramd.wait_attached();
    let container = fake_container(&netns, &data_root.path, "ram-test/job:1", 7003);
    let udp = resolve_registry(&container.cgroup, &netns);
    let tcp =
        probe(Some(&container.cgroup), Some(&netns), &["resolve-connect", "127.0.0.11", "registry.test", "9", "tcp"]);
    println!("udp: {udp}\ntcp: {tcp}\n{}", ramd.log_text());
    assert_eq!(udp, "127.20.0.5 ECONNREFUSED", "REFUSED LEGIT (udp)");
    assert_eq!(tcp, "127.20.0.5 ECONNREFUSED", "REFUSED LEGIT (tcp)");
}

/// A container's `resolve-connect` of registry.test through 127.0.0.11
/// (dockerd's embedded DNS, or whoever plays it), to port 9.
fn resolve_registry(cgroup: &TestCgroup, netns: &Netns) -> String {
    probe(Some(cgroup), Some(netns), &["resolve-connect", "127.0.0.11", "registry.test", "9"])
}

/// Whether, within `secs`, the container learns registry.test as
/// 127.20.0.5 and reaches it (ECONNREFUSED: no listener, not ram), and the
/// last outcome.
fn learns_registry(cgroup: &TestCgroup, netns: &Netns, secs: u64) -> (bool, String) {
    let mut last = String::new();
    let learned = wait_for(Duration::from_secs(secs), || {
        last = resolve_registry(cgroup, netns);
        (last == "127.20.0.5 ECONNREFUSED").then_some(())
    });
    (learned.is_some(), last)
}

/// A container's DNS is trusted only in the network namespace its runtime
/// made for it: the one dockerd's record names (NetworkSettings.SandboxKey,
/// written once the container runs), or before that the one its processes
/// are in, if dockerd keeps a file of it (`<exec-root>/netns/`, where the
/// setkey hook bind-mounts it before the container's first instruction).
/// While neither is known, the container learns nothing and the answers to
/// its DNS sockets are dropped rather than handed over unlearned, so that
/// its resolver asks again; once one is, the next query teaches.
#[test]
fn a_container_learns_only_in_the_namespace_its_runtime_made() {
    require_root();
    let netns = Netns::new("k-ctr-ns");
    let data_root = TempDir::new("k-ctr-ns-docker");
    let netns_files = TempDir::new("k-ctr-ns-files");
    let _parent = DockerParent::new();
    // dockerd's embedded DNS, outside the container's cgroup, in its namespace.
    let mut cmd = std::process::Command::new(probe_bin());
    cmd.args(["serve-dns", "127.0.0.11", "60", "registry.test=127.20.0.5"]).stdout(std::process::Stdio::null());
    place(&mut cmd, None, Some(&netns));
    let _dns = Proc::spawn("embedded-dns", &mut cmd);
    let up = wait_for(Duration::from_secs(10), || {
        let v = probe(None, Some(&netns), &["resolve", "127.0.0.11", "registry.test"]);
        (v == "127.20.0.5").then_some(v)
    });
    assert!(up.is_some(), "the embedded DNS does not answer");
    let policy = red_policy(&netns, "[[allow]]\nhost = \"registry.test\"\n");
    let root = data_root.path.display().to_string();
    let files = netns_files.path.display().to_string();
    let ramd =
        Ramd::start_with_env(&policy, &[("RAM_DOCKER_ROOT", root.as_str()), ("RAM_DOCKER_NETNS", files.as_str())]);
    ramd.wait_attached();
    // Neither recorded nor kept by the runtime: nothing reaches it, nothing is learned.
    let first = fake_container_in(None, &data_root.path, "ram-test/job:1", 7008);
    ramd.wait_log("the container enforced", |e| e["message"] == "enforcing container");
    let out = resolve_registry(&first.cgroup, &netns);
    assert!(out.starts_with("resolve-failed"), "an answer reached a container whose namespace is unknown: {out}");
    assert!(ramd.counter("jobs", "dns_netns_unknown") >= 2, "the dropped answers were not counted");
    assert_eq!(probe(Some(&first.cgroup), Some(&netns), &["connect", "127.20.0.5", "9"]), "EPERM", "it learned");
    // The runtime keeps a file of the namespace (as the setkey hook does):
    // the container's processes are in it, and its next query teaches.
    let kept = netns_files.path.join("0123456789ab");
    std::fs::write(&kept, "").expect("mount point");
    run(std::process::Command::new("mount").arg("--bind").arg(netns.file()).arg(&kept));
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(kept);
    let (learned, last) = learns_registry(&first.cgroup, &netns, 10);
    assert!(learned, "no lesson in the runtime's namespace ({last}):\n{}", ramd.log_text());
    // The record names it: the same, without a process to look at.
    let second = fake_container(&netns, &data_root.path, "ram-test/job:2", 7009);
    let (learned, last) = learns_registry(&second.cgroup, &netns, 10);
    assert!(learned, "no lesson in the recorded namespace ({last}):\n{}", ramd.log_text());
}

/// RED 4 (expected to hold). A held container that makes a namespace of
/// its own and answers itself as 127.0.0.11 or as the host's resolver: its
/// answer is refused at egress (sent_as_resolver).
#[test]
fn a_held_container_cannot_answer_its_own_queries() {
    require_root();
    let netns = Netns::new("k-red-own");
    let data_root = TempDir::new("k-red-own-docker");
    let _parent = DockerParent::new();
    let policy = red_policy(&netns, "[[allow]]\nhost = \"registry.test\"\n");
    let root = data_root.path.display().to_string();
    let ramd = Ramd::start_with_env(&policy, &[("RAM_DOCKER_ROOT", root.as_str())]);
    ramd.wait_attached();
    let container = fake_container(&netns, &data_root.path, "ram-test/job:1", 7004);
    let child = container.cgroup.child("init.scope");
    for (resolver, cgroup) in
        [("127.0.0.11", &container.cgroup), ("127.0.0.53", &container.cgroup), ("127.0.0.11", &child)]
    {
        for how in ["forge-in-own-netns", "forge-as-resolver"] {
            let out = probe(Some(cgroup), Some(&netns), &[how, resolver, "registry.test", "127.30.0.9", "9"]);
            println!("{how} {resolver} in {}: {out}", cgroup.path.display());
            assert!(out.ends_with("EPERM"), "BYPASS {how} {resolver}: {out}");
        }
    }
    // A child cgroup of the container is judged as the container.
    assert_eq!(probe(Some(&child), Some(&netns), &["connect", "127.30.0.1", "9"]), "EPERM");
    drop(child);
    drop(ramd);
}

/// RED 5 (legitimate use refused, transiently). A reload sets every held
/// container to pending, and a pending container is judged by EVERY
/// container target of its runtime (all must allow: multi-attach). With
/// two container targets, a container of the first is refused what only
/// the first allows until ramd has decided it again — contrary to "Adding
/// a rule never makes an allowed connect fail during the switch".
#[test]
fn a_reload_never_refuses_a_held_containers_allowed_connects() {
    require_root();
    let netns = Netns::new("k-red-rel");
    let data_root = TempDir::new("k-red-rel-docker");
    let _parent = DockerParent::new();
    let policy = |extra: &str| {
        format!(
            "[dns]\nresolvers = [\"127.0.0.53\"]\n{}[[target]]\nname = \"jobs\"\ncontainers = \"docker\"\nimage = \"ram-test/job*\"\n[[target.allow]]\ncidr = \"127.20.0.0/16\"\n[[target]]\nname = \"others\"\ncontainers = \"docker\"\nimage = \"ram-test/other*\"\n[[target.allow]]\ncidr = \"127.21.0.0/16\"\n{extra}",
            netns.dns_trust()
        )
    };
    let root = data_root.path.display().to_string();
    let ramd = Ramd::start_with_env(&policy(""), &[("RAM_DOCKER_ROOT", root.as_str())]);
    ramd.wait_attached();
    let container = fake_container(&netns, &data_root.path, "ram-test/job:1", 7005);
    let settled = wait_for(Duration::from_secs(5), || {
        let v = probe(Some(&container.cgroup), Some(&netns), &["connect", "127.20.0.1", "9"]);
        (v == "ECONNREFUSED").then_some(v)
    });
    assert!(settled.is_some(), "never held by jobs");
    let stop = data_root.path.join("stop");
    let mut cmd = std::process::Command::new(probe_bin());
    cmd.arg("expect-loop").arg(format!("stop={}", stop.display())).arg("connect,127.20.0.1,9=ECONNREFUSED");
    cmd.stdout(std::process::Stdio::piped());
    place(&mut cmd, Some(&container.cgroup.path), Some(&netns));
    let child = cmd.spawn().expect("expect-loop");
    for round in 0..10 {
        // Adding a rule each time (a new cidr for nobody's use).
        ramd.write_policy(&policy(&format!("[[allow]]\ncidr = \"10.99.{round}.0/24\"\n")));
        let out = ramd.ramctl(&["reload"]);
        assert!(out.status.success(), "reload: {}", String::from_utf8_lossy(&out.stderr));
        sleep(Duration::from_millis(100));
    }
    std::fs::write(&stop, "").expect("stop");
    let out = child.wait_with_output().expect("expect-loop output");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    println!("{text}");
    sleep(Duration::from_secs(1));
    println!(
        "one second after the last reload: {}",
        probe(Some(&container.cgroup), Some(&netns), &["connect", "127.20.0.1", "9"])
    );
    for e in ramd.log_events() {
        if e["message"].as_str().is_some_and(|m| m.contains("enforcing container") || m.contains("reload")) {
            println!("{e}");
        }
    }
    assert!(text.contains("wrong=0 ") || text.trim_end().ends_with("wrong=0"), "REFUSED LEGIT during reloads: {text}");
}

/// RED 6 (denial of service, same precondition as RED 1). ramd reads a
/// record with std::fs::read on its event loop; a "dockerd" whose data
/// root holds a FIFO named config.v2.json stops ramd in open(2): no
/// container is decided any more (new ones stay held, matching or not),
/// no reload, no docker-proxy sync, no events.
#[test]
fn a_record_that_is_a_fifo_does_not_stall_ramd() {
    require_root();
    let netns = Netns::new("k-red-fifo");
    let real_root = TempDir::new("k-red-fifo-real");
    let known_root = TempDir::new("k-red-fifo-known");
    let evil = TempDir::new("k-red-fifo-evil");
    let _parent = DockerParent::new();
    let policy = red_policy(&netns, "[[allow]]\ncidr = \"127.20.0.0/16\"\n");
    let known = known_root.path.display().to_string();
    let ramd = Ramd::start_with_env(&policy, &[("RAM_DOCKER_ROOT", known.as_str())]);
    ramd.wait_attached();
    let stranded = fake_container(&netns, &real_root.path, "ram-test/job:1", 7006);
    let record = evil.path.join("containers").join(&stranded.id);
    std::fs::create_dir_all(&record).expect("evil record dir");
    run(std::process::Command::new("mkfifo").arg(record.join("config.v2.json")));
    let fake = evil.path.join("dockerd");
    std::fs::copy(probe_bin(), &fake).expect("copy probe as dockerd");
    let mut cmd = std::process::Command::new(&fake);
    cmd.args(["hold", "30", &format!("--data-root={}", evil.path.display())]);
    cmd.stdout(std::process::Stdio::null());
    place(&mut cmd, Some(&stranded.cgroup.path), Some(&netns));
    let _fake_dockerd = Proc::spawn("fake-dockerd", &mut cmd);
    sleep(Duration::from_millis(500));
    // A container ramd can read, of an image no target wants: never let go.
    let other = fake_container(&netns, &known_root.path, "ram-test/other:1", 7007);
    let released = wait_for(Duration::from_secs(5), || {
        let v = probe(Some(&other.cgroup), Some(&netns), &["connect", "127.30.0.1", "9"]);
        (v == "ECONNREFUSED").then_some(v)
    });
    assert!(released.is_some(), "DOS: ramd stalled on the FIFO; a non-matching container stays refused");
}

/// Issue 14: a host's resolvers change (DHCP, a VPN, NetworkManager). With
/// a policy that names none, the trusted resolvers follow resolv.conf
/// without a restart, and the change is logged: the resolver the file named
/// before is no longer reached, the new one teaches.
#[test]
fn trusted_resolvers_follow_the_hosts_resolv_conf() {
    require_root();
    let scene = Scene::new("k-resolv", &[("allowed.registry.test", "127.10.0.1")], 300);
    let resolv = scene.dir.write("resolv.conf", "nameserver 127.0.0.54\n");
    let policy = format!(
        "[dns]\n{}[[target]]\nname = \"docker\"\ncgroup = \"{}\"\n[[allow]]\nhost = \"allowed.registry.test\"\n",
        scene.netns.dns_trust(),
        scene.cgroup.path.display()
    );
    let resolv_text = resolv.display().to_string();
    let ramd = Ramd::start_with_env(&policy, &[("RAM_RESOLV_CONF", resolv_text.as_str())]);
    // 127.0.0.53 is not the host's resolver yet: not even reached.
    assert_eq!(
        scene.inside(&["resolve-connect", "127.0.0.53", "allowed.registry.test", "443"]),
        "resolve-failed:EPERM"
    );
    std::fs::write(&resolv, "# rewritten by a DHCP client\nnameserver 127.0.0.53\n").expect("rewrite resolv.conf");
    let mut last = String::new();
    let followed = wait_for(Duration::from_secs(10), || {
        last = scene.inside(&["resolve-connect", "127.0.0.53", "allowed.registry.test", "443"]);
        last.ends_with(" ECONNREFUSED").then_some(())
    });
    assert!(followed.is_some(), "the new resolver did not teach ({last}):\n{}", ramd.log_text());
    ramd.wait_log("the resolver change", |e| e["message"] == "trusted resolvers change");
    assert_eq!(
        scene.inside(&["resolve-connect", "127.0.0.54", "allowed.registry.test", "443"]),
        "resolve-failed:EPERM"
    );
}

/// A trusted resolver removed (an admin's edit, or resolv.conf rewritten by
/// DHCP, a VPN or NetworkManager while the policy follows it): what was
/// learned while it was trusted is revoked by that reload (or restart), not
/// left allowed until its TTL. A learned entry does not record its
/// resolver, so every address the target learned goes; the client learns
/// again through the resolvers that stay. A resolver added revokes nothing.
#[test]
fn removing_a_trusted_resolver_revokes_what_was_learned() {
    require_root();
    let records = [("a.registry.test", "127.10.0.1"), ("b.registry.test", "127.10.0.2")];
    // Resolver A is the scene's (127.0.0.53); B serves the same names.
    let scene = Scene::new("k-untrust", &records, 300);
    let b_dir = TempDir::new("k-untrust-b");
    let _b = dnsmasq(&scene.netns, &b_dir, "127.0.0.54", &records, 300);
    let resolv = scene.dir.write("resolv.conf", "nameserver 127.0.0.53\n");
    let resolv_text = resolv.display().to_string();
    // `resolvers`: the `[dns] resolvers` value, or None to follow resolv.conf.
    let policy = |resolvers: Option<&str>| {
        format!(
            "[dns]\n{}{}[[target]]\nname = \"docker\"\ncgroup = \"{}\"\n[[allow]]\nhost = \"a.registry.test\"\n[[allow]]\nhost = \"b.registry.test\"\n",
            resolvers.map(|r| format!("resolvers = [{r}]\n")).unwrap_or_default(),
            scene.netns.dns_trust(),
            scene.cgroup.path.display()
        )
    };
    let mut ramd = Ramd::start_with_env(&policy(Some("\"127.0.0.53\"")), &[("RAM_RESOLV_CONF", resolv_text.as_str())]);
    let inside = |args: &[&str]| scene.inside(args);
    let learned = |ramd: &Ramd| -> Vec<String> {
        let rows = ramd.ramctl_json(&["learned"]).expect("ramctl learned");
        rows.as_array().expect("array").iter().filter_map(|r| r["addr"].as_str().map(String::from)).collect()
    };
    let reload = |ramd: &Ramd, text: &str| {
        ramd.write_policy(text);
        let out = ramd.ramctl(&["reload"]);
        assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stderr), ramd.log_text());
    };
    // The warn lines saying which resolvers went and how much was revoked.
    let revocations = |ramd: &Ramd, removed: &str| -> Vec<serde_json::Value> {
        ramd.log_events()
            .into_iter()
            .filter(|e| {
                e["level"] == "WARN"
                    && e["message"].as_str().unwrap_or_default().starts_with("trusted resolvers removed")
                    && e["removed"] == removed
            })
            .collect()
    };
    let summaries = |ramd: &Ramd| -> Vec<String> {
        ramd.log_events()
            .into_iter()
            .filter_map(|e| e["message"].as_str().filter(|m| m.starts_with("policy reloaded")).map(String::from))
            .collect()
    };

    // Learned through A.
    assert_eq!(inside(&["resolve-connect", "127.0.0.53", "a.registry.test", "5000"]), "127.10.0.1 ECONNREFUSED");

    // B added: nothing revoked; B teaches too.
    reload(&ramd, &policy(Some("\"127.0.0.53\", \"127.0.0.54\"")));
    assert_eq!(inside(&["connect", "127.10.0.1", "5000"]), "ECONNREFUSED");
    assert_eq!(learned(&ramd), ["127.10.0.1"]);
    assert!(
        summaries(&ramd)
            .iter()
            .all(|s| s.contains("0 learned addresses revoked as trusted resolvers were removed (none removed)")),
        "{:?}",
        summaries(&ramd)
    );
    assert_eq!(inside(&["resolve-connect", "127.0.0.54", "b.registry.test", "5000"]), "127.10.0.2 ECONNREFUSED");

    // A removed: everything learned goes at once (what B taught too).
    let before = learned(&ramd);
    assert_eq!(before.len(), 2, "{before:?}");
    reload(&ramd, &policy(Some("\"127.0.0.54\"")));
    assert_eq!(inside(&["connect", "127.10.0.1", "5000"]), "EPERM");
    assert_eq!(inside(&["connect", "127.10.0.2", "5000"]), "EPERM");
    assert_eq!(learned(&ramd), Vec::<String>::new());
    let line = ramd.wait_log("the revocation warning", |e| {
        e["level"] == "WARN" && e["removed"] == "127.0.0.53" && e["revoked"] == 2
    });
    println!("{line}");
    assert!(
        summaries(&ramd)
            .iter()
            .any(|s| s.contains("2 learned addresses revoked as trusted resolvers were removed (127.0.0.53)")),
        "{:?}",
        summaries(&ramd)
    );
    // A is no longer reached; B teaches again.
    assert_eq!(inside(&["resolve-connect", "127.0.0.53", "a.registry.test", "5000"]), "resolve-failed:EPERM");
    assert_eq!(inside(&["resolve-connect", "127.0.0.54", "a.registry.test", "5000"]), "127.10.0.1 ECONNREFUSED");

    // ramd restarted on a policy without B (edited while it was down): the
    // pinned resolver rows are the last run's (B), and what B taught goes.
    ramd.stop();
    ramd.write_policy(&policy(Some("\"127.0.0.53\"")));
    assert_eq!(
        inside(&["connect", "127.10.0.1", "5000"]),
        "ECONNREFUSED",
        "enforcement and learning stay while ramd is down"
    );
    ramd.restart();
    assert_eq!(inside(&["connect", "127.10.0.1", "5000"]), "EPERM");
    assert_eq!(learned(&ramd), Vec::<String>::new());
    assert_eq!(revocations(&ramd, "127.0.0.54").len(), 1, "{}", ramd.log_text());
    assert_eq!(inside(&["resolve-connect", "127.0.0.53", "a.registry.test", "5000"]), "127.10.0.1 ECONNREFUSED");

    // The policy follows resolv.conf, which names A and B: B added, nothing
    // revoked.
    std::fs::write(&resolv, "nameserver 127.0.0.53\nnameserver 127.0.0.54\n").expect("write resolv.conf");
    reload(&ramd, &policy(None));
    assert_eq!(inside(&["connect", "127.10.0.1", "5000"]), "ECONNREFUSED");
    assert_eq!(inside(&["resolve-connect", "127.0.0.54", "b.registry.test", "5000"]), "127.10.0.2 ECONNREFUSED");
    assert_eq!(revocations(&ramd, "127.0.0.53").len(), 1);
    // A DHCP client rewrites it without A: followed, and what was learned goes.
    std::fs::write(&resolv, "# rewritten by a DHCP client\nnameserver 127.0.0.54\n").expect("rewrite resolv.conf");
    let revoked =
        wait_for(Duration::from_secs(10), || (inside(&["connect", "127.10.0.1", "5000"]) == "EPERM").then_some(()));
    assert!(revoked.is_some(), "the address A taught is still allowed:\n{}", ramd.log_text());
    assert_eq!(inside(&["connect", "127.10.0.2", "5000"]), "EPERM");
    assert_eq!(learned(&ramd), Vec::<String>::new());
    assert_eq!(revocations(&ramd, "127.0.0.53").len(), 2, "{}", ramd.log_text());
    assert_eq!(inside(&["resolve-connect", "127.0.0.54", "a.registry.test", "5000"]), "127.10.0.1 ECONNREFUSED");
}

/// The addresses `ramctl learned` lists.
fn learned_addrs(ramd: &Ramd) -> Vec<String> {
    let rows = ramd.ramctl_json(&["learned"]).expect("ramctl learned");
    rows.as_array().expect("array").iter().filter_map(|r| r["addr"].as_str().map(String::from)).collect()
}

/// Red team 8: a restarted ramd whose policy trusts DNS in another network
/// namespace keeps nothing the old namespace's resolver taught: there the
/// same address is another server (a reload already revoked everything;
/// a restart compared resolver addresses only, and kept it all).
#[test]
fn a_restart_that_trusts_another_namespace_revokes_what_was_learned() {
    require_root();
    if in_vm() {
        // The guest has one network namespace for every test.
        return;
    }
    let scene = Scene::new("k-nsrestart", &[("a.registry.test", "127.10.0.1")], 300);
    let other = Netns::new("k-nsrestart-b");
    let policy = |netns: &Netns| {
        format!(
            "[dns]\nresolvers = [\"127.0.0.53\"]\n{}[[target]]\nname = \"docker\"\ncgroup = \"{}\"\n[[allow]]\nhost = \"a.registry.test\"\n",
            netns.dns_trust(),
            scene.cgroup.path.display()
        )
    };
    let mut ramd = Ramd::start(&policy(&scene.netns));
    assert_eq!(scene.inside(&["resolve-connect", "127.0.0.53", "a.registry.test", "5000"]), "127.10.0.1 ECONNREFUSED");
    assert_eq!(learned_addrs(&ramd), ["127.10.0.1"]);
    ramd.stop();
    ramd.write_policy(&policy(&other));
    ramd.restart();
    assert_eq!(learned_addrs(&ramd), Vec::<String>::new(), "{}", ramd.log_text());
    // In the namespace now trusted (judged), the address is not allowed.
    assert_eq!(probe(Some(&scene.cgroup), Some(&other), &["connect", "127.10.0.1", "5000"]), "EPERM");
}

/// Red team 8: `[limits] learned_addresses` takes a restart, which
/// replaces the learned maps and carries their entries over twice (the
/// second time for what the old programs learned while the new ones
/// loaded). The second copy brought back what the start had just revoked:
/// a removed resolver's teaching, and a removed rule's.
#[test]
fn a_restart_that_resizes_the_learned_maps_keeps_its_revocations() {
    require_root();
    let records = [("a.registry.test", "127.10.0.1"), ("b.registry.test", "127.10.0.2")];
    let scene = Scene::new("k-resize-revoke", &records, 300);
    let b_dir = TempDir::new("k-resize-revoke-b");
    let _b = dnsmasq(&scene.netns, &b_dir, "127.0.0.54", &records, 300);
    let policy = |resolvers: &str, hosts: &[&str], size: u32| {
        let rules: String = hosts.iter().map(|h| format!("[[allow]]\nhost = \"{h}\"\n")).collect();
        format!(
            "[dns]\nresolvers = [{resolvers}]\n{}[limits]\nlearned_addresses = {size}\n[[target]]\nname = \"docker\"\ncgroup = \"{}\"\n{rules}",
            scene.netns.dns_trust(),
            scene.cgroup.path.display()
        )
    };
    let hosts = ["a.registry.test", "b.registry.test"];
    let mut ramd = Ramd::start(&policy("\"127.0.0.53\", \"127.0.0.54\"", &hosts, 1024));
    assert_eq!(scene.inside(&["resolve-connect", "127.0.0.53", "a.registry.test", "5000"]), "127.10.0.1 ECONNREFUSED");
    // A resolver removed and the maps resized at one restart.
    ramd.stop();
    ramd.write_policy(&policy("\"127.0.0.54\"", &hosts, 2048));
    ramd.restart();
    assert_eq!(
        scene.inside(&["connect", "127.10.0.1", "5000"]),
        "EPERM",
        "the removed resolver's teaching came back:\n{}",
        ramd.log_text()
    );
    assert_eq!(learned_addrs(&ramd), Vec::<String>::new());
    // A rule removed and the maps resized at one restart.
    assert_eq!(scene.inside(&["resolve-connect", "127.0.0.54", "b.registry.test", "5000"]), "127.10.0.2 ECONNREFUSED");
    ramd.stop();
    ramd.write_policy(&policy("\"127.0.0.54\"", &["a.registry.test"], 4096));
    ramd.restart();
    assert_eq!(
        scene.inside(&["connect", "127.10.0.2", "5000"]),
        "EPERM",
        "the removed rule's address came back:\n{}",
        ramd.log_text()
    );
    assert_eq!(learned_addrs(&ramd), Vec::<String>::new());
}

/// Red team 8: a start that fails after the new policy's rules went into
/// the maps (here: its run directory cannot be made) must not lose the
/// revocation of a removed resolver: the next start sees the new rows
/// pinned and, comparing resolvers, nothing removed.
#[test]
fn a_failed_start_never_loses_the_revocation_of_a_removed_resolver() {
    require_root();
    let records = [("a.registry.test", "127.10.0.1")];
    let scene = Scene::new("k-failstart", &records, 300);
    let b_dir = TempDir::new("k-failstart-b");
    let _b = dnsmasq(&scene.netns, &b_dir, "127.0.0.54", &records, 300);
    let policy = |resolvers: &str| {
        format!(
            "[dns]\nresolvers = [{resolvers}]\n{}[[target]]\nname = \"docker\"\ncgroup = \"{}\"\n[[allow]]\nhost = \"a.registry.test\"\n",
            scene.netns.dns_trust(),
            scene.cgroup.path.display()
        )
    };
    let mut ramd = Ramd::start(&policy("\"127.0.0.53\", \"127.0.0.54\""));
    assert_eq!(scene.inside(&["resolve-connect", "127.0.0.53", "a.registry.test", "5000"]), "127.10.0.1 ECONNREFUSED");
    assert_eq!(learned_addrs(&ramd), ["127.10.0.1"]);
    ramd.stop();
    // 127.0.0.53 removed while ramd is down; the next start fails.
    ramd.write_policy(&policy("\"127.0.0.54\""));
    let not_a_dir = ramd.dir.write("not-a-dir", "");
    let failed = std::process::Command::new(bin("ramd"))
        .args(["--log-format", "json", "--config"])
        .arg(ramd.config_path())
        .arg("--pin-dir")
        .arg(&ramd.pin_dir)
        .arg("--run-dir")
        .arg(not_a_dir.join("run"))
        .output()
        .expect("ramd");
    assert!(!failed.status.success(), "ramd started with a run directory it cannot make");
    // Started again as it should be.
    ramd.restart();
    assert_eq!(
        scene.inside(&["connect", "127.10.0.1", "5000"]),
        "EPERM",
        "what the removed resolver taught is still allowed:\n{}\n{}",
        String::from_utf8_lossy(&failed.stdout),
        ramd.log_text()
    );
    assert_eq!(learned_addrs(&ramd), Vec::<String>::new());
}

/// Red team 8: with the kernel log on, a process of the cgroup that writes
/// answers "from the resolver" to itself as fast as it can (through an
/// AF_PACKET socket in a user and network namespace of its own: no
/// privilege needed where user namespaces are on) must not stall ramd,
/// whose one loop also serves reloads (`ramctl debug off` among them),
/// blocked-attempt events and containers, nor flood its log. Each frame is
/// one kernel log record. ramd handed the log to aya-log, whose flush reads
/// until the ring buffer is empty: while the flood lasted, ramd answered
/// nothing (a reload 4.5 to 10 s late during a 12 s flood, on an idle
/// 2-core machine; it kept up only when other work slowed the writers).
#[test]
fn a_kernel_log_flood_from_the_cgroup_never_stalls_ramd() {
    require_root();
    let scene = Scene::new("k-klogflood", &[("allowed.registry.test", "127.10.0.1")], 300);
    let ramd = Ramd::start_with_args(
        &scene.policy("", "[[allow]]\nhost = \"allowed.registry.test\"\n"),
        &["--kernel-log", "debug"],
    );
    if ramd.ramctl_json(&["status"]).expect("status")["kernel_log"] != "debug" {
        // No ring buffer (before 5.8): no kernel log.
        return;
    }
    let seconds = 12;
    let mut cmd = std::process::Command::new(probe_bin());
    cmd.args(["klog-flood", "127.0.0.53", &seconds.to_string(), "2"]).stdout(std::process::Stdio::piped());
    place(&mut cmd, Some(&scene.cgroup.path), Some(&scene.netns));
    let mut flood = Proc::spawn("klog-flood", &mut cmd);
    ramd.wait_log("a line of the flood", |e| {
        e["kernel_log"] == true
            && e["message"].as_str().is_some_and(|m| m.contains("not a socket of the trusted namespace"))
    });
    sleep(Duration::from_secs(2));
    let started = std::time::Instant::now();
    let reload = ramd.ramctl(&["reload"]);
    let took = started.elapsed();
    let blocked = scene.inside(&["connect", "127.10.0.9", "443"]);
    let logged = wait_for(Duration::from_secs(3), || {
        ramd.log_events().into_iter().find(|e| e["event"] == "blocked" && e["daddr"] == "127.10.0.9")
    });
    let mut flooded = String::new();
    if let Some(mut stdout) = flood.child.stdout.take() {
        let _ = std::io::Read::read_to_string(&mut stdout, &mut flooded);
    }
    let _ = flood.child.wait();
    let flooded = flooded.trim().to_string();
    println!("flood: {flooded}; reload took {took:?}");
    assert!(reload.status.success(), "reload during the flood: {}", String::from_utf8_lossy(&reload.stderr));
    assert!(took < Duration::from_secs(3), "ramd answered a reload after {took:?} during the flood ({flooded})");
    assert_eq!(blocked, "EPERM");
    assert!(logged.is_some(), "a blocked attempt during the flood was not logged within 3 s ({flooded})");
    // The log itself stayed within its budget.
    let kernel_lines = ramd.log_events().into_iter().filter(|e| e["kernel_log"] == true).count();
    assert!(kernel_lines as u64 <= (seconds + 4) * 201, "{kernel_lines} kernel log lines");
}

/// Red team 8: `ramctl debug on` is a reload; refused (here: the policy
/// file was broken meanwhile), it changes neither the level nor any
/// program, and enforcement holds.
#[test]
fn a_refused_debug_on_changes_neither_the_level_nor_the_programs() {
    require_root();
    let scene = Scene::new("k-klogrefused", &[("allowed.registry.test", "127.10.0.1")], 300);
    let policy = scene.policy("", "[[allow]]\nhost = \"allowed.registry.test\"\n");
    let ramd = Ramd::start(&policy);
    let status = ramd.ramctl_json(&["status"]).expect("status");
    if status["kernel"]["events"] != "ring-buffer" {
        return;
    }
    let ids = |status: &serde_json::Value| -> Vec<u64> {
        status["targets"][0]["programs"].as_array().expect("programs").iter().filter_map(|p| p["id"].as_u64()).collect()
    };
    let before = ids(&status);
    ramd.write_policy(
        "[[target]]\nname = \"docker\"\ncgroup = \"/nonexistent/not/a/cgroup\"\n[[allow]]\ncidr = \"10.0.0.0/33\"\n",
    );
    let out = ramd.ramctl(&["debug", "on"]);
    assert!(!out.status.success(), "debug on with a broken policy must fail");
    let status = ramd.ramctl_json(&["status"]).expect("status");
    assert_eq!(status["kernel_log"], "off", "{status}");
    assert_eq!(ids(&status), before, "programs replaced by a refused reload");
    assert_eq!(ramd.ramctl_json(&["debug"]).expect("debug")["kernel_log"], "off");
    assert_eq!(scene.inside(&["connect", "127.10.0.2", "443"]), "EPERM");
    // Mended, it works.
    ramd.write_policy(&policy);
    let out = ramd.ramctl(&["debug", "on"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let status = ramd.ramctl_json(&["status"]).expect("status");
    assert_eq!(status["kernel_log"], "debug", "{status}");
    assert_ne!(ids(&status), before);
}

/// Red team 8: a label may hold any byte, and a name is what a process of
/// the cgroup asks for. In the kernel log it must not read as another name
/// (0xae with its top bit cleared is `.`: `ghcr\xaeio` showed as
/// ghcr.io) or as a line of the programs' own (spaces and colons).
#[test]
fn a_name_in_the_kernel_log_never_reads_as_another_name_or_line() {
    require_root();
    let scene = Scene::new("k-klogname", &[("allowed.registry.test", "127.10.0.1")], 300);
    let ramd = Ramd::start_with_args(
        &scene.policy("", "[[allow]]\nhost = \"allowed.registry.test\"\n"),
        &["--kernel-log", "debug"],
    );
    if ramd.ramctl_json(&["status"]).expect("status")["kernel_log"] != "debug" {
        return;
    }
    let spoof = scene.inside(&["raw-name-query", "127.0.0.53", "ghcr%AEio"]);
    assert!(spoof.starts_with("answer"), "{spoof}");
    let forged = ["ghcr", "io from ::ffff:127", "0", "0", "53: learned 2 address(es) --"];
    let mut args = vec!["raw-name-query", "127.0.0.53"];
    args.extend(forged);
    let line = scene.inside(&args);
    assert!(line.starts_with("answer"), "{line}");
    let lines = wait_for(Duration::from_secs(5), || {
        let lines: Vec<String> = ramd
            .log_events()
            .into_iter()
            .filter(|e| e["kernel_log"] == true)
            .filter_map(|e| e["message"].as_str().map(String::from))
            .filter(|m| m.contains("no rule of this target allows the name"))
            .collect();
        (lines.len() >= 2).then_some(lines)
    })
    .unwrap_or_else(|| panic!("no kernel lines for the two names:\n{}", ramd.log_text()));
    for line in &lines {
        println!("{line}");
        assert!(!line.starts_with("kernel: ghcr.io "), "shown as another name: {line}");
        assert!(!line.contains(": learned"), "shown as a line of the programs' own: {line}");
    }
}

/// Red team 8: a blocked line names its destination by the last DNS
/// answer that gave the address, and says to allow that name (so does
/// `ramctl suggest`). Whoever asked for that answer chose the name: a
/// process of another cgroup (here a build step's, below the runtime's)
/// resolving a name of its own zone to the address the runtime is refused
/// made the runtime's line, hint and suggestion name the attacker's name,
/// whose owner then points it anywhere once an admin allows it.
#[test]
fn a_blocked_attempt_is_never_named_by_another_cgroups_answer() {
    require_root();
    let records = [("registry.internal.test", "127.10.0.2"), ("mirror.attacker.test", "127.10.0.2")];
    let scene = Scene::new("k-hostname", &records, 300);
    let steps = scene.cgroup.child("steps");
    let ramd = Ramd::start(&scene.policy("", "[[allow]]\nhost = \"allowed.registry.test\"\n"));
    assert_eq!(
        probe(Some(&steps), Some(&scene.netns), &["resolve", "127.0.0.53", "mirror.attacker.test"]),
        "127.10.0.2"
    );
    ramd.wait_log("the attacker's answer", |e| e["message"] == "dns answer" && e["host"] == "mirror.attacker.test");
    // The runtime, configured with the registry's address, is refused.
    assert_eq!(scene.inside(&["connect", "127.10.0.2", "5000"]), "EPERM");
    let line = ramd.wait_log("the blocked line", |e| e["event"] == "blocked" && e["daddr"] == "127.10.0.2");
    println!("{line}");
    assert_ne!(line["host"], "mirror.attacker.test", "named by another cgroup's answer: {line}");
    assert!(!line["hint"].as_str().unwrap_or_default().contains("mirror.attacker.test"), "{line}");
    let suggest = ramd.ramctl(&["suggest"]);
    let suggested = String::from_utf8_lossy(&suggest.stdout);
    assert!(!suggested.contains("host = \"mirror.attacker.test\""), "{suggested}");
    // Its own answer still names it for the runtime.
    assert_eq!(scene.inside(&["resolve-connect", "127.0.0.53", "registry.internal.test", "5000"]), "127.10.0.2 EPERM");
    ramd.wait_log("the runtime's own name", |e| {
        e["event"] == "blocked" && e["daddr"] == "127.10.0.2" && e["host"] == "registry.internal.test"
    });
}

/// Red team 8: names up to 128 characters are learned, over UDP and TCP,
/// the same with the kernel log off and on (its lines copy the name into a
/// 128-byte buffer); one character more is never learned.
#[test]
fn names_of_128_characters_are_learned_with_the_kernel_log_off_and_on() {
    require_root();
    // A name of `len` characters under l.test, in labels of at most 63.
    let name = |len: usize, fill: char| {
        let suffix = ".l.test";
        let mut body = String::new();
        while body.len() < len - suffix.len() {
            if !body.is_empty() && body.len() % 50 == 49 {
                body.push('.');
            } else {
                body.push(fill);
            }
        }
        let name = format!("{body}{suffix}");
        assert_eq!(name.len(), len);
        name
    };
    let (n127, n128, n129) = (name(127, 'a'), name(128, 'b'), name(129, 'c'));
    let records = [(n127.as_str(), "127.10.0.1"), (n128.as_str(), "127.10.0.2"), (n129.as_str(), "127.10.0.3")];
    let scene = Scene::new("k-names128", &records, 300);
    let policy = scene.policy("", "[[allow]]\nhost = \"*.l.test\"\n");
    for level in ["off", "debug"] {
        let ramd = Ramd::start_with_args(&policy, &["--kernel-log", level]);
        for transport in ["udp", "tcp"] {
            let mut args = vec!["resolve-connect", "127.0.0.53", n127.as_str(), "5000"];
            if transport == "tcp" {
                args.push("tcp");
            }
            assert_eq!(scene.inside(&args), "127.10.0.1 ECONNREFUSED", "{transport}, log {level}");
            args[2] = n128.as_str();
            assert_eq!(scene.inside(&args), "127.10.0.2 ECONNREFUSED", "{transport}, log {level}");
            args[2] = n129.as_str();
            assert_eq!(scene.inside(&args), "127.10.0.3 EPERM", "{transport}, log {level}");
        }
        drop(ramd);
    }
}

/// Issue 13: from audit to enforce. In audit mode a pull's name outside the
/// policy is let through and logged as would_block; `ramctl suggest` turns
/// the attempt into a rule that `ramd --check-config` accepts, and with it
/// the same connect is allowed under enforce (refused without it).
#[test]
fn suggest_turns_audited_attempts_into_rules_that_allow_them() {
    require_root();
    let scene = Scene::new("k-suggest", &[("new.registry.test", "127.10.0.5")], 300);
    let rules = "[[allow]]\nhost = \"other.registry.test\"\n";
    let audit = format!("mode = \"audit\"\n{}", scene.policy("", rules));
    let ramd = Ramd::start(&audit);
    assert_eq!(scene.inside(&["resolve-connect", "127.0.0.53", "new.registry.test", "443"]), "127.10.0.5 ECONNREFUSED");
    ramd.wait_log("the would_block line", |e| e["event"] == "would_block" && e["host"] == "new.registry.test");
    let out = ramd.ramctl(&["suggest", "--since", "10m"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let fragment = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{fragment}");
    assert!(fragment.contains("host = \"new.registry.test\"\nports = [443]"), "{fragment}");
    // Enforce without the suggestion: refused.
    let enforce = scene.policy("", rules);
    ramd.write_policy(&enforce);
    assert!(ramd.ramctl(&["reload"]).status.success());
    assert_eq!(scene.inside(&["resolve-connect", "127.0.0.53", "new.registry.test", "443"]), "127.10.0.5 EPERM");
    // With it: checked, then allowed.
    let with = format!("{enforce}{fragment}");
    let file = scene.dir.write("suggested.toml", &with);
    let check = std::process::Command::new(bin("ramd")).arg("--check-config").arg(&file).output().expect("ramd");
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    ramd.write_policy(&with);
    assert!(ramd.ramctl(&["reload"]).status.success());
    assert_eq!(scene.inside(&["resolve-connect", "127.0.0.53", "new.registry.test", "443"]), "127.10.0.5 ECONNREFUSED");
}

/// RED 6 (found by the second red-team pass; a bypass until fixed). A held
/// container that can make a user namespace (seccomp=unconfined, as
/// rootless BuildKit asks for) gets CAP_NET_RAW over a network namespace
/// of its own, even with Docker's CAP_NET_RAW dropped, and forges the
/// answer there through AF_PACKET: no cgroup hook sees it. Container
/// targets used to trust a DNS socket in any namespace; now only in the
/// one its runtime made for it (the member entry's cookie), so the forged
/// answer teaches nothing.
#[test]
fn a_container_with_user_namespaces_forges_answers_in_a_namespace_of_its_own() {
    require_root();
    let netns = Netns::new("k-red2-uns");
    let data_root = TempDir::new("k-red2-uns-docker");
    let _parent = DockerParent::new();
    // A non-loopback trusted resolver, as the host's nameserver (or
    // Docker's fallback 8.8.8.8) is for a container target.
    let policy = format!(
        "[dns]\nresolvers = [\"127.0.0.53\", \"10.77.0.53\"]\n{}[[target]]\nname = \"jobs\"\ncontainers = \"docker\"\nimage = \"ram-test/job*\"\n[[allow]]\nhost = \"registry.test\"\n",
        netns.dns_trust()
    );
    let root = data_root.path.display().to_string();
    let ramd = Ramd::start_with_env(&policy, &[("RAM_DOCKER_ROOT", root.as_str())]);
    ramd.wait_attached();
    let container = fake_container(&netns, &data_root.path, "ram-test/job:1", 7102);
    // A listener the container must not reach (ECONNREFUSED: reached).
    assert_eq!(probe(Some(&container.cgroup), Some(&netns), &["connect", "127.30.0.9", "9"]), "EPERM");
    let out = probe(
        Some(&container.cgroup),
        Some(&netns),
        &["userns-packet-forge", "10.77.0.53", "registry.test", "127.30.0.9", "9", "10.77.0.2"],
    );
    println!("userns forge: {out}");
    println!("{}", ramd.log_text());
    assert!(!out.ends_with("ECONNREFUSED"), "BYPASS: {out}");
}

// The third red-team pass: the network namespace a container's DNS is
// trusted in.

/// A bind mount of a namespace file, unmounted (and removed) on drop.
struct NetnsFileMount(PathBuf);

impl NetnsFileMount {
    fn bind(source: &Path, at: PathBuf) -> Self {
        std::fs::write(&at, "").expect("mount point");
        run(std::process::Command::new("mount").arg("--bind").arg(source).arg(&at));
        NetnsFileMount(at)
    }
}

impl Drop for NetnsFileMount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A DNS server at 127.0.0.11:53 in `netns` (dockerd's embedded DNS, or
/// a container playing it), answering registry.test with `ip`, placed in
/// `cgroup` (None: the test's own).
fn dns_at_127_0_0_11(netns: &Netns, cgroup: Option<&Path>, ip: &str) -> Proc {
    let mut cmd = std::process::Command::new(probe_bin());
    cmd.args(["serve-dns", "127.0.0.11", "60", &format!("registry.test={ip}")]).stdout(std::process::Stdio::null());
    place(&mut cmd, cgroup, Some(netns));
    let dns = Proc::spawn("dns-127.0.0.11", &mut cmd);
    let up = wait_for(Duration::from_secs(10), || {
        let v = probe(None, Some(netns), &["resolve", "127.0.0.11", "registry.test"]);
        (v == ip).then_some(v)
    });
    assert!(up.is_some(), "the DNS server at 127.0.0.11 does not answer");
    dns
}

/// A process that stays in `cgroup` (and `netns`) until dropped.
fn container_process(cgroup: &Path, netns: Option<&Netns>) -> Proc {
    let mut cmd = std::process::Command::new(probe_bin());
    cmd.args(["hold", "600"]).stdout(std::process::Stdio::null());
    place(&mut cmd, Some(cgroup), netns);
    Proc::spawn("container-process", &mut cmd)
}

/// RED 7 (legit refused until fixed). runc puts `runc init` into the container's cgroup
/// (manager.Apply(pid), or systemd's scope with PIDs=[pid]) while it is
/// still in the host's namespaces, and only then does nsexec setns/unshare
/// into the container's network namespace. dockerd keeps a file of the
/// host's namespace (`/var/run/docker/netns/default`) once any
/// `--network host` container has run. When ramd's 50 ms scan falls into
/// that window, before dockerd has checkpointed the SandboxKey,
/// runtime_netns_of matches the host's namespace, ramd writes its cookie,
/// and the container counts as settled: the record is never read again, so
/// its real namespace never teaches.
#[test]
fn runc_init_seen_in_the_hosts_namespace_does_not_pin_the_wrong_namespace() {
    require_root();
    let netns = Netns::new("k-red3-init");
    let data_root = TempDir::new("k-red3-init-docker");
    let files = TempDir::new("k-red3-init-files");
    let _parent = DockerParent::new();
    let _dns = dns_at_127_0_0_11(&netns, None, "127.20.0.5");
    let _default = NetnsFileMount::bind(Path::new("/proc/self/ns/net"), files.path.join("default"));
    let _sandbox = NetnsFileMount::bind(&netns.file(), files.path.join("0123456789ab"));
    let policy = red_policy(&netns, "[[allow]]\nhost = \"registry.test\"\n");
    let root = data_root.path.display().to_string();
    let files_text = files.path.display().to_string();
    let ramd =
        Ramd::start_with_env(&policy, &[("RAM_DOCKER_ROOT", root.as_str()), ("RAM_DOCKER_NETNS", files_text.as_str())]);
    ramd.wait_attached();
    // The cgroup, and runc init (stage 0) in it, still in the host's namespace.
    let container = fake_container_in(None, &data_root.path, "ram-test/job:1", 7301);
    let stage0 = container_process(&container.cgroup.path, None);
    ramd.wait_log("the container enforced", |e| e["message"] == "enforcing container");
    sleep(Duration::from_millis(300));
    // nsexec is in the container's namespace; stage 0 exits; dockerd
    // checkpoints the record with the sandbox's key.
    let init = container_process(&container.cgroup.path, Some(&netns));
    drop(stage0);
    let record = data_root.path.join("containers").join(&container.id).join("config.v2.json");
    let text = std::fs::read_to_string(&record).expect("record");
    let key = files.path.join("0123456789ab");
    let text = format!(
        "{},\"NetworkSettings\":{{\"SandboxKey\":\"{}\"}}}}",
        text.trim_end().strip_suffix('}').expect("a JSON object"),
        key.display()
    );
    std::fs::write(&record, text).expect("checkpoint");
    let (learned, last) = learns_registry(&container.cgroup, &netns, 8);
    drop(init);
    assert!(
        learned,
        "REFUSED LEGIT: ramd pinned the host's namespace seen while runc init was in the cgroup ({last}):\n{}",
        ramd.log_text()
    );
}

/// RED 8 (bypass until fixed). `docker run --network container:B A`: A
/// (held) has no namespace of its own; its processes are in B's, which
/// dockerd keeps a file of. B is a container no target holds (let go:
/// unjudged), and egress refuses sends from a resolver's address and port
/// 53 only for judged sockets: B answers as the resolver (here it owns
/// 127.0.0.11:53; in real Docker it can bind 127.0.0.11:53, which dockerd's
/// DNAT leaves free, and spray the ids, or sniff with CAP_NET_RAW), and A
/// would learn an address of B's choosing. ramd reads A's NetworkMode
/// (hostconfig.json): a namespace an unjudged container uses teaches
/// nothing. And the other way round: a container that joins a held
/// container's namespace is judged with it, whatever its image.
#[test]
fn a_namespace_shared_with_an_unjudged_container_teaches_nothing_and_joiners_are_judged() {
    require_root();
    let netns = Netns::new("k-red-share");
    let data_root = TempDir::new("k-red-share-docker");
    let files = TempDir::new("k-red-share-files");
    let _parent = DockerParent::new();
    let _sandbox = NetnsFileMount::bind(&netns.file(), files.path.join("0123456789ab"));
    let policy = red_policy(&netns, "[[allow]]\nhost = \"registry.test\"\n");
    let root = data_root.path.display().to_string();
    let files_text = files.path.display().to_string();
    let ramd =
        Ramd::start_with_env(&policy, &[("RAM_DOCKER_ROOT", root.as_str()), ("RAM_DOCKER_NETNS", files_text.as_str())]);
    ramd.wait_attached();
    // B: an image no target wants; let go, then it answers DNS in its namespace.
    let b = fake_container(&netns, &data_root.path, "ram-test/other:1", 7302);
    let released = wait_for(Duration::from_secs(5), || {
        let v = probe(Some(&b.cgroup), Some(&netns), &["connect", "127.30.0.1", "9"]);
        (v == "ECONNREFUSED").then_some(v)
    });
    assert!(released.is_some(), "B was not let go");
    let _evil = dns_at_127_0_0_11(&netns, Some(&b.cgroup.path), "127.30.0.9");
    // A: --network container:B, held.
    let a = fake_container_with(None, &format!("container:{}", b.id), &data_root.path, "ram-test/job:1", 7303);
    let _a_init = container_process(&a.cgroup.path, Some(&netns));
    ramd.wait_log("A enforced", |e| e["message"] == "enforcing container");
    assert_eq!(probe(Some(&a.cgroup), Some(&netns), &["connect", "127.30.0.9", "9"]), "EPERM");
    for _ in 0..2 {
        let out = resolve_registry(&a.cgroup, &netns);
        assert_ne!(out, "127.30.0.9 ECONNREFUSED", "BYPASS: B's answer taught A an off-policy address");
    }
    ramd.wait_log("the warning", |e| {
        e["message"].as_str().is_some_and(|m| m.contains("network namespace of a container no container target holds"))
    });
    // A namespace a held container owns: D (held, its own namespace) and
    // E, an image no target wants, --network container:D: judged with D.
    let netns2 = Netns::new("k-red-share2");
    let _sandbox2 = NetnsFileMount::bind(&netns2.file(), files.path.join("0123456789ac"));
    let d = fake_container(&netns2, &data_root.path, "ram-test/job:2", 7306);
    let _d_init = container_process(&d.cgroup.path, Some(&netns2));
    let e = fake_container_with(None, &format!("container:{}", d.id), &data_root.path, "ram-test/other:2", 7307);
    let _e_init = container_process(&e.cgroup.path, Some(&netns2));
    ramd.wait_log("E judged with D", |l| l["message"] == "enforcing container" && l["container"] == "ram-test-7307");
    assert_eq!(
        probe(Some(&e.cgroup), Some(&netns2), &["connect", "127.30.0.1", "9"]),
        "EPERM",
        "a container in a held container's namespace went unjudged"
    );
}

/// RED 9 (legit refused until fixed). A container that nests its own cgroups moves
/// every process out of its container cgroup into a child (docker:dind's
/// entrypoint does, under cgroup v2: `/sys/fs/cgroup/init`; so do systemd
/// and buildkitd in a private cgroup namespace). With no SandboxKey in its
/// record (`--network container:X`), ramd looks only at the container
/// cgroup's own cgroup.procs, finds none, and the container never learns.
#[test]
fn a_container_whose_processes_live_in_a_child_cgroup_learns() {
    require_root();
    let netns = Netns::new("k-red3-nest");
    let data_root = TempDir::new("k-red3-nest-docker");
    let files = TempDir::new("k-red3-nest-files");
    let _parent = DockerParent::new();
    let _dns = dns_at_127_0_0_11(&netns, None, "127.20.0.5");
    let _sandbox = NetnsFileMount::bind(&netns.file(), files.path.join("0123456789ab"));
    let policy = red_policy(&netns, "[[allow]]\nhost = \"registry.test\"\n");
    let root = data_root.path.display().to_string();
    let files_text = files.path.display().to_string();
    let ramd =
        Ramd::start_with_env(&policy, &[("RAM_DOCKER_ROOT", root.as_str()), ("RAM_DOCKER_NETNS", files_text.as_str())]);
    ramd.wait_attached();
    let container = fake_container_in(None, &data_root.path, "ram-test/job:1", 7304);
    let init = container.cgroup.child("init");
    let _pid1 = container_process(&init.path, Some(&netns));
    ramd.wait_log("the container enforced", |e| e["message"] == "enforcing container");
    let (learned, last) = learns_registry(&init, &netns, 6);
    assert!(learned, "REFUSED LEGIT: a nested container never learns ({last}):\n{}", ramd.log_text());
}

/// RED 10 (expected to hold). `docker restart`: the new run's cgroup
/// appears while the record still names the previous run's SandboxKey,
/// which libnetwork has unmounted but whose file its garbage collector
/// removes only later (an empty regular file). ramd must not take that
/// file for a namespace; the processes, in the new kept namespace, tell.
#[test]
fn a_restarted_container_with_a_stale_sandbox_key_learns() {
    require_root();
    let netns = Netns::new("k-red3-stale");
    let data_root = TempDir::new("k-red3-stale-docker");
    let files = TempDir::new("k-red3-stale-files");
    let _parent = DockerParent::new();
    let _dns = dns_at_127_0_0_11(&netns, None, "127.20.0.5");
    let _sandbox = NetnsFileMount::bind(&netns.file(), files.path.join("0123456789ab"));
    let stale = files.path.join("fedcba987654");
    std::fs::write(&stale, "").expect("stale key");
    let policy = red_policy(&netns, "[[allow]]\nhost = \"registry.test\"\n");
    let root = data_root.path.display().to_string();
    let files_text = files.path.display().to_string();
    let ramd =
        Ramd::start_with_env(&policy, &[("RAM_DOCKER_ROOT", root.as_str()), ("RAM_DOCKER_NETNS", files_text.as_str())]);
    ramd.wait_attached();
    // Its record appears only once it names the stale key (written after
    // the cgroup, ramd could read the record without it in between: flaky
    // under load).
    let (container, record, text) =
        fake_container_recorded(None, "default", &data_root.path, "ram-test/job:1", 7305, false);
    let text = format!(
        "{},\"NetworkSettings\":{{\"SandboxKey\":\"{}\"}}}}",
        text.trim_end().strip_suffix('}').expect("a JSON object"),
        stale.display()
    );
    std::fs::write(&record, text).expect("stale record");
    let _init = container_process(&container.cgroup.path, Some(&netns));
    let (learned, last) = learns_registry(&container.cgroup, &netns, 8);
    let _ = std::fs::remove_file(&stale);
    assert!(
        learned,
        "REFUSED LEGIT: a stale SandboxKey file kept the container from learning ({last}):\n{}",
        ramd.log_text()
    );
}

// The fourth red-team pass: trust decided once, peers that change.

/// Two container targets: "jobs" (ram-test/job*) and, when `sidecars`,
/// "sidecars" (ram-test/side*); both allow registry.test.
fn two_container_targets(netns: &Netns, sidecars: bool) -> String {
    let mut text = format!(
        "[dns]\nresolvers = [\"127.0.0.53\"]\n{}[[target]]\nname = \"jobs\"\ncontainers = \"docker\"\nimage = \"ram-test/job*\"\n",
        netns.dns_trust()
    );
    if sidecars {
        text += "[[target]]\nname = \"sidecars\"\ncontainers = \"docker\"\nimage = \"ram-test/side*\"\n";
    }
    text + "[[allow]]\nhost = \"registry.test\"\n"
}

/// RED 11 (a bypass until fixed). `docker run --network container:H J`: H is
/// held by "sidecars", J by "jobs"; J trusts H's namespace (H is judged)
/// and is settled. A reload drops "sidecars": H is let go (unjudged) but J
/// keeps its target, so it is never decided again and keeps trusting the
/// namespace it shares with a now-unjudged container, which answers as the
/// resolver there.
#[test]
fn a_peer_let_go_by_a_reload_no_longer_teaches_its_joiner() {
    require_root();
    let netns = Netns::new("k-red4-reload");
    let data_root = TempDir::new("k-red4-reload-docker");
    let files = TempDir::new("k-red4-reload-files");
    let _parent = DockerParent::new();
    let _sandbox = NetnsFileMount::bind(&netns.file(), files.path.join("0123456789ab"));
    let root = data_root.path.display().to_string();
    let files_text = files.path.display().to_string();
    let ramd = Ramd::start_with_env(
        &two_container_targets(&netns, true),
        &[("RAM_DOCKER_ROOT", root.as_str()), ("RAM_DOCKER_NETNS", files_text.as_str())],
    );
    ramd.wait_attached();
    let h = fake_container(&netns, &data_root.path, "ram-test/side:1", 7401);
    let _h_init = container_process(&h.cgroup.path, Some(&netns));
    let held = wait_for(Duration::from_secs(5), || {
        (ramd.log_text().matches("enforcing container").count() >= 1).then_some(())
    });
    assert!(held.is_some(), "H not enforced:\n{}", ramd.log_text());
    let j = fake_container_with(None, &format!("container:{}", h.id), &data_root.path, "ram-test/job:1", 7402);
    let _j_init = container_process(&j.cgroup.path, Some(&netns));
    let both = wait_for(Duration::from_secs(5), || {
        (ramd.log_text().matches("enforcing container").count() >= 2).then_some(())
    });
    assert!(both.is_some(), "J not enforced:\n{}", ramd.log_text());
    sleep(Duration::from_millis(300));
    assert_eq!(probe(Some(&h.cgroup), Some(&netns), &["connect", "127.30.0.1", "9"]), "EPERM");
    // The reload: "sidecars" is gone, H matches no target.
    ramd.write_policy(&two_container_targets(&netns, false));
    let out = ramd.ramctl(&["reload"]);
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stderr), ramd.log_text());
    let released = wait_for(Duration::from_secs(5), || {
        let v = probe(Some(&h.cgroup), Some(&netns), &["connect", "127.30.0.1", "9"]);
        (v == "ECONNREFUSED").then_some(v)
    });
    assert!(released.is_some(), "H was not let go:\n{}", ramd.log_text());
    // H, unjudged, answers as the resolver in the namespace J trusts.
    let _evil = dns_at_127_0_0_11(&netns, Some(&h.cgroup.path), "127.30.0.9");
    assert_eq!(probe(Some(&j.cgroup), Some(&netns), &["connect", "127.30.0.9", "9"]), "EPERM");
    let mut outs = Vec::new();
    for _ in 0..2 {
        outs.push(resolve_registry(&j.cgroup, &netns));
    }
    assert!(
        !outs.iter().any(|o| o == "127.30.0.9 ECONNREFUSED"),
        "BYPASS: H, let go by a reload, taught J an off-policy address ({outs:?}):\n{}",
        ramd.log_text()
    );
}

/// Renames a fake container as `docker rename` does: its record's Name.
fn docker_rename(data_root: &Path, container: &FakeContainer, name: &str) {
    let record = data_root.join("containers").join(&container.id).join("config.v2.json");
    let text = std::fs::read_to_string(&record).expect("record");
    let mut value: serde_json::Value = serde_json::from_str(&text).expect("record json");
    value["Name"] = serde_json::Value::String(format!("/{name}"));
    std::fs::write(&record, value.to_string()).expect("rename");
}

/// RED 12 (bypass if it fails). ramd reads a container's name once, when it
/// decides it, and `peer()` matches `--network container:NAME` against
/// those names. R (unjudged) was "web"; `docker rename R old-web; docker
/// rename H web` (H held). `docker run --network container:web J`: dockerd
/// puts J in H's namespace, ramd finds R under "web" and lets J go. J,
/// unjudged in the namespace H trusts, answers as the resolver there.
#[test]
fn a_renamed_peer_is_not_taken_for_its_old_name() {
    require_root();
    let netns = Netns::new("k-red4-rename");
    let data_root = TempDir::new("k-red4-rename-docker");
    let files = TempDir::new("k-red4-rename-files");
    let _parent = DockerParent::new();
    let _sandbox = NetnsFileMount::bind(&netns.file(), files.path.join("0123456789ab"));
    let root = data_root.path.display().to_string();
    let files_text = files.path.display().to_string();
    let ramd = Ramd::start_with_env(
        &two_container_targets(&netns, false),
        &[("RAM_DOCKER_ROOT", root.as_str()), ("RAM_DOCKER_NETNS", files_text.as_str())],
    );
    ramd.wait_attached();
    // R: no target wants it ("ram-test-7411" plays "web").
    let r = fake_container_in(None, &data_root.path, "ram-test/other:1", 7411);
    let released = wait_for(Duration::from_secs(5), || {
        let v = probe(Some(&r.cgroup), None, &["connect", "127.30.0.1", "9"]);
        (v == "ECONNREFUSED").then_some(v)
    });
    assert!(released.is_some(), "R was not let go");
    // H: held by "jobs", in its own namespace (recorded).
    let h = fake_container(&netns, &data_root.path, "ram-test/job:1", 7412);
    let _h_init = container_process(&h.cgroup.path, Some(&netns));
    ramd.wait_log("H enforced", |e| e["message"] == "enforcing container");
    sleep(Duration::from_millis(300));
    // docker rename R old-web; docker rename H web.
    docker_rename(&data_root.path, &r, "old-web");
    docker_rename(&data_root.path, &h, "ram-test-7411");
    // J: --network container:<H's name now>; dockerd puts it in H's namespace.
    let j = fake_container_with(None, "container:ram-test-7411", &data_root.path, "ram-test/other:2", 7413);
    let _j_init = container_process(&j.cgroup.path, Some(&netns));
    sleep(Duration::from_millis(500));
    let j_out = probe(Some(&j.cgroup), Some(&netns), &["connect", "127.30.0.1", "9"]);
    // J tries to answer as the resolver in H's namespace (judged, its
    // answers go nowhere: no check that it is up).
    let mut cmd = std::process::Command::new(probe_bin());
    cmd.args(["serve-dns", "127.0.0.11", "60", "registry.test=127.30.0.9"]).stdout(std::process::Stdio::null());
    place(&mut cmd, Some(&j.cgroup.path), Some(&netns));
    let _evil = Proc::spawn("evil-dns", &mut cmd);
    sleep(Duration::from_millis(300));
    let mut outs = Vec::new();
    for _ in 0..2 {
        outs.push(resolve_registry(&h.cgroup, &netns));
    }
    assert!(
        !outs.iter().any(|o| o == "127.30.0.9 ECONNREFUSED"),
        "BYPASS: J (connect: {j_out}), let go as the old \"web\", taught H an off-policy address ({outs:?}):\n{}",
        ramd.log_text()
    );
    assert_eq!(j_out, "EPERM", "J, in a held container's namespace, went unjudged:\n{}", ramd.log_text());
}

/// RED 13 (legit refused if it fails). The other way round from RED 11:
/// H is let go, J (held by "jobs", --network container:H) learns nothing
/// (settled). A reload adds "sidecars", which now holds H: H's namespace
/// is judged, and J should learn there; it is never decided again.
#[test]
fn a_peer_held_after_a_reload_teaches_its_joiner() {
    require_root();
    let netns = Netns::new("k-red4-later");
    let data_root = TempDir::new("k-red4-later-docker");
    let files = TempDir::new("k-red4-later-files");
    let _parent = DockerParent::new();
    let _sandbox = NetnsFileMount::bind(&netns.file(), files.path.join("0123456789ab"));
    let root = data_root.path.display().to_string();
    let files_text = files.path.display().to_string();
    let ramd = Ramd::start_with_env(
        &two_container_targets(&netns, false),
        &[("RAM_DOCKER_ROOT", root.as_str()), ("RAM_DOCKER_NETNS", files_text.as_str())],
    );
    ramd.wait_attached();
    let h = fake_container(&netns, &data_root.path, "ram-test/side:1", 7421);
    let released = wait_for(Duration::from_secs(5), || {
        let v = probe(Some(&h.cgroup), Some(&netns), &["connect", "127.30.0.1", "9"]);
        (v == "ECONNREFUSED").then_some(v)
    });
    assert!(released.is_some(), "H was not let go");
    let j = fake_container_with(None, &format!("container:{}", h.id), &data_root.path, "ram-test/job:1", 7422);
    let _j_init = container_process(&j.cgroup.path, Some(&netns));
    ramd.wait_log("the warning", |e| {
        e["message"].as_str().is_some_and(|m| m.contains("network namespace of a container no container target holds"))
    });
    ramd.write_policy(&two_container_targets(&netns, true));
    let out = ramd.ramctl(&["reload"]);
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stderr), ramd.log_text());
    let held = wait_for(Duration::from_secs(5), || {
        let v = probe(Some(&h.cgroup), Some(&netns), &["connect", "127.30.0.1", "9"]);
        (v == "EPERM").then_some(v)
    });
    assert!(held.is_some(), "H was not held after the reload:\n{}", ramd.log_text());
    // The resolver: dockerd's embedded DNS (the test's own process).
    let _dns = dns_at_127_0_0_11(&netns, None, "127.20.0.5");
    let (learned, last) = learns_registry(&j.cgroup, &netns, 6);
    assert!(learned, "REFUSED LEGIT: J never learns once its peer is held ({last}):\n{}", ramd.log_text());
}

// The fifth red-team pass: joiners decided by the namespace their
// processes are in.

/// H, held by "jobs" in its own recorded namespace, with the trusted
/// resolver (the test's own process) at 127.0.0.11 there.
fn held_owner(netns: &Netns, data_root: &Path, tag: u64, image: &str) -> (FakeContainer, Proc) {
    let h = fake_container(netns, data_root, image, tag);
    let init = container_process(&h.cgroup.path, Some(netns));
    (h, init)
}

/// RED 14 (legit refused if it fails). `docker compose` with two services
/// `network_mode: service:web` (or two `docker run --network container:H`
/// in quick succession): a joiner is decided only when every other
/// container is decided, and each joiner waits for the other: neither is
/// ever decided, both stay held closed (pending, no namespace: their DNS
/// answers are dropped) for as long as they run.
#[test]
fn two_joiners_starting_together_are_decided() {
    require_root();
    let netns = Netns::new("k-red5-pair");
    let data_root = TempDir::new("k-red5-pair-docker");
    let files = TempDir::new("k-red5-pair-files");
    let _parent = DockerParent::new();
    let _sandbox = NetnsFileMount::bind(&netns.file(), files.path.join("0123456789ab"));
    let root = data_root.path.display().to_string();
    let files_text = files.path.display().to_string();
    let ramd = Ramd::start_with_env(
        &two_container_targets(&netns, false),
        &[("RAM_DOCKER_ROOT", root.as_str()), ("RAM_DOCKER_NETNS", files_text.as_str())],
    );
    ramd.wait_attached();
    let (h, _h_init) = held_owner(&netns, &data_root.path, 7501, "ram-test/job:1");
    ramd.wait_log("H enforced", |e| e["message"] == "enforcing container");
    let _dns = dns_at_127_0_0_11(&netns, None, "127.20.0.5");
    // Both joiners' cgroups appear within one 50 ms tick.
    let j1 = fake_container_with(None, &format!("container:{}", h.id), &data_root.path, "ram-test/job:2", 7502);
    let j2 = fake_container_with(None, &format!("container:{}", h.id), &data_root.path, "ram-test/job:3", 7503);
    let _j1_init = container_process(&j1.cgroup.path, Some(&netns));
    let _j2_init = container_process(&j2.cgroup.path, Some(&netns));
    let (learned, last) = learns_registry(&j1.cgroup, &netns, 8);
    assert!(
        learned,
        "REFUSED LEGIT / DoS: two joiners of one namespace wait for each other forever ({last}):\n{}",
        ramd.log_text()
    );
}

/// RED 15 (bypass if it fails). As RED 11, across a restart of ramd instead
/// of a reload (an upgrade, `systemctl restart ramd`, a policy edited
/// while ramd was down): H (held by "sidecars") owns the namespace J1 and
/// J2 (held by "jobs", `--network container:H`) trust. ramd restarts
/// without "sidecars": H is let go. ramd starts with no container known,
/// so J1 and J2 each wait for the other to be decided, forever, and their
/// pinned member entries keep trusting H's namespace cookie. H, unjudged,
/// answers as the resolver there.
#[test]
fn a_peer_let_go_across_a_restart_no_longer_teaches_two_joiners() {
    require_root();
    let netns = Netns::new("k-red5-restart");
    let data_root = TempDir::new("k-red5-restart-docker");
    let files = TempDir::new("k-red5-restart-files");
    let _parent = DockerParent::new();
    let _sandbox = NetnsFileMount::bind(&netns.file(), files.path.join("0123456789ab"));
    let root = data_root.path.display().to_string();
    let files_text = files.path.display().to_string();
    let mut ramd = Ramd::start_with_env(
        &two_container_targets(&netns, true),
        &[("RAM_DOCKER_ROOT", root.as_str()), ("RAM_DOCKER_NETNS", files_text.as_str())],
    );
    ramd.wait_attached();
    let (h, _h_init) = held_owner(&netns, &data_root.path, 7511, "ram-test/side:1");
    ramd.wait_log("H enforced", |e| e["message"] == "enforcing container");
    sleep(Duration::from_millis(200));
    let j1 = fake_container_with(None, &format!("container:{}", h.id), &data_root.path, "ram-test/job:1", 7512);
    let _j1_init = container_process(&j1.cgroup.path, Some(&netns));
    let both = wait_for(Duration::from_secs(5), || {
        (ramd.log_text().matches("enforcing container").count() >= 2).then_some(())
    });
    assert!(both.is_some(), "J1 not enforced:\n{}", ramd.log_text());
    sleep(Duration::from_millis(200));
    let j2 = fake_container_with(None, &format!("container:{}", h.id), &data_root.path, "ram-test/job:2", 7513);
    let _j2_init = container_process(&j2.cgroup.path, Some(&netns));
    let all = wait_for(Duration::from_secs(5), || {
        (ramd.log_text().matches("enforcing container").count() >= 3).then_some(())
    });
    assert!(all.is_some(), "J2 not enforced:\n{}", ramd.log_text());
    sleep(Duration::from_millis(300));
    // A resolver H does not control: J1 learns (its namespace is trusted).
    {
        let _dns = dns_at_127_0_0_11(&netns, None, "127.20.0.5");
        let (learned, last) = learns_registry(&j1.cgroup, &netns, 6);
        assert!(learned, "J1 did not learn before the restart ({last}):\n{}", ramd.log_text());
    }
    // ramd restarts without "sidecars".
    ramd.write_policy(&two_container_targets(&netns, false));
    ramd.restart();
    let released = wait_for(Duration::from_secs(5), || {
        let v = probe(Some(&h.cgroup), Some(&netns), &["connect", "127.30.0.1", "9"]);
        (v == "ECONNREFUSED").then_some(v)
    });
    assert!(released.is_some(), "H was not let go:\n{}", ramd.log_text());
    sleep(Duration::from_millis(500));
    let _evil = dns_at_127_0_0_11(&netns, Some(&h.cgroup.path), "127.30.0.9");
    let before = probe(Some(&j1.cgroup), Some(&netns), &["connect", "127.30.0.9", "9"]);
    let mut outs = Vec::new();
    for _ in 0..2 {
        outs.push(resolve_registry(&j1.cgroup, &netns));
    }
    assert_eq!(before, "EPERM", "J1 unjudged after the restart:\n{}", ramd.log_text());
    assert!(
        !outs.iter().any(|o| o == "127.30.0.9 ECONNREFUSED"),
        "BYPASS: H, let go across a restart, taught J1 an off-policy address ({outs:?}):\n{}",
        ramd.log_text()
    );
}

/// RED 16 (legit refused if it fails). A joiner that runs nested containers
/// of its own (docker:dind, a buildkitd running RUN steps: each in a
/// namespace of its own) is decided while only its first process runs; a
/// reload then decides every joiner again, and now its processes are in
/// two namespaces (`Several`): it is never decided again and learns
/// nothing for as long as it runs (its DNS answers are dropped). Its
/// nested namespace's processes are not its DNS: the namespace its
/// runtime put it in is still known (H's).
#[test]
fn a_joiner_with_a_nested_namespace_learns_after_a_reload() {
    require_root();
    let netns = Netns::new("k-red5-nest");
    let nested = Netns::new("k-red5-nest2");
    let data_root = TempDir::new("k-red5-nest-docker");
    let files = TempDir::new("k-red5-nest-files");
    let _parent = DockerParent::new();
    let _sandbox = NetnsFileMount::bind(&netns.file(), files.path.join("0123456789ab"));
    let root = data_root.path.display().to_string();
    let files_text = files.path.display().to_string();
    let ramd = Ramd::start_with_env(
        &two_container_targets(&netns, false),
        &[("RAM_DOCKER_ROOT", root.as_str()), ("RAM_DOCKER_NETNS", files_text.as_str())],
    );
    ramd.wait_attached();
    let (h, _h_init) = held_owner(&netns, &data_root.path, 7521, "ram-test/job:1");
    ramd.wait_log("H enforced", |e| e["message"] == "enforcing container");
    sleep(Duration::from_millis(200));
    let j = fake_container_with(None, &format!("container:{}", h.id), &data_root.path, "ram-test/job:2", 7522);
    let _j_init = container_process(&j.cgroup.path, Some(&netns));
    let both = wait_for(Duration::from_secs(5), || {
        (ramd.log_text().matches("enforcing container").count() >= 2).then_some(())
    });
    assert!(both.is_some(), "J not enforced:\n{}", ramd.log_text());
    let _dns = dns_at_127_0_0_11(&netns, None, "127.20.0.5");
    let (learned, last) = learns_registry(&j.cgroup, &netns, 6);
    assert!(learned, "J did not learn before its nested container ({last}):\n{}", ramd.log_text());
    // A nested container (a RUN step) in a namespace of its own, in J's cgroup tree.
    let step = j.cgroup.child("step");
    let _step = container_process(&step.path, Some(&nested));
    sleep(Duration::from_millis(200));
    let out = ramd.ramctl(&["reload"]);
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stderr), ramd.log_text());
    sleep(Duration::from_millis(500));
    let (relearned, last) = learns_registry(&j.cgroup, &netns, 8);
    drop(_step);
    assert!(
        relearned,
        "REFUSED LEGIT: a joiner running a nested namespace never learns after a reload ({last}):\n{}",
        ramd.log_text()
    );
}

/// From the sixth red-team pass: a container whose hostconfig.json
/// (NetworkMode) cannot be read is not taken to have a namespace of its
/// own (a `--network container:` joiner would then be placed by guesswork):
/// it stays held closed, whatever its image, until dockerd's file is there.
#[test]
fn a_container_whose_network_mode_cannot_be_read_stays_held() {
    require_root();
    let netns = Netns::new("k-red6-hostcfg");
    let data_root = TempDir::new("k-red6-hostcfg-docker");
    let _parent = DockerParent::new();
    let policy = red_policy(&netns, "[[allow]]\nhost = \"registry.test\"\n");
    let root = data_root.path.display().to_string();
    let ramd = Ramd::start_with_env(&policy, &[("RAM_DOCKER_ROOT", root.as_str())]);
    ramd.wait_attached();
    let container = fake_container_with(Some(&netns), "", &data_root.path, "ram-test/other:1", 7601);
    for _ in 0..3 {
        sleep(Duration::from_millis(200));
        let verdict = probe(Some(&container.cgroup), Some(&netns), &["connect", "127.30.0.1", "9"]);
        assert_eq!(verdict, "EPERM", "not held closed without its NetworkMode");
    }
    let host_config = data_root.path.join("containers").join(&container.id).join("hostconfig.json");
    std::fs::write(&host_config, r#"{"NetworkMode":"default"}"#).expect("hostconfig");
    let released = wait_for(Duration::from_secs(10), || {
        let v = probe(Some(&container.cgroup), Some(&netns), &["connect", "127.30.0.1", "9"]);
        (v == "ECONNREFUSED").then_some(v)
    });
    assert!(released.is_some(), "never let go once its NetworkMode could be read:\n{}", ramd.log_text());
}

/// RED 17 (found by the seventh red-team pass; a bypass until fixed). A restarted ramd resets the entries it finds
/// pinned (pending, no namespace) only in its first `sync_containers`,
/// after it has attached the new policy's programs and written its rules
/// (and after the container watch's BTF read). Meanwhile an entry keeps
/// the previous run's scope number, which under the new policy may be
/// another target's: a container the old policy held under "jobs"
/// (scope 0) is judged by the new scope 0, "wide", which allows
/// 127.30.0.0/24.
///
/// Closed: targets keep their scope numbers across runs, by name (ramd
/// keeps them in its run directory), so "jobs" stays scope 0 and "wide"
/// takes a number nobody had; the previous run's programs read jobs' own
/// new rules until the new ones attach.
#[test]
fn a_restart_never_judges_a_container_by_another_targets_rules() {
    require_root();
    let netns = Netns::new("k-red7-renum");
    let data_root = TempDir::new("k-red7-renum-docker");
    let files = TempDir::new("k-red7-renum-files");
    let out = TempDir::new("k-red7-renum-out");
    let _parent = DockerParent::new();
    let _sandbox = NetnsFileMount::bind(&netns.file(), files.path.join("0123456789ab"));
    let root = data_root.path.display().to_string();
    let files_text = files.path.display().to_string();
    let jobs = "[[target]]\nname = \"jobs\"\ncontainers = \"docker\"\nimage = \"ram-test/job*\"\n[[target.allow]]\nhost = \"registry.test\"\n";
    let wide = "[[target]]\nname = \"wide\"\ncontainers = \"docker\"\nimage = \"ram-test/wide*\"\n[[target.allow]]\ncidr = \"127.30.0.0/24\"\n";
    let head = format!("[dns]\nresolvers = [\"127.0.0.53\"]\n{}", netns.dns_trust());
    let mut ramd = Ramd::start_with_env(
        &format!("{head}{jobs}"),
        &[("RAM_DOCKER_ROOT", root.as_str()), ("RAM_DOCKER_NETNS", files_text.as_str())],
    );
    ramd.wait_attached();
    let (c, _c_init) = held_owner(&netns, &data_root.path, 7731, "ram-test/job:1");
    ramd.wait_log("C enforced", |e| e["message"] == "enforcing container");
    sleep(Duration::from_millis(300));
    assert_eq!(probe(Some(&c.cgroup), Some(&netns), &["connect", "127.30.0.1", "9"]), "EPERM");
    // C hammers 127.30.0.1 across the restart.
    let log = out.path.join("hammer");
    let mut cmd = std::process::Command::new("bash");
    cmd.arg("-c")
        .arg(format!("while :; do (exec 3<>/dev/tcp/127.30.0.1/9) 2>>{}; done", log.display()))
        .stdout(std::process::Stdio::null());
    place(&mut cmd, Some(&c.cgroup.path), Some(&netns));
    let hammer = Proc::spawn("hammer", &mut cmd);
    sleep(Duration::from_millis(300));
    ramd.write_policy(&format!("{head}{wide}{jobs}"));
    ramd.restart();
    sleep(Duration::from_millis(1000));
    drop(hammer);
    let after = probe(Some(&c.cgroup), Some(&netns), &["connect", "127.30.0.1", "9"]);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let refused = text.lines().filter(|l| l.contains("refused")).count();
    let denied = text.lines().filter(|l| l.contains("not permitted")).count();
    assert!(denied > 0, "the hammer never ran: {text}");
    assert_eq!(
        refused, 0,
        "BYPASS: across the restart C was judged by another target's rules ({refused} connects allowed, {denied} refused; after the restart: {after}):\n{}",
        ramd.log_text()
    );
    assert_eq!(after, "EPERM");
}

/// Red team 7 (bypass if it fails). A `--network container:H` joiner J whose
/// cgroup has no process outside the host's namespace for 2 s (a slow
/// start: its cgroup exists before its first process is in H's namespace)
/// is taken to be of the host's network (`Joined::Host`), and, its image
/// held by no target, released; 10 s later it is released for good and
/// never looked at again. Its processes then arrive in H's (held)
/// namespace, unjudged, and answer as the resolver there: H learns the
/// attacker's address.
#[test]
fn a_joiner_slow_to_enter_a_held_namespace_is_not_let_go_for_good() {
    require_root();
    let netns = Netns::new("k-rt7-slow");
    let data_root = TempDir::new("k-rt7-slow-docker");
    let files = TempDir::new("k-rt7-slow-files");
    let _parent = DockerParent::new();
    let _sandbox = NetnsFileMount::bind(&netns.file(), files.path.join("0123456789ab"));
    let root = data_root.path.display().to_string();
    let files_text = files.path.display().to_string();
    let ramd = Ramd::start_with_env(
        &two_container_targets(&netns, false),
        &[("RAM_DOCKER_ROOT", root.as_str()), ("RAM_DOCKER_NETNS", files_text.as_str())],
    );
    ramd.wait_attached();
    let (h, _h_init) = held_owner(&netns, &data_root.path, 7701, "ram-test/job:1");
    ramd.wait_log("H enforced", |e| e["message"] == "enforcing container");
    // J: an unheld image joining H; its cgroup is empty for a while.
    let j = fake_container_with(None, &format!("container:{}", h.id), &data_root.path, "ram-test/other:1", 7702);
    sleep(Duration::from_millis(12_500));
    // J's processes arrive in H's namespace and try to answer as its
    // resolver (J is judged with H now, so its answers may not even leave).
    let mut cmd = std::process::Command::new(probe_bin());
    cmd.args(["serve-dns", "127.0.0.11", "60", "registry.test=127.30.0.9"]).stdout(std::process::Stdio::null());
    place(&mut cmd, Some(&j.cgroup.path), Some(&netns));
    let _evil = Proc::spawn("dns-127.0.0.11", &mut cmd);
    sleep(Duration::from_millis(1000));
    let j_verdict = probe(Some(&j.cgroup), Some(&netns), &["connect", "127.30.0.1", "9"]);
    assert_eq!(j_verdict, "EPERM", "J, in H's namespace, is judged:\n{}", ramd.log_text());
    let mut outs = Vec::new();
    for _ in 0..2 {
        outs.push(probe(Some(&h.cgroup), Some(&netns), &["resolve-connect", "127.0.0.11", "registry.test", "9"]));
    }
    assert!(
        !outs.iter().any(|o| o == "127.30.0.9 ECONNREFUSED"),
        "BYPASS: J (unjudged: {j_verdict}) in H's namespace taught H an off-policy address ({outs:?}):\n{}",
        ramd.log_text()
    );
}

/// Red team 7 (refused wrongly if it fails). Joiners were decided only when
/// every held container's namespace was known. One
/// held container anywhere on the host whose namespace stays unknown (its
/// record names no sandbox, its processes in no namespace dockerd keeps)
/// kept every joiner of every other held container undecided: pending,
/// their DNS teaches nothing, for as long as that one container runs.
#[test]
fn one_held_container_of_unknown_namespace_does_not_stall_every_joiner() {
    require_root();
    let netns = Netns::new("k-rt7-stall");
    let other = Netns::new("k-rt7-stall2");
    let data_root = TempDir::new("k-rt7-stall-docker");
    let files = TempDir::new("k-rt7-stall-files");
    let _parent = DockerParent::new();
    let _sandbox = NetnsFileMount::bind(&netns.file(), files.path.join("0123456789ab"));
    let root = data_root.path.display().to_string();
    let files_text = files.path.display().to_string();
    let ramd = Ramd::start_with_env(
        &two_container_targets(&netns, false),
        &[("RAM_DOCKER_ROOT", root.as_str()), ("RAM_DOCKER_NETNS", files_text.as_str())],
    );
    ramd.wait_attached();
    // X: held, its namespace unknown (no SandboxKey; its process in a
    // namespace dockerd keeps no file of).
    let x = fake_container_in(None, &data_root.path, "ram-test/job:9", 7711);
    let _x_init = container_process(&x.cgroup.path, Some(&other));
    let (h, _h_init) = held_owner(&netns, &data_root.path, 7712, "ram-test/job:1");
    let both = wait_for(Duration::from_secs(5), || {
        (ramd.log_text().matches("enforcing container").count() >= 2).then_some(())
    });
    assert!(both.is_some(), "X and H not enforced:\n{}", ramd.log_text());
    let _dns = dns_at_127_0_0_11(&netns, None, "127.20.0.5");
    let j = fake_container_with(None, &format!("container:{}", h.id), &data_root.path, "ram-test/job:2", 7713);
    let _j_init = container_process(&j.cgroup.path, Some(&netns));
    let mut last = String::new();
    let learned = wait_for(Duration::from_secs(8), || {
        last = probe(Some(&j.cgroup), Some(&netns), &["resolve-connect", "127.0.0.11", "registry.test", "9"]);
        (last == "127.20.0.5 ECONNREFUSED").then_some(())
    });
    assert!(
        learned.is_some(),
        "REFUSED LEGIT: a joiner of H never learns while an unrelated held container's namespace is unknown ({last}):\n{}",
        ramd.log_text()
    );
}

/// Red team 7 (wasted work if it fails). A let-go joiner is meant to be looked at again
/// for 10 s from its release; but each look that lets it go again
/// (`release`) stamps a new release time, so the 10 s never end: every
/// let-go joiner (every pod container through cri-dockerd whose pause
/// container no target holds, every compose `network_mode: service:`
/// container) has its records read and its cgroup tree walked every 50 ms
/// for as long as it runs.
#[test]
fn a_let_go_joiner_is_let_go_for_good_after_its_recheck() {
    require_root();
    let netns = Netns::new("k-rt7-forever");
    let data_root = TempDir::new("k-rt7-forever-docker");
    let files = TempDir::new("k-rt7-forever-files");
    let _parent = DockerParent::new();
    let _sandbox = NetnsFileMount::bind(&netns.file(), files.path.join("0123456789ab"));
    let root = data_root.path.display().to_string();
    let files_text = files.path.display().to_string();
    let ramd = Ramd::start_with_env(
        &two_container_targets(&netns, false),
        &[("RAM_DOCKER_ROOT", root.as_str()), ("RAM_DOCKER_NETNS", files_text.as_str())],
    );
    ramd.wait_attached();
    // P: unheld (a pause container); J joins it, unheld too.
    let p = fake_container(&netns, &data_root.path, "ram-test/pause:1", 7721);
    let _p_init = container_process(&p.cgroup.path, Some(&netns));
    let j = fake_container_with(None, &format!("container:{}", p.id), &data_root.path, "ram-test/other:1", 7722);
    let _j_init = container_process(&j.cgroup.path, Some(&netns));
    let lets_go = || {
        ramd.log_text()
            .lines()
            .filter(|l| l.contains("matches no container target") && l.contains("ram-test-7722"))
            .count()
    };
    sleep(Duration::from_secs(13));
    let at_13 = lets_go();
    sleep(Duration::from_secs(3));
    let at_16 = lets_go();
    assert!(at_13 >= 1, "J never let go:\n{}", ramd.log_text());
    assert_eq!(
        at_13, at_16,
        "DoS: a let-go joiner is decided again every tick, for good ({at_13} then {at_16} releases)"
    );
}

/// Issue 11's scale: a policy of 100,000 host rules (exact and wildcard)
/// and 10,000 address rules loads and enforces once `[limits]` sizes the
/// maps for it; without those limits `ramd --check-config` refuses it,
/// naming the field and the limit to raise.
#[test]
fn a_policy_of_100000_host_rules_and_10000_address_rules_enforces() {
    require_root();
    let netns = Netns::new("k-scale");
    let dir = TempDir::new("k-scale");
    let _dns = dnsmasq(
        &netns,
        &dir,
        "127.0.0.53",
        &[("h54321.registry.test", "127.40.0.7"), ("x.w777.registry.test", "127.40.0.8"), ("other.test", "127.40.0.9")],
        300,
    );
    let cgroup = TestCgroup::new("k-scale");
    let mut rules = String::with_capacity(6_000_000);
    for i in 0..90_000 {
        rules.push_str(&format!("[[allow]]\nhost = \"h{i}.registry.test\"\n"));
    }
    for i in 0..10_000 {
        rules.push_str(&format!("[[allow]]\nhost = \"*.w{i}.registry.test\"\n"));
    }
    // 10,000 /32s in 10.64.0.0/16 and 10.65.0.0/16, and 127.41.0.0/24.
    for i in 0..9_999u32 {
        rules.push_str(&format!("[[allow]]\ncidr = \"10.{}.{}.{}/32\"\n", 64 + (i >> 16), (i >> 8) & 0xff, i & 0xff));
    }
    rules.push_str("[[allow]]\ncidr = \"127.41.0.0/24\"\n");
    let head = format!(
        "[dns]\nresolvers = [\"127.0.0.53\"]\n{}[[target]]\nname = \"big\"\ncgroup = \"{}\"\n",
        netns.dns_trust(),
        cgroup.path.display()
    );
    let default_limits = dir.write("unsized.toml", &format!("{head}{rules}"));
    let check =
        std::process::Command::new(bin("ramd")).arg("--check-config").arg(&default_limits).output().expect("ramd");
    let said = String::from_utf8_lossy(&check.stderr);
    assert!(!check.status.success(), "100,000 host rules passed the default limits");
    assert!(
        said.contains("allow[].host")
            && said.contains("100000 distinct host names")
            && said.contains("[limits] host_rules"),
        "{said}"
    );
    let policy = format!("[limits]\nhost_rules = 131072\naddress_rules = 16384\n{head}{rules}");
    let started = std::time::Instant::now();
    let ramd = Ramd::start(&policy);
    println!(
        "ramd enforcing 100,000 host rules and 10,000 address rules after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let enforced = |args: &[&str]| probe(Some(&cgroup), Some(&netns), args);
    assert_eq!(enforced(&["resolve-connect", "127.0.0.53", "h54321.registry.test", "5000"]), "127.40.0.7 ECONNREFUSED");
    assert_eq!(enforced(&["resolve-connect", "127.0.0.53", "x.w777.registry.test", "5000"]), "127.40.0.8 ECONNREFUSED");
    assert_eq!(enforced(&["resolve-connect", "127.0.0.53", "other.test", "5000"]), "127.40.0.9 EPERM");
    assert_eq!(enforced(&["connect", "127.41.0.200", "9"]), "ECONNREFUSED");
    assert_eq!(enforced(&["connect", "127.42.0.1", "9"]), "EPERM");
    // A reload past the maps the running ramd sized is refused whole, and
    // what runs stays.
    ramd.write_policy(&format!("[limits]\nhost_rules = 262144\naddress_rules = 16384\n{head}{rules}{}", {
        let mut more = String::new();
        for i in 0..40_000 {
            more.push_str(&format!("[[allow]]\nhost = \"m{i}.registry.test\"\n"));
        }
        more
    }));
    let refused = ramd.wait_log_for("the reload refused", Duration::from_secs(120), |e| {
        e["message"].as_str().is_some_and(|m| m.contains("[limits] host_rules of the running ramd"))
    });
    println!("{refused}");
    assert_eq!(enforced(&["connect", "127.41.0.200", "9"]), "ECONNREFUSED");
    assert_eq!(enforced(&["connect", "127.42.0.1", "9"]), "EPERM");
}

/// Red team 10 (bypass if it fails). Scope numbers follow target names,
/// not cgroups: two process targets that swap their cgroups (an admin
/// swapping the names of two targets, or their `cgroup` lines) keep their
/// numbers, so the rules written under `a`'s number are now those meant
/// for Y, while `a`'s old programs still enforce X until `b`'s new ones
/// attach there. Neither policy lets X reach 127.30.0.1; across the
/// reloads it does.
#[test]
fn targets_swapping_their_cgroups_never_judge_one_by_the_others_rules() {
    require_root();
    let netns = Netns::new("k-rt10-swap");
    let x = TestCgroup::new("k-rt10-swap-x");
    let y = TestCgroup::new("k-rt10-swap-y");
    let strict = "[[target.allow]]\ncidr = \"127.20.0.0/16\"\n";
    let wide = "[[target.allow]]\ncidr = \"127.30.0.0/24\"\n";
    let policy = |first: &TestCgroup, first_rules: &str, second: &TestCgroup, second_rules: &str| {
        format!(
            "[dns]\nresolvers = [\"127.0.0.53\"]\n{}[[target]]\nname = \"a\"\ncgroup = \"{}\"\n{first_rules}[[target]]\nname = \"b\"\ncgroup = \"{}\"\n{second_rules}",
            netns.dns_trust(),
            first.path.display(),
            second.path.display(),
        )
    };
    // X is strict and Y wide in both policies; only the names swap.
    let before = policy(&x, strict, &y, wide);
    let swapped = policy(&y, wide, &x, strict);
    let ramd = Ramd::start(&before);
    ramd.wait_attached();
    assert_eq!(probe(Some(&x), Some(&netns), &["connect", "127.30.0.1", "9"]), "EPERM");
    assert_eq!(probe(Some(&y), Some(&netns), &["connect", "127.30.0.1", "9"]), "ECONNREFUSED");
    // A listener outside every target: a connect from X that completes got through.
    let mut cmd = std::process::Command::new(probe_bin());
    cmd.args(["accept-loop", "127.30.0.1", "9"]).stdout(std::process::Stdio::null());
    place(&mut cmd, None, Some(&netns));
    let _listener = Proc::spawn("accept-loop", &mut cmd);
    sleep(Duration::from_millis(300));
    let done = std::sync::atomic::AtomicBool::new(false);
    let (connects, failed) = std::thread::scope(|s| {
        let hammer = s.spawn(|| {
            let (mut connects, mut failed) = (0u64, 0u64);
            let count = |outcome: &str, field: &str| -> u64 {
                outcome
                    .split_whitespace()
                    .find_map(|f| f.strip_prefix(field))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("no count: {outcome}"))
            };
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let outcome = probe(Some(&x), Some(&netns), &["connect-loop", "127.30.0.1", "9", "500"]);
                connects += count(&outcome, "connects=");
                failed += count(&outcome, "failed=");
            }
            (connects, failed)
        });
        sleep(Duration::from_millis(300));
        for i in 0..10 {
            ramd.write_policy(if i % 2 == 0 { &swapped } else { &before });
            let out = ramd.ramctl(&["reload"]);
            assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stderr), ramd.log_text());
            sleep(Duration::from_millis(300));
        }
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        hammer.join().expect("hammer")
    });
    let outcome = format!("connects={connects} failed={failed}");
    assert!(failed > 0, "the hammer never ran: {outcome}");
    assert_eq!(
        connects, 0,
        "BYPASS: while two targets swapped cgroups, X (strict in both policies) reached 127.30.0.1 ({outcome})"
    );
    assert_eq!(probe(Some(&x), Some(&netns), &["connect", "127.30.0.1", "9"]), "EPERM");
}

/// Red team 10 (bypass if it fails). An unheld `--network container:H`
/// joiner J is to be judged with H (an unjudged process in H's namespace
/// could answer as the resolver there). J's first process binds
/// 127.0.0.11:53 in H's namespace, then moves into a network namespace of
/// its own (an unprivileged user namespace suffices; here, as root):
/// its processes are in no namespace a held container owns, so J is let
/// go, while its socket is still in H's namespace. Unjudged, it answers H's
/// query from the resolver's address: H learns the attacker's address.
#[test]
fn a_joiner_that_leaves_a_held_namespace_but_keeps_a_socket_there_is_judged() {
    require_root();
    let netns = Netns::new("k-rt10-leave");
    let data_root = TempDir::new("k-rt10-leave-docker");
    let files = TempDir::new("k-rt10-leave-files");
    let _parent = DockerParent::new();
    let _sandbox = NetnsFileMount::bind(&netns.file(), files.path.join("0123456789ab"));
    let root = data_root.path.display().to_string();
    let files_text = files.path.display().to_string();
    let ramd = Ramd::start_with_env(
        &two_container_targets(&netns, false),
        &[("RAM_DOCKER_ROOT", root.as_str()), ("RAM_DOCKER_NETNS", files_text.as_str())],
    );
    ramd.wait_attached();
    let (h, _h_init) = held_owner(&netns, &data_root.path, 7741, "ram-test/job:1");
    ramd.wait_log("H enforced", |e| e["message"] == "enforcing container");
    assert_eq!(probe(Some(&h.cgroup), Some(&netns), &["connect", "127.30.0.9", "9"]), "EPERM");
    // ramd may look at J in the moment between its process's start and its
    // move (it then holds J with H, and the attempt tells nothing): a few
    // joiners, as an attacker would retry.
    let mut joiners = Vec::new();
    let mut released = None;
    for tag in 7742..7745 {
        let j = fake_container_with(None, &format!("container:{}", h.id), &data_root.path, "ram-test/other:1", tag);
        let mut cmd = std::process::Command::new(probe_bin());
        cmd.args(["serve-dns", "127.0.0.11", "60", "registry.test=127.30.0.9", "nested"])
            .stdout(std::process::Stdio::null());
        place(&mut cmd, Some(&j.cgroup.path), Some(&netns));
        let evil = Proc::spawn("dns-127.0.0.11-nested", &mut cmd);
        sleep(Duration::from_millis(1000));
        let name = format!("ram-test-{tag}");
        let log = ramd.log_text();
        let enforced = log.lines().any(|l| l.contains("enforcing container") && l.contains(&name));
        if !enforced && log.lines().any(|l| l.contains("matches no container target") && l.contains(&name)) {
            released = Some(tag);
            joiners.push((j, evil));
            break;
        }
        joiners.push((j, evil));
    }
    let Some(tag) = released else {
        // J judged with H every time: what the policy wants.
        return;
    };
    let mut outs = Vec::new();
    for _ in 0..2 {
        outs.push(probe(Some(&h.cgroup), Some(&netns), &["resolve-connect", "127.0.0.11", "registry.test", "9"]));
    }
    assert!(
        !outs.iter().any(|o| o == "127.30.0.9 ECONNREFUSED"),
        "BYPASS: joiner ram-test-{tag} (let go: its processes left H's namespace, its socket did not) taught H an off-policy address ({outs:?}):\n{}",
        ramd.log_text()
    );
}

/// Red team 11 (bypass if it fails). As above, one hop further: J1 joins
/// H (`container:H`, judged with H), J2 joins J1 (`container:J1`; Docker
/// resolves J1 and puts J2 in its process's namespace, H's). J2's
/// processes leave H's namespace and keep a socket there. The record's
/// reference names J1, a held joiner, which `held_by_reference` skips: J2
/// is let go and answers as H's resolver.
#[test]
fn a_joiner_of_a_joiner_that_leaves_a_held_namespace_is_judged() {
    require_root();
    let netns = Netns::new("k-rt11-chain");
    let data_root = TempDir::new("k-rt11-chain-docker");
    let files = TempDir::new("k-rt11-chain-files");
    let _parent = DockerParent::new();
    let _sandbox = NetnsFileMount::bind(&netns.file(), files.path.join("0123456789ab"));
    let root = data_root.path.display().to_string();
    let files_text = files.path.display().to_string();
    let ramd = Ramd::start_with_env(
        &two_container_targets(&netns, false),
        &[("RAM_DOCKER_ROOT", root.as_str()), ("RAM_DOCKER_NETNS", files_text.as_str())],
    );
    ramd.wait_attached();
    let (h, _h_init) = held_owner(&netns, &data_root.path, 7751, "ram-test/job:1");
    ramd.wait_log("H enforced", |e| e["message"] == "enforcing container");
    let j1 = fake_container_with(None, &format!("container:{}", h.id), &data_root.path, "ram-test/other:1", 7752);
    let _j1_init = container_process(&j1.cgroup.path, Some(&netns));
    let j1_held = wait_for(Duration::from_secs(5), || {
        ramd.log_text().lines().any(|l| l.contains("enforcing container") && l.contains("ram-test-7752")).then_some(())
    });
    assert!(j1_held.is_some(), "J1 not judged with H:\n{}", ramd.log_text());
    assert_eq!(probe(Some(&h.cgroup), Some(&netns), &["connect", "127.30.0.9", "9"]), "EPERM");
    // J2 starts in H's namespace; its process then moves on, keeping its
    // socket there. Whether ramd first saw it in H's namespace or not, a
    // reload decides every joiner again.
    let j2 = fake_container_with(None, &format!("container:{}", j1.id), &data_root.path, "ram-test/other:1", 7753);
    let mut cmd = std::process::Command::new(probe_bin());
    cmd.args(["serve-dns", "127.0.0.11", "60", "registry.test=127.30.0.9", "nested"])
        .stdout(std::process::Stdio::null());
    place(&mut cmd, Some(&j2.cgroup.path), Some(&netns));
    let _evil = Proc::spawn("dns-127.0.0.11-nested", &mut cmd);
    sleep(Duration::from_millis(1000));
    let out = ramd.ramctl(&["reload"]);
    assert!(out.status.success(), "reload: {}", String::from_utf8_lossy(&out.stderr));
    sleep(Duration::from_millis(1000));
    let tag = 7753;
    let mut outs = Vec::new();
    for _ in 0..2 {
        outs.push(probe(Some(&h.cgroup), Some(&netns), &["resolve-connect", "127.0.0.11", "registry.test", "9"]));
    }
    assert!(
        !outs.iter().any(|o| o == "127.30.0.9 ECONNREFUSED"),
        "BYPASS: joiner of a joiner ram-test-{tag} (its record names J1, a held joiner; let go once its processes left H's namespace, at the latest by a reload) taught H an off-policy address ({outs:?}):\n{}",
        ramd.log_text()
    );
}

/// Red team 10 (bypass if it fails). As above, and the reload is refused
/// half way (its new address rules do not fit beside the old ones while
/// both are in the map): "nothing changed" is said, the old programs stay,
/// and the rows already written stay too: X's old programs (a's number)
/// read the rule now written for a's new cgroup, until the next good
/// reload or restart.
#[test]
fn a_refused_reload_of_swapped_targets_leaves_nobody_judged_by_the_others_rules() {
    require_root();
    let netns = Netns::new("k-rt10-refused");
    let x = TestCgroup::new("k-rt10-refused-x");
    let y = TestCgroup::new("k-rt10-refused-y");
    let strict = "[[target.allow]]\ncidr = \"127.20.0.0/16\"\n";
    let wide = "[[target.allow]]\ncidr = \"127.30.0.0/24\"\n";
    // 600 rules each: alone they fit the kernel's map (1024), the old and
    // the new together do not.
    let fillers = |first: u32| -> String {
        (0..600).map(|i| format!("[[allow]]\ncidr = \"{}.{}.{}.0/24\"\n", first, i / 256, i % 256)).collect()
    };
    let policy = |first: &TestCgroup, first_rules: &str, second: &TestCgroup, second_rules: &str, fill: u32| {
        format!(
            "[dns]\nresolvers = [\"127.0.0.53\"]\n{}{}[[target]]\nname = \"a\"\ncgroup = \"{}\"\n{first_rules}[[target]]\nname = \"b\"\ncgroup = \"{}\"\n{second_rules}",
            netns.dns_trust(),
            fillers(fill),
            first.path.display(),
            second.path.display(),
        )
    };
    let ramd = Ramd::start(&policy(&x, strict, &y, wide, 10));
    ramd.wait_attached();
    assert_eq!(probe(Some(&x), Some(&netns), &["connect", "127.30.0.1", "9"]), "EPERM");
    assert_eq!(probe(Some(&y), Some(&netns), &["connect", "127.30.0.1", "9"]), "ECONNREFUSED");
    // The names swap (X strict, Y wide still), with other filler rules.
    ramd.write_policy(&policy(&y, wide, &x, strict, 128));
    let out = ramd.ramctl(&["reload"]);
    let refused = !out.status.success();
    let after = probe(Some(&x), Some(&netns), &["connect", "127.30.0.1", "9"]);
    assert_eq!(
        after,
        "EPERM",
        "BYPASS: after a {} reload of swapped targets, X (strict in both policies) reaches 127.30.0.1:\n{}\n{}",
        if refused { "refused" } else { "successful" },
        String::from_utf8_lossy(&out.stderr),
        ramd.log_text()
            .lines()
            .filter(|l| l.contains("refused") || l.contains("reloaded"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

// Red team 13: link takeover across restarts and reloads (after 2837fe5).

/// "pinned" (new, listed first, ram-test/job:1 only, registry.test) and
/// "jobs" (ram-test/job*, registry.test, and with `wide` also
/// 127.30.0.0/24); without `split`, "jobs" alone as it was.
fn split_jobs_policy(netns: &Netns, split: bool) -> String {
    let head = format!("[dns]\nresolvers = [\"127.0.0.53\"]\n{}", netns.dns_trust());
    let jobs = "[[target]]\nname = \"jobs\"\ncontainers = \"docker\"\nimage = \"ram-test/job*\"\n[[target.allow]]\nhost = \"registry.test\"\n";
    if !split {
        return format!("{head}{jobs}");
    }
    let pinned = "[[target]]\nname = \"pinned\"\ncontainers = \"docker\"\nimage = \"ram-test/job:1\"\n[[target.allow]]\nhost = \"registry.test\"\n";
    format!("{head}{pinned}{jobs}[[target.allow]]\ncidr = \"127.30.0.0/24\"\n")
}

/// Red team 13 (bypass if it fails). An admin splits a target: C
/// (ram-test/job:1), held by "jobs", goes to a new target "pinned" (which
/// does not allow 127.30.0.0/24), and in the same edit "jobs", for its
/// other containers, is allowed 127.30.0.0/24. Neither policy lets C reach
/// 127.30.0.1. The reload holds C pending and writes the new rules; a
/// pending container is judged by every container target's programs, but
/// "pinned"'s are not attached yet: until they are, C is judged by "jobs"'s
/// programs alone, reading "jobs"'s new rules, and 127.30.0.1 is open to it.
#[test]
fn a_reload_never_judges_a_moved_container_by_its_old_targets_new_rules() {
    require_root();
    let netns = Netns::new("k-rt13-split");
    let data_root = TempDir::new("k-rt13-split-docker");
    let files = TempDir::new("k-rt13-split-files");
    let _parent = DockerParent::new();
    let _sandbox = NetnsFileMount::bind(&netns.file(), files.path.join("0123456789ab"));
    let root = data_root.path.display().to_string();
    let files_text = files.path.display().to_string();
    let ramd = Ramd::start_with_env(
        &split_jobs_policy(&netns, false),
        &[("RAM_DOCKER_ROOT", root.as_str()), ("RAM_DOCKER_NETNS", files_text.as_str())],
    );
    ramd.wait_attached();
    let (c, _c_init) = held_owner(&netns, &data_root.path, 13_001, "ram-test/job:1");
    let (d, _d_init) = held_owner(&netns, &data_root.path, 13_002, "ram-test/job:2");
    let both = wait_for(Duration::from_secs(5), || {
        (ramd.log_text().matches("enforcing container").count() >= 2).then_some(())
    });
    assert!(both.is_some(), "C and D not enforced:\n{}", ramd.log_text());
    assert_eq!(probe(Some(&c.cgroup), Some(&netns), &["connect", "127.30.0.1", "9"]), "EPERM");
    // The premise, once: after the split, D (still "jobs") reaches
    // 127.30.0.1 and C ("pinned") does not.
    ramd.write_policy(&split_jobs_policy(&netns, true));
    let out = ramd.ramctl(&["reload"]);
    assert!(out.status.success(), "reload: {}", String::from_utf8_lossy(&out.stderr));
    let settled = wait_for(Duration::from_secs(5), || {
        (probe(Some(&d.cgroup), Some(&netns), &["connect", "127.30.0.1", "9"]) == "ECONNREFUSED").then_some(())
    });
    assert!(settled.is_some(), "D never allowed 127.30.0.1 after the split:\n{}", ramd.log_text());
    assert_eq!(probe(Some(&c.cgroup), Some(&netns), &["connect", "127.30.0.1", "9"]), "EPERM", "C after the split");
    ramd.write_policy(&split_jobs_policy(&netns, false));
    let out = ramd.ramctl(&["reload"]);
    assert!(out.status.success(), "reload: {}", String::from_utf8_lossy(&out.stderr));
    sleep(Duration::from_millis(300));
    // C hammers 127.30.0.1 while the split is made and taken back.
    let stop = data_root.path.join("stop");
    let mut cmd = std::process::Command::new(probe_bin());
    cmd.arg("expect-loop").arg(format!("stop={}", stop.display())).arg("connect,127.30.0.1,9=EPERM");
    cmd.stdout(std::process::Stdio::piped());
    place(&mut cmd, Some(&c.cgroup.path), Some(&netns));
    let child = cmd.spawn().expect("expect-loop");
    for round in 0..15 {
        for split in [true, false] {
            ramd.write_policy(&split_jobs_policy(&netns, split));
            let out = ramd.ramctl(&["reload"]);
            assert!(out.status.success(), "round {round}: reload: {}", String::from_utf8_lossy(&out.stderr));
            sleep(Duration::from_millis(150));
        }
    }
    std::fs::write(&stop, "").expect("stop");
    let out = child.wait_with_output().expect("expect-loop output");
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(line.contains("attempts="), "the hammer never ran: {line}");
    assert!(
        line.contains(" wrong=0"),
        "BYPASS: C, moved to \"pinned\", reached 127.30.0.1 (allowed only to \"jobs\", and only by the new policy) while the reload switched: {line}\n{}",
        ramd.log_text().lines().filter(|l| l.contains("reloaded") || l.contains("enforcing")).collect::<Vec<_>>().join("\n")
    );
}

/// Red team 13 (bypass if it fails). As
/// `a_reload_never_judges_a_moved_container_by_its_old_targets_new_rules`,
/// across a restart: the new ramd makes every container pending and writes
/// the new rules while only the previous run's "jobs" programs (scope 0,
/// reading "jobs"'s new rules) are attached; "pinned" attaches after them.
#[test]
fn a_restart_never_judges_a_moved_container_by_its_old_targets_new_rules() {
    require_root();
    let netns = Netns::new("k-rt13-splitrs");
    let data_root = TempDir::new("k-rt13-splitrs-docker");
    let files = TempDir::new("k-rt13-splitrs-files");
    let _parent = DockerParent::new();
    let _sandbox = NetnsFileMount::bind(&netns.file(), files.path.join("0123456789ab"));
    let root = data_root.path.display().to_string();
    let files_text = files.path.display().to_string();
    let mut ramd = Ramd::start_with_env(
        &split_jobs_policy(&netns, false),
        &[("RAM_DOCKER_ROOT", root.as_str()), ("RAM_DOCKER_NETNS", files_text.as_str())],
    );
    ramd.wait_attached();
    let (c, _c_init) = held_owner(&netns, &data_root.path, 13_011, "ram-test/job:1");
    ramd.wait_log("C enforced", |e| e["message"] == "enforcing container");
    sleep(Duration::from_millis(300));
    assert_eq!(probe(Some(&c.cgroup), Some(&netns), &["connect", "127.30.0.1", "9"]), "EPERM");
    let stop = data_root.path.join("stop");
    let mut cmd = std::process::Command::new(probe_bin());
    cmd.arg("expect-loop").arg(format!("stop={}", stop.display())).arg("connect,127.30.0.1,9=EPERM");
    cmd.stdout(std::process::Stdio::piped());
    place(&mut cmd, Some(&c.cgroup.path), Some(&netns));
    let child = cmd.spawn().expect("expect-loop");
    for _ in 0..3 {
        for split in [true, false] {
            ramd.write_policy(&split_jobs_policy(&netns, split));
            ramd.restart();
            sleep(Duration::from_millis(300));
        }
    }
    std::fs::write(&stop, "").expect("stop");
    let out = child.wait_with_output().expect("expect-loop output");
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(line.contains("attempts="), "the hammer never ran: {line}");
    assert!(
        line.contains(" wrong=0"),
        "BYPASS: C, moved to \"pinned\", reached 127.30.0.1 (allowed only to \"jobs\", and only by the new policy) across a restart: {line}"
    );
}

/// Red team 13 (unenforced if it fails). A process target's runtime
/// restarts in another cgroup (as in
/// `a_process_target_enforces_the_cgroup_of_that_process`); what it left in
/// its first cgroup (a shim, a worker; here any process started there)
/// stays enforced while ramd runs, and through `ramctl debug on` (red team
/// 8: "a process target whose process has exited still enforces its cgroup,
/// and whatever stays there or is started there is judged"). A restart of
/// ramd drops it: prune_previous_links releases every earlier link of a
/// live target that is not attached to that link's cgroup now, as soon as
/// the target is attached anywhere.
#[test]
fn a_restart_keeps_enforcing_a_cgroup_a_process_target_left() {
    require_root();
    let netns = Netns::new("k-rt13-left");
    let first = TestCgroup::new("k-rt13-left1");
    let second = TestCgroup::new("k-rt13-left2");
    let dir = TempDir::new("k-rt13-left");
    let name = format!("ramlx{}", std::process::id());
    let holder = dir.path.join(&name);
    std::fs::copy(probe_bin(), &holder).expect("copy probe");
    let mut cmd = std::process::Command::new(&holder);
    cmd.args(["hold", "120"]).stdout(std::process::Stdio::null());
    place(&mut cmd, Some(&first.path), Some(&netns));
    let mut runtime = Proc::spawn(&name, &mut cmd);
    let policy = format!(
        "[dns]\nresolvers = [\"127.0.0.53\"]\n{}[[target]]\nprocess = \"{name}\"\n[[allow]]\ncidr = \"127.20.0.0/16\"\n",
        netns.dns_trust()
    );
    let mut ramd = Ramd::start(&policy);
    assert_eq!(probe(Some(&first), Some(&netns), &["connect", "127.30.0.1", "9"]), "EPERM");
    // The runtime restarts in the second cgroup.
    runtime.stop(Duration::from_secs(5));
    let mut cmd = std::process::Command::new(&holder);
    cmd.args(["hold", "120"]).stdout(std::process::Stdio::null());
    place(&mut cmd, Some(&second.path), Some(&netns));
    let _runtime = Proc::spawn(&name, &mut cmd);
    let moved = wait_for(Duration::from_secs(5), || {
        (probe(Some(&second), Some(&netns), &["connect", "127.30.0.1", "9"]) == "EPERM").then_some(())
    });
    assert!(moved.is_some(), "the second cgroup never enforced:\n{}", ramd.log_text());
    sleep(Duration::from_millis(600));
    assert_eq!(
        probe(Some(&first), Some(&netns), &["connect", "127.30.0.1", "9"]),
        "EPERM",
        "the first cgroup stays enforced while ramd runs"
    );
    ramd.restart();
    sleep(Duration::from_millis(600));
    let after = probe(Some(&first), Some(&netns), &["connect", "127.30.0.1", "9"]);
    assert_eq!(
        after,
        "EPERM",
        "UNENFORCED: a restart of ramd let go of the cgroup the target's runtime left (a running ramd and `ramctl debug on` keep it):\n{}",
        ramd.log_text().lines().filter(|l| l.contains("previous run") || l.contains("enforcing")).collect::<Vec<_>>().join("\n")
    );
}

/// "jobs" (ram-test/job*, registry.test); with `renamed`, a new target
/// "wide" (ram-test/wide*, 127.30.0.0/24) first, and "jobs" renamed
/// "jobs-v2" (the same filter and rules: a new identity, a new number).
/// Between them, in both, process targets named `procs` (as the default
/// policy's dockerd and containerd targets).
fn renamed_jobs_policy(netns: &Netns, procs: &[String], renamed: bool) -> String {
    let head = format!("[dns]\nresolvers = [\"127.0.0.53\"]\n{}", netns.dns_trust());
    let jobs = |name: &str| {
        format!("[[target]]\nname = \"{name}\"\ncontainers = \"docker\"\nimage = \"ram-test/job*\"\n[[target.allow]]\nhost = \"registry.test\"\n")
    };
    let procs: String = procs
        .iter()
        .map(|p| format!("[[target]]\nprocess = \"{p}\"\n[[target.allow]]\nhost = \"registry.test\"\n"))
        .collect();
    if !renamed {
        return format!("{head}{procs}{}", jobs("jobs"));
    }
    let wide = "[[target]]\nname = \"wide\"\ncontainers = \"docker\"\nimage = \"ram-test/wide*\"\n[[target.allow]]\ncidr = \"127.30.0.0/24\"\n";
    format!("{head}{wide}{procs}{}", jobs("jobs-v2"))
}

/// `count` processes of names no other process has, held in `cgroup`
/// (runtimes for process targets); their names, and the processes.
fn named_runtimes(dir: &TempDir, cgroup: &TestCgroup, netns: &Netns, count: usize) -> (Vec<String>, Vec<Proc>) {
    let mut names = Vec::new();
    let mut procs = Vec::new();
    for i in 0..count {
        let name = format!("ramr{}x{i}", std::process::id());
        let holder = dir.path.join(&name);
        std::fs::copy(probe_bin(), &holder).expect("copy probe");
        let mut cmd = std::process::Command::new(&holder);
        cmd.args(["hold", "600"]).stdout(std::process::Stdio::null());
        place(&mut cmd, Some(&cgroup.path), Some(netns));
        procs.push(Proc::spawn(&name, &mut cmd));
        names.push(name);
    }
    (names, procs)
}

/// Hammers `connect 127.30.0.1:9` from `c` (expecting EPERM) while `event`
/// runs; returns the loop's line.
fn hammer_refused_across(c: &FakeContainer, netns: &Netns, dir: &Path, event: impl FnOnce()) -> String {
    let stop = dir.join("stop-hammer");
    let mut cmd = std::process::Command::new(probe_bin());
    cmd.arg("expect-loop").arg(format!("stop={}", stop.display())).arg("connect,127.30.0.1,9=EPERM");
    cmd.stdout(std::process::Stdio::piped());
    place(&mut cmd, Some(&c.cgroup.path), Some(netns));
    let child = cmd.spawn().expect("expect-loop");
    event();
    std::fs::write(&stop, "").expect("stop");
    let out = child.wait_with_output().expect("expect-loop output");
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(line.contains("attempts="), "the hammer never ran: {line}");
    line
}

/// Red team 13 (bypass if it fails). 2837fe5 lets a link be taken over by
/// its own target's programs, or by any target's "when its scope number
/// belongs to no loaded scope". A renamed target (or one whose image or
/// label filter is edited: its identity, and so its number, changes) has a
/// number no loaded scope has: a new container target listed before it
/// ("wide", allowing 127.30.0.0/24) takes its link on the root, and until
/// "jobs-v2" attaches its own, C (held by "jobs", then by "jobs-v2", never
/// allowed 127.30.0.1) is pending and judged by "wide"'s rules alone:
/// the bypass of `a_restart_never_judges_a_container_by_another_targets_rules`
/// by the fallback. Across reloads. Process targets listed between "wide"
/// and "jobs-v2" (as the default policy's dockerd and containerd) are
/// looked for (a walk of /proc each) in that time; without them C still
/// gets through the connect hook, and the egress program, switched to
/// "wide"'s last but one, drops the SYN (ETIMEDOUT) on most runs.
#[test]
fn a_new_target_never_takes_a_renamed_targets_link_on_a_reload() {
    require_root();
    let netns = Netns::new("k-rt13-ren");
    let data_root = TempDir::new("k-rt13-ren-docker");
    let files = TempDir::new("k-rt13-ren-files");
    let bins = TempDir::new("k-rt13-ren-bin");
    let runtimes = TestCgroup::new("k-rt13-ren-rt");
    let (procs, _runtimes) = named_runtimes(&bins, &runtimes, &netns, 8);
    let _parent = DockerParent::new();
    let _sandbox = NetnsFileMount::bind(&netns.file(), files.path.join("0123456789ab"));
    let root = data_root.path.display().to_string();
    let files_text = files.path.display().to_string();
    let ramd = Ramd::start_with_env(
        &renamed_jobs_policy(&netns, &procs, false),
        &[("RAM_DOCKER_ROOT", root.as_str()), ("RAM_DOCKER_NETNS", files_text.as_str())],
    );
    ramd.wait_attached();
    let (c, _c_init) = held_owner(&netns, &data_root.path, 13_021, "ram-test/job:1");
    ramd.wait_log("C enforced", |e| e["message"] == "enforcing container");
    sleep(Duration::from_millis(300));
    assert_eq!(probe(Some(&c.cgroup), Some(&netns), &["connect", "127.30.0.1", "9"]), "EPERM");
    let line = hammer_refused_across(&c, &netns, &data_root.path, || {
        for round in 0..5 {
            for renamed in [true, false] {
                ramd.write_policy(&renamed_jobs_policy(&netns, &procs, renamed));
                let out = ramd.ramctl(&["reload"]);
                assert!(out.status.success(), "round {round}: reload: {}", String::from_utf8_lossy(&out.stderr));
                sleep(Duration::from_millis(150));
            }
        }
    });
    assert!(
        line.contains(" wrong=0"),
        "BYPASS: C (\"jobs\", then \"jobs-v2\") reached 127.30.0.1 (only \"wide\" allows it) while a reload renamed its target: {line}\n{}",
        ramd.log_text().lines().filter(|l| l.contains("link updated") || l.contains("enforcing")).take(40).collect::<Vec<_>>().join("\n")
    );
}

/// Red team 13 (bypass if it fails). As
/// `a_new_target_never_takes_a_renamed_targets_link_on_a_reload`, across
/// restarts (SIGTERM).
#[test]
fn a_new_target_never_takes_a_renamed_targets_link_on_a_restart() {
    require_root();
    let netns = Netns::new("k-rt13-renrs");
    let data_root = TempDir::new("k-rt13-renrs-docker");
    let files = TempDir::new("k-rt13-renrs-files");
    let bins = TempDir::new("k-rt13-renrs-bin");
    let runtimes = TestCgroup::new("k-rt13-renrs-rt");
    let (procs, _runtimes) = named_runtimes(&bins, &runtimes, &netns, 4);
    let _parent = DockerParent::new();
    let _sandbox = NetnsFileMount::bind(&netns.file(), files.path.join("0123456789ab"));
    let root = data_root.path.display().to_string();
    let files_text = files.path.display().to_string();
    let mut ramd = Ramd::start_with_env(
        &renamed_jobs_policy(&netns, &procs, false),
        &[("RAM_DOCKER_ROOT", root.as_str()), ("RAM_DOCKER_NETNS", files_text.as_str())],
    );
    ramd.wait_attached();
    let (c, _c_init) = held_owner(&netns, &data_root.path, 13_031, "ram-test/job:1");
    ramd.wait_log("C enforced", |e| e["message"] == "enforcing container");
    sleep(Duration::from_millis(300));
    assert_eq!(probe(Some(&c.cgroup), Some(&netns), &["connect", "127.30.0.1", "9"]), "EPERM");
    let line = hammer_refused_across(&c, &netns, &data_root.path, || {
        for _ in 0..3 {
            for renamed in [true, false] {
                ramd.write_policy(&renamed_jobs_policy(&netns, &procs, renamed));
                ramd.restart();
                sleep(Duration::from_millis(300));
            }
        }
    });
    assert!(
        line.contains(" wrong=0"),
        "BYPASS: C (\"jobs\", then \"jobs-v2\") reached 127.30.0.1 (only \"wide\" allows it) across a restart that renamed its target: {line}\n{}",
        ramd.log_text().lines().filter(|l| l.contains("link updated") || l.contains("enforcing")).take(40).collect::<Vec<_>>().join("\n")
    );
}

/// Red team 13 (leaked links if it fails): after renames, additions and
/// removals of container targets, by reload and by restart, each target
/// has exactly its own seven links, and no earlier one is left.
#[test]
fn renamed_container_targets_leave_no_link_behind() {
    require_root();
    let netns = Netns::new("k-rt13-links");
    let data_root = TempDir::new("k-rt13-links-docker");
    let _parent = DockerParent::new();
    let root = data_root.path.display().to_string();
    let mut ramd =
        Ramd::start_with_env(&renamed_jobs_policy(&netns, &[], false), &[("RAM_DOCKER_ROOT", root.as_str())]);
    let links = |ramd: &Ramd| {
        let status = ramd.ramctl_json(&["status"]).expect("status");
        (status["links"].as_u64().unwrap_or(0), status["targets"].as_array().map_or(0, |t| t.len()))
    };
    for (step, renamed) in [true, false, true].into_iter().enumerate() {
        ramd.write_policy(&renamed_jobs_policy(&netns, &[], renamed));
        let out = ramd.ramctl(&["reload"]);
        assert!(out.status.success(), "reload: {}", String::from_utf8_lossy(&out.stderr));
        sleep(Duration::from_millis(600));
        let (n, targets) = links(&ramd);
        assert_eq!(n, 7 * targets as u64, "reload {step}: {n} links for {targets} targets:\n{}", ramd.log_text());
    }
    for renamed in [false, true] {
        ramd.write_policy(&renamed_jobs_policy(&netns, &[], renamed));
        ramd.restart();
        sleep(Duration::from_millis(600));
        let (n, targets) = links(&ramd);
        assert_eq!(n, 7 * targets as u64, "restart: {n} links for {targets} targets");
    }
}

/// Red team 13 (unenforced if it fails). An upgrade that starts the new
/// ramd before the old one has stopped (a second ramd on the same pins: a
/// blue/green switch, a pod that surges, an admin running `ramd` by hand
/// while the unit runs): the new one takes over the old one's links (their
/// pins renamed), and the old one, every 250 ms, removes every link pin it
/// does not own whose target it has attached elsewhere: the new one's.
/// The new one still counts the cgroup as attached and never attaches it
/// again. Nothing keeps a second ramd from starting on the same pins.
#[test]
fn a_second_ramd_on_the_same_pins_never_leaves_the_cgroup_unenforced() {
    require_root();
    let netns = Netns::new("k-rt13-two");
    let cgroup = TestCgroup::new("k-rt13-two");
    let mut old = Ramd::start(&cidr_policy(&cgroup, &netns, ""));
    assert_eq!(probe(Some(&cgroup), Some(&netns), &["connect", "127.30.0.1", "9"]), "EPERM");
    // The new ramd, on the old one's pins and run directory.
    let log = std::fs::OpenOptions::new().create(true).append(true).open(&old.log).expect("log");
    let mut cmd = std::process::Command::new(bin("ramd"));
    cmd.args(["--log-format", "json", "--config"])
        .arg(old.config_path())
        .arg("--pin-dir")
        .arg(&old.pin_dir)
        .arg("--run-dir")
        .arg(old.run_dir())
        .env("RUST_LOG", "debug")
        .stdout(log.try_clone().expect("log"))
        .stderr(log);
    let mut new = Proc::spawn("ramd-new", &mut cmd);
    let mut verdicts = Vec::new();
    for _ in 0..20 {
        sleep(Duration::from_millis(250));
        verdicts.push(probe(Some(&cgroup), Some(&netns), &["connect", "127.30.0.1", "9"]));
    }
    // The old one stops; the new one goes on alone.
    old.stop();
    for _ in 0..8 {
        sleep(Duration::from_millis(250));
        verdicts.push(probe(Some(&cgroup), Some(&netns), &["connect", "127.30.0.1", "9"]));
    }
    new.stop(Duration::from_secs(10));
    let through = verdicts.iter().filter(|v| *v != "EPERM").count();
    assert_eq!(
        through,
        0,
        "UNENFORCED: with two ramds on the same pins, {through} of {} connects went through ({verdicts:?}):\n{}",
        verdicts.len(),
        old.log_text()
            .lines()
            .filter(|l| l.contains("previous run") || l.contains("link updated"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Red team 14. A second ramd on the same pins (an upgrade that overlaps, a
/// ramd run by hand beside the unit) reads the policy file and the previous
/// run's target numbers *before* it waits for the pin lock, and takes the
/// policy file's stamp only *after* the wait. A policy edit the running
/// ramd applies meanwhile is undone when the waiting one takes over (it
/// enforces the file as it was when it started), and never picked up
/// again: the file watcher compares against the stamp of the edited file.
/// Here the edit enforces a second cgroup and takes an allow away; after
/// the hand-over the second cgroup is let go (its target's links pruned as
/// a gone target's) and the first connects to the address the edit
/// denied, for as long as the new ramd runs.
#[test]
fn a_ramd_that_waited_for_the_pins_enforces_the_policy_file_as_it_is_now() {
    require_root();
    let netns = Netns::new("k-rt14-wait");
    let first = TestCgroup::new("k-rt14-wait-a");
    let second = TestCgroup::new("k-rt14-wait-b");
    let before = cidr_policy(&first, &netns, "[[allow]]\ncidr = \"127.30.0.0/16\"\n");
    let mut old = Ramd::start(&before);
    let blocked = |cgroup: &TestCgroup| probe(Some(cgroup), Some(&netns), &["connect", "127.30.0.1", "9"]);
    assert_eq!(blocked(&first), "ECONNREFUSED", "allowed by the first policy");
    // The new ramd, on the old one's pins, run directory and policy file.
    let log = std::fs::OpenOptions::new().create(true).append(true).open(&old.log).expect("log");
    let mut cmd = std::process::Command::new(bin("ramd"));
    cmd.args(["--log-format", "json", "--config"])
        .arg(old.config_path())
        .arg("--pin-dir")
        .arg(&old.pin_dir)
        .arg("--run-dir")
        .arg(old.run_dir())
        .env("RUST_LOG", "debug")
        .stdout(log.try_clone().expect("log"))
        .stderr(log);
    let mut new = Proc::spawn("ramd-new", &mut cmd);
    old.wait_log_for("the second ramd waiting", Duration::from_secs(30), |e| {
        e["message"].as_str().is_some_and(|m| m.contains("waiting for it to stop"))
    });
    // The admin's edit while the second one waits: a second target, and
    // 127.30.0.0/16 no longer allowed. The running ramd applies it.
    let after = format!(
        "[dns]\nresolvers = [\"127.0.0.53\"]\n{}[[target]]\nname = \"probe\"\ncgroup = \"{}\"\n[[target]]\nname = \"second\"\ncgroup = \"{}\"\n[[allow]]\ncidr = \"127.20.0.0/16\"\n",
        netns.dns_trust(),
        first.path.display(),
        second.path.display()
    );
    old.write_policy(&after);
    let out = old.ramctl(&["reload"]);
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stderr), old.log_text());
    assert_eq!(blocked(&first), "EPERM", "the edit denies 127.30.0.0/16");
    assert_eq!(blocked(&second), "EPERM", "the edit enforces the second cgroup");
    // The old ramd stops (the upgrade's end); the new one takes over.
    old.stop();
    let running = || {
        old.log_events().iter().filter(|e| e["message"].as_str().is_some_and(|m| m.starts_with("ramd running"))).count()
    };
    let started = wait_for(Duration::from_secs(60), || (running() >= 2).then_some(()));
    assert!(started.is_some(), "the second ramd never started:\n{}", old.log_text());
    // Well past the policy watch (500 ms) and a few target scans.
    sleep(Duration::from_secs(3));
    let verdicts = (blocked(&first), blocked(&second));
    let status = old.ramctl_json(&["status"]).expect("status");
    new.stop(Duration::from_secs(10));
    assert_eq!(
        verdicts,
        ("EPERM".to_string(), "EPERM".to_string()),
        "the policy file denies 127.30.0.1 in both cgroups; after the hand-over (first, second) got {verdicts:?}; targets {}",
        status["targets"]
    );
}

/// Red team 14. The pin lock is an flock on the pin directory's inode.
/// `ramctl uninstall` while a ramd runs removes that directory (and every
/// link: expected), but the ramd goes on running and holding the lock on
/// a directory that is gone. A ramd started next (by hand, or a second
/// instance) makes the directory afresh, locks the new inode, does not
/// wait, and enforces; the first one, every 250 ms, prunes every link pin
/// it does not own whose target it still counts as attached: the new
/// one's (red team 13's two-ramd bypass, back through uninstall). The new
/// one counts its cgroup as attached and never attaches it again.
#[test]
fn a_ramd_started_after_an_uninstall_beside_a_running_one_keeps_enforcing() {
    require_root();
    let netns = Netns::new("k-rt14-uninst");
    let cgroup = TestCgroup::new("k-rt14-uninst");
    let mut old = Ramd::start(&cidr_policy(&cgroup, &netns, ""));
    let blocked = || probe(Some(&cgroup), Some(&netns), &["connect", "127.30.0.1", "9"]);
    assert_eq!(blocked(), "EPERM");
    let out = old.ramctl(&["uninstall"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(blocked(), "ECONNREFUSED", "uninstalled");
    // A new ramd on the same policy, pins and run directory.
    let log = std::fs::OpenOptions::new().create(true).append(true).open(&old.log).expect("log");
    let mut cmd = std::process::Command::new(bin("ramd"));
    cmd.args(["--log-format", "json", "--config"])
        .arg(old.config_path())
        .arg("--pin-dir")
        .arg(&old.pin_dir)
        .arg("--run-dir")
        .arg(old.run_dir())
        .env("RUST_LOG", "debug")
        .stdout(log.try_clone().expect("log"))
        .stderr(log);
    let mut new = Proc::spawn("ramd-new", &mut cmd);
    let running = |ramd: &Ramd| {
        ramd.log_events()
            .iter()
            .filter(|e| e["message"].as_str().is_some_and(|m| m.starts_with("ramd running")))
            .count()
    };
    // Verdicts while the new one says it runs (it may also wait for the
    // old one: then none are taken here).
    let mut verdicts = Vec::new();
    let _ = wait_for(Duration::from_secs(20), || (running(&old) >= 2).then_some(()));
    for _ in 0..12 {
        sleep(Duration::from_millis(250));
        if running(&old) >= 2 {
            verdicts.push(blocked());
        }
    }
    let old_still_running = old.proc.as_mut().is_some_and(|p| p.is_running());
    old.stop();
    let started = wait_for(Duration::from_secs(60), || (running(&old) >= 2).then_some(()));
    assert!(started.is_some(), "the new ramd never started:\n{}", old.log_text());
    for _ in 0..8 {
        sleep(Duration::from_millis(250));
        verdicts.push(blocked());
    }
    let status = old.ramctl_json(&["status"]);
    new.stop(Duration::from_secs(10));
    let through = verdicts.iter().filter(|v| *v != "EPERM").count();
    assert_eq!(
        through,
        0,
        "UNENFORCED: the new ramd runs and {through} of {} connects went through ({verdicts:?}); the old ramd ran on after the uninstall: {old_still_running}; status links {:?}\n{}",
        verdicts.len(),
        status.map(|s| s["links"].clone()),
        old.log_text()
            .lines()
            .filter(|l| l.contains("previous run") || l.contains("waiting") || l.contains("enforcing"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Red team 15: `ramctl check` rounds a learned entry's time left down to
/// whole seconds and calls an entry with less than a second left expired
/// (exit 2), while the kernel's verdict (the same `judge`, which said
/// Learned) lets a connect through until the very nanosecond it expires.
#[test]
fn redteam15_ramctl_check_agrees_with_connect_in_a_learned_entrys_last_second() {
    require_root();
    let scene = Scene::new("k-rt15-ttl", &[("short.registry.test", "127.10.0.1")], 1);
    let ramd = Ramd::start(&scene.policy("min_ttl = 1\nmax_ttl = 1\n", "[[allow]]\nhost = \"short.registry.test\"\n"));
    assert_eq!(
        scene.inside(&["resolve-connect", "127.0.0.53", "short.registry.test", "5000"]),
        "127.10.0.1 ECONNREFUSED"
    );
    // Every second of a 1 s TTL is its last: check between two connects.
    let out = ramd.ramctl(&["check", "127.10.0.1", "5000", "--json"]);
    let after = scene.inside(&["connect", "127.10.0.1", "5000"]);
    assert_eq!(after, "ECONNREFUSED", "the entry must still be live after the check for the comparison to hold");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(
        (out.status.code(), v[0]["verdict"].as_str()),
        (Some(0), Some("learned")),
        "ramctl check says {v} while a later connect to the same address and port is let through"
    );
    drop(ramd);
}

/// Red team 15: overlapping address rules. The address trie returns the
/// longest block only, and the compiler folds shorter blocks' grants into
/// longer ones for host wildcards but not for `cidr` rules: a longer block
/// with fewer ports (or for another target) hides the shorter block's grant.
/// The policy allows 127.20.5.1:9000 (127.20.0.0/16, any port); the kernel
/// and `ramctl check` refuse it (fail closed, but not what the policy says).
#[test]
fn redteam15_a_longer_cidr_rule_does_not_hide_a_shorter_ones_ports() {
    require_root();
    let scene = Scene::new("k-rt15-cidr", &[("r.registry.test", "127.10.0.1")], 300);
    let policy =
        scene.policy("", "[[allow]]\ncidr = \"127.20.0.0/16\"\n[[allow]]\ncidr = \"127.20.5.0/24\"\nports = [443]\n");
    let ramd = Ramd::start(&policy);
    assert_eq!(scene.inside(&["connect", "127.20.6.1", "9000"]), "ECONNREFUSED", "the /16 allows any port");
    assert_eq!(scene.inside(&["connect", "127.20.5.1", "443"]), "ECONNREFUSED");
    let check = ramd.ramctl(&["check", "127.20.5.1", "9000", "--json"]);
    assert_eq!(
        scene.inside(&["connect", "127.20.5.1", "9000"]),
        "ECONNREFUSED",
        "127.20.0.0/16 allows every port of 127.20.5.1; ramctl check said: {}",
        String::from_utf8_lossy(&check.stdout)
    );
    drop(ramd);
}
