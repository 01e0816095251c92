//! The package's control file and maintainer scripts.
//!
//! What they must keep (README, "Never fail open"): programs stay attached
//! when ramd stops, and a new ramd swaps its programs into the pinned links.
//! So an upgrade only restarts ramd (never uninstalls: that would leave the
//! runtimes unenforced until the new ramd attaches), a removal stops ramd and
//! then uninstalls (stopping alone would leave every program attached with
//! nothing to manage it), and neither restarts docker or containerd: ramd
//! attaches to a running runtime's cgroup as soon as it starts, and the
//! drop-ins hold the runtime's next start until ramd enforces it.
//!
//! init-system-helpers (deb-systemd-helper, deb-systemd-invoke) is
//! Essential in Debian 12, so the scripts use it as debhelper's would.

/// Kernel needs, said where apt shows them (the binaries are static, so the
/// package depends on no other package). `maintainer`: see
/// `changelog::maintainer`.
pub fn control(version: &str, maintainer: &str, installed_kib: u64) -> String {
    format!(
        "Package: ram
Version: {version}
Architecture: amd64
Maintainer: {maintainer}
Installed-Size: {installed_kib}
Section: admin
Priority: optional
Description: registry access management for container runtimes, in the kernel
 ram's eBPF programs, attached to the cgroups of dockerd and containerd (and
 of any runtime the policy names), let a runtime connect only to addresses a
 trusted resolver gave for the registries its policy allows. Every other
 connect fails at once with EPERM and is logged by ramd.
 .
 As installed, ramd enforces the default policy (Docker Hub only) on
 docker.service and containerd.service at once, and the runtimes' units wait
 for enforcement at each start. The policy is /etc/ram/ram.toml.
 .
 Needs Linux 5.7 or later built with CONFIG_BPF_SYSCALL and CONFIG_CGROUP_BPF
 (Debian's kernels are), with the cgroup v2 hierarchy mounted (pure v2, or
 /sys/fs/cgroup/unified on hybrid hosts). ramd and ramctl are statically
 linked.
"
    )
}

pub const CONFFILES: &str = "/etc/ram/ram.toml\n";

/// Enables and starts ramd on install, restarts it on upgrade (the new ramd
/// swaps its programs into the pinned links). A ramd that does not start
/// fails the configure step: a runtime left unenforced must not look
/// installed.
pub const POSTINST: &str = r#"#!/bin/sh
set -e

case "$1" in
configure | abort-upgrade | abort-deconfigure | abort-remove)
    # As debhelper does: enable on first install, respect an admin's
    # `systemctl disable ramd` on upgrades.
    deb-systemd-helper unmask ramd.service >/dev/null || true
    if deb-systemd-helper --quiet was-enabled ramd.service; then
        deb-systemd-helper enable ramd.service >/dev/null || true
    else
        deb-systemd-helper update-state ramd.service >/dev/null || true
    fi
    if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
        # Also makes systemd read the docker and containerd drop-ins: their
        # next start waits for enforcement. A runtime running now is
        # enforced as soon as ramd starts (it attaches to the running
        # runtime's unit cgroup); it is not restarted.
        systemctl --system daemon-reload
        if [ -n "$2" ]; then action=restart; else action=start; fi
        if ! deb-systemd-invoke "$action" ramd.service; then
            echo "ram: ramd did not start, so nothing is enforced; see journalctl -u ramd" >&2
            exit 1
        fi
    fi
    ;;
esac

exit 0
"#;

/// On removal: stop ramd, then remove every program, link and pin. On
/// upgrade: nothing (ramd keeps running until the new one replaces it).
pub const PRERM: &str = r#"#!/bin/sh
set -e

if [ "$1" = remove ]; then
    if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
        deb-systemd-invoke stop ramd.service
    fi
    # Programs stay attached when ramd stops; only this removes them.
    /usr/sbin/ramd --uninstall
fi

exit 0
"#;

/// After removal: systemd forgets ramd's unit and the runtimes' drop-ins
/// (else docker's next start would wait for a ramctl that is gone). Not on
/// upgrade: the new postinst reloads once the new files are in place. On
/// purge: the policy goes too.
pub const POSTRM: &str = r#"#!/bin/sh
set -e

if [ "$1" = remove ]; then
    if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
        systemctl --system daemon-reload >/dev/null || true
    fi
    if [ -x /usr/bin/deb-systemd-helper ]; then
        deb-systemd-helper mask ramd.service >/dev/null || true
    fi
fi
if [ "$1" = purge ]; then
    if [ -x /usr/bin/deb-systemd-helper ]; then
        deb-systemd-helper purge ramd.service >/dev/null || true
        deb-systemd-helper unmask ramd.service >/dev/null || true
    fi
    rm -rf /etc/ram
fi

exit 0
"#;
