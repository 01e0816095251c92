//! `cargo xtask bench`: what ram costs, measured side by side in one run,
//! each figure against a baseline measured in the same run (never a timed
//! assertion in a test). Written as Markdown and JSON under target/bench/.
//!
//! Three setups, each a network namespace of its own with an echo listener
//! on 127.20.0.1:7070 and a cgroup v2 for the measured loop:
//! - bare: nothing enforced;
//! - ram: ramd enforcing the cgroup with a policy that allows 127.20.0.0/16;
//! - nftables: the classic setup, an output chain that drops by default and
//!   accepts a set of 10,000 allowed addresses (as a resolver hook would
//!   fill it), in a namespace of its own.
//!
//! Figures so far (issue 11 lists the rest):
//! - connect()+close() rate in each setup, ram and nftables as ratios of
//!   bare;
//! - kernel time per run of ram_connect4, ram_egress and ram_dns_ingress
//!   during the ram loop (kernel.bpf_stats_enabled; each program's own
//!   run_time_ns / run_cnt);
//! - DNS answer learning: ram_dns_ingress's kernel time per answer during a
//!   loop of queries for an allowed name answered with a CNAME and 8 A
//!   records (a registry's answer), with the kernel log off, on (`ramctl
//!   debug on`) and off again, and the off/off-again ratio;
//! - start to enforcing: from ramd's start to the first connect it refuses
//!   in a fresh cgroup, with the default policy's rules (the Docker Hub
//!   preset) and with 100,000 host rules (90,000 exact, 10,000 wildcard),
//!   the latter as a ratio of the former;
//! - TCP bulk and UDP send rates, and the programs' cost per packet
//!   meanwhile (see `throughput`);
//! - policy change to enforced, and ramd's memory (see `reload`).

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

use crate::{cargo, run_checked, workspace_root};

mod reload;
mod throughput;

const LISTEN_ADDR: &str = "127.20.0.1";
const LISTEN_PORT: &str = "7070";
/// Addresses in the nftables baseline's allowed set.
const NFT_SET_SIZE: u32 = 10_000;
/// The resolver of the DNS learning loop (in the ram setup's namespace).
const RESOLVER: &str = "127.0.0.53";
/// The name it answers: a CNAME to `CANONICAL`, which has 8 A records.
const REGISTRY: &str = "registry.bench.test";
const CANONICAL: &str = "cdn.bench.test";

/// The embedded default policy's rules.
const DEFAULT_RULES: &str = "[[allow]]\npreset = \"dockerhub\"\n";
/// Limits for the large policy.
const LARGE_LIMITS: &str = "[limits]\nhost_rules = 131072\n";

/// 100,000 host rules: 90,000 exact names and 10,000 wildcards.
fn large_rules() -> String {
    let mut rules = String::with_capacity(4_000_000);
    for i in 0..90_000 {
        let _ = write!(rules, "[[allow]]\nhost = \"h{i}.registry.bench.test\"\n");
    }
    for i in 0..10_000 {
        let _ = write!(rules, "[[allow]]\nhost = \"*.w{i}.registry.bench.test\"\n");
    }
    rules
}

/// Milliseconds from ramd's start to enforcing, per repetition.
#[derive(Default)]
struct Starts {
    default_rules: Vec<f64>,
    large: Vec<f64>,
}

/// A ramd of its own, on a fresh cgroup, pin and run directory, for one
/// start measurement; all removed on drop.
struct StartRun {
    bins: PathBuf,
    cgroup: PathBuf,
    pin_dir: PathBuf,
    run_dir: PathBuf,
    ramd: Option<Child>,
}

/// Stops a ramd this bench started (by its pid) and removes what it left
/// attached and pinned under `pin_dir`.
fn stop_ramd(bins: &Path, ramd: Option<Child>, pin_dir: &Path) {
    if let Some(mut ramd) = ramd {
        // SAFETY: signals the ramd this bench started, by its pid.
        unsafe { libc::kill(ramd.id() as i32, libc::SIGTERM) };
        let _ = ramd.wait();
    }
    let _ = Command::new(bins.join("ramd")).arg("--uninstall").arg("--pin-dir").arg(pin_dir).output();
}

impl Drop for StartRun {
    fn drop(&mut self) {
        stop_ramd(&self.bins, self.ramd.take(), &self.pin_dir);
        let _ = std::fs::remove_dir(&self.cgroup);
        let _ = std::fs::remove_dir_all(&self.run_dir);
    }
}

/// How long and how often each figure is measured.
struct Plan {
    loop_ms: u64,
    repetitions: usize,
}

pub fn bench(smoke: bool) -> Result<()> {
    crate::setup::setup()?;
    // A smoke run only checks that the bench works: the debug build `cargo
    // xtask test` just made will do (the eBPF object is the same).
    let profile = if smoke { "debug" } else { "release" };
    let mut build = cargo();
    build.args(["build", "--workspace", "--bins"]);
    if !smoke {
        build.arg("--release");
    }
    run_checked(&mut build)?;
    let bins = workspace_root().join("target").join(profile);
    let plan = if smoke { Plan { loop_ms: 300, repetitions: 1 } } else { Plan { loop_ms: 2000, repetitions: 5 } };
    let scene = Scene::new(&bins)?;
    let mut rates: [Vec<f64>; 3] = Default::default();
    let mut stats = ProgramStats::default();
    for round in 0..plan.repetitions {
        // Rotate the order so that drift (thermal, other load) spreads over
        // every setup alike.
        for turn in 0..3 {
            let setup = (round + turn) % 3;
            let measure_stats = setup == 1;
            let before = if measure_stats { Some(scene.program_stats()?) } else { None };
            let rate = scene.connect_rate(setup, plan.loop_ms)?;
            if let Some(before) = before {
                stats.add(&before, &scene.program_stats()?);
            }
            rates[setup].push(rate);
        }
    }
    let throughput = scene.throughput(&plan)?;
    let mut scene = scene;
    let learning = scene.dns_learning(&plan)?;
    let reloads = scene.reloads(&plan)?;
    let memory = scene.memory(&plan)?;
    let mut starts = Starts::default();
    for _ in 0..plan.repetitions {
        starts.default_rules.push(scene.start_to_enforcing("", DEFAULT_RULES)?);
        starts.large.push(scene.start_to_enforcing(LARGE_LIMITS, &large_rules())?);
    }
    let mut report = Report::new(&rates, &stats, &learning, &starts, &plan, smoke);
    for more in
        [throughput::report(&mut report.markdown, &throughput), reload::report(&mut report.markdown, &reloads, &memory)]
    {
        if let (Some(json), serde_json::Value::Object(more)) = (report.json.as_object_mut(), more) {
            json.extend(more);
        }
    }
    print!("{}", report.markdown);
    let dir = workspace_root().join("target/bench");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("bench.md"), &report.markdown)?;
    std::fs::write(dir.join("bench.json"), serde_json::to_string_pretty(&report.json)?)?;
    println!("xtask bench: written to {}", dir.display());
    if rates.iter().any(|r| r.iter().any(|v| *v <= 0.0)) {
        bail!("a setup made no connect at all: the bench itself is broken");
    }
    Ok(())
}

/// Kernel run time and run count of ram's programs, summed over rounds.
#[derive(Default, Clone)]
struct ProgramStats {
    /// (name, run_time_ns, run_count)
    programs: Vec<(String, u64, u64)>,
}

impl ProgramStats {
    fn add(&mut self, before: &ProgramStats, after: &ProgramStats) {
        for (name, time, count) in &after.programs {
            let (t0, c0) =
                before.programs.iter().find(|(n, _, _)| n == name).map(|(_, t, c)| (*t, *c)).unwrap_or((0, 0));
            match self.programs.iter_mut().find(|(n, _, _)| n == name) {
                Some(entry) => {
                    entry.1 += time - t0;
                    entry.2 += count - c0;
                }
                None => self.programs.push((name.clone(), time - t0, count - c0)),
            }
        }
    }
}

/// ram_dns_ingress's kernel ns per answer in each kernel log phase.
struct Learning {
    /// (phase, ns per answer per repetition, answers per s per repetition)
    phases: Vec<(&'static str, Vec<f64>, Vec<f64>)>,
}

/// Everything the bench made; removed on drop, whatever happened.
struct Scene {
    bins: PathBuf,
    netns: [String; 3],
    cgroups: [PathBuf; 3],
    listeners: Vec<Child>,
    ramd: Option<Child>,
    pin_dir: PathBuf,
    run_dir: PathBuf,
    stats_was: Option<String>,
    program_ids: Vec<(String, u32)>,
}

fn cgroup2_mount() -> Result<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")?;
    mounts
        .lines()
        .find_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let mount_point = left.split_whitespace().nth(4)?;
            right.starts_with("cgroup2 ").then(|| PathBuf::from(mount_point))
        })
        .context("no cgroup v2 mount")
}

fn ip(args: &[&str]) -> Result<()> {
    run_checked(Command::new("ip").args(args))
}

impl Scene {
    fn new(bins: &Path) -> Result<Self> {
        let pid = std::process::id();
        let root = cgroup2_mount()?;
        let names = ["bare", "ram", "nft"];
        let mut scene = Scene {
            bins: bins.to_path_buf(),
            netns: names.map(|n| format!("ram-bench-{n}-{pid}")),
            cgroups: names.map(|n| root.join(format!("ram-bench-{n}-{pid}"))),
            listeners: Vec::new(),
            ramd: None,
            pin_dir: PathBuf::from(format!("/sys/fs/bpf/ram-bench-{pid}")),
            run_dir: std::env::temp_dir().join(format!("ram-bench-{pid}")),
            stats_was: std::fs::read_to_string("/proc/sys/kernel/bpf_stats_enabled").ok(),
            program_ids: Vec::new(),
        };
        for (netns, cgroup) in scene.netns.clone().iter().zip(scene.cgroups.clone()) {
            ip(&["netns", "add", netns])?;
            ip(&["-n", netns, "link", "set", "lo", "up"])?;
            std::fs::create_dir(&cgroup).with_context(|| format!("mkdir {}", cgroup.display()))?;
            let mut listener = scene.probe_command(netns, None);
            listener.args(["accept-loop", LISTEN_ADDR, LISTEN_PORT]).stdout(Stdio::null());
            scene.listeners.push(listener.spawn().context("start the listener")?);
        }
        scene.nftables()?;
        scene.start_sinks()?;
        scene.start_resolver()?;
        scene.start_ramd()?;
        std::fs::write("/proc/sys/kernel/bpf_stats_enabled", "1").context("enable kernel.bpf_stats_enabled")?;
        // Every listener answers before anything is measured.
        for setup in 0..3 {
            let deadline = Instant::now() + Duration::from_secs(10);
            while scene.connect_rate(setup, 50)? <= 0.0 {
                if Instant::now() > deadline {
                    bail!("setup {setup}: the listener does not answer");
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(scene)
    }

    /// ram-probe in `netns` (joined with nsenter), and in `cgroup` if given.
    fn probe_command(&self, netns: &str, cgroup: Option<&Path>) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/run/netns/{netns}"));
        if let Some(cgroup) = cgroup {
            // sh moves itself into the cgroup, then becomes the probe.
            cmd.args(["sh", "-c", "echo $$ > \"$1/cgroup.procs\" && shift && exec \"$@\"", "sh"]);
            cmd.arg(cgroup);
        }
        cmd.arg(self.bins.join("ram-probe"));
        cmd
    }

    /// The classic setup: default drop on output, a set of allowed
    /// addresses (the listener's among them), replies accepted by state.
    fn nftables(&self) -> Result<()> {
        let mut set = String::from(LISTEN_ADDR);
        for i in 1..NFT_SET_SIZE {
            write!(set, ", 10.{}.{}.{}", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff)?;
        }
        let ruleset = format!(
            "table inet rambench {{\n  set allowed {{ type ipv4_addr; elements = {{ {set} }} }}\n  chain output {{\n    type filter hook output priority 0; policy drop;\n    ct state established,related accept\n    ip daddr @allowed accept\n  }}\n}}\n"
        );
        let file = self.run_dir_path("nft.conf")?;
        std::fs::write(&file, ruleset)?;
        run_checked(Command::new("ip").args(["netns", "exec", &self.netns[2], "nft", "-f"]).arg(&file))
    }

    fn run_dir_path(&self, name: &str) -> Result<PathBuf> {
        std::fs::create_dir_all(&self.run_dir)?;
        Ok(self.run_dir.join(name))
    }

    /// A resolver in the ram setup's namespace answering `REGISTRY` with a
    /// CNAME and 8 A records (ram-probe serve-dns).
    fn start_resolver(&mut self) -> Result<()> {
        let mut resolver = self.probe_command(&self.netns[1], None);
        resolver.args(["serve-dns", RESOLVER, "300", &format!("{REGISTRY}>{CANONICAL}")]);
        for i in 1..=8 {
            resolver.arg(format!("{CANONICAL}=10.30.0.{i}"));
        }
        self.listeners.push(resolver.stdout(Stdio::null()).spawn().context("start the resolver")?);
        Ok(())
    }

    /// The DNS learning figure, with the kernel log off, on, and off again.
    fn dns_learning(&mut self, plan: &Plan) -> Result<Learning> {
        let mut phases = Vec::new();
        for (phase, setting) in
            [("kernel log off", None), ("kernel log on", Some("on")), ("kernel log off again", Some("off"))]
        {
            if let Some(setting) = setting {
                let out = self.ramctl(&["debug", setting])?;
                if !out.status.success() {
                    bail!("ramctl debug {setting}: {}", String::from_utf8_lossy(&out.stderr));
                }
                // New programs: their ids, for their statistics.
                self.program_ids = self.attached_programs().context("ramd's programs after ramctl debug")?;
            }
            let (mut per_answer, mut rates) = (Vec::new(), Vec::new());
            for _ in 0..plan.repetitions {
                let before = self.program_stats()?;
                let out = self
                    .probe_command(&self.netns[1], Some(&self.cgroups[1]))
                    .args(["resolve-loop", RESOLVER, REGISTRY, &plan.loop_ms.to_string()])
                    .output()
                    .context("run the resolve loop")?;
                let mut stats = ProgramStats::default();
                stats.add(&before, &self.program_stats()?);
                let text = String::from_utf8_lossy(&out.stdout);
                let field = |key: &str| {
                    text.split_whitespace().find_map(|w| w.strip_prefix(key)).and_then(|v| v.parse::<f64>().ok())
                };
                let (Some(rate), Some(failed)) = (field("per_s="), field("failed=")) else {
                    bail!("resolve loop said: {text}{}", String::from_utf8_lossy(&out.stderr));
                };
                if failed > 0.0 || rate <= 0.0 {
                    bail!("{phase}: the resolve loop failed: {text}");
                }
                let Some((_, time, count)) = stats.programs.iter().find(|(name, _, _)| name == "ram_dns_ingress")
                else {
                    bail!("no statistics for ram_dns_ingress");
                };
                per_answer.push(if *count > 0 { *time as f64 / *count as f64 } else { 0.0 });
                rates.push(rate);
            }
            phases.push((phase, per_answer, rates));
        }
        // The answers taught: the canonical name's addresses are learned.
        let learned = self.ramctl(&["learned", "--json"])?;
        if !String::from_utf8_lossy(&learned.stdout).contains("10.30.0.8") {
            bail!("the DNS loop taught nothing: the figure would not be learning's");
        }
        Ok(Learning { phases })
    }

    /// Starts a ramd of its own enforcing a fresh cgroup with `rules`, and
    /// returns the milliseconds until a connect from that cgroup to an
    /// address outside the policy is refused.
    fn start_to_enforcing(&self, limits: &str, rules: &str) -> Result<f64> {
        let pid = std::process::id();
        let mut run = StartRun {
            bins: self.bins.clone(),
            cgroup: cgroup2_mount()?.join(format!("ram-bench-start-{pid}")),
            pin_dir: PathBuf::from(format!("/sys/fs/bpf/ram-bench-start-{pid}")),
            run_dir: self.run_dir.join("start"),
            ramd: None,
        };
        std::fs::create_dir(&run.cgroup).with_context(|| format!("mkdir {}", run.cgroup.display()))?;
        std::fs::create_dir_all(&run.run_dir)?;
        let policy = format!(
            "mode = \"enforce\"\n{limits}[dns]\nresolvers = [\"{RESOLVER}\"]\nnetns = \"/run/netns/{}\"\nmin_ttl = 30\nmax_ttl = 86400\n[[target]]\nname = \"start\"\ncgroup = \"{}\"\n{rules}",
            self.netns[1],
            run.cgroup.display()
        );
        let config = run.run_dir.join("ram.toml");
        std::fs::write(&config, policy)?;
        let log = std::fs::File::create(run.run_dir.join("ramd.log"))?;
        let started = Instant::now();
        run.ramd = Some(
            Command::new(self.bins.join("ramd"))
                .arg("--config")
                .arg(&config)
                .arg("--pin-dir")
                .arg(&run.pin_dir)
                .arg("--run-dir")
                .arg(&run.run_dir)
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .context("start ramd")?,
        );
        loop {
            let out = self
                .probe_command(&self.netns[1], Some(&run.cgroup))
                .args(["connect", "127.42.0.1", "9"])
                .output()
                .context("probe")?;
            if String::from_utf8_lossy(&out.stdout).trim() == "EPERM" {
                return Ok(started.elapsed().as_secs_f64() * 1000.0);
            }
            if started.elapsed() > Duration::from_secs(120) {
                bail!("ramd did not enforce within 120 s; see {}", run.run_dir.join("ramd.log").display());
            }
        }
    }

    fn ramctl(&self, args: &[&str]) -> Result<std::process::Output> {
        Command::new(self.bins.join("ramctl"))
            .arg("--pin-dir")
            .arg(&self.pin_dir)
            .arg("--run-dir")
            .arg(&self.run_dir)
            .args(args)
            .output()
            .context("run ramctl")
    }

    fn start_ramd(&mut self) -> Result<()> {
        let policy = self.bench_policy(reload::FIRST_CIDR);
        let config = self.run_dir_path("ram.toml")?;
        std::fs::write(&config, policy)?;
        let log = std::fs::File::create(self.run_dir_path("ramd.log")?)?;
        let ramd = Command::new(self.bins.join("ramd"))
            .arg("--config")
            .arg(&config)
            .arg("--pin-dir")
            .arg(&self.pin_dir)
            .arg("--run-dir")
            .arg(&self.run_dir)
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("start ramd")?;
        self.ramd = Some(ramd);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(ids) = self.attached_programs() {
                self.program_ids = ids;
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("ramd did not attach; see {}", self.run_dir.join("ramd.log").display());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// (name, id) of the programs ramd attached, once it has.
    fn attached_programs(&self) -> Option<Vec<(String, u32)>> {
        let out = Command::new(self.bins.join("ramctl"))
            .arg("--pin-dir")
            .arg(&self.pin_dir)
            .arg("--run-dir")
            .arg(&self.run_dir)
            .args(["status", "--json"])
            .output()
            .ok()?;
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let target = &status["targets"][0];
        if target["state"] != "attached" {
            return None;
        }
        target["programs"]
            .as_array()?
            .iter()
            .map(|p| Some((p["name"].as_str()?.to_string(), p["id"].as_u64()? as u32)))
            .collect()
    }

    /// run_time_ns and run_cnt of ramd's programs, from bpf_prog_info.
    fn program_stats(&self) -> Result<ProgramStats> {
        let mut programs = Vec::new();
        for info in aya::programs::loaded_programs() {
            let info = info.context("listing loaded programs")?;
            if let Some((name, _)) = self.program_ids.iter().find(|(_, id)| *id == info.id()) {
                programs.push((name.clone(), info.run_time().as_nanos() as u64, info.run_count()));
            }
        }
        Ok(ProgramStats { programs })
    }

    /// connect()+close() per second in one setup, over `ms` milliseconds.
    fn connect_rate(&self, setup: usize, ms: u64) -> Result<f64> {
        let out = self
            .probe_command(&self.netns[setup], Some(&self.cgroups[setup]))
            .args(["connect-loop", LISTEN_ADDR, LISTEN_PORT, &ms.to_string()])
            .output()
            .context("run the connect loop")?;
        let text = String::from_utf8_lossy(&out.stdout);
        let rate = text
            .split_whitespace()
            .find_map(|w| w.strip_prefix("per_s="))
            .and_then(|v| v.parse::<f64>().ok())
            .with_context(|| format!("connect loop said: {text}{}", String::from_utf8_lossy(&out.stderr)))?;
        let failed = text.split_whitespace().find_map(|w| w.strip_prefix("failed=")).unwrap_or("0");
        if failed != "0" && ms > 50 {
            bail!("setup {setup}: {failed} connects failed: {text}");
        }
        Ok(rate)
    }
}

impl Drop for Scene {
    fn drop(&mut self) {
        if let Some(was) = &self.stats_was {
            let _ = std::fs::write("/proc/sys/kernel/bpf_stats_enabled", was.trim());
        }
        stop_ramd(&self.bins, self.ramd.take(), &self.pin_dir);
        for listener in &mut self.listeners {
            let _ = listener.kill();
            let _ = listener.wait();
        }
        for netns in &self.netns {
            let _ = Command::new("ip").args(["netns", "del", netns]).status();
        }
        for cgroup in &self.cgroups {
            let _ = std::fs::remove_dir(cgroup);
        }
        let _ = std::fs::remove_dir_all(&self.run_dir);
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

/// (max - min) / median, in percent.
fn spread(values: &[f64]) -> f64 {
    let (min, max) = values.iter().fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(*v), b.max(*v)));
    let m = median(values);
    if m > 0.0 {
        (max - min) / m * 100.0
    } else {
        0.0
    }
}

struct Report {
    markdown: String,
    json: serde_json::Value,
}

impl Report {
    fn new(
        rates: &[Vec<f64>; 3],
        stats: &ProgramStats,
        learning: &Learning,
        starts: &Starts,
        plan: &Plan,
        smoke: bool,
    ) -> Report {
        let [bare, ram, nft] = [median(&rates[0]), median(&rates[1]), median(&rates[2])];
        let ratio = |x: f64| if bare > 0.0 { x / bare } else { 0.0 };
        let mut md = String::new();
        let _ = writeln!(md, "# cargo xtask bench{}\n", if smoke { " --smoke (figures not meaningful)" } else { "" });
        let _ = writeln!(
            md,
            "{} repetitions of {} ms each, setups in rotating order; spread = (max - min) / median.\n",
            plan.repetitions, plan.loop_ms
        );
        let _ = writeln!(md, "| figure | value | baseline | ratio | spread | target |");
        let _ = writeln!(md, "| --- | --- | --- | --- | --- | --- |");
        let _ = writeln!(
            md,
            "| connect()+close() per s, ram-enforced cgroup | {ram:.0} | {bare:.0} (bare) | {:.3} | {:.1} % | ≥ 0.97 |",
            ratio(ram),
            spread(&rates[1])
        );
        let _ = writeln!(
            md,
            "| connect()+close() per s, nftables (10,000-address set) | {nft:.0} | {bare:.0} (bare) | {:.3} | {:.1} % | ram ≥ nftables |",
            ratio(nft),
            spread(&rates[2])
        );
        let _ = writeln!(md, "| connect()+close() per s, bare cgroup | {bare:.0} | | | {:.1} % | |", spread(&rates[0]));
        let mut programs = Vec::new();
        for (name, time, count) in stats.programs.iter().filter(|(_, _, count)| *count > 0) {
            let per_run = if *count > 0 { *time as f64 / *count as f64 } else { 0.0 };
            let target = match name.as_str() {
                "ram_connect4" => "≤ 100 ns",
                "ram_egress" | "ram_dns_ingress" => "≤ 40 ns (packets that need no judgement)",
                _ => "",
            };
            let _ =
                writeln!(md, "| {name}: kernel ns per run (bpf_stats), {count} runs | {per_run:.0} | | | | {target} |");
            programs.push(
                serde_json::json!({ "program": name, "runs": count, "run_time_ns": time, "ns_per_run": per_run }),
            );
        }
        let phase = |i: usize| learning.phases.get(i).map(|(_, ns, _)| median(ns)).unwrap_or(0.0);
        let (off, on, off_again) = (phase(0), phase(1), phase(2));
        for (name, ns, rates) in &learning.phases {
            let target = if name.starts_with("kernel log off") { "≤ 1 µs" } else { "" };
            let _ = writeln!(
                md,
                "| DNS answer learning (CNAME + 8 A), {name}: ram_dns_ingress ns per answer ({:.0} answers/s) | {:.0} | | | {:.1} % | {target} |",
                median(rates),
                median(ns),
                spread(ns)
            );
        }
        let _ = writeln!(
            md,
            "| DNS answer learning, kernel log off again vs off at start | {off_again:.0} | {off:.0} | {:.3} | | no cost when off (≈ 1) |",
            if off > 0.0 { off_again / off } else { 0.0 }
        );
        let _ = writeln!(
            md,
            "| DNS answer learning, kernel log on vs off | {on:.0} | {off:.0} | {:.3} | | (what turning it on costs) |",
            if off > 0.0 { on / off } else { 0.0 }
        );
        let (small, large) = (median(&starts.default_rules), median(&starts.large));
        let _ = writeln!(
            md,
            "| start to enforcing, the default policy's rules: ms | {small:.0} | | | {:.1} % | ≤ 300 ms |",
            spread(&starts.default_rules)
        );
        let _ = writeln!(
            md,
            "| start to enforcing, 100,000 host rules: ms | {large:.0} | {small:.0} (default rules) | {:.1} | {:.1} % | ≤ 3000 ms |",
            if small > 0.0 { large / small } else { 0.0 },
            spread(&starts.large)
        );
        let learning_json: Vec<_> = learning
            .phases
            .iter()
            .map(|(name, ns, rates)| serde_json::json!({ "phase": name, "ns_per_answer": ns, "answers_per_s": rates }))
            .collect();
        let json = serde_json::json!({
            "dns_learning": learning_json,
            "smoke": smoke,
            "repetitions": plan.repetitions,
            "loop_ms": plan.loop_ms,
            "connect_per_s": { "bare": rates[0], "ram": rates[1], "nftables": rates[2] },
            "connect_ratio": { "ram": ratio(ram), "nftables": ratio(nft) },
            "programs": programs,
            "start_to_enforcing_ms": { "default_rules": starts.default_rules, "host_rules_100000": starts.large },
        });
        Report { markdown: md, json }
    }
}
