//! Man pages and shell completions, rendered from ramd's and ramctl's clap
//! definitions (ram-cli) at build time, so they always say what the parser
//! accepts. Nothing here is committed.

use std::{fs, path::Path, process::Command};

use anyhow::{Context, Result};
use clap_complete::Shell;

use crate::run_checked;

/// What each page adds to what clap knows: where things live, and where to
/// read more.
const RAMD_EXTRA: &str = r#".SH FILES
.TP
/etc/ram/ram.toml
The policy (a conffile of the Debian package; as shipped, the embedded default: Docker Hub only, on dockerd and containerd).
.TP
/sys/fs/bpf/ram
Pinned programs, links and maps (root-only). Enforcement outlives ramd; only \fBramd \-\-uninstall\fR removes them.
.TP
/run/ram
The status file \fBramctl\fR reads.
.SH SEE ALSO
\fBramctl\fR(8), /usr/share/doc/ram/README.md
"#;

const RAMCTL_EXTRA: &str = r#".SH EXIT STATUS
0 on success; 1 on failure; \fBramctl check\fR exits 2 when the connect would be denied.
.SH SEE ALSO
\fBramd\fR(8), /usr/share/doc/ram/README.md
"#;

const SUBCOMMAND_EXTRA: &str = r#".SH SEE ALSO
\fBramctl\fR(8), \fBramd\fR(8)
"#;

/// Writes the man pages (gzipped, section 8: ramd.8, ramctl.8 and a page per
/// ramctl subcommand, which ramctl.8 lists as ramctl-NAME(8)) and the bash,
/// zsh and fish completions of both commands under `root` (the package's
/// file tree).
pub fn write(root: &Path, version: &str) -> Result<()> {
    let man_dir = root.join("usr/share/man/man8");
    fs::create_dir_all(&man_dir)?;
    let commands = [(ram_cli::ramd::command(), RAMD_EXTRA), (ram_cli::ramctl::command(), RAMCTL_EXTRA)];
    for (command, extra) in &commands {
        // As clap_mangen::generate_to does: no `help` subcommand page, and
        // a built command, whose subcommands know their display names
        // (ramctl-status).
        let mut command = command.clone().disable_help_subcommand(true);
        command.build();
        man_page(&man_dir, &command, extra, version)?;
        for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
            man_page(&man_dir, sub, SUBCOMMAND_EXTRA, version)?;
        }
    }
    let places = [
        (Shell::Bash, "usr/share/bash-completion/completions", "{}"),
        (Shell::Zsh, "usr/share/zsh/vendor-completions", "_{}"),
        (Shell::Fish, "usr/share/fish/vendor_completions.d", "{}.fish"),
    ];
    for (shell, dir, file) in places {
        let dir = root.join(dir);
        fs::create_dir_all(&dir)?;
        for (command, _) in &commands {
            let mut command = command.clone();
            let name = command.get_name().to_string();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, &name, &mut script);
            fs::write(dir.join(file.replace("{}", &name)), script)?;
        }
    }
    Ok(())
}

fn man_page(dir: &Path, command: &clap::Command, extra: &str, version: &str) -> Result<()> {
    let man = clap_mangen::Man::new(command.clone())
        .section("8")
        .source(format!("ram {version}"))
        .manual("System Administration");
    let mut page = Vec::new();
    man.render(&mut page).with_context(|| format!("rendering {}", man.get_filename()))?;
    page.extend_from_slice(extra.as_bytes());
    let path = dir.join(man.get_filename());
    fs::write(&path, page)?;
    // Debian installs man pages gzipped; -n leaves the name and time out,
    // so the same page always compresses to the same bytes.
    run_checked(Command::new("gzip").args(["-9nf"]).arg(&path))
}
