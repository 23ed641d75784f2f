//! Helpers for numeric tests: closeness checks that name the worst element, and running code on
//! a pool of a given size (for the thread-count independence tests).

use crate::Float;

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
