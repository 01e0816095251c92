//! The bench's data-path figures, bare against ram:
//! - TCP bulk throughput on one connection, and the kernel time per run of
//!   ram_egress and ram_dns_ingress meanwhile: nearly every packet is one
//!   that needs no judgement (established TCP going to its own peer out,
//!   its ACKs in);
//! - 64-byte UDP datagrams sent with sendto (each one through the sendmsg
//!   hook), and ram_sendmsg4's kernel time per run meanwhile.

use std::{fmt::Write as _, process::Stdio};

use anyhow::{bail, Context, Result};

use super::{median, spread, Plan, ProgramStats, Scene, LISTEN_ADDR};

/// Where each setup's sinks listen (beside the connect figures' listener).
pub(super) const TCP_SINK_PORT: &str = "7071";
pub(super) const UDP_SINK_PORT: &str = "7072";

/// Per setup (bare, ram), per repetition.
#[derive(Default)]
pub(super) struct Throughput {
    tcp_bytes_per_s: [Vec<f64>; 2],
    udp_per_s: [Vec<f64>; 2],
    bulk_stats: ProgramStats,
    udp_stats: ProgramStats,
}

impl Scene {
    /// Starts the TCP and UDP sinks in every setup's namespace.
    pub(super) fn start_sinks(&mut self) -> Result<()> {
        for netns in self.netns.clone() {
            for (command, port) in [("sink", TCP_SINK_PORT), ("udp-sink", UDP_SINK_PORT)] {
                let mut sink = self.probe_command(&netns, None);
                sink.args([command, LISTEN_ADDR, port]).stdout(Stdio::null());
                self.listeners.push(sink.spawn().with_context(|| format!("start the {command}"))?);
            }
        }
        Ok(())
    }

    /// `field=` of what a probe printed.
    fn probe_figure(&self, setup: usize, args: &[&str], field: &str) -> Result<f64> {
        let out = self
            .probe_command(&self.netns[setup], Some(&self.cgroups[setup]))
            .args(args)
            .output()
            .with_context(|| format!("run ram-probe {args:?}"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let value = text.split_whitespace().find_map(|w| w.strip_prefix(field)).and_then(|v| v.parse::<f64>().ok());
        match value {
            Some(v) if v > 0.0 => Ok(v),
            _ => bail!("setup {setup}: ram-probe {args:?} said {text}"),
        }
    }

    pub(super) fn throughput(&self, plan: &Plan) -> Result<Throughput> {
        let mut out = Throughput::default();
        let ms = plan.loop_ms.to_string();
        for round in 0..plan.repetitions {
            for turn in 0..2 {
                let setup = (round + turn) % 2;
                let before = self.program_stats()?;
                let bytes = self.probe_figure(setup, &["bulk-send", LISTEN_ADDR, TCP_SINK_PORT, &ms], "per_s=")?;
                if setup == 1 {
                    out.bulk_stats.add(&before, &self.program_stats()?);
                }
                out.tcp_bytes_per_s[setup].push(bytes);
                let before = self.program_stats()?;
                let sent = self.probe_figure(setup, &["udp-send-loop", LISTEN_ADDR, UDP_SINK_PORT, &ms], "per_s=")?;
                if setup == 1 {
                    out.udp_stats.add(&before, &self.program_stats()?);
                }
                out.udp_per_s[setup].push(sent);
            }
        }
        Ok(out)
    }
}

/// kernel ns per run of `program` in `stats`, and its runs.
fn per_run(stats: &ProgramStats, program: &str) -> (f64, u64) {
    stats
        .programs
        .iter()
        .find(|(name, _, _)| name == program)
        .map(|(_, time, count)| (if *count > 0 { *time as f64 / *count as f64 } else { 0.0 }, *count))
        .unwrap_or((0.0, 0))
}

pub(super) fn report(md: &mut String, t: &Throughput) -> serde_json::Value {
    let rows = [
        ("TCP bulk throughput, one connection: MB/s", &t.tcp_bytes_per_s, 1e6, "≥ 0.99"),
        ("64-byte UDP datagrams sent with sendto: per s", &t.udp_per_s, 1.0, "≥ 0.95"),
    ];
    for (name, values, unit, target) in rows {
        let (bare, ram) = (median(&values[0]), median(&values[1]));
        let _ = writeln!(
            md,
            "| {name}, ram-enforced cgroup | {:.0} | {:.0} (bare) | {:.3} | {:.1} % | {target} |",
            ram / unit,
            bare / unit,
            if bare > 0.0 { ram / bare } else { 0.0 },
            spread(&values[1])
        );
    }
    let mut programs = Vec::new();
    for (stats, during, program, target) in [
        (&t.bulk_stats, "TCP bulk", "ram_egress", "≤ 40 ns"),
        (&t.bulk_stats, "TCP bulk", "ram_dns_ingress", "≤ 40 ns"),
        (&t.udp_stats, "UDP sendto", "ram_sendmsg4", "≤ 100 ns"),
    ] {
        let (ns, runs) = per_run(stats, program);
        let _ =
            writeln!(md, "| {program} during {during}: kernel ns per run, {runs} runs | {ns:.0} | | | | {target} |");
        programs.push(serde_json::json!({ "during": during, "program": program, "runs": runs, "ns_per_run": ns }));
    }
    serde_json::json!({
        "tcp_bulk_bytes_per_s": { "bare": t.tcp_bytes_per_s[0], "ram": t.tcp_bytes_per_s[1] },
        "udp_64_per_s": { "bare": t.udp_per_s[0], "ram": t.udp_per_s[1] },
        "data_path_programs": programs,
    })
}
