//! ramctl: inspect what ram enforces. Works from the pinned maps, so it
//! answers even while ramd is down. Results on stdout (a table, or JSON with
//! `--json`); diagnostics on stderr.

mod await_enforced;
mod blocked;
mod check;
mod learned;
mod presets;
mod reload;
mod rules;
mod status;
mod table;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use ram::paths::Paths;

#[derive(Parser)]
#[command(name = "ramctl", version, about = "Inspect ram's enforcement: status, rules, learned addresses")]
struct Args {
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    /// bpffs directory of ram's pins [env: RAM_PIN_DIR; default: /sys/fs/bpf/ram].
    #[arg(long, global = true, value_name = "DIR")]
    pin_dir: Option<PathBuf>,
    /// ramd's runtime directory [env: RAM_RUN_DIR; default: /run/ram].
    #[arg(long, global = true, value_name = "DIR")]
    run_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
    /// Would a connect to HOST or ADDR be allowed now, and by which rule?
    /// Exit status 0 when allowed, 2 when denied.
    Check {
        /// A host name or an IPv4/IPv6 address.
        destination: String,
        port: Option<u16>,
        /// Only this target (default: every target).
        #[arg(long)]
        target: Option<String>,
    },
}

fn main() -> ExitCode {
    // Output piped into `head` and the like ends quietly, as for other tools.
    // SAFETY: restoring the default disposition of a signal.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let args = Args::parse();
    let paths = Paths::resolve(args.pin_dir.clone(), args.run_dir.clone());
    let result = match args.command {
        Command::Status => status::run(&paths, args.json),
        Command::Rules => rules::run(&paths, args.json),
        Command::Learned => learned::run(&paths, args.json),
        Command::Reload => reload::run(&paths, args.json),
        Command::Presets => presets::run(args.json),
        Command::Uninstall => uninstall(&paths, args.json),
        Command::Blocked { limit, follow } => blocked::run(&paths, args.json, limit, follow),
        Command::AwaitEnforced { timeout } => await_enforced::run(&paths, args.json, timeout),
        Command::Check { destination, port, target } => {
            match check::run(&paths, args.json, &destination, port, target.as_deref()) {
                Ok(true) => Ok(()),
                Ok(false) => return ExitCode::from(2),
                Err(e) => Err(e),
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ramctl: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn uninstall(paths: &Paths, json: bool) -> anyhow::Result<()> {
    let report = ram::loader::uninstall(paths)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("removed {} links and {} maps from {}", report.links, report.maps, paths.pin_dir.display());
    }
    Ok(())
}

/// Scope number → target name, from ramd's status file when there is one.
pub fn scope_names(paths: &Paths) -> std::collections::HashMap<u32, String> {
    ram::status::DaemonStatus::read(&paths.status_file())
        .map(|s| s.targets.into_iter().map(|t| (t.scope, t.name)).collect())
        .unwrap_or_default()
}

pub fn scope_label(names: &std::collections::HashMap<u32, String>, scope: u32) -> String {
    names.get(&scope).cloned().unwrap_or_else(|| format!("scope {scope}"))
}

pub fn require_pins(paths: &Paths) -> anyhow::Result<()> {
    if !paths.maps_dir().exists() {
        anyhow::bail!("nothing is installed at {} (is ramd running, or was it uninstalled?)", paths.pin_dir.display());
    }
    Ok(())
}
