//! Rootful podman with netavark networks under enforcement. podman runs
//! in the test's cgroup and network namespace; so does the aardvark-dns it
//! starts, which answers the containers of a podman network from the
//! host's namespace, on port 53 of the network's gateway. The same checks
//! run before ramd starts and with ramd enforcing a one-registry policy on
//! that cgroup (aardvark-dns is already running then, as on a host where
//! ram is installed after podman): containers resolve each other by name
//! and alias and talk HTTP, resolve a registry's name through aardvark-dns
//! and reach a registry outside the policy; pulls stay limited. Then
//! sending from port 53 as another program is refused.

use std::{collections::BTreeMap, path::PathBuf, process::Command, time::Duration};

use ram_tests::*;

const ALLOWED: &str = "allowed.registry.test:5000";
const BLOCKED: &str = "blocked.registry.test:5000";
const ALLOWED_ADDR: &str = "10.202.0.1";
const BLOCKED_ADDR: &str = "10.202.0.2";
const RESOLVER: &str = "10.202.0.53";
const HOST_ADDR: &str = "10.202.0.10";
const LOCAL_IMAGE: &str = "localhost/ram-podman/busybox:1";
const IMAGE: &str = "ram/busybox:1";
const PAGE: &str = "ram-podman-page";
/// podman's default limits of open files and processes are above this
/// machine's hard limits, which runc may not raise.
const ULIMITS: [&str; 4] = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"];
/// podman's network; its subnet is netavark's choice.
const NETWORK: &str = "ram-podnet";

/// podman with storage, run directory and network configuration of the
/// test's own, in its cgroup and namespace, with the test's resolver in
/// /etc/resolv.conf (aardvark-dns forwards there).
struct Podman<'a> {
    dir: &'a TempDir,
    cgroup: &'a TestCgroup,
    netns: &'a Netns,
    storage: PathBuf,
}

impl Podman<'_> {
    fn command(&self, args: &[&str]) -> Command {
        let storage = |sub: &str| self.storage.join(sub).display().to_string();
        let mut program: Vec<String> = vec![
            "podman".into(),
            "--root".into(),
            storage("root"),
            "--runroot".into(),
            storage("run"),
            "--network-config-dir".into(),
            storage("networks"),
            "--storage-driver".into(),
            "vfs".into(),
            "--cgroup-manager".into(),
            "cgroupfs".into(),
            "--events-backend".into(),
            "none".into(),
        ];
        program.extend(args.iter().map(|a| a.to_string()));
        with_etc_resolver(self.dir, Some(&self.cgroup.path), self.netns, RESOLVER, "", &program)
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        self.command(args).output().expect("podman")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "podman {args:?} failed:\n{}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A container on the test's network.
    fn on_network(&self, args: &[&str]) -> std::process::Output {
        let mut all = vec!["run", "--rm"];
        all.extend(ULIMITS);
        all.extend(["--network", NETWORK, LOCAL_IMAGE, "/bin/busybox"]);
        all.extend_from_slice(args);
        self.run(&all)
    }
}

impl Drop for Podman<'_> {
    fn drop(&mut self) {
        // Containers, their v1 cgroups and the network (netavark's state in
        // /run/containers/networks, and aardvark-dns with it) are podman's
        // to remove; the namespace takes the bridge and rules.
        let _ = self.run(&["rm", "-a", "-f", "-t", "0"]);
        let _ = self.run(&["network", "rm", "-f", NETWORK]);
        // aardvark-dns (in the test's cgroup, stopped with it) keeps a file
        // per network on the host; this one is the test's.
        let _ = std::fs::remove_file(format!("/run/containers/networks/aardvark-dns/{NETWORK}"));
    }
}

fn text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// "ok", or what went wrong.
fn outcome(out: &std::process::Output, expect: &str) -> String {
    let all = text(out);
    if out.status.success() && all.contains(expect) {
        "ok".into()
    } else {
        format!("failed: {}", all.trim().lines().last().unwrap_or("(no output)"))
    }
}

fn checks(podman: &Podman) -> BTreeMap<&'static str, String> {
    let http_get = |host: &str, port: u16, path: &str| {
        format!("printf 'GET {path} HTTP/1.0\\r\\n\\r\\n' | /bin/busybox nc -w 5 {host} {port}")
    };
    let mut checks = BTreeMap::new();
    checks.insert("peer by name", outcome(&podman.on_network(&["nslookup", "-type=a", "web"]), "Address"));
    checks.insert(
        "alias over http",
        outcome(&podman.on_network(&["sh", "-c", &http_get("database", 80, "/index.html")]), PAGE),
    );
    checks.insert(
        "a registry's name",
        outcome(&podman.on_network(&["nslookup", "-type=a", "allowed.registry.test"]), ALLOWED_ADDR),
    );
    checks.insert(
        "the world (a registry outside the policy)",
        outcome(&podman.on_network(&["sh", "-c", &http_get("blocked.registry.test", 5000, "/v2/")]), "200 OK"),
    );
    checks
}

fn pulls(podman: &Podman) -> BTreeMap<&'static str, bool> {
    let pull = |registry: &str| {
        let image = format!("{registry}/{IMAGE}");
        let _ = podman.run(&["rmi", "-f", &image]);
        let out = podman.run(&["pull", "--tls-verify=false", &image]);
        println!("podman pull {image}: {}", text(&out).trim().lines().last().unwrap_or_default());
        out.status.success()
    };
    [("pull from the allowed registry", pull(ALLOWED)), ("pull from the blocked registry", pull(BLOCKED))].into()
}

#[test]
fn podmans_network_dns_answers_its_containers_and_pulls_stay_limited() {
    require_root();
    let netns = Netns::new("pm");
    netns.add_host_interface(
        "rampod0",
        &[
            &format!("{ALLOWED_ADDR}/24"),
            &format!("{BLOCKED_ADDR}/24"),
            &format!("{RESOLVER}/24"),
            &format!("{HOST_ADDR}/24"),
        ],
    );
    let dir = TempDir::new("pm");
    let _dns = dnsmasq(
        &netns,
        &dir,
        RESOLVER,
        &[("allowed.registry.test", ALLOWED_ADDR), ("blocked.registry.test", BLOCKED_ADDR)],
        300,
    );
    let _allowed_registry = registry(&netns, &dir, "registry-allowed", &format!("{ALLOWED_ADDR}:5000"));
    let _blocked_registry = registry(&netns, &dir, "registry-blocked", &format!("{BLOCKED_ADDR}:5000"));
    // aardvark-dns serves every netavark network of the host from one
    // process, in the cgroup of the podman that started it: the test needs
    // its own.
    let running = std::fs::read_to_string("/run/containers/networks/aardvark-dns/aardvark.pid")
        .ok()
        .and_then(|pid| pid.trim().parse::<u32>().ok())
        .filter(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
    assert_eq!(running, None, "an aardvark-dns of this host's podman is running; the test needs to start its own");
    let cgroup = TestCgroup::new("pm-podman");
    let podman = Podman { dir: &dir, cgroup: &cgroup, netns: &netns, storage: dir.path.join("podman") };

    // The image: busybox and a page; pushed to both registries.
    let root = dir.path.join("webroot");
    std::fs::create_dir_all(root.join("bin")).expect("rootfs");
    std::fs::create_dir_all(root.join("www")).expect("rootfs");
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("busybox-static is installed by cargo xtask setup");
    std::fs::write(root.join("www/index.html"), format!("{PAGE}\n")).expect("page");
    let tar = dir.path.join("web.tar");
    let tarred = Command::new("tar").arg("-C").arg(&root).arg("-cf").arg(&tar).arg(".").status().expect("tar");
    assert!(tarred.success());
    podman.ok(&["import", &tar.display().to_string(), LOCAL_IMAGE]);
    for registry in [ALLOWED, BLOCKED] {
        podman.ok(&["push", "--tls-verify=false", LOCAL_IMAGE, &format!("{registry}/{IMAGE}")]);
    }
    let _ = podman.run(&["network", "rm", "-f", NETWORK]);
    podman.ok(&["network", "create", NETWORK]);
    let mut web = vec!["run", "-d"];
    web.extend(ULIMITS);
    web.extend([
        "--name",
        "web",
        "--network",
        NETWORK,
        "--network-alias",
        "database",
        LOCAL_IMAGE,
        "/bin/busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/www",
    ]);
    podman.ok(&web);
    let aardvark = wait_for(Duration::from_secs(10), || {
        cgroup
            .pids()
            .into_iter()
            .find(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "aardvark-dns"))
    })
    .expect("podman started aardvark-dns in the test's cgroup");

    // Without ram.
    let before = checks(&podman);
    println!("without ram: {before:#?}");
    for (check, result) in &before {
        assert_eq!(result, "ok", "without ram, {check}");
    }
    let pulls_before = pulls(&podman);
    assert!(pulls_before.values().all(|ok| *ok), "without ram: {pulls_before:?}");

    // ram enforcing podman's cgroup (aardvark-dns included), one registry.
    let policy = format!(
        "mode = \"enforce\"\n[dns]\nresolvers = [\"{RESOLVER}\"]\n{}[[target]]\nname = \"podman\"\ncgroup = \"{}\"\n[[allow]]\nhost = \"allowed.registry.test\"\n",
        netns.dns_trust(),
        cgroup.path.display()
    );
    let ramd = Ramd::start(&policy);
    ramd.wait_log("aardvark-dns recognised", |e| {
        e["pid"].as_i64() == Some(i64::from(aardvark))
            && e["message"].as_str().is_some_and(|m| m.contains("may answer its clients, from udp port 53"))
    });
    let after = checks(&podman);
    println!("with ram: {after:#?}");
    assert_eq!(after, before, "{}", ramd.log_text());
    assert!(ramd.counter("podman", "forward_allowed") >= 1, "aardvark-dns's answers were not the forwarder's");
    let pulls_after = pulls(&podman);
    let expected: BTreeMap<&str, bool> =
        [("pull from the allowed registry", true), ("pull from the blocked registry", false)].into();
    assert_eq!(pulls_after, expected, "{}", ramd.log_text());

    // Sending from port 53 is aardvark-dns's alone: the probe as root, and
    // a copy of it named aardvark-dns with aardvark-dns's arguments, are
    // judged like anyone.
    let from = format!("{HOST_ADDR}:53");
    assert_eq!(probe(Some(&cgroup), Some(&netns), &["sendto-from", &from, BLOCKED_ADDR, "5000"]), "EPERM");
    let fake = dir.path.join("fake").join("aardvark-dns");
    std::fs::create_dir_all(fake.parent().expect("dir")).expect("dir");
    std::fs::copy(probe_bin(), &fake).expect("copy probe");
    let mut cmd = Command::new(&fake);
    cmd.args(["after-ms", "400", "sendto-from", &from, BLOCKED_ADDR, "5000", "--config", "/tmp", "-p", "53", "run"]);
    place(&mut cmd, Some(&cgroup.path), Some(&netns));
    let out = cmd.output().expect("fake aardvark-dns");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "EPERM", "a copy named aardvark-dns: {}", text(&out));
}
