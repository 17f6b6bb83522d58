//! A counting global allocator: the live bytes and the peak of the current thread, so
//! the runner can fail an input whose decoding allocated more than its target allows.
//!
//! The counters are per thread (tests run targets on several threads at once), kept in
//! `const`-initialised thread locals that never allocate themselves. Memory freed on
//! another thread than the one that allocated it is counted where it is freed; the
//! targets run single-threaded, so this does not blur their figures.
//!
//! Install it in a binary or test with
//! `#[global_allocator] static A: fuzz::alloc::Counting = fuzz::alloc::Counting;`.
//! Without it, [`peak_since_reset`] reports zero and the allocation check passes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static BASE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn grow(bytes: usize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get().saturating_add(bytes as isize);
        live.set(now);
        let _ = PEAK.try_with(|peak| {
            if now > peak.get() {
                peak.set(now);
            }
        });
    });
}

fn shrink(bytes: usize) {
    let _ = LIVE.try_with(|live| live.set(live.get().saturating_sub(bytes as isize)));
}

/// Start a measurement on this thread: the peak is reset to the bytes live now.
pub fn reset() {
    let now = LIVE.try_with(Cell::get).unwrap_or(0);
    let _ = BASE.try_with(|b| b.set(now));
    let _ = PEAK.try_with(|p| p.set(now));
}

/// The most bytes live at once on this thread since [`reset`], above what was live at
/// the reset.
pub fn peak_since_reset() -> usize {
    let base = BASE.try_with(Cell::get).unwrap_or(0);
    let peak = PEAK.try_with(Cell::get).unwrap_or(0);
    usize::try_from(peak.saturating_sub(base)).unwrap_or(0)
}

/// The system allocator, counting what it hands out per thread.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counting;

// SAFETY (for the whole impl): every method forwards to `System` with the caller's
// arguments unchanged, so `System`'s guarantees are ours; the counting beside it only
// touches const-initialised thread-local `Cell`s, which never allocate or unwind.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged (see above).
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged (see above).
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged (see above).
        unsafe { System.dealloc(ptr, layout) };
        shrink(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged (see above).
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // Both blocks may be live during the move; count the new one first so the
            // peak sees the worst case.
            grow(new_size);
            shrink(layout.size());
        }
        p
    }
}
