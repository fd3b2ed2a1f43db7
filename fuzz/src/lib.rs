//! What every fuzz target shares: an allocator that turns unbounded allocation into a
//! crash the fuzzer records.
//!
//! A parser fed a lying length field must not reserve memory for it. The targets run
//! under [`Bounded`], which aborts the process (AFL++ saves the input as a crash) when
//! the bytes live at once would exceed [`LIMIT`]: far above what any input the fuzzer
//! makes (at most 1 MB) needs, far below what a length field can ask for.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The most bytes a target may hold allocated at once: 64 MiB.
pub const LIMIT: usize = 64 << 20;

/// The system allocator with a ceiling on live bytes.
#[derive(Debug)]
pub struct Bounded {
    live: AtomicUsize,
}

impl Bounded {
    /// A fresh allocator (use as `#[global_allocator] static A: Bounded = Bounded::new();`).
    pub const fn new() -> Self {
        Bounded {
            live: AtomicUsize::new(0),
        }
    }

    fn charge(&self, n: usize) {
        let now = self.live.fetch_add(n, Ordering::Relaxed) + n;
        if now > LIMIT {
            eprintln!("nsring-fuzz: {now} bytes allocated at once, above the {LIMIT} limit");
            std::process::abort();
        }
    }
}

impl Default for Bounded {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: every call is forwarded to `System` with the caller's layout and pointer
// unchanged; the counter only observes sizes.
unsafe impl GlobalAlloc for Bounded {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.charge(layout.size());
        // SAFETY: same contract as ours, forwarded.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.charge(layout.size());
        // SAFETY: same contract as ours, forwarded.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.live.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` of this allocator with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            self.charge(new_size - layout.size());
        } else {
            self.live
                .fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        // SAFETY: `ptr` came from this allocator with `layout`; forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
