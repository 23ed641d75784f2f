//! Feature preservation: the study's display of the loss gradient, clip(10 g / max(g), 0, 1), and
//! a number for "trained gradients show the image's edges": the correlation of |g| with the
//! image's Sobel edge map, for a trained and an untrained model.

use rayon::prelude::*;
use tensor::Tensor;

use super::attack::AttackConfig;
use super::check::{check_batch, check_inputs_in_unit_range, check_same_shape, per_image};
use super::edges::{luma, pearson, sobel_magnitude, spearman};
use super::gradient::loss_gradient_and_values;
use super::AdversarialError;
use crate::models::Model;

/// The study's brightening of the gradient image: 10 g / max(g).
pub const DISPLAY_GAIN: f32 = 10.0;

/// The study's gradient picture, per image: clip(10 g / max(g), 0, 1) with max(g) the signed
/// maximum over all elements of the image and g kept channel-wise (an RGB input gives an RGB
/// picture). Negative gradients show black; anything above a tenth of the maximum saturates.
///
/// An image whose gradient has no positive element (max(g) <= 0, e.g. g = 0) has nothing to
/// show at this scale and is all zeros (black) rather than NaN.
pub fn gradient_display(grad: &Tensor<f32>) -> Tensor<f32> {
    let mut out = Tensor::zeros(grad.shape());
    let per = per_image(grad);
    out.data_mut()
        .par_chunks_mut(per)
        .zip(grad.data().par_chunks(per))
        .for_each(|(o, g)| {
            let m = g.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            if m > 0.0 && m.is_finite() {
                for (oi, &gi) in o.iter_mut().zip(g) {
                    *oi = (DISPLAY_GAIN * gi / m).clamp(0.0, 1.0);
                }
            }
        });
    out
}

/// How well one gradient map follows its image's edges.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EdgeCorrelation {
    /// Pearson correlation of |g| (summed over channels) with the Sobel magnitude of the luma.
    pub pearson: f64,
    /// Spearman (rank) correlation of the same two maps.
    pub spearman: f64,
}

/// The correlation of one image's gradient magnitude sum_c |g_c| with the Sobel edge magnitude of
/// its gray (luma) image; `image` and `grad` are planar (C, H, W) with `shape` = [C, H, W].
/// `None` when undefined: a constant gradient map (e.g. zero) or an image without edges.
pub fn edge_correlation(image: &[f32], grad: &[f32], shape: [usize; 3]) -> Option<EdgeCorrelation> {
    let [c, h, w] = shape;
    let plane = h * w;
    let mut magnitude = vec![0.0f32; plane];
    for channel in grad.chunks_exact(plane.max(1)).take(c) {
        for (m, &g) in magnitude.iter_mut().zip(channel) {
            *m += g.abs();
        }
    }
    let edges = sobel_magnitude(&luma(image, c, h, w), h, w);
    Some(EdgeCorrelation {
        pearson: pearson(&magnitude, &edges)?,
        spearman: spearman(&magnitude, &edges)?,
    })
}

/// Edge correlations averaged over a set of images.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EdgeAgreement {
    /// Images looked at.
    pub n: usize,
    /// Images whose correlation is defined (the means are over these; 0 when there are none).
    pub defined: usize,
    /// Mean Pearson correlation.
    pub pearson: f64,
    /// Mean Spearman correlation.
    pub spearman: f64,
}

/// The mean edge correlation of the gradients `grads` of the images `inputs` (both (N, C, H, W)).
pub fn mean_edge_correlation(
    inputs: &Tensor<f32>,
    grads: &Tensor<f32>,
) -> Result<EdgeAgreement, AdversarialError> {
    check_same_shape("gradient", inputs, grads)?;
    let shape = inputs.shape();
    if shape.len() != 4 {
        return Err(AdversarialError::Shape {
            what: "inputs",
            expected: "a batch of shape (N, C, H, W)".into(),
            found: format!("{shape:?}"),
        });
    }
    let dims = [shape[1], shape[2], shape[3]];
    let per = per_image(inputs);
    // One result per image, in image order, then summed in that order: thread-independent.
    let each: Vec<Option<EdgeCorrelation>> = inputs
        .data()
        .par_chunks(per)
        .zip(grads.data().par_chunks(per))
        .map(|(a, g)| edge_correlation(a, g, dims))
        .collect();
    let defined: Vec<EdgeCorrelation> = each.iter().flatten().copied().collect();
    let k = defined.len().max(1) as f64;
    Ok(EdgeAgreement {
        n: shape[0],
        defined: defined.len(),
        pearson: defined.iter().map(|e| e.pearson).sum::<f64>() / k,
        spearman: defined.iter().map(|e| e.spearman).sum::<f64>() / k,
    })
}

/// The mean edge correlation of `model`'s loss gradients on `inputs` with their true `labels`.
pub fn model_edge_correlation(
    model: &Model<f32>,
    inputs: &Tensor<f32>,
    labels: &[usize],
    config: &AttackConfig,
) -> Result<EdgeAgreement, AdversarialError> {
    check_batch(model, inputs, labels)?;
    check_inputs_in_unit_range(inputs)?;
    let (g, _) = loss_gradient_and_values(model, inputs, labels, config.loss, config.batch)?;
    mean_edge_correlation(inputs, &g)
}

/// Edge agreement of a trained model's gradients next to an untrained one's.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FeaturePreservation {
    /// The trained model.
    pub trained: EdgeAgreement,
    /// The same architecture with fresh weights.
    pub untrained: EdgeAgreement,
}

/// The study's claim as numbers: the trained model's gradients follow the image's edges (high
/// correlation), an untrained model's do not (near zero). `untrained` is typically
/// `trained.kind.build(trained.input, trained.classes, seed)`.
pub fn compare_trained_untrained(
    trained: &Model<f32>,
    untrained: &Model<f32>,
    inputs: &Tensor<f32>,
    labels: &[usize],
    config: &AttackConfig,
) -> Result<FeaturePreservation, AdversarialError> {
    Ok(FeaturePreservation {
        trained: model_edge_correlation(trained, inputs, labels, config)?,
        untrained: model_edge_correlation(untrained, inputs, labels, config)?,
    })
}

/// A luma value at or below this is background (Fashion-MNIST's background is exactly 0).
pub const BACKGROUND_LUMA: f32 = 1.0 / 255.0;

/// Several readings of "the gradient shows the image's edges" for one image, each `None` where it
/// is undefined (a constant map). They separate what the plain edge correlation mixes up: where the
/// gradient is (on the object or in the background) and what it looks like there.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EdgeProbe {
    /// Pearson(sum_c |g_c|, Sobel(luma)): the plain edge correlation ([`edge_correlation`]).
    pub abs_vs_edges: Option<f64>,
    /// Pearson(sum_c g_c, Sobel(luma)): the signed gradient.
    pub signed_vs_edges: Option<f64>,
    /// Pearson(sum_c |g_c|, luma): the gradient against the image itself, not its edges.
    pub abs_vs_image: Option<f64>,
    /// Pearson(sum_c clip(10 g_c / max g, 0, 1), Sobel(luma)): the picture the study shows.
    pub display_vs_edges: Option<f64>,
    /// Pearson of the study's picture clip(10 g / max g, 0, 1) with the image, value by value
    /// over all channels: does the picture show the image's colors (or gray levels)?
    pub display_vs_colors: Option<f64>,
    /// Pearson(sum_c |g_c|, Sobel(luma)) over the object only: pixels with a non-background
    /// pixel in their 3x3 neighbourhood. Equal to `abs_vs_edges` on photos without a background.
    pub abs_vs_edges_on_object: Option<f64>,
    /// Share of sum |g| that lies on the background (3x3 neighbourhood all background);
    /// `None` for a zero gradient.
    pub background_share: Option<f64>,
    /// Share of the pixels that are background.
    pub background_pixels: f64,
}

/// The [`EdgeProbe`] of one planar (C, H, W) image and its gradient.
pub fn edge_probe(image: &[f32], grad: &[f32], shape: [usize; 3]) -> EdgeProbe {
    let [c, h, w] = shape;
    let plane = h * w;
    let mut abs = vec![0.0f32; plane];
    let mut signed = vec![0.0f32; plane];
    for channel in grad.chunks_exact(plane.max(1)).take(c) {
        for i in 0..plane {
            abs[i] += channel[i].abs();
            signed[i] += channel[i];
        }
    }
    let shown = gradient_display_one(grad);
    let mut display = vec![0.0f32; plane];
    for channel in shown.chunks_exact(plane.max(1)).take(c) {
        for (d, &v) in display.iter_mut().zip(channel) {
            *d += v;
        }
    }
    let gray = luma(image, c, h, w);
    let edges = sobel_magnitude(&gray, h, w);
    let background = background_mask(&gray, h, w);
    let object: Vec<usize> = (0..plane).filter(|&i| !background[i]).collect();
    let pick = |v: &[f32]| object.iter().map(|&i| v[i]).collect::<Vec<f32>>();
    let total: f64 = abs.iter().map(|&v| v as f64).sum();
    let on_background: f64 = abs
        .iter()
        .zip(&background)
        .filter(|(_, &b)| b)
        .map(|(&v, _)| v as f64)
        .sum();
    EdgeProbe {
        abs_vs_edges: pearson(&abs, &edges),
        signed_vs_edges: pearson(&signed, &edges),
        abs_vs_image: pearson(&abs, &gray),
        display_vs_edges: pearson(&display, &edges),
        display_vs_colors: pearson(&shown, image),
        abs_vs_edges_on_object: pearson(&pick(&abs), &pick(&edges)),
        background_share: (total > 0.0).then(|| on_background / total),
        background_pixels: background.iter().filter(|&&b| b).count() as f64 / plane.max(1) as f64,
    }
}

/// [`gradient_display`] of one image's gradient (all its channels).
fn gradient_display_one(g: &[f32]) -> Vec<f32> {
    let m = g.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if m > 0.0 && m.is_finite() {
        g.iter()
            .map(|&gi| (DISPLAY_GAIN * gi / m).clamp(0.0, 1.0))
            .collect()
    } else {
        vec![0.0; g.len()]
    }
}

/// Background pixels: every pixel of the 3x3 neighbourhood (inside the image) at or below
/// [`BACKGROUND_LUMA`]. A 3x3 conv reading such a neighbourhood sees only zeros.
fn background_mask(gray: &[f32], h: usize, w: usize) -> Vec<bool> {
    let mut out = vec![false; h * w];
    for y in 0..h {
        for x in 0..w {
            let mut all = true;
            for yy in y.saturating_sub(1)..(y + 2).min(h) {
                for xx in x.saturating_sub(1)..(x + 2).min(w) {
                    all &= gray[yy * w + xx] <= BACKGROUND_LUMA;
                }
            }
            out[y * w + x] = all;
        }
    }
    out
}

/// [`EdgeProbe`] readings averaged over a set of images: each mean is over the images where that
/// reading is defined (`NaN` when none is). JSON has no NaN: serde_json writes it as `null`,
/// which reads back as NaN, so a study step holding an undefined mean is reused, not redone.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EdgeProbeMeans {
    /// Images looked at.
    pub n: usize,
    /// Mean of [`EdgeProbe::abs_vs_edges`].
    #[serde(deserialize_with = "null_as_nan")]
    pub abs_vs_edges: f64,
    /// Mean of [`EdgeProbe::signed_vs_edges`].
    #[serde(deserialize_with = "null_as_nan")]
    pub signed_vs_edges: f64,
    /// Mean of [`EdgeProbe::abs_vs_image`].
    #[serde(deserialize_with = "null_as_nan")]
    pub abs_vs_image: f64,
    /// Mean of [`EdgeProbe::display_vs_edges`].
    #[serde(deserialize_with = "null_as_nan")]
    pub display_vs_edges: f64,
    /// Mean of [`EdgeProbe::display_vs_colors`].
    #[serde(default, deserialize_with = "null_as_nan")]
    pub display_vs_colors: f64,
    /// Mean of [`EdgeProbe::abs_vs_edges_on_object`].
    #[serde(deserialize_with = "null_as_nan")]
    pub abs_vs_edges_on_object: f64,
    /// Mean of [`EdgeProbe::background_share`].
    #[serde(deserialize_with = "null_as_nan")]
    pub background_share: f64,
    /// Mean of [`EdgeProbe::background_pixels`].
    #[serde(deserialize_with = "null_as_nan")]
    pub background_pixels: f64,
}

/// An f64 that may be `null` (serde_json's NaN), read as NaN.
pub(crate) fn null_as_nan<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(<Option<f64> as serde::Deserialize>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// The mean [`EdgeProbe`] of the gradients `grads` of the images `inputs` (both (N, C, H, W)),
/// summed in image order whatever the thread count.
pub fn mean_edge_probe(
    inputs: &Tensor<f32>,
    grads: &Tensor<f32>,
) -> Result<EdgeProbeMeans, AdversarialError> {
    check_same_shape("gradient", inputs, grads)?;
    let shape = inputs.shape();
    if shape.len() != 4 {
        return Err(AdversarialError::Shape {
            what: "inputs",
            expected: "a batch of shape (N, C, H, W)".into(),
            found: format!("{shape:?}"),
        });
    }
    let dims = [shape[1], shape[2], shape[3]];
    let per = per_image(inputs);
    let each: Vec<EdgeProbe> = inputs
        .data()
        .par_chunks(per)
        .zip(grads.data().par_chunks(per))
        .map(|(a, g)| edge_probe(a, g, dims))
        .collect();
    let mean = |f: &dyn Fn(&EdgeProbe) -> Option<f64>| {
        let v: Vec<f64> = each.iter().filter_map(f).collect();
        if v.is_empty() {
            f64::NAN
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    Ok(EdgeProbeMeans {
        n: each.len(),
        abs_vs_edges: mean(&|e| e.abs_vs_edges),
        signed_vs_edges: mean(&|e| e.signed_vs_edges),
        abs_vs_image: mean(&|e| e.abs_vs_image),
        display_vs_edges: mean(&|e| e.display_vs_edges),
        display_vs_colors: mean(&|e| e.display_vs_colors),
        abs_vs_edges_on_object: mean(&|e| e.abs_vs_edges_on_object),
        background_share: mean(&|e| e.background_share),
        background_pixels: mean(&|e| Some(e.background_pixels)),
    })
}

/// The mean [`EdgeProbe`] of `model`'s loss gradients on `inputs` with their true `labels`.
pub fn model_edge_probe(
    model: &Model<f32>,
    inputs: &Tensor<f32>,
    labels: &[usize],
    config: &AttackConfig,
) -> Result<EdgeProbeMeans, AdversarialError> {
    check_batch(model, inputs, labels)?;
    check_inputs_in_unit_range(inputs)?;
    let (g, _) = loss_gradient_and_values(model, inputs, labels, config.loss, config.batch)?;
    mean_edge_probe(inputs, &g)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 6x6 gray image: a bright 2x2 square in the middle of a zero background.
    fn square() -> Vec<f32> {
        (0..36)
            .map(|i| {
                let (y, x) = (i / 6, i % 6);
                if (2..4).contains(&y) && (2..4).contains(&x) {
                    1.0
                } else {
                    0.0
                }
            })
            .collect()
    }

    #[test]
    fn a_gradient_equal_to_the_edge_map_scores_one_everywhere_it_is_defined() {
        let img = square();
        let edges = sobel_magnitude(&img, 6, 6);
        let p = edge_probe(&img, &edges, [1, 6, 6]);
        assert!((p.abs_vs_edges.unwrap() - 1.0).abs() < 1e-12);
        assert!((p.signed_vs_edges.unwrap() - 1.0).abs() < 1e-12);
        // The negated map has the same |g| but the opposite sign.
        let neg: Vec<f32> = edges.iter().map(|v| -v).collect();
        let q = edge_probe(&img, &neg, [1, 6, 6]);
        assert!((q.abs_vs_edges.unwrap() - 1.0).abs() < 1e-12);
        assert!((q.signed_vs_edges.unwrap() + 1.0).abs() < 1e-12);
        // All-negative gradient: the study's picture is black, so its correlation is undefined.
        assert_eq!(q.display_vs_edges, None);
    }

    #[test]
    fn background_is_the_zero_neighbourhood_and_its_share_of_the_gradient_is_measured() {
        let img = square();
        // Rows 0 and 5 and columns 0 and 5 are two pixels from the square: background (20 of 36).
        let p = edge_probe(&img, &[1.0; 36], [1, 6, 6]);
        assert!((p.background_pixels - 20.0 / 36.0).abs() < 1e-12);
        assert!((p.background_share.unwrap() - 20.0 / 36.0).abs() < 1e-12);
        // A gradient only on the background puts all of its mass there.
        let g: Vec<f32> = (0..36).map(|i| if i < 6 { 1.0 } else { 0.0 }).collect();
        assert_eq!(edge_probe(&img, &g, [1, 6, 6]).background_share, Some(1.0));
        assert_eq!(
            edge_probe(&img, &[0.0; 36], [1, 6, 6]).background_share,
            None
        );
    }

    #[test]
    fn a_gradient_on_the_object_correlates_with_the_image_itself() {
        let img = square();
        let p = edge_probe(&img, &img, [1, 6, 6]);
        assert!((p.abs_vs_image.unwrap() - 1.0).abs() < 1e-12);
        // Its picture clip(10 g / max g) is the square itself: the colors agree exactly.
        assert!((p.display_vs_colors.unwrap() - 1.0).abs() < 1e-12);
        // A gradient on the background only shows the square's negative.
        let bg: Vec<f32> = img.iter().map(|v| 1.0 - v).collect();
        assert!((edge_probe(&img, &bg, [1, 6, 6]).display_vs_colors.unwrap() + 1.0).abs() < 1e-12);
    }

    #[test]
    fn an_undefined_mean_survives_a_round_trip_through_json() {
        let img = square();
        let inputs = Tensor::from_vec(&[1, 1, 6, 6], img).unwrap();
        let m = mean_edge_probe(&inputs, &Tensor::zeros(&[1, 1, 6, 6])).unwrap();
        assert!(m.abs_vs_edges.is_nan());
        let json = serde_json::to_string(&m).unwrap();
        assert!(json.contains("\"abs_vs_edges\":null"), "{json}");
        let back: EdgeProbeMeans = serde_json::from_str(&json).unwrap();
        assert!(back.abs_vs_edges.is_nan() && back.background_share.is_nan());
        assert_eq!(back.background_pixels, m.background_pixels);
    }

    #[test]
    fn means_skip_undefined_readings_and_are_thread_independent() {
        let img = square();
        let edges = sobel_magnitude(&img, 6, 6);
        let mut x = img.clone();
        x.extend(&img);
        let mut g = edges.clone();
        g.extend([0.0f32; 36]);
        let inputs = Tensor::from_vec(&[2, 1, 6, 6], x).unwrap();
        let grads = Tensor::from_vec(&[2, 1, 6, 6], g).unwrap();
        let m = mean_edge_probe(&inputs, &grads).unwrap();
        assert_eq!(m.n, 2);
        // The zero gradient has no defined correlation: the mean is the first image's alone.
        assert!((m.abs_vs_edges - 1.0).abs() < 1e-12);
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        assert_eq!(one.install(|| mean_edge_probe(&inputs, &grads).unwrap()), m);
    }
}
