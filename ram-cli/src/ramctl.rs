//! `ramctl`: the inspection tool's command line.

use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "ramctl",
    version,
    about = "Inspect ram's enforcement: status, rules, learned addresses",
    long_about = "Inspect ram's enforcement: status, rules, learned addresses.\n\n\
        ramctl reads ram's pinned maps, so it answers even while ramd is down. Results go to stdout \
        (a table, or JSON with --json); diagnostics to stderr."
)]
pub struct Args {
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// bpffs directory of ram's pins [env: RAM_PIN_DIR; default: /sys/fs/bpf/ram].
    #[arg(long, global = true, value_name = "DIR")]
    pub pin_dir: Option<PathBuf>,
    /// ramd's runtime directory [env: RAM_RUN_DIR; default: /run/ram].
    #[arg(long, global = true, value_name = "DIR")]
    pub run_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Mode, targets, attached programs and counters.
    Status,
    /// The rules the kernel enforces, read back from the maps.
    Rules,
    /// Addresses learned from DNS answers, with their host and time left.
    Learned,
    /// Make ramd read its policy again; fails when the new policy is refused.
    Reload,
    /// Registry presets (`[[allow]] preset = "..."`) and their hosts.
    Presets,
    /// Remove every program, link and pin ram installed (as `ramd --uninstall`).
    Uninstall,
    /// Recent blocked and would-block attempts, newest first.
    Blocked {
        /// How many to show.
        #[arg(short = 'n', long, default_value_t = 20)]
        limit: usize,
        /// Keep streaming new attempts as they happen.
        #[arg(long, short)]
        follow: bool,
    },
    /// Wait until ramd enforces this process's cgroup (or one above it);
    /// fail after --timeout. For `ExecStartPre=` of a runtime's unit: the
    /// runtime then starts enforced, or not at all.
    AwaitEnforced {
        /// Seconds to wait before failing.
        #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
        timeout: f64,
    },
    /// The `[[allow]]` rules that would have allowed the blocked and
    /// would-block attempts, as a TOML fragment to review and add to the
    /// policy (from audit mode to enforce).
    Suggest {
        /// Only attempts this recent (30s, 10m, 2h, 7d; default: all kept).
        #[arg(long, value_name = "DURATION")]
        since: Option<String>,
    },
    /// Everything ram knows about one name: the policy's rules that match
    /// it, the verdict now, the addresses learned for it and when they
    /// expire, the recent DNS answers for it and what each taught (or why
    /// nothing), and the recent blocked attempts to it.
    Explain {
        /// A host name, as a runtime would resolve it.
        host: String,
        /// The port to judge (when absent, only the name is).
        port: Option<u16>,
        /// Only this target (default: every target).
        #[arg(long)]
        target: Option<String>,
        /// Answers and attempts shown at most, each.
        #[arg(short = 'n', long, default_value_t = 10)]
        limit: usize,
    },
    /// The programs' kernel log (why DNS answers taught nothing, with the
    /// name and resolver, in ramd's log): show it, or turn it on or off
    /// while ramd runs. Turning it on or off loads every target's programs
    /// again and swaps them in (never a moment unenforced); off costs
    /// nothing.
    Debug {
        /// on or off (when absent, show the level in effect).
        #[arg(value_parser = ["on", "off"])]
        setting: Option<String>,
    },
    /// Would a connect to HOST or ADDR be allowed now, and by which rule?
    /// Exit status 0 when allowed, 2 when denied.
    Check {
        /// A host name or an IPv4/IPv6 address.
        destination: String,
        /// The port to judge (when absent, only the address or name is).
        port: Option<u16>,
        /// Only this target (default: every target).
        #[arg(long)]
        target: Option<String>,
    },
}

/// ramctl's command, for man pages and completions.
pub fn command() -> clap::Command {
    Args::command()
}
