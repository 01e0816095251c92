//! `cargo xtask <command>`: orchestration only. Everything a fresh Debian 12
//! machine lacks is installed by `setup`, which `run` and `test` call first.

mod bench;
mod deb;
mod host;
mod setup;
mod vm;

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask")]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install what builds and tests need (idempotent).
    Setup,
    /// Build ramd and run it in the foreground on the embedded default policy
    /// (Docker Hub only, on the running dockerd/containerd). Everything it
    /// installed is uninstalled when it ends, so this machine is not left
    /// enforced. Extra arguments go to ramd.
    Run {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ramd_args: Vec<String>,
    },
    /// Run every test: host unit tests, the root kernel and end-to-end tests,
    /// then the kernel tests again on 5.10, 6.1 and 6.12 in QEMU (vm-test),
    /// then the systemd guest's suite (host-test).
    /// Extra arguments go to `cargo test`.
    Test {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        cargo_args: Vec<String>,
    },
    /// Measure what ram costs against baselines measured in the same run
    /// (root); prints a table and writes target/bench/bench.{md,json}.
    Bench {
        /// A short run that only checks the bench works (figures not
        /// meaningful); CI runs it so the bench cannot rot.
        #[arg(long)]
        smoke: bool,
    },
    /// Boot Debian's 5.10, 6.1 and 6.12 kernels in QEMU and run the kernel
    /// tests inside each; verifier figures go to target/vm/verifier.json.
    VmTest {
        /// Only these kernels (5.10, 6.1, 6.12); all when absent.
        #[arg(long = "kernel")]
        kernels: Vec<String>,
        /// Only the guest tests whose name contains this.
        #[arg(long)]
        filter: Option<String>,
    },
    /// Build a Debian 12 guest (systemd, pure cgroup v2, docker.service),
    /// install ram in it as an admin would, boot it in QEMU and run the
    /// guest suite (tests/tests/host.rs) across a reboot.
    HostTest,
    /// Build the Debian package target/deb/ram_<version>_amd64.deb (static
    /// ramd and ramctl, systemd units and drop-ins, the policy as a
    /// conffile, man pages, completions, changelogs) with dpkg-deb. The
    /// Maintainer is [workspace.metadata.deb] maintainer, or DEBFULLNAME and
    /// DEBEMAIL when set.
    Deb {
        /// Build version <workspace version>+SUFFIX instead (higher: an
        /// upgrade of the plain version).
        #[arg(long, value_name = "SUFFIX")]
        version_suffix: Option<String>,
    },
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| ".".into())
}

pub fn run_checked(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("cannot start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(workspace_root());
    cmd
}

extern "C" fn ignore_signal(_: libc::c_int) {}

fn run(ramd_args: &[String]) -> Result<()> {
    setup::setup()?;
    run_checked(cargo().args(["build", "--release", "--package", "ram-userspace", "--bins"]))?;
    let ramd = workspace_root().join("target/release/ramd");
    // Ctrl-C reaches ramd (same process group) and ends it; xtask must
    // survive it to uninstall afterwards. A handler (unlike SIG_IGN) is
    // reset for the child by exec.
    // SAFETY: installing a handler that does nothing is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, ignore_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, ignore_signal as *const () as libc::sighandler_t);
    }
    let status = Command::new(&ramd).arg("--default-policy").args(ramd_args).status();
    println!("xtask: ramd ended; uninstalling so this machine is not left enforced");
    let uninstall = Command::new(&ramd).arg("--uninstall").status();
    let status = status.context("cannot start ramd")?;
    if !uninstall.is_ok_and(|s| s.success()) {
        bail!("`ramd --uninstall` failed; run it by hand");
    }
    if !status.success() {
        bail!("ramd exited with {status}");
    }
    Ok(())
}

/// The tests' DNS server on miekg/dns (tests/miekg-dns), from Debian's Go
/// and library packages, offline: into target/miekg-dns/ram-miekg-dns.
fn build_miekg_dns() -> Result<()> {
    let root = workspace_root();
    let out = root.join("target/miekg-dns");
    run_checked(
        Command::new("go")
            .args(["build", "-o"])
            .arg(out.join("ram-miekg-dns"))
            .arg(".")
            .current_dir(root.join("tests/miekg-dns"))
            .env("GOPATH", "/usr/share/gocode")
            .env("GO111MODULE", "off")
            .env("GOFLAGS", "")
            .env("GOCACHE", out.join("cache")),
    )
}

fn test(cargo_args: &[String]) -> Result<()> {
    setup::setup()?;
    // The root tests start ramd, ramctl and the probe as programs.
    run_checked(cargo().args(["build", "--workspace", "--bins"]))?;
    build_miekg_dns()?;
    // The systemd guest's root file system comes from Debian's mirror while
    // the root tests run (mostly waiting on the network, not the CPU).
    let guest_base = std::thread::spawn(host::base_tarball);
    let bin_dir = workspace_root().join("target/debug");
    let mut child = cargo()
        .args(["test", "--workspace", "--all-targets", "--no-fail-fast"])
        .args(cargo_args)
        .env("RAM_BIN_DIR", &bin_dir)
        // Root tests share the kernel: one at a time keeps them readable.
        .env("RUST_TEST_THREADS", "1")
        // What the suites print (one line per bypass case, the fault and
        // load totals, verifier figures) belongs in the CI log.
        .env("RUST_TEST_NOCAPTURE", "1")
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start cargo test")?;
    let mut totals = TestTotals::default();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line.context("reading cargo test output")?;
            println!("{line}");
            totals.add(&line);
        }
    }
    let status = child.wait().context("waiting for cargo test")?;
    let host_ok = status.success() && totals.failed == 0;
    // The same kernel tests on the older kernels users run.
    let vm = vm::vm_test(&[], None);
    if let Ok(guests) = &vm {
        totals.passed += guests.passed;
        totals.failed += guests.failed;
        totals.ignored += guests.ignored;
    }
    // ram on a systemd host with pure cgroup v2 and docker.service. After
    // the matrix, not beside it: software emulation is CPU-bound, and the
    // two side by side took 2003 s against 1586 s in a row (measured).
    let host = guest_base
        .join()
        .unwrap_or_else(|_| Err(anyhow::anyhow!("building the guest's file system panicked")))
        .and_then(|_| host::host_test());
    if let Ok(guest) = &host {
        totals.passed += guest.passed;
        totals.failed += guest.failed;
        totals.ignored += guest.ignored;
    }
    // One closing line over every test binary and guest.
    println!("tests: {} passed, {} failed, {} skipped", totals.passed, totals.failed, totals.ignored);
    if !host_ok {
        bail!("cargo test failed: {status}");
    }
    vm?;
    host?;
    if totals.passed == 0 {
        bail!("cargo test ran no test");
    }
    Ok(())
}

/// Sums cargo's per-binary "test result: ok. N passed; M failed; K ignored" lines.
#[derive(Default)]
pub struct TestTotals {
    pub passed: u64,
    pub failed: u64,
    pub ignored: u64,
}

impl TestTotals {
    pub fn add(&mut self, line: &str) {
        let Some(rest) = line.strip_prefix("test result: ") else {
            return;
        };
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(label), Some(count)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(count) = count.parse::<u64>() else {
                continue;
            };
            match label {
                "passed" => self.passed += count,
                "failed" => self.failed += count,
                "ignored" => self.ignored += count,
                _ => {}
            }
        }
    }
}

fn main() -> Result<()> {
    match Args::parse().command {
        Cmd::Setup => setup::setup(),
        Cmd::Run { ramd_args } => run(&ramd_args),
        Cmd::Test { cargo_args } => test(&cargo_args),
        Cmd::Bench { smoke } => bench::bench(smoke),
        Cmd::VmTest { kernels, filter } => vm::vm_test(&kernels, filter.as_deref()).map(|_| ()),
        Cmd::HostTest => host::host_test().map(|_| ()),
        Cmd::Deb { version_suffix } => deb::build(version_suffix.as_deref()).map(|_| ()),
    }
}
