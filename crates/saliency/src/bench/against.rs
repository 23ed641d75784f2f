//! `bench --against`: a second workload timed in the same process, its rounds alternating with
//! the first's, and the ratio of their speeds taken round by round.
//!
//! On a shared machine the speed of a whole process drifts by more than the few percent two
//! workloads may differ by; two rounds run back to back see the same machine, so the median of
//! the per-round ratios is steadier than the ratio of two processes' medians.

use super::Workload;

/// The second workload's measurement and the ratio of the two.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Against {
    /// The workload compared against.
    pub workload: Workload,
    /// Its median images per second.
    pub images_per_second: f64,
    /// Its calls per round.
    pub calls_per_round: usize,
    /// Its rate in every round, in order.
    pub samples: Vec<f64>,
    /// Gradients each image of the first and of the second workload costs
    /// ([`gradients_per_image`]).
    pub gradients_per_image: [f64; 2],
    /// Median over rounds of (first's gradients per second) / (second's): above 1, the first
    /// workload computes a gradient faster.
    pub ratio: f64,
    /// Smallest per-round ratio.
    pub ratio_min: f64,
    /// Largest per-round ratio.
    pub ratio_max: f64,
}

impl Against {
    /// The comparison of per-round rates `first` and `second` (images per second).
    pub(super) fn new(
        workload: Workload,
        gradients_per_image: [f64; 2],
        first: &[f64],
        second: &[f64],
        calls_per_round: usize,
    ) -> Self {
        let ratios: Vec<f64> = first
            .iter()
            .zip(second)
            .map(|(a, b)| a * gradients_per_image[0] / (b * gradients_per_image[1]))
            .collect();
        Against {
            workload,
            images_per_second: super::median(second),
            calls_per_round,
            samples: second.to_vec(),
            gradients_per_image,
            ratio: super::median(&ratios),
            ratio_min: ratios.iter().copied().fold(f64::INFINITY, f64::min),
            ratio_max: ratios.iter().copied().fold(0.0, f64::max),
        }
    }
}

/// The input gradients one image of `workload` costs: 50 for `smoothgrad-50`, the path's
/// points for `integrated-gradients`, 1 for the other attribution and attack workloads. For
/// training, inference and occlusion it is 1 as well, so their ratios are per image.
pub fn gradients_per_image(workload: Workload, ig_steps: usize) -> f64 {
    match workload {
        Workload::Smoothgrad50 => 50.0,
        Workload::IntegratedGradients => ig_steps as f64,
        _ => 1.0,
    }
}
