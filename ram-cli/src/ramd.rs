//! `ramd`: the daemon's command line.

use std::path::PathBuf;

use clap::{CommandFactory, Parser, ValueEnum};

#[derive(Parser)]
#[command(
    name = "ramd",
    version,
    about = "Registry access management: enforce a container runtime's allowed registries in the kernel",
    long_about = "Registry access management: enforce a container runtime's allowed registries in the kernel.\n\n\
        ramd loads ram's eBPF programs, attaches them to the cgroups of the policy's targets (dockerd, \
        containerd, ...), keeps the kernel's maps in step with the policy and logs every blocked attempt. \
        Programs stay attached when ramd stops or crashes; only `ramd --uninstall` removes them. \
        The policy is re-read on SIGHUP, when the file changes, and on `ramctl reload`."
)]
pub struct Args {
    /// Policy file. Default: /etc/ram/ram.toml, or the embedded default
    /// policy (Docker Hub only) when that file does not exist.
    #[arg(long, short, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Run on the embedded default policy (Docker Hub only, on the running
    /// dockerd/containerd), ignoring any policy file.
    #[arg(long, conflicts_with = "config")]
    pub default_policy: bool,
    /// Validate a policy file, print its compiled rules, and exit.
    #[arg(long, value_name = "PATH")]
    pub check_config: Option<PathBuf>,
    /// Remove every program, link and pin ram installed, and exit.
    #[arg(long)]
    pub uninstall: bool,
    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// bpffs directory for pins (root-only) [env: RAM_PIN_DIR; default: /sys/fs/bpf/ram].
    #[arg(long, value_name = "DIR")]
    pub pin_dir: Option<PathBuf>,
    /// Runtime directory for the status file [env: RAM_RUN_DIR; default: /run/ram].
    #[arg(long, value_name = "DIR")]
    pub run_dir: Option<PathBuf>,
    /// Serve Prometheus metrics at /metrics on IP:PORT (127.0.0.1:9464) or
    /// unix:/PATH; wins over the policy's `[metrics] listen`.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
    /// The programs' kernel log (why a DNS answer taught nothing, with the
    /// name and resolver): off, or debug. Off costs nothing; `ramctl debug
    /// on|off` changes it while ramd runs. Needs Linux 5.8 (ring buffer).
    #[arg(long, value_name = "LEVEL", default_value = "off", value_parser = ["off", "debug"])]
    pub kernel_log: String,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// One line per event, for people.
    Text,
    /// One JSON object per line.
    Json,
}

/// ramd's command, for man pages and completions.
pub fn command() -> clap::Command {
    Args::command()
}
