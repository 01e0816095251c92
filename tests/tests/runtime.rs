//! A Docker host's own networking under enforcement. dockerd runs as
//! installed (its bridge, iptables, docker-proxy, the embedded DNS server
//! of user-defined networks) in the test's cgroup and network namespace,
//! with a local HTTP proxy on the host. The same checks run before ramd
//! starts and with ramd enforcing a one-registry policy on dockerd:
//! containers on the default bridge and on a user-defined network resolve
//! and reach each other (by name and by compose-style alias) and the world;
//! published ports answer on 127.0.0.1 and on the host's address; and
//! pulls and pushes are limited to the policy, also through the proxy.
//! Then what ram lets through besides the policy is attacked from the
//! enforced cgroup: posing as docker-proxy or as a DNS server. Last, a
//! Docker network over the allowed registry's address raises an alert.
//!
//! On this machine (a hybrid host, cgroup v2 at /sys/fs/cgroup/unified)
//! Docker gives the containers cgroups of their own (unified/docker/ID);
//! the sockets that pass as another namespace's are the embedded DNS
//! server's. tests/tests/kernel.rs covers a container's process in the
//! runtime's own cgroup.

use std::{collections::BTreeMap, process::Command, time::Duration};

/// The same for podman: its netavark network's DNS server, aardvark-dns.
#[path = "runtime/podman.rs"]
mod podman;
/// Rootless podman: its network helper, slirp4netns.
#[path = "runtime/rootless.rs"]
mod rootless;

use ram_tests::{
    docker::{host_command, text, Dockerd, DockerdOptions},
    *,
};

const ALLOWED: &str = "allowed.registry.test:5000";
const BLOCKED: &str = "blocked.registry.test:5000";
/// The blocked registry under another name, one dockerd reaches through
/// the local proxy (the others are in NO_PROXY).
const PROXIED: &str = "proxied.registry.test:5000";
const IMAGE: &str = "ram/busybox:1";
const ALLOWED_ADDR: &str = "10.201.0.1";
const BLOCKED_ADDR: &str = "10.201.0.2";
const RESOLVER: &str = "10.201.0.53";
/// The host's own address, where published ports answer too.
const HOST_ADDR: &str = "10.201.0.10";
const PROXY: &str = "127.0.0.1:3128";
/// The image the containers run: busybox and a page for its httpd.
const LOCAL_IMAGE: &str = "ram-local/busybox:1";
const PAGE: &str = "ram-e2e-page";

/// A rootfs with busybox-static and /www/index.html (`page`).
fn web_image_tar(dir: &TempDir, page: &str) -> std::path::PathBuf {
    let root = dir.path.join("webroot");
    std::fs::create_dir_all(root.join("bin")).expect("rootfs");
    std::fs::create_dir_all(root.join("www")).expect("rootfs");
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("busybox-static is installed by cargo xtask setup");
    std::fs::write(root.join("www/index.html"), format!("{page}\n")).expect("page");
    let tar = dir.path.join("web.tar");
    run(Command::new("tar").arg("-C").arg(&root).arg("-cf").arg(&tar).arg("."));
    tar
}

/// tinyproxy on 127.0.0.1:3128 in the namespace, outside the enforced
/// cgroup: a forward proxy anyone on the host may use.
fn tinyproxy(netns: &Netns, dir: &TempDir) -> Proc {
    let config = dir.write(
        "tinyproxy.conf",
        &format!(
            "Port 3128\nListen 127.0.0.1\nTimeout 30\nAllow 127.0.0.1\nLogLevel Error\nMaxClients 20\nPidFile \"{}\"\n",
            dir.path.join("tinyproxy.pid").display()
        ),
    );
    // It resolves names with the test's resolver, as a host's proxy would
    // with the host's.
    let program = ["tinyproxy".to_string(), "-d".into(), "-c".into(), config.display().to_string()];
    let mut cmd = with_etc_resolver(dir, None, netns, RESOLVER, "", &program);
    cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    let proc = Proc::spawn("tinyproxy", &mut cmd);
    let up = wait_for(Duration::from_secs(10), || {
        (probe(None, Some(netns), &["connect", "127.0.0.1", "3128"]) == "ok").then_some(())
    });
    assert!(up.is_some(), "tinyproxy did not listen on {PROXY}");
    proc
}

/// "ok", or what went wrong.
fn outcome(out: &std::process::Output, expect: &str) -> String {
    let all = text(out);
    if out.status.success() && all.contains(expect) {
        "ok".into()
    } else {
        format!("failed: {}", all.trim().lines().last().unwrap_or("(no output)"))
    }
}

/// The container checks of one phase; each is "ok" or why not.
fn container_checks(d: &Dockerd, netns: &Netns, phase: &str, port: u16) -> BTreeMap<&'static str, String> {
    let network = format!("app-{phase}");
    let server = format!("db-{phase}");
    let bridged = format!("web-{phase}");
    let port_map = format!("{port}:80");
    d.ok(&["network", "create", &network]);
    // A compose-style service: a name and an alias on a user-defined
    // network, with a published port.
    d.ok(&[
        "run",
        "-d",
        "--name",
        &server,
        "--network",
        &network,
        "--network-alias",
        "database",
        "-p",
        &port_map,
        LOCAL_IMAGE,
        "/bin/busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/www",
    ]);
    d.ok(&["run", "-d", "--name", &bridged, LOCAL_IMAGE, "/bin/busybox", "httpd", "-f", "-p", "80", "-h", "/www"]);
    for name in [&server, &bridged] {
        let ready = wait_for(Duration::from_secs(20), || {
            let out = d.docker(&["exec", name, "/bin/busybox", "wget", "-qO-", "http://127.0.0.1/index.html"]);
            text(&out).contains(PAGE).then_some(())
        });
        assert!(ready.is_some(), "{name} does not serve");
    }
    let bridged_ip =
        String::from_utf8_lossy(&d.ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", &bridged]).stdout)
            .trim()
            .to_string();
    let on_network = |args: &[&str]| {
        let mut all = vec!["run", "--rm", "--network", network.as_str(), LOCAL_IMAGE, "/bin/busybox"];
        all.extend_from_slice(args);
        d.docker(&all)
    };
    // HTTP with busybox nc (busybox-static's wget crashes on this glibc).
    let http_get = |host: &str, port: u16, path: &str| {
        format!("printf 'GET {path} HTTP/1.0\\r\\n\\r\\n' | /bin/busybox nc -w 5 {host} {port}")
    };
    let mut checks = BTreeMap::new();
    checks.insert("user network: peer by name", outcome(&on_network(&["nslookup", "-type=a", &server]), "172."));
    checks.insert(
        "user network: compose alias over http",
        outcome(&on_network(&["sh", "-c", &http_get("database", 80, "/index.html")]), PAGE),
    );
    checks.insert(
        "user network: a registry's name",
        outcome(&on_network(&["nslookup", "-type=a", "allowed.registry.test"]), ALLOWED_ADDR),
    );
    checks.insert(
        "user network: the world (a registry outside the policy)",
        outcome(&on_network(&["sh", "-c", &http_get("blocked.registry.test", 5000, "/v2/")]), "200 OK"),
    );
    checks.insert(
        "default bridge: peer by address",
        outcome(
            &d.docker(&[
                "run",
                "--rm",
                LOCAL_IMAGE,
                "/bin/busybox",
                "sh",
                "-c",
                &http_get(&bridged_ip, 80, "/index.html"),
            ]),
            PAGE,
        ),
    );
    let from_host =
        |host: &str| host_command(netns, &["curl", "-sS", "-m", "5", &format!("http://{host}:{port}/index.html")]);
    checks.insert("published port on 127.0.0.1", outcome(&from_host("127.0.0.1"), PAGE));
    checks.insert("published port on the host's address", outcome(&from_host(HOST_ADDR), PAGE));

    // A UDP service (ram-probe's echo, with the host's libraries) published
    // on the host: docker-proxy answers loopback clients with sendto.
    let udp = format!("udp-{phase}");
    let udp_port = port + 100;
    let probe_mount = format!("{}:/probe:ro", probe_bin().display());
    d.ok(&[
        "run",
        "-d",
        "--name",
        &udp,
        "-p",
        &format!("{udp_port}:7000/udp"),
        "-v",
        &probe_mount,
        "-v",
        "/lib/x86_64-linux-gnu:/lib/x86_64-linux-gnu:ro",
        "-v",
        "/lib64:/lib64:ro",
        LOCAL_IMAGE,
        "/probe",
        "listen",
        "0.0.0.0",
        "7000",
    ]);
    let ready = wait_for(Duration::from_secs(20), || {
        let out = d.docker(&["exec", &udp, "/probe", "udp-connect", "127.0.0.1", "7000"]);
        (text(&out).trim() == "ok").then_some(())
    });
    assert!(ready.is_some(), "{udp} does not echo");
    let udp_from_host = |host: &str| probe(None, Some(netns), &["udp-connect", host, &udp_port.to_string()]);
    checks.insert("published udp port on 127.0.0.1", udp_from_host("127.0.0.1"));
    checks.insert("published udp port on the host's address", udp_from_host(HOST_ADDR));
    checks
}

/// Pulls and a push: ok or not.
fn registry_checks(d: &Dockerd) -> BTreeMap<&'static str, bool> {
    let pull = |registry: &str| {
        let image = format!("{registry}/{IMAGE}");
        let _ = d.docker(&["rmi", &image]);
        let out = d.docker(&["pull", &image]);
        println!("docker pull {image}: {}", text(&out).trim().lines().last().unwrap_or_default());
        out.status.success()
    };
    let mut checks = BTreeMap::new();
    checks.insert("pull from the allowed registry", pull(ALLOWED));
    checks.insert("pull from the blocked registry", pull(BLOCKED));
    checks.insert("pull from the blocked registry through the local proxy", pull(PROXIED));
    let pushed = format!("{BLOCKED}/ram/pushed:1");
    d.ok(&["tag", LOCAL_IMAGE, &pushed]);
    let out = d.docker(&["push", &pushed]);
    println!("docker push {pushed}: {}", text(&out).trim().lines().last().unwrap_or_default());
    checks.insert("push to the blocked registry", out.status.success());
    checks
}

#[test]
fn a_docker_hosts_networks_and_published_ports_work_and_pulls_stay_limited() {
    require_root();
    let netns = Netns::new("rt");
    netns.add_host_interface(
        "ramhost0",
        &[
            &format!("{ALLOWED_ADDR}/24"),
            &format!("{BLOCKED_ADDR}/24"),
            &format!("{RESOLVER}/24"),
            &format!("{HOST_ADDR}/24"),
        ],
    );
    let dir = TempDir::new("rt");
    let _dns = dnsmasq(
        &netns,
        &dir,
        RESOLVER,
        &[
            ("allowed.registry.test", ALLOWED_ADDR),
            ("blocked.registry.test", BLOCKED_ADDR),
            ("proxied.registry.test", BLOCKED_ADDR),
        ],
        300,
    );
    let _allowed_registry = registry(&netns, &dir, "registry-allowed", &format!("{ALLOWED_ADDR}:5000"));
    let _blocked_registry = registry(&netns, &dir, "registry-blocked", &format!("{BLOCKED_ADDR}:5000"));
    let _proxy = tinyproxy(&netns, &dir);
    let cgroup = TestCgroup::new("rt-docker");
    let proxy_url = format!("http://{PROXY}");
    let dockerd = Dockerd::start(
        &dir,
        &cgroup,
        &netns,
        &DockerdOptions {
            networks: true,
            insecure_registries: &[ALLOWED, BLOCKED, PROXIED],
            resolver: RESOLVER,
            env: &[
                ("HTTP_PROXY", &proxy_url),
                ("HTTPS_PROXY", &proxy_url),
                ("NO_PROXY", "allowed.registry.test,blocked.registry.test"),
            ],
        },
    );
    let tar = web_image_tar(&dir, PAGE);
    dockerd.ok(&["import", tar.to_str().unwrap(), LOCAL_IMAGE]);
    for registry in [ALLOWED, BLOCKED] {
        let image = format!("{registry}/{IMAGE}");
        dockerd.ok(&["tag", LOCAL_IMAGE, &image]);
        dockerd.ok(&["push", &image]);
    }

    // Without ram: everything works, the proxy included.
    let containers_before = container_checks(&dockerd, &netns, "before", 8080);
    println!("without ram: {containers_before:#?}");
    for (check, result) in &containers_before {
        assert_eq!(result, "ok", "without ram, {check}");
    }
    let registries_before = registry_checks(&dockerd);
    println!("without ram: {registries_before:#?}");
    assert!(registries_before.values().all(|ok| *ok), "without ram: {registries_before:?}");

    // ram enforcing dockerd, one registry allowed.
    let policy = format!(
        "mode = \"enforce\"\n[dns]\nresolvers = [\"{RESOLVER}\"]\n{}[[target]]\nname = \"docker\"\ncgroup = \"{}\"\n[[allow]]\nhost = \"allowed.registry.test\"\n",
        netns.dns_trust(),
        cgroup.path.display()
    );
    let ramd = Ramd::start(&policy);
    let containers_after = container_checks(&dockerd, &netns, "after", 8081);
    println!("with ram: {containers_after:#?}");
    assert_eq!(containers_after, containers_before, "{}", ramd.log_text());
    let registries_after = registry_checks(&dockerd);
    println!("with ram: {registries_after:#?}");
    let expected: BTreeMap<&str, bool> = [
        ("pull from the allowed registry", true),
        ("pull from the blocked registry", false),
        ("pull from the blocked registry through the local proxy", false),
        ("push to the blocked registry", false),
    ]
    .into();
    assert_eq!(registries_after, expected, "{}", ramd.log_text());
    ramd.wait_log("the proxy refused", |e| {
        e["event"] == "blocked" && e["comm"] == "dockerd" && e["daddr"] == "127.0.0.1" && e["dport"] == 3128
    });
    assert!(ramd.counter("docker", "forward_allowed") >= 1, "docker-proxy's connect was not the forwarder's");
    assert!(ramd.counter("docker", "other_netns_passed") >= 1);

    // What is let through besides the policy cannot be borrowed.
    let server_ip = String::from_utf8_lossy(
        &dockerd.ok(&["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", "db-after"]).stdout,
    )
    .trim()
    .to_string();
    let enforced = |args: &[&str]| probe(Some(&cgroup), Some(&netns), args);
    // The container docker-proxy forwards to, reached directly: no.
    assert_eq!(enforced(&["connect", &server_ip, "80"]), "EPERM");
    // The published port itself, from inside: judged like any address.
    assert_eq!(enforced(&["connect", "127.0.0.1", "8081"]), "EPERM");
    // Posing as docker-proxy, with its arguments, from the enforced cgroup:
    // a copy of another program named docker-proxy (root's or not); the
    // same program bind-mounted over a file of that name by a user in a
    // user namespace of its own; and Docker's real docker-proxy, started by
    // root and by a user, not by dockerd, told to forward to the blocked
    // registry. None is taken for Docker's.
    let fake = dir.path.join("fake").join("docker-proxy");
    std::fs::create_dir_all(fake.parent().unwrap()).expect("dir");
    std::fs::copy(probe_bin(), &fake).expect("copy probe");
    let forward_args = ["-proto", "tcp", "-container-ip", server_ip.as_str(), "-container-port", "80"];
    for mode in [0o777, 0o755] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(mode)).expect("chmod");
        let mut cmd = Command::new(&fake);
        cmd.args(["after-ms", "400", "connect", &server_ip, "80"]).args(forward_args);
        place(&mut cmd, Some(&cgroup.path), Some(&netns));
        assert_eq!(String::from_utf8_lossy(&run(&mut cmd).stdout).trim(), "EPERM", "a copy, mode {mode:o}");
    }
    let disguised = format!(
        "d=$(mktemp -d); touch $d/docker-proxy; mount --bind {probe} $d/docker-proxy; \
         $d/docker-proxy after-ms 400 connect {server_ip} 80 -proto tcp -container-ip {server_ip} -container-port 80; \
         umount $d/docker-proxy; rm -r $d",
        probe = probe_bin().display()
    );
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid", "65534", "--regid", "65534", "--clear-groups", "unshare", "-Urm", "sh", "-c", &disguised]);
    place(&mut cmd, Some(&cgroup.path), Some(&netns));
    let out = cmd.output().expect("setpriv");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "EPERM", "bind-mounted: {}", text(&out));
    for user in [None, Some("65534")] {
        let host_port = if user.is_some() { "18083" } else { "18082" };
        let mut program: Vec<String> = Vec::new();
        if let Some(uid) = user {
            program.extend(["setpriv", "--reuid", uid, "--regid", uid, "--clear-groups"].map(String::from));
        }
        // docker-proxy reports to dockerd on fd 3 and stops without it.
        program.extend(["sh", "-c"].map(String::from));
        program.push(format!(
            "exec /usr/sbin/docker-proxy -proto tcp -host-ip 127.0.0.1 -host-port {host_port} \
             -container-ip {BLOCKED_ADDR} -container-port 5000 3>/dev/null"
        ));
        let mut cmd = Command::new(&program[0]);
        cmd.args(&program[1..]).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
        place(&mut cmd, Some(&cgroup.path), Some(&netns));
        let _proxy = Proc::spawn("docker-proxy", &mut cmd);
        std::thread::sleep(Duration::from_millis(500));
        let through = host_command(&netns, &["curl", "-sS", "-m", "5", &format!("http://127.0.0.1:{host_port}/v2/")]);
        assert!(
            !through.status.success(),
            "docker-proxy not started by dockerd reached the blocked registry ({user:?}): {}",
            text(&through)
        );
        // It did try, and was refused.
        let pid = _proxy.pid();
        ramd.wait_log("docker-proxy's refused connect", |e| {
            e["event"] == "blocked" && e["pid"] == pid && e["daddr"] == BLOCKED_ADDR && e["dport"] == 5000
        });
    }
    // Posing as a DNS server (Docker's embedded one answers from port 53):
    // a send from port 53 to a blocked address is judged like any other.
    assert_eq!(enforced(&["sendto-from", "127.0.0.11:53", BLOCKED_ADDR, "5000"]), "EPERM");

    // A Docker network made over the allowed registry's address would let
    // a container there answer for it (the Docker API is root's, and ram
    // allows by address): ramd alerts, naming the bridge.
    dockerd.ok(&["network", "create", "--subnet", "10.201.0.0/29", "--gateway", "10.201.0.6", "over-registry"]);
    let alert = ramd.wait_log("the alert for a route into a container network", |e| {
        e["message"].as_str().is_some_and(|m| m.starts_with("ALERT: an allowed registry's address is routed"))
            && e["addr"] == ALLOWED_ADDR
    });
    assert!(alert["dev"].as_str().is_some_and(|d| d.starts_with("br-")), "{alert}");
    assert_eq!(alert["host"], "allowed.registry.test", "{alert}");
    dockerd.ok(&["network", "rm", "over-registry"]);
}
