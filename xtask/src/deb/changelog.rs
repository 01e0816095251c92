//! The package's Maintainer and its changelogs.
//!
//! Maintainer: `DEBFULLNAME` and `DEBEMAIL`, when set, win over the
//! workspace's `[workspace.metadata.deb] maintainer`, each for its part, as
//! dch reads them: the name is DEBFULLNAME's, else the name of a DEBEMAIL of
//! the form "Name <address>", else the workspace's; the address is
//! DEBEMAIL's, else the workspace's.
//!
//! Changelogs: CHANGELOG.md (Keep a Changelog) is the one source. It is
//! installed as it is as /usr/share/doc/ram/changelog.gz, and in Debian's
//! format as changelog.Debian.gz: one `ram (VERSION) unstable;
//! urgency=medium` entry per version section, newest first, its categories
//! (`### Added`) as `  * Added:` and their items as `    - ...` below,
//! signed by the maintainer with an RFC 2822 date. Both gzip -9n, as Debian
//! policy wants.

use std::{fs, path::Path, process::Command};

use anyhow::{anyhow, bail, Context, Result};

use crate::{run_checked, workspace_root};

/// The widest line of changelog.Debian (lintian warns past 80).
const WIDTH: usize = 80;

/// `Name <address>`, split; None when `text` is not of that form.
fn split_contact(text: &str) -> Option<(&str, &str)> {
    let (name, rest) = text.trim().split_once('<')?;
    let address = rest.strip_suffix('>')?;
    Some((name.trim(), address.trim()))
}

/// The Maintainer from the workspace's value and the environment's
/// DEBFULLNAME and DEBEMAIL (empty counts as unset).
pub fn maintainer_from(workspace: &str, fullname: Option<&str>, email: Option<&str>) -> Result<String> {
    let (mut name, mut address) = split_contact(workspace)
        .ok_or_else(|| anyhow!("[workspace.metadata.deb] maintainer = {workspace:?}: write \"Name <address>\""))?;
    if let Some(email) = email.map(str::trim).filter(|e| !e.is_empty()) {
        match split_contact(email) {
            Some((env_name, env_address)) => {
                if !env_name.is_empty() {
                    name = env_name;
                }
                address = env_address;
            }
            None => address = email,
        }
    }
    if let Some(fullname) = fullname.map(str::trim).filter(|n| !n.is_empty()) {
        name = fullname;
    }
    let bad_name = name.is_empty() || name.contains(['<', '>', ',', '\n', '"']);
    if bad_name {
        bail!("maintainer name {name:?}: must be a plain name (DEBFULLNAME or the workspace's maintainer)");
    }
    let well_formed = address
        .split_once('@')
        .is_some_and(|(user, host)| !user.is_empty() && host.contains('.') && !host.starts_with('.'));
    if !well_formed || address.contains(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | ',')) {
        bail!("maintainer address {address:?}: must be user@host (DEBEMAIL or the workspace's maintainer)");
    }
    Ok(format!("{name} <{address}>"))
}

/// `[workspace.metadata.deb] maintainer` of the workspace's Cargo.toml.
fn workspace_maintainer() -> Result<String> {
    let path = workspace_root().join("Cargo.toml");
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let manifest: toml::Table = text.parse().with_context(|| format!("parsing {}", path.display()))?;
    manifest
        .get("workspace")
        .and_then(|w| w.get("metadata"))
        .and_then(|m| m.get("deb"))
        .and_then(|d| d.get("maintainer"))
        .and_then(|m| m.as_str())
        .map(str::to_string)
        .ok_or_else(|| anyhow!("{}: no [workspace.metadata.deb] maintainer", path.display()))
}

/// The package's Maintainer, for the control file and the changelog.
pub fn maintainer() -> Result<String> {
    let env = |name: &str| std::env::var(name).ok();
    maintainer_from(&workspace_maintainer()?, env("DEBFULLNAME").as_deref(), env("DEBEMAIL").as_deref())
}

/// When the package's changes were made, in seconds since the epoch:
/// SOURCE_DATE_EPOCH (reproducible builds), else the last commit's time,
/// else now.
fn build_epoch() -> Result<i64> {
    if let Ok(text) = std::env::var("SOURCE_DATE_EPOCH") {
        return text.trim().parse().with_context(|| format!("SOURCE_DATE_EPOCH={text:?}"));
    }
    let commit = Command::new("git")
        .arg("-C")
        .arg(workspace_root())
        .args(["log", "-1", "--format=%ct"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok());
    Ok(match commit {
        Some(epoch) => epoch,
        None => std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() as i64,
    })
}

/// (year, month, day) of a day counted from 1970-01-01 (Howard Hinnant's
/// civil_from_days).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = (if mp < 10 { mp + 3 } else { mp - 9 }) as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Days from 1970-01-01 to a date (the inverse of [`civil_from_days`]).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// An RFC 2822 date in UTC, as Debian changelogs write it:
/// `Mon, 30 Nov 2026 09:41:04 +0000`.
pub fn rfc2822(epoch: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let (days, secs) = (epoch.div_euclid(86_400), epoch.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} +0000",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[month as usize - 1],
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// One `## [VERSION] - DATE` section of CHANGELOG.md: its version, its date
/// (None: not released yet), and its items by category (`### Added`...).
#[derive(Debug, Default)]
struct Section {
    version: String,
    date: Option<(i64, u32, u32)>,
    groups: Vec<(String, Vec<String>)>,
}

/// Markdown inline text as plain text: code spans, emphasis and links
/// written as their text.
fn plain(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.split_once("](").and_then(|(label, tail)| Some((label, tail.split_once(')')?.1))) {
            Some((label, tail)) if !label.contains('[') => {
                out.push_str(label);
                rest = tail;
            }
            _ => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out.replace("**", "").replace('`', "")
}

/// The version sections of CHANGELOG.md, newest first. Items of an
/// `[Unreleased]` section go to the first version (they are in this build).
fn sections(markdown: &str) -> Result<Vec<Section>> {
    let mut unreleased: Option<Section> = None;
    let mut out: Vec<Section> = Vec::new();
    let mut in_unreleased = false;
    for (number, line) in markdown.lines().enumerate() {
        let at = || format!("CHANGELOG.md:{}", number + 1);
        if let Some(heading) = line.strip_prefix("## ") {
            let (version, date) = heading
                .strip_prefix('[')
                .and_then(|h| h.split_once(']'))
                .ok_or_else(|| anyhow!("{}: a version heading is `## [VERSION] - YYYY-MM-DD`", at()))?;
            let date = date.trim().trim_start_matches('-').trim();
            let date = match date.split('-').map(str::parse::<u32>).collect::<Result<Vec<_>, _>>() {
                Ok(parts) if parts.len() == 3 => Some((i64::from(parts[0]), parts[1], parts[2])),
                _ => None,
            };
            let section = Section { version: version.to_string(), date, groups: Vec::new() };
            in_unreleased = version.eq_ignore_ascii_case("unreleased");
            if in_unreleased {
                unreleased = Some(section);
            } else {
                out.push(section);
            }
            continue;
        }
        let current = if in_unreleased { unreleased.as_mut() } else { out.last_mut() };
        let Some(section) = current else { continue };
        if let Some(category) = line.strip_prefix("### ") {
            section.groups.push((category.trim().to_string(), Vec::new()));
        } else if let Some(item) = line.strip_prefix("- ") {
            let Some((_, items)) = section.groups.last_mut() else {
                bail!("{}: an item outside a `### Category`", at());
            };
            items.push(item.trim().to_string());
        } else if line.starts_with("  ") && !line.trim().is_empty() {
            // An item's continuation line.
            let item = section.groups.last_mut().and_then(|(_, items)| items.last_mut());
            let Some(item) = item else { bail!("{}: an indented line outside an item", at()) };
            item.push(' ');
            item.push_str(line.trim());
        }
    }
    let Some(first) = out.first_mut() else {
        bail!("CHANGELOG.md has no `## [VERSION]` section");
    };
    if let Some(unreleased) = unreleased {
        let mut groups = unreleased.groups;
        groups.append(&mut first.groups);
        first.groups = groups;
    }
    Ok(out)
}

/// `text` wrapped to WIDTH, its first line after the prefix `first`, the
/// others after `rest`.
fn wrap(text: &str, first: &str, rest: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = first.to_string();
    let mut empty = true;
    for word in text.split_whitespace() {
        if !empty && line.len() + 1 + word.len() > WIDTH {
            lines.push(std::mem::replace(&mut line, rest.to_string()));
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    lines.push(line);
    lines
}

/// CHANGELOG.md in Debian's changelog format. The newest section must be
/// the workspace's version; its entry carries the package's `version`
/// (which may have a suffix). An entry without a release date is dated
/// `epoch`.
pub fn debian_changelog(
    markdown: &str,
    base_version: &str,
    version: &str,
    maintainer: &str,
    epoch: i64,
) -> Result<String> {
    let sections = sections(markdown)?;
    if sections[0].version != base_version {
        bail!(
            "CHANGELOG.md's newest section is [{}], the workspace's version is {base_version}: add a section for it",
            sections[0].version
        );
    }
    let mut out = String::new();
    for (index, section) in sections.iter().enumerate() {
        let entry_version = if index == 0 { version } else { section.version.as_str() };
        out.push_str(&format!("ram ({entry_version}) unstable; urgency=medium\n\n"));
        for (category, items) in &section.groups {
            if items.is_empty() {
                continue;
            }
            out.push_str(&format!("  * {category}:\n"));
            for item in items {
                for line in wrap(&plain(item), "    - ", "      ") {
                    out.push_str(&line);
                    out.push('\n');
                }
            }
        }
        let date = match section.date {
            Some((year, month, day)) => days_from_civil(year, month, day) * 86_400,
            None => epoch,
        };
        out.push_str(&format!("\n -- {maintainer}  {}\n\n", rfc2822(date)));
    }
    out.pop();
    Ok(out)
}

/// The repository's CHANGELOG.md, and its Debian form for the package's
/// `version`.
pub fn debian_text(version: &str, maintainer: &str) -> Result<(String, String)> {
    let source = workspace_root().join("CHANGELOG.md");
    let markdown = fs::read_to_string(&source).with_context(|| format!("reading {}", source.display()))?;
    let debian = debian_changelog(&markdown, env!("CARGO_PKG_VERSION"), version, maintainer, build_epoch()?)?;
    Ok((markdown, debian))
}

/// Writes usr/share/doc/ram/changelog.gz (CHANGELOG.md) and
/// changelog.Debian.gz under `root`, gzip -9n (no name or time stored, so
/// the same text always compresses to the same bytes).
pub fn write(root: &Path, version: &str, maintainer: &str) -> Result<()> {
    let (markdown, debian) = debian_text(version, maintainer)?;
    let doc = root.join("usr/share/doc/ram");
    fs::create_dir_all(&doc)?;
    for (name, text) in [("changelog", markdown.as_str()), ("changelog.Debian", debian.as_str())] {
        let path = doc.join(name);
        fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        run_checked(Command::new("gzip").args(["-9nf"]).arg(&path))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORKSPACE: &str = "ram developers <placeholder@ram.invalid>";

    #[test]
    fn the_environment_wins_over_the_workspace_part_by_part() {
        assert_eq!(maintainer_from(WORKSPACE, None, None).unwrap(), WORKSPACE);
        assert_eq!(maintainer_from(WORKSPACE, Some(""), Some(" ")).unwrap(), WORKSPACE);
        assert_eq!(
            maintainer_from(WORKSPACE, None, Some("jo@example.org")).unwrap(),
            "ram developers <jo@example.org>"
        );
        assert_eq!(maintainer_from(WORKSPACE, Some("Jo Doe"), None).unwrap(), "Jo Doe <placeholder@ram.invalid>");
        assert_eq!(
            maintainer_from(WORKSPACE, None, Some("Jo Doe <jo@example.org>")).unwrap(),
            "Jo Doe <jo@example.org>"
        );
        // DEBFULLNAME names even a DEBEMAIL with a name, as in dch.
        assert_eq!(
            maintainer_from(WORKSPACE, Some("J. Doe"), Some("Jo Doe <jo@example.org>")).unwrap(),
            "J. Doe <jo@example.org>"
        );
        for bad in ["jo", "jo@", "@example.org", "jo@localhost", "jo doe@example.org"] {
            assert!(maintainer_from(WORKSPACE, None, Some(bad)).is_err(), "{bad:?} accepted");
        }
        assert!(maintainer_from(WORKSPACE, Some("Jo <x>"), None).is_err());
        assert!(maintainer_from("ram developers", None, None).is_err());
    }

    #[test]
    fn the_workspace_names_a_maintainer() {
        maintainer_from(&workspace_maintainer().unwrap(), None, None).unwrap();
    }

    #[test]
    fn dates_are_rfc_2822_in_utc() {
        assert_eq!(rfc2822(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc2822(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
        assert_eq!(rfc2822(1_796_031_664), "Mon, 30 Nov 2026 09:41:04 +0000");
        for days in [-1, 0, 59, 10_956, 20_787, 40_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn markdown_becomes_debian_entries() {
        let md = "# Changelog\n\nIntro.\n\n## [Unreleased]\n\n### Fixed\n\n- A `fix`.\n\n## [0.2.0] - Unreleased\n\n\
                  ### Added\n\n- **Kernel**: one [long](https://example.org) item that goes on and on and on past the \
                  eightieth column of the file\n  and continues here.\n\n## [0.1.0] - 2026-11-27\n\n### Added\n\n- First.\n";
        let text = debian_changelog(md, "0.2.0", "0.2.0+x", WORKSPACE, 0).unwrap();
        let want = "ram (0.2.0+x) unstable; urgency=medium

  * Fixed:
    - A fix.
  * Added:
    - Kernel: one long item that goes on and on and on past the eightieth column
      of the file and continues here.

 -- ram developers <placeholder@ram.invalid>  Thu, 01 Jan 1970 00:00:00 +0000

ram (0.1.0) unstable; urgency=medium

  * Added:
    - First.

 -- ram developers <placeholder@ram.invalid>  Fri, 27 Nov 2026 00:00:00 +0000
";
        assert_eq!(text, want);
        let err = debian_changelog(md, "0.3.0", "0.3.0", WORKSPACE, 0).unwrap_err().to_string();
        assert!(err.contains("[0.2.0]") && err.contains("0.3.0"), "{err}");
    }

    /// The repository's CHANGELOG.md has a section for this version, and
    /// its Debian form parses with dpkg's own parser where it is installed.
    #[test]
    fn the_changelog_covers_this_version_and_dpkg_reads_it() {
        let markdown = fs::read_to_string(workspace_root().join("CHANGELOG.md")).unwrap();
        let version = env!("CARGO_PKG_VERSION");
        let text = debian_changelog(&markdown, version, version, WORKSPACE, 1_796_031_664).unwrap();
        assert!(text.starts_with(&format!("ram ({version}) unstable; urgency=medium\n\n  * ")), "{text}");
        assert!(text.lines().all(|l| l.len() <= WIDTH), "a line past {WIDTH} columns:\n{text}");
        let dir = std::env::temp_dir().join(format!("ram-changelog-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("changelog");
        fs::write(&file, &text).unwrap();
        let parsed = Command::new("dpkg-parsechangelog").arg("-l").arg(&file).output();
        fs::remove_dir_all(&dir).unwrap();
        let Ok(out) = parsed else { return };
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let fields = String::from_utf8_lossy(&out.stdout);
        for want in [
            format!("Version: {version}"),
            "Distribution: unstable".into(),
            "Urgency: medium".into(),
            format!("Maintainer: {WORKSPACE}"),
            "Date: Mon, 30 Nov 2026 09:41:04 +0000".into(),
        ] {
            assert!(fields.lines().any(|l| l == want), "{want:?} not in:\n{fields}");
        }
    }
}
