//! `cargo xtask vm-test`: the kernel tests on the kernels users run, booted
//! in QEMU (software emulation: KVM cannot run stock kernels here).
//!
//! Kernels are Debian's cloud images, fetched through a private apt
//! configuration under target/vm/apt (the system's sources are only read, to
//! find its mirror) and cached under target/vm/kernels. The guest is an
//! initramfs with busybox, ramd, ramctl, ram-probe and the `kernel` test
//! binary (all static); /init runs the tests and prints an exit marker. A
//! run without the marker is a failure. Per-program verifier figures go to
//! target/vm/verifier.json.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};

use crate::{run_checked, workspace_root, TestTotals};

/// (label, Debian suite whose linux-image-cloud-amd64 is that kernel).
pub const KERNELS: &[(&str, &str)] =
    &[("5.10", "bullseye-security"), ("6.1", "bookworm-security"), ("6.12", "bookworm-backports")];
const TARGET: &str = "x86_64-unknown-linux-gnu";
const EXIT_MARKER: &str = "RAM-VM-EXIT";
const VERIFIER_MARKER: &str = "RAM-VERIFIER ";
/// Guest tests to leave out, with the reason.
const HOST_ONLY: &[&str] = &[
    // Red teams 13 to 15 (this run of ramd's own decisions: which link a
    // target takes over, the order of attaches and rules at start and
    // reload, the earlier cgroups a restart keeps, one ramd per run
    // directory, ramctl check's reading, how address blocks nest): each
    // starts, restarts or reloads ramd many times with several targets, a
    // guest's verifier takes tens of seconds for each (one reload of eight
    // targets passed ramctl's 30 s), and the kernel side they rely on
    // (links updated in place, container membership, expiry) is what the
    // other tests check on every kernel.
    "a_reload_never_judges_a_moved_container_by_its_old_targets_new_rules",
    "a_restart_never_judges_a_moved_container_by_its_old_targets_new_rules",
    "a_new_target_never_takes_a_renamed_targets_link_on_a_reload",
    "a_new_target_never_takes_a_renamed_targets_link_on_a_restart",
    "a_restart_keeps_enforcing_a_cgroup_a_process_target_left",
    "renamed_container_targets_leave_no_link_behind",
    "a_second_ramd_on_the_same_pins_never_leaves_the_cgroup_unenforced",
    "a_ramd_that_waited_for_the_pins_enforces_the_policy_file_as_it_is_now",
    "a_ramd_started_after_an_uninstall_beside_a_running_one_keeps_enforcing",
    "redteam15_ramctl_check_agrees_with_connect_in_a_learned_entrys_last_second",
    "redteam15_a_longer_cidr_rule_does_not_hide_a_shorter_ones_ports",
    // A flood must note more than 65,536 sockets within a 1.5 s DNS
    // exchange; software emulation makes sockets about ten times slower.
    "a_containers_socket_flood_does_not_crowd_out_the_runtimes_dns",
    // Needs setpriv, dash and Docker's docker-proxy, which the guest lacks.
    "privileged_sockets_notes_survive_a_flood_of_ordinary_sockets",
    // Needs dnsmasq and iptables (Docker's NAT rules), which the guest
    // lacks; the programs it runs are loaded and verified on every kernel
    // by the other tests.
    "a_held_container_learns_through_dockers_embedded_dns_behind_its_nat",
    // A container's namespace found from its processes: the guest has one
    // network namespace, the host's, which ramd never takes from a
    // container's processes (runc's first process is in it for a moment).
    // The kernel side (the member entry's namespace) is the same as for a
    // recorded namespace, which the guests test.
    "a_container_learns_only_in_the_namespace_its_runtime_made",
    "runc_init_seen_in_the_hosts_namespace_does_not_pin_the_wrong_namespace",
    "a_container_whose_processes_live_in_a_child_cgroup_learns",
    "a_restarted_container_with_a_stale_sandbox_key_learns",
    "a_namespace_shared_with_an_unjudged_container_teaches_nothing_and_joiners_are_judged",
    "a_peer_let_go_by_a_reload_no_longer_teaches_its_joiner",
    "a_renamed_peer_is_not_taken_for_its_old_name",
    "a_peer_held_after_a_reload_teaches_its_joiner",
    "two_joiners_starting_together_are_decided",
    "a_peer_let_go_across_a_restart_no_longer_teaches_two_joiners",
    "a_joiner_with_a_nested_namespace_learns_after_a_reload",
    // ramd's log limiting is userspace only, and its 10 s window would
    // cost each guest that much again.
    "a_retry_loop_is_logged_once_with_a_count_and_what_to_do",
    // Userspace only (ramctl explain's reading of journals, policy and
    // maps; the revocation's map deletions are the reload tests'), and
    // each ramd start costs a guest about 10 s of verifier: the matrix
    // grew from about 500 s to 750 s per kernel with them.
    "explain_shows_rules_verdict_learning_answers_and_attempts_for_a_name",
    "removing_a_trusted_resolver_revokes_what_was_learned",
    // The eighth red-team pass's userspace cases (revocation bookkeeping
    // across restarts, the blocked lines' names, ramd's kernel log reader
    // under a 12 s flood, a refused reload): each ramd start costs a guest
    // about 10 s of verifier. A second namespace does not exist there.
    "a_restart_that_trusts_another_namespace_revokes_what_was_learned",
    "a_restart_that_resizes_the_learned_maps_keeps_its_revocations",
    "a_failed_start_never_loses_the_revocation_of_a_removed_resolver",
    "a_blocked_attempt_is_never_named_by_another_cgroups_answer",
    "a_kernel_log_flood_from_the_cgroup_never_stalls_ramd",
    "a_refused_debug_on_changes_neither_the_level_nor_the_programs",
    // Also needs bash (its /dev/tcp), which the guest lacks.
    "a_restart_never_judges_a_container_by_another_targets_rules",
    // The seventh red-team pass's joiner cases: namespace files and a
    // second namespace (as above), and 13-16 s of waiting each.
    "a_joiner_slow_to_enter_a_held_namespace_is_not_let_go_for_good",
    "one_held_container_of_unknown_namespace_does_not_stall_every_joiner",
    "a_let_go_joiner_is_let_go_for_good_after_its_recheck",
    // The tenth red-team pass's cases: ten reloads that each load new
    // programs (about 10 s of verifier each under emulation), and a joiner
    // that needs namespace files. What the kernel does with a scope number
    // no target has (fail closed) is the same on every kernel.
    "targets_swapping_their_cgroups_never_judge_one_by_the_others_rules",
    "a_refused_reload_of_swapped_targets_leaves_nobody_judged_by_the_others_rules",
    "a_joiner_that_leaves_a_held_namespace_but_keeps_a_socket_there_is_judged",
    "a_joiner_of_a_joiner_that_leaves_a_held_namespace_is_judged",
    // 100,000 rules parsed and written under software emulation would take
    // minutes; the maps and programs are the same as every guest's.
    "a_policy_of_100000_host_rules_and_10000_address_rules_enforces",
];

fn vm_dir() -> PathBuf {
    workspace_root().join("target/vm")
}

/// The Debian and Debian security mirrors this machine's apt uses.
pub fn debian_mirrors() -> Result<(String, String)> {
    let mut uris = Vec::new();
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = fs::read_dir("/etc/apt/sources.list.d") {
        files.extend(
            dir.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "sources" || x == "list")),
        );
    }
    for file in files {
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        for line in text.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
            if let Some(rest) = line.strip_prefix("URIs:") {
                uris.extend(rest.split_whitespace().map(str::to_string));
            } else if line.starts_with("deb ") {
                // deb [options] URI suite components
                uris.extend(line.split_whitespace().skip(1).find(|w| w.contains("://")).map(str::to_string));
            }
        }
    }
    let find =
        |suffix: &str| uris.iter().map(|u| u.trim_end_matches('/')).find(|u| u.ends_with(suffix)).map(str::to_string);
    let debian =
        find("/debian").ok_or_else(|| anyhow!("no Debian mirror (a URI ending in /debian) in the apt sources"))?;
    let security = find("/debian-security").unwrap_or_else(|| format!("{}-security", debian));
    Ok((debian, security))
}

fn apt_options(apt: &Path) -> Vec<String> {
    vec![
        format!("-oDir::Etc::SourceList={}", apt.join("sources.list").display()),
        "-oDir::Etc::SourceParts=/dev/null".into(),
        format!("-oDir::State::Lists={}", apt.join("lists").display()),
        format!("-oDir::Cache={}", apt.join("cache").display()),
        format!("-oDir::State::status={}", apt.join("status").display()),
        "-oAPT::Architectures=amd64".into(),
    ]
}

/// Downloads (once) the vmlinuz of each kernel; returns (label, path).
fn fetch_kernels() -> Result<Vec<(String, PathBuf)>> {
    let apt = vm_dir().join("apt");
    for dir in ["lists/partial", "cache/archives/partial"] {
        fs::create_dir_all(apt.join(dir))?;
    }
    fs::write(apt.join("status"), "")?;
    let (debian, security) = debian_mirrors()?;
    let keyring = "/usr/share/keyrings/debian-archive-keyring.gpg";
    let mut sources = String::new();
    for (_, suite) in KERNELS {
        let mirror = if suite.ends_with("-security") { &security } else { &debian };
        sources.push_str(&format!("deb [signed-by={keyring}] {mirror} {suite} main\n"));
    }
    fs::write(apt.join("sources.list"), sources)?;
    let options = apt_options(&apt);
    let mut kernels = Vec::new();
    let mut updated = false;
    for (label, suite) in KERNELS {
        let dir = vm_dir().join("kernels").join(label);
        let vmlinuz = dir.join("vmlinuz");
        if vmlinuz.exists() {
            kernels.push((label.to_string(), vmlinuz));
            continue;
        }
        if !updated {
            run_checked(Command::new("apt-get").args(&options).args(["update", "-q"]))?;
            updated = true;
        }
        // The metapackage names the image package of that suite.
        let show = Command::new("apt-cache")
            .args(&options)
            .args(["show", &format!("linux-image-cloud-amd64/{suite}")])
            .output()?;
        let text = String::from_utf8_lossy(&show.stdout);
        let depends = text
            .lines()
            .find_map(|l| l.strip_prefix("Depends: "))
            .ok_or_else(|| anyhow!("linux-image-cloud-amd64/{suite}: no Depends line"))?;
        let image = depends.split(',').next().unwrap_or_default().trim();
        let (package, version) = image
            .split_once(" (= ")
            .map(|(p, v)| (p.trim(), v.trim_end_matches(')')))
            .ok_or_else(|| anyhow!("unexpected Depends: {depends}"))?;
        fs::create_dir_all(&dir)?;
        println!("xtask vm-test: fetching {package} {version} ({suite})");
        run_checked(
            Command::new("apt-get")
                .args(&options)
                .args(["download", "-q", &format!("{package}={version}")])
                .current_dir(&dir),
        )?;
        let deb = fs::read_dir(&dir)?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "deb"))
            .ok_or_else(|| anyhow!("apt-get download left no .deb in {}", dir.display()))?;
        let script = format!(
            "dpkg-deb --fsys-tarfile '{}' | tar -x -C '{}' --wildcards './boot/vmlinuz-*'",
            deb.display(),
            dir.display()
        );
        run_checked(Command::new("sh").args(["-c", &script]))?;
        let image = fs::read_dir(dir.join("boot"))?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-")))
            .ok_or_else(|| anyhow!("no vmlinuz in {}", deb.display()))?;
        fs::rename(&image, &vmlinuz)?;
        fs::remove_file(&deb)?;
        fs::write(dir.join("package"), format!("{package} {version}\n"))?;
        kernels.push((label.to_string(), vmlinuz));
    }
    Ok(kernels)
}

/// `cargo <args> --target x86_64-unknown-linux-gnu`, linking statically.
/// With an explicit --target, RUSTFLAGS reach only the target's artifacts,
/// not build scripts (which must stay dynamic).
fn static_cargo(args: &[&str]) -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(workspace_root())
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .args(args)
        .args(["--target", TARGET])
        .arg("--target-dir")
        .arg(vm_dir().join("build"));
    cmd
}

/// ramd, ramctl and ram-probe, linked statically; returns their directory.
pub fn build_static_bins() -> Result<PathBuf> {
    run_checked(&mut static_cargo(&[
        "build",
        "--profile",
        "vm",
        "--package",
        "ram-userspace",
        "--package",
        "ram-tests",
        "--bins",
    ]))?;
    Ok(vm_dir().join("build").join(TARGET).join("vm"))
}

/// One of ram-tests' test binaries, linked statically.
pub fn build_static_test(name: &str) -> Result<PathBuf> {
    let out = static_cargo(&[
        "test",
        "--profile",
        "vm",
        "--no-run",
        "--message-format=json",
        "--package",
        "ram-tests",
        "--test",
        name,
    ])
    .stderr(Stdio::inherit())
    .output()?;
    if !out.status.success() {
        bail!("building the {name} test binary failed");
    }
    crate::host::test_executable(&out.stdout, name)
        .ok_or_else(|| anyhow!("cargo did not report the {name} test binary"))
}

/// Static binaries for the guest: ramd, ramctl, ram-probe and the kernel tests.
fn build_static() -> Result<Vec<(String, PathBuf)>> {
    let bins = build_static_bins()?;
    let mut all: Vec<(String, PathBuf)> =
        ["ramd", "ramctl", "ram-probe"].iter().map(|b| (b.to_string(), bins.join(b))).collect();
    all.push(("ram-kernel-tests".into(), build_static_test("kernel")?));
    Ok(all)
}

const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mkdir -p /proc /sys /dev /tmp /run
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run
mkdir -p /sys/fs/bpf /sys/fs/cgroup
mount -t bpf bpf /sys/fs/bpf
mount -t cgroup2 cgroup2 /sys/fs/cgroup
ip link set lo up
echo "RAM-VM-KERNEL $(uname -r)"
RAM_IN_VM=1 RAM_BIN_DIR=/bin TMPDIR=/tmp HOME=/tmp RUST_TEST_THREADS=1 \
    /bin/ram-kernel-tests --test-threads=1 --nocapture SKIP_ARGS
echo "RAM-VM-EXIT $?"
poweroff -f
"#;

fn build_initramfs(binaries: &[(String, PathBuf)], filter: Option<&str>) -> Result<PathBuf> {
    let root = vm_dir().join("initramfs");
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(root.join("bin"))?;
    fs::copy("/bin/busybox", root.join("bin/busybox")).context("busybox-static is installed by setup")?;
    for (name, path) in binaries {
        fs::copy(path, root.join("bin").join(name)).with_context(|| format!("copy {}", path.display()))?;
    }
    let mut skips: Vec<String> = HOST_ONLY.iter().map(|t| format!("--skip {t}")).collect();
    // A test-name filter, for quick experiments with one test.
    skips.extend(filter.map(|f| f.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>()));
    let init = root.join("init");
    fs::write(&init, INIT.replace("SKIP_ARGS", &skips.join(" ")))?;
    run_checked(Command::new("chmod").arg("755").arg(&init))?;
    let image = vm_dir().join("initramfs.cpio");
    let script =
        format!("cd '{}' && find . | /bin/busybox cpio -o -H newc > '{}' 2>/dev/null", root.display(), image.display());
    run_checked(Command::new("sh").args(["-c", &script]))?;
    Ok(image)
}

/// What one boot showed.
struct Boot {
    exit_code: Option<i32>,
    tests: Vec<String>,
    verifier: Vec<Value>,
    seconds: f64,
}

fn boot(label: &str, kernel: &Path, initramfs: &Path) -> Result<Boot> {
    let log_path = vm_dir().join(format!("console-{label}.log"));
    let log = fs::File::create(&log_path)?;
    let started = Instant::now();
    // Generous: the guests share the machine's cores with each other.
    let status = Command::new("timeout")
        .arg("1800")
        .arg("qemu-system-x86_64")
        .args(["-accel", "tcg", "-cpu", "max,cx16=off", "-m", "1024", "-smp", "1"])
        .args(["-nodefaults", "-display", "none", "-serial", "stdio", "-no-reboot"])
        .arg("-kernel")
        .arg(kernel)
        .arg("-initrd")
        .arg(initramfs)
        .args(["-append", "console=ttyS0 panic=-1 quiet"])
        .stdout(log.try_clone()?)
        .stderr(log)
        .status()?;
    let seconds = started.elapsed().as_secs_f64();
    let console = fs::read_to_string(&log_path).unwrap_or_default();
    let exit_code =
        console.lines().find_map(|l| l.trim().strip_prefix(EXIT_MARKER)).and_then(|rest| rest.trim().parse().ok());
    if exit_code.is_none() {
        println!("xtask vm-test: {label}: no exit marker (qemu {status}); console in {}", log_path.display());
    }
    let tests = crate::host::test_lines(&console);
    let verifier = console
        .lines()
        .filter_map(|l| l.find(VERIFIER_MARKER).map(|i| &l[i + VERIFIER_MARKER.len()..]))
        .filter_map(|j| serde_json::from_str(j).ok())
        .collect();
    Ok(Boot { exit_code, tests, verifier, seconds })
}

/// Boots the kernels (all, or those in `only`) and returns the guests' test totals.
pub fn vm_test(only: &[String], filter: Option<&str>) -> Result<TestTotals> {
    crate::setup::setup()?;
    let kernels: Vec<_> =
        fetch_kernels()?.into_iter().filter(|(label, _)| only.is_empty() || only.contains(label)).collect();
    if kernels.is_empty() {
        bail!("no kernel matches {only:?}; known: {:?}", KERNELS.iter().map(|k| k.0).collect::<Vec<_>>());
    }
    let binaries = build_static()?;
    let initramfs = build_initramfs(&binaries, filter)?;
    // The guests run side by side (software emulation is CPU-bound; two
    // cores finish three guests in about the time of two in a row).
    println!("xtask vm-test: booting {}", kernels.iter().map(|k| k.0.as_str()).collect::<Vec<_>>().join(", "));
    let boots: Vec<Result<Boot>> = std::thread::scope(|scope| {
        let handles: Vec<_> =
            kernels.iter().map(|(label, kernel)| scope.spawn(|| boot(label, kernel, &initramfs))).collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(anyhow!("boot thread panicked")))).collect()
    });
    let mut report = BTreeMap::new();
    let mut failed = Vec::new();
    let mut totals = TestTotals::default();
    for ((label, _), boot) in kernels.iter().zip(boots) {
        let boot = boot?;
        for line in &boot.tests {
            println!("  [{label}] {line}");
            totals.add(line);
        }
        let ok = boot.exit_code == Some(0);
        println!(
            "xtask vm-test: {label}: {} in {:.0} s",
            if ok { "pass".to_string() } else { format!("FAIL (exit {:?})", boot.exit_code) },
            boot.seconds
        );
        if !ok {
            failed.push(label.clone());
        }
        let programs: BTreeMap<String, Value> =
            boot.verifier.iter().filter_map(|v| Some((v["program"].as_str()?.to_string(), v.clone()))).collect();
        report.insert(label.clone(), json!({ "pass": ok, "seconds": boot.seconds.round(), "programs": programs }));
    }
    println!("\n{:<6} {:<18} {:>8} {:>14} {:>12}", "kernel", "program", "loaded", "verified insns", "xlated bytes");
    for (label, entry) in &report {
        for (program, v) in entry["programs"].as_object().into_iter().flatten() {
            println!(
                "{:<6} {:<18} {:>8} {:>14} {:>12}",
                label,
                program,
                v["loaded"],
                v["verified_insns"].as_u64().map(|n| n.to_string()).unwrap_or_else(|| "n/a".into()),
                v["xlated_bytes"]
            );
        }
    }
    let path = vm_dir().join("verifier.json");
    fs::write(&path, serde_json::to_string_pretty(&report)?)?;
    println!("xtask vm-test: figures in {}", path.display());
    if !failed.is_empty() {
        bail!("kernel tests failed on {}", failed.join(", "));
    }
    Ok(totals)
}
