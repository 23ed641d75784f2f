//! `attribute --method`: from the flags to the library's [`MethodOptions`], and the completeness
//! lines printed for the methods that measure it. The methods themselves and their dispatch live
//! in [`crate::attribution::method`].

use anyhow::bail;
use tensor::Tensor;

use super::attribute::AttributeArgs;
use super::user_images::load_reference;
use crate::attribution::method::{run, CompletenessReport, Method, MethodOptions};
use crate::attribution::{Baseline, Score};
use crate::models::Model;

/// The options the methods read, from `attribute`'s flags or `evaluate-attribution`'s defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct MethodSettings {
    /// Gradient x input: the signed form.
    pub signed: bool,
    /// Integrated gradients: path steps.
    pub steps: usize,
    /// Probability or logit; `None`: the method's default.
    pub score: Option<Score>,
    /// Integrated gradients, deeplift, gradient-shap: black or gray.
    pub baseline: String,
    /// Occlusion, shapley-sampling: patch side.
    pub patch: Option<usize>,
    /// Occlusion: stride.
    pub stride: Option<usize>,
    /// Sampling methods: samples per image.
    pub samples: Option<usize>,
    /// Sampling methods: noise level.
    pub sigma: Option<f64>,
    /// Sampling methods: seed.
    pub seed: u64,
    /// Grad-CAM: conv layer.
    pub layer: Option<String>,
    /// LRP: stabilizer.
    pub epsilon: Option<f64>,
    /// LRP-gamma: gamma.
    pub gamma: Option<f64>,
    /// LRP-alpha-beta: alpha.
    pub alpha: Option<f64>,
    /// LRP-alpha-beta: beta.
    pub beta: Option<f64>,
    /// Integrated gradients, deeplift, gradient-shap: a reference image file instead of
    /// `baseline`.
    pub reference: Option<std::path::PathBuf>,
    /// Print nothing per image (completeness lines).
    pub quiet: bool,
}

impl Default for MethodSettings {
    fn default() -> Self {
        MethodSettings {
            signed: false,
            steps: 50,
            score: None,
            baseline: "black".into(),
            patch: None,
            stride: None,
            samples: None,
            sigma: None,
            seed: 0,
            layer: None,
            epsilon: None,
            gamma: None,
            alpha: None,
            beta: None,
            reference: None,
            quiet: false,
        }
    }
}

impl From<&AttributeArgs> for MethodSettings {
    fn from(a: &AttributeArgs) -> Self {
        MethodSettings {
            signed: a.signed,
            steps: a.steps,
            score: a.score,
            baseline: a.baseline.clone(),
            patch: a.patch,
            stride: a.stride,
            samples: a.samples,
            sigma: a.sigma,
            seed: a.seed,
            layer: a.layer.clone(),
            epsilon: a.epsilon,
            gamma: a.gamma,
            alpha: a.alpha,
            beta: a.beta,
            reference: a.reference.clone(),
            quiet: false,
        }
    }
}

impl MethodSettings {
    /// The library's options for `method` on `model`: the reference file read, the baseline
    /// parsed; flag combinations the library would refuse are refused here naming the flag.
    pub fn options(
        &self,
        method: Method,
        model: &Model<f32>,
    ) -> anyhow::Result<MethodOptions<f32>> {
        if method.rule_based() && self.score == Some(Score::Probability) {
            bail!(
                "--score: {} runs on backward rules from the logit (the model's output, as in \
                 Captum), found 'probability'",
                method.name()
            );
        }
        let uses_baseline = matches!(
            method,
            Method::IntegratedGradients
                | Method::ExactIntegratedGradients
                | Method::Deeplift
                | Method::GradientShap
        );
        let baseline = match &self.reference {
            Some(path) => Baseline::Given(load_reference(path, model.input)?),
            None if method == Method::GradientShap && self.baseline != "black" => bail!(
                "--baseline: gradient-shap draws from a black baseline or --reference FILE \
                 here (a baseline distribution is a library option), found '{}'",
                self.baseline
            ),
            // Only the methods that have a baseline read (and so check) --baseline.
            None if uses_baseline => self
                .baseline
                .parse()
                .map_err(|e| anyhow::anyhow!("--baseline: {e}"))?,
            None => Baseline::Black,
        };
        Ok(MethodOptions {
            signed: self.signed,
            steps: self.steps,
            score: self.score,
            baseline,
            patch: self.patch,
            stride: self.stride,
            samples: self.samples,
            sigma: self.sigma,
            seed: self.seed,
            layer: self.layer.clone(),
            epsilon: self.epsilon,
            gamma: self.gamma,
            alpha: self.alpha,
            beta: self.beta,
            batch: None,
        })
    }
}

/// The maps of `method` for `inputs`, and a summary for the final line (completeness for IG).
pub fn compute(
    method: Method,
    args: &MethodSettings,
    model: &Model<f32>,
    inputs: &Tensor<f32>,
    classes: &[usize],
    names: &[String],
) -> anyhow::Result<(Tensor<f32>, String)> {
    let options = args.options(method, model)?;
    let out = run(method, &options, model, inputs, classes)?;
    let extra = match &out.completeness {
        Some(c) => report_completeness(c, names, args.quiet),
        None => String::new(),
    };
    Ok((out.maps, extra))
}

/// Prints each image's completeness error (and the regions its path crossed, for the exact
/// method) and returns the summary for the final line.
fn report_completeness(r: &CompletenessReport, names: &[String], quiet: bool) -> String {
    let relative = |e: f32, d: f32| (e.abs() / d.abs().max(1e-12)) as f64;
    for (i, (e, d)) in r.error.iter().zip(&r.delta).enumerate() {
        if quiet {
            break;
        }
        let walked = r
            .regions
            .as_ref()
            .map_or(String::new(), |r| format!(", {} linear regions", r[i]));
        eprintln!(
            "  {}: F(a) - F(baseline) = {d:+.5}, completeness error {e:+.2e} ({:.3} %){walked}",
            names[i],
            100.0 * relative(*e, *d)
        );
    }
    let worst = r
        .error
        .iter()
        .zip(&r.delta)
        .map(|(e, d)| relative(*e, *d))
        .fold(0.0, f64::max);
    format!(
        ", completeness error at most {:.2e} % of F(a) - F(baseline)",
        100.0 * worst
    )
}
