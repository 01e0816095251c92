//! ramctl: inspect what ram enforces. Works from the pinned maps, so it
//! answers even while ramd is down. Results on stdout (a table, or JSON with
//! `--json`); diagnostics on stderr. Its command line is `ram::cli::ramctl`
//! (shared with the man page).

mod await_enforced;
mod blocked;
mod check;
mod debug;
mod explain;
mod learned;
mod presets;
mod reload;
mod rules;
mod status;
mod suggest;
mod table;

use std::process::ExitCode;

use clap::Parser;
use ram::{
    cli::ramctl::{Args, Command},
    paths::Paths,
};

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
        Command::Suggest { since } => suggest::run(&paths, args.json, since.as_deref()),
        Command::Debug { setting } => debug::run(&paths, args.json, setting.as_deref()),
        Command::Explain { host, port, target, limit } => {
            explain::run(&paths, args.json, &host, port, target.as_deref(), limit)
        }
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
