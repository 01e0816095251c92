//! `cargo xtask deb`: target/deb/ram_<version>_amd64.deb, built with
//! Debian's dpkg-deb from the static ramd and ramctl of `vm::build_static_bins`
//! (the package then depends on no other package), dist/'s units with their
//! paths moved to /usr/sbin, the example policy dist/ram.toml as a conffile,
//! man pages and completions rendered from the clap definitions, and
//! CHANGELOG.md as changelog.gz and, in Debian's format, changelog.Debian.gz.

mod changelog;
mod docs;
mod scripts;

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{anyhow, bail, Context, Result};

use crate::{run_checked, vm, workspace_root};

/// dist/ is the by-hand install (README: binaries in /usr/local/sbin); the
/// package puts them where a package's belong. One source, two places.
const BY_HAND_DIR: &str = "/usr/local/sbin/";
const PACKAGED_DIR: &str = "/usr/sbin/";

fn deb_dir() -> PathBuf {
    workspace_root().join("target/deb")
}

/// The package's version: the workspace's, or `VERSION+SUFFIX` (a higher
/// one, for upgrade tests and local rebuilds).
pub fn version(suffix: Option<&str>) -> Result<String> {
    let base = env!("CARGO_PKG_VERSION");
    let Some(suffix) = suffix else {
        return Ok(base.to_string());
    };
    // What Debian allows in an upstream version, less `-` and `:` (which
    // would split it into revision and epoch).
    if suffix.is_empty() || !suffix.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '~')) {
        bail!("--version-suffix {suffix:?}: use letters, digits, '.', '+' or '~'");
    }
    Ok(format!("{base}+{suffix}"))
}

/// Builds the static binaries and the package; returns the .deb's path.
pub fn build(version_suffix: Option<&str>) -> Result<PathBuf> {
    // A bad suffix, maintainer or changelog is refused before minutes of
    // building.
    let version = version(version_suffix)?;
    changelog::debian_text(&version, &changelog::maintainer()?)?;
    crate::setup::setup()?;
    let bins = vm::build_static_bins()?;
    package(&bins, &version)
}

/// Packages the static binaries in `bins` as `version`.
pub fn package(bins: &Path, version: &str) -> Result<PathBuf> {
    let dir = deb_dir();
    let root = dir.join(format!("stage-{version}"));
    if root.exists() {
        fs::remove_dir_all(&root)?;
    }
    stage(&root, bins, version)?;
    let started = std::time::Instant::now();
    let deb = dir.join(format!("ram_{version}_amd64.deb"));
    let built = run_checked(Command::new("dpkg-deb").args(["--root-owner-group", "--build"]).arg(&root).arg(&deb));
    // The tree is only the source of the package.
    fs::remove_dir_all(&root)?;
    built?;
    println!("xtask deb: {} ({:.0} s)", deb.display(), started.elapsed().as_secs_f64());
    Ok(deb)
}

/// The package's file tree and its DEBIAN/ control directory under `root`.
fn stage(root: &Path, bins: &Path, version: &str) -> Result<()> {
    let dist = workspace_root().join("dist");
    for name in ["ramd", "ramctl"] {
        let dest = root.join("usr/sbin").join(name);
        copy(&bins.join(name), &dest, 0o755)?;
        if !is_static(&dest)? {
            bail!("{} is linked dynamically; the package declares no dependencies", bins.join(name).display());
        }
        // Debian ships binaries without symbols (the static build keeps them).
        run_checked(Command::new("strip").arg("--strip-unneeded").arg(&dest))?;
    }
    let units = [
        ("ramd.service", "lib/systemd/system/ramd.service"),
        ("docker.service.d/ram.conf", "lib/systemd/system/docker.service.d/ram.conf"),
        ("containerd.service.d/ram.conf", "lib/systemd/system/containerd.service.d/ram.conf"),
    ];
    for (source, dest) in units {
        let text = fs::read_to_string(dist.join(source)).with_context(|| format!("dist/{source}"))?;
        write(&root.join(dest), &packaged_unit(source, &text)?, 0o644)?;
    }
    copy(&dist.join("ram.toml"), &root.join("etc/ram/ram.toml"), 0o644)?;
    let doc = root.join("usr/share/doc/ram");
    copy(&workspace_root().join("README.md"), &doc.join("README.md"), 0o644)?;
    write(&doc.join("copyright"), COPYRIGHT, 0o644)?;
    let maintainer = changelog::maintainer()?;
    changelog::write(root, version, &maintainer)?;
    docs::write(root, version)?;
    // The packaged ramd judges the packaged policy, as it will on the host.
    run_checked(
        Command::new(root.join("usr/sbin/ramd"))
            .arg("--check-config")
            .arg(root.join("etc/ram/ram.toml"))
            .stdout(std::process::Stdio::null()),
    )
    .context("the packaged /etc/ram/ram.toml does not pass ramd --check-config")?;
    let control = root.join("DEBIAN");
    write(&control.join("control"), &scripts::control(version, &maintainer, installed_kib(root)?), 0o644)?;
    write(&control.join("conffiles"), scripts::CONFFILES, 0o644)?;
    for (name, text) in [("postinst", scripts::POSTINST), ("prerm", scripts::PRERM), ("postrm", scripts::POSTRM)] {
        let path = control.join(name);
        write(&path, text, 0o755)?;
        run_checked(Command::new("sh").arg("-n").arg(&path)).with_context(|| format!("{name} is not valid sh"))?;
    }
    Ok(())
}

/// A dist/ unit with the by-hand binary directory replaced by the package's.
fn packaged_unit(source: &str, text: &str) -> Result<String> {
    if !text.contains(BY_HAND_DIR) {
        bail!("dist/{source} names no {BY_HAND_DIR}: the packaged variant would be wrong");
    }
    Ok(text.replace(BY_HAND_DIR, PACKAGED_DIR))
}

/// Whether an ELF executable has no program interpreter (PT_INTERP), i.e.
/// needs no dynamic loader and no shared library.
fn is_static(path: &Path) -> Result<bool> {
    const PT_INTERP: u32 = 3;
    let elf = fs::read(path)?;
    let field = |at: usize, len: usize| -> Result<u64> {
        let bytes = elf.get(at..at + len).ok_or_else(|| anyhow!("{}: truncated ELF", path.display()))?;
        Ok(bytes.iter().rev().fold(0, |n, b| n << 8 | u64::from(*b)))
    };
    // 64-bit little-endian ELF only: the package is amd64.
    if elf.get(..6) != Some(b"\x7fELF\x02\x01".as_slice()) {
        bail!("{}: not a 64-bit little-endian ELF file", path.display());
    }
    let (offset, size, count) = (field(0x20, 8)? as usize, field(0x36, 2)? as usize, field(0x38, 2)? as usize);
    for i in 0..count {
        if field(offset + i * size, 4)? == u64::from(PT_INTERP) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Installed-Size: each file's size in KiB rounded up, and 1 per
/// directory, as dpkg-gencontrol counts.
fn installed_kib(root: &Path) -> Result<u64> {
    fn walk(dir: &Path, kib: &mut u64) -> Result<()> {
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                walk(&entry.path(), kib)?;
                *kib += 1;
            } else {
                *kib += meta.len().div_ceil(1024).max(1);
            }
        }
        Ok(())
    }
    let mut kib = 0;
    walk(root, &mut kib)?;
    Ok(kib)
}

fn write(path: &Path, text: &str, mode: u32) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    set_mode(path, mode)
}

fn copy(from: &Path, to: &Path, mode: u32) -> Result<()> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::copy(from, to).with_context(|| format!("copying {}", from.display()))?;
    set_mode(to, mode)
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).with_context(|| format!("chmod {}", path.display()))
}

/// debian/copyright in the machine-readable format. Apache-2.0's text is in
/// /usr/share/common-licenses on every Debian system; MIT's is not, so it
/// is here.
const COPYRIGHT: &str = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: ram

Files: *
Copyright: the ram developers
License: MIT or Apache-2.0

License: Apache-2.0
 On Debian systems, the full text of the Apache License, Version 2.0 is in
 /usr/share/common-licenses/Apache-2.0.

License: MIT
 Permission is hereby granted, free of charge, to any person obtaining a copy
 of this software and associated documentation files (the \"Software\"), to
 deal in the Software without restriction, including without limitation the
 rights to use, copy, modify, merge, publish, distribute, sublicense, and/or
 sell copies of the Software, and to permit persons to whom the Software is
 furnished to do so, subject to the following conditions:
 .
 The above copyright notice and this permission notice shall be included in
 all copies or substantial portions of the Software.
 .
 THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
 IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
 FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
 AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
 LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING
 FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS
 IN THE SOFTWARE.
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_suffix_makes_a_higher_debian_version() {
        assert_eq!(version(None).unwrap(), env!("CARGO_PKG_VERSION"));
        let upgrade = version(Some("upgrade1")).unwrap();
        assert_eq!(upgrade, format!("{}+upgrade1", env!("CARGO_PKG_VERSION")));
        // dpkg's own ordering, where it is installed (it is on Debian).
        if let Ok(status) =
            Command::new("dpkg").args(["--compare-versions", &upgrade, "gt", &version(None).unwrap()]).status()
        {
            assert!(status.success(), "{upgrade} does not sort above the plain version");
        }
        for bad in ["", "1-2", "a:b", "x y"] {
            assert!(version(Some(bad)).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn packaged_units_run_the_binaries_from_usr_sbin() {
        let dist = workspace_root().join("dist");
        for source in ["ramd.service", "docker.service.d/ram.conf", "containerd.service.d/ram.conf"] {
            let text = fs::read_to_string(dist.join(source)).unwrap();
            let packaged = packaged_unit(source, &text).unwrap();
            let exec_lines: Vec<&str> = packaged.lines().filter(|l| l.starts_with("Exec")).collect();
            assert!(!exec_lines.is_empty(), "{source}");
            for line in exec_lines {
                assert!(line.contains("=/usr/sbin/ram"), "{source}: {line}");
            }
        }
        assert!(packaged_unit("x", "ExecStart=/usr/bin/true\n").is_err());
    }

    #[test]
    fn man_pages_and_completions_are_rendered() {
        let root = std::env::temp_dir().join(format!("ram-deb-docs-{}", std::process::id()));
        docs::write(&root, "0.0.0").unwrap();
        for path in [
            "usr/share/man/man8/ramd.8.gz",
            "usr/share/man/man8/ramctl.8.gz",
            "usr/share/man/man8/ramctl-await-enforced.8.gz",
            "usr/share/bash-completion/completions/ramctl",
            "usr/share/zsh/vendor-completions/_ramd",
            "usr/share/fish/vendor_completions.d/ramctl.fish",
        ] {
            assert!(root.join(path).metadata().is_ok_and(|m| m.len() > 0), "{path}");
        }
        // No page for clap's `help` subcommand.
        assert!(!root.join("usr/share/man/man8/ramctl-help.8.gz").exists());
        fs::remove_dir_all(&root).unwrap();
    }
}
