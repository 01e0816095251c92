//! `cargo xtask host-test`: ram on the host users run — Debian 12 booted by
//! systemd on a pure cgroup v2 hierarchy, with docker.service as installed —
//! in QEMU (software emulation).
//!
//! The guest's root file system is built by mmdebstrap from Debian's
//! packages (cached under target/host by package list) and turned into an
//! ext4 disk with `mkfs.ext4 -d`. ram is not in it: the guest gets two
//! builds of ram's Debian package (`cargo xtask deb`, the plain version and
//! a higher one), and the suite installs the first with `apt-get install`
//! on the running docker, as an admin would, and upgrades to the second.
//! Its test fixtures (a resolver on a dummy interface, two registries) are
//! units of their own, so they are up before the suite runs.
//!
//! The suite (tests/tests/host.rs, static) runs from a oneshot unit in two
//! boots of the same disk (QEMU exits on reboot: -no-reboot), each a list of
//! libtest runs in order (see PHASES). Each boot prints an exit marker on
//! the serial console; a boot without one is a failure.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use crate::{deb, run_checked, vm, workspace_root, TestTotals};

/// What the guest is built from. Changing the list rebuilds the cached base.
const PACKAGES: &[&str] = &[
    "systemd",
    "systemd-sysv",
    "udev",
    "kmod",
    "linux-image-cloud-amd64",
    "initramfs-tools",
    "iproute2",
    "docker.io",
    "docker-registry",
    "dnsmasq-base",
    "busybox-static",
    // Issue 15's proof: a compose project, and a local proxy for dockerd.
    "docker-compose",
    "tinyproxy",
];
const EXIT_MARKER: &str = "RAM-HOST-EXIT ";
/// The two boots, and the libtest runs of each, in order (a run's filter
/// arguments; a boot stops at its first failing run).
/// - install: ram's package goes onto a host whose dockerd already runs and
///   is enforced at once; then an upgrade under a loop of blocked connects.
/// - reboot: still enforcing from the first moment, with the packaged
///   policy; the suite's policy goes in (an admin's edit of the conffile);
///   every other test; last, removal and purge leave nothing behind.
/// - networking: Docker's networking is recorded before ram is installed,
///   and compared with that record under each policy.
const PHASES: &[(&str, &[&str])] = &[
    (
        "install",
        &[
            "networking::before_ram_is_installed",
            "package::install",
            "networking::with_the_packaged_default_policy",
            "package::upgrade",
        ],
    ),
    (
        "reboot",
        &[
            "package::after_reboot",
            "--skip package:: --skip networking::before_ram_is_installed --skip networking::with_the_packaged_default_policy",
            "package::remove",
        ],
    ),
];
/// The package's version suffix for the upgrade (`cargo xtask deb --version-suffix`).
const UPGRADE_SUFFIX: &str = "upgrade1";

fn host_dir() -> PathBuf {
    workspace_root().join("target/host")
}

/// The guest's base root file system as a tarball, built once per package list.
pub fn base_tarball() -> Result<PathBuf> {
    let dir = host_dir();
    fs::create_dir_all(&dir)?;
    let tarball = dir.join("base.tar");
    let stamp = dir.join("base.packages");
    let wanted = PACKAGES.join(",");
    if tarball.exists() && fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) {
        return Ok(tarball);
    }
    let (debian, security) = vm::debian_mirrors()?;
    println!("xtask host-test: building the guest's root file system (mmdebstrap, about 100 s)");
    let started = Instant::now();
    let partial = dir.join("base.partial.tar");
    run_checked(
        Command::new("mmdebstrap")
            .args(["--variant=apt", "--format=tar", "--quiet"])
            .arg(format!("--include={wanted}"))
            .arg("bookworm")
            .arg(&partial)
            .arg(format!("deb {debian} bookworm main"))
            .arg(format!("deb {debian} bookworm-updates main"))
            .arg(format!("deb {security} bookworm-security main")),
    )?;
    fs::rename(&partial, &tarball)?;
    fs::write(&stamp, wanted)?;
    println!("xtask host-test: root file system built in {:.0} s", started.elapsed().as_secs_f64());
    Ok(tarball)
}

/// What the guest gets of ram: its two packages (the plain version in
/// debs/install, a higher one in debs/upgrade) and the suite's static
/// ram-probe and test binary. (path in the guest, file on this machine)
fn build_binaries() -> Result<Vec<(String, PathBuf)>> {
    let bins = vm::build_static_bins()?;
    let install = deb::package(&bins, &deb::version(None)?)?;
    let upgrade = deb::package(&bins, &deb::version(Some(UPGRADE_SUFFIX))?)?;
    let mut all = vec![
        ("ram-probe".to_string(), bins.join("ram-probe")),
        ("ram-host-tests".to_string(), vm::build_static_test("host")?),
    ];
    for (dir, deb) in [("debs/install", install), ("debs/upgrade", upgrade)] {
        let name = deb.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        all.push((format!("{dir}/{name}"), deb));
    }
    Ok(all)
}

/// Files the guest gets on top of the packages: (path in the guest, mode, contents).
fn guest_files() -> Result<Vec<(&'static str, u32, String)>> {
    let files = vec![
        ("etc/fstab", 0o644, "/dev/vda / ext4 defaults 0 1\n".to_string()),
        ("etc/hostname", 0o644, "ram-guest\n".to_string()),
        // The admin's resolver: dnsmasq on the fixture's dummy interface (not
        // loopback, so that containers on the default bridge get it too).
        ("etc/resolv.conf", 0o644, "nameserver 10.99.0.1\n".to_string()),
        ("etc/docker/daemon.json", 0o644, DOCKER_DAEMON_JSON.to_string()),
        ("etc/systemd/system/docker.service.d/ram-suite-proxy.conf", 0o644, DOCKER_PROXY_DROP_IN.to_string()),
        // The suite's policy, put in place by the suite after the package's
        // own has been checked (see PHASES).
        ("etc/ram-suite/ram.toml", 0o644, GUEST_POLICY.to_string()),
        // Software emulation: the verifier takes tens of seconds per
        // target, longer than systemd's default start timeout (this drop-in
        // applies to the packaged unit too).
        ("etc/systemd/system/ramd.service.d/emulation.conf", 0o644, "[Service]\nTimeoutStartSec=10min\n".to_string()),
        ("etc/systemd/system/ram-suite-net.service", 0o644, SUITE_NET_UNIT.to_string()),
        ("etc/systemd/system/ram-suite-dns.service", 0o644, SUITE_DNS_UNIT.to_string()),
        ("etc/systemd/system/ram-suite-registry@.service", 0o644, SUITE_REGISTRY_UNIT.to_string()),
        ("etc/systemd/system/ram-suite.service", 0o644, SUITE_UNIT.to_string()),
        ("etc/ram-suite/dnsmasq.conf", 0o644, SUITE_DNSMASQ_CONF.to_string()),
        ("etc/ram-suite/registry-allowed.yml", 0o644, registry_config("10.99.0.2")),
        ("etc/ram-suite/registry-blocked.yml", 0o644, registry_config("10.99.0.3")),
        ("usr/local/lib/ram-suite/run", 0o755, suite_runner()),
        ("var/lib/ram-suite/phase", 0o644, format!("{}\n", PHASES[0].0)),
        // Runs after ram's drop-in (drop-ins of all directories run in the
        // order of their names): what docker.service's first process meets.
        ("etc/systemd/system/docker.service.d/zz-ram-suite-probe.conf", 0o644, SUITE_PRESTART_PROBE.to_string()),
    ];
    Ok(files)
}

const SUITE_PRESTART_PROBE: &str = r#"[Service]
ExecStartPre=-/bin/sh -c 'echo "$(cat /proc/sys/kernel/random/boot_id) $(/usr/local/lib/ram-suite/ram-probe connect 10.99.0.3 5000)" > /var/lib/ram-suite/docker-prestart'
"#;

const GUEST_POLICY: &str = r#"# The guest suite's policy: one registry (allowed.test), on the runtimes
# and on builder containers. It replaces the package's /etc/ram/ram.toml
# once that one has been checked.
mode = "enforce"

[[target]]
name = "dockerd"
process = "dockerd"
unit = "docker.service"

[[target]]
name = "containerd"
process = "containerd"
unit = "containerd.service"

# Every container started from a "builder" image: held from its first
# instruction, judged by the same rules.
[[target]]
name = "builders"
containers = "docker"
image = "allowed.test:5000/ram/builder*"

[[allow]]
host = "allowed.test"
ports = [5000]
"#;

const DOCKER_DAEMON_JSON: &str = r#"{ "insecure-registries": ["allowed.test:5000", "blocked.test:5000", "proxied.test:5000"] }
"#;

/// dockerd behind the guest's tinyproxy (Debian's default configuration:
/// 127.0.0.1:8888) for every registry but the suite's two names: a pull
/// from proxied.test (the blocked registry's address) goes through it.
const DOCKER_PROXY_DROP_IN: &str = r#"[Service]
Environment="HTTP_PROXY=http://127.0.0.1:8888" "HTTPS_PROXY=http://127.0.0.1:8888" "NO_PROXY=allowed.test,blocked.test,localhost,127.0.0.1"
"#;

const SUITE_NET_UNIT: &str = r#"[Unit]
Description=ram suite: the fixtures' addresses on a dummy interface
Before=ramd.service docker.service ram-suite-dns.service ram-suite-registry@allowed.service ram-suite-registry@blocked.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/sbin/modprobe dummy
ExecStart=/usr/sbin/ip link add ramnet0 type dummy
ExecStart=/usr/sbin/ip addr add 10.99.0.1/24 dev ramnet0
ExecStart=/usr/sbin/ip addr add 10.99.0.2/24 dev ramnet0
ExecStart=/usr/sbin/ip addr add 10.99.0.3/24 dev ramnet0
ExecStart=/usr/sbin/ip link set ramnet0 up

[Install]
WantedBy=multi-user.target
"#;

const SUITE_DNSMASQ_CONF: &str = r#"listen-address=10.99.0.1
bind-interfaces
no-resolv
no-hosts
address=/allowed.test/10.99.0.2
address=/blocked.test/10.99.0.3
address=/proxied.test/10.99.0.3
"#;

const SUITE_DNS_UNIT: &str = r#"[Unit]
Description=ram suite: the admin's resolver (dnsmasq on 10.99.0.1)
Requires=ram-suite-net.service
After=ram-suite-net.service
Before=ramd.service docker.service

[Service]
ExecStart=/usr/sbin/dnsmasq --keep-in-foreground --conf-file=/etc/ram-suite/dnsmasq.conf --user=root

[Install]
WantedBy=multi-user.target
"#;

fn registry_config(addr: &str) -> String {
    format!(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: /var/lib/ram-suite/registry\nhttp:\n  addr: {addr}:5000\n"
    )
}

const SUITE_REGISTRY_UNIT: &str = r#"[Unit]
Description=ram suite: registry %i (both serve the same storage)
Requires=ram-suite-net.service
After=ram-suite-net.service

[Service]
ExecStart=/usr/bin/docker-registry serve /etc/ram-suite/registry-%i.yml

[Install]
WantedBy=multi-user.target
"#;

const SUITE_UNIT: &str = r#"[Unit]
Description=ram guest suite
After=ramd.service docker.service ram-suite-dns.service ram-suite-registry@allowed.service ram-suite-registry@blocked.service

[Service]
Type=oneshot
ExecStart=/usr/local/lib/ram-suite/run
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
"#;

/// Runs the phase's libtest runs with their output on the serial console,
/// then reboots into the next phase or powers off.
fn suite_runner() -> String {
    let mut cases = String::new();
    for (i, (phase, runs)) in PHASES.iter().enumerate() {
        let next = PHASES.get(i + 1).map_or("done", |p| p.0);
        let runs: Vec<String> = runs.iter().map(|filter| format!("suite {filter}")).collect();
        cases.push_str(&format!("  {phase}) next={next}; {} ;;\n", runs.join(" && ")));
    }
    format!(
        r#"#!/bin/sh
exec >/dev/ttyS0 2>&1
state=/var/lib/ram-suite
mkdir -p "$state"
phase=$(cat "$state/phase" 2>/dev/null)
echo "RAM-HOST-PHASE $phase"
cd "$state"
suite() {{
  RAM_HOST_GUEST=1 RAM_BIN_DIR=/usr/local/lib/ram-suite RUST_TEST_THREADS=1 \
    /usr/local/lib/ram-suite/ram-host-tests --ignored --test-threads=1 --nocapture "$@"
}}
case "$phase" in
{cases}  *) next=done; false ;;
esac
code=$?
echo "RAM-HOST-EXIT $phase $code"
echo "$next" > "$state/phase"
sync
if [ "$next" = done ]; then systemctl poweroff; else systemctl reboot; fi
"#
    )
}

/// Unit names to enable: (unit, target that wants it).
const ENABLED_UNITS: &[&str] = &[
    "ram-suite-net.service",
    "ram-suite-dns.service",
    "ram-suite-registry@allowed.service",
    "ram-suite-registry@blocked.service",
    "ram-suite.service",
];

fn build_disk(base: &Path, binaries: &[(String, PathBuf)]) -> Result<(PathBuf, PathBuf, PathBuf)> {
    let dir = host_dir();
    let root = dir.join("root");
    if root.exists() {
        fs::remove_dir_all(&root).with_context(|| format!("removing {}", root.display()))?;
    }
    fs::create_dir_all(&root)?;
    run_checked(Command::new("tar").arg("-xpf").arg(base).arg("-C").arg(&root))?;
    for (path, mode, text) in guest_files()? {
        let dest = root.join(path);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)?;
        }
        // resolv.conf may be a symlink in the base; replace it with a file.
        let _ = fs::remove_file(&dest);
        fs::write(&dest, text).with_context(|| format!("writing {}", dest.display()))?;
        set_mode(&dest, mode)?;
    }
    for (name, path) in binaries {
        let dest = root.join("usr/local/lib/ram-suite").join(name);
        fs::create_dir_all(dest.parent().unwrap_or(&root))?;
        fs::copy(path, &dest).with_context(|| format!("copy {}", path.display()))?;
        // Packages are read by apt's sandbox user, _apt; the rest is run.
        set_mode(&dest, if name.ends_with(".deb") { 0o644 } else { 0o755 })?;
    }
    let wants = root.join("etc/systemd/system/multi-user.target.wants");
    fs::create_dir_all(&wants)?;
    for unit in ENABLED_UNITS {
        let template = match unit.split_once('@') {
            Some((prefix, _)) => format!("{prefix}@.service"),
            None => unit.to_string(),
        };
        let link = wants.join(unit);
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(format!("/etc/systemd/system/{template}"), &link)?;
    }
    // Debian's docker-registry unit serves :5000 with htpasswd auth; the
    // suite's registries take its place.
    let mask = root.join("etc/systemd/system/docker-registry.service");
    let _ = fs::remove_file(&mask);
    std::os::unix::fs::symlink("/dev/null", &mask)?;
    let find_boot = |prefix: &str| -> Result<PathBuf> {
        fs::read_dir(root.join("boot"))?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(prefix)))
            .ok_or_else(|| anyhow!("no {prefix}* in the guest's /boot"))
    };
    let kernel = dir.join("vmlinuz");
    let initrd = dir.join("initrd.img");
    fs::copy(find_boot("vmlinuz-")?, &kernel)?;
    fs::copy(find_boot("initrd.img-")?, &initrd)?;
    let disk = dir.join("disk.img");
    let _ = fs::remove_file(&disk);
    run_checked(Command::new("truncate").args(["-s", "6G"]).arg(&disk))?;
    run_checked(Command::new("mkfs.ext4").args(["-q", "-F", "-d"]).arg(&root).arg(&disk))?;
    // The extracted tree is only the source of the disk.
    fs::remove_dir_all(&root)?;
    Ok((disk, kernel, initrd))
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).with_context(|| format!("chmod {}", path.display()))
}

/// What one boot showed.
struct Boot {
    exit_code: Option<i32>,
    tests: Vec<String>,
    seconds: f64,
}

fn boot(phase: &str, disk: &Path, kernel: &Path, initrd: &Path) -> Result<Boot> {
    let log_path = host_dir().join(format!("console-{phase}.log"));
    let log = fs::File::create(&log_path)?;
    let started = Instant::now();
    // Generous: the guests share the machine's cores with each other.
    let status = Command::new("timeout")
        .arg("1800")
        .arg("qemu-system-x86_64")
        .args(["-accel", "tcg", "-cpu", "max,cx16=off", "-m", "2048", "-smp", "2"])
        .args(["-nodefaults", "-display", "none", "-serial", "stdio", "-no-reboot"])
        .arg("-kernel")
        .arg(kernel)
        .arg("-initrd")
        .arg(initrd)
        .arg("-drive")
        .arg(format!("file={},format=raw,if=virtio", disk.display()))
        .args([
            "-append",
            // The cloud kernel enables AppArmor and the guest has no
            // apparmor_parser, which `docker run` would need.
            "console=ttyS0 root=/dev/vda rw panic=-1 apparmor=0 quiet systemd.show_status=0",
        ])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .status()?;
    let seconds = started.elapsed().as_secs_f64();
    let console = fs::read_to_string(&log_path).unwrap_or_default();
    let exit_code = console
        .lines()
        .filter_map(|l| l.find(EXIT_MARKER).map(|i| &l[i + EXIT_MARKER.len()..]))
        .find_map(|rest| rest.strip_prefix(phase).and_then(|code| code.trim().parse().ok()));
    if exit_code.is_none() {
        println!("xtask host-test: {phase}: no exit marker (qemu {status}); console in {}", log_path.display());
    }
    Ok(Boot { exit_code, tests: test_lines(&console), seconds })
}

/// Builds the guest, boots it twice and returns the suite's totals.
pub fn host_test() -> Result<TestTotals> {
    crate::setup::setup()?;
    let started = Instant::now();
    let base = base_tarball()?;
    let binaries = build_binaries()?;
    let (disk, kernel, initrd) = build_disk(&base, &binaries)?;
    let mut totals = TestTotals::default();
    let mut failed = Vec::new();
    for (phase, _) in PHASES {
        let boot = boot(phase, &disk, &kernel, &initrd)?;
        for line in &boot.tests {
            println!("  [host {phase}] {line}");
            totals.add(line);
        }
        let ok = boot.exit_code == Some(0);
        println!(
            "xtask host-test: {phase}: {} in {:.0} s",
            if ok { "pass".to_string() } else { format!("FAIL (exit {:?})", boot.exit_code) },
            boot.seconds
        );
        if !ok {
            failed.push(*phase);
            // The next phase needs this one's reboot.
            break;
        }
    }
    println!("xtask host-test: {:.0} s in all", started.elapsed().as_secs_f64());
    if !failed.is_empty() {
        bail!("guest suite failed in {} (console in {})", failed.join(", "), host_dir().display());
    }
    if totals.passed == 0 {
        bail!("the guest suite ran no test");
    }
    Ok(totals)
}

/// For `--message-format=json` lines: the test executable cargo reports.
pub fn test_executable(stdout: &[u8], name: &str) -> Option<PathBuf> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == name && m["executable"].is_string())
        .and_then(|m| m["executable"].as_str().map(PathBuf::from))
}

/// libtest's per-test outcome lines and its result line, from a console
/// where a test's own output (--nocapture) may sit between its name and its
/// outcome: "test NAME ... ok" each, however the output was split.
pub fn test_lines(console: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut open: Option<String> = None;
    for line in console.lines().map(str::trim) {
        if line.starts_with("test result") {
            lines.push(line.to_string());
            continue;
        }
        if let Some(rest) = line.strip_prefix("test ") {
            if let Some((name, tail)) = rest.split_once(" ... ") {
                open = Some(name.to_string());
                if tail.is_empty() {
                    continue;
                }
            }
        }
        let outcome = ["ok", "FAILED", "ignored"]
            .into_iter()
            .find(|o| line == *o || line.ends_with(&format!(" {o}")) || line.ends_with(&format!("... {o}")));
        if let (Some(outcome), Some(name)) = (outcome, open.as_ref()) {
            lines.push(format!("test {name} ... {outcome}"));
            open = None;
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::{suite_runner, test_lines};

    #[test]
    fn the_suite_runner_is_valid_sh_with_a_case_per_phase() {
        let runner = suite_runner();
        let checked = std::process::Command::new("sh").args(["-n", "-c", &runner]).status().unwrap();
        assert!(checked.success(), "{runner}");
        assert!(runner.contains(
            "  install) next=reboot; suite networking::before_ram_is_installed && suite package::install && \
             suite networking::with_the_packaged_default_policy && suite package::upgrade ;;"
        ));
        assert!(runner.contains("  reboot) next=done; suite package::after_reboot && suite --skip package:: --skip"));
    }

    #[test]
    fn outcomes_are_found_after_a_tests_own_output() {
        let console = "\
test a_quiet_one ... ok
test a_chatty_one ... allowed pull: 4.8 s
[   12.3] some kernel line
ok
test a_failing_one ... blocked pull
thread 'a_failing_one' panicked at host.rs:1:1:
FAILED
test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 1 filtered out; finished in 1.00s
";
        assert_eq!(
            test_lines(console),
            vec![
                "test a_quiet_one ... ok",
                "test a_chatty_one ... ok",
                "test a_failing_one ... FAILED",
                "test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 1 filtered out; finished in 1.00s",
            ]
        );
    }
}
