//! ram's Debian package (`cargo xtask deb`) on a host whose dockerd already
//! runs: `apt-get install ./ram_*.deb` enforces the default policy at once
//! without restarting docker, an upgrade lets no attempt through, a reboot
//! keeps it enforcing, and removal leaves nothing attached (purge: nothing
//! at all). xtask runs these in its own order (PHASES in xtask/src/host.rs):
//! each leaves the host as the next expects it.

use std::path::PathBuf;

use super::*;

/// The package xtask put in `DEBS/<kind>` ("install" or "upgrade"): its
/// directory, file name and version (from the name: ram_VERSION_amd64.deb).
fn package(kind: &str) -> (PathBuf, String, String) {
    let dir = Path::new(DEBS).join(kind);
    let file = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("ram_") && n.ends_with("_amd64.deb"))
        .unwrap_or_else(|| panic!("no ram_*_amd64.deb in {}", dir.display()));
    let version = file.trim_start_matches("ram_").trim_end_matches("_amd64.deb").to_string();
    (dir, file, version)
}

/// apt-get as an admin runs it, without a terminal; prints its output.
fn apt_get(dir: &Path, args: &[&str]) {
    let started = Instant::now();
    let out = Command::new("apt-get")
        // dpkg's progress meter would fill the console with one long line.
        .arg("-oDpkg::Use-Pty=0")
        .args(args)
        .current_dir(dir)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .expect("apt-get");
    println!("apt-get {}: {:.1} s\n{}", args.join(" "), started.elapsed().as_secs_f64(), text(&out).trim_end());
    assert!(out.status.success(), "apt-get {args:?} failed");
}

fn installed_version() -> String {
    ok("dpkg-query", &["-W", "-f=${Version}", "ram"])
}

fn blocked_from_dockerd() -> String {
    probe_as_dockerd(&format!("connect {BLOCKED_ADDR} 5000"))
}

/// allowed.test's address, which only the suite's policy lets dockerd reach
/// (by name, through DNS); the package's default policy does not.
fn allowed_addr_from_dockerd() -> String {
    probe_as_dockerd(&format!("connect {ALLOWED_ADDR} 5000"))
}

#[test]
#[ignore = "runs in the systemd guest: cargo xtask host-test"]
fn install_on_a_running_docker_enforces_the_default_policy_at_once() {
    assert!(!run("dpkg", &["-s", "ram"]).status.success(), "ram is installed before the test");
    assert!(!Path::new("/sys/fs/bpf/ram").exists(), "ram's pins exist before the install");
    // Before: nothing enforced; docker.service's cgroup reaches the registries.
    assert_eq!(blocked_from_dockerd(), "ok");
    assert_eq!(allowed_addr_from_dockerd(), "ok");
    let dockerd = unit_property("docker", "MainPID");

    let (dir, file, version) = package("install");
    apt_get(&dir, &["install", "-y", &format!("./{file}")]);

    // At once, with no docker restart: the package's policy is the default,
    // Docker Hub only, so both suite registries are refused.
    assert_eq!(blocked_from_dockerd(), "EPERM");
    assert_eq!(allowed_addr_from_dockerd(), "EPERM");
    let image = format!("{ALLOWED}/{IMAGE}");
    let _ = docker(&["rmi", "-f", &image]);
    let out = docker(&["pull", &image]);
    println!("pull by the running dockerd: {}", text(&out).trim());
    assert!(!out.status.success() && text(&out).contains("operation not permitted"), "not refused by ram");
    assert_eq!(unit_property("docker", "MainPID"), dockerd, "docker was restarted");
    let (state, paths) = dockerd_target();
    assert_eq!(state, "attached");
    assert!(paths.iter().any(|p| p == DOCKER_CGROUP), "dockerd target enforces {paths:?}");

    assert_eq!(installed_version(), version);
    assert_eq!(unit_property("ramd", "ActiveState"), "active");
    assert_eq!(ok("systemctl", &["is-enabled", "ramd"]), "enabled");
    let exec = unit_property("ramd", "ExecStart");
    assert!(exec.contains("argv[]=/usr/sbin/ramd --config /etc/ram/ram.toml"), "ramd.service ExecStart: {exec}");
    // systemd has read the drop-in: docker's next start waits for enforcement.
    let pre = unit_property("docker", "ExecStartPre");
    assert!(pre.contains("argv[]=/usr/sbin/ramctl await-enforced"), "docker.service ExecStartPre: {pre}");
    let conffiles = ok("dpkg-query", &["-W", "-f=${Conffiles}", "ram"]);
    assert!(conffiles.contains("/etc/ram/ram.toml"), "conffiles: {conffiles}");
    ok("ramd", &["--check-config", "/etc/ram/ram.toml"]);

    // Documentation: man pages (the guest has no man-db: the files) and completions.
    for (path, expect) in [
        ("/usr/share/man/man8/ramd.8.gz", r"\-\-check\-config"),
        ("/usr/share/man/man8/ramctl.8.gz", "ramctl\\-await\\-enforced(8)"),
        ("/usr/share/man/man8/ramctl-status.8.gz", ".TH ramctl-status 8"),
    ] {
        let page = ok("zcat", &[path]);
        assert!(page.contains(expect), "{path} lacks {expect:?}");
    }
    // Changelogs: CHANGELOG.md, and Debian's form signed by the Maintainer.
    let maintainer = ok("dpkg-query", &["-W", "-f=${Maintainer}", "ram"]);
    assert!(maintainer.contains('<') && maintainer.ends_with('>'), "Maintainer: {maintainer}");
    assert!(ok("zcat", &["/usr/share/doc/ram/changelog.gz"]).starts_with("# Changelog"));
    let debian = ok("zcat", &["/usr/share/doc/ram/changelog.Debian.gz"]);
    let top = format!("ram ({version}) unstable; urgency=medium");
    assert!(debian.starts_with(&top), "changelog.Debian.gz does not start with {top:?}");
    assert!(debian.contains(&format!("\n -- {maintainer}  ")), "changelog.Debian.gz not signed by {maintainer}");
    for (path, expect) in [
        ("/usr/share/bash-completion/completions/ramctl", "await-enforced"),
        ("/usr/share/bash-completion/completions/ramd", "--check-config"),
        ("/usr/share/zsh/vendor-completions/_ramctl", "#compdef ramctl"),
        ("/usr/share/zsh/vendor-completions/_ramd", "#compdef ramd"),
        ("/usr/share/fish/vendor_completions.d/ramctl.fish", "complete -c ramctl"),
        ("/usr/share/fish/vendor_completions.d/ramd.fish", "complete -c ramd"),
        ("/usr/share/doc/ram/README.md", "# ram"),
        ("/usr/share/doc/ram/copyright", "License: MIT or Apache-2.0"),
    ] {
        let content = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(content.contains(expect), "{path} lacks {expect:?}");
    }
}

/// An upgrade restarts ramd, which swaps its programs into the pinned links:
/// a loop in docker.service's cgroup tries the blocked registry throughout
/// and not one attempt gets through; afterwards ramd runs the new package's
/// binary. (Both packages hold the same build; what differs is the
/// version, and the file dpkg put in place.)
#[test]
#[ignore = "runs in the systemd guest: cargo xtask host-test"]
fn upgrade_under_a_loop_of_blocked_connects_lets_none_through() {
    let (dir, file, version) = package("upgrade");
    assert_ne!(installed_version(), version, "the upgrade is already installed");
    let ramd = unit_property("ramd", "MainPID");
    let dockerd = unit_property("docker", "MainPID");
    let looping = BlockedLoop::start();
    apt_get(&dir, &["install", "-y", &format!("./{file}")]);
    let (attempts, through) = looping.finish();
    println!("{attempts} attempts across the upgrade; {} not refused", through.len());
    assert!(attempts > 0, "the loop made no attempt");
    assert!(through.is_empty(), "attempts not refused: {through:?}");

    assert_eq!(installed_version(), version);
    assert_eq!(unit_property("ramd", "ActiveState"), "active");
    let new = unit_property("ramd", "MainPID");
    assert_ne!(new, ramd, "ramd was not restarted by the upgrade");
    // A process still running the replaced binary would show "(deleted)".
    let exe = std::fs::read_link(format!("/proc/{new}/exe")).expect("ramd's exe");
    assert_eq!(exe, Path::new("/usr/sbin/ramd"), "ramd does not run the installed binary");
    assert_eq!(unit_property("docker", "MainPID"), dockerd, "docker was restarted");
    assert_eq!(dockerd_target().0, "attached");
    assert_eq!(blocked_from_dockerd(), "EPERM");
}

/// The second boot: the package's unit enforces before docker.service
/// starts, still with the package's default policy. Then, as an admin
/// would, the suite's policy replaces /etc/ram/ram.toml (the tests after
/// this one expect it).
#[test]
#[ignore = "runs in the systemd guest: cargo xtask host-test"]
fn after_reboot_enforces_from_the_first_moment() {
    assert_eq!(installed_version(), package("upgrade").2);
    let ramd_ready = monotonic("ramd", "ActiveEnterTimestampMonotonic");
    let dockerd_started = monotonic("docker", "ExecMainStartTimestampMonotonic");
    println!("ramd ready at {ramd_ready} us, dockerd started at {dockerd_started} us (monotonic)");
    assert!(ramd_ready > 0 && ramd_ready < dockerd_started, "ramd was not ready before dockerd started");
    assert_eq!(docker_prestart_verdict(), "EPERM");
    assert_eq!(blocked_from_dockerd(), "EPERM");
    assert_eq!(allowed_addr_from_dockerd(), "EPERM", "not the package's default policy");

    std::fs::copy("/etc/ram-suite/ram.toml", "/etc/ram/ram.toml").expect("the suite's policy");
    ok("ramctl", &["reload"]);
    let rules = ok("ramctl", &["rules"]);
    assert!(rules.contains("allowed.test"), "the suite's policy is not enforced: {rules}");
}

/// Last of the suite. `apt-get remove` stops ramd and uninstalls: nothing
/// stays attached or pinned, and docker (not restarted) reaches what ram
/// refused; systemd forgot the drop-in, so docker's next start does not
/// wait for ram. The policy stays until `apt-get purge`.
#[test]
#[ignore = "runs in the systemd guest: cargo xtask host-test"]
fn remove_leaves_nothing_attached_and_purge_removes_the_policy() {
    assert_eq!(blocked_from_dockerd(), "EPERM");
    let dockerd = unit_property("docker", "MainPID");
    apt_get(Path::new("/"), &["remove", "-y", "ram"]);

    assert_ne!(unit_property("ramd", "ActiveState"), "active");
    let ramd_processes: Vec<String> = std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter(|e| std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == "ramd"))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(ramd_processes.is_empty(), "ramd still runs: pids {ramd_processes:?}");
    assert!(!Path::new("/sys/fs/bpf/ram").exists(), "pins left under /sys/fs/bpf/ram");
    assert!(!Path::new("/usr/sbin/ramd").exists() && !Path::new("/usr/sbin/ramctl").exists());
    // Nothing attached: the same connect from docker.service's cgroup now
    // reaches the registry (which answers) instead of EPERM.
    assert_eq!(unit_property("docker", "MainPID"), dockerd, "docker was restarted");
    let verdict = blocked_from_dockerd();
    assert!(verdict == "ok" || verdict == "ECONNREFUSED", "after remove: {verdict}");
    assert!(Path::new("/etc/ram/ram.toml").exists(), "remove took the policy (a conffile)");
    // systemd forgot the drop-in: docker's next start runs no ramctl.
    let pre = unit_property("docker", "ExecStartPre");
    assert!(!pre.contains("ramctl"), "systemd still has ram's drop-in: {pre}");

    apt_get(Path::new("/"), &["purge", "-y", "ram"]);
    assert!(!Path::new("/etc/ram").exists(), "purge left /etc/ram");
    assert!(!run("dpkg", &["-s", "ram"]).status.success(), "dpkg still knows ram after purge");
    for leftover in ["/etc/systemd/system/ramd.service", "/etc/systemd/system/multi-user.target.wants/ramd.service"] {
        assert!(std::fs::symlink_metadata(leftover).is_err(), "purge left {leftover}");
    }
}
