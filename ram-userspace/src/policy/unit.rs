//! `unit = "docker.service"`: a systemd unit's cgroup.
//!
//! systemd makes a unit's cgroup when it starts the unit's first process
//! (ExecStartPre included), so a target that names the unit can be enforced
//! before the runtime's own first instruction; a `process` target only once
//! the runtime runs. The path is fixed by systemd's naming: a unit without a
//! slice is in `system.slice`.

use std::path::{Path, PathBuf};

use serde::Serialize;

/// A systemd unit and the cgroup v2 directory systemd gives it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Unit {
    /// As written: `docker.service`, or `user.slice/foo.service`.
    pub name: String,
    /// `<cgroup v2 root>/system.slice/docker.service`, or
    /// `<cgroup v2 root>/user.slice/foo.service`.
    pub cgroup: PathBuf,
}

/// systemd's longest unit name (UNIT_NAME_MAX less its NUL).
const MAX_UNIT_NAME: usize = 255;
/// Where systemd puts a unit that names no slice.
const DEFAULT_SLICE: &str = "system.slice";
/// Units that have a cgroup of their own and processes in it (a slice only
/// groups them; a socket or timer starts a service).
const UNIT_SUFFIXES: [&str; 2] = [".service", ".scope"];

impl Unit {
    /// Checks `text` as systemd would name the unit and places it under
    /// `mount`; the error is the reason, for the caller's message.
    pub fn parse(text: &str, mount: &Path) -> Result<Self, String> {
        let mut parts: Vec<&str> = text.split('/').collect();
        let unit = parts.pop().unwrap_or_default();
        for slice in &parts {
            slice_name(slice)?;
        }
        unit_name(unit)?;
        let slices = if parts.is_empty() { vec![DEFAULT_SLICE] } else { parts };
        let cgroup = slices.iter().fold(mount.to_path_buf(), |path, slice| path.join(slice)).join(unit);
        Ok(Unit { name: text.to_string(), cgroup })
    }

    /// The target name a unit gives when `name` is absent: the unit
    /// without its slices and without `.service` (`docker.service` →
    /// `docker`); a scope keeps its suffix.
    pub fn default_target_name(&self) -> String {
        let unit = self.name.rsplit('/').next().unwrap_or(&self.name);
        unit.strip_suffix(".service").unwrap_or(unit).to_string()
    }
}

fn unit_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("names no unit (empty, or ends in `/`)".into());
    }
    valid_chars(name)?;
    let Some(stem) = UNIT_SUFFIXES.iter().find_map(|suffix| name.strip_suffix(suffix)) else {
        return Err(if name.ends_with(".slice") {
            "is a slice; name a .service or .scope unit in it, as in user.slice/NAME.service".into()
        } else {
            "must end in .service or .scope, as in docker.service".into()
        });
    };
    if stem.is_empty() {
        return Err("has no name before its suffix".into());
    }
    // A template (`foo@.service`) is never running; its instances are.
    if stem.ends_with('@') {
        return Err("is a template, which has no cgroup; name an instance (foo@NAME.service)".into());
    }
    Ok(())
}

fn slice_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("has an empty part (`//`, or a leading or trailing `/`)".into());
    }
    valid_chars(name)?;
    match name.strip_suffix(".slice") {
        None => Err(format!("`{name}` is not a slice: only slices (NAME.slice) may come before a `/`")),
        Some("") => Err(format!("`{name}` has no name before .slice")),
        // The root slice is the cgroup root itself, not a directory in it.
        Some("-") => Err("-.slice is the cgroup root: name the unit without it".into()),
        Some(_) => Ok(()),
    }
}

/// The characters systemd allows in unit names (unit_name_is_valid):
/// ASCII letters and digits and `:-_.\@`; `\` starts an escape such as
/// `\x2d`.
fn valid_chars(name: &str) -> Result<(), String> {
    if name.len() > MAX_UNIT_NAME {
        return Err(format!("`{name}` is longer than {MAX_UNIT_NAME} characters, systemd's limit"));
    }
    match name.chars().find(|c| !(c.is_ascii_alphanumeric() || ":-_.\\@".contains(*c))) {
        Some(c) => Err(format!("contains {c:?}; unit names use ASCII letters, digits and `:-_.\\@`")),
        None => Ok(()),
    }
}
