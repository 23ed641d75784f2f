//! Deletion and insertion curves (Petsiuk et al. 2018, RISE): how the target's probability falls
//! as the pixels a map ranks highest are removed, or rises as they are put back.

use std::str::FromStr;

use tensor::{Float, Tensor};

use super::target::{scores, Score};
use super::{check_classes, check_inputs, AttributionError};
use crate::models::Model;

/// What a removed pixel becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Replacement {
    /// Zero (black), the study's baseline.
    #[default]
    Black,
    /// The image blurred by a Gaussian of standard deviation max(1, side / 14) pixels.
    Blur,
    /// The image's mean in each channel.
    Mean,
}

impl FromStr for Replacement {
    type Err = AttributionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "black" => Ok(Replacement::Black),
            "blur" => Ok(Replacement::Blur),
            "mean" => Ok(Replacement::Mean),
            other => Err(AttributionError::Option {
                option: "replacement",
                expected: "black, blur or mean".into(),
                found: format!("'{other}'"),
            }),
        }
    }
}

/// Settings of [`deletion_insertion`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CurveOptions {
    /// Points after the start: step k has removed (or inserted) round(k P / steps) of the P pixels.
    pub steps: usize,
    /// What removed pixels become.
    pub replacement: Replacement,
}

impl Default for CurveOptions {
    fn default() -> Self {
        CurveOptions {
            steps: 20,
            replacement: Replacement::Black,
        }
    }
}

/// Per image: the two curves (steps + 1 probabilities each) and their areas (trapezoids over
/// the removed share in [0, 1]). A faithful map has a small deletion area and a large insertion
/// area.
#[derive(Clone, Debug, PartialEq)]
pub struct Curves {
    /// Probability of the target after removing the top-ranked pixels.
    pub deletion: Vec<Vec<f64>>,
    /// Probability of the target after inserting the top-ranked pixels into the replacement.
    pub insertion: Vec<Vec<f64>>,
    /// Area under each deletion curve.
    pub deletion_area: Vec<f64>,
    /// Area under each insertion curve.
    pub insertion_area: Vec<f64>,
}

/// Deletion and insertion curves of `maps` ((N, 1, H, W) or shaped like the inputs; channels are
/// summed to rank pixels, highest value first, ties by position) for the softmax probability of
/// `classes[n]`.
pub fn deletion_insertion<T: Float>(
    model: &Model<T>,
    inputs: &Tensor<T>,
    classes: &[usize],
    maps: &Tensor<T>,
    options: &CurveOptions,
) -> Result<Curves, AttributionError> {
    let n = check_inputs(model, inputs)?;
    check_classes(classes, n, model.classes)?;
    let [c, h, w] = model.input;
    let plane = h * w;
    let mc = maps.shape().get(1).copied().unwrap_or(0);
    if maps.shape().len() != 4
        || maps.shape()[0] != n
        || maps.shape()[2..] != [h, w]
        || (mc != 1 && mc != c)
    {
        return Err(AttributionError::Shape {
            what: "maps",
            expected: [c, h, w],
            found: maps.shape().to_vec(),
        });
    }
    if options.steps == 0 || options.steps > plane {
        return Err(AttributionError::Option {
            option: "steps",
            expected: format!("from 1 to the {plane} pixels"),
            found: options.steps.to_string(),
        });
    }
    let per = c * plane;
    let mut curves = Curves {
        deletion: Vec::new(),
        insertion: Vec::new(),
        deletion_area: Vec::new(),
        insertion_area: Vec::new(),
    };
    for (i, &class) in classes.iter().enumerate() {
        let image = &inputs.data()[i * per..(i + 1) * per];
        let map = &maps.data()[i * mc * plane..(i + 1) * mc * plane];
        let mut importance = vec![0.0f64; plane];
        for ch in map.chunks_exact(plane) {
            for (s, &v) in importance.iter_mut().zip(ch) {
                *s += v.to_f64();
            }
        }
        let mut order: Vec<usize> = (0..plane).collect();
        order.sort_by(|&a, &b| importance[b].total_cmp(&importance[a]).then(a.cmp(&b)));
        let replaced = replacement(image, [c, h, w], options.replacement);
        let mut points = Vec::with_capacity(2 * (options.steps + 1) * per);
        for (from, to) in [(image, &replaced[..]), (&replaced[..], image)] {
            for k in 0..=options.steps {
                let count = (k * plane + options.steps / 2) / options.steps;
                let mut point = from.to_vec();
                for &p in &order[..count] {
                    for ch in 0..c {
                        point[ch * plane + p] = to[ch * plane + p];
                    }
                }
                points.extend(point);
            }
        }
        let x = Tensor::from_vec(&[2 * (options.steps + 1), c, h, w], points)?;
        let f = scores(
            model,
            &x,
            &vec![class; 2 * (options.steps + 1)],
            Score::Probability,
        )?;
        let (del, ins) = f.split_at(options.steps + 1);
        curves.deletion_area.push(area(del));
        curves.insertion_area.push(area(ins));
        curves.deletion.push(del.to_vec());
        curves.insertion.push(ins.to_vec());
    }
    Ok(curves)
}

/// The trapezoid area of equally spaced values over [0, 1].
fn area(v: &[f64]) -> f64 {
    let k = (v.len() - 1) as f64;
    v.windows(2).map(|p| (p[0] + p[1]) / 2.0).sum::<f64>() / k
}

/// The replacement image of `image` (C, H, W).
fn replacement<T: Float>(image: &[T], [c, h, w]: [usize; 3], how: Replacement) -> Vec<T> {
    let plane = h * w;
    match how {
        Replacement::Black => vec![T::ZERO; image.len()],
        Replacement::Mean => image
            .chunks_exact(plane)
            .flat_map(|ch| {
                let mean = ch.iter().map(|v| v.to_f64()).sum::<f64>() / plane as f64;
                std::iter::repeat_n(T::from_f64(mean), plane)
            })
            .collect(),
        Replacement::Blur => {
            let sigma = (h.min(w) as f64 / 14.0).max(1.0);
            let radius = (3.0 * sigma).ceil() as isize;
            let kernel: Vec<f64> = (-radius..=radius)
                .map(|d| (-(d * d) as f64 / (2.0 * sigma * sigma)).exp())
                .collect();
            let total: f64 = kernel.iter().sum();
            let mut out = Vec::with_capacity(image.len());
            for ch in image.chunks_exact(plane).take(c) {
                let pass = |src: &[f64], along_rows: bool| -> Vec<f64> {
                    let mut dst = vec![0.0; plane];
                    for y in 0..h as isize {
                        for x in 0..w as isize {
                            let mut s = 0.0;
                            for (k, d) in (-radius..=radius).enumerate() {
                                let (yy, xx) = if along_rows { (y, x + d) } else { (y + d, x) };
                                let yy = yy.clamp(0, h as isize - 1) as usize;
                                let xx = xx.clamp(0, w as isize - 1) as usize;
                                s += kernel[k] * src[yy * w + xx];
                            }
                            dst[y as usize * w + x as usize] = s / total;
                        }
                    }
                    dst
                };
                let src: Vec<f64> = ch.iter().map(|v| v.to_f64()).collect();
                let blurred = pass(&pass(&src, true), false);
                out.extend(blurred.into_iter().map(T::from_f64));
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replacements_and_areas() {
        let img = [0.0f64, 1.0, 1.0, 0.0];
        assert_eq!(
            replacement(&img, [1, 2, 2], Replacement::Mean),
            vec![0.5; 4]
        );
        assert_eq!(
            replacement(&img, [1, 2, 2], Replacement::Black),
            vec![0.0; 4]
        );
        let blur = replacement(&img, [1, 2, 2], Replacement::Blur);
        assert!(blur.iter().all(|&v| v > 0.0 && v < 1.0), "{blur:?}");
        // A constant image blurs to itself.
        let flat = replacement(&[0.3f64; 9], [1, 3, 3], Replacement::Blur);
        assert!(flat.iter().all(|v| (v - 0.3).abs() < 1e-12));
        assert_eq!(area(&[1.0, 0.0]), 0.5);
        assert_eq!(area(&[1.0, 1.0, 1.0]), 1.0);
        assert!("white"
            .parse::<Replacement>()
            .unwrap_err()
            .to_string()
            .contains("replacement"));
    }
}
