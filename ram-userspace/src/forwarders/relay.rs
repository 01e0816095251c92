//! Rootless network helpers (slirp4netns, pasta): which process is one ramd
//! may let through as a relay, and whether it still is on every later scan
//! (see the parent module for why the pass is safe, and the README for what
//! `rootless_helpers = "pass"` accepts).

use std::{collections::BTreeSet, os::unix::fs::MetadataExt, path::Path};

use ram_common::maps::{ForwardDest, FORWARD_RELAY};

use super::{installed_files_in, only_root_writes, settled_arguments, Look};

/// The rootless network helpers' command names, and the files each may run.
/// pasta is a link to passt, and either re-execs its AVX2 build by the
/// file's own name (comm passt.avx2); the mode is argv[0]'s.
const SLIRP4NETNS: &str = "slirp4netns";
const SLIRP4NETNS_FILES: [&str; 1] = ["slirp4netns"];
const PASST_NAMES: [&str; 4] = ["pasta", "pasta.avx2", "passt", "passt.avx2"];
const PASST_FILES: [&str; 2] = ["passt", "passt.avx2"];
/// Where distributions install them.
const RELAY_DIRS: [&str; 4] = ["/usr/bin", "/usr/local/bin", "/usr/libexec/podman", "/usr/lib/podman"];

/// A (device, inode) pair: a file as stat sees it.
type FileId = (u64, u64);

/// Which helper a command name is.
#[derive(Clone, Copy)]
pub(super) enum Kind {
    Slirp4netns,
    Passt,
}

pub(super) fn kind_of(comm: &str) -> Option<Kind> {
    if comm == SLIRP4NETNS {
        Some(Kind::Slirp4netns)
    } else if PASST_NAMES.contains(&comm) {
        Some(Kind::Passt)
    } else {
        None
    }
}

/// The host's files of each helper, read once per scan and only when a
/// process of that name is there.
#[derive(Default)]
pub(super) struct HostFiles {
    slirp4netns: Option<BTreeSet<FileId>>,
    passt: Option<BTreeSet<FileId>>,
}

impl HostFiles {
    pub(super) fn files(&mut self, kind: Kind) -> &BTreeSet<FileId> {
        let (slot, names): (_, &[&str]) = match kind {
            Kind::Slirp4netns => (&mut self.slirp4netns, &SLIRP4NETNS_FILES),
            Kind::Passt => (&mut self.passt, &PASST_FILES),
        };
        slot.get_or_insert_with(|| names.iter().flat_map(|name| installed_files_in(&RELAY_DIRS, name)).collect())
    }
}

/// A rootless helper's row: its sockets pass while the process runs as
/// `uid`.
pub(super) fn relay(uid: u32) -> ForwardDest {
    ForwardDest { family: FORWARD_RELAY, uid, ..ForwardDest::default() }
}

/// What a helper was when ramd let it through: the file it ran and the
/// executable files it had mapped, each the host's root-owned file then.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct RelayPrint {
    exe: FileId,
    mapped: BTreeSet<FileId>,
}

/// Is `pid` (command name `comm`) a rootless helper ramd may let through?
/// `files` are the host's files of its kind. It must run one of them, as
/// one user other than root (a rootless helper never is root; root can
/// leave the cgroup anyway), untraced, under its helper's name, with every
/// executable mapping the host's root-owned file, once the dynamic loader
/// is done.
pub(super) fn look(pid: u32, comm: &str, files: &BTreeSet<FileId>) -> Look {
    let Some(exe) = exe_file(pid).filter(|exe| files.contains(exe)) else { return Look::NotOne };
    let Some(status) = status(pid) else { return Look::NotOne };
    let Some(uid) = single_uid(&status).filter(|uid| *uid != 0) else { return Look::NotOne };
    // Before anything that can answer "not yet": a helper its user traces
    // runs the user's code (red team 12), and one seen traced is never let
    // through, whatever it does after (red team 16: it was held at "no
    // arguments yet" while traced, then filled them in and detached).
    if traced_by(&status) != Some(0) {
        return Look::NotOne;
    }
    let Some(args) = settled_arguments(pid) else { return Look::NotYet };
    if !started_as(&args, comm) {
        return Look::NotOne;
    }
    let Some(mappings) = exec_mappings(pid) else { return Look::NotOne };
    if mappings.is_empty() || !mappings.iter().all(Mapping::is_hosts_file) {
        return Look::NotOne;
    }
    // The dynamic loader maps every preloaded library before the
    // program's own (the helpers all link glibc), so once the C library is
    // there a preload would be too. A program linked statically has no
    // loader: its one file is all it maps.
    let statically_linked = mappings.iter().all(|m| m.file == exe);
    if !statically_linked && !mappings.iter().any(|m| is_glibc(&m.path)) {
        return Look::NotYet;
    }
    let mapped = mappings.iter().map(|m| m.file).collect();
    Look::Relay(relay(uid), RelayPrint { exe, mapped })
}

impl RelayPrint {
    /// Is the helper let through at `pid` still what it was? The same
    /// user, untraced, running the same file under its helper's name (an
    /// exec keeps the pid, start time and, through a link of the helper's
    /// name, the command name: red team 16), every executable mapping one
    /// it had, or the host's root-owned file (a library it loads later).
    /// A file a package upgrade replaced since stays one it had: running
    /// helpers keep their pass through an upgrade.
    pub(super) fn still_holds(&self, pid: u32, uid: u32, comm: &str) -> bool {
        let Some(status) = status(pid) else { return false };
        single_uid(&status) == Some(uid)
            && traced_by(&status) == Some(0)
            && exe_file(pid) == Some(self.exe)
            && settled_arguments(pid).is_some_and(|args| started_as(&args, comm))
            && exec_mappings(pid)
                .is_some_and(|maps| maps.iter().all(|m| self.mapped.contains(&m.file) || m.is_hosts_file()))
    }
}

/// The file a process runs.
fn exe_file(pid: u32) -> Option<FileId> {
    std::fs::metadata(format!("/proc/{pid}/exe")).ok().map(|m| (m.dev(), m.ino()))
}

/// Was the program started under the name that makes it a helper of
/// containers (argv[0]'s file name)? passt decides its mode by it (pasta
/// when the name holds "pasta", as passt's own test): as passt it relays
/// frames from any local process that finds its UNIX socket.
fn started_as<S: AsRef<str>>(args: &[S], comm: &str) -> bool {
    let argv0 = args.first().and_then(|a| Path::new(a.as_ref()).file_name()).and_then(|n| n.to_str());
    match argv0 {
        Some(name) if PASST_NAMES.contains(&comm) => name.contains("pasta"),
        Some(name) => name == comm,
        None => false,
    }
}

/// /proc/PID/status (ids as ramd's user namespace sees them).
pub(super) fn status(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/status")).ok()
}

/// The pid tracing the process (0: none), from its `status`.
fn traced_by(status: &str) -> Option<u32> {
    status.lines().find_map(|l| l.strip_prefix("TracerPid:")).and_then(|v| v.trim().parse().ok())
}

/// Real, effective, saved and filesystem uid, from `status`, when all are
/// one.
pub(super) fn single_uid(status: &str) -> Option<u32> {
    let ids: Vec<u32> = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .filter_map(|id| id.parse().ok())
        .collect();
    (ids.len() == 4 && ids.iter().all(|id| *id == ids[0])).then(|| ids[0])
}

/// An executable file mapping of a process: the file it mapped (as stat
/// sees it through /proc/PID/map_files, which needs root, which ramd is)
/// and the path /proc/PID/smaps names for it.
struct Mapping {
    file: FileId,
    path: String,
}

impl Mapping {
    /// Is the mapped file the host's file at that path, as ramd sees it,
    /// root-owned and not group- or world-writable? A library of the
    /// user's, a private copy mounted over a path in a namespace of the
    /// process's own, or a file since replaced or deleted, is not.
    fn is_hosts_file(&self) -> bool {
        std::fs::metadata(&self.path).is_ok_and(|host| (host.dev(), host.ino()) == self.file && only_root_writes(&host))
    }
}

/// Every executable file mapping of `pid`; None when they cannot be read
/// whole, or when the process runs code no file holds: an executable
/// mapping of no file (other than the kernel's vDSO), or a page of an
/// executable file mapping that was written (a private copy: ptrace
/// POKETEXT and /proc/PID/mem write so). Red team 16 wrote its code over
/// the loader's text before ramd first looked; /proc/PID/maps still named
/// the host's ld.so. (A uprobe on a library also leaves such a copy: a
/// helper of a host that puts uprobes on its libraries is judged.)
fn exec_mappings(pid: u32) -> Option<Vec<Mapping>> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).ok()?;
    let mut out = Vec::new();
    // Whether the mapping whose fields follow is executable.
    let mut in_exec = false;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else { continue };
        // Written pages of an executable mapping (code of no file), in
        // memory or swapped out (a page of the file itself is dropped,
        // never swapped: red team 18).
        if let Some(kb) = line.strip_prefix("Anonymous:").or_else(|| line.strip_prefix("Swap:")) {
            let written = kb.trim().trim_end_matches("kB").trim() != "0";
            if in_exec && written {
                return None;
            }
            continue;
        }
        // A mapping's header starts with its range; its fields' names end
        // with a colon.
        if first.ends_with(':') || !first.contains('-') {
            continue;
        }
        let perms = fields.next()?;
        in_exec = perms.contains('x');
        if !in_exec {
            continue;
        }
        // offset, device, inode; then the path, which may hold spaces.
        let path = line.splitn(6, char::is_whitespace).nth(5).map(str::trim).unwrap_or("");
        if !path.starts_with('/') {
            // The kernel's own pages (armhf has its signal and vector
            // pages besides the vDSO).
            if matches!(path, "[vdso]" | "[vsyscall]" | "[sigpage]" | "[vectors]") {
                continue;
            }
            return None;
        }
        let mapped = std::fs::metadata(format!("/proc/{pid}/map_files/{first}")).ok()?;
        out.push(Mapping { file: (mapped.dev(), mapped.ino()), path: path.to_string() });
    }
    Some(out)
}

/// glibc's file name: libc.so.6 (2.34 on), libc-2.31.so before.
fn is_glibc(path: &str) -> bool {
    let name = Path::new(path).file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.starts_with("libc.so") || (name.starts_with("libc-") && name.ends_with(".so"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forwarders::describe;

    #[test]
    fn a_rootless_helper_counts_only_under_its_own_name() {
        assert!(started_as(
            &["/usr/bin/slirp4netns", "--netns-type=path", "/run/user/1000/netns/x", "tap0"],
            "slirp4netns"
        ));
        assert!(started_as(&["pasta", "--config-net"], "pasta"));
        // The AVX2 re-exec runs passt.avx2 and keeps argv[0].
        assert!(started_as(&["/usr/bin/pasta", "--config-net"], "passt.avx2"));
        // passt's mode (frames from anyone), by whatever file name.
        assert!(!started_as(&["passt"], "pasta"));
        assert!(!started_as(&["/tmp/x/passt.avx2"], "passt.avx2"));
        assert!(!started_as(&["passt", "--socket", "/tmp/s"], "passt"));
        assert!(!started_as(&["sh"], "slirp4netns"));
        assert!(!started_as::<&str>(&[], "slirp4netns"));
        let row = relay(1000);
        assert_eq!((row.family, row.uid, row.port, row.host_port), (FORWARD_RELAY, 1000, 0, 0));
        assert_eq!(describe(&row), "carry its containers' traffic (as uid 1000)");
    }

    #[test]
    fn the_c_library_says_the_loader_is_done() {
        assert!(is_glibc("/usr/lib/x86_64-linux-gnu/libc.so.6"));
        assert!(is_glibc("/lib/x86_64-linux-gnu/libc-2.31.so"));
        assert!(!is_glibc("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"));
        assert!(!is_glibc("/usr/lib/x86_64-linux-gnu/libcap.so.2"));
        assert!(!is_glibc("/usr/bin/slirp4netns"));
    }
    #[test]
    fn command_names_say_which_helper() {
        assert!(matches!(kind_of("slirp4netns"), Some(Kind::Slirp4netns)));
        for name in PASST_NAMES {
            assert!(matches!(kind_of(name), Some(Kind::Passt)));
        }
        assert!(kind_of("sh").is_none() && kind_of("slirp4netns2").is_none());
    }
}
