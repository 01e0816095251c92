//! The command lines of ramd and ramctl: what they accept, in one place.
//!
//! The binaries parse with these definitions; `cargo xtask deb` renders the
//! same definitions into man pages (clap_mangen) and shell completions
//! (clap_complete), so the documentation cannot drift from the parser.
//! Re-exported by ram-userspace as `ram::cli`.

pub mod ramctl;
pub mod ramd;

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_lines_are_consistent() {
        // clap's own checks (conflicting names, bad defaults) run here, not
        // first in front of a user.
        crate::ramd::command().debug_assert();
        crate::ramctl::command().debug_assert();
    }
}
