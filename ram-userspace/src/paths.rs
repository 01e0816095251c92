//! Where ram keeps its state: every bpffs and runtime path in one place.
//!
//! ```text
//! <pin dir>/            (default /sys/fs/bpf/ram, mode 0700)
//!     maps/RAM_*        pinned maps shared by every program instance
//!     links/s<scope>-cg<cgroup id>-<program>-p<program id>
//!                       pinned cgroup links: enforcement outlives ramd
//! <run dir>/status.json (default /run/ram) what ramd tells ramctl
//! ```

use std::path::{Path, PathBuf};

pub const DEFAULT_PIN_DIR: &str = "/sys/fs/bpf/ram";
pub const DEFAULT_RUN_DIR: &str = "/run/ram";
pub const PIN_DIR_ENV: &str = "RAM_PIN_DIR";
pub const RUN_DIR_ENV: &str = "RAM_RUN_DIR";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paths {
    pub pin_dir: PathBuf,
    pub run_dir: PathBuf,
}

impl Paths {
    /// Explicit values win, then $RAM_PIN_DIR / $RAM_RUN_DIR, then defaults.
    pub fn resolve(pin_dir: Option<PathBuf>, run_dir: Option<PathBuf>) -> Self {
        let from_env =
            |var: &str, default: &str| std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| default.into());
        Paths {
            pin_dir: pin_dir.unwrap_or_else(|| from_env(PIN_DIR_ENV, DEFAULT_PIN_DIR)),
            run_dir: run_dir.unwrap_or_else(|| from_env(RUN_DIR_ENV, DEFAULT_RUN_DIR)),
        }
    }

    pub fn maps_dir(&self) -> PathBuf {
        self.pin_dir.join("maps")
    }

    pub fn map_pin(&self, map: &str) -> PathBuf {
        self.maps_dir().join(map)
    }

    /// Maps replaced at start (layout or size changed), kept until the
    /// programs that use them are replaced too (see `crate::maps::layout`).
    /// bpffs refuses '.' in names, hence a directory rather than a suffix.
    pub fn previous_maps_dir(&self) -> PathBuf {
        self.pin_dir.join("previous-maps")
    }

    pub fn links_dir(&self) -> PathBuf {
        self.pin_dir.join("links")
    }

    /// The container watch's links (see `loader::ContainerWatch`).
    pub fn watch_dir(&self) -> PathBuf {
        self.pin_dir.join("watch")
    }

    pub fn status_file(&self) -> PathBuf {
        self.run_dir.join("status.json")
    }

    /// A revocation of what removed trusted resolvers taught, written down
    /// before the rules change and removed once done (see ramd's reload).
    pub fn pending_revocation_file(&self) -> PathBuf {
        self.run_dir.join("revocation-pending.json")
    }

    /// The bpffs mount the pin dir lives on (its parent).
    pub fn bpffs_mount(&self) -> &Path {
        self.pin_dir.parent().unwrap_or(Path::new("/sys/fs/bpf"))
    }
}

/// What a pin in the links directory holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PinKind {
    /// A bpf_link: removing the pin detaches the program.
    Link,
    /// A program attached with BPF_PROG_ATTACH (kernels before 5.7): it
    /// stays attached until BPF_PROG_DETACH, which needs this pin's fd.
    AttachedProgram,
}

/// A pinned attachment's identity, encoded in its file name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkPin {
    pub scope: u32,
    pub cgroup_id: u64,
    pub program: String,
    pub program_id: u32,
    pub kind: PinKind,
}

const ATTACHED_PROGRAM_SUFFIX: &str = "-attached";

impl LinkPin {
    pub fn file_name(&self) -> String {
        let suffix = match self.kind {
            PinKind::Link => "",
            PinKind::AttachedProgram => ATTACHED_PROGRAM_SUFFIX,
        };
        format!("s{}-cg{}-{}-p{}{suffix}", self.scope, self.cgroup_id, self.program, self.program_id)
    }

    pub fn parse(name: &str) -> Option<Self> {
        let (name, kind) = match name.strip_suffix(ATTACHED_PROGRAM_SUFFIX) {
            Some(rest) => (rest, PinKind::AttachedProgram),
            None => (name, PinKind::Link),
        };
        let rest = name.strip_prefix('s')?;
        let (scope, rest) = rest.split_once("-cg")?;
        let (cgroup_id, rest) = rest.split_once('-')?;
        let (program, program_id) = rest.rsplit_once("-p")?;
        Some(LinkPin {
            scope: scope.parse().ok()?,
            cgroup_id: cgroup_id.parse().ok()?,
            program: program.to_string(),
            program_id: program_id.parse().ok()?,
            kind,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_pin_names_round_trip() {
        let pin =
            LinkPin { scope: 3, cgroup_id: 4242, program: "ram_connect4".into(), program_id: 17, kind: PinKind::Link };
        assert_eq!(pin.file_name(), "s3-cg4242-ram_connect4-p17");
        assert_eq!(LinkPin::parse(&pin.file_name()), Some(pin.clone()));
        let attached = LinkPin { kind: PinKind::AttachedProgram, ..pin };
        assert_eq!(attached.file_name(), "s3-cg4242-ram_connect4-p17-attached");
        assert_eq!(LinkPin::parse(&attached.file_name()), Some(attached));
        assert_eq!(LinkPin::parse("garbage"), None);
    }
}
