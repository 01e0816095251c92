//! The Debian package's /etc/ram/ram.toml (dist/ram.toml) passes
//! `ramd --check-config`, as an admin would check it, with the default
//! policy's targets and rules. No root: checking attaches nothing.

use std::{path::Path, process::Command};

#[test]
fn the_packaged_example_policy_passes_ramd_check_config() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/ram.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_ramd")).arg("--check-config").arg(&example).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "ramd --check-config failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(": valid"), "{stdout}");
    assert!(!stdout.contains("warning:"), "{stdout}");
    assert!(stdout.contains("dockerd: process dockerd + unit docker.service"), "{stdout}");
    assert!(stdout.contains("containerd: process containerd + unit containerd.service"), "{stdout}");
    assert!(stdout.contains("host      registry-1.docker.io"), "{stdout}");
}
