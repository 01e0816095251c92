//! ramd: loads ram's programs, attaches them to the policy's cgroups, keeps
//! the maps in step with the policy, and logs every blocked attempt. Its
//! command line is `ram::cli::ramd` (shared with the man page).

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use ram::{
    cli::ramd::{Args, LogFormat},
    daemon::{self, PolicySource},
    loader,
    metrics::ListenAddr,
    paths::Paths,
    policy::{HostFacts, Policy, DEFAULT_POLICY_PATH},
};

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    // Colours only on a terminal: under systemd, stdout is the journal, and
    // escape codes there break every grep an admin runs on the log.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).with_span_list(false).init(),
    }
}

fn check_config(path: &std::path::Path) -> anyhow::Result<()> {
    let policy = Policy::from_file(path, &HostFacts::probe())?;
    let compiled = policy.compile()?;
    println!("{}: valid", policy.source);
    for warning in &policy.warnings {
        println!("warning: {warning}");
    }
    println!("mode: {}", policy.mode);
    let resolvers: Vec<String> = policy.dns.resolvers.iter().map(|r| r.to_string()).collect();
    println!("resolvers: {}", if resolvers.is_empty() { "none".into() } else { resolvers.join(", ") });
    println!("ttl: min {} s, max {} s", policy.dns.min_ttl, policy.dns.max_ttl);
    match &policy.metrics.listen {
        Some(listen) => println!("metrics: {listen}"),
        None => println!("metrics: off"),
    }
    println!("targets:");
    for scope in &compiled.scopes {
        println!(
            "  [{}] {}: {} ({}, containers {})",
            scope.scope, scope.name, scope.selector, scope.mode, scope.containers
        );
    }
    println!("rules (every target):");
    for entry in &compiled.names {
        let kind = if entry.wildcard { "wildcard" } else { "host" };
        println!("  {kind:<9} {}", entry.pattern);
    }
    for (cidr, _) in &compiled.cidrs {
        println!("  {:<9} {cidr}", "cidr");
    }
    if compiled.names.is_empty() && compiled.cidrs.is_empty() {
        println!("  (none: only the resolvers are reachable)");
    }
    Ok(())
}

fn policy_source(args: &Args) -> PolicySource {
    if args.default_policy {
        return PolicySource::Embedded;
    }
    match &args.config {
        Some(path) => PolicySource::File(path.clone()),
        None if std::path::Path::new(DEFAULT_POLICY_PATH).exists() => PolicySource::File(DEFAULT_POLICY_PATH.into()),
        None => {
            tracing::info!("{DEFAULT_POLICY_PATH} does not exist; using the embedded default policy (Docker Hub only)");
            PolicySource::Embedded
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    if let Some(path) = &args.check_config {
        return check_config(path);
    }
    let paths = Paths::resolve(args.pin_dir.clone(), args.run_dir.clone());
    if args.uninstall {
        let report =
            loader::uninstall(&paths).with_context(|| format!("uninstalling from {}", paths.pin_dir.display()))?;
        println!("removed {} links and {} maps from {}", report.links, report.maps, paths.pin_dir.display());
        return Ok(());
    }
    init_logging(args.log_format);
    let source = policy_source(&args);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the runtime")?;
    // Parsed here rather than by clap: the command line lives in ram-cli,
    // which knows nothing of the lib's types.
    let metrics = match &args.metrics {
        Some(text) => Some(text.parse::<ListenAddr>().map_err(|why| anyhow::anyhow!("--metrics {text:?}: {why}"))?),
        None => None,
    };
    let kernel_log = ram::kernel_log::KernelLog::parse(&args.kernel_log)
        .map_err(|why| anyhow::anyhow!("--kernel-log {:?}: {why}", args.kernel_log))?;
    let options = daemon::Options { metrics, kernel_log };
    runtime.block_on(daemon::run(source, paths, options))?;
    Ok(())
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ramd: {e:#}");
            ExitCode::FAILURE
        }
    }
}
