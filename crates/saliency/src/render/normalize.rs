//! Scaling attribution maps into [0, 1] (or [-1, 1]) for display, keeping the scale they were divided by.

/// A map scaled for display, with the number it was divided by.
///
/// Every picture should state `scale` (in its caption or metadata): without it a reader cannot
/// compare two heat maps, since both always reach full brightness.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    /// The scaled values, in [0, 1] for non-negative maps and [-1, 1] for signed ones. Never NaN.
    pub values: Vec<f32>,
    /// What the map was divided by (0 when the map is all zero).
    pub scale: f32,
    /// A short name of the rule, for captions ("max-normalized", "percentile-clipped").
    pub method: &'static str,
    /// True when the map had nothing to show (every value zero or not finite).
    pub all_zero: bool,
}

impl Normalized {
    /// A caption fragment such as `max-normalized (scale 3.2e-2)` or `max-normalized (all zero)`.
    pub fn caption(&self) -> String {
        if self.all_zero {
            format!("{} (all zero)", self.method)
        } else {
            format!("{} (scale {:.1e})", self.method, self.scale)
        }
    }

    fn zeros(len: usize, method: &'static str) -> Self {
        Normalized {
            values: vec![0.0; len],
            scale: 0.0,
            method,
            all_zero: true,
        }
    }
}

/// Non-finite values are a bug upstream, but a figure must still be drawn: show them as zero.
fn finite_or_zero(v: f32) -> f32 {
    if v.is_finite() {
        v
    } else {
        0.0
    }
}

/// The study's normalization: divide by the largest value.
///
/// The study's maps (|ds/da| * a, occlusion) are non-negative, and for them this is exactly
/// `A / max(A)`. For signed maps we divide by the largest magnitude `max |v|` and keep the sign, so
/// the result lies in [-1, 1] and zero stays zero (dividing a signed map by its signed maximum would
/// push the negative side past -1). When every value is zero there is nothing to divide by: the
/// result is all zeros with `all_zero` set, never NaN.
pub fn max_normalize(map: &[f32]) -> Normalized {
    const METHOD: &str = "max-normalized";
    let scale = map
        .iter()
        .map(|&v| finite_or_zero(v).abs())
        .fold(0.0f32, f32::max);
    if scale <= 0.0 {
        return Normalized::zeros(map.len(), METHOD);
    }
    let values = map.iter().map(|&v| finite_or_zero(v) / scale).collect();
    Normalized {
        values,
        scale,
        method: METHOD,
        all_zero: false,
    }
}

/// Captum's display normalization: ignore the largest `outlier_share` of the attribution mass.
///
/// Following Captum's `_cumulative_sum_threshold` (default `outlier_perc = 2`, i.e. a share of
/// 0.02): sort |v| ascending, and take as `scale` the first value at which the running sum reaches
/// `(1 - outlier_share)` of the total. Note this is a quantile of the attribution *mass*, not of the
/// pixel count: a map whose mass sits in a few pixels clips only those. Values are then divided by
/// `scale` and clipped to [-1, 1], keeping their sign. `outlier_share` is clamped to [0, 0.99].
pub fn percentile_clip(map: &[f32], outlier_share: f32) -> Normalized {
    const METHOD: &str = "percentile-clipped";
    let share = if outlier_share.is_finite() {
        outlier_share.clamp(0.0, 0.99)
    } else {
        0.0
    };
    let mut magnitudes: Vec<f32> = map.iter().map(|&v| finite_or_zero(v).abs()).collect();
    magnitudes.sort_by(f32::total_cmp);
    // Sum in f64 and in sorted order, so the last running sum equals `total` exactly.
    let total: f64 = magnitudes.iter().map(|&m| m as f64).sum();
    if total <= 0.0 {
        return Normalized::zeros(map.len(), METHOD);
    }
    let threshold = total * (1.0 - share as f64);
    let mut running = 0.0f64;
    // The running sum reaches `total >= threshold` by the last element, so this always finds one;
    // the element where it first crosses a positive threshold is itself positive.
    let mut scale = magnitudes[magnitudes.len() - 1];
    for &m in &magnitudes {
        running += m as f64;
        if running >= threshold {
            scale = m;
            break;
        }
    }
    let values = map
        .iter()
        .map(|&v| (finite_or_zero(v) / scale).clamp(-1.0, 1.0))
        .collect();
    Normalized {
        values,
        scale,
        method: METHOD,
        all_zero: false,
    }
}

/// Sums a planar (C, H, W) map over its channels into an (H, W) map, as the study does to show an
/// RGB attribution as one heat map.
///
/// # Panics
/// If `map.len() != c * h * w`.
pub fn sum_channels(map: &[f32], c: usize, h: usize, w: usize) -> Vec<f32> {
    assert_eq!(
        map.len(),
        c * h * w,
        "sum_channels: map has {} values, expected c*h*w = {c}*{h}*{w}",
        map.len()
    );
    let plane = h * w;
    let mut out = vec![0.0f32; plane];
    for channel in map.chunks_exact(plane.max(1)).take(c) {
        for (o, &v) in out.iter_mut().zip(channel) {
            *o += v;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_normalize_divides_by_max() {
        let n = max_normalize(&[0.0, 1.0, 2.0, 4.0]);
        assert_eq!(n.values, vec![0.0, 0.25, 0.5, 1.0]);
        assert_eq!(n.scale, 4.0);
        assert!(!n.all_zero);
        assert_eq!(n.caption(), "max-normalized (scale 4.0e0)");
    }

    #[test]
    fn max_normalize_signed_uses_largest_magnitude() {
        // max |v| = 4 (from -4), so -4 -> -1 and 2 -> 0.5.
        let n = max_normalize(&[-4.0, 2.0, 0.0]);
        assert_eq!(n.values, vec![-1.0, 0.5, 0.0]);
        assert_eq!(n.scale, 4.0);
    }

    #[test]
    fn all_zero_map_gives_zeros_and_flag() {
        for n in [
            max_normalize(&[0.0; 9]),
            percentile_clip(&[0.0; 9], 0.02),
            max_normalize(&[f32::NAN, 0.0]),
        ] {
            assert!(n.all_zero, "{n:?}");
            assert_eq!(n.scale, 0.0);
            assert!(n.values.iter().all(|&v| v == 0.0), "{n:?}");
            assert!(n.caption().contains("all zero"));
        }
        assert!(max_normalize(&[]).all_zero);
    }

    #[test]
    fn percentile_clip_matches_captum_rule() {
        // |v| = 1..=100, total 5050; 98% of it is 4949. The running sum k(k+1)/2 first reaches
        // 4949 at k = 99 (4950; k = 98 gives 4851), so scale = 99: 100 clips to 1, 50 -> 50/99.
        let map: Vec<f32> = (1..=100).map(|k| k as f32).collect();
        let n = percentile_clip(&map, 0.02);
        assert_eq!(n.scale, 99.0);
        assert_eq!(n.values[99], 1.0);
        assert!((n.values[49] - 50.0 / 99.0).abs() < 1e-6);
        assert_eq!(n.method, "percentile-clipped");
        // Sign is kept and clipping is symmetric.
        let n = percentile_clip(&map.iter().map(|v| -v).collect::<Vec<_>>(), 0.02);
        assert_eq!(n.values[99], -1.0);
    }

    #[test]
    fn percentile_clip_with_no_outliers_is_max_normalize() {
        let map = [0.5f32, -2.0, 1.0];
        assert_eq!(
            percentile_clip(&map, 0.0).values,
            max_normalize(&map).values
        );
    }

    #[test]
    fn sum_channels_adds_planes() {
        // Two 1x2 planes: [1, 2] + [10, 20].
        assert_eq!(
            sum_channels(&[1.0, 2.0, 10.0, 20.0], 2, 1, 2),
            vec![11.0, 22.0]
        );
    }
}
