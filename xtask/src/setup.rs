//! Installs, idempotently, what a fresh Debian 12 machine lacks to build and
//! test ram:
//! - Debian's rustc-web/rust-web-src (a toolchain with `core` source for
//!   `-Z build-std`), linked into rustup as `ram-bpf`;
//! - LLVM 22 and bpf-linker built against it;
//! - the real parts the tests start: dockerd, docker-registry, skopeo,
//!   podman with netavark and aardvark-dns, dnsmasq, busybox-static,
//!   tinyproxy, curl, iproute2, gcc, and Go with
//!   miekg/dns for the tests' CoreDNS-like server.

use std::process::Command;

use anyhow::{Context, Result};

use crate::run_checked;

/// Toolchain for the eBPF programs.
const TOOLCHAIN_PACKAGES: &[&str] =
    &["rustc-web", "rust-web-src", "cargo-web", "llvm-22-dev", "libpolly-22-dev", "libzstd-dev", "zlib1g-dev"];
/// Real parts the root tests start.
const TEST_PACKAGES: &[&str] = &[
    "docker.io",
    "docker-registry",
    "skopeo",
    "podman",
    // podman's network stack on Debian 12: netavark and its DNS server.
    "netavark",
    "aardvark-dns",
    // Rootless podman: its network helper and the setuid id mappers.
    "slirp4netns",
    "uidmap",
    // The red-team case that poses as aardvark-dns builds its payload in C.
    "gcc",
    "dnsmasq-base",
    "iproute2",
    "busybox-static",
    // A local HTTP proxy: the bypass Docker concedes, which ram must stop.
    "tinyproxy",
    // The bench's classic baseline: a default-drop output chain and a set.
    "nftables",
    "curl",
    // A DNS server on miekg/dns (CoreDNS's library) for the tests: answers
    // with names written in full. Built by `cargo xtask test`.
    "golang-go",
    "golang-github-miekg-dns-dev",
    // `cargo xtask vm-test` boots older kernels under software emulation.
    "qemu-system-x86",
    // `cargo xtask host-test` builds its systemd guest from Debian's packages.
    "mmdebstrap",
];
pub const BPF_TOOLCHAIN: &str = "ram-bpf";
const BPF_LINKER_VERSION: &str = "0.13.0";

fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

fn apt_packages() -> Result<()> {
    let missing: Vec<&str> =
        TOOLCHAIN_PACKAGES.iter().chain(TEST_PACKAGES).copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    println!("xtask setup: installing {}", missing.join(" "));
    run_checked(Command::new("apt-get").args(["update", "-q"]))?;
    run_checked(
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

fn bpf_linker() -> Result<()> {
    let have = Command::new("bpf-linker").arg("--version").output();
    if have.is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains(BPF_LINKER_VERSION)) {
        return Ok(());
    }
    println!("xtask setup: building bpf-linker {BPF_LINKER_VERSION} against LLVM 22");
    // Without LLVM 22's bin dir first on PATH the build looks for LLVM in
    // /usr and fails with `unable to find library -lLLVM`.
    let path = format!("/usr/lib/llvm-22/bin:{}", std::env::var("PATH").unwrap_or_default());
    run_checked(
        Command::new("cargo")
            .args([
                "install",
                "bpf-linker",
                "--version",
                BPF_LINKER_VERSION,
                "--no-default-features",
                "--features",
                "llvm-22",
            ])
            .env("PATH", path),
    )
}

fn linked_toolchain() -> Result<()> {
    let list = Command::new("rustup").args(["toolchain", "list"]).output().context("cannot run rustup")?;
    if String::from_utf8_lossy(&list.stdout).lines().any(|l| l.split_whitespace().next() == Some(BPF_TOOLCHAIN)) {
        return Ok(());
    }
    println!("xtask setup: linking Debian's toolchain in /usr as rustup toolchain `{BPF_TOOLCHAIN}`");
    run_checked(Command::new("rustup").args(["toolchain", "link", BPF_TOOLCHAIN, "/usr"]))
}

pub fn setup() -> Result<()> {
    apt_packages()?;
    bpf_linker()?;
    linked_toolchain()
}
