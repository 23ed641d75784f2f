//! Figures: the study's adversarial triptychs (input | perturbation | perturbed input) and the
//! flip-rate against eps plot of every method and control.

use image::RgbImage;
use tensor::Tensor;

use super::attack::{attack, AttackConfig};
use super::check::per_image;
use super::prediction::{predict, Prediction};
use super::stats::AttackStats;
use super::{AdversarialError, Method};
use crate::models::Model;
use crate::render::{
    grid, input_to_rgb, line_plot_svg, signed_to_rgb, title_bar, upscale_nearest, verdict_color,
    with_colour_bar, ColorMap, Series, Tile, BLACK, WHITE,
};

/// Small images are enlarged to at least this many pixels a side (a 28x28 image 8x), so the
/// perturbation's pixels can be seen.
const MIN_TILE: usize = 224;

/// One row of the figure: a clean input, its perturbed version and what the model says of each.
#[derive(Clone, Copy, Debug)]
pub struct Triptych<'a> {
    /// The clean image, planar (C, H, W).
    pub input: &'a [f32],
    /// The perturbed image, same layout.
    pub perturbed: &'a [f32],
    /// The true class, if known (captions turn green when a prediction equals it, red otherwise).
    pub label: Option<usize>,
    /// The prediction on the clean image.
    pub before: Prediction,
    /// The prediction on the perturbed image.
    pub after: Prediction,
}

/// The brightening factor that shows a perturbation of largest magnitude `max_abs` across most of
/// the gray range: 0.45 / max_abs (so the extremes land near 0.05 and 0.95, still apart from a
/// black background) rounded down to 1, 2, 2.5, 4 or 5 times a power of ten, so captions read
/// "x40" rather than "x44.9". 1 when there is no perturbation.
pub fn nice_gain(max_abs: f32) -> f32 {
    if !(max_abs > 0.0 && max_abs.is_finite()) {
        return 1.0;
    }
    let raw = 0.45 / max_abs as f64;
    let decade = 10f64.powf(raw.log10().floor());
    // The tolerance absorbs f32 rounding of max_abs (0.1f32 is 0.100000001).
    let mantissa = [5.0, 4.0, 2.5, 2.0, 1.0]
        .into_iter()
        .find(|&m| m * decade <= raw * (1.0 + 1e-4))
        .unwrap_or(1.0);
    (mantissa * decade) as f32
}

/// "Sneaker 97.3%".
fn prediction_text(p: &Prediction, class_names: &[String]) -> String {
    let name = class_names
        .get(p.class)
        .cloned()
        .unwrap_or_else(|| format!("class {}", p.class));
    format!("{name} {:.1}%", 100.0 * p.confidence)
}

/// The color of a prediction's caption: green if right, red if wrong, white with no label.
fn verdict(p: &Prediction, label: Option<usize>) -> [u8; 3] {
    label.map_or(WHITE, |y| verdict_color(p.class == y))
}

/// The three tiles of one triptych, as the study draws them: the input with its class and
/// confidence; the perturbation a' - a shown as 0.5 + gain * (a' - a) (zero is mid gray, the
/// factor in the caption); the perturbed input with its class and confidence. `shape` is
/// [C, H, W]; images with other than 1 or 3 channels show their first channel.
pub fn triptych_tiles(
    t: &Triptych,
    shape: [usize; 3],
    class_names: &[String],
    gain: f32,
) -> [Tile; 3] {
    let [c, h, w] = shape;
    let plane = h * w;
    let channels = if c == 3 { 3 } else { 1 };
    let shown = |v: &[f32]| -> Vec<f32> { v[..channels * plane].to_vec() };
    let factor = MIN_TILE.div_ceil(h.max(w).max(1)).max(1) as u32;
    let delta: Vec<f32> = t
        .perturbed
        .iter()
        .zip(t.input)
        .map(|(&p, &a)| p - a)
        .collect();
    let up = |img: RgbImage| upscale_nearest(&img, factor);
    [
        Tile::new(up(input_to_rgb(&shown(t.input), channels, h, w)))
            .line("input", WHITE)
            .line(
                prediction_text(&t.before, class_names),
                verdict(&t.before, t.label),
            ),
        Tile::new(up(signed_to_rgb(&shown(&delta), channels, h, w, gain)))
            .line(format!("perturbation x{gain}"), WHITE)
            .line("0 = mid gray", WHITE),
        Tile::new(up(input_to_rgb(&shown(t.perturbed), channels, h, w)))
            .line("perturbed", WHITE)
            .line(
                prediction_text(&t.after, class_names),
                verdict(&t.after, t.label),
            ),
    ]
}

/// One triptych per row under `title`, with a gray colour bar beneath giving the perturbation's
/// scale: black is a' - a = -0.5 / gain, mid gray 0, white +0.5 / gain (per channel on colour
/// images). With `gain` None, one factor for the whole figure is chosen by [`nice_gain`] from the
/// largest perturbation, so rows can be compared; the title should say which method and eps made
/// the perturbations.
pub fn triptych_grid(
    items: &[Triptych],
    shape: [usize; 3],
    class_names: &[String],
    title: &str,
    gain: Option<f32>,
) -> RgbImage {
    let gain = gain.unwrap_or_else(|| {
        let max_abs = items
            .iter()
            .flat_map(|t| {
                t.perturbed
                    .iter()
                    .zip(t.input)
                    .map(|(&p, &a)| (p - a).abs())
            })
            .fold(0.0f32, f32::max);
        nice_gain(max_abs)
    });
    let tiles: Vec<Tile> = items
        .iter()
        .flat_map(|t| triptych_tiles(t, shape, class_names, gain))
        .collect();
    let reach = 0.5 / gain;
    let body = with_colour_bar(
        &grid(&tiles, 3, 6, BLACK),
        ColorMap::Gray,
        &format!("a' - a: -{reach}"),
        &format!("+{reach}"),
    );
    title_bar(&body, title)
}

/// Attacks `inputs` with `method` at `eps` and draws one triptych per image, titled with the
/// method, its formula and eps (and "clipped" when clipping is on).
pub fn adversarial_figure(
    model: &Model<f32>,
    method: Method,
    inputs: &Tensor<f32>,
    labels: &[usize],
    eps: f64,
    config: &AttackConfig,
    class_names: &[String],
) -> Result<RgbImage, AdversarialError> {
    let perturbed = attack(model, method, inputs, labels, eps, config)?;
    let before = predict(model, inputs, config.batch)?;
    let after = predict(model, &perturbed, config.batch)?;
    let per = per_image(inputs);
    let items: Vec<Triptych> = (0..labels.len())
        .map(|i| Triptych {
            input: &inputs.data()[i * per..(i + 1) * per],
            perturbed: &perturbed.data()[i * per..(i + 1) * per],
            label: Some(labels[i]),
            before: before[i],
            after: after[i],
        })
        .collect();
    let clip = if config.clip { ", clipped" } else { "" };
    let title = format!("{method}: {} (eps {eps}{clip})", method.formula());
    Ok(triptych_grid(
        &items,
        model.input,
        class_names,
        &title,
        None,
    ))
}

/// Line colors (matplotlib's tab10), one per method in order of first appearance.
pub(crate) const COLORS: [&str; 10] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

/// The share of flipped predictions against eps, one line per method, controls dashed, as a
/// standalone SVG. The x axis is logarithmic when the positive eps span a decade or more (eps = 0
/// points are then left out).
pub fn flip_rate_plot(stats: &[AttackStats], title: &str) -> String {
    let mut methods: Vec<&str> = Vec::new();
    for s in stats {
        if !methods.contains(&s.method.as_str()) {
            methods.push(&s.method);
        }
    }
    let series: Vec<Series> = methods
        .iter()
        .enumerate()
        .map(|(i, &name)| {
            let control = name.parse::<Method>().is_ok_and(|m| m.is_control());
            Series {
                label: if control {
                    format!("{name} (control)")
                } else {
                    name.to_string()
                },
                points: stats
                    .iter()
                    .filter(|s| s.method == name)
                    .map(|s| (s.epsilon, s.flipped_fraction))
                    .collect(),
                color: COLORS[i % COLORS.len()].to_string(),
                dashed: control,
            }
        })
        .collect();
    let positive: Vec<f64> = stats
        .iter()
        .map(|s| s.epsilon)
        .filter(|&e| e > 0.0)
        .collect();
    let lo = positive.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = positive.iter().copied().fold(0.0f64, f64::max);
    let log_x = lo.is_finite() && hi >= 10.0 * lo;
    line_plot_svg(
        title,
        "eps (step size)",
        "share of predictions flipped",
        &series,
        log_x,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gains_are_round_and_keep_the_perturbation_in_range() {
        // 0.45 / 0.01 = 45 -> 40; 0.45 / 0.1 = 4.5 -> 4; 0.45 / 0.15 = 3 -> 2.5.
        assert_eq!(nice_gain(0.01), 40.0);
        assert_eq!(nice_gain(0.1), 4.0);
        assert_eq!(nice_gain(0.15), 2.5);
        assert_eq!(nice_gain(0.0), 1.0);
        assert_eq!(nice_gain(f32::NAN), 1.0);
        for m in [1e-4f32, 0.003, 0.07, 0.9, 3.0] {
            let g = nice_gain(m);
            assert!(
                g * m <= 0.45 * 1.0001 && g * m > 0.45 * 0.39,
                "max {m}: gain {g}"
            );
        }
    }

    #[test]
    fn triptych_tiles_show_the_perturbation_around_mid_gray() {
        let input = [0.5f32; 4];
        let perturbed = [0.6f32, 0.4, 0.5, 0.5];
        let p = Prediction {
            class: 1,
            confidence: 0.973,
        };
        let t = Triptych {
            input: &input,
            perturbed: &perturbed,
            label: Some(1),
            before: p,
            after: Prediction { class: 0, ..p },
        };
        let names = vec!["a".to_string(), "b".to_string()];
        let tiles = triptych_tiles(&t, [1, 2, 2], &names, 4.0);
        // 2x2 upscaled to 224x224 (factor 112).
        assert_eq!(tiles[1].image.dimensions(), (224, 224));
        // 0.5 + 4 * 0.1 = 0.9 -> 230; 0.5 - 0.4 = 0.1 -> 26; 0 -> 128 (mid gray).
        assert_eq!(tiles[1].image.get_pixel(0, 0).0, [230; 3]);
        assert_eq!(tiles[1].image.get_pixel(112, 0).0, [26; 3]);
        assert_eq!(tiles[1].image.get_pixel(0, 112).0, [128; 3]);
        assert_eq!(tiles[0].caption[1].0, "b 97.3%");
        assert_eq!(tiles[1].caption[0].0, "perturbation x4");
        assert_eq!(tiles[2].caption[1].1, crate::render::RED);
        let img = triptych_grid(&[t, t], [1, 2, 2], &names, "t", None);
        assert!(img.height() > 2 * 224 && img.width() > 3 * 224);
        // The gray scale bar sits under the grid: dark on its left end, bright on its right,
        // in the same row, and the grid without a bar is shorter.
        let bare = title_bar(
            &grid(
                &[t, t]
                    .iter()
                    .flat_map(|t| triptych_tiles(t, [1, 2, 2], &names, 4.0))
                    .collect::<Vec<_>>(),
                3,
                6,
                BLACK,
            ),
            "t",
        );
        assert!(img.height() > bare.height());
        let row = (bare.height()..img.height())
            .find(|&y| {
                let l = img.get_pixel(img.width() / 2 - 200, y).0;
                let r = img.get_pixel(img.width() / 2 + 200, y).0;
                l[0] < 80 && r[0] > 170 && l[0] == l[1] && r[0] == r[2]
            })
            .is_some();
        assert!(row, "no gray ramp under the triptychs");
    }
}
