//! Hostname → map key: the one encoder both sides use.
//!
//! A name is stored as its text, lowercased and reversed byte by byte:
//! `www.Example.com` → `moc.elpmaxe.www`. Reversal turns "is a suffix of" into
//! "is a prefix of", which is what an LPM trie answers in one lookup:
//! - an exact rule `example.com` is the key `moc.elpmaxe` (full length);
//! - a wildcard rule `*.example.com` is the key `moc.elpmaxe.` — the trailing
//!   dot makes it match `moc.elpmaxe.www` but neither `moc.elpmaxe`
//!   (example.com itself) nor `moc.elpmaxeton` (notexample.com).
//!
//! The kernel encodes DNS question names straight from the wire format with
//! [`key_from_wire`]; userspace turns policy text into the wire format and calls
//! the same function, so the two can never disagree.

use crate::{
    bounded::{get, index, launder, put},
    message::{DnsError, LoopVars, WINDOW, WINDOW_MASK},
};

/// Bytes of key data in a name map key (the LPM trie's limit is 256).
pub const NAME_KEY_LEN: usize = 256;
/// Longest wire-format name (RFC 1035 §2.3.4).
pub const MAX_WIRE_NAME: u32 = 255;
/// Longest text form of a name: wire length less the first length byte and the root.
pub const MAX_TEXT_NAME: u32 = MAX_WIRE_NAME - 2;
/// Longest name (text form) ram learns for and accepts in a rule. DNS allows
/// 253, but registry hosts are far shorter (the longest researched one has
/// 77 characters) and every byte of the bound costs verifier work on each
/// kernel; longer questions are not learned (fail closed).
pub const MAX_HOST_LEN: u32 = 128;
/// Most labels a wire name of 255 bytes can have.
pub const MAX_LABELS: u32 = 128;
/// Longest label (RFC 1035 §2.3.4); larger length bytes are compression pointers.
pub const MAX_LABEL: u32 = 63;

/// Where an encoded name ended up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NameSpan {
    /// Length of the text form (= bytes of key data written).
    pub text_len: u32,
    /// Offset just past the name's terminating zero byte in the message.
    pub end: u32,
    /// FNV-1a hash of the text form (forward order), used as a host id.
    pub host_id: u64,
}

/// FNV-1a 64-bit: a host id that both sides compute the same way.
pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
pub const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Encodes the uncompressed wire-format name at `start` of `msg` (whose first
/// `len` bytes are valid) into `key`: text form, lowercased, reversed.
///
/// Compression pointers are refused (question names never use them), and so
/// is a label holding a `.` byte, which would make two different names
/// encode alike. Loop-carried values go through `vars` (volatile), which the
/// kernel keeps in map memory so the verifier can prune loop states.
#[inline(always)]
pub fn key_from_wire(
    msg: &[u8; WINDOW],
    len: u32,
    start: u32,
    key: &mut [u8; NAME_KEY_LEN],
    vars: &mut LoopVars,
) -> Result<NameSpan, DnsError> {
    // Pass 1: follow the length bytes to the terminating zero.
    put(&mut vars.off, start);
    put(&mut vars.done, 0);
    for _ in 0..MAX_LABELS {
        let off = get(&vars.off);
        if off >= len || off >= WINDOW as u32 {
            return Err(DnsError::Truncated);
        }
        let label = msg[index(off, WINDOW_MASK)] as u32;
        if label == 0 {
            put(&mut vars.done, 1);
            break;
        }
        if label > MAX_LABEL {
            return Err(DnsError::BadName);
        }
        let next = off + label + 1;
        if next - start > MAX_WIRE_NAME {
            return Err(DnsError::BadName);
        }
        put(&mut vars.off, next);
    }
    if get(&vars.done) == 0 {
        return Err(DnsError::BadName);
    }
    let zero = get(&vars.off);
    if zero <= start || zero - start > MAX_WIRE_NAME {
        // The root name alone, or a length the verifier cannot see bounded.
        return Err(DnsError::BadName);
    }
    let text_len = launder(&mut vars.count, zero - start - 1);
    if text_len > MAX_HOST_LEN {
        return Err(DnsError::BadName);
    }

    // Pass 2: copy every byte of the text form to its mirrored position.
    // `next` is the offset of the next length byte, which becomes a dot.
    put(&mut vars.next, start + msg[index(start, WINDOW_MASK)] as u32 + 1);
    put(&mut vars.hash, FNV_OFFSET);
    for i in 1..=MAX_HOST_LEN {
        if i > text_len {
            break;
        }
        let pos = start + i;
        let byte = msg[index(pos, WINDOW_MASK)];
        let next = get(&vars.next);
        let ch = if pos == next {
            put(&mut vars.next, next + byte as u32 + 1);
            b'.'
        } else if byte == b'.' {
            return Err(DnsError::BadName);
        } else {
            byte.to_ascii_lowercase()
        };
        key[index(text_len - i, NAME_KEY_LEN - 1)] = ch;
        let hash = (get(&vars.hash) ^ ch as u64).wrapping_mul(FNV_PRIME);
        put(&mut vars.hash, hash);
    }
    // Each way out of the loop knows a different range for text_len; reading
    // it back from memory makes them one state for the verifier.
    let text_len = get(&vars.count);
    if text_len > MAX_HOST_LEN {
        return Err(DnsError::BadName);
    }
    Ok(NameSpan { text_len, end: zero + 1, host_id: get(&vars.hash) })
}

/// Writes the text form of an encoded key (`len` bytes of `key`) into `out`
/// in reading order; returns the number of bytes written.
pub fn text_from_key(key: &[u8; NAME_KEY_LEN], len: usize, out: &mut [u8]) -> usize {
    let len = len.min(NAME_KEY_LEN).min(out.len());
    for (i, slot) in out.iter_mut().take(len).enumerate() {
        *slot = key[len - 1 - i];
    }
    len
}

/// Why a hostname from a policy cannot be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostError {
    Empty,
    TooLong,
    EmptyLabel,
    LabelTooLong,
    /// A byte other than a-z, 0-9, `-` or `_` (after lowercasing).
    BadChar(u8),
    /// `*` anywhere but as the whole first label.
    BadWildcard,
}

/// A policy hostname encoded as a name key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostKey {
    pub data: [u8; NAME_KEY_LEN],
    /// Bytes of `data` that belong to the key.
    pub len: u32,
    /// True for `*.suffix` patterns: the key ends in a dot and matches names below.
    pub wildcard: bool,
    /// Host id of the exact name (meaningless for wildcards).
    pub host_id: u64,
}

impl HostKey {
    /// The LPM prefix length in bits.
    pub fn prefix_bits(&self) -> u32 {
        self.len * 8
    }
}

/// Encodes a policy hostname (`registry.example.com` or `*.example.net`;
/// case-insensitive, a trailing dot ignored) through [`key_from_wire`].
pub fn encode_host(host: &str) -> Result<HostKey, HostError> {
    let (wildcard, name) = match host.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, host),
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return Err(HostError::Empty);
    }
    if name.len() > MAX_HOST_LEN as usize - usize::from(wildcard) {
        return Err(HostError::TooLong);
    }
    let mut msg = [0u8; WINDOW];
    let mut at = 0usize;
    for label in name.split('.') {
        if label.is_empty() {
            return Err(HostError::EmptyLabel);
        }
        if label.len() > MAX_LABEL as usize {
            return Err(HostError::LabelTooLong);
        }
        msg[at] = label.len() as u8;
        at += 1;
        for &byte in label.as_bytes() {
            let byte = byte.to_ascii_lowercase();
            match byte {
                b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => {}
                b'*' => return Err(HostError::BadWildcard),
                other => return Err(HostError::BadChar(other)),
            }
            msg[at] = byte;
            at += 1;
        }
    }
    // msg[at] is already the terminating zero.
    let wire_len = (at + 1) as u32;
    let mut data = [0u8; NAME_KEY_LEN];
    let mut vars = LoopVars::default();
    let span = key_from_wire(&msg, wire_len, 0, &mut data, &mut vars).map_err(|_| HostError::TooLong)?;
    let mut len = span.text_len;
    if wildcard {
        data[len as usize] = b'.';
        len += 1;
    }
    Ok(HostKey { data, len, wildcard, host_id: span.host_id })
}

/// The host id of a hostname, as the kernel computes it for a question.
pub fn host_id(host: &str) -> Result<u64, HostError> {
    encode_host(host).map(|key| key.host_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;

    fn key_text(host: &str) -> String {
        let key = encode_host(host).unwrap();
        String::from_utf8(key.data[..key.len as usize].to_vec()).unwrap()
    }

    #[test]
    fn exact_names_reverse_and_lowercase() {
        assert_eq!(key_text("WwW.Example.com"), "moc.elpmaxe.www");
        assert_eq!(key_text("example.com."), "moc.elpmaxe");
        assert_eq!(key_text("a"), "a");
    }

    #[test]
    fn wildcards_end_in_a_dot() {
        let key = encode_host("*.example.net").unwrap();
        assert!(key.wildcard);
        assert_eq!(&key.data[..key.len as usize], b"ten.elpmaxe.");
        assert_eq!(key.prefix_bits(), 12 * 8);
    }

    #[test]
    fn wildcard_prefix_does_not_cover_lookalikes() {
        let rule = encode_host("*.example.com").unwrap();
        let covered = |name: &str| {
            let key = encode_host(name).unwrap();
            key.len >= rule.len && key.data[..rule.len as usize] == rule.data[..rule.len as usize]
        };
        assert!(covered("www.example.com"));
        assert!(covered("a.b.EXAMPLE.com"));
        assert!(!covered("example.com"));
        assert!(!covered("notexample.com"));
        assert!(!covered("example.com.evil"));
    }

    #[test]
    fn bad_hosts_are_refused() {
        assert_eq!(encode_host(""), Err(HostError::Empty));
        assert_eq!(encode_host("*."), Err(HostError::Empty));
        assert_eq!(encode_host("a..b"), Err(HostError::EmptyLabel));
        assert_eq!(encode_host("a.*.b"), Err(HostError::BadWildcard));
        assert_eq!(encode_host("*b.c"), Err(HostError::BadWildcard));
        assert_eq!(encode_host("a b.c"), Err(HostError::BadChar(b' ')));
        assert_eq!(encode_host("10.0.0.1/8"), Err(HostError::BadChar(b'/')));
        let long_label = "x".repeat(64);
        assert_eq!(encode_host(&long_label), Err(HostError::LabelTooLong));
        let long_name = ["abcdefghi"; 26].join(".");
        assert_eq!(encode_host(&long_name), Err(HostError::TooLong));
    }

    #[test]
    fn names_up_to_the_host_limit_fit() {
        let name = [&"a".repeat(63)[..], &"b".repeat(63)].join(".");
        assert_eq!(name.len(), 127);
        let key = encode_host(&name).unwrap();
        assert_eq!(key.len, 127);
        assert_eq!(key.data[0], b'b');
        let too_long = std::format!("{name}.c");
        assert_eq!(too_long.len(), 129);
        assert_eq!(encode_host(&too_long), Err(HostError::TooLong));
    }

    #[test]
    fn wire_names_past_the_host_limit_are_not_learned() {
        let mut msg = [0u8; WINDOW];
        let mut at = 0;
        for _ in 0..3 {
            msg[at] = 50;
            at += 51;
        }
        // 3 labels of 50 = 152 text bytes > 128.
        let mut key = [0u8; NAME_KEY_LEN];
        let r = key_from_wire(&msg, at as u32 + 1, 0, &mut key, &mut LoopVars::default());
        assert_eq!(r, Err(DnsError::BadName));
    }

    #[test]
    fn wire_names_with_dots_inside_labels_are_refused() {
        let mut msg = [0u8; WINDOW];
        msg[..13].copy_from_slice(b"\x0bexample.com\x00");
        let mut key = [0u8; NAME_KEY_LEN];
        let r = key_from_wire(&msg, 13, 0, &mut key, &mut LoopVars::default());
        assert_eq!(r, Err(DnsError::BadName));
    }

    #[test]
    fn wire_names_with_pointers_are_refused() {
        let mut msg = [0u8; WINDOW];
        msg[..4].copy_from_slice(b"\x01a\xc0\x0c");
        let mut key = [0u8; NAME_KEY_LEN];
        let r = key_from_wire(&msg, 4, 0, &mut key, &mut LoopVars::default());
        assert_eq!(r, Err(DnsError::BadName));
    }

    #[test]
    fn host_ids_ignore_case() {
        assert_eq!(host_id("Registry.Example.com").unwrap(), host_id("registry.example.com").unwrap());
        assert_ne!(host_id("a.example.com").unwrap(), host_id("b.example.com").unwrap());
    }

    #[test]
    fn text_from_key_round_trips() {
        let key = encode_host("Registry-1.Docker.io").unwrap();
        let mut out = [0u8; 64];
        let n = text_from_key(&key.data, key.len as usize, &mut out);
        assert_eq!(&out[..n], b"registry-1.docker.io");
    }
}
