//! Rootless podman under enforcement. A user's podman gives its containers
//! the network through slirp4netns, which runs as that user in podman's
//! cgroup and network namespace: every connection a container makes is a
//! socket of slirp4netns there. podman runs as a user of the test's own, in
//! the test's cgroup and namespace (a host without systemd: the containers'
//! processes stay in that cgroup too, in namespaces of their own). The same
//! checks run before ramd starts, with ramd enforcing a one-registry policy
//! on that cgroup with helpers judged (the default: the containers reach
//! only the policy), and with `rootless_helpers = "pass"`: containers
//! resolve a registry's name and reach a registry outside the policy by
//! name and by address, exactly as without ram; pulls by podman itself stay
//! limited. Then the relay's pass is
//! attacked by the same user: the host's slirp4netns with a library
//! preloaded, a copy of it, and root running it, each connecting where the
//! policy does not allow.

use std::{collections::BTreeMap, os::unix::fs::PermissionsExt, path::PathBuf, process::Command};

use ram_tests::{docker::text, *};

const ALLOWED: &str = "allowed.registry.test:5000";
const BLOCKED: &str = "blocked.registry.test:5000";
const ALLOWED_ADDR: &str = "10.203.0.1";
const BLOCKED_ADDR: &str = "10.203.0.2";
const RESOLVER: &str = "10.203.0.53";
const LOCAL_IMAGE: &str = "localhost/ram-rootless/busybox:1";
const IMAGE: &str = "ram/busybox:1";
const PAGE: &str = "ram-rootless-page";
/// podman's default limits are above this machine's hard limits.
const ULIMITS: [&str; 4] = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"];

/// A user of the test's own, with subordinate ids (useradd gives them),
/// removed with its home on drop.
struct User {
    name: String,
    uid: u32,
    home: PathBuf,
}

impl User {
    fn new() -> Self {
        let name = format!("ramrl{}", std::process::id() % 100_000);
        let _ = Command::new("userdel").args(["-r", &name]).output();
        let out = Command::new("useradd").args(["-m", "-s", "/bin/sh", &name]).output().expect("useradd");
        assert!(out.status.success(), "useradd: {}", String::from_utf8_lossy(&out.stderr));
        let id = Command::new("id").args(["-u", &name]).output().expect("id");
        let uid = String::from_utf8_lossy(&id.stdout).trim().parse().expect("uid");
        let subuid = std::fs::read_to_string("/etc/subuid").unwrap_or_default();
        assert!(subuid.lines().any(|l| l.starts_with(&format!("{name}:"))), "useradd gave {name} no subordinate ids");
        User { home: PathBuf::from(format!("/home/{name}")), name, uid }
    }
}

impl Drop for User {
    fn drop(&mut self) {
        // Its processes are in the test's cgroup, killed with it first.
        let _ = Command::new("userdel").args(["-r", &self.name]).output();
    }
}

/// /dev/net/tun readable and writable by everyone (Debian's udev rule;
/// this machine's device node is root's alone), as it was on drop.
struct TunOpen(Option<u32>);

impl TunOpen {
    fn new() -> Self {
        let mode = std::fs::metadata("/dev/net/tun").map(|m| m.permissions().mode()).ok();
        let _ = std::fs::set_permissions("/dev/net/tun", std::fs::Permissions::from_mode(0o666));
        TunOpen(mode)
    }
}

impl Drop for TunOpen {
    fn drop(&mut self) {
        if let Some(mode) = self.0 {
            let _ = std::fs::set_permissions("/dev/net/tun", std::fs::Permissions::from_mode(mode & 0o7777));
        }
    }
}

/// The user's podman, with storage of the test's own, in the test's
/// cgroup and namespace, with the test's resolver in /etc/resolv.conf
/// (slirp4netns forwards its containers' DNS there).
struct Podman<'a> {
    dir: &'a TempDir,
    cgroup: &'a TestCgroup,
    netns: &'a Netns,
    user: &'a User,
    storage: PathBuf,
}

impl Podman<'_> {
    fn command(&self, args: &[&str]) -> Command {
        let storage = |sub: &str| self.storage.join(sub).display().to_string();
        let mut program: Vec<String> = vec![
            "setpriv".into(),
            "--reuid".into(),
            self.user.uid.to_string(),
            "--regid".into(),
            self.user.uid.to_string(),
            "--clear-groups".into(),
            "env".into(),
            format!("HOME={}", self.user.home.display()),
            format!("XDG_RUNTIME_DIR={}", storage("xdg")),
            format!("USER={}", self.user.name),
            "podman".into(),
            "--root".into(),
            storage("root"),
            "--runroot".into(),
            storage("run"),
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

    /// A container on rootless podman's default network (slirp4netns).
    fn container(&self, args: &[&str]) -> std::process::Output {
        let mut all = vec!["run", "--rm"];
        all.extend(ULIMITS);
        all.extend([LOCAL_IMAGE, "/bin/busybox"]);
        all.extend_from_slice(args);
        self.run(&all)
    }
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

/// A GET of a registry's /v2/ with busybox.
fn http_get(host: &str) -> String {
    format!("printf 'GET /v2/ HTTP/1.0\\r\\n\\r\\n' | /bin/busybox nc -w 5 {host} 5000")
}

fn checks(podman: &Podman) -> BTreeMap<&'static str, String> {
    let mut checks = BTreeMap::new();
    checks.insert(
        "a registry's name",
        outcome(&podman.container(&["nslookup", "-type=a", "allowed.registry.test"]), ALLOWED_ADDR),
    );
    checks.insert(
        "a registry outside the policy, by name",
        outcome(&podman.container(&["sh", "-c", &http_get("blocked.registry.test")]), "200 OK"),
    );
    checks.insert(
        "a registry outside the policy, by address",
        outcome(&podman.container(&["sh", "-c", &http_get(BLOCKED_ADDR)]), "200 OK"),
    );
    // pasta, the other helper (podman 4.4 and later, rootless Docker), as
    // a rootless runtime runs it: a namespace of its own for a command.
    // Debian 12's podman cannot use it, so the user runs it directly. The
    // command waits for ramd to have seen pasta (within 50 ms), as a
    // runtime's container starts after its network is up.
    let mut pasta = Command::new("setpriv");
    pasta
        .args(["--reuid", &podman.user.uid.to_string(), "--regid", &podman.user.uid.to_string(), "--clear-groups"])
        .args(["timeout", "30", "pasta", "--config-net", "--", "/bin/busybox", "sh", "-c"])
        // wget: busybox nc through pasta waits for an end that never comes
        // (and busybox wget -T with -S crashes).
        .arg(format!("sleep 0.5; /bin/busybox wget -q -S -O /dev/null http://{BLOCKED_ADDR}:5000/v2/"));
    place(&mut pasta, Some(&podman.cgroup.path), Some(podman.netns));
    checks
        .insert("pasta: a registry outside the policy, by address", outcome(&pasta.output().expect("pasta"), "200 OK"));
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

/// The relay payload (tests/runtime/pose/relay.c), built into `dir`.
fn relay_payload(dir: &TempDir) -> PathBuf {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/runtime/pose/relay.c");
    let payload = dir.path.join("relay.so");
    let built = Command::new("gcc")
        .args(["-shared", "-fPIC", "-O2"])
        .arg(format!("-DTO=\"{BLOCKED_ADDR}\""))
        .arg("-DPORT=5000")
        .arg("-o")
        .arg(&payload)
        .arg(&src)
        .status();
    assert!(built.is_ok_and(|s| s.success()), "gcc relay.c");
    std::fs::set_permissions(&payload, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    payload
}

#[test]
fn rootless_podmans_containers_reach_the_world_through_slirp4netns_and_its_pulls_stay_limited() {
    require_root();
    let netns = Netns::new("rl");
    netns.add_host_interface(
        "ramrl0",
        &[&format!("{ALLOWED_ADDR}/24"), &format!("{BLOCKED_ADDR}/24"), &format!("{RESOLVER}/24")],
    );
    // pasta takes the namespace's addresses and routes from the interface
    // of its default route, which must have a link (a bridge without ports
    // has none): a veth pair.
    for args in [
        &["link", "add", "ramrlv0", "type", "veth", "peer", "name", "ramrlv1"][..],
        &["link", "set", "ramrlv0", "up"],
        &["link", "set", "ramrlv1", "up"],
        &["addr", "add", "10.205.0.2/24", "dev", "ramrlv0"],
        &["route", "add", "default", "via", "10.205.0.1", "dev", "ramrlv0", "onlink"],
    ] {
        let out = Command::new("ip").args(["-n", &netns.name]).args(args).output().expect("ip");
        assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let dir = TempDir::new("rl");
    // The user reads the test's files (resolv.conf, the payload) and owns
    // podman's storage.
    std::fs::set_permissions(&dir.path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let _dns = dnsmasq(
        &netns,
        &dir,
        RESOLVER,
        &[("allowed.registry.test", ALLOWED_ADDR), ("blocked.registry.test", BLOCKED_ADDR)],
        300,
    );
    let _allowed_registry = registry(&netns, &dir, "registry-allowed", &format!("{ALLOWED_ADDR}:5000"));
    let _blocked_registry = registry(&netns, &dir, "registry-blocked", &format!("{BLOCKED_ADDR}:5000"));
    let _tun = TunOpen::new();
    let user = User::new();
    // Dropped before the user: its processes (podman's pause process among
    // them) go with the cgroup.
    let cgroup = TestCgroup::new("rl-podman");
    let storage = dir.path.join("podman");
    for sub in ["", "xdg", "root", "run"] {
        std::fs::create_dir_all(storage.join(sub)).expect("storage");
        let chowned = Command::new("chown").arg(format!("{0}:{0}", user.uid)).arg(storage.join(sub)).status();
        assert!(chowned.is_ok_and(|s| s.success()), "chown");
    }
    std::fs::set_permissions(storage.join("xdg"), std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let podman = Podman { dir: &dir, cgroup: &cgroup, netns: &netns, user: &user, storage };

    let tar = super::web_image_tar(&dir, PAGE);
    std::fs::set_permissions(&tar, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    podman.ok(&["import", &tar.display().to_string(), LOCAL_IMAGE]);
    for registry in [ALLOWED, BLOCKED] {
        podman.ok(&["push", "--tls-verify=false", LOCAL_IMAGE, &format!("{registry}/{IMAGE}")]);
    }

    // Without ram.
    let before = checks(&podman);
    println!("without ram: {before:#?}");
    for (check, result) in &before {
        assert_eq!(result, "ok", "without ram, {check}");
    }
    let pulls_before = pulls(&podman);
    assert!(pulls_before.values().all(|ok| *ok), "without ram: {pulls_before:?}");
    // The poses, without ram: each reaches the blocked registry.
    // The user's own library (a root-owned file is the admin's).
    let payload = relay_payload(&dir);
    let chowned = Command::new("chown").arg(format!("{0}:{0}", user.uid)).arg(&payload).status();
    assert!(chowned.is_ok_and(|s| s.success()), "chown");
    let copy = dir.path.join("copy").join("slirp4netns");
    std::fs::create_dir_all(copy.parent().expect("dir")).expect("dir");
    std::fs::copy("/usr/bin/slirp4netns", &copy).expect("copy slirp4netns");
    let pose = |label: &str, program: &str, as_root: bool| {
        let mut cmd = Command::new("setpriv");
        let id = if as_root { "0".to_string() } else { user.uid.to_string() };
        cmd.args(["--reuid", &id, "--regid", &id, "--clear-groups", "env"])
            .arg(format!("LD_PRELOAD={}", payload.display()))
            .args([program, "--netns-type=path", "/nonexistent", "tap0"]);
        place(&mut cmd, Some(&cgroup.path), Some(&netns));
        let out = cmd.output().expect("pose");
        let result = String::from_utf8_lossy(&out.stdout).trim().to_string();
        println!("{label}: {result:?}");
        result
    };
    let poses = || -> BTreeMap<&'static str, String> {
        [
            ("the host's slirp4netns with a library preloaded", pose("preloaded", "/usr/bin/slirp4netns", false)),
            ("a copy of slirp4netns", pose("a copy", &copy.display().to_string(), false)),
            ("root running the host's slirp4netns", pose("as root", "/usr/bin/slirp4netns", true)),
        ]
        .into()
    };
    let poses_before = poses();
    assert!(poses_before.values().all(|r| r == "ok"), "without ram, every pose connects: {poses_before:?}");

    // ram enforcing podman's cgroup, one registry, rootless helpers judged
    // (the default): the containers' traffic is the helper's, limited to
    // the policy like podman's own.
    let policy = |helpers: &str| {
        format!(
            "mode = \"enforce\"\n[dns]\nresolvers = [\"{RESOLVER}\"]\n{}[[target]]\nname = \"podman\"\ncgroup = \"{}\"\n{helpers}[[allow]]\nhost = \"allowed.registry.test\"\n",
            netns.dns_trust(),
            cgroup.path.display()
        )
    };
    let ramd = Ramd::start(&policy(""));
    ramd.wait_attached();
    let judged = checks(&podman);
    println!("with ram, helpers judged: {judged:#?}");
    assert_eq!(judged["a registry's name"], "ok", "DNS to the trusted resolver passes");
    for check in [
        "a registry outside the policy, by address",
        "a registry outside the policy, by name",
        "pasta: a registry outside the policy, by address",
    ] {
        assert_ne!(judged[check], "ok", "{check}: a helper was let through by default:\n{}", ramd.log_text());
    }
    // `rootless_helpers = "pass"`: the containers as without ram.
    ramd.write_policy(&policy("rootless_helpers = \"pass\"\n"));
    let out = ramd.ramctl(&["reload"]);
    assert!(out.status.success(), "reload: {}", String::from_utf8_lossy(&out.stderr));
    let after = checks(&podman);
    println!("with ram: {after:#?}");
    assert_eq!(after, before, "{}", ramd.log_text());
    let relays: Vec<String> = ramd
        .log_text()
        .lines()
        .filter(|l| l.contains("rootless network helper") && l.contains(&format!("as uid {}", user.uid)))
        .map(str::to_string)
        .collect();
    assert!(!relays.is_empty(), "slirp4netns was never let through:\n{}", ramd.log_text());
    assert!(ramd.counter("podman", "other_netns_passed") >= 1, "the containers' traffic did not pass as theirs");
    let pulls_after = pulls(&podman);
    let expected: BTreeMap<&str, bool> =
        [("pull from the allowed registry", true), ("pull from the blocked registry", false)].into();
    assert_eq!(pulls_after, expected, "{}", ramd.log_text());

    let poses_after = poses();
    for (pose, result) in &poses_after {
        assert_eq!(result, "EPERM", "BYPASS: {pose} reached a registry outside the policy:\n{}", ramd.log_text());
    }
}

/// Builds `pose/NAME.c`, then runs it as a user (nobody: any user but
/// root) in an enforced cgroup, first without ram, then with ramd enforcing
/// a one-name policy, with `args(port, dir)` where a listener waits on
/// 127.0.0.1:port of the test's namespace, outside the policy. The pose
/// must connect without ram; returns what it printed with ram (after
/// checking that the user's plain connect is refused), and ramd's log.
fn relay_pose(name: &str, target: &str, args: impl Fn(&str, &TempDir) -> Vec<String>) -> (String, String) {
    relay_pose_in(name, target, |_| {}, args)
}

/// [`relay_pose`], with `setup` run on the scene first.
fn relay_pose_in(
    name: &str,
    target: &str,
    setup: impl Fn(&Scene),
    args: impl Fn(&str, &TempDir) -> Vec<String>,
) -> (String, String) {
    let scene = Scene::new(&format!("rl-{name}"), &[("allowed.registry.test", "127.0.0.9")], 300);
    setup(&scene);
    std::fs::set_permissions(&scene.dir.path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let port = free_port().to_string();
    let mut listener = Command::new(probe_bin());
    listener.args(["accept-loop", "127.0.0.1", &port]);
    place(&mut listener, None, Some(&scene.netns));
    let _listener = Proc::spawn("listener", &mut listener);
    let up = wait_for(std::time::Duration::from_secs(10), || {
        (probe(None, Some(&scene.netns), &["connect", "127.0.0.1", &port]) == "ok").then_some(())
    });
    assert!(up.is_some(), "listener did not come up");

    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/runtime/pose/{name}.c"));
    let program = scene.dir.path.join(name);
    let built = Command::new("gcc").args(["-O2", "-o"]).arg(&program).arg(&src).status();
    assert!(built.is_ok_and(|s| s.success()), "gcc {name}.c");
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let as_user = |program: &[String]| {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid", "65534", "--regid", "65534", "--clear-groups"]).args(program);
        place(&mut cmd, Some(&scene.cgroup.path), Some(&scene.netns));
        let out = cmd.output().expect("run as user");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let mut pose_args = vec![program.display().to_string()];
    pose_args.extend(args(&port, &scene.dir));
    let pose = || as_user(&pose_args);
    let direct = || as_user(&[probe_bin().display().to_string(), "connect".into(), "127.0.0.1".into(), port.clone()]);
    assert_eq!((pose(), direct()), ("ok".to_string(), "ok".to_string()), "without ram both connect");

    let rules = format!("{target}[[allow]]\nhost = \"allowed.registry.test\"\n");
    let policy = format!("mode = \"enforce\"\n{}", scene.policy("", &rules));
    let ramd = Ramd::start(&policy);
    ramd.wait_attached();
    assert_eq!(direct(), "EPERM", "the user's own connect is judged:\n{}", ramd.log_text());
    let result = pose();
    println!("{name}: {result:?}");
    (result, ramd.log_text())
}

/// A user's process in the enforced cgroup starts the host's own
/// slirp4netns as a child under ptrace (any user may trace its own child;
/// no user namespace and no tap device needed). Stopped at its first
/// instruction it is everything ramd checks: the host's file, one non-root
/// uid, argv[0] "slirp4netns", every executable mapping (itself and ld.so)
/// the host's root-owned file. ramd registers it as a relay; the tracer
/// then makes it run socket() and connect() to an address outside the
/// policy (127.0.0.1 here, in the test's namespace). No library of the
/// user's is mapped: the preload check does not see it, yet the connect is
/// the user's, not a container's. Closed where the target passes rootless
/// helpers: a traced process is none (one traced only after ramd saw it is
/// the accepted risk of `rootless_helpers = "pass"`, README).
#[test]
fn a_helper_its_user_traces_carries_only_its_containers_traffic() {
    require_root();
    let (result, log) = relay_pose("trace", "rootless_helpers = \"pass\"\n", |port, _| {
        ["/usr/bin/slirp4netns", "127.0.0.1", port, "600"].map(str::to_string).to_vec()
    });
    assert_eq!(
        result, "EPERM",
        "BYPASS: the host's slirp4netns, traced by its user, connected outside the policy:\n{log}"
    );
}

/// The host's slirp4netns, run by its user under its own name with nothing
/// of the user's in it, is let through where the target passes rootless
/// helpers; its user then attaches with ptrace and, after a scan's time,
/// makes it connect outside the policy. ramd looks at a registered relay
/// again on every scan: a traced helper loses its pass. (Within the 50 ms
/// before that look, or through /proc/PID/mem, is the accepted risk of
/// `rootless_helpers = "pass"`, README.)
#[test]
fn a_helper_traced_after_it_was_let_through_loses_its_pass() {
    require_root();
    let (result, log) = relay_pose("latetrace", "rootless_helpers = \"pass\"\n", |port, dir| {
        let fifo = dir.path.join("netns-fifo");
        let made = Command::new("mkfifo").args(["-m", "666"]).arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        ["/usr/bin/slirp4netns", &fifo.display().to_string(), "127.0.0.1", port, "600", "300"]
            .map(str::to_string)
            .to_vec()
    });
    assert!(log.contains("rootless network helper ["), "the helper was never let through:\n{log}");
    assert_eq!(result, "EPERM", "BYPASS: a helper traced after registration connected for its user:\n{log}");
}

/// The row's uid keeps another user out of a reused pid, not the helper's
/// own user, who owns the helper: the host's slirp4netns, run by the user
/// under its own name with nothing of the user's in it (it blocks opening a
/// FIFO given as its namespace's path), is let through; the user cycles
/// pids to just below it, kills it and forks, and the child, the user's own
/// code at the helper's pid, connects outside the policy before ramd's next
/// scan (every 50 ms) sees the pid reused. No check of ramd's can close
/// that, nor writes through /proc/PID/mem: rootless helpers are judged
/// unless a target says `rootless_helpers = "pass"`, which accepts that the
/// cgroup's user can get a path out (README). This is the default.
#[test]
fn a_helpers_pid_reused_by_its_own_user_carries_nothing() {
    require_root();
    let (result, log) = relay_pose("reuse", "", |port, dir| {
        let fifo = dir.path.join("netns-fifo");
        let made = Command::new("mkfifo").args(["-m", "666"]).arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        ["/usr/bin/slirp4netns", &fifo.display().to_string(), "127.0.0.1", port, "600"].map(str::to_string).to_vec()
    });
    assert_ne!(result, "missed", "another process took the helper's pid five times");
    assert_eq!(
        result, "EPERM",
        "BYPASS: the user's own process at its helper's pid connected outside the policy:\n{log}"
    );
}

/// pasta, the other helper the README names, started by a user in the
/// enforced cgroup the way rootless runtimes start it (`pasta --config-net
/// -- COMMAND`: a namespace of its own, the command inside): the command's
/// connection to an address outside the policy passes with ram as without,
/// as a container's does. On a CPU with AVX2 pasta re-execs
/// /proc/self/exe's target plus ".avx2", /usr/bin/passt.avx2 (pasta is a
/// link to passt), so the process is named passt.avx2, with argv[0] still
/// "pasta".
#[test]
fn pastas_namespace_reaches_what_a_container_reaches_with_ram_as_without() {
    require_root();
    let netns = Netns::new("rl-pasta");
    // pasta takes its namespace's address and routes from the host's
    // interface with a default route.
    netns.add_host_interface("ramrlp0", &["10.204.0.1/24", "10.204.0.2/24"]);
    let ip = |args: &[&str]| {
        let mut cmd = Command::new("ip");
        if !netns.name.is_empty() {
            cmd.args(["-n", &netns.name]);
        }
        cmd.args(args).output().expect("ip")
    };
    if ip(&["-4", "route", "show", "default"]).stdout.is_empty() {
        let out = ip(&["route", "add", "default", "via", "10.204.0.254", "dev", "ramrlp0"]);
        assert!(out.status.success(), "default route: {}", String::from_utf8_lossy(&out.stderr));
    }
    let dir = TempDir::new("rl-pasta");
    let _dns = dnsmasq(&netns, &dir, "127.0.0.53", &[("allowed.registry.test", "127.0.0.9")], 300);
    let port = free_port().to_string();
    let mut listener = Command::new(probe_bin());
    listener.args(["accept-loop", "10.204.0.2", &port]);
    place(&mut listener, None, Some(&netns));
    let _listener = Proc::spawn("listener", &mut listener);
    let up = wait_for(std::time::Duration::from_secs(10), || {
        (probe(None, Some(&netns), &["connect", "10.204.0.2", &port]) == "ok").then_some(())
    });
    assert!(up.is_some(), "listener did not come up");
    let _tun = TunOpen::new();
    let cgroup = TestCgroup::new("rl-pasta");
    let through_pasta = || {
        let script = format!("/bin/busybox nc -w 3 10.204.0.2 {port} </dev/null && echo ok");
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid", "65534", "--regid", "65534", "--clear-groups", "pasta", "--config-net", "-f", "--"])
            .args(["/bin/busybox", "sh", "-c", &script]);
        place(&mut cmd, Some(&cgroup.path), Some(&netns));
        let out = cmd.output().expect("pasta");
        outcome(&out, "ok")
    };
    assert_eq!(through_pasta(), "ok", "without ram");

    let policy = format!(
        "mode = \"enforce\"\n[dns]\nresolvers = [\"127.0.0.53\"]\n{}[[target]]\nname = \"podman\"\ncgroup = \"{}\"\nrootless_helpers = \"pass\"\n[[allow]]\nhost = \"allowed.registry.test\"\n",
        netns.dns_trust(),
        cgroup.path.display()
    );
    let ramd = Ramd::start(&policy);
    ramd.wait_attached();
    let result = through_pasta();
    println!("through pasta with ram: {result}");
    assert_eq!(
        result,
        "ok",
        "pasta's namespace was cut off (pasta never let through as a relay):\n{}",
        ramd.log_text()
    );
}

/// Red team 16. A registered relay is looked at again on every scan, but
/// only for its user, its tracer and its mappings: ramd knows it by its
/// start time and command name, and an exec keeps the start time and takes
/// the command name from the file name it is given. pasta runs a command in
/// namespaces of its own (as rootless runtimes use it): its child, a clone
/// of pasta that is everything ramd checks (the host's file, argv[0]
/// "pasta", glibc mapped, not traced), waits for pasta's SIGUSR1 before it
/// execs the command. The user (nobody) stops pasta with SIGSTOP as soon as
/// the child appears (a signal to its own process: no ptrace, so neither
/// Yama nor a non-dumpable helper stops it), waits for ramd to register the
/// child as a relay, and sends the child SIGUSR1 itself. The command is a
/// link named after pasta's command name (passt.avx2 on AVX2 machines) to
/// the host's perl: the same start time and command name, the same user,
/// untraced, only root-owned host files mapped, so ramd keeps the row on
/// every later look. perl waits several scans, then connects a socket the
/// user made in the runtime's namespace before starting pasta (inherited
/// through pasta) to an address outside the policy. The README's accepted
/// risks are writes into a registered helper (ptrace within 50 ms,
/// /proc/PID/mem), which need ptrace access; this needs only kill().
#[test]
fn a_relay_that_execs_a_program_under_its_own_command_name_keeps_no_pass() {
    require_root();
    let _tun = TunOpen::new();
    let (result, log) = relay_pose_in(
        "pastaexec",
        "rootless_helpers = \"pass\"\n",
        |scene| {
            // pasta takes its namespace's address and routes from an
            // interface with a default route and a link: a veth pair.
            if scene.netns.name.is_empty() {
                return;
            }
            for args in [
                &["link", "add", "ramrtv0", "type", "veth", "peer", "name", "ramrtv1"][..],
                &["link", "set", "ramrtv0", "up"],
                &["link", "set", "ramrtv1", "up"],
                &["addr", "add", "10.206.0.2/24", "dev", "ramrtv0"],
                &["route", "add", "default", "via", "10.206.0.1", "dev", "ramrtv0", "onlink"],
            ] {
                let out = Command::new("ip").args(["-n", &scene.netns.name]).args(args).output().expect("ip");
                assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            }
        },
        |port, dir| {
            for name in ["pasta", "passt.avx2"] {
                let link = dir.path.join(name);
                let _ = std::fs::remove_file(&link);
                std::os::unix::fs::symlink("/usr/bin/perl", &link).expect("symlink");
            }
            [dir.path.display().to_string(), "127.0.0.1".into(), port.into(), "300".into()].to_vec()
        },
    );
    assert_ne!(result, "missed", "pasta signalled its child before it could be stopped, five times");
    assert_eq!(
        result, "EPERM",
        "BYPASS: pasta's child, registered as a relay, exec'd the host's perl under pasta's command name and connected outside the policy:\n{log}"
    );
}

/// Red team 16. A process whose /proc/PID/cmdline is empty is taken for
/// one caught in the middle of exec and looked at again on the next scan,
/// with nothing remembered, and that is decided before its tracer is looked
/// at. The user (nobody) starts the host's slirp4netns under ptrace
/// (PTRACE_TRACEME) with every argument an empty string: its cmdline is all
/// NULs, so every scan while it is traced says "not yet". The user lets the
/// loader map glibc, writes code of its own over the loader's text (a
/// private copy: /proc/PID/maps still names the host's ld.so), and
/// detaches; the code writes "slirp4netns" over the empty arguments, sleeps
/// while ramd registers an untraced slirp4netns of the host's with only the
/// host's files mapped (and finds it sound on every later look), then
/// connects outside the policy. The README says the host's slirp4netns
/// traced by its user from its start is refused (the pose `trace`, which
/// this one is with empty arguments).
#[test]
fn a_helper_traced_from_its_start_with_empty_arguments_carries_only_its_containers_traffic() {
    require_root();
    let (result, log) = relay_pose("earlytrace", "rootless_helpers = \"pass\"\n", |port, _| {
        ["/usr/bin/slirp4netns", "127.0.0.1", port, "400"].map(str::to_string).to_vec()
    });
    assert_eq!(
        result, "EPERM",
        "BYPASS: the host's slirp4netns, traced by its user from its start with empty arguments, was let through and connected outside the policy:\n{log}"
    );
}

/// Red team 16 (a legitimate setup broken). ramd now looks at a registered
/// relay on every scan and drops it, for good, once a file it has mapped is
/// no longer the file at that path. A package upgrade replaces files by
/// renaming a new one over the old (dpkg, rpm): unattended-upgrades of
/// passt, glibc or glib (slirp4netns) then cuts every running rootless
/// container off the network until it is restarted, where before the
/// change a helper let through kept its pass. Here pasta runs a command
/// (as a rootless runtime runs it); while the command waits, the test
/// "upgrades" pasta's program the way dpkg does (the same bytes, a new
/// file renamed over the old); the command's connection then goes out
/// through pasta, which ram no longer lets through.
#[test]
fn a_package_upgrade_does_not_cut_running_rootless_containers_off() {
    require_root();
    let netns = Netns::new("rl-upgrade");
    netns.add_host_interface("ramrlu0", &["10.207.0.1/24", "10.207.0.2/24"]);
    let ip = |args: &[&str]| {
        let mut cmd = Command::new("ip");
        if !netns.name.is_empty() {
            cmd.args(["-n", &netns.name]);
        }
        cmd.args(args).output().expect("ip")
    };
    if ip(&["-4", "route", "show", "default"]).stdout.is_empty() {
        let out = ip(&["route", "add", "default", "via", "10.207.0.254", "dev", "ramrlu0"]);
        assert!(out.status.success(), "default route: {}", String::from_utf8_lossy(&out.stderr));
    }
    let dir = TempDir::new("rl-upgrade");
    let _dns = dnsmasq(&netns, &dir, "127.0.0.53", &[("allowed.registry.test", "127.0.0.9")], 300);
    let port = free_port().to_string();
    let mut listener = Command::new(probe_bin());
    listener.args(["accept-loop", "10.207.0.2", &port]);
    place(&mut listener, None, Some(&netns));
    let _listener = Proc::spawn("listener", &mut listener);
    let up = wait_for(std::time::Duration::from_secs(10), || {
        (probe(None, Some(&netns), &["connect", "10.207.0.2", &port]) == "ok").then_some(())
    });
    assert!(up.is_some(), "listener did not come up");
    let _tun = TunOpen::new();
    let cgroup = TestCgroup::new("rl-upgrade");
    // dpkg's way: the new file written beside the old, renamed over it.
    let upgrade = || {
        for program in ["/usr/bin/passt", "/usr/bin/passt.avx2"] {
            let new = format!("{program}.dpkg-new");
            if std::fs::copy(program, &new).is_ok() {
                std::fs::rename(&new, program).expect("rename");
            }
        }
    };
    let through_pasta = |during: &dyn Fn()| {
        let script = format!("sleep 1.5; /bin/busybox nc -w 3 10.207.0.2 {port} </dev/null && echo ok");
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid", "65534", "--regid", "65534", "--clear-groups", "pasta", "--config-net", "-f", "--"])
            .args(["/bin/busybox", "sh", "-c", &script]);
        place(&mut cmd, Some(&cgroup.path), Some(&netns));
        cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        let child = cmd.spawn().expect("pasta");
        std::thread::sleep(std::time::Duration::from_millis(700));
        during();
        outcome(&child.wait_with_output().expect("pasta"), "ok")
    };
    assert_eq!(through_pasta(&upgrade), "ok", "without ram");

    let policy = format!(
        "mode = \"enforce\"\n[dns]\nresolvers = [\"127.0.0.53\"]\n{}[[target]]\nname = \"podman\"\ncgroup = \"{}\"\nrootless_helpers = \"pass\"\n[[allow]]\nhost = \"allowed.registry.test\"\n",
        netns.dns_trust(),
        cgroup.path.display()
    );
    let ramd = Ramd::start(&policy);
    ramd.wait_attached();
    assert_eq!(through_pasta(&|| {}), "ok", "pasta never let through:\n{}", ramd.log_text());
    let result = through_pasta(&upgrade);
    println!("through pasta across an upgrade: {result}");
    assert_eq!(
        result,
        "ok",
        "a running pasta lost its pass when its package was upgraded (same bytes, new file):\n{}",
        ramd.log_text()
    );
}
