//! The `saliency` command's memory allocator: `mimalloc`, told to keep what is freed for 10 s.
//!
//! Each tape op allocates its output and every backward its gradients, from a few bytes to a few
//! megabytes, on both training shards' threads at once, and frees them at the end of the step.
//! Two things make that slow with glibc's `malloc`, and `mimalloc` avoids both:
//!
//! - **Threads waiting on one lock.** With glibc's one arena for all threads, the two shards of
//!   a `deep` step waited on its lock about a dozen times a step (`matrixmultiply`'s packing
//!   buffers, which it allocates on every call, most of all), each wait a sleep and a wake-up.
//!   `mimalloc` serves each thread from its own heap.
//! - **Memory handed back and faulted in again.** Freed memory returned to the kernel page-faults
//!   and zero-fills on the next step. Told to wait 10 s before it returns freed memory
//!   ([`keep_freed_memory`]; its default is 1 s), `mimalloc` keeps it mapped for the next step,
//!   however slow the step, and still hands back what a finished stage of the study left.
//!
//! On the CPU of docs/performance.md this made a `deep` batch-16 training step about 15 % faster
//! and `alexnet`'s about 20 %, at the cost of more resident memory (freed blocks stay mapped, in
//! each thread's heap). Results never depend on it: it changes where buffers live, not what is
//! computed. A program that uses the library installs it as the `saliency` binary does:
//!
//! ```no_run
//! #[global_allocator]
//! static ALLOCATOR: saliency::allocator::MiMalloc = saliency::allocator::MiMalloc;
//!
//! fn main() {
//!     saliency::allocator::keep_freed_memory();
//!     // ... train, attribute ...
//! }
//! ```

/// `mimalloc`'s allocator, for `#[global_allocator]` (re-exported, so no second dependency).
pub use mimalloc::MiMalloc;

/// `mimalloc`'s option `mi_option_purge_delay`: its index in `mi_option_t` (`mimalloc.h` of the
/// pinned `libmimalloc-sys`, mimalloc v3), which the Rust bindings do not name.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long freed memory stays mapped before `mimalloc` returns it to the kernel, ms: longer
/// than any step, short against a study's stages. Against never returning it (slightly more
/// memory) and the default 1 s (the flower stages page-fault again), docs/performance.md.
const KEEP_MS: std::os::raw::c_long = 10_000;

/// Tells `mimalloc` to keep freed memory mapped for 10 s before returning it to the kernel.
/// Call once, early, before worker threads start; the `saliency` command does. Returns whether
/// the setting took.
pub fn keep_freed_memory() -> bool {
    // SAFETY: `mi_option_set` only stores an option value (an index within `mi_option_t`, a
    // value the option documents); it takes no pointers.
    unsafe {
        libmimalloc_sys::mi_option_set(PURGE_DELAY, KEEP_MS);
        libmimalloc_sys::mi_option_get(PURGE_DELAY) == KEEP_MS
    }
}

#[cfg(test)]
mod tests {
    /// The option is `mi_option_purge_delay`, whose default in this version is 1000 ms
    /// (`src/options.c`), and it takes the value.
    #[test]
    fn mimalloc_takes_the_purge_delay_setting() {
        // SAFETY: reads an option value.
        let default = unsafe { libmimalloc_sys::mi_option_get(super::PURGE_DELAY) };
        assert!(
            default == 1000 || default == super::KEEP_MS,
            "option {} is not the purge delay (default 1000 ms): {default}",
            super::PURGE_DELAY
        );
        assert!(super::keep_freed_memory());
    }
}
