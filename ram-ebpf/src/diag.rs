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
//! Every line is written by one out-of-line function, [`write_line`], so its
//! stack frame (aya-log's record) is its own and exists only when called:
//! inline, the log calls made the learning function's frame too big for the
//! BPF stack.
//!
//! Only the ring-buffer object has them (feature `kernel-log`): aya-log
//! writes to a BPF ring buffer (Linux 5.8+); in the perf-event object for
//! older kernels `say!` expands to nothing.

/// Why an answer taught what it did (the `why` of [`write_line`]).
pub mod why {
    /// To a socket that is not a DNS socket of the trusted namespace.
    pub const UNTRUSTED_SOCKET: u32 = 1;
    /// Its question cannot be read.
    pub const QUESTION_UNREADABLE: u32 = 2;
    /// No rule of the target allows the name.
    pub const NOT_ALLOWED: u32 = 3;
    /// It answers no query the target sent.
    pub const UNMATCHED: u32 = 4;
    /// Its answer records are malformed.
    pub const RECORDS_MALFORMED: u32 = 5;
    /// Records of other names than the question's chain (ignored).
    pub const OFF_CHAIN: u32 = 6;
    /// More addresses than `addresses_per_answer` (`a` of them, cap `b`).
    pub const CAPPED: u32 = 7;
    /// The learned-address map is full.
    pub const MAP_FULL: u32 = 8;
    /// Learned `a` addresses.
    pub const LEARNED: u32 = 9;
    /// DNS over TCP: where the next answer starts is unknown.
    pub const TCP_BOUNDARY: u32 = 10;
}

/// `say!(ctx, why, text_len, a, b)`: one kernel log line (see [`write_line`]),
/// behind the level test so that with the log off the call is dead code.
#[cfg(feature = "kernel-log")]
macro_rules! say {
    ($ctx:expr, $why:expr, $text_len:expr, $a:expr, $b:expr) => {
        if aya_log_ebpf::macro_support::level_enabled(aya_log_ebpf::macro_support::Level::Debug) {
            crate::diag::write_line($ctx, $why, $text_len, $a, $b);
        }
    };
}

#[cfg(not(feature = "kernel-log"))]
macro_rules! say {
    ($ctx:expr, $why:expr, $text_len:expr, $a:expr, $b:expr) => {{
        let _ = ($ctx, $why, $text_len, $a, $b);
    }};
}

pub(crate) use say;

#[cfg(feature = "kernel-log")]
pub use on::write_line;

#[cfg(feature = "kernel-log")]
mod on {
    use aya_ebpf::{macros::map, maps::PerCpuArray, programs::SkBuffContext};
    use aya_log_ebpf::debug;
    use ram_common::{
        bounded::{get, index},
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

    /// Where the name is written in reading order, per CPU (the programs'
    /// stacks are full).
    #[map]
    static RAM_DIAG_TEXT: PerCpuArray<[u8; TEXT]> = PerCpuArray::with_max_entries(1, 0);

    /// Writes the line for `why` about the answer in this packet: its
    /// resolver (the packet's source), and the question's name when
    /// `text_len` is not 0 (its key is in this CPU's scratch), with `a` and
    /// `b` as `why` says.
    #[inline(never)]
    pub fn write_line(ctx: &SkBuffContext, why: u32, text_len: u32, a: u32, b: u32) {
        let resolver = resolver_of(ctx);
        let name = name(text_len);
        match why {
            why::UNTRUSTED_SOCKET => debug!(
                ctx,
                "answer from {:i} to port {}: not learned: not a socket of the trusted namespace that asked a resolver",
                resolver,
                a
            ),
            why::QUESTION_UNREADABLE => debug!(
                ctx,
                "answer from {:i}: not learned: its question cannot be read (malformed, compressed, or a name over 128 characters)",
                resolver
            ),
            why::NOT_ALLOWED => {
                debug!(ctx, "{} from {:i}: not learned: no rule of this target allows the name", name, resolver)
            }
            why::UNMATCHED => debug!(
                ctx,
                "{} from {:i}: not learned: it answers no query this target sent (forged, to another socket, or later than answer_window)",
                name,
                resolver
            ),
            why::RECORDS_MALFORMED => {
                debug!(ctx, "{} from {:i}: not learned: its answer records are malformed", name, resolver)
            }
            why::OFF_CHAIN => {
                debug!(ctx, "{} from {:i}: records of names off the question's CNAME chain ignored", name, resolver)
            }
            why::CAPPED => debug!(
                ctx,
                "{} from {:i}: {} addresses, more than addresses_per_answer ({}): the first learned",
                name,
                resolver,
                a,
                b
            ),
            why::MAP_FULL => debug!(
                ctx,
                "{} from {:i}: an address not learned: the learned-address map is full (connects to it are denied)",
                name,
                resolver
            ),
            why::LEARNED => debug!(ctx, "{} from {:i}: learned {} address(es)", name, resolver, a),
            why::TCP_BOUNDARY => debug!(
                ctx,
                "DNS over TCP from {:i}: not learned: where its next answer starts is unknown (split over segments, a gap, or a stream begun before ram)",
                resolver
            ),
            _ => {}
        }
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
        let (Some(scratch), Some(out)) = (RAM_SCRATCH.get_ptr(0), RAM_DIAG_TEXT.get_ptr_mut(0)) else { return "" };
        // SAFETY: this CPU's scratch and buffer; one program run uses them
        // at a time on this CPU.
        let (key, out) = unsafe { (&(*scratch).key.data, &mut *out) };
        reading_order(key, text_len, out)
    }

    #[inline(always)]
    fn reading_order<'a>(key: &[u8; NAME_KEY_LEN], text_len: u32, out: &'a mut [u8; TEXT]) -> &'a str {
        let len = if text_len > TEXT as u32 { TEXT as u32 } else { text_len };
        for i in 0..TEXT as u32 {
            if i >= len {
                break;
            }
            let byte = key[index(len - 1 - i, NAME_KEY_LEN - 1)];
            // A label may hold any byte; the log line takes printable ASCII.
            out[index(i, TEXT - 1)] = if byte.is_ascii_graphic() { byte } else { b'?' };
        }
        let len = core::cmp::min(get(&len), TEXT as u32) as usize;
        let text = out.get(..len).unwrap_or(&[]);
        // SAFETY: every byte of `text` is printable ASCII (written above).
        unsafe { core::str::from_utf8_unchecked(text) }
    }
}
