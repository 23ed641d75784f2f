//! Hand-written SVG line plots (flip rate against epsilon, and the like): axes, ticks, legend, series.

use std::fmt::Write;

/// One line of a plot.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// (x, y) points in drawing order; points with a non-finite coordinate (or x <= 0 on a log axis)
    /// are left out.
    pub points: Vec<(f64, f64)>,
    /// Any SVG color, e.g. `"#d62728"` or `"black"`.
    pub color: String,
    /// Draw the line dashed (e.g. for the random-noise controls).
    pub dashed: bool,
}

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 440.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = WIDTH - 220.0; // the legend sits to the right of the plot
const TOP: f64 = 50.0;
const BOTTOM: f64 = HEIGHT - 60.0;

/// Escapes the five XML special characters, so any label is safe inside text and attributes.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(ch),
        }
    }
    out
}

/// One axis: its data range (after rounding out to ticks), ticks with labels, and whether it is
/// logarithmic.
struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
    ticks: Vec<(f64, String)>,
    /// Unlabelled ticks (2..9 times each power of ten on a log axis).
    minor: Vec<f64>,
}

impl Axis {
    /// Linear axis covering `lo..=hi` with about six "nice" steps (1, 2 or 5 times a power of ten).
    fn linear(lo: f64, hi: f64) -> Axis {
        // A lone value (or a span too small for f64 steps) gets a range around it. The range is
        // relative to the value's size: at 1e16, lo +- 0.5 rounds back to lo, which gave a zero
        // step, usize::MAX decimals and a formatting panic (`adversary --epsilons 1e16`).
        let scale = lo.abs().max(hi.abs()).max(1.0);
        let (lo, hi) = if hi - lo > f64::MIN_POSITIVE * 1e6 && hi - lo > scale * 1e-12 {
            (lo, hi)
        } else {
            (lo - 0.5 * scale, lo + 0.5 * scale)
        };
        let raw = (hi - lo) / 6.0;
        let magnitude = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 5.0, 10.0]
            .iter()
            .map(|m| m * magnitude)
            .find(|&s| s >= raw)
            .unwrap_or(10.0 * magnitude);
        // f64 carries about 17 significant digits: more decimals say nothing (and the formatter
        // refuses precisions beyond u16).
        let decimals = (-step.log10().floor()).clamp(0.0, 17.0) as usize;
        let first = (lo / step).floor() as i64;
        let last = (hi / step).ceil() as i64;
        let ticks = (first..=last)
            .map(|k| (k as f64 * step, format!("{:.*}", decimals, k as f64 * step)))
            .collect();
        Axis {
            lo: first as f64 * step,
            hi: last as f64 * step,
            log: false,
            ticks,
            minor: Vec::new(),
        }
    }

    /// Log axis covering `lo..=hi` (both > 0), rounded out to whole powers of ten.
    fn logarithmic(lo: f64, hi: f64) -> Axis {
        let first = lo.log10().floor() as i32;
        let last = (hi.log10().ceil() as i32).max(first + 1);
        let label = |k: i32| {
            if (-4..=5).contains(&k) {
                format!("{:.*}", (-k).max(0) as usize, 10f64.powi(k))
            } else {
                format!("1e{k}")
            }
        };
        let ticks = (first..=last).map(|k| (10f64.powi(k), label(k))).collect();
        let minor = (first..last)
            .flat_map(|k| (2..10).map(move |m| m as f64 * 10f64.powi(k)))
            .collect();
        Axis {
            lo: 10f64.powi(first),
            hi: 10f64.powi(last),
            log: true,
            ticks,
            minor,
        }
    }

    /// Where `v` falls between 0 (lo) and 1 (hi).
    fn fraction(&self, v: f64) -> f64 {
        if self.log {
            (v.log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        }
    }
}

fn usable(point: &(f64, f64), log_x: bool) -> bool {
    point.0.is_finite() && point.1.is_finite() && (!log_x || point.0 > 0.0)
}

/// A line plot as a standalone SVG document.
///
/// The y axis always includes [0, 1] (flip rates and confidences live there) and grows to fit
/// other data; the x axis fits the data, rounded out to ticks. With no usable points the axes show
/// [0, 1] (x: [1, 10] on a log axis); a lone x value gets a range around it, so no coordinate is
/// ever NaN. Each series is one `<polyline>` with a circle on each point, and a legend entry.
pub fn line_plot_svg(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    log_x: bool,
) -> String {
    let points = || {
        series
            .iter()
            .flat_map(|s| s.points.iter())
            .filter(|p| usable(p, log_x))
    };
    let (mut x_lo, mut x_hi) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut y_lo, mut y_hi) = (0.0f64, 1.0f64);
    for &(x, y) in points() {
        (x_lo, x_hi) = (x_lo.min(x), x_hi.max(x));
        (y_lo, y_hi) = (y_lo.min(y), y_hi.max(y));
    }
    let x_axis = match (x_lo.is_finite(), log_x) {
        (false, false) => Axis::linear(0.0, 1.0),
        (false, true) => Axis::logarithmic(1.0, 10.0),
        (true, false) => Axis::linear(x_lo, x_hi),
        (true, true) => Axis::logarithmic(x_lo, x_hi),
    };
    let y_axis = Axis::linear(y_lo, y_hi);
    let sx = |x: f64| LEFT + x_axis.fraction(x) * (RIGHT - LEFT);
    let sy = |y: f64| BOTTOM - y_axis.fraction(y) * (BOTTOM - TOP);

    let mut svg = String::new();
    // Writing to a String cannot fail, so the fmt::Results below are ignored.
    let _ = writeln!(svg, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        svg,
        r#"<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="white"/>"#
    );
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="30" text-anchor="middle" font-size="16">{}</text>"#,
        (LEFT + RIGHT) / 2.0,
        xml_escape(title)
    );

    // Grid lines and tick labels.
    let _ = writeln!(svg, r##"<g stroke="#dddddd" stroke-width="1">"##);
    for (v, _) in &x_axis.ticks {
        let _ = writeln!(
            svg,
            r#"<line x1="{0:.2}" y1="{TOP}" x2="{0:.2}" y2="{BOTTOM}"/>"#,
            sx(*v)
        );
    }
    for (v, _) in &y_axis.ticks {
        let _ = writeln!(
            svg,
            r#"<line x1="{LEFT}" y1="{0:.2}" x2="{RIGHT}" y2="{0:.2}"/>"#,
            sy(*v)
        );
    }
    let _ = writeln!(svg, "</g>");
    let _ = writeln!(svg, r#"<g stroke="black" stroke-width="1">"#);
    for (v, _) in &x_axis.ticks {
        let _ = writeln!(
            svg,
            r#"<line x1="{0:.2}" y1="{BOTTOM}" x2="{0:.2}" y2="{1}"/>"#,
            sx(*v),
            BOTTOM + 6.0
        );
    }
    for v in &x_axis.minor {
        let _ = writeln!(
            svg,
            r#"<line x1="{0:.2}" y1="{BOTTOM}" x2="{0:.2}" y2="{1}"/>"#,
            sx(*v),
            BOTTOM + 3.0
        );
    }
    for (v, _) in &y_axis.ticks {
        let _ = writeln!(
            svg,
            r#"<line x1="{0}" y1="{1:.2}" x2="{LEFT}" y2="{1:.2}"/>"#,
            LEFT - 6.0,
            sy(*v)
        );
    }
    let _ = writeln!(
        svg,
        r#"<rect x="{LEFT}" y="{TOP}" width="{}" height="{}" fill="none"/>"#,
        RIGHT - LEFT,
        BOTTOM - TOP
    );
    let _ = writeln!(svg, "</g>");
    for (v, label) in &x_axis.ticks {
        let _ = writeln!(
            svg,
            r#"<text x="{:.2}" y="{}" text-anchor="middle">{}</text>"#,
            sx(*v),
            BOTTOM + 20.0,
            xml_escape(label)
        );
    }
    for (v, label) in &y_axis.ticks {
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{:.2}" text-anchor="end">{}</text>"#,
            LEFT - 9.0,
            sy(*v) + 4.0,
            xml_escape(label)
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{}" text-anchor="middle" font-size="14">{}</text>"#,
        (LEFT + RIGHT) / 2.0,
        HEIGHT - 18.0,
        xml_escape(x_label)
    );
    let y_mid = (TOP + BOTTOM) / 2.0;
    let _ = writeln!(
        svg,
        r#"<text x="20" y="{y_mid:.1}" text-anchor="middle" font-size="14" transform="rotate(-90 20 {y_mid:.1})">{}</text>"#,
        xml_escape(y_label)
    );

    // The series, then the legend.
    for s in series {
        let color = xml_escape(&s.color);
        let dash = if s.dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let coords: Vec<(f64, f64)> = s
            .points
            .iter()
            .filter(|p| usable(p, log_x))
            .map(|&(x, y)| (sx(x), sy(y)))
            .collect();
        let list: Vec<String> = coords
            .iter()
            .map(|(x, y)| format!("{x:.2},{y:.2}"))
            .collect();
        let _ = writeln!(svg, r#"<g>"#);
        let _ = writeln!(
            svg,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2"{dash} points="{}"/>"#,
            list.join(" ")
        );
        for (x, y) in &coords {
            let _ = writeln!(
                svg,
                r#"<circle cx="{x:.2}" cy="{y:.2}" r="3" fill="{color}"/>"#
            );
        }
        let _ = writeln!(svg, "</g>");
    }
    for (i, s) in series.iter().enumerate() {
        let color = xml_escape(&s.color);
        let dash = if s.dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let y = TOP + 10.0 + 20.0 * i as f64;
        let x = RIGHT + 15.0;
        let _ = writeln!(
            svg,
            r#"<line x1="{x}" y1="{y}" x2="{}" y2="{y}" stroke="{color}" stroke-width="2"{dash}/>"#,
            x + 30.0
        );
        let _ = writeln!(
            svg,
            r#"<circle cx="{}" cy="{y}" r="3" fill="{color}"/>"#,
            x + 15.0
        );
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}">{}</text>"#,
            x + 38.0,
            y + 4.0,
            xml_escape(&s.label)
        );
    }
    let _ = writeln!(svg, "</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(label: &str, points: Vec<(f64, f64)>, dashed: bool) -> Series {
        Series {
            label: label.to_string(),
            points,
            color: "#1f77b4".to_string(),
            dashed,
        }
    }

    /// Checks that every opened element is closed in order (ignoring the `<?xml ?>` header) and that
    /// no raw `<` or `&` is left in text.
    fn assert_balanced(svg: &str) {
        let mut stack: Vec<String> = Vec::new();
        let mut rest = svg;
        while let Some(start) = rest.find('<') {
            let text = &rest[..start];
            assert!(!text.contains('>'), "stray '>' in text {text:?}");
            for (i, _) in text.match_indices('&') {
                let entity = &text[i..];
                assert!(
                    ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                        .iter()
                        .any(|e| entity.starts_with(e)),
                    "bare & in {text:?}"
                );
            }
            let end = rest[start..].find('>').expect("unclosed tag") + start;
            let tag = &rest[start + 1..end];
            assert!(!tag.contains('<'), "'<' inside tag {tag:?}");
            if tag.starts_with('?') {
            } else if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(
                    stack.pop().as_deref(),
                    Some(name.trim()),
                    "closing </{name}>"
                );
            } else if !tag.ends_with('/') {
                stack.push(tag.split_whitespace().next().unwrap().to_string());
            }
            rest = &rest[end + 1..];
        }
        assert!(stack.is_empty(), "unclosed: {stack:?}");
    }

    /// A lone huge value (`adversary --epsilons 1e16`) used to give a zero tick step and a
    /// formatting panic; now it gets a range around it and finite, increasing ticks.
    #[test]
    fn lone_huge_values_get_a_finite_axis() {
        for v in [1e16, 1e17, 1e30, -3e20, 0.0, 5e-300] {
            let axis = Axis::linear(v, v);
            assert!(
                axis.lo < axis.hi && axis.lo.is_finite() && axis.hi.is_finite(),
                "{v}"
            );
            assert!(
                axis.ticks.len() >= 2 && axis.ticks.len() < 30,
                "{v}: {:?}",
                axis.ticks
            );
            assert!(
                axis.ticks.windows(2).all(|t| t[0].0 < t[1].0),
                "{v}: {:?}",
                axis.ticks
            );
        }
    }

    #[test]
    fn plot_has_labels_polylines_and_balanced_tags() {
        let s = vec![
            series(
                "fast gradient sign",
                vec![(0.001, 0.1), (0.01, 0.6), (0.1, 0.95)],
                false,
            ),
            series(
                "random <noise> & \"friends\"",
                vec![(0.001, 0.0), (0.01, 0.02), (0.1, 0.05)],
                true,
            ),
        ];
        for log_x in [false, true] {
            let svg = line_plot_svg(
                "Flip rate vs eps",
                "eps (step size)",
                "share flipped",
                &s,
                log_x,
            );
            assert_balanced(&svg);
            assert_eq!(svg.matches("<polyline").count(), 2);
            assert_eq!(
                svg.matches("stroke-dasharray").count(),
                2,
                "dashed line and its legend entry"
            );
            for label in [
                "Flip rate vs eps",
                "eps (step size)",
                "share flipped",
                "fast gradient sign",
            ] {
                assert!(svg.contains(label), "missing {label}");
            }
            assert!(svg.contains("random &lt;noise&gt; &amp; &quot;friends&quot;"));
            assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        }
        let log = line_plot_svg("t", "x", "y", &s, true);
        assert!(
            log.contains(">0.001<") && log.contains(">0.1<"),
            "decade labels"
        );
    }

    #[test]
    fn empty_and_single_point_plots_have_no_nan() {
        let cases = [
            vec![],
            vec![series("empty", vec![], false)],
            vec![series("one", vec![(0.05, 0.3)], false)],
            vec![series(
                "bad",
                vec![(f64::NAN, 1.0), (0.0, f64::INFINITY), (-1.0, 0.5)],
                false,
            )],
        ];
        for s in &cases {
            for log_x in [false, true] {
                let svg = line_plot_svg("t", "x", "y", s, log_x);
                assert_balanced(&svg);
                assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
                assert_eq!(svg.matches("<polyline").count(), s.len());
            }
        }
    }

    #[test]
    fn linear_ticks_are_nice() {
        let axis = Axis::linear(0.0, 0.15);
        let labels: Vec<&str> = axis.ticks.iter().map(|(_, l)| l.as_str()).collect();
        // Span 0.15 / 6 = 0.025 rounds up to a step of 0.05.
        assert_eq!(labels, ["0.00", "0.05", "0.10", "0.15"]);
        assert_eq!(Axis::linear(0.0, 1.0).ticks.len(), 6, "0.0, 0.2, ..., 1.0");
    }
}
