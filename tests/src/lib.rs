//! Test harness for ram's root tests: guards that create and always clean up
//! network namespaces, cgroups, processes and a ramd with its pins.
//!
//! Every guard removes what it made in Drop, so a failing assertion still
//! cleans up. Processes are stopped by the pid we started, never by name.

use std::{
    ffi::CString,
    fs,
    os::unix::{ffi::OsStrExt, process::CommandExt},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

pub mod docker;

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A name unique to this test process and call.
pub fn unique(tag: &str) -> String {
    format!("ram-{tag}-{}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed))
}

pub fn require_root() {
    // SAFETY: no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "these tests load BPF programs and create namespaces: run them as root (cargo xtask test)"
    );
}

/// Where the workspace's binaries are: $RAM_BIN_DIR (set by `cargo xtask
/// test`) or target/debug.
pub fn bin(name: &str) -> PathBuf {
    let dir = std::env::var_os("RAM_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug"));
    let path = dir.join(name);
    assert!(path.exists(), "{} is missing: build the workspace first (cargo xtask test does)", path.display());
    path
}

pub fn probe_bin() -> PathBuf {
    bin("ram-probe")
}

/// Polls `check` every 50 ms until it returns Some or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn run(cmd: &mut Command) -> Output {
    let output = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        output.status.success(),
        "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// True inside the QEMU guests of `cargo xtask vm-test`: a throwaway kernel
/// with nothing but busybox and the test binaries, where the tests use the
/// guest's own network namespace and ram-probe's resolver instead of dnsmasq.
pub fn in_vm() -> bool {
    std::env::var_os("RAM_IN_VM").is_some()
}

/// A TCP port on 127.0.0.1 that nothing listens on now (the kernel's
/// pick; free again once this returns).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// A network namespace with loopback up. Inside it every 127.x.y.z is local.
/// In a VM guest it is the guest's own namespace (the guest is the sandbox).
pub struct Netns {
    /// Empty for the guest's own namespace.
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Self {
        if in_vm() {
            return Netns { name: String::new() };
        }
        let name = unique(tag);
        run(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns { name };
        run(&mut ns.ip(&["link", "set", "lo", "up"]));
        ns
    }

    fn ip(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        if !self.name.is_empty() {
            cmd.args(["-n", &self.name]);
        }
        cmd.args(args);
        cmd
    }

    /// The namespace's file, as a runtime records its sandbox's (the
    /// guest's own namespace: init's).
    pub fn file(&self) -> PathBuf {
        self.path().unwrap_or_else(|| PathBuf::from("/proc/1/ns/net"))
    }

    /// The namespace file to join; None for the current namespace.
    pub fn path(&self) -> Option<PathBuf> {
        (!self.name.is_empty()).then(|| PathBuf::from("/run/netns").join(&self.name))
    }

    /// The policy line (under `[dns]`) that makes ram trust DNS in this
    /// namespace; empty for the current one (ramd's own, the default).
    pub fn dns_trust(&self) -> String {
        self.path().map(|p| format!("netns = \"{}\"\n", p.display())).unwrap_or_default()
    }

    /// Adds an interface (a bridge with no ports: this kernel may lack the
    /// dummy driver) with these addresses: the host's own
    /// addresses, which the runtime's containers can reach (loopback ones
    /// they cannot).
    pub fn add_host_interface(&self, name: &str, cidrs: &[&str]) {
        run(&mut self.ip(&["link", "add", name, "type", "bridge"]));
        run(&mut self.ip(&["link", "set", name, "up"]));
        for cidr in cidrs {
            run(&mut self.ip(&["addr", "add", cidr, "dev", name]));
        }
    }

    /// Adds an address to the namespace's loopback.
    pub fn add_addr(&self, cidr: &str) {
        let out = self.ip(&["addr", "add", cidr, "dev", "lo"]).output().expect("ip");
        // A guest reused across tests may have it already.
        let exists = String::from_utf8_lossy(&out.stderr).contains("exists");
        assert!(out.status.success() || exists, "ip addr add {cidr}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if !self.name.is_empty() {
            let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
        }
    }
}

pub fn cgroup2_mount() -> PathBuf {
    let text = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    text.lines()
        .find_map(|l| {
            let (mount, fs) = l.split_once(" - ")?;
            if fs.split_whitespace().next()? != "cgroup2" {
                return None;
            }
            Some(PathBuf::from(mount.split_whitespace().nth(4)?))
        })
        .expect("a cgroup v2 mount")
}

/// A cgroup v2 directory of this test. Processes the test started in it
/// are stopped (by pid) before it is removed.
pub struct TestCgroup {
    pub path: PathBuf,
}

impl TestCgroup {
    pub fn new(tag: &str) -> Self {
        let path = cgroup2_mount().join(unique(tag));
        fs::create_dir(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        TestCgroup { path }
    }

    /// A cgroup directly under the v2 root with exactly this name (make it
    /// unique, with [`unique`]): for names a selector prescribes, such as a
    /// slice's `NAME.slice`.
    pub fn named(name: &str) -> Self {
        let path = cgroup2_mount().join(name);
        fs::create_dir(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        TestCgroup { path }
    }

    /// A cgroup below this one (drop it before its parent).
    pub fn child(&self, name: &str) -> Self {
        let path = self.path.join(name);
        fs::create_dir(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        TestCgroup { path }
    }

    pub fn pids(&self) -> Vec<i32> {
        fs::read_to_string(self.path.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        // Only processes this test placed here (and their children) can be in it.
        for _ in 0..50 {
            let pids = self.pids();
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                // SAFETY: signalling a pid that is in our own test cgroup.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        for _ in 0..50 {
            if fs::remove_dir(&self.path).is_ok() || !self.path.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("warning: could not remove cgroup {}", self.path.display());
    }
}

/// Makes `cmd` start inside `cgroup` and/or `netns` (joined before exec, so
/// the program's first instruction already runs there).
pub fn place(cmd: &mut Command, cgroup: Option<&Path>, netns: Option<&Netns>) {
    let procs = cgroup.map(|c| CString::new(c.join("cgroup.procs").as_os_str().as_bytes()).expect("path"));
    let ns = netns.and_then(|n| n.path()).map(|p| CString::new(p.as_os_str().as_bytes()).expect("path"));
    // SAFETY: the closure only makes async-signal-safe syscalls on memory
    // allocated before fork.
    unsafe {
        cmd.pre_exec(move || {
            if let Some(procs) = &procs {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let written = libc::write(fd, b"0".as_ptr() as *const _, 1);
                libc::close(fd);
                if written != 1 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if let Some(ns) = &ns {
                let fd = libc::open(ns.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
                if fd < 0 || libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(fd);
            }
            Ok(())
        });
    }
}

/// Runs ram-probe in the given cgroup and namespace; returns its one line.
pub fn probe(cgroup: Option<&TestCgroup>, netns: Option<&Netns>, args: &[&str]) -> String {
    let mut cmd = Command::new(probe_bin());
    cmd.args(args);
    place(&mut cmd, cgroup.map(|c| c.path.as_path()), netns);
    let out = run(&mut cmd);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A child process stopped by pid (SIGTERM, then SIGKILL) when dropped.
pub struct Proc {
    pub name: String,
    pub child: Child,
}

impl Proc {
    pub fn spawn(name: &str, cmd: &mut Command) -> Self {
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        Proc { name: name.to_string(), child }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, then SIGKILL after `grace`; returns once it has exited.
    pub fn stop(&mut self, grace: Duration) {
        if !self.is_running() {
            return;
        }
        // SAFETY: signalling our own child by pid.
        unsafe { libc::kill(self.pid(), libc::SIGTERM) };
        if wait_for(grace, || (!self.is_running()).then_some(())).is_none() {
            // SAFETY: as above.
            unsafe { libc::kill(self.pid(), libc::SIGKILL) };
            let _ = self.child.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(10));
    }
}

/// A temporary directory removed on drop.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let path = std::env::temp_dir().join(unique(tag));
        fs::create_dir_all(&path).expect("temp dir");
        TempDir { path }
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path.join(name);
        fs::write(&path, text).expect("write");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// A resolver serving fixed names inside a namespace, on `listen` port 53:
/// dnsmasq, or ram-probe's resolver in a VM guest (which has no dnsmasq).
pub fn dnsmasq(netns: &Netns, dir: &TempDir, listen: &str, records: &[(&str, &str)], ttl: u32) -> Proc {
    let mut cmd = if in_vm() {
        let mut cmd = Command::new(probe_bin());
        cmd.args(["serve-dns", listen, &ttl.to_string()]);
        cmd.args(records.iter().map(|(name, addr)| format!("{name}={addr}")));
        cmd.stdout(Stdio::null());
        cmd
    } else {
        dnsmasq_command(dir, listen, records, ttl)
    };
    place(&mut cmd, None, Some(netns));
    let proc = Proc::spawn("resolver", &mut cmd);
    // Ready when it answers.
    let first = records.first().map(|r| r.0).unwrap_or("localhost");
    let ready = wait_for(Duration::from_secs(10), || {
        let out = probe(None, Some(netns), &["resolve", listen, first]);
        (!out.starts_with("resolve-failed")).then_some(())
    });
    assert!(ready.is_some(), "the resolver did not answer on {listen}");
    proc
}

/// The tests' server on miekg/dns (CoreDNS's library), built by `cargo
/// xtask test`: answers `-a NAME=ADDR` and `-cname NAME=TARGET` on
/// `listen` port 53, with names compressed or written in full.
pub fn miekg_dns(netns: &Netns, listen: &str, compress: bool, records: &[&str]) -> Proc {
    let binary = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/miekg-dns/ram-miekg-dns");
    assert!(binary.exists(), "{} is missing: cargo xtask test builds it", binary.display());
    let mut cmd = Command::new(binary);
    cmd.arg(format!("-listen={listen}:53")).arg(format!("-compress={compress}")).args(records);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    place(&mut cmd, None, Some(netns));
    let proc = Proc::spawn("miekg-dns", &mut cmd);
    let ready = wait_for(Duration::from_secs(10), || {
        let out = probe(None, Some(netns), &["resolve", listen, "ready.test"]);
        (!out.starts_with("resolve-failed")).then_some(())
    });
    assert!(ready.is_some(), "the miekg/dns server did not answer on {listen}");
    proc
}

fn dnsmasq_command(dir: &TempDir, listen: &str, records: &[(&str, &str)], ttl: u32) -> Command {
    let mut cmd = Command::new("dnsmasq");
    cmd.args(["--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--bind-interfaces"])
        .arg(format!("--listen-address={listen}"))
        .arg(format!("--local-ttl={ttl}"))
        .arg(format!("--pid-file={}", dir.path.join("dnsmasq.pid").display()))
        .arg("--user=root")
        .arg("--log-facility=-")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (name, addr) in records {
        cmd.arg(format!("--address=/{name}/{addr}"));
    }
    cmd
}

/// A running ramd with its own pin and run directories; stopped and
/// uninstalled on drop.
pub struct Ramd {
    pub proc: Option<Proc>,
    pub dir: TempDir,
    pub pin_dir: PathBuf,
    pub log: PathBuf,
    /// Extra environment of every start, restarts included.
    env: Vec<(String, String)>,
    /// Extra arguments of every start, restarts included.
    args: Vec<String>,
}

impl Ramd {
    /// Starts ramd on `policy` and waits until every target is attached.
    pub fn start(policy: &str) -> Self {
        let ramd = Self::start_pending(policy);
        ramd.wait_attached();
        ramd
    }

    /// Starts ramd with extra environment and waits for its targets.
    pub fn start_with_env(policy: &str, env: &[(&str, &str)]) -> Self {
        let ramd = Self::spawn(policy, env);
        ramd.wait_attached();
        ramd
    }

    /// Starts ramd with extra command-line arguments and waits for its targets.
    pub fn start_with_args(policy: &str, args: &[&str]) -> Self {
        let ramd = Self::spawn_prepared_with(policy, &[], args, |_| {});
        ramd.wait_attached();
        ramd
    }

    /// Starts ramd without waiting for its targets.
    pub fn start_pending(policy: &str) -> Self {
        Self::spawn(policy, &[])
    }

    fn spawn(policy: &str, env: &[(&str, &str)]) -> Self {
        Self::spawn_prepared(policy, env, |_| {})
    }

    /// Starts ramd after `prepare` has put things in its (new) pin
    /// directory, and waits for its targets.
    pub fn start_prepared(policy: &str, prepare: impl FnOnce(&Path)) -> Self {
        let ramd = Self::spawn_prepared(policy, &[], prepare);
        ramd.wait_attached();
        ramd
    }

    fn spawn_prepared(policy: &str, env: &[(&str, &str)], prepare: impl FnOnce(&Path)) -> Self {
        Self::spawn_prepared_with(policy, env, &[], prepare)
    }

    fn spawn_prepared_with(policy: &str, env: &[(&str, &str)], args: &[&str], prepare: impl FnOnce(&Path)) -> Self {
        let dir = TempDir::new("ramd");
        dir.write("ram.toml", policy);
        let pin_dir = PathBuf::from("/sys/fs/bpf").join(unique("pins"));
        let log = dir.path.join("ramd.log");
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let args = args.iter().map(|a| a.to_string()).collect();
        let mut ramd = Ramd { proc: None, dir, pin_dir, log, env, args };
        prepare(&ramd.pin_dir);
        ramd.launch();
        ramd
    }

    /// Starts ramd on this instance's policy, pins and run dir; its log is
    /// appended to.
    fn launch(&mut self) {
        let log_file = fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("log file");
        let mut cmd = Command::new(bin("ramd"));
        cmd.args(["--log-format", "json", "--config"])
            .arg(self.config_path())
            .arg("--pin-dir")
            .arg(&self.pin_dir)
            .arg("--run-dir")
            .arg(self.run_dir())
            .args(&self.args)
            .args(kernel_log_args(&self.args))
            .env("RUST_LOG", "debug")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(log_file.try_clone().expect("log"))
            .stderr(log_file);
        self.proc = Some(Proc::spawn("ramd", &mut cmd));
    }

    /// Sets (or replaces) a variable of ramd's environment for the next start.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
    }

    /// Kills ramd with SIGKILL (no cleanup of any kind).
    pub fn kill(&mut self) {
        if let Some(mut proc) = self.proc.take() {
            // SAFETY: signalling our own child by pid.
            unsafe { libc::kill(proc.pid(), libc::SIGKILL) };
            let _ = proc.child.wait();
        }
    }

    /// Starts ramd again on the same pins (after stop or kill) and waits
    /// for its targets.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
        self.wait_attached();
    }

    pub fn run_dir(&self) -> PathBuf {
        self.dir.path.join("run")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path.join("ram.toml")
    }

    /// Replaces the policy file atomically (as editors and config tools do).
    pub fn write_policy(&self, policy: &str) {
        let tmp = self.dir.path.join("ram.toml.new");
        fs::write(&tmp, policy).expect("write policy");
        fs::rename(&tmp, self.config_path()).expect("replace policy");
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The JSON log lines.
    pub fn log_events(&self) -> Vec<serde_json::Value> {
        self.log_text().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }

    /// Waits (5 s; 30 s under QEMU's software emulation, which shares the
    /// cores with other guests) for a JSON log line that `matches`; panics
    /// with the log, saying `what` was missing, when none comes.
    pub fn wait_log(&self, what: &str, matches: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        self.wait_log_for(what, Duration::from_secs(5), matches)
    }

    /// As [`Ramd::wait_log`], for a line due later than usual (at least
    /// `limit`; longer under emulation).
    pub fn wait_log_for(
        &self,
        what: &str,
        limit: Duration,
        matches: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let limit = if in_vm() { limit.max(Duration::from_secs(30)) } else { limit };
        let found = wait_for(limit, || self.log_events().into_iter().find(|e| matches(e)));
        found.unwrap_or_else(|| panic!("no {what} in the log:\n{}", self.log_text()))
    }

    pub fn wait_attached(&self) {
        // Under QEMU's software emulation the verifier needs tens of seconds
        // per target for the DNS program.
        let limit = Duration::from_secs(if in_vm() { 400 } else { 60 });
        // The status must come from this ramd, not from the one before it.
        let pid = self.proc.as_ref().map(|p| p.pid() as u64);
        let attached = wait_for(limit, || {
            let status = self.ramctl_json(&["status"])?;
            if status["ramd"]["pid"].as_u64() != pid {
                return None;
            }
            let targets = status["targets"].as_array()?;
            (!targets.is_empty() && targets.iter().all(|t| t["state"] == "attached")).then_some(())
        });
        assert!(attached.is_some(), "ramd did not attach its targets; log:\n{}", self.log_text());
    }

    pub fn ramctl(&self, args: &[&str]) -> Output {
        self.ramctl_command(args).output().expect("ramctl")
    }

    /// ramctl on this ramd's pins, started inside `cgroup` (placed before
    /// exec, as systemd places a unit's ExecStartPre).
    pub fn ramctl_in(&self, cgroup: &Path, args: &[&str]) -> Output {
        let mut cmd = self.ramctl_command(args);
        place(&mut cmd, Some(cgroup), None);
        cmd.output().expect("ramctl")
    }

    fn ramctl_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin("ramctl"));
        cmd.args(args).arg("--pin-dir").arg(&self.pin_dir).arg("--run-dir").arg(self.run_dir());
        cmd
    }

    pub fn ramctl_json(&self, args: &[&str]) -> Option<serde_json::Value> {
        let mut all: Vec<&str> = args.to_vec();
        all.push("--json");
        let out = self.ramctl(&all);
        out.status.success().then(|| serde_json::from_slice(&out.stdout).ok()).flatten()
    }

    /// A counter of a target, from `ramctl status --json`.
    pub fn counter(&self, target: &str, counter: &str) -> u64 {
        let status = self.ramctl_json(&["status"]).expect("ramctl status");
        status["targets"]
            .as_array()
            .and_then(|ts| ts.iter().find(|t| t["name"] == target))
            .and_then(|t| t["counters"][counter].as_u64())
            .unwrap_or_else(|| panic!("no counter {counter} for {target} in {status}"))
    }

    /// Stops ramd (SIGTERM) but leaves its pins: enforcement continues.
    pub fn stop(&mut self) {
        if let Some(mut proc) = self.proc.take() {
            proc.stop(Duration::from_secs(10));
        }
    }

    pub fn uninstall(&self) -> Output {
        Command::new(bin("ramd"))
            .arg("--uninstall")
            .arg("--pin-dir")
            .arg(&self.pin_dir)
            .output()
            .expect("ramd --uninstall")
    }
}

impl Drop for Ramd {
    fn drop(&mut self) {
        self.stop();
        let out = self.uninstall();
        if !out.status.success() {
            eprintln!("warning: ramd --uninstall failed: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}

/// `RAM_TEST_KERNEL_LOG=debug` runs every test's ramd with the kernel log
/// on (unless the test chose a level): the programs with the log must
/// judge and learn exactly as those without it, so the suite must pass
/// either way.
fn kernel_log_args(args: &[String]) -> Vec<String> {
    match std::env::var("RAM_TEST_KERNEL_LOG") {
        Ok(level) if !args.iter().any(|a| a == "--kernel-log") => vec!["--kernel-log".into(), level],
        _ => Vec::new(),
    }
}

/// The usual scene of a kernel test: a namespace whose resolver at
/// 127.0.0.53 serves `records`, and a cgroup (target "docker") to enforce.
/// Fields drop in order: the resolver stops before its namespace goes.
pub struct Scene {
    _resolver: Proc,
    pub cgroup: TestCgroup,
    pub dir: TempDir,
    pub netns: Netns,
}

impl Scene {
    pub fn new(tag: &str, records: &[(&str, &str)], ttl: u32) -> Self {
        let netns = Netns::new(tag);
        let dir = TempDir::new(tag);
        let resolver = dnsmasq(&netns, &dir, "127.0.0.53", records, ttl);
        Scene { _resolver: resolver, cgroup: TestCgroup::new(tag), dir, netns }
    }

    /// ram-probe inside the enforced cgroup.
    pub fn inside(&self, args: &[&str]) -> String {
        probe(Some(&self.cgroup), Some(&self.netns), args)
    }

    /// A policy with the resolver, `dns` lines under [dns], one target
    /// "docker" on the scene's cgroup, then `rules`.
    pub fn policy(&self, dns: &str, rules: &str) -> String {
        format!(
            "[dns]\nresolvers = [\"127.0.0.53\"]\n{}{dns}[[target]]\nname = \"docker\"\ncgroup = \"{}\"\n{rules}",
            self.netns.dns_trust(),
            self.cgroup.path.display()
        )
    }
}

/// A registry (distribution) listening on `addr` inside the namespace.
pub fn registry(netns: &Netns, dir: &TempDir, name: &str, addr: &str) -> Proc {
    let root = dir.path.join(name);
    std::fs::create_dir_all(&root).expect("registry dir");
    let config = dir.write(
        &format!("{name}.yml"),
        &format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
            root.display()
        ),
    );
    let mut cmd = Command::new("docker-registry");
    cmd.arg("serve").arg(config).stdout(Stdio::null()).stderr(Stdio::null());
    place(&mut cmd, None, Some(netns));
    let proc = Proc::spawn(name, &mut cmd);
    let (ip, port) = addr.rsplit_once(':').expect("addr");
    let up =
        wait_for(Duration::from_secs(20), || (probe(None, Some(netns), &["connect", ip, port]) == "ok").then_some(()));
    assert!(up.is_some(), "{name} did not listen on {addr}");
    proc
}

/// A command that runs with the test's resolv.conf and hosts bind-mounted
/// over /etc (in a private mount namespace), inside `cgroup` and `netns`.
pub fn with_test_etc(dir: &TempDir, cgroup: Option<&Path>, netns: &Netns, program: &[String]) -> Command {
    with_etc(dir, cgroup, netns, "", program)
}

/// The same with `extra_hosts` lines in the private /etc/hosts.
pub fn with_etc(dir: &TempDir, cgroup: Option<&Path>, netns: &Netns, extra_hosts: &str, program: &[String]) -> Command {
    with_etc_resolver(dir, cgroup, netns, "127.0.0.53", extra_hosts, program)
}

/// [`with_etc`] with `resolver` as the only nameserver.
pub fn with_etc_resolver(
    dir: &TempDir,
    cgroup: Option<&Path>,
    netns: &Netns,
    resolver: &str,
    extra_hosts: &str,
    program: &[String],
) -> Command {
    let resolv = dir.write(
        &format!("resolv-{}.conf", unique("r")),
        &format!("nameserver {resolver}\noptions timeout:2 attempts:1\n"),
    );
    let hosts =
        dir.write(&format!("hosts-{}", unique("h")), &format!("127.0.0.1 localhost\n::1 localhost\n{extra_hosts}"));
    let script = format!(
        "mount --bind {} /etc/resolv.conf && mount --bind {} /etc/hosts && exec \"$@\"",
        resolv.display(),
        hosts.display()
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", &script, "sh"]).args(program);
    place(&mut cmd, cgroup, Some(netns));
    cmd
}

/// A root filesystem tarball holding busybox-static.
pub fn busybox_tar(dir: &TempDir) -> PathBuf {
    let root = dir.path.join("rootfs");
    std::fs::create_dir_all(root.join("bin")).expect("rootfs");
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("busybox-static is installed by cargo xtask setup");
    let tar = dir.path.join("busybox.tar");
    run(Command::new("tar").arg("-C").arg(&root).arg("-cf").arg(&tar).arg("."));
    tar
}
