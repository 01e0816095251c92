//! `cargo xtask <command>`: orchestration only. Everything a fresh Debian 12
//! machine lacks is installed by `setup`, which `run` and `test` call first.

mod setup;

use std::{
    path::{Path, PathBuf},
    process::Command,
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
    /// Run every test: host unit tests and the root kernel and end-to-end
    /// tests. Extra arguments go to `cargo test`.
    Test {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        cargo_args: Vec<String>,
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

fn test(cargo_args: &[String]) -> Result<()> {
    setup::setup()?;
    // The root tests start ramd, ramctl and the probe as programs.
    run_checked(cargo().args(["build", "--workspace", "--bins"]))?;
    let bin_dir = workspace_root().join("target/debug");
    run_checked(
        cargo()
            .args(["test", "--workspace", "--no-fail-fast"])
            .args(cargo_args)
            .env("RAM_BIN_DIR", &bin_dir)
            // Root tests share the kernel: one at a time keeps them readable.
            .env("RUST_TEST_THREADS", "1"),
    )
}

fn main() -> Result<()> {
    match Args::parse().command {
        Cmd::Setup => setup::setup(),
        Cmd::Run { ramd_args } => run(&ramd_args),
        Cmd::Test { cargo_args } => test(&cargo_args),
    }
}
