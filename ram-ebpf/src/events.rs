//! Getting events to ramd. The default object writes them into a ring
//! buffer (5.8+); the object built with the `perf-events` feature, for older
//! kernels, writes them into a per-CPU perf event array instead. Either way a
//! record that does not fit is counted (`events_lost`) and the verdict
//! stands: logging never holds up the kernel path.

use aya_ebpf::EbpfContext;
use ram_common::{
    event::{BlockedEvent, DnsEvent},
    maps::counter,
};

use crate::maps::count;

#[cfg(not(feature = "perf-events"))]
mod transport {
    use aya_ebpf::{macros::map, maps::RingBuf};
    use ram_common::maps::EVENTS_BYTES;

    use super::*;

    #[map]
    pub static RAM_EVENTS: RingBuf = RingBuf::with_byte_size(EVENTS_BYTES, 0);

    #[inline(always)]
    pub fn send_blocked<C: EbpfContext>(_ctx: &C, scope: u32, event: BlockedEvent) {
        match RAM_EVENTS.reserve::<BlockedEvent>(0) {
            Some(mut entry) => {
                entry.write(event);
                entry.submit(0);
            }
            None => count(scope, counter::EVENTS_LOST),
        }
    }

    /// Reserves a DNS event, lets `fill` write every field, sends it.
    #[inline(always)]
    pub fn send_dns<C: EbpfContext>(_ctx: &C, scope: u32, fill: impl FnOnce(*mut DnsEvent)) {
        match RAM_EVENTS.reserve::<DnsEvent>(0) {
            Some(mut entry) => {
                fill(entry.as_mut_ptr());
                entry.submit(0);
            }
            None => count(scope, counter::EVENTS_LOST),
        }
    }
}

#[cfg(feature = "perf-events")]
mod transport {
    use aya_ebpf::{
        bindings::BPF_F_CURRENT_CPU,
        helpers::generated::bpf_perf_event_output,
        macros::map,
        maps::{PerCpuArray, PerfEventArray},
    };

    use super::*;

    #[map]
    pub static RAM_PERF_EVENTS: PerfEventArray<u8> = PerfEventArray::new(0);

    /// A DNS event is too large for the stack; it is built here first.
    #[map]
    static RAM_DNS_EVENT: PerCpuArray<DnsEvent> = PerCpuArray::with_max_entries(1, 0);

    /// bpf_perf_event_output into this CPU's buffer; false when it is full
    /// (or ramd has no reader open).
    #[inline(always)]
    fn output<C: EbpfContext, T>(ctx: &C, data: *const T) -> bool {
        // SAFETY: the map static is the map definition the loader relocates
        // (PerfEventArray is a transparent wrapper of it); `data` points at
        // `size_of::<T>()` readable bytes.
        unsafe {
            bpf_perf_event_output(
                ctx.as_ptr(),
                core::ptr::from_ref(&RAM_PERF_EVENTS).cast_mut().cast(),
                BPF_F_CURRENT_CPU,
                data.cast_mut().cast(),
                core::mem::size_of::<T>() as u64,
            ) == 0
        }
    }

    #[inline(always)]
    pub fn send_blocked<C: EbpfContext>(ctx: &C, scope: u32, event: BlockedEvent) {
        if !output(ctx, &event) {
            count(scope, counter::EVENTS_LOST);
        }
    }

    #[inline(always)]
    pub fn send_dns<C: EbpfContext>(ctx: &C, scope: u32, fill: impl FnOnce(*mut DnsEvent)) {
        let Some(event) = RAM_DNS_EVENT.get_ptr_mut(0) else {
            return;
        };
        fill(event);
        if !output(ctx, event) {
            count(scope, counter::EVENTS_LOST);
        }
    }
}

pub use transport::{send_blocked, send_dns};
