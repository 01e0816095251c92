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
    /// The network namespaces in /run/netns before the test: netavark makes
    /// one per container there (netns-UUID), and a container whose cleanup
    /// podman could not finish leaves its own behind.
    namespaces_before: std::collections::BTreeSet<String>,
}

/// The names in /run/netns.
fn named_namespaces() -> std::collections::BTreeSet<String> {
    std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

impl<'a> Podman<'a> {
    fn new(dir: &'a TempDir, cgroup: &'a TestCgroup, netns: &'a Netns) -> Self {
        Podman { dir, cgroup, netns, storage: dir.path.join("podman"), namespaces_before: named_namespaces() }
    }
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
        // The containers' namespaces netavark made during the test.
        for name in named_namespaces().difference(&self.namespaces_before).filter(|n| n.starts_with("netns-")) {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
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
    // podman's cgroupfs manager makes cgroup v1 directories of its own
    // (libpod_parent, and conmon in it); the test's go with it, unless the
    // host had them before.
    let _v1 = (!std::path::Path::new("/sys/fs/cgroup/memory/libpod_parent").exists())
        .then(|| V1Parents("libpod_parent".into()));
    // And the same directory in the v2 hierarchy (empty: the containers'
    // processes stay in the test's cgroup there).
    let _v2 = (!std::path::Path::new("/sys/fs/cgroup/unified/libpod_parent").exists())
        .then(|| RemovedDir(std::path::PathBuf::from("/sys/fs/cgroup/unified/libpod_parent")));
    let podman = Podman::new(&dir, &cgroup, &netns);

    // The image: busybox and a page; pushed to both registries.
    let tar = super::web_image_tar(&dir, PAGE);
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

/// A root filesystem with busybox, the host's C library (copies: only the
/// file aardvark-dns is run from must be the host's), and the pose's
/// launcher and payload built from `runtime/pose`.
fn pose_image(podman: &Podman, dir: &TempDir) {
    let root = dir.path.join("poserootfs");
    for sub in ["bin", "lib64", "lib/x86_64-linux-gnu"] {
        std::fs::create_dir_all(root.join(sub)).expect("rootfs");
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("busybox");
    std::fs::create_dir_all(root.join("copy")).expect("rootfs");
    std::fs::copy("/usr/lib/podman/aardvark-dns", root.join("copy/aardvark-dns")).expect("aardvark-dns");
    std::fs::copy("/lib64/ld-linux-x86-64.so.2", root.join("lib64/ld-linux-x86-64.so.2")).expect("ld.so");
    for lib in ["libc.so.6", "libm.so.6", "libgcc_s.so.1"] {
        std::fs::copy(format!("/lib/x86_64-linux-gnu/{lib}"), root.join("lib/x86_64-linux-gnu").join(lib)).expect(lib);
    }
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/runtime/pose");
    let launch = root.join("launch");
    let built = Command::new("gcc").args(["-static", "-O2", "-o"]).arg(&launch).arg(src.join("launch.c")).status();
    assert!(built.is_ok_and(|s| s.success()), "gcc launch.c");
    let payload = root.join("payload.so");
    let built = Command::new("gcc")
        .args(["-shared", "-fPIC", "-O2"])
        .arg(format!("-DFROM=\"{HOST_ADDR}\""))
        .arg(format!("-DTO=\"{BLOCKED_ADDR}\""))
        .arg("-DPORT=5001")
        .arg("-o")
        .arg(&payload)
        .arg(src.join("payload.c"))
        .status();
    assert!(built.is_ok_and(|s| s.success()), "gcc payload.c");
    // Preloaded into every dynamic program the container runs (a secure
    // exec ignores LD_PRELOAD paths, not this file).
    std::fs::create_dir_all(root.join("etc")).expect("rootfs");
    std::fs::write(root.join("etc/ld.so.preload"), "/payload.so\n").expect("ld.so.preload");
    let tar = dir.path.join("pose.tar");
    let tarred = Command::new("tar").arg("-C").arg(&root).arg("-cf").arg(&tar).arg(".").status().expect("tar");
    assert!(tarred.success());
    podman.ok(&["import", &tar.display().to_string(), POSE_IMAGE]);
}

/// Removes the cgroup v1 directories podman's cgroupfs manager made for a
/// `--cgroup-parent` (its containers' own are removed with them).
struct V1Parents(String);

impl Drop for V1Parents {
    fn drop(&mut self) {
        let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") else { return };
        for entry in entries.flatten() {
            let dir = entry.path().join(&self.0);
            if entry.file_name() != "unified" && dir.is_dir() {
                let _ = std::fs::remove_dir(dir.join("conmon"));
                let _ = std::fs::remove_dir(&dir);
            }
        }
    }
}

/// An empty directory the test's podman made, removed on drop.
struct RemovedDir(PathBuf);

impl Drop for RemovedDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(self.0.join("conmon"));
        let _ = std::fs::remove_dir(&self.0);
    }
}

const POSE_IMAGE: &str = "localhost/ram-podman/pose:1";

/// Red team 9: a container that runs as root (uid 0 of the initial user
/// namespace, without the capabilities or a writable cgroupfs to leave the
/// cgroup) with the host's network (enforced like the runtime: it shares
/// its cgroup and namespace) and pid namespace. It reaches the host's
/// aardvark-dns file through /proc/PID/root of any unprivileged host
/// process (with that process's fs ids: ptrace-read access is all /proc
/// asks) and runs it, as root, with a payload preloaded: ramd sees "a
/// root process running the host's aardvark-dns" (its parent is not
/// checked) and lets it send UDP from port 53 anywhere.
#[test]
fn a_root_container_cannot_pose_as_aardvark_dns() {
    require_root();
    let netns = Netns::new("pp");
    netns.add_host_interface(
        "rampose0",
        &[&format!("{BLOCKED_ADDR}/24"), &format!("{RESOLVER}/24"), &format!("{HOST_ADDR}/24")],
    );
    let dir = TempDir::new("pp");
    let cgroup = TestCgroup::new("pp-podman");
    // The container in the runtime's cgroup v2 (README: a setup that leaves
    // containers there; hosts where they share it anyway are enforced
    // alike). cgroupfs makes the same directory in each v1 hierarchy.
    let name = cgroup.path.file_name().expect("name").to_string_lossy().to_string();
    let parent = format!("/{name}");
    let _v1 = V1Parents(name.clone());
    let podman = Podman::new(&dir, &cgroup, &netns);
    pose_image(&podman, &dir);
    // Any unprivileged process of the host (a daemon's user, a login).
    let mut nobody = Command::new("setpriv");
    nobody.args(["--reuid", "65534", "--regid", "65534", "--clear-groups", "sleep", "120"]);
    let nobody = Proc::spawn("sleep as nobody", &mut nobody);
    let pose = |label: &str, copy: bool| {
        let mut listener = Command::new(probe_bin());
        listener.args(["await-udp", "5001", "4"]).stdout(std::process::Stdio::piped());
        place(&mut listener, None, Some(&netns));
        let listener = listener.spawn().expect("listener");
        std::thread::sleep(Duration::from_millis(300));
        let pid = nobody.pid().to_string();
        let mut all = vec!["run", "--rm"];
        all.extend(ULIMITS);
        all.extend(["--cgroup-parent", &parent]);
        all.extend(["--network", "host", "--pid", "host", POSE_IMAGE, "/launch", &pid, "65534", "65534"]);
        if copy {
            all.push("/copy/aardvark-dns");
        }
        let out = podman.run(&all);
        let heard = listener.wait_with_output().expect("listener");
        let result = (
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            String::from_utf8_lossy(&heard.stdout).trim().to_string(),
        );
        println!("{label}: send {:?}, listener {:?}", result.0, result.1);
        for line in String::from_utf8_lossy(&out.stderr).lines().filter(|l| l.starts_with("cgroup")) {
            println!("  {line}");
        }
        result
    };
    let before = pose("without ram", false);
    assert_eq!(before, ("ok".to_string(), "got 3".to_string()), "without ram");

    let policy = format!(
        "mode = \"enforce\"\n[dns]\nresolvers = [\"{RESOLVER}\"]\n{}[[target]]\nname = \"podman\"\ncgroup = \"{}\"\n[[allow]]\nhost = \"allowed.registry.test\"\n",
        netns.dns_trust(),
        cgroup.path.display()
    );
    let ramd = Ramd::start(&policy);
    ramd.wait_attached();
    // The container is enforced: a copy of aardvark-dns is refused.
    let copy = pose("with ram, a copy of aardvark-dns", true);
    assert_eq!(copy, ("EPERM".to_string(), "nothing".to_string()), "a copy");
    let after = pose("with ram", false);
    for line in ramd.log_text().lines().filter(|l| l.contains("aardvark-dns")) {
        println!("ramd: {line}");
    }
    assert_eq!(after, ("EPERM".to_string(), "nothing".to_string()), "a root container posed as aardvark-dns");
}
