//! A dockerd of the test's own: its data, exec root and socket in a
//! temporary directory, inside the test's cgroup and network namespace.

use std::{
    path::PathBuf,
    process::{Command, Output},
    time::Duration,
};

use crate::{place, wait_for, with_etc_resolver, Netns, Proc, TempDir, TestCgroup};

/// How the dockerd is set up.
pub struct DockerdOptions<'a> {
    /// Its networking as installed (a bridge, iptables, docker-proxy); else
    /// none (`--bridge=none --iptables=false`), for pull-only tests.
    pub networks: bool,
    pub insecure_registries: &'a [&'a str],
    /// The nameserver of its resolv.conf (the containers' upstream).
    pub resolver: &'a str,
    /// Environment, such as HTTP_PROXY.
    pub env: &'a [(&'a str, &'a str)],
}

pub struct Dockerd {
    proc: Proc,
    pub socket: PathBuf,
}

impl Dockerd {
    pub fn start(dir: &TempDir, cgroup: &TestCgroup, netns: &Netns, options: &DockerdOptions) -> Self {
        let socket = dir.path.join("docker.sock");
        let mut program = vec![
            "dockerd".to_string(),
            format!("--data-root={}", dir.path.join("docker-data").display()),
            format!("--exec-root={}", dir.path.join("docker-exec").display()),
            format!("--host=unix://{}", socket.display()),
            format!("--pidfile={}", dir.path.join("docker.pid").display()),
            "--log-level=warn".to_string(),
        ];
        if !options.networks {
            program.extend(
                ["--bridge=none", "--iptables=false", "--ip-forward=false", "--ip-masq=false"].map(String::from),
            );
        }
        program.extend(options.insecure_registries.iter().map(|r| format!("--insecure-registry={r}")));
        let log = std::fs::File::create(dir.path.join("dockerd.log")).expect("log");
        let mut cmd = with_etc_resolver(dir, Some(&cgroup.path), netns, options.resolver, "", &program);
        cmd.envs(options.env.iter().copied());
        cmd.stdout(log.try_clone().expect("log")).stderr(log);
        let proc = Proc::spawn("dockerd", &mut cmd);
        let d = Dockerd { proc, socket };
        let up = wait_for(Duration::from_secs(60), || d.docker(&["version"]).status.success().then_some(()));
        assert!(
            up.is_some(),
            "dockerd did not start:\n{}",
            std::fs::read_to_string(dir.path.join("dockerd.log")).unwrap_or_default()
        );
        d
    }

    pub fn pid(&self) -> i32 {
        self.proc.pid()
    }

    /// The docker CLI against this dockerd (the CLI itself runs outside the
    /// enforced cgroup: it only talks to the socket).
    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .args(args)
            .output()
            .expect("docker")
    }

    pub fn ok(&self, args: &[&str]) -> Output {
        let out = self.docker(args);
        assert!(out.status.success(), "docker {args:?} failed:\n{}", text(&out));
        out
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // Containers first (their shims and processes), then dockerd, which
        // stops its containerd on SIGTERM; the cgroup guard catches
        // anything left.
        if let Ok(out) = Command::new("docker")
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .args(["ps", "-aq"])
            .output()
        {
            let ids: Vec<String> = String::from_utf8_lossy(&out.stdout).split_whitespace().map(String::from).collect();
            if !ids.is_empty() {
                let _ = Command::new("docker")
                    .arg("-H")
                    .arg(format!("unix://{}", self.socket.display()))
                    .args(["rm", "-f"])
                    .args(&ids)
                    .output();
            }
        }
        self.proc.stop(Duration::from_secs(20));
    }
}

/// stdout and stderr of a finished command, together.
pub fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Runs `program` in `netns` (outside any enforced cgroup) and returns its
/// output: a client on the host, such as one reaching a published port.
pub fn host_command(netns: &Netns, program: &[&str]) -> Output {
    let mut cmd = Command::new(program[0]);
    cmd.args(&program[1..]);
    place(&mut cmd, None, Some(netns));
    cmd.output().expect("host command")
}
