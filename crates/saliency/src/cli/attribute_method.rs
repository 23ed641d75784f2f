//! `attribute --method`: the methods the CLI offers and how each is called from the options.

use anyhow::bail;
use clap::ValueEnum;
use tensor::Tensor;

use super::attribute::AttributeArgs;
use super::user_images::load_reference;
use crate::attribution::{
    deconvnet, deeplift, exact_integrated_gradients, grad_cam, gradient_shap, gradient_x_input,
    gradient_x_input_signed, guided_backprop, guided_grad_cam, integrated_gradients, lrp,
    occlusion, occlusion_x_gradient, saliency_map, shapley_sampling, smoothgrad, vargrad, Baseline,
    ExactIgOptions, GradCamOptions, GradientShapOptions, IgOptions, IgResult, LrpRule,
    NoiseOptions, OcclusionOptions, Score, ShapleyOptions,
};
use crate::models::Model;

/// An attribution method, as `--method` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Method {
    /// The study's |ds/da| * a (--signed: (dF/da) * a).
    GradientXInput,
    /// Occlusion with a zero patch (--patch, --stride).
    Occlusion,
    /// The study's mean of the normalized occlusion and gradient x input maps.
    OcclusionXGradient,
    /// Integrated gradients, midpoint rule (--steps, --baseline).
    IntegratedGradients,
    /// Integrated gradients region by region, no steps (piecewise-linear networks).
    ExactIntegratedGradients,
    /// |dF/dx| (Captum's Saliency).
    SaliencyMap,
    /// Mean |dF/dx| over noisy copies (--samples, --sigma, --seed).
    Smoothgrad,
    /// Variance of |dF/dx| over noisy copies (--samples, --sigma, --seed).
    Vargrad,
    /// Expected gradients over random path points (--samples, --sigma, --seed; black baseline or
    /// --reference).
    GradientShap,
    /// Grad-CAM at a conv layer (--layer, default the last), upsampled to the input.
    GradCam,
    /// Shapley value sampling over patches (--patch, --samples, --seed; black baseline).
    ShapleySampling,
    /// Guided backpropagation (ReLUs pass positive signal where their input was positive).
    GuidedBackprop,
    /// Deconvnet (ReLUs pass the positive part of their signal).
    Deconvnet,
    /// Guided backpropagation times the ReLU'd Grad-CAM map (--layer).
    GuidedGradCam,
    /// LRP-epsilon on every layer (--epsilon).
    LrpEpsilon,
    /// LRP-gamma on conv layers, epsilon on dense layers (--gamma, --epsilon).
    LrpGamma,
    /// LRP-alpha-beta on conv layers, epsilon on dense layers (--alpha, --beta, --epsilon).
    LrpAlphaBeta,
    /// DeepLIFT, rescale rule, against a black or gray reference (--baseline) or --reference FILE.
    Deeplift,
}

impl Method {
    /// The name `--method` takes.
    pub fn name(self) -> String {
        self.to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default()
    }

    /// The score explained when `--score` is not given: the study's methods explain the
    /// probability, as the study does; the others follow Captum (the model's output, the logit).
    pub fn default_score(self) -> Score {
        match self {
            Method::GradientXInput
            | Method::Occlusion
            | Method::OcclusionXGradient
            | Method::IntegratedGradients
            | Method::ExactIntegratedGradients => Score::Probability,
            _ => Score::Logit,
        }
    }

    /// True for the methods that run on backward rules and explain the logit only.
    pub fn rule_based(self) -> bool {
        matches!(
            self,
            Method::GuidedBackprop
                | Method::Deconvnet
                | Method::GuidedGradCam
                | Method::LrpEpsilon
                | Method::LrpGamma
                | Method::LrpAlphaBeta
                | Method::Deeplift
        )
    }

    /// True when maps can be negative (drawn with a diverging map by default).
    pub fn signed(self, args_signed: bool) -> bool {
        match self {
            Method::GradientXInput => args_signed,
            Method::IntegratedGradients
            | Method::ExactIntegratedGradients
            | Method::GradientShap
            | Method::GradCam
            | Method::ShapleySampling
            | Method::GuidedBackprop
            | Method::Deconvnet
            | Method::GuidedGradCam
            | Method::LrpEpsilon
            | Method::LrpGamma
            | Method::LrpAlphaBeta
            | Method::Deeplift => true,
            _ => false,
        }
    }
}

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

/// The maps of `method` for `inputs`, and a summary for the final line (completeness for IG).
pub fn compute(
    method: Method,
    args: &MethodSettings,
    model: &Model<f32>,
    inputs: &Tensor<f32>,
    classes: &[usize],
    names: &[String],
) -> anyhow::Result<(Tensor<f32>, String)> {
    if method.rule_based() && args.score == Some(Score::Probability) {
        bail!(
            "--score: {} runs on backward rules from the logit (the model's output, as in \
             Captum), found 'probability'",
            method.name()
        );
    }
    let score = args.score.unwrap_or_else(|| method.default_score());
    let epsilon = args.epsilon.unwrap_or(1e-9);
    let mut occ = OcclusionOptions::for_input(model.input);
    if let Some(p) = args.patch {
        occ.patch = p;
        occ.stride = p;
    }
    if let Some(s) = args.stride {
        occ.stride = s;
    }
    let noise = || NoiseOptions {
        samples: args.samples.unwrap_or(50),
        sigma: args.sigma.unwrap_or(0.15),
        seed: args.seed,
        score,
        batch: None,
    };
    let reference = match &args.reference {
        Some(path) => Some(load_reference(path, model.input)?),
        None => None,
    };
    let baseline = || -> anyhow::Result<Baseline<f32>> {
        match &reference {
            Some(r) => Ok(Baseline::Given(r.clone())),
            None => args
                .baseline
                .parse()
                .map_err(|e| anyhow::anyhow!("--baseline: {e}")),
        }
    };
    let mut extra = String::new();
    let maps = match method {
        Method::GradientXInput if args.signed => {
            gradient_x_input_signed(model, inputs, classes, score)?
        }
        Method::GradientXInput => gradient_x_input(model, inputs, classes)?,
        Method::Occlusion => occlusion(model, inputs, &occ)?,
        Method::OcclusionXGradient => occlusion_x_gradient(model, inputs, &occ)?,
        Method::IntegratedGradients | Method::ExactIntegratedGradients => {
            let baseline = baseline()?;
            let (r, regions) = if method == Method::IntegratedGradients {
                let options = IgOptions {
                    steps: args.steps,
                    score,
                    ..IgOptions::default()
                };
                let r = integrated_gradients(model, inputs, classes, &baseline, &options)?;
                (r, None)
            } else {
                let options = ExactIgOptions {
                    score,
                    ..ExactIgOptions::default()
                };
                let r = exact_integrated_gradients(model, inputs, classes, &baseline, &options)?;
                (r.ig, Some(r.regions))
            };
            extra = report_completeness(&r, names, regions.as_deref(), args.quiet);
            r.attributions
        }
        Method::SaliencyMap => saliency_map(model, inputs, classes, score)?,
        Method::Smoothgrad => smoothgrad(model, inputs, classes, &noise())?,
        Method::Vargrad => vargrad(model, inputs, classes, &noise())?,
        Method::GradientShap => {
            let baselines = match &reference {
                Some(r) => r.clone(),
                None if args.baseline == "black" => {
                    Tensor::zeros(&[1, model.input[0], model.input[1], model.input[2]])
                }
                None => bail!(
                    "--baseline: gradient-shap draws from a black baseline or --reference FILE \
                     here (a baseline distribution is a library option), found '{}'",
                    args.baseline
                ),
            };
            let options = GradientShapOptions {
                samples: args.samples.unwrap_or(50),
                sigma: args.sigma.unwrap_or(0.0),
                seed: args.seed,
                score,
                batch: None,
            };
            gradient_shap(model, inputs, classes, &baselines, &options)?
        }
        Method::GradCam => {
            let options = GradCamOptions {
                layer: args.layer.clone(),
                relu: false,
                score,
            };
            grad_cam(model, inputs, classes, &options)?
        }
        Method::ShapleySampling => {
            let mut options = ShapleyOptions::for_input(model.input);
            options.patch = args.patch.unwrap_or(options.patch);
            options.samples = args.samples.unwrap_or(options.samples);
            options.seed = args.seed;
            options.score = score;
            shapley_sampling(model, inputs, classes, &options)?
        }
        Method::GuidedBackprop => guided_backprop(model, inputs, classes)?,
        Method::Deconvnet => deconvnet(model, inputs, classes)?,
        Method::GuidedGradCam => guided_grad_cam(model, inputs, classes, args.layer.as_deref())?,
        Method::LrpEpsilon => lrp(model, inputs, classes, LrpRule::Epsilon { epsilon })?,
        Method::LrpGamma => {
            let gamma = args.gamma.unwrap_or(0.25);
            lrp(model, inputs, classes, LrpRule::Gamma { gamma, epsilon })?
        }
        Method::LrpAlphaBeta => {
            let (alpha, beta) = (args.alpha.unwrap_or(2.0), args.beta.unwrap_or(1.0));
            lrp(
                model,
                inputs,
                classes,
                LrpRule::AlphaBeta {
                    alpha,
                    beta,
                    epsilon,
                },
            )?
        }
        Method::Deeplift => {
            let r = deeplift(model, inputs, classes, &baseline()?)?;
            extra = report_completeness(&r, names, None, args.quiet);
            r.attributions
        }
    };
    Ok((maps, extra))
}

/// Prints each image's completeness error (and the regions its path crossed, for the exact
/// method) and returns the summary for the final line.
fn report_completeness(
    r: &IgResult<f32>,
    names: &[String],
    regions: Option<&[usize]>,
    quiet: bool,
) -> String {
    let relative = |e: f32, d: f32| (e.abs() / d.abs().max(1e-12)) as f64;
    for (i, (e, d)) in r.completeness_error.iter().zip(&r.delta).enumerate() {
        if quiet {
            break;
        }
        let walked = regions.map_or(String::new(), |r| format!(", {} linear regions", r[i]));
        eprintln!(
            "  {}: F(a) - F(baseline) = {d:+.5}, completeness error {e:+.2e} ({:.3} %){walked}",
            names[i],
            100.0 * relative(*e, *d)
        );
    }
    let worst = r
        .completeness_error
        .iter()
        .zip(&r.delta)
        .map(|(e, d)| relative(*e, *d))
        .fold(0.0, f64::max);
    format!(
        ", completeness error at most {:.2e} % of F(a) - F(baseline)",
        100.0 * worst
    )
}
