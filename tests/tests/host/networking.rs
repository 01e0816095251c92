//! Issue 15 on a pure cgroup v2 host: Docker's own networking works as
//! without ram, and pulls stay limited, also through a local proxy. The same
//! checks run three times on the same host: before ram is installed (the
//! record), with the package's default policy (Docker Hub only), and with
//! the suite's one-registry policy; each run with ram must match the record.
//!
//! What is checked: containers on a user-defined network reach each other
//! by name and by alias through Docker's embedded DNS (dockerd answers it),
//! resolve a registry's name and reach a registry outside the policy; a
//! docker-compose project's services reach each other by service name; a
//! container on the default bridge resolves through the host's resolver and
//! reaches another by address; a published port answers on 127.0.0.1
//! (docker-proxy) and on the host's address (iptables). Pulls: from the
//! allowed and the blocked registry, and from the blocked one under another
//! name that dockerd reaches through tinyproxy on 127.0.0.1:8888 (its
//! HTTP_PROXY; the other names are in NO_PROXY).

use std::collections::BTreeMap;

use super::*;

/// The record of the run without ram, kept across the guest's reboot.
const RECORD: &str = "/var/lib/ram-suite/networking-without-ram.json";
const PAGE: &str = "ram-guest-page";
const COMPOSE_FILE: &str = "/var/lib/ram-suite/compose/docker-compose.yml";

/// The suite's image under a local name of its own, made before ram is
/// installed (the default policy would refuse the push, and the package
/// tests remove the registry's tag).
fn local_image() -> String {
    let local = "ram-local/busybox:1".to_string();
    if !docker(&["image", "inspect", &local]).status.success() {
        let pushed = format!("{ALLOWED}/{}", pushed_image());
        ok("docker", &["tag", &pushed, &local]);
    }
    local
}

/// "ok" once `command` succeeds with `expect` in its output (within 20 s:
/// containers take a while to serve under emulation), or why not.
fn attempt(program: &str, args: &[&str], expect: &str) -> String {
    let mut last = String::new();
    let done = wait_for(Duration::from_secs(20), || {
        let out = run(program, args);
        last = text(&out);
        (out.status.success() && last.contains(expect)).then_some(())
    });
    match done {
        Some(()) => "ok".into(),
        None => format!("failed: {}", last.trim().lines().last().unwrap_or("(no output)")),
    }
}

/// Removes what [`checks`] makes, so that each run starts alike.
fn clean() {
    let _ = run("docker-compose", &["-p", "ramcompose", "-f", COMPOSE_FILE, "down", "-t", "0"]);
    let _ = docker(&["rm", "-f", "ram-n-web", "ram-n-client", "ram-n-published", "ram-n-bridged"]);
    let _ = docker(&["network", "rm", "ram-n-net"]);
}

fn checks() -> BTreeMap<String, String> {
    let image = local_image();
    clean();
    let httpd = [image.as_str(), "/bin/busybox", "httpd", "-f", "-p", "80", "-h", "/www"];
    let sleeper = [image.as_str(), "/bin/busybox", "sleep", "600"];
    ok("docker", &["network", "create", "ram-n-net"]);
    let detached = |args: &[&str], command: &[&str]| {
        let mut all = vec!["run", "-d"];
        all.extend_from_slice(args);
        all.extend_from_slice(command);
        ok("docker", &all);
    };
    detached(&["--name", "ram-n-web", "--network", "ram-n-net", "--network-alias", "database"], &httpd);
    detached(&["--name", "ram-n-client", "--network", "ram-n-net"], &sleeper);
    detached(&["--name", "ram-n-published", "-p", "8081:80"], &httpd);
    detached(&["--name", "ram-n-bridged"], &sleeper);
    std::fs::create_dir_all(Path::new(COMPOSE_FILE).parent().expect("dir")).expect("compose dir");
    std::fs::write(
        COMPOSE_FILE,
        format!(
            "version: \"3\"\nservices:\n  web:\n    image: {image}\n    command: [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"80\", \"-h\", \"/www\"]\n  client:\n    image: {image}\n    command: [\"/bin/busybox\", \"sleep\", \"600\"]\n"
        ),
    )
    .expect("compose file");
    ok("docker-compose", &["-p", "ramcompose", "-f", COMPOSE_FILE, "up", "-d"]);

    let published_ip = ok("docker", &["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "ram-n-published"]);
    let exec = |container: &str, args: &[&str], expect: &str| {
        let mut all = vec!["exec", container, "/bin/busybox"];
        all.extend_from_slice(args);
        attempt("docker", &all, expect)
    };
    let mut checks = BTreeMap::new();
    let mut check = |name: &str, result: String| {
        checks.insert(name.to_string(), result);
    };
    check(
        "user network: peer by name",
        exec("ram-n-client", &["wget", "-q", "-O-", "http://ram-n-web/index.html"], PAGE),
    );
    check(
        "user network: peer by alias",
        exec("ram-n-client", &["wget", "-q", "-O-", "http://database/index.html"], PAGE),
    );
    check(
        "user network: a registry's name",
        exec("ram-n-client", &["nslookup", "-type=a", "allowed.test"], ALLOWED_ADDR),
    );
    check(
        "user network: a registry outside the policy",
        exec("ram-n-client", &["wget", "-q", "-O-", &format!("http://{BLOCKED_ADDR}:5000/v2/")], "{}"),
    );
    check(
        "compose: a service by its name",
        attempt(
            "docker-compose",
            &[
                "-p",
                "ramcompose",
                "-f",
                COMPOSE_FILE,
                "exec",
                "-T",
                "client",
                "/bin/busybox",
                "wget",
                "-q",
                "-O-",
                "http://web/index.html",
            ],
            PAGE,
        ),
    );
    check(
        "default bridge: the host's resolver",
        exec("ram-n-bridged", &["nslookup", "-type=a", "allowed.test"], ALLOWED_ADDR),
    );
    check(
        "default bridge: a peer by address",
        exec("ram-n-bridged", &["wget", "-q", "-O-", &format!("http://{published_ip}/index.html")], PAGE),
    );
    for (name, addr) in
        [("published port on 127.0.0.1", "127.0.0.1"), ("published port on the host's address", "10.99.0.1")]
    {
        check(name, attempt("busybox", &["wget", "-q", "-O-", &format!("http://{addr}:8081/index.html")], PAGE));
    }
    clean();
    checks
}

/// Pulls by dockerd: did each work?
fn pulls() -> BTreeMap<String, bool> {
    let mut pulls = BTreeMap::new();
    for (name, registry) in [
        ("pull from the allowed registry", ALLOWED),
        ("pull from the blocked registry", BLOCKED),
        ("pull from the blocked registry through the local proxy", "proxied.test:5000"),
    ] {
        let image = format!("{registry}/{IMAGE}");
        let _ = docker(&["rmi", &image]);
        let out = docker(&["pull", &image]);
        println!("docker pull {image}: {}", text(&out).trim().lines().last().unwrap_or_default());
        pulls.insert(name.to_string(), out.status.success());
    }
    pulls
}

/// Compares a run under ram with the record; prints both.
fn compare_with_record(policy: &str) {
    let record: BTreeMap<String, String> =
        serde_json::from_str(&std::fs::read_to_string(RECORD).expect("the run without ram left its record"))
            .expect("record");
    let now = checks();
    println!("without ram: {record:#?}\nwith {policy}: {now:#?}");
    if now != record {
        panic!(
            "with {policy}, Docker's networking differs from the run without ram\nramctl status: {}\nramd: {}",
            text(&run("ramctl", &["status"])),
            ramd_journal().lines().rev().take(30).collect::<Vec<_>>().join("\n"),
        );
    }
}

/// The record: everything works before ram is installed, the proxy too.
#[test]
#[ignore = "runs in the systemd guest: cargo xtask host-test"]
fn before_ram_is_installed() {
    assert!(!run("dpkg", &["-s", "ram"]).status.success(), "ram is installed before the record");
    let checks = checks();
    println!("without ram: {checks:#?}");
    for (name, result) in &checks {
        assert_eq!(result, "ok", "without ram, {name}");
    }
    let pulls = pulls();
    println!("without ram: {pulls:#?}");
    assert!(pulls.values().all(|ok| *ok), "without ram, a pull failed: {pulls:?}");
    std::fs::write(RECORD, serde_json::to_string_pretty(&checks).expect("json")).expect("record");
}

/// The package's default policy (Docker Hub only): the suite's registries
/// are all outside it.
#[test]
#[ignore = "runs in the systemd guest: cargo xtask host-test"]
fn with_the_packaged_default_policy() {
    assert!(run("dpkg", &["-s", "ram"]).status.success(), "ram is not installed");
    compare_with_record("the packaged default policy");
    let pulls = pulls();
    let expected: BTreeMap<String, bool> = pulls.keys().map(|name| (name.clone(), false)).collect();
    assert_eq!(pulls, expected, "with the default policy, only Docker Hub may be pulled from");
}

/// The suite's policy: allowed.test only, not through the proxy.
#[test]
#[ignore = "runs in the systemd guest: cargo xtask host-test"]
fn with_the_suites_one_registry_policy() {
    compare_with_record("the suite's one-registry policy");
    let pulls = pulls();
    let expected: BTreeMap<String, bool> = [
        ("pull from the allowed registry".to_string(), true),
        ("pull from the blocked registry".to_string(), false),
        ("pull from the blocked registry through the local proxy".to_string(), false),
    ]
    .into();
    assert_eq!(pulls, expected);
    // dockerd tried the proxy and was refused, with the log line.
    let refused = wait_for(Duration::from_secs(30), || {
        ramd_journal()
            .lines()
            .find(|l| l.contains("blocked") && l.contains("127.0.0.1") && l.contains("8888"))
            .map(String::from)
    });
    assert!(refused.is_some(), "no blocked line for dockerd's connect to the proxy in ramd's journal");
}
