//! Never fail open: ramd is killed, restarted, reloaded, upgraded to another
//! build and made to resize its maps, over and over, while processes in the
//! enforced cgroup keep trying a blocked registry and keep pulling from the
//! allowed one. Not one blocked attempt may get through, every pull must
//! work, and what was learned must survive every step.

use std::{
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use ram_tests::*;

const RESOLVER: &str = "127.0.0.53";
const ALLOWED: &str = "allowed.registry.test";
const BLOCKED: &str = "blocked.registry.test";
/// Resolved once before the faults and never again: it must stay learned.
const ONCE: &str = "once.registry.test";

fn policy(netns: &Netns, cgroup: &TestCgroup, learned_addresses: u32, extra_rule: &str) -> String {
    format!(
        "[dns]\nresolvers = [\"{RESOLVER}\"]\n{}[limits]\nlearned_addresses = {learned_addresses}\n\
         [[target]]\nname = \"docker\"\ncgroup = \"{}\"\n\
         {extra_rule}[[allow]]\nhost = \"{ALLOWED}\"\nports = [5000]\n[[allow]]\nhost = \"{ONCE}\"\n",
        netns.dns_trust(),
        cgroup.path.display()
    )
}

/// ram-probe expect-loop in the cgroup until `stop` exists.
fn spawn_checks(cgroup: &TestCgroup, netns: &Netns, stop: &std::path::Path, checks: &[&str]) -> std::process::Child {
    let mut cmd = Command::new(probe_bin());
    cmd.arg("expect-loop").arg(format!("stop={}", stop.display())).args(checks).stdout(Stdio::piped());
    place(&mut cmd, Some(&cgroup.path), Some(netns));
    cmd.spawn().expect("ram-probe expect-loop")
}

/// `rounds=R attempts=A wrong=W ...` → (attempts, wrong, whole line).
fn loop_result(child: std::process::Child) -> (u64, u64, String) {
    let out = child.wait_with_output().expect("expect-loop");
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(name).and_then(|v| v.parse::<u64>().ok()))
            .unwrap_or_else(|| panic!("no {name} in {line:?}"))
    };
    (field("attempts="), field("wrong="), line)
}

fn assert_still_learned(ramd: &Ramd, step: &str) {
    let learned = ramd.ramctl_json(&["learned"]).expect("ramctl learned");
    let rows = learned.as_array().expect("array");
    assert!(rows.iter().any(|r| r["addr"] == "127.10.0.3" && r["host"] == ONCE), "{ONCE} lost after {step}: {learned}");
}

#[test]
fn no_blocked_connect_gets_through_kills_restarts_reloads_upgrades_and_resizes() {
    require_root();
    let netns = Netns::new("f-faults");
    let dir = TempDir::new("f-faults");
    let records = [(ALLOWED, "127.10.0.1"), (BLOCKED, "127.10.0.2"), (ONCE, "127.10.0.3")];
    let _dns = dnsmasq(&netns, &dir, RESOLVER, &records, 3600);
    let _registry = registry(&netns, &dir, "registry", "127.10.0.1:5000");
    let _blocked_registry = registry(&netns, &dir, "registry-blocked", "127.10.0.2:5000");
    // Seed the allowed registry before ram is there.
    let tar = busybox_tar(&dir);
    let mut seed = Command::new("skopeo");
    seed.args(["copy", "--dest-tls-verify=false"])
        .arg(format!("tarball:{}", tar.display()))
        .arg("docker://127.10.0.1:5000/ram/busybox:1");
    place(&mut seed, None, Some(&netns));
    run(&mut seed);

    let cgroup = TestCgroup::new("f-faults");
    let mut ramd = Ramd::start(&policy(&netns, &cgroup, 4096, ""));
    let inside = |args: &[&str]| probe(Some(&cgroup), Some(&netns), args);
    assert_eq!(inside(&["resolve-connect", RESOLVER, ONCE, "5000"]), "127.10.0.3 ECONNREFUSED");

    // Blocked by name, by hard-coded address, over UDP; allowed only on its
    // port; and the address learned once stays allowed throughout.
    let stop = dir.path.join("stop");
    let hammer = spawn_checks(
        &cgroup,
        &netns,
        &stop,
        &[
            &format!("resolve-connect,{RESOLVER},{BLOCKED},5000=EPERM"),
            "connect,127.10.0.2,5000=EPERM",
            "connect,127.10.0.9,443=EPERM",
            "sendto,127.10.0.2,443=EPERM",
            "connect,127.10.0.1,22=EPERM",
            "connect,127.10.0.3,5000=ECONNREFUSED",
        ],
    );
    // Real pulls from the allowed registry, one after another.
    let pull_loop = || {
        let (mut ok, mut failed) = (0u32, Vec::new());
        let mut n = 0;
        while !stop.exists() {
            n += 1;
            let dest = dir.path.join(format!("pull-{n}"));
            let program: Vec<String> = [
                "skopeo",
                "copy",
                "--src-tls-verify=false",
                "--retry-times=0",
                &format!("docker://{ALLOWED}:5000/ram/busybox:1"),
                &format!("dir:{}", dest.display()),
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            let out = with_test_etc(&dir, Some(&cgroup.path), &netns, &program).output().expect("skopeo");
            if out.status.success() {
                ok += 1;
            } else {
                failed.push(String::from_utf8_lossy(&out.stderr).into_owned());
            }
            let _ = std::fs::remove_dir_all(&dest);
        }
        (ok, failed)
    };
    thread::scope(|scope| {
        // Whatever happens below, the loops end (a failed assertion must
        // not leave them running forever).
        let _stop_on_exit = StopFile(&stop);
        let pulls = scope.spawn(pull_loop);
        fault_steps(&mut ramd, &netns, &cgroup, hammer, pulls, &stop);
    });
}

/// Creates the stop file when dropped.
struct StopFile<'a>(&'a std::path::Path);

impl Drop for StopFile<'_> {
    fn drop(&mut self) {
        let _ = std::fs::write(self.0, "");
    }
}

fn fault_steps(
    ramd: &mut Ramd,
    netns: &Netns,
    cgroup: &TestCgroup,
    hammer: std::process::Child,
    pulls: thread::ScopedJoinHandle<'_, (u32, Vec<String>)>,
    stop: &std::path::Path,
) {
    let started = Instant::now();
    let pause = || thread::sleep(Duration::from_millis(300));
    let mut steps = 0;
    for round in 0..3 {
        ramd.kill();
        pause();
        ramd.restart();
        assert_still_learned(ramd, "kill -9 and restart");

        ramd.restart();
        assert_still_learned(ramd, "restart");

        let extra = format!("[[allow]]\nhost = \"extra{round}.registry.test\"\nports = [8443]\n");
        ramd.write_policy(&policy(netns, cgroup, 4096 << (round % 2), &extra));
        assert!(ramd.ramctl(&["reload"]).status.success(), "reload refused:\n{}", ramd.log_text());
        pause();

        // An upgrade: the other build of the programs (the ring-buffer and
        // perf-event objects differ in code and in maps).
        ramd.set_env("RAM_EVENTS_PATH", if round % 2 == 0 { "perf" } else { "ring" });
        ramd.restart();
        assert_still_learned(ramd, "upgrade");

        // The [limits] written by the reload above take effect: the learned
        // maps are replaced by maps of the new size, entries carried over.
        ramd.restart();
        assert_still_learned(ramd, "map resize");
        pause();
        steps += 5;
    }
    std::fs::write(stop, "").expect("stop file");
    let (attempts, wrong, line) = loop_result(hammer);
    let (pulled, failed) = pulls.join().expect("pull thread");
    println!(
        "{steps} fault steps in {:?}; checks: {line}; pulls: {pulled} ok, {} failed",
        started.elapsed(),
        failed.len()
    );
    assert_eq!(wrong, 0, "a verdict went wrong during the faults: {line}\nramd log:\n{}", ramd.log_text());
    assert!(attempts >= 60, "too few attempts to mean anything: {line}");
    assert!(failed.is_empty(), "pulls failed during the faults:\n{}", failed.join("\n---\n"));
    assert!(pulled >= 3, "too few pulls to mean anything: {pulled}");
    // The maps were really replaced (and their entries carried over).
    let log = ramd.log_text();
    assert!(log.contains("map layout or size changed"), "no map was replaced:\n{log}");
    assert!(log.contains("entries carried over"), "nothing was carried over:\n{log}");
    // The last ramd logs the blocked attempts too.
    let events = ramd.log_events();
    let last_start = events.iter().rposition(|e| e["message"].as_str().is_some_and(|m| m.starts_with("ramd running")));
    let logged_after = last_start.map(|i| events[i..].iter().filter(|e| e["event"] == "blocked").count());
    assert!(logged_after.unwrap_or(0) > 0, "no blocked line after the last restart:\n{log}");
    // Restarts and upgrades swapped programs inside the pinned links.
    assert!(log.contains("link updated to the new program"), "no link was updated in place:\n{log}");
    let status = ramd.ramctl_json(&["status"]).expect("status");
    assert_eq!(status["links"], 7, "{status}");
}

/// Many processes resolve and connect at once, allowed and blocked, while
/// the policy is reloaded again and again (each reload renumbers the port
/// sets, so learned entries are rewritten under load). Every verdict is
/// checked by the process that got it.
#[test]
fn concurrent_lookups_and_connects_during_reloads_get_every_verdict_right() {
    require_root();
    let scene = Scene::new("f-load", &[(ALLOWED, "127.10.0.1"), (BLOCKED, "127.10.0.2"), (ONCE, "127.10.0.3")], 300);
    let policy_with = |extra: &str| policy(&scene.netns, &scene.cgroup, 4096, extra);
    let ramd = Ramd::start(&policy_with(""));
    let checks = [
        format!("resolve-connect,{RESOLVER},{ALLOWED},5000=ECONNREFUSED"),
        format!("resolve-connect,{RESOLVER},{BLOCKED},5000=EPERM"),
        format!("resolve-connect,{RESOLVER},{ONCE},443=ECONNREFUSED"),
        "connect,127.10.0.1,22=EPERM".to_string(),
        "connect,127.10.0.9,5000=EPERM".to_string(),
        "sendto,127.10.0.2,53=EPERM".to_string(),
    ];
    const PROCESSES: usize = 16;
    let stop = scene.dir.path.join("stop");
    let workers: Vec<_> = (0..PROCESSES)
        .map(|_| {
            let checks: Vec<&str> = checks.iter().map(String::as_str).collect();
            spawn_checks(&scene.cgroup, &scene.netns, &stop, &checks)
        })
        .collect();
    let _stop_on_exit = StopFile(&stop);
    let mut reloads = 0;
    for round in 0..12 {
        // A port-limited rule before the allowed one shifts every port set id.
        let extra =
            if round % 2 == 0 { "[[allow]]\nhost = \"mirror.registry.test\"\nports = [8443, 9443]\n" } else { "" };
        ramd.write_policy(&policy_with(extra));
        let out = ramd.ramctl(&["reload"]);
        assert!(out.status.success(), "reload {round}: {}", String::from_utf8_lossy(&out.stderr));
        reloads += 1;
        thread::sleep(Duration::from_millis(100));
    }
    std::fs::write(&stop, "").expect("stop file");
    let (mut attempts, mut wrong, mut lines) = (0, 0, Vec::new());
    for worker in workers {
        let (a, w, line) = loop_result(worker);
        attempts += a;
        wrong += w;
        lines.push(line);
    }
    println!("{PROCESSES} processes, {reloads} reloads: {attempts} verdicts, {wrong} wrong");
    assert_eq!(wrong, 0, "wrong verdicts under load:\n{}", lines.join("\n"));
    assert!(attempts >= (PROCESSES * checks.len() * 10) as u64, "too few verdicts to mean anything: {attempts}");
}
