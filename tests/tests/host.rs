//! The guest suite of `cargo xtask host-test`: ram on a Debian 12 host booted
//! by systemd on a pure cgroup v2 hierarchy, installed from its Debian
//! package on a running docker.service as Debian ships it.
//!
//! These tests run only inside that guest (xtask builds it, see
//! xtask/src/host.rs); elsewhere they are ignored. The guest's fixtures are
//! units of their own: dnsmasq on 10.99.0.1 (the host's resolver, in
//! /etc/resolv.conf) answers allowed.test = 10.99.0.2 and blocked.test =
//! 10.99.0.3, where two registries serve the same storage.
//!
//! The order is xtask's (PHASES in xtask/src/host.rs), over two boots:
//! - first boot, ram not installed: `package::install` (apt-get install on
//!   the running docker: the package's default policy, Docker Hub only, is
//!   enforced at once), then `package::upgrade`;
//! - second boot: `package::after_reboot` (still the default policy, from
//!   the first moment; then the suite's policy, which allows allowed.test
//!   port 5000 to dockerd and containerd, replaces it), then every other
//!   test, then `package::remove` (remove, then purge) last of all.

use std::{
    path::Path,
    process::{Command, Output},
    sync::OnceLock,
    time::{Duration, Instant},
};

use ram_tests::wait_for;

/// Docker's networking with and without ram (issue 15).
#[path = "host/networking.rs"]
mod networking;
/// ram's Debian package: install, upgrade, reboot, remove, purge.
#[path = "host/package.rs"]
mod package;

const GUEST: &str = "runs in the systemd guest: cargo xtask host-test";
const SUITE_DIR: &str = "/usr/local/lib/ram-suite";
const STATE_DIR: &str = "/var/lib/ram-suite";
const DOCKER_CGROUP: &str = "/sys/fs/cgroup/system.slice/docker.service";
const ALLOWED: &str = "allowed.test:5000";
const BLOCKED: &str = "blocked.test:5000";
const BLOCKED_ADDR: &str = "10.99.0.3";
const ALLOWED_ADDR: &str = "10.99.0.2";
const IMAGE: &str = "ram/busybox:1";
/// The same image under the name the policy's container target holds.
const BUILDER: &str = "allowed.test:5000/ram/builder:1";
/// Where xtask puts the two builds of the package: the plain version, and a
/// higher one for the upgrade.
const DEBS: &str = "/usr/local/lib/ram-suite/debs";

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program).args(args).output().unwrap_or_else(|e| panic!("cannot start {program}: {e}"))
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// What a failed container test needs to be understood: the exit status
/// and the last lines of ramd's and dockerd's journals.
fn diagnostics(output: &Output) -> String {
    let tail = |unit: &str| {
        let out = run("journalctl", &["-b", "-u", unit, "--no-pager", "-o", "cat", "-n", "25"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    format!(
        "{}\nstatus: {}\n--- ramd ---\n{}\n--- docker ---\n{}",
        text(output),
        output.status,
        tail("ramd"),
        tail("docker")
    )
}

/// Runs a command that must succeed; returns its stdout.
fn ok(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    assert!(out.status.success(), "{program} {args:?} failed: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn docker(args: &[&str]) -> Output {
    run("docker", args)
}

fn unit_property(unit: &str, property: &str) -> String {
    ok("systemctl", &["show", "--value", "-p", property, unit])
}

fn monotonic(unit: &str, property: &str) -> u64 {
    let value = unit_property(unit, property);
    value.parse().unwrap_or_else(|e| panic!("{unit} {property} = {value:?}: {e}"))
}

/// ramd's journal since this boot.
fn ramd_journal() -> String {
    ok("journalctl", &["-b", "-u", "ramd", "--no-pager", "-o", "cat"])
}

/// A tiny image made from busybox-static: a shell, wget, nslookup and httpd
/// serving /www. Pushed once to the allowed registry (both registries serve
/// the same storage, so the blocked one has it too).
fn pushed_image() -> &'static str {
    static PUSHED: OnceLock<()> = OnceLock::new();
    PUSHED.get_or_init(|| {
        let root = Path::new(STATE_DIR).join("image-root");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("bin")).expect("image root");
        std::fs::create_dir_all(root.join("www")).expect("image www");
        std::fs::copy("/usr/bin/busybox", root.join("bin/busybox")).expect("busybox-static");
        // The probe resolves and connects with code of its own (busybox's
        // static wget crashes in glibc's resolver in an empty image).
        std::fs::copy(Path::new(SUITE_DIR).join("ram-probe"), root.join("bin/ram-probe")).expect("ram-probe");
        std::os::unix::fs::symlink("busybox", root.join("bin/sh")).expect("sh");
        std::fs::write(root.join("www/index.html"), "ram-guest-page\n").expect("page");
        let tag = format!("{ALLOWED}/{IMAGE}");
        let import = format!("tar -C {} -c . | docker import - {tag}", root.display());
        ok("sh", &["-c", &import]);
        ok("docker", &["push", &tag]);
    });
    IMAGE
}

/// What docker.service's ExecStartPre probe (a drop-in ordered after ram's
/// `ramctl await-enforced`) met at the unit's last start in this boot.
fn docker_prestart_verdict() -> String {
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").expect("boot id");
    let line = std::fs::read_to_string(Path::new(STATE_DIR).join("docker-prestart")).expect("the prestart probe ran");
    let (boot, verdict) = line.trim().split_once(' ').unwrap_or(("", ""));
    assert_eq!(boot, boot_id.trim(), "the prestart probe did not run in this boot");
    verdict.to_string()
}

/// Runs ram-probe with `args` as a process of docker.service's cgroup
/// (enforced as dockerd is); returns what it printed.
fn probe_as_dockerd(args: &str) -> String {
    let script = format!("echo $$ > {DOCKER_CGROUP}/cgroup.procs && exec {SUITE_DIR}/ram-probe {args}");
    ok("sh", &["-c", &script])
}

#[test]
#[ignore = "runs in the systemd guest: cargo xtask host-test"]
fn ramd_runs_from_its_unit_before_docker_and_enforces_dockerd() {
    let _ = GUEST;
    assert_eq!(unit_property("ramd", "ActiveState"), "active");
    assert_eq!(unit_property("docker", "ActiveState"), "active");
    let ramd_ready = monotonic("ramd", "ActiveEnterTimestampMonotonic");
    let dockerd_started = monotonic("docker", "ExecMainStartTimestampMonotonic");
    println!("ramd ready at {ramd_ready} us, dockerd started at {dockerd_started} us (monotonic)");
    assert!(ramd_ready > 0 && ramd_ready < dockerd_started, "ramd was not ready before dockerd started");
    assert_eq!(ok("stat", &["-fc", "%T", "/sys/fs/cgroup"]), "cgroup2fs", "not a pure cgroup v2 host");
    let (state, paths) = dockerd_target();
    assert_eq!(state, "attached");
    assert!(paths.iter().any(|p| p == DOCKER_CGROUP), "dockerd target enforces {paths:?}, not {DOCKER_CGROUP}");
    // What a process in docker.service's cgroup meets, now and at the
    // unit's start (before dockerd).
    assert_eq!(probe_as_dockerd(&format!("connect {BLOCKED_ADDR} 5000")), "EPERM");
    assert_eq!(docker_prestart_verdict(), "EPERM");
}

/// systemd makes a new cgroup at every start of docker.service; ram's drop-in
/// holds the start until ramd enforces it, so the unit's first process after
/// ram's wait already meets the policy, at every restart.
#[test]
#[ignore = "runs in the systemd guest: cargo xtask host-test"]
fn every_docker_restart_is_enforced_before_dockerd_runs() {
    for round in 0..2 {
        let _ = std::fs::remove_file(Path::new(STATE_DIR).join("docker-prestart"));
        let started = Instant::now();
        ok("systemctl", &["restart", "docker"]);
        println!("restart {round}: docker.service active in {:.1} s", started.elapsed().as_secs_f64());
        assert_eq!(docker_prestart_verdict(), "EPERM", "restart {round}");
        assert_eq!(probe_as_dockerd(&format!("connect {BLOCKED_ADDR} 5000")), "EPERM");
    }
    let image = format!("{ALLOWED}/{}", pushed_image());
    let _ = docker(&["rmi", "-f", &image]);
    ok("docker", &["pull", &image]);
}

#[test]
#[ignore = "runs in the systemd guest: cargo xtask host-test"]
fn a_pull_from_the_allowed_registry_works_and_one_from_another_fails_at_once() {
    let image = pushed_image();
    let allowed = format!("{ALLOWED}/{image}");
    let blocked = format!("{BLOCKED}/{image}");
    let _ = docker(&["rmi", "-f", &allowed, &blocked]);
    let started = Instant::now();
    let out = docker(&["pull", &allowed]);
    assert!(out.status.success(), "pull from the allowed registry failed: {}", text(&out));
    println!("allowed pull: {:.1} s", started.elapsed().as_secs_f64());
    let started = Instant::now();
    let out = docker(&["pull", &blocked]);
    let seconds = started.elapsed().as_secs_f64();
    println!("blocked pull: refused in {seconds:.1} s: {}", text(&out).trim());
    assert!(!out.status.success(), "pull from the blocked registry worked");
    assert!(text(&out).contains("operation not permitted"), "not refused by ram: {}", text(&out));
    let logged = wait_for(Duration::from_secs(30), || {
        let journal = ramd_journal();
        journal
            .lines()
            .find(|l| l.contains("blocked") && l.contains(BLOCKED_ADDR) && l.contains("by dockerd["))
            .map(str::to_string)
    });
    let line = logged.unwrap_or_else(|| panic!("no blocked line for {BLOCKED_ADDR} in ramd's journal"));
    println!("ramd: {line}");
    assert!(line.contains("blocked.test"), "the log line does not name the host: {line}");
    assert!(!line.contains('\x1b'), "terminal escape codes in the journal: {line:?}");
}

/// A process in docker.service's cgroup that tries the blocked registry
/// without pause until finished; each attempt's verdict is one line.
struct BlockedLoop {
    child: std::process::Child,
    stop: std::path::PathBuf,
    results: std::path::PathBuf,
}

impl BlockedLoop {
    fn start() -> Self {
        let stop = Path::new(STATE_DIR).join("stop-loop");
        let results = Path::new(STATE_DIR).join("loop-results");
        let _ = std::fs::remove_file(&stop);
        let script = format!(
            "echo $$ > {DOCKER_CGROUP}/cgroup.procs && while [ ! -e {stop} ]; do {SUITE_DIR}/ram-probe connect {BLOCKED_ADDR} 5000; done > {results}",
            stop = stop.display(),
            results = results.display()
        );
        let child = Command::new("sh").args(["-c", &script]).spawn().expect("loop");
        BlockedLoop { child, stop, results }
    }

    /// Stops the loop; returns (attempts, the verdicts that were not EPERM).
    fn finish(mut self) -> (usize, Vec<String>) {
        std::fs::write(&self.stop, "").expect("stop");
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.stop);
        let lines = std::fs::read_to_string(&self.results).expect("loop results");
        let through = lines.lines().filter(|l| *l != "EPERM").map(str::to_string).collect();
        (lines.lines().count(), through)
    }
}

/// ramctl's report of the dockerd target: its state and cgroup paths.
fn dockerd_target() -> (String, Vec<String>) {
    let status = ok("ramctl", &["status", "--json"]);
    let status: serde_json::Value = serde_json::from_str(&status).expect("ramctl status --json");
    let dockerd = status["targets"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == "dockerd"))
        .unwrap_or_else(|| panic!("no dockerd target in {status}"));
    let paths =
        dockerd["cgroups"].as_array().into_iter().flatten().filter_map(|c| c["path"].as_str()).map(String::from);
    (dockerd["state"].as_str().unwrap_or_default().to_string(), paths.collect())
}

/// While ramd is restarted by systemd and then killed outright, a process in
/// docker.service's cgroup tries the blocked registry without pause: not one
/// attempt gets through, and ramd comes back by itself after the kill.
#[test]
#[ignore = "runs in the systemd guest: cargo xtask host-test"]
fn systemctl_restart_and_kill_of_ramd_keep_enforcing() {
    let looping = BlockedLoop::start();
    let first = unit_property("ramd", "MainPID");
    ok("systemctl", &["restart", "ramd"]);
    let restarted = unit_property("ramd", "MainPID");
    assert_ne!(first, restarted, "ramd was not restarted");
    ok("systemctl", &["kill", "-s", "KILL", "ramd"]);
    // Software emulation: ramd's start verifies every target's programs
    // (tens of seconds each).
    let back = wait_for(Duration::from_secs(240), || {
        let pid = unit_property("ramd", "MainPID");
        (unit_property("ramd", "ActiveState") == "active" && pid != restarted && pid != "0").then_some(pid)
    });
    let (attempts, through) = looping.finish();
    assert!(back.is_some(), "systemd did not bring ramd back after SIGKILL");
    println!("{attempts} attempts across a restart and a SIGKILL; {} not refused", through.len());
    assert!(attempts > 0, "the loop made no attempt");
    assert!(through.is_empty(), "attempts not refused: {through:?}");
    // Enforcing and learning as before.
    let image = format!("{ALLOWED}/{}", pushed_image());
    let _ = docker(&["rmi", "-f", &image]);
    ok("docker", &["pull", &image]);
}

fn builder_image() -> &'static str {
    let image = format!("{ALLOWED}/{}", pushed_image());
    ok("docker", &["tag", &image, BUILDER]);
    BUILDER
}

/// Issue 14: a container target (`containers = "docker"`, `image =
/// "allowed.test:5000/ram/builder*"`) refuses a builder container whose
/// very first instruction connects to a registry outside the policy, every
/// time: 50 containers in a row. On pure cgroup v2 each is in
/// system.slice/docker-<id>.scope, outside dockerd's cgroup.
#[test]
#[ignore = "runs in the systemd guest: cargo xtask host-test"]
fn a_builder_container_is_refused_from_its_first_instruction_fifty_times() {
    let image = builder_image();
    let started = Instant::now();
    for round in 0..50 {
        let out = docker(&["run", "--rm", image, "/bin/ram-probe", "connect", BLOCKED_ADDR, "5000"]);
        assert_eq!(
            text(&out).trim(),
            "EPERM",
            "round {round}: not refused by ram from its first instruction: {}",
            diagnostics(&out)
        );
    }
    println!("50 builders refused from their first instruction in {:.0} s", started.elapsed().as_secs_f64());
    let journal = ramd_journal();
    let line = journal
        .lines()
        .find(|l| l.contains("blocked") && l.contains(BLOCKED_ADDR) && l.contains("in container"))
        .unwrap_or_else(|| panic!("no blocked line naming a container in ramd's journal"));
    println!("ramd: {line}");
    assert!(line.contains("target_name=builders") && line.contains(BUILDER), "{line}");
}

/// A builder learns from the resolvers it is given: the host's on the
/// default bridge, Docker's embedded DNS (127.0.0.11, answered by dockerd)
/// on a user-defined network; what it learned for an allowed name it
/// reaches, nothing else. `ramctl status` lists it while it runs.
#[test]
#[ignore = "runs in the systemd guest: cargo xtask host-test"]
fn a_builder_learns_through_its_runtimes_dns_on_each_network() {
    let image = builder_image();
    // The resolver the runtime gave the container, from its resolv.conf.
    let fetch = "/bin/ram-probe resolve-connect $(/bin/busybox awk '/^nameserver/ { print $2; exit }' /etc/resolv.conf) allowed.test 5000";
    let _ = docker(&["rm", "-f", "ram-builder-net"]);
    let _ = docker(&["network", "rm", "ram-builders"]);
    ok("docker", &["network", "create", "ram-builders"]);
    for network in ["bridge", "ram-builders", "host"] {
        let out = docker(&["run", "--rm", "--network", network, image, "/bin/sh", "-c", fetch]);
        assert_eq!(
            text(&out).trim(),
            "10.99.0.2 ok",
            "{network}: the builder could not reach allowed.test: {}",
            diagnostics(&out)
        );
        let out =
            docker(&["run", "--rm", "--network", network, image, "/bin/ram-probe", "connect", BLOCKED_ADDR, "5000"]);
        assert_eq!(text(&out).trim(), "EPERM", "{network}: {}", diagnostics(&out));
    }
    ok(
        "docker",
        &["run", "-d", "--name", "ram-builder-net", "--network", "ram-builders", image, "/bin/busybox", "sleep", "600"],
    );
    let listed = wait_for(Duration::from_secs(30), || {
        let status: serde_json::Value = serde_json::from_str(&ok("ramctl", &["status", "--json"])).ok()?;
        let builders = status["targets"].as_array()?.iter().find(|t| t["name"] == "builders")?.clone();
        builders["containers"].as_array()?.iter().any(|c| c["name"] == "ram-builder-net").then_some(builders)
    });
    assert!(listed.is_some(), "ramctl status does not list the running builder");
    let _ = docker(&["rm", "-f", "ram-builder-net"]);
    let _ = docker(&["network", "rm", "ram-builders"]);
}
