//! End to end with real parts, all started here inside a test network
//! namespace and cgroup: dnsmasq names two registries, two docker-registry
//! servers hold a small image, dockerd runs in the enforced cgroup, and ramd
//! allows only one registry. Then real clients pull.

use std::{path::PathBuf, process::Output, time::Duration};

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
