//! Helpers for numeric tests: closeness checks that name the worst element, running code on
//! a pool of a given size (for the thread-count independence tests), and skipping a tier's test
//! out loud where the CPU lacks the tier.

use std::io::Write;

use crate::cpu::Tier;
use crate::Float;

/// True when this CPU runs `tier`. Otherwise writes `SKIPPED <test>: CPU lacks <features>` to
/// the process's stderr directly (past the test harness's capture, so the line shows in the
/// test output even though the test passes) and returns false: the caller returns at once.
/// Tests that call it name the tier they need (`..._needs_avx512`). Each line is written once
/// per process, so a property test that asks once per case reports its skip once.
pub fn require_tier(tier: Tier, test: &str) -> bool {
    if tier.supported() {
        return true;
    }
    static SAID: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let line = format!("SKIPPED {test}: CPU lacks {}\n", tier.needs());
    // a poisoned list (a test panicked while holding it) still holds what was said
    let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
    if !said.contains(&line) {
        // a failed write to stderr leaves nothing better to report to
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
        said.push(line);
    }
    false
}

/// The tiers this CPU runs other than [`Tier::Portable`]: the ones to compare with it.
pub fn fast_tiers() -> Vec<Tier> {
    crate::cpu::supported_tiers()
        .into_iter()
        .filter(|&t| t != Tier::Portable)
        .collect()
}

/// Compares `got` with `want` elementwise under `|g - w| <= atol + rtol * |w|`.
/// On failure the message names the worst element, its index, both values and the tolerance.
pub fn assert_close<T: Float>(what: &str, got: &[T], want: &[T], atol: f64, rtol: f64) {
    if let Err(msg) = check_close(what, got, want, atol, rtol) {
        panic!("{msg}");
    }
}

/// Like [`assert_close`] but returns the message instead of panicking (for proptest).
pub fn check_close<T: Float>(
    what: &str,
    got: &[T],
    want: &[T],
    atol: f64,
    rtol: f64,
) -> Result<(), String> {
    if got.len() != want.len() {
        return Err(format!(
            "{what}: length {} vs expected {}",
            got.len(),
            want.len()
        ));
    }
    let mut worst: Option<(usize, f64)> = None;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let (g, w) = (g.to_f64(), w.to_f64());
        let excess = (g - w).abs() - (atol + rtol * w.abs());
        // Written as `!(excess <= 0)` so that a NaN difference counts as a failure.
        #[allow(clippy::neg_cmp_op_on_partial_ord)]
        let failed = !(excess <= 0.0);
        if failed && worst.is_none_or(|(_, e)| excess > e || excess.is_nan()) {
            worst = Some((
                i,
                if excess.is_nan() {
                    f64::INFINITY
                } else {
                    excess
                },
            ));
        }
    }
    match worst {
        None => Ok(()),
        Some((i, _)) => Err(format!(
            "{what}: worst element {i}: got {:e}, expected {:e} (atol {atol:e}, rtol {rtol:e}, {} elements)",
            got[i].to_f64(),
            want[i].to_f64(),
            got.len()
        )),
    }
}

/// Runs `f` on a fresh rayon pool of `threads` threads and returns its result.
pub fn in_pool<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a test thread pool")
        .install(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn require_tier_passes_a_supported_tier_and_refuses_a_missing_one() {
        assert!(require_tier(Tier::Portable, "portable"));
        // no CPU has both: x86-64 lacks neon, aarch64 lacks avx512
        let missing = if Tier::Neon.supported() {
            Tier::Avx512
        } else {
            Tier::Neon
        };
        assert!(!require_tier(missing, "a test of the skip line itself"));
        assert!(!fast_tiers().contains(&Tier::Portable));
        assert!(!fast_tiers().contains(&missing));
    }
}
