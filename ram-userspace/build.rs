//! Builds the eBPF programs (../ram-ebpf) for bpfel-unknown-none and leaves the
//! objects in OUT_DIR, where ramd embeds them: `ram-ebpf.o` sends events
//! through a ring buffer, `ram-ebpf-perf.o` (feature `perf-events`) through a
//! perf event array for kernels before 5.8. Only the first has the kernel
//! log (aya-log, `ramd --kernel-log`).
//!
//! Why not aya-build: the programs need `-C target-cpu=v3` (fewer verifier
//! steps, smaller code), which aya-build's fixed RUSTFLAGS cannot carry.
//! The toolchain is Debian's (rustc-web, rust-web-src), linked into rustup as
//! `ram-bpf`: it has the `core` source `-Z build-std` needs, which rustup's
//! toolchains here lack; `cargo xtask setup` (xtask/src/setup.rs, and the
//! README's "Two commands") installs it and bpf-linker.
use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

const TOOLCHAIN: &str = "ram-bpf";
const TARGET: &str = "bpfel-unknown-none";

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let ebpf_dir = manifest_dir.join("../ram-ebpf");
    let common_dir = manifest_dir.join("../ram-common");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    for dir in [ebpf_dir.join("src"), ebpf_dir.join("Cargo.toml"), ebpf_dir.join("Cargo.lock"), common_dir.join("src")]
    {
        println!("cargo:rerun-if-changed={}", dir.display());
    }
    println!("cargo:rerun-if-env-changed=RAM_EBPF_TOOLCHAIN");
    let toolchain = env::var("RAM_EBPF_TOOLCHAIN").unwrap_or_else(|_| TOOLCHAIN.to_string());

    // Shared by every build of ramd (debug, the guests' static build): cargo
    // then builds the eBPF objects once and finds them fresh afterwards.
    let target_dir = manifest_dir.join("../target/ebpf");
    // The ring-buffer object carries the kernel log (aya-log needs a ring
    // buffer); the perf object, for kernels before 5.8, does not.
    build_object(&toolchain, &ebpf_dir, &target_dir, &["--features", "kernel-log"], &out_dir.join("ram-ebpf.o"));
    build_object(&toolchain, &ebpf_dir, &target_dir, &["--features", "perf-events"], &out_dir.join("ram-ebpf-perf.o"));
}

fn build_object(toolchain: &str, ebpf_dir: &Path, target_dir: &Path, extra_args: &[&str], output: &Path) {
    let flags = ["-Cdebuginfo=2", "-Clink-arg=--btf", "-Ctarget-cpu=v3"].join("\x1f");
    let mut cmd = Command::new("rustup");
    cmd.args(["run", toolchain, "cargo", "build", "--release", "--locked", "--target", TARGET])
        .args(["-Z", "build-std=core", "--bin", "ram"])
        .args(extra_args)
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(ebpf_dir)
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_ENCODED_RUSTFLAGS", flags);
    // The outer build's compiler and wrappers must not leak into the BPF build.
    for var in [
        "RUSTC",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTUP_TOOLCHAIN",
        "CARGO",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().unwrap_or_else(|e| {
        panic!("cannot run `rustup run {toolchain} cargo` for the eBPF programs ({e}); run `cargo xtask setup` first")
    });
    if !status.success() {
        panic!("building the eBPF programs failed ({status}); `cargo xtask setup` installs the toolchain they need");
    }
    let object = target_dir.join(TARGET).join("release").join("ram");
    std::fs::copy(&object, output).unwrap_or_else(|e| panic!("copy {}: {e}", object.display()));
}
