//! Robust accuracy curves (as foolbox reports them): per attack and budget eps, the accuracy
//! under attack, the attack's success rate and the mean size of its perturbations.

use std::fmt::Write;

use super::pgd::Norm;
use super::pictures::COLORS;
use super::stats::AttackStats;
use crate::render::{line_plot_svg, Series};

/// One point of a robust accuracy curve: an attack at one budget over a data set.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RobustPoint {
    /// Method, eps, accuracy before and under attack, flips and confidences.
    #[serde(flatten)]
    pub stats: AttackStats,
    /// True for the targeted attacks.
    pub targeted: bool,
    /// The norm eps bounds (`l-inf` or `l2`).
    pub norm: Norm,
    /// Untargeted: the share of the images classified right before whose prediction is wrong
    /// under attack. Targeted: the share of the images whose target differs from their label
    /// that are classified as the target under attack. 0 when there is no such image.
    pub success_rate: f64,
    /// The number of images `success_rate` is taken over.
    pub attempted: usize,
    /// Mean over all images of ||a' - a||_2 (0 for an image left unchanged, e.g. where a
    /// minimal attack needed more than eps).
    pub mean_l2: f64,
    /// Mean over all images of ||a' - a||_inf.
    pub mean_linf: f64,
}

/// A markdown table of the points, shares in percent.
pub fn robust_table(points: &[RobustPoint]) -> String {
    let mut out = String::from(
        "| method | norm | eps | n | clean accuracy | robust accuracy | success rate | mean L2 | mean Linf |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for p in points {
        let s = &p.stats;
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.1} % | {:.1} % | {:.1} % | {:.4} | {:.4} |",
            s.method,
            match p.norm {
                Norm::LInf => "Linf",
                Norm::L2 => "L2",
            },
            s.epsilon,
            s.n,
            100.0 * s.accuracy_before,
            100.0 * s.accuracy,
            100.0 * p.success_rate,
            p.mean_l2,
            p.mean_linf
        );
    }
    out
}

/// Robust accuracy against eps, one line per method, as an SVG document. L-infinity and L2
/// budgets are not comparable: the legend names each line's norm.
pub fn robust_accuracy_plot(points: &[RobustPoint], title: &str) -> String {
    let mut methods: Vec<(&str, Norm)> = Vec::new();
    for p in points {
        if !methods.iter().any(|(m, _)| *m == p.stats.method) {
            methods.push((&p.stats.method, p.norm));
        }
    }
    let series: Vec<Series> = methods
        .iter()
        .enumerate()
        .map(|(i, &(name, norm))| Series {
            label: format!(
                "{name} ({})",
                match norm {
                    Norm::LInf => "Linf",
                    Norm::L2 => "L2",
                }
            ),
            points: points
                .iter()
                .filter(|p| p.stats.method == name)
                .map(|p| (p.stats.epsilon, p.stats.accuracy))
                .collect(),
            color: COLORS[i % COLORS.len()].to_string(),
            dashed: norm == Norm::L2,
        })
        .collect();
    line_plot_svg(
        title,
        "eps (budget)",
        "accuracy under attack",
        &series,
        false,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(method: &str, eps: f64, accuracy: f64) -> RobustPoint {
        RobustPoint {
            stats: AttackStats {
                method: method.into(),
                epsilon: eps,
                n: 100,
                flipped_fraction: 0.5,
                accuracy_before: 0.9,
                accuracy,
                mean_confidence_before: 0.9,
                mean_confidence_after: 0.7,
            },
            targeted: false,
            norm: Norm::LInf,
            success_rate: 0.25,
            attempted: 90,
            mean_l2: 1.5,
            mean_linf: 0.1,
        }
    }

    #[test]
    fn table_and_plot_carry_every_point() {
        let pts = [
            point("pgd", 0.0, 0.9),
            point("pgd", 0.1, 0.2),
            point("fgsm", 0.1, 0.4),
        ];
        let table = robust_table(&pts);
        assert_eq!(table.lines().count(), 5);
        assert!(
            table.contains(
                "| pgd | Linf | 0.1 | 100 | 90.0 % | 20.0 % | 25.0 % | 1.5000 | 0.1000 |"
            ),
            "{table}"
        );
        let svg = robust_accuracy_plot(&pts, "t");
        assert_eq!(svg.matches("<polyline").count(), 2, "{svg}");
        let json = serde_json::to_value(&pts[0]).unwrap();
        assert_eq!(json["method"], "pgd");
        assert_eq!(json["flipped_fraction"], 0.5);
        assert_eq!(json["norm"], "l-inf");
    }
}
