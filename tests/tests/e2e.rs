//! End to end with real parts, all started here inside a test network
//! namespace and cgroup: dnsmasq names two registries, two docker-registry
//! servers hold a small image, dockerd runs in the enforced cgroup, and ramd
//! allows only one registry. Then real clients pull.

use std::{
    path::PathBuf,
    process::{Command, Output},
    time::Duration,
};

use ram_tests::*;

const ALLOWED: &str = "allowed.registry.test:5000";
const BLOCKED: &str = "blocked.registry.test:5000";
const IMAGE: &str = "ram/busybox:1";

struct Dockerd {
    proc: Proc,
    socket: PathBuf,
}

impl Dockerd {
    fn start(dir: &TempDir, cgroup: &TestCgroup, netns: &Netns) -> Self {
        let socket = dir.path.join("docker.sock");
        let arg = |s: &str| s.to_string();
        let program = vec![
            arg("dockerd"),
            format!("--data-root={}", dir.path.join("docker-data").display()),
            format!("--exec-root={}", dir.path.join("docker-exec").display()),
            format!("--host=unix://{}", socket.display()),
            format!("--pidfile={}", dir.path.join("docker.pid").display()),
            arg("--bridge=none"),
            arg("--iptables=false"),
            arg("--ip-forward=false"),
            arg("--ip-masq=false"),
            format!("--insecure-registry={ALLOWED}"),
            format!("--insecure-registry={BLOCKED}"),
            arg("--log-level=warn"),
        ];
        let log = std::fs::File::create(dir.path.join("dockerd.log")).expect("log");
        let mut cmd = with_test_etc(dir, Some(&cgroup.path), netns, &program);
        cmd.stdout(log.try_clone().expect("log")).stderr(log);
        let proc = Proc::spawn("dockerd", &mut cmd);
        let d = Dockerd { proc, socket };
        let up = wait_for(Duration::from_secs(60), || d.docker(&["version"]).status.success().then_some(()));
        assert!(
            up.is_some(),
            "dockerd did not start:\n{}",
            std::fs::read_to_string(dir.path.join("dockerd.log")).unwrap_or_default()
        );
        d
    }

    fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .args(args)
            .output()
            .expect("docker")
    }

    fn ok(&self, args: &[&str]) -> Output {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // dockerd stops its containerd on SIGTERM; the cgroup guard catches
        // anything left.
        self.proc.stop(Duration::from_secs(20));
    }
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
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
    let dockerd = Dockerd::start(&dir, &cgroup, &netns);

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
[[target]]
name = "docker"
cgroup = "{}"
[[allow]]
host = "allowed.registry.test"
"#,
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

    // The counters saw it all.
    assert!(ramd.counter("docker", "connect_blocked") >= 2);
    assert!(ramd.counter("docker", "dns_learned") >= 1);
}
