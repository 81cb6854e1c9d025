//! The process allocator: glibc's malloc for the long-lived helper processes, mimalloc for the
//! command line.
//!
//! Loading a big project makes hundreds of thousands of small allocations, and mimalloc halves
//! their cost. The supervisor and the DNS resolver, which share this binary, have resident-memory
//! budgets of a few MiB that mimalloc's arenas would eat, so they never touch it: the command
//! line switches to mimalloc once it knows it is not one of them ([`use_fast_allocator`]).
//! Memory is always returned to the allocator that owns it, whichever mode is on by then.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, Ordering};

use mimalloc::MiMalloc;

static FAST: AtomicBool = AtomicBool::new(false);

/// mimalloc's `mi_option_allow_thp`: its position in `mi_option_t` of the mimalloc v3 source
/// `libmimalloc-sys` builds by default (it names no constant for it; a test checks the place).
const MI_OPTION_ALLOW_THP: libmimalloc_sys::mi_option_t = 43;
/// `mi_option_generic_collect`, whose distinctive default (10000) anchors that test.
#[cfg(test)]
const MI_OPTION_GENERIC_COLLECT: libmimalloc_sys::mi_option_t = 34;

/// Switches new allocations to mimalloc. Call once, early, from the command-line path only.
pub fn use_fast_allocator() {
    // Without this mimalloc marks its arenas MADV_HUGEPAGE, and the first touch of the heap
    // makes the kernel zero a 2 MiB page: about a tenth of a short command's time (`container
    // run` measured), for a process that uses a few hundred KiB.
    // SAFETY: sets a mimalloc option before mimalloc's first allocation in this process.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_ALLOW_THP, 0) };
    FAST.store(true, Ordering::Relaxed);
}

pub struct RoleAllocator;

fn owned_by_mimalloc(ptr: *mut u8) -> bool {
    // SAFETY: mi_is_in_heap_region only compares the address against mimalloc's own segment
    // map; it never dereferences `ptr`.
    unsafe { libmimalloc_sys::mi_is_in_heap_region(ptr.cast()) }
}

// SAFETY: every block is freed or resized by the allocator that handed it out (decided by
// address, not by the current mode), and both allocators honour `Layout` alignment.
unsafe impl GlobalAlloc for RoleAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if FAST.load(Ordering::Relaxed) {
            // SAFETY: forwarded with the caller's layout.
            unsafe { MiMalloc.alloc(layout) }
        } else {
            // SAFETY: forwarded with the caller's layout.
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if FAST.load(Ordering::Relaxed) {
            // SAFETY: forwarded with the caller's layout.
            unsafe { MiMalloc.alloc_zeroed(layout) }
        } else {
            // SAFETY: forwarded with the caller's layout.
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if owned_by_mimalloc(ptr) {
            // SAFETY: `ptr` came from mimalloc with this layout.
            unsafe { MiMalloc.dealloc(ptr, layout) }
        } else {
            // SAFETY: `ptr` came from the system allocator with this layout.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if owned_by_mimalloc(ptr) {
            // SAFETY: `ptr` came from mimalloc with this layout.
            unsafe { MiMalloc.realloc(ptr, layout, new_size) }
        } else {
            // SAFETY: `ptr` came from the system allocator with this layout; it stays there.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_thp_is_where_we_think() {
        // `generic_collect` defaults to 10000 and `allow_thp` to 0 or 1: both hold only if the
        // enum has the layout the constants assume.
        // SAFETY: reading options has no preconditions.
        unsafe {
            assert_eq!(
                libmimalloc_sys::mi_option_get(MI_OPTION_GENERIC_COLLECT),
                10_000
            );
            let v = libmimalloc_sys::mi_option_get(MI_OPTION_ALLOW_THP);
            assert!(v == 1 || v == 0, "allow_thp reads {v}");
        }
    }

    #[test]
    fn blocks_return_to_their_allocator() {
        let a = RoleAllocator;
        let layout = Layout::from_size_align(64, 16).unwrap();
        // SAFETY: test of the allocator contract: every block is freed once with its layout.
        unsafe {
            let sys = a.alloc(layout);
            assert!(!sys.is_null() && !owned_by_mimalloc(sys));
            let mi = MiMalloc.alloc(layout);
            assert!(owned_by_mimalloc(mi));
            let sys2 = a.realloc(sys, layout, 256);
            assert!(!owned_by_mimalloc(sys2));
            a.dealloc(sys2, Layout::from_size_align(256, 16).unwrap());
            let mi2 = a.realloc(mi, layout, 4096);
            assert!(owned_by_mimalloc(mi2));
            a.dealloc(mi2, Layout::from_size_align(4096, 16).unwrap());
        }
    }
}
