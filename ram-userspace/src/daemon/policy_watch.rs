//! Wakes ramd as soon as the policy file may have changed, so that an edit
//! is enforced within milliseconds instead of at the next look of the
//! 500 ms poll (which stays: it also follows a file inotify cannot see
//! change, such as one on a network file system or behind a bind mount
//! replaced from outside).
//!
//! inotify watches the file's directory, not the file: editors and
//! configuration tools replace a file by renaming a new one over it, which
//! a watch on the old file never reports. Only a finished write counts
//! (IN_CLOSE_WRITE, a rename into place, a removal): a write still under
//! way would be read half-done. Whatever wakes it, ramd reloads only if the
//! file's stamp differs from the one it loaded.

use std::{
    ffi::{CString, OsString},
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd},
        unix::ffi::{OsStrExt, OsStringExt},
    },
    path::Path,
};

use tokio::io::{unix::AsyncFd, Interest};

/// The events that say the file may be new.
const EVENTS: u32 = libc::IN_CLOSE_WRITE | libc::IN_MOVED_TO | libc::IN_CREATE | libc::IN_DELETE | libc::IN_ATTRIB;

pub struct PolicyWatch {
    fd: AsyncFd<OwnedFd>,
    name: OsString,
}

impl PolicyWatch {
    /// A watch of `path`'s directory, or None where inotify is not to be
    /// had (the poll still follows the file).
    pub fn new(path: &Path) -> Option<Self> {
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let name = path.file_name()?.to_os_string();
        // SAFETY: no pointers; the returned descriptor is owned below.
        let raw = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if raw < 0 {
            return None;
        }
        // SAFETY: a descriptor inotify_init1 just returned, owned by no one else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let dir = CString::new(dir.as_os_str().as_bytes()).ok()?;
        // SAFETY: a valid inotify descriptor and a NUL-terminated path.
        if unsafe { libc::inotify_add_watch(fd.as_raw_fd(), dir.as_ptr(), EVENTS) } < 0 {
            return None;
        }
        // SAFETY: an OwnedFd always returns the descriptor it owns, open
        // until it drops with the AsyncFd.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.ok()?;
        Some(PolicyWatch { fd, name })
    }

    /// Returns once an event names the policy file (or the kernel's queue
    /// overflowed, which may have dropped one that did).
    pub async fn changed(&self) {
        loop {
            let Ok(mut ready) = self.fd.readable().await else {
                // The descriptor broke: leave it to the poll.
                return std::future::pending().await;
            };
            let mut buf = [0u8; 4096];
            // SAFETY: reads into a buffer of the length given.
            let n = unsafe { libc::read(self.fd.get_ref().as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                ready.clear_ready();
                continue;
            }
            if names_the_file(&buf[..n as usize], &self.name) {
                return;
            }
        }
    }
}

/// Does any event in `events` (inotify's records, back to back) name the
/// file `name`, or say events were lost?
fn names_the_file(events: &[u8], name: &OsString) -> bool {
    const HEADER: usize = std::mem::size_of::<libc::inotify_event>();
    let mut at = 0;
    while at + HEADER <= events.len() {
        let field = |offset: usize| {
            let bytes =
                [events[at + offset], events[at + offset + 1], events[at + offset + 2], events[at + offset + 3]];
            u32::from_ne_bytes(bytes)
        };
        // struct inotify_event { int wd; uint32_t mask, cookie, len; char name[]; }
        let (mask, len) = (field(4), field(12) as usize);
        let end = (at + HEADER + len).min(events.len());
        let raw_name = &events[at + HEADER..end];
        let event_name = raw_name.split(|b| *b == 0).next().unwrap_or_default();
        if mask & libc::IN_Q_OVERFLOW != 0 || OsString::from_vec(event_name.to_vec()) == *name {
            return true;
        }
        at = end;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(mask: u32, name: &[u8]) -> Vec<u8> {
        // Names are NUL-padded to a multiple of the header's alignment.
        let len = (name.len() + 1).next_multiple_of(4);
        let mut out = Vec::new();
        out.extend_from_slice(&1i32.to_ne_bytes());
        out.extend_from_slice(&mask.to_ne_bytes());
        out.extend_from_slice(&0u32.to_ne_bytes());
        out.extend_from_slice(&(len as u32).to_ne_bytes());
        out.extend_from_slice(name);
        out.resize(out.len() + len - name.len(), 0);
        out
    }

    #[test]
    fn only_events_naming_the_policy_file_or_a_lost_queue_count() {
        let name = OsString::from("ram.toml");
        let mut events = event(libc::IN_CLOSE_WRITE, b"other.toml");
        assert!(!names_the_file(&events, &name));
        events.extend(event(libc::IN_MOVED_TO, b"ram.toml"));
        assert!(names_the_file(&events, &name));
        assert!(!names_the_file(&event(libc::IN_CREATE, b"ram.toml.swp"), &name));
        assert!(names_the_file(&event(libc::IN_Q_OVERFLOW, b""), &name));
        // A record cut short ends the walk without a panic.
        assert!(!names_the_file(&events[..10], &name));
    }

    #[tokio::test]
    async fn a_write_to_the_file_wakes_the_watch() {
        let dir = std::env::temp_dir().join(format!("ram-policy-watch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("ram.toml");
        let watch = PolicyWatch::new(&path).expect("inotify");
        std::fs::write(dir.join("unrelated"), "x").expect("write");
        std::fs::write(&path, "mode = \"audit\"\n").expect("write");
        let woke = tokio::time::timeout(std::time::Duration::from_secs(5), watch.changed()).await;
        let _ = std::fs::remove_dir_all(&dir);
        assert!(woke.is_ok(), "the write did not wake the watch");
    }
}
