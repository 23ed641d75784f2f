//! Tunes glibc's `malloc` for a workload that frees and reallocates the same large buffers on
//! every step.
//!
//! Each tape op allocates its output and every backward its gradients, hundreds of kilobytes to a
//! few megabytes each, and frees them at the end of the step. With glibc's defaults a freed block
//! above the (dynamic) mmap threshold goes back to the kernel, and freed memory at the top of the
//! heap is trimmed once it exceeds 128 KiB, so the next step page-faults and zero-fills the same
//! memory again: a quarter of a `deep` training step and over half of batched inference went to
//! page faults, `clear_page` and `memset` (see `docs/performance.md`). Keeping freed memory in
//! the heap instead doubles inference and gradient throughput and speeds a training step by ~1.6x.
//! The cost is resident memory: freed blocks stay mapped (peak memory is about the same).

/// Largest block served from the heap rather than `mmap`: above every activation of a batch of
/// 1,000 Fashion-MNIST images (50 MB for `deep`'s first layer).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: i32 = 256 << 20;
/// Free memory at the top of the heap kept before it is returned to the kernel.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: i32 = 1 << 30;
/// One arena for all threads. Commands run on a rayon worker (`cli::common::on_pool`), and a
/// worker's own arena is a 64 MiB heap that cannot hold a batch-1000 activation (50 MB), so those
/// fell back to `mmap` and page faults again (batched inference ran at half speed); the main
/// arena's heap grows as needed. Two threads contend little for its lock.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENAS: i32 = 1;
/// Extra memory requested whenever the heap grows, so growth happens in few large steps.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TOP_PAD: i32 = 64 << 20;

/// Applies the settings above (glibc on Linux; elsewhere nothing). Call once, early, before
/// worker threads start; the `saliency` command does. Returns whether every setting was accepted.
/// Results never depend on it: it changes where buffers live, not what is computed.
pub fn keep_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes allocator parameters; it is called before other threads
        // exist, and each value lies in the range glibc documents for its parameter.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
                && libc::mallopt(libc::M_TOP_PAD, TOP_PAD) == 1
                && libc::mallopt(libc::M_ARENA_MAX, ARENAS) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_accepts_every_setting() {
        assert!(super::keep_freed_memory());
    }
}
