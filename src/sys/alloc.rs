//! The allocator, tuned for one large scan.
//!
//! glibc gives each thread that allocates an arena of its own: a 64 MiB reservation that it makes
//! usable a few pages at a time, one `mprotect` each. Decoding a fleet of 10,000 certificates on
//! two helper threads grew their arenas some 11,000 times, which cost about as much system time
//! as reading every file. [`scan_mode`] keeps freed memory in the arenas (no trimming) and lets
//! a thread's arena serve allocations up to 32 MiB; [`reserve_arena`], called by each worker
//! thread before it works, then grows that thread's arena once, by most of its reservation.
//! Only address space is reserved: the pages are not touched, so resident memory is unchanged.
//! Other C libraries, and other allocators, are left as they are.

use std::sync::atomic::{AtomicBool, Ordering};

/// What a worker grows its arena by: most of glibc's 64 MiB heap, below the largest mmap
/// threshold it accepts (32 MiB), so that the block comes from the arena, not from mmap.
const RESERVE: usize = 30 << 20;

static SCAN_MODE: AtomicBool = AtomicBool::new(false);

/// Tunes the allocator for a process that builds one large structure and exits.
pub fn scan_mode() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes glibc's tunables; it is called before the workers start.
        let ok = unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30) == 1
        };
        SCAN_MODE.store(ok, Ordering::Relaxed);
    }
}

/// Grows this thread's arena once, up front, when [`scan_mode`] is on.
pub fn reserve_arena() {
    if SCAN_MODE.load(Ordering::Relaxed) {
        drop(std::hint::black_box(Vec::<u8>::with_capacity(RESERVE)));
    }
}
