//! Memory access the eBPF verifier can follow: loop-carried values read
//! back from memory (so its states prune), and indexes it can always see
//! bounded. Used by the DNS parser and the name encoder alike.

/// Reads a loop-carried value back from memory so the verifier sees an
/// unknown (prunable) scalar instead of a distinct constant per iteration.
#[inline(always)]
pub fn get<T: Copy>(slot: &T) -> T {
    // SAFETY: `slot` is a valid, aligned reference.
    unsafe { core::ptr::read_volatile(slot) }
}

#[inline(always)]
pub fn put<T: Copy>(slot: &mut T, value: T) {
    // SAFETY: `slot` is a valid, aligned, exclusive reference.
    unsafe { core::ptr::write_volatile(slot, value) }
}

/// Passes a value through memory: every path that reaches this point leaves
/// with the same unknown (but re-checked) scalar, so the verifier explores
/// what follows once instead of once per incoming path.
#[inline(always)]
pub fn launder(slot: &mut u32, value: u32) -> u32 {
    put(slot, value);
    get(slot)
}

/// `value & mask` as an index the verifier can always see bounded.
///
/// LLVM drops a mask it can prove redundant (say, after `off < len` with
/// `len <= WINDOW`), leaving the verifier to prove the bound from the
/// comparison — which kernels before 5.16 cannot when `len` was spilled to
/// the stack as 32 bits ("unbounded memory access" on 5.10). Passing the
/// value through a volatile read hides it from LLVM, so the mask stays.
#[inline(always)]
pub fn index(value: u32, mask: usize) -> usize {
    let slot = value;
    // SAFETY: reads a local.
    let opaque = unsafe { core::ptr::read_volatile(&slot) };
    opaque as usize & mask
}
