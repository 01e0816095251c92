//! Kernel-side diagnostics of the learning path: why an answer taught
//! nothing, with the name and the resolver, through aya-log at debug level.
//!
//! Off by default, and then free: the level is aya-log's load-time
//! constant `AYA_LOG_LEVEL` (ramd sets 0 unless `--kernel-log debug` or
//! `ramctl debug on`), which sits in the object's frozen read-only data, so
//! the verifier sees every `say!` branch as dead and removes it (and the
//! function it calls) before the program is JIT-compiled. Turning it on
//! loads the programs again with the level set and swaps them into the
//! pinned links, as an upgrade does.
//!
//! Every line is written by one out-of-line function, [`ram_kernel_log`], so its
//! stack frame (aya-log's record) is its own and exists only when called:
//! inline, the log calls made the learning function's frame too big for the
//! BPF stack.
//!
//! Only the ring-buffer object has them (feature `kernel-log`): aya-log
//! writes to a BPF ring buffer (Linux 5.8+); in the perf-event object for
//! older kernels `say!` expands to nothing.

/// Why an answer taught what it did: bits of a mask, several per answer.
pub mod why {
    /// To a socket that is not a DNS socket of the trusted namespace.
    pub const UNTRUSTED_SOCKET: u32 = 1 << 0;
    /// Its question cannot be read.
    pub const QUESTION_UNREADABLE: u32 = 1 << 1;
    /// No rule of the target allows the name.
    pub const NOT_ALLOWED: u32 = 1 << 2;
    /// It answers no query the target sent.
    pub const UNMATCHED: u32 = 1 << 3;
    /// Its answer records are malformed.
    pub const RECORDS_MALFORMED: u32 = 1 << 4;
    /// Records of other names than the question's chain (ignored).
    pub const OFF_CHAIN: u32 = 1 << 5;
    /// More addresses than `addresses_per_answer`.
    pub const CAPPED: u32 = 1 << 6;
    /// The learned-address map is full.
    pub const MAP_FULL: u32 = 1 << 7;
    /// Learned addresses.
    pub const LEARNED: u32 = 1 << 8;
    /// DNS over TCP: where the next answer starts is unknown.
    pub const TCP_BOUNDARY: u32 = 1 << 9;
    /// How many bits there are.
    pub const COUNT: u32 = 10;
}

/// What the learning function noted about the answer it read, in this
/// CPU's scratch, for [`ram_kernel_log`] to write once it has returned.
#[derive(Clone, Copy, Default)]
#[repr(C)]
pub struct Notes {
    /// [`why`] bits.
    pub why: u32,
    /// Length of the question's name (its key is in the scratch).
    pub text_len: u32,
    /// The client's port (for `UNTRUSTED_SOCKET`).
    pub port: u32,
    /// Addresses found, the cap, and those learned.
    pub found: u32,
    pub cap: u32,
    pub learned: u32,
}

/// `note!(|notes| ...)`: changes this CPU's [`Notes`], only while the log
/// is on (with it off, this is dead code the verifier removes).
#[cfg(feature = "kernel-log")]
macro_rules! note {
    (|$notes:ident| $body:expr) => {
        if aya_log_ebpf::macro_support::level_enabled(aya_log_ebpf::macro_support::Level::Debug) {
            if let Some(scratch) = crate::maps::RAM_SCRATCH.get_ptr_mut(0) {
                // SAFETY: this CPU's scratch; one program run uses it at a time.
                let $notes = unsafe { &mut (*scratch).notes };
                $body;
            }
        }
    };
}

#[cfg(not(feature = "kernel-log"))]
macro_rules! note {
    (|$notes:ident| $body:expr) => {{}};
}

/// `say!(ctx)`: writes the lines the learning function noted (or `say!(ctx,
/// WHY)`: that line alone), behind the level test so that with the log off
/// the call is dead code.
#[cfg(feature = "kernel-log")]
macro_rules! say {
    ($ctx:expr) => {
        if aya_log_ebpf::macro_support::level_enabled(aya_log_ebpf::macro_support::Level::Debug) {
            crate::diag::ram_kernel_log($ctx.skb.skb, 0);
        }
    };
    ($ctx:expr, $why:expr) => {
        if aya_log_ebpf::macro_support::level_enabled(aya_log_ebpf::macro_support::Level::Debug) {
            crate::diag::ram_kernel_log($ctx.skb.skb, $why);
        }
    };
}

#[cfg(not(feature = "kernel-log"))]
macro_rules! say {
    ($ctx:expr) => {{
        let _ = $ctx;
    }};
    ($ctx:expr, $why:expr) => {{
        let _ = ($ctx, $why);
    }};
}

pub(crate) use note;
pub(crate) use say;

#[cfg(feature = "kernel-log")]
pub use on::ram_kernel_log;

#[cfg(feature = "kernel-log")]
mod on {
    use aya_ebpf::{bindings::__sk_buff, macros::map, maps::PerCpuArray, programs::SkBuffContext};
    use aya_log_ebpf::debug;
    use ram_common::{
        bounded::{index, launder},
        name::{MAX_HOST_LEN, NAME_KEY_LEN},
    };

    use super::why;
    use crate::{
        maps::RAM_SCRATCH,
        queries::{header_address, packet_family},
        skb::source_at,
    };

    /// Bytes of the name buffer; a power of two for the index mask.
    const TEXT: usize = MAX_HOST_LEN as usize;

    /// A name that could not be read: as long as a real one (see
    /// `reading_order`).
    static NULS: [u8; TEXT] = [0; TEXT];

    /// Where the name is written in reading order, per CPU (the programs'
    /// stacks are full).
    #[map]
    static RAM_DIAG_TEXT: PerCpuArray<[u8; TEXT]> = PerCpuArray::with_max_entries(1, 0);

    /// Writes a line for each [`why`] bit of `only`, or, when `only` is 0,
    /// of the notes the learning function left in this CPU's scratch. A
    /// global function, called after the learning function has returned,
    /// so the two frames are never on the stack together (together they are
    /// over the BPF stack's 512 bytes under the TCP path). With the log off,
    /// its calls and body are dead code.
    #[no_mangle]
    #[inline(never)]
    pub extern "C" fn ram_kernel_log(skb: *mut __sk_buff, only: u32) -> u32 {
        let Some(scratch) = RAM_SCRATCH.get_ptr(0) else { return 0 };
        // SAFETY: this CPU's scratch; one program run uses it at a time.
        let mask = if only != 0 { only } else { unsafe { (*scratch).notes.why } };
        // One line per call of a global function: each call leaves this
        // frame as it was, so the verifier's paths through the bits meet
        // again after each (inline, older verifiers walked every subset of
        // the ten bits and went over their limit).
        for bit in 0..why::COUNT {
            if mask & (1 << bit) != 0 {
                ram_kernel_line(skb, 1 << bit);
            }
        }
        0
    }

    /// Writes the line for one [`why`] bit: the answer's resolver (the
    /// packet's source), the question's name and the counts from the notes
    /// in this CPU's scratch. A global function: the verifier checks it
    /// once, one arm per bit.
    #[no_mangle]
    #[inline(never)]
    pub extern "C" fn ram_kernel_line(skb: *mut __sk_buff, line: u32) -> u32 {
        let ctx = &SkBuffContext::new(skb);
        let Some(scratch) = RAM_SCRATCH.get_ptr(0) else { return 0 };
        // SAFETY: this CPU's scratch; one program run uses it at a time.
        let notes = unsafe { (*scratch).notes };
        let resolver = resolver_of(ctx);
        match line {
            why::UNTRUSTED_SOCKET => debug!(
                ctx,
                "answer from {:i} to port {}: not learned: not a socket of the trusted namespace that asked a resolver",
                resolver,
                notes.port
            ),
            why::QUESTION_UNREADABLE => debug!(
                ctx,
                "answer from {:i}: not learned: its question cannot be read (malformed, compressed, or a name over 128 characters)",
                resolver
            ),
            why::NOT_ALLOWED => debug!(
                ctx,
                "{} from {:i}: not learned: no rule of this target allows the name",
                name(notes.text_len),
                resolver
            ),
            why::UNMATCHED => debug!(
                ctx,
                "{} from {:i}: not learned: it answers no query this target sent (forged, to another socket, or later than answer_window)",
                name(notes.text_len),
                resolver
            ),
            why::RECORDS_MALFORMED => debug!(
                ctx,
                "{} from {:i}: not learned: its answer records are malformed",
                name(notes.text_len),
                resolver
            ),
            why::OFF_CHAIN => debug!(
                ctx,
                "{} from {:i}: records of names off the question's CNAME chain ignored",
                name(notes.text_len),
                resolver
            ),
            why::CAPPED => debug!(
                ctx,
                "{} from {:i}: {} addresses, more than addresses_per_answer ({}): the first learned",
                name(notes.text_len),
                resolver,
                notes.found,
                notes.cap
            ),
            why::MAP_FULL => debug!(
                ctx,
                "{} from {:i}: addresses not learned: the learned-address map is full (connects to them are denied)",
                name(notes.text_len),
                resolver
            ),
            why::LEARNED => debug!(
                ctx,
                "{} from {:i}: learned {} address(es)",
                name(notes.text_len),
                resolver,
                notes.learned
            ),
            why::TCP_BOUNDARY => debug!(
                ctx,
                "DNS over TCP from {:i}: not learned: where its next answer starts is unknown (split over segments, a gap, or a stream begun before ram)",
                resolver
            ),
            _ => {}
        }
        0
    }

    /// The packet's source as IPv6 (IPv4 as `::ffff:a.b.c.d`): one format
    /// serves both families.
    #[inline(always)]
    fn resolver_of(ctx: &SkBuffContext) -> [u8; 16] {
        let Some(family) = packet_family(ctx) else { return [0; 16] };
        let addr = header_address(ctx, family, source_at(family == 4)).unwrap_or([0; 16]);
        if family != 4 {
            return addr;
        }
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, addr[0], addr[1], addr[2], addr[3]]
    }

    /// The question's name in reading order, from its key in this CPU's
    /// scratch (the name reversed, see `ram_common::name`).
    #[inline(always)]
    fn name(text_len: u32) -> &'static str {
        // SAFETY: NUL bytes are UTF-8.
        let empty = unsafe { core::str::from_utf8_unchecked(&NULS) };
        let (Some(scratch), Some(out)) = (RAM_SCRATCH.get_ptr(0), RAM_DIAG_TEXT.get_ptr_mut(0)) else { return empty };
        // SAFETY: this CPU's scratch and buffer; one program run uses them
        // at a time on this CPU.
        let (key, out) = unsafe { (&(*scratch).key.data, &mut *out) };
        reading_order(key, text_len, out)
    }

    ///
    /// Always [`TEXT`] bytes long, padded with NUL bytes that ramd drops:
    /// a record of one constant size is one path for the verifier (with
    /// the name's own length, aya-log's buffer sizing split every line into
    /// several, and the learning function went over the verifier's limit).
    #[inline(always)]
    fn reading_order<'a>(key: &[u8; NAME_KEY_LEN], text_len: u32, out: &'a mut [u8; TEXT]) -> &'a str {
        let len = if text_len > TEXT as u32 { TEXT as u32 } else { text_len };
        for i in 0..TEXT as u32 {
            // Without a branch on `i < len`: each such branch told the
            // verifier something new about `len`, so no two of the 128
            // iterations' paths were alike and it walked them all.
            // Through memory, or LLVM turns the arithmetic back into the
            // comparison (and the branch).
            let mut slot = 0u32;
            let inside = launder(&mut slot, i.wrapping_sub(len)) >> 31; // 1 while i < len
            let keep = 0u8.wrapping_sub(inside as u8); // 0xff or 0
            // A label may hold any byte; a str must be UTF-8: ASCII is.
            // A byte past ASCII is written as `?`, without a branch (its
            // top bit cleared, it would read as another character: 0xae
            // as `.`, and `ghcr\xaeio` as ghcr.io). ramd shows every
            // byte that is not a hostname character as `?` too.
            let byte = key[index(len.wrapping_sub(1).wrapping_sub(i), NAME_KEY_LEN - 1)] as u32;
            let mut high_slot = 0u32;
            let high = launder(&mut high_slot, byte >> 7) & 1; // 1 past ASCII
            let high_mask = 0u32.wrapping_sub(high);
            let shown = (byte & !high_mask) | (b'?' as u32 & high_mask);
            out[index(i, TEXT - 1)] = (shown as u8) & keep & 0x7f;
        }
        // SAFETY: every byte of `out` is ASCII (above).
        unsafe { core::str::from_utf8_unchecked(out) }
    }
}
