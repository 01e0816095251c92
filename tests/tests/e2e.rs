//! End to end with real parts, all started here inside a test network
//! namespace and cgroup: dnsmasq names two registries, two docker-registry
//! servers hold a small image, dockerd runs in the enforced cgroup, and ramd
//! allows only one registry. Then real clients pull.
//!
//! Then `ramctl await-enforced`, the `ExecStartPre=` of the runtimes' systemd
//! drop-ins, with cgroups made here standing in for the ones systemd makes
//! (the host's own system.slice is never touched).

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
