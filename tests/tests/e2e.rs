//! End to end with real parts, all started here inside a test network
//! namespace and cgroup: dnsmasq names two registries, two docker-registry
//! servers hold a small image, dockerd runs in the enforced cgroup, and ramd
//! allows only one registry. Then real clients pull.
//!
//! Then `ramctl await-enforced`, the `ExecStartPre=` of the runtimes' systemd
//! drop-ins, with cgroups made here standing in for the ones systemd makes
//! (the host's own system.slice is never touched).
//!
//! Then the metrics: what a scraper reads before and after one learned
//! answer and one blocked connect, and the listener following reloads
//! (TCP on 127.0.0.1 and a unix socket only).

use std::{
    path::PathBuf,
    process::Output,
    time::{Duration, Instant},
};

use ram_tests::{
    docker::{text, Dockerd, DockerdOptions},
    *,
};

const ALLOWED: &str = "allowed.registry.test:5000";
const BLOCKED: &str = "blocked.registry.test:5000";
const IMAGE: &str = "ram/busybox:1";

/// containerd on its own socket and state, in the enforced cgroup.
struct Containerd {
    _proc: Proc,
    socket: PathBuf,
}

impl Containerd {
    fn start(dir: &TempDir, cgroup: &TestCgroup, netns: &Netns) -> Self {
        let root = dir.path.join("containerd");
        let socket = root.join("containerd.sock");
        let config = dir.write("containerd.toml", "version = 2\n");
        let program: Vec<String> = vec![
            "containerd".into(),
            "--config".into(),
            config.display().to_string(),
            "--root".into(),
            root.join("root").display().to_string(),
            "--state".into(),
            root.join("state").display().to_string(),
            "--address".into(),
            socket.display().to_string(),
        ];
        let log_path = dir.path.join("containerd.log");
        let log = std::fs::File::create(&log_path).expect("log");
        let mut cmd = with_test_etc(dir, Some(&cgroup.path), netns, &program);
        cmd.stdout(log.try_clone().expect("log")).stderr(log);
        let proc = Proc::spawn("containerd", &mut cmd);
        let up = wait_for(Duration::from_secs(30), || socket.exists().then_some(()));
        assert!(up.is_some(), "containerd did not start: {}", std::fs::read_to_string(&log_path).unwrap_or_default());
        Containerd { _proc: proc, socket }
    }

    /// ctr against this containerd, in the same cgroup and namespace.
    fn ctr(&self, dir: &TempDir, cgroup: &TestCgroup, netns: &Netns, args: &[&str]) -> Output {
        let mut program: Vec<String> = vec!["ctr".into(), "--address".into(), self.socket.display().to_string()];
        program.extend(args.iter().map(|a| a.to_string()));
        with_test_etc(dir, Some(&cgroup.path), netns, &program).output().expect("ctr")
    }
}

#[test]
fn only_the_allowed_registry_can_be_pulled_from() {
    require_root();
    let netns = Netns::new("e2e");
    let dir = TempDir::new("e2e");
    let _dns = dnsmasq(
        &netns,
        &dir,
        "127.0.0.53",
        &[("allowed.registry.test", "127.10.0.1"), ("blocked.registry.test", "127.10.0.2")],
        300,
    );
    let _allowed_registry = registry(&netns, &dir, "registry-allowed", "127.10.0.1:5000");
    let _blocked_registry = registry(&netns, &dir, "registry-blocked", "127.10.0.2:5000");
    let cgroup = TestCgroup::new("e2e-docker");
    let dockerd = Dockerd::start(
        &dir,
        &cgroup,
        &netns,
        &DockerdOptions { networks: false, insecure_registries: &[ALLOWED, BLOCKED], resolver: "127.0.0.53", env: &[] },
    );

    // Seed both registries before ram is there.
    let tar = busybox_tar(&dir);
    let allowed_image = format!("{ALLOWED}/{IMAGE}");
    let blocked_image = format!("{BLOCKED}/{IMAGE}");
    dockerd.ok(&["import", tar.to_str().unwrap(), &allowed_image]);
    dockerd.ok(&["tag", &allowed_image, &blocked_image]);
    dockerd.ok(&["push", &allowed_image]);
    dockerd.ok(&["push", &blocked_image]);
    dockerd.ok(&["rmi", &allowed_image, &blocked_image]);

    let policy = format!(
        r#"
mode = "enforce"
[dns]
resolvers = ["127.0.0.53"]
{}[[target]]
name = "docker"
cgroup = "{}"
[[allow]]
host = "allowed.registry.test"
"#,
        netns.dns_trust(),
        cgroup.path.display()
    );
    let ramd = Ramd::start(&policy);

    // docker pull: the allowed registry works, the other fails at once.
    let pulled = dockerd.ok(&["pull", &allowed_image]);
    assert!(
        text(&pulled).contains("Downloaded newer image") || text(&pulled).contains("Pull complete"),
        "{}",
        text(&pulled)
    );
    let started = std::time::Instant::now();
    let refused = dockerd.docker(&["pull", &blocked_image]);
    assert!(!refused.status.success(), "pull from the blocked registry succeeded:\n{}", text(&refused));
    assert!(text(&refused).contains("operation not permitted"), "{}", text(&refused));
    println!("docker pull {blocked_image}: {}", text(&refused).trim());
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the refusal should be immediate, took {:?}",
        started.elapsed()
    );

    // The blocked attempt is logged: dockerd, the address, the registry's name.
    let line = ramd.wait_log("blocked line for dockerd", |e| {
        e["event"] == "blocked" && e["comm"] == "dockerd" && e["daddr"] == "127.10.0.2" && e["dport"] == 5000
    });
    assert_eq!(line["host"], "blocked.registry.test", "{line}");
    println!("ramd: {line}");
    assert!(line["pid"].as_u64().unwrap_or(0) > 0, "{line}");

    // ramctl learned lists the allowed registry's address.
    let learned = ramd.ramctl_json(&["learned"]).expect("ramctl learned");
    let rows = learned.as_array().expect("array");
    assert!(rows.iter().any(|r| r["addr"] == "127.10.0.1" && r["host"] == "allowed.registry.test"), "{learned}");
    assert!(!rows.iter().any(|r| r["addr"] == "127.10.0.2"), "{learned}");

    // skopeo as a second client, in the same enforced cgroup.
    let skopeo = |image: &str| {
        let program: Vec<String> =
            ["skopeo", "inspect", "--tls-verify=false", "--retry-times=0", &format!("docker://{image}")]
                .iter()
                .map(|s| s.to_string())
                .collect();
        with_test_etc(&dir, Some(&cgroup.path), &netns, &program).output().expect("skopeo")
    };
    let ok = skopeo(&allowed_image);
    assert!(ok.status.success(), "skopeo inspect of the allowed registry failed:\n{}", text(&ok));
    let refused = skopeo(&blocked_image);
    assert!(!refused.status.success(), "skopeo reached the blocked registry:\n{}", text(&refused));
    assert!(text(&refused).contains("operation not permitted"), "{}", text(&refused));
    ramd.wait_log("blocked line for skopeo", |e| {
        e["event"] == "blocked" && e["comm"] == "skopeo" && e["daddr"] == "127.10.0.2"
    });

    // podman, the daemonless runtime, in the same cgroup.
    let storage = dir.path.join("podman");
    let podman = |image: &str| {
        let program: Vec<String> = [
            "podman",
            "--root",
            &storage.join("root").display().to_string(),
            "--runroot",
            &storage.join("run").display().to_string(),
            "--storage-driver",
            "vfs",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "none",
            "pull",
            "--tls-verify=false",
            image,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        with_test_etc(&dir, Some(&cgroup.path), &netns, &program).output().expect("podman")
    };
    let pulled = podman(&allowed_image);
    assert!(pulled.status.success(), "podman pull from the allowed registry failed:\n{}", text(&pulled));
    let refused = podman(&blocked_image);
    assert!(!refused.status.success(), "podman reached the blocked registry:\n{}", text(&refused));
    assert!(text(&refused).contains("operation not permitted"), "{}", text(&refused));
    ramd.wait_log("blocked line for podman", |e| {
        e["event"] == "blocked" && e["comm"] == "podman" && e["daddr"] == "127.10.0.2"
    });

    // containerd with ctr: ctr fetches in its own process, next to containerd.
    let containerd = Containerd::start(&dir, &cgroup, &netns);
    let pulled = containerd.ctr(&dir, &cgroup, &netns, &["images", "pull", "--plain-http", &allowed_image]);
    assert!(pulled.status.success(), "ctr pull from the allowed registry failed:\n{}", text(&pulled));
    let refused = containerd.ctr(&dir, &cgroup, &netns, &["images", "pull", "--plain-http", &blocked_image]);
    assert!(!refused.status.success(), "ctr reached the blocked registry:\n{}", text(&refused));
    assert!(text(&refused).contains("operation not permitted"), "{}", text(&refused));
    ramd.wait_log("blocked line for ctr", |e| {
        e["event"] == "blocked" && e["comm"] == "ctr" && e["daddr"] == "127.10.0.2"
    });
    drop(containerd);

    // The counters saw it all.
    assert!(ramd.counter("docker", "connect_blocked") >= 2);
    assert!(ramd.counter("docker", "dns_learned") >= 1);
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

#[test]
fn await_enforced_passes_in_an_enforced_cgroup_and_fails_elsewhere() {
    require_root();
    let enforced = TestCgroup::new("await-on");
    // Below the target's cgroup, as an ExecStartPre in a delegated unit's
    // subgroup: programs attached above judge it too.
    let below = enforced.child("pre");
    let outside = TestCgroup::new("await-off");
    let mut ramd = Ramd::start(&format!("[[target]]\nname = \"docker\"\ncgroup = \"{}\"\n", enforced.path.display()));

    let out = ramd.ramctl_in(&below.path, &["await-enforced", "--timeout", "10"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "enforced: cgroup {} by target docker (attached to {}, mode enforce)",
            below.path.display(),
            enforced.path.display()
        )
    );
    let out = ramd.ramctl_in(&enforced.path, &["await-enforced", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(answer["target"], "docker", "{answer}");
    assert_eq!(answer["attached"], enforced.path.display().to_string(), "{answer}");

    // Not enforced: it gives up after --timeout, saying why, and fails.
    let started = Instant::now();
    let out = ramd.ramctl_in(&outside.path, &["await-enforced", "--timeout", "1"]);
    let took = started.elapsed();
    assert!(!out.status.success(), "await-enforced passed outside the target: {}", text(&out));
    let err = stderr(&out);
    println!("outside the target: {err}");
    assert!(err.contains(&format!("cgroup {} (id ", outside.path.display())), "{err}");
    assert!(err.contains("is not enforced after 1s: no target of ramd"), "{err}");
    assert!(took >= Duration::from_secs(1) && took < Duration::from_secs(10), "gave up after {took:?}");

    // A status file left behind after the pins went is no enforcement.
    let status_file = ramd.run_dir().join("status.json");
    let stale = std::fs::read(&status_file).expect("status file");
    ramd.stop();
    let uninstalled = ramd.uninstall();
    assert!(uninstalled.status.success(), "{}", text(&uninstalled));
    std::fs::write(&status_file, stale).expect("stale status file");
    let out = ramd.ramctl_in(&below.path, &["await-enforced", "--timeout", "0.5"]);
    assert!(!out.status.success(), "await-enforced passed on a stale status file: {}", text(&out));
    assert!(stderr(&out).contains("ramd is not running"), "{}", text(&out));
}

#[test]
fn a_unit_target_is_enforced_once_systemd_would_make_its_cgroup() {
    require_root();
    // The unit lives in a slice of the test's own, as `SLICE/UNIT`.
    let slice = TestCgroup::named(&format!("{}.slice", unique("unit")));
    let slice_name = slice.path.file_name().expect("name").to_string_lossy().into_owned();
    let unit = format!("{slice_name}/ram-test.service");
    let unit_path = slice.path.join("ram-test.service");
    // The union of the two: no process has that name, the unit comes later.
    let ramd =
        Ramd::start_pending(&format!("[[target]]\nname = \"docker\"\nprocess = \"ram-absent\"\nunit = \"{unit}\"\n"));
    let pid = ramd.proc.as_ref().map(|p| p.pid() as u64);
    let pending = wait_for(Duration::from_secs(60), || {
        let status = ramd.ramctl_json(&["status"])?;
        (status["ramd"]["pid"].as_u64() == pid && status["targets"][0]["state"] == "pending").then_some(status)
    })
    .unwrap_or_else(|| panic!("no pending target; log:\n{}", ramd.log_text()));
    let target = &pending["targets"][0];
    assert_eq!(target["selector"], format!("process ram-absent + unit {unit} at {}", unit_path.display()), "{target}");
    assert_eq!(
        target["note"],
        format!("waiting for a process named ram-absent or unit {unit}'s cgroup {}", unit_path.display()),
        "{target}"
    );

    // As systemd starts a unit: its cgroup, then ExecStartPre inside it.
    let unit_cgroup = slice.child("ram-test.service");
    let started = Instant::now();
    let out = ramd.ramctl_in(&unit_cgroup.path, &["await-enforced", "--timeout", "10"]);
    println!("await-enforced in the new unit cgroup returned after {:?}", started.elapsed());
    assert!(out.status.success(), "{}\nramd log:\n{}", text(&out), ramd.log_text());
    let cgroup = unit_cgroup.path.display().to_string();
    assert_eq!(
        stdout(&out),
        format!("enforced: cgroup {cgroup} by target docker (attached to {cgroup}, mode enforce)")
    );
    // What the unit runs next is judged: the policy allows nothing.
    assert_eq!(probe(Some(&unit_cgroup), None, &["connect", "127.0.0.1", "9"]), "EPERM");
    ramd.wait_log("enforcing line for the unit's cgroup", |e| {
        e["message"] == "enforcing" && e["target_name"] == "docker" && e["cgroup"] == cgroup.as_str()
    });
    let status = ramd.ramctl_json(&["status"]).expect("ramctl status");
    assert_eq!(status["targets"][0]["state"], "attached", "{status}");
    assert_eq!(status["targets"][0]["cgroups"][0]["path"], cgroup.as_str(), "{status}");
}

/// One HTTP/1.1 exchange on `stream`: (status line, body).
fn http<S: std::io::Read + std::io::Write>(mut stream: S, request: &str) -> (String, String) {
    stream.write_all(request.as_bytes()).expect("send the request");
    let mut reply = String::new();
    // ramd closes the connection after its answer.
    stream.read_to_string(&mut reply).expect("read the answer");
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no head in {reply:?}"));
    let status = head.lines().next().unwrap_or_default().to_string();
    let length = head.lines().find_map(|l| l.strip_prefix("Content-Length: ")).and_then(|n| n.parse::<usize>().ok());
    // A HEAD answer says the length of the body it leaves out.
    if !request.starts_with("HEAD ") {
        assert_eq!(length, Some(body.len()), "{head}");
    }
    (status, body.to_string())
}

const GET_METRICS: &str = "GET /metrics HTTP/1.1\r\nHost: ram\r\n\r\n";

fn tcp(port: u16) -> std::net::TcpStream {
    let stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to ramd's metrics port");
    stream.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    stream
}

fn scrape(port: u16) -> String {
    let (status, body) = http(tcp(port), GET_METRICS);
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    body
}

fn scrape_unix(path: &std::path::Path) -> String {
    let stream = std::os::unix::net::UnixStream::connect(path).expect("connect to ramd's metrics socket");
    stream.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    let (status, body) = http(stream, GET_METRICS);
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    body
}

/// The value of one series (`name{labels}` exactly as exposed).
fn value(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
}

#[test]
fn metrics_count_a_blocked_connect_and_a_learned_answer() {
    require_root();
    let scene = Scene::new("e2e-metrics", &[("allowed.registry.test", "127.10.0.1")], 300);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    // The flag wins over the policy's listener, which is never opened.
    let unused = scene.dir.path.join("unused.sock");
    let policy = scene.policy("", "[[allow]]\nhost = \"allowed.registry.test\"\n");
    let policy = format!("[metrics]\nlisten = \"unix:{}\"\n{policy}", unused.display());
    let ramd = Ramd::start_with_args(&policy, &["--metrics", &listen]);
    ramd.wait_log("the metrics line", |e| e["message"] == format!("serving metrics at http://{listen}/metrics"));
    assert!(!unused.exists(), "the policy's listener was opened although --metrics was given");

    let before = scrape(port);
    let docker = |series: &str, labels: &str| {
        let labels = if labels.is_empty() { String::new() } else { format!(",{labels}") };
        format!("{series}{{target=\"docker\"{labels}}}")
    };
    let blocked = docker("ram_attempts_total", "outcome=\"blocked\"");
    let allowed = docker("ram_attempts_total", "outcome=\"allowed\"");
    let would_block = docker("ram_attempts_total", "outcome=\"would_block\"");
    let answers = docker("ram_dns_answers_total", "");
    let learned = docker("ram_dns_answers_learned_total", "");
    let not_allowed = docker("ram_dns_answers_refused_total", "reason=\"not_allowed\"");
    let unmatched = docker("ram_dns_answers_refused_total", "reason=\"unmatched\"");
    let lost = docker("ram_events_lost_total", "");
    let learned_v4 = "ram_learned_addresses{family=\"ipv4\"}";
    let learn4_entries = "ram_map_entries{map=\"learn4\"}";
    assert_eq!(value(&before, learned_v4), 0, "{before}");
    assert_eq!(value(&before, "ram_targets{state=\"attached\"}"), 1);
    assert_eq!(value(&before, "ram_targets{state=\"pending\"}"), 0);
    assert_eq!(value(&before, &format!("ram_build_info{{version=\"{}\"}}", env!("CARGO_PKG_VERSION"))), 1);
    assert_eq!(value(&before, "ram_map_capacity{map=\"learn4\"}"), 65536);
    // The policy's one host rule and one resolver are in their maps.
    assert_eq!(value(&before, "ram_map_entries{map=\"names\"}"), 1);
    assert_eq!(value(&before, "ram_map_entries{map=\"resolv4\"}"), 1);

    // One answer learned (its query is a UDP send, and the connect to what
    // it taught is allowed), then one blocked connect.
    let out = scene.inside(&["resolve-connect", "127.0.0.53", "allowed.registry.test", "5000"]);
    assert_eq!(out, "127.10.0.1 ECONNREFUSED");
    assert_eq!(scene.inside(&["connect", "127.30.0.1", "9"]), "EPERM");
    ramd.wait_log("the blocked line", |e| e["event"] == "blocked" && e["daddr"] == "127.30.0.1");

    let after = scrape(port);
    println!("{after}");
    let moved = |series: &str| value(&after, series) as i64 - value(&before, series) as i64;
    assert_eq!(moved(&blocked), 1, "blocked");
    assert_eq!(moved(&allowed), 2, "allowed: the DNS query's send and the connect");
    assert_eq!(moved(&would_block), 0, "would_block");
    assert_eq!(moved(&answers), 1, "answers");
    assert_eq!(moved(&learned), 1, "learned");
    assert_eq!(moved(&not_allowed), 0, "not_allowed");
    assert_eq!(moved(&unmatched), 0, "unmatched");
    assert_eq!((value(&before, &lost), value(&after, &lost)), (0, 0), "events lost");
    assert_eq!(moved(learned_v4), 1, "learned addresses");
    assert_eq!(moved(learn4_entries), 1, "learn4 entries");
    assert_eq!(value(&after, "ram_map_entries{map=\"hosts\"}"), 1);
    // The same figures `ramctl status` reads from the maps.
    assert_eq!(value(&after, &blocked), ramd.counter("docker", "connect_blocked"));
    assert_eq!(value(&after, &answers), ramd.counter("docker", "dns_answers"));

    // Reloads: one that applies, then a policy that is refused.
    assert_eq!(value(&after, "ram_reloads_total{outcome=\"ok\"}"), 0);
    let out = ramd.ramctl(&["reload"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(value(&scrape(port), "ram_reloads_total{outcome=\"ok\"}"), 1);
    ramd.write_policy("mode = \"block\"\n");
    let refused = wait_for(Duration::from_secs(10), || {
        let text = scrape(port);
        (value(&text, "ram_reloads_total{outcome=\"refused\"}") >= 1).then_some(text)
    })
    .unwrap_or_else(|| panic!("no refused reload counted; log:\n{}", ramd.log_text()));
    assert_eq!(value(&refused, "ram_reloads_total{outcome=\"ok\"}"), 1);

    // HTTP: OpenMetrics when asked for, HEAD, and refusals.
    let (status, body) =
        http(tcp(port), "GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text;version=1.0.0\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(body.contains("# TYPE ram_attempts counter\n") && body.ends_with("# EOF\n"), "{body}");
    let (status, body) = http(tcp(port), "HEAD /metrics HTTP/1.0\r\n\r\n");
    assert_eq!((status.as_str(), body.as_str()), ("HTTP/1.1 200 OK", ""));
    assert_eq!(http(tcp(port), "GET / HTTP/1.1\r\n\r\n").0, "HTTP/1.1 404 Not Found");
    assert_eq!(http(tcp(port), "DELETE /metrics HTTP/1.1\r\n\r\n").0, "HTTP/1.1 405 Method Not Allowed");
    assert_eq!(http(tcp(port), "hello\r\n\r\n").0, "HTTP/1.1 400 Bad Request");
}

#[test]
fn metrics_listener_follows_the_policy_on_reload() {
    require_root();
    let cgroup = TestCgroup::new("metrics-reload");
    let dir = TempDir::new("metrics-reload");
    let socket = dir.path.join("metrics.sock");
    let target = format!("[[target]]\nname = \"docker\"\ncgroup = \"{}\"\n", cgroup.path.display());
    let with_listen = |listen: &str| format!("[metrics]\nlisten = \"{listen}\"\n{target}");

    // --check-config validates the listener, naming file, field and value.
    let config = dir.write("bad.toml", &with_listen("localhost:9464"));
    let out = std::process::Command::new(bin("ramd")).arg("--check-config").arg(&config).output().expect("ramd");
    assert!(!out.status.success());
    assert!(
        text(&out).contains(&format!("{}: metrics.listen = \"localhost:9464\": must be IP:PORT", config.display())),
        "{}",
        text(&out)
    );
    let config = dir.write("good.toml", &with_listen(&format!("unix:{}", socket.display())));
    let out = std::process::Command::new(bin("ramd")).arg("--check-config").arg(&config).output().expect("ramd");
    assert!(out.status.success(), "{}", text(&out));
    assert!(stdout(&out).contains(&format!("metrics: unix:{}", socket.display())), "{}", text(&out));

    // A unix socket answers.
    let ramd = Ramd::start(&with_listen(&format!("unix:{}", socket.display())));
    let body = scrape_unix(&socket);
    assert_eq!(value(&body, "ram_targets{state=\"attached\"}"), 1, "{body}");

    // Moved to TCP: the socket goes, the port answers.
    let port = free_port();
    ramd.write_policy(&with_listen(&format!("127.0.0.1:{port}")));
    let out = ramd.ramctl(&["reload"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!socket.exists(), "the unix socket stayed after the listener moved");
    assert_eq!(value(&scrape(port), "ram_targets{state=\"attached\"}"), 1);

    // A port that cannot be bound: the policy applies, the listener stays, and both say so.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken_port = taken.local_addr().expect("addr").port();
    ramd.write_policy(&with_listen(&format!("127.0.0.1:{taken_port}")));
    let out = ramd.ramctl(&["reload"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stdout(&out).contains(&format!(
            "metrics listener not changed: metrics listener 127.0.0.1:{taken_port}: Address already in use"
        )) && stdout(&out).contains(&format!("metrics stay on 127.0.0.1:{port}")),
        "{}",
        text(&out)
    );
    ramd.wait_log("the bind failure", |e| {
        e["level"] == "ERROR" && e["message"].as_str().is_some_and(|m| m.contains("metrics listener not changed"))
    });
    let body = scrape(port);
    assert!(value(&body, "ram_reloads_total{outcome=\"ok\"}") >= 2, "{body}");
    drop(taken);

    // No [metrics]: the listener closes.
    ramd.write_policy(&target);
    let out = ramd.ramctl(&["reload"]);
    assert!(out.status.success(), "{}", text(&out));
    let refused = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.kind());
    assert_eq!(refused.err(), Some(std::io::ErrorKind::ConnectionRefused));
}

/// A measurement, not a check of speed: what one scrape costs when the
/// learned-address map is full (1,048,576 IPv4 entries, planted straight
/// into the pinned map), walked entry by entry at scrape time.
#[test]
#[ignore = "a measurement (a few seconds, ~100 MB of kernel memory): run with --ignored"]
fn metrics_scrape_time_with_a_full_learned_map() {
    use aya::maps::{HashMap, Map, MapData};
    use ram_common::maps::{Learn4Key, Learned};
    require_root();
    const ENTRIES: u32 = 1 << 20;
    let cgroup = TestCgroup::new("metrics-full");
    let port = free_port();
    let policy = format!(
        "[limits]\nlearned_addresses = {ENTRIES}\n[[target]]\nname = \"docker\"\ncgroup = \"{}\"\n",
        cgroup.path.display()
    );
    let ramd = Ramd::start_with_args(&policy, &["--metrics", &format!("127.0.0.1:{port}")]);
    let pin = ramd.pin_dir.join("maps/RAM_LEARN4");
    let map = Map::from_map_data(MapData::from_pin(&pin).expect("pinned map")).expect("map");
    let mut learned: HashMap<MapData, Learn4Key, Learned> = HashMap::try_from(map).expect("learned map");
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    // Live for the whole measurement, so ramd's sweep leaves them.
    let value_of = Learned { expires_ns: (now.tv_sec as u64 + 600) * 1_000_000_000, host_id: 1, ttl: 600, port_set: 0 };
    let started = Instant::now();
    for i in 0..ENTRIES {
        let [_, a, b, c] = i.to_be_bytes();
        learned.insert(Learn4Key { scope: 0, addr: [127, a, b, c] }, value_of, 0).expect("plant");
    }
    println!("planted {ENTRIES} entries in {:?}", started.elapsed());
    for round in 0..3 {
        let started = Instant::now();
        let body = scrape(port);
        let took = started.elapsed();
        assert_eq!(value(&body, "ram_map_entries{map=\"learn4\"}"), u64::from(ENTRIES));
        assert_eq!(value(&body, "ram_learned_addresses{family=\"ipv4\"}"), u64::from(ENTRIES));
        let collect = body.lines().find_map(|l| l.strip_prefix("ram_scrape_collect_seconds ")).unwrap_or("?");
        println!("scrape {round}: {took:?} in all, {collect} s reading the kernel");
    }
}
