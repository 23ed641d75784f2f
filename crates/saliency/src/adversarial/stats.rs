//! Flip statistics over a data set: for each method and step size, the share of images whose
//! predicted class changes, accuracy and mean confidence before and under attack.

use tensor::Tensor;

use super::attack::{minimal_perturbation, perturb, AttackConfig};
use super::check::{check_epsilon, check_labels, check_unit_range_slice};
use super::deepfool::within_l2_budget;
use super::gradient::{chunk_size, loss_gradient_and_values};
use super::prediction::{predict, Prediction};
use super::robust::RobustPoint;
use super::{AdversarialError, Method};
use crate::data::ImageSource;
use crate::models::Model;

/// One method with the step sizes to try.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sweep {
    /// The attack or control.
    pub method: Method,
    /// Step sizes, in the order the rows are reported.
    pub epsilons: Vec<f64>,
}

impl Sweep {
    /// A sweep of `method` over `epsilons`.
    pub fn new(method: Method, epsilons: Vec<f64>) -> Self {
        Sweep { method, epsilons }
    }

    /// About a decade on each side of the method's default eps (1-2-5 steps), so a flip-rate plot
    /// shows where the curve rises; the default itself is always included.
    pub fn around_default(method: Method) -> Self {
        let d = method.default_epsilon();
        let mut epsilons: Vec<f64> = [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0]
            .iter()
            .map(|f| f * d)
            .collect();
        // 0.1 * 0.15 and the like: keep the printed values short.
        epsilons
            .iter_mut()
            .for_each(|e| *e = (*e * 1e9).round() / 1e9);
        Sweep { method, epsilons }
    }
}

/// What one method at one step size does to a data set.
///
/// A flip is a change of the predicted class (whatever the label); accuracy counts predictions
/// equal to the label; confidence is the largest softmax probability, of whatever class wins.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AttackStats {
    /// The method's CLI name.
    pub method: String,
    /// The step size.
    pub epsilon: f64,
    /// Images evaluated.
    pub n: usize,
    /// Share of images whose predicted class after the perturbation differs from before.
    pub flipped_fraction: f64,
    /// Accuracy on the clean images.
    pub accuracy_before: f64,
    /// Accuracy on the perturbed images.
    pub accuracy: f64,
    /// Mean max softmax probability on the clean images.
    pub mean_confidence_before: f64,
    /// Mean max softmax probability on the perturbed images.
    pub mean_confidence_after: f64,
}

/// Running totals for one (method, eps) row.
#[derive(Default, Clone)]
struct Tally {
    flipped: usize,
    correct: usize,
    confidence: f64,
    /// Images the attack could succeed on (untargeted: right before; targeted: target != label).
    candidates: usize,
    /// Of those, the ones it succeeded on (untargeted: wrong after; targeted: the target after).
    successes: usize,
    l2: f64,
    linf: f64,
}

impl Tally {
    /// Adds one chunk: its predictions before and after, labels, targets (targeted attacks) and
    /// the per-image perturbation norms.
    fn add(
        &mut self,
        before: &[Prediction],
        after: &[Prediction],
        labels: &[usize],
        targets: Option<&[usize]>,
        norms: &[(f64, f64)],
    ) {
        for (i, ((b, a), &y)) in before.iter().zip(after).zip(labels).enumerate() {
            self.flipped += usize::from(a.class != b.class);
            self.correct += usize::from(a.class == y);
            self.confidence += a.confidence as f64;
            match targets {
                Some(t) if t[i] != y => {
                    self.candidates += 1;
                    self.successes += usize::from(a.class == t[i]);
                }
                Some(_) => {}
                None if b.class == y => {
                    self.candidates += 1;
                    self.successes += usize::from(a.class != y);
                }
                None => {}
            }
            self.l2 += norms[i].0;
            self.linf += norms[i].1;
        }
    }
}

/// (L2, L-infinity) norm of a' - a for each image, in f64.
fn perturbation_norms(clean: &Tensor<f32>, perturbed: &Tensor<f32>) -> Vec<(f64, f64)> {
    let per = super::check::per_image(clean);
    clean
        .data()
        .chunks(per)
        .zip(perturbed.data().chunks(per))
        .map(|(a, b)| {
            let (mut s, mut m) = (0.0f64, 0.0f64);
            for (&x, &y) in a.iter().zip(b) {
                let d = (y as f64 - x as f64).abs();
                s += d * d;
                m = m.max(d);
            }
            (s.sqrt(), m)
        })
        .collect()
}

/// Runs every sweep over every image of `data` (in chunks of `config.batch` images) and returns
/// one row per (method, eps), in sweep order. The clean predictions and the loss gradient at the
/// clean inputs are computed once per chunk and shared by all methods and step sizes.
///
/// `data` is read one chunk at a time ([`ImageSource::fill`]), so an image folder's files are
/// decoded per chunk and only one chunk of floats is held, however large the split.
///
/// `progress(done, total)` is called after each chunk with the number of images finished.
pub fn attack_stats(
    model: &Model<f32>,
    data: &dyn ImageSource,
    sweeps: &[Sweep],
    config: &AttackConfig,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<AttackStats>, AdversarialError> {
    Ok(
        attack_stats_detailed(model, data, sweeps, config, progress)?
            .into_iter()
            .map(|p| p.stats)
            .collect(),
    )
}

/// [`attack_stats`] with the robustness figures of each row: the attack's success rate and the
/// mean perturbation norms (a robust accuracy curve is the `accuracy` of these rows against eps).
/// The minimal-perturbation attacks (`deepfool`, `cw-l2`) run once per chunk and every eps is
/// applied to their result as an L2 budget.
pub fn attack_stats_detailed(
    model: &Model<f32>,
    data: &dyn ImageSource,
    sweeps: &[Sweep],
    config: &AttackConfig,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<RobustPoint>, AdversarialError> {
    config.validate()?;
    for sweep in sweeps {
        for (j, &eps) in sweep.epsilons.iter().enumerate() {
            check_epsilon(&format!("{} epsilons[{j}]", sweep.method), eps)?;
        }
    }
    if data.shape() != model.input {
        return Err(AdversarialError::Shape {
            what: "data set images",
            expected: format!("{:?} (the model's input)", model.input),
            found: format!("{:?} ({})", data.shape(), data.name()),
        });
    }
    let labels: Vec<usize> = data.labels().iter().map(|&l| l as usize).collect();
    check_labels(&labels, model.classes)?;
    if sweeps.iter().any(|s| s.method.is_targeted()) {
        config.target.check("target-class", model.classes)?;
    }

    let n = data.count();
    let shape = data.shape();
    let per = data.values_per_image();
    let chunk = chunk_size(per, config.batch);
    let need_gradient = sweeps.iter().any(|s| s.method.needs_gradient());
    let mut tallies: Vec<Vec<Tally>> = sweeps
        .iter()
        .map(|s| vec![Tally::default(); s.epsilons.len()])
        .collect();
    let (mut correct_before, mut confidence_before) = (0usize, 0.0f64);
    for start in (0..n).step_by(chunk) {
        let end = (start + chunk).min(n);
        let positions: Vec<usize> = (start..end).collect();
        let mut images = vec![0.0; positions.len() * per];
        data.fill(&positions, &mut images)?;
        // Checked per chunk, as read; the error counts elements and images from the set's start.
        check_unit_range_slice(&images, per).map_err(|e| match e {
            AdversarialError::InputRange {
                index,
                image,
                value,
            } => AdversarialError::InputRange {
                index: index + start * per,
                image: image + start,
                value,
            },
            other => other,
        })?;
        let x = Tensor::from_vec(&[end - start, shape[0], shape[1], shape[2]], images)?;
        let y = &labels[start..end];
        let before = predict(model, &x, chunk)?;
        for (p, &label) in before.iter().zip(y) {
            correct_before += usize::from(p.class == label);
            confidence_before += p.confidence as f64;
        }
        let grad = if need_gradient {
            Some(loss_gradient_and_values(model, &x, y, config.loss, chunk)?.0)
        } else {
            None
        };
        let targets = if sweeps.iter().any(|s| s.method.is_targeted()) {
            Some(config.target.resolve(model, &x)?)
        } else {
            None
        };
        for (sweep, row) in sweeps.iter().zip(tallies.iter_mut()) {
            let minimal = match sweep.method {
                Method::DeepFool | Method::CwL2 => {
                    Some(minimal_perturbation(model, sweep.method, &x, y, config)?)
                }
                _ => None,
            };
            for (&eps, tally) in sweep.epsilons.iter().zip(row.iter_mut()) {
                let perturbed = match &minimal {
                    Some(adversarial) => within_l2_budget(&x, adversarial, eps),
                    None => perturb(
                        model,
                        sweep.method,
                        &x,
                        y,
                        grad.as_ref(),
                        eps,
                        config,
                        start,
                    )?,
                };
                let after = predict(model, &perturbed, chunk)?;
                let norms = perturbation_norms(&x, &perturbed);
                let t = targets.as_deref().filter(|_| sweep.method.is_targeted());
                tally.add(&before, &after, y, t, &norms);
            }
        }
        progress(end, n);
    }

    // An empty data set gives zeros rather than NaN.
    let share = |count: f64| count / n.max(1) as f64;
    let mut out = Vec::new();
    for (sweep, row) in sweeps.iter().zip(&tallies) {
        for (&eps, tally) in sweep.epsilons.iter().zip(row) {
            out.push(RobustPoint {
                stats: AttackStats {
                    method: sweep.method.name().to_string(),
                    epsilon: eps,
                    n,
                    flipped_fraction: share(tally.flipped as f64),
                    accuracy_before: share(correct_before as f64),
                    accuracy: share(tally.correct as f64),
                    mean_confidence_before: share(confidence_before),
                    mean_confidence_after: share(tally.confidence),
                },
                targeted: sweep.method.is_targeted(),
                norm: sweep.method.norm(),
                success_rate: tally.successes as f64 / tally.candidates.max(1) as f64,
                attempted: tally.candidates,
                mean_l2: share(tally.l2),
                mean_linf: share(tally.linf),
            });
        }
    }
    Ok(out)
}
