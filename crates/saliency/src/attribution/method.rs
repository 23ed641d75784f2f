//! Every attribution method by name, with one set of options and one entry point, so the CLI,
//! `evaluate-attribution` and the study call the methods the same way.

use std::fmt;
use std::str::FromStr;

use tensor::{Float, Tensor};

use super::{
    deconvnet, deeplift, exact_integrated_gradients, grad_cam, gradient_shap, gradient_x_input,
    gradient_x_input_signed, guided_backprop, guided_grad_cam, integrated_gradients, lrp,
    occlusion, occlusion_x_gradient, saliency_map, shapley_sampling, smoothgrad, vargrad,
    AttributionError, Baseline, ExactIgOptions, GradCamOptions, GradientShapOptions, IgOptions,
    LrpRule, NoiseOptions, OcclusionOptions, Score, ShapleyOptions,
};
use crate::models::Model;

/// An attribution method, as `attribute --method` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
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
    /// Every method, in `--help` order.
    pub const ALL: [Method; 18] = [
        Method::GradientXInput,
        Method::Occlusion,
        Method::OcclusionXGradient,
        Method::IntegratedGradients,
        Method::ExactIntegratedGradients,
        Method::SaliencyMap,
        Method::Smoothgrad,
        Method::Vargrad,
        Method::GradientShap,
        Method::GradCam,
        Method::ShapleySampling,
        Method::GuidedBackprop,
        Method::Deconvnet,
        Method::GuidedGradCam,
        Method::LrpEpsilon,
        Method::LrpGamma,
        Method::LrpAlphaBeta,
        Method::Deeplift,
    ];

    /// The name `--method` takes (the variant in kebab case).
    pub fn name(self) -> &'static str {
        match self {
            Method::GradientXInput => "gradient-x-input",
            Method::Occlusion => "occlusion",
            Method::OcclusionXGradient => "occlusion-x-gradient",
            Method::IntegratedGradients => "integrated-gradients",
            Method::ExactIntegratedGradients => "exact-integrated-gradients",
            Method::SaliencyMap => "saliency-map",
            Method::Smoothgrad => "smoothgrad",
            Method::Vargrad => "vargrad",
            Method::GradientShap => "gradient-shap",
            Method::GradCam => "grad-cam",
            Method::ShapleySampling => "shapley-sampling",
            Method::GuidedBackprop => "guided-backprop",
            Method::Deconvnet => "deconvnet",
            Method::GuidedGradCam => "guided-grad-cam",
            Method::LrpEpsilon => "lrp-epsilon",
            Method::LrpGamma => "lrp-gamma",
            Method::LrpAlphaBeta => "lrp-alpha-beta",
            Method::Deeplift => "deeplift",
        }
    }

    /// The score explained when none is given: the study's methods explain the probability, as
    /// the study does; the others follow Captum (the model's output, the logit).
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

    /// True when maps can be negative (drawn with a diverging map by default); `signed_gxi` is
    /// whether gradient x input runs in its signed form.
    pub fn signed(self, signed_gxi: bool) -> bool {
        match self {
            Method::GradientXInput => signed_gxi,
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

    /// True for the methods whose maps add up to F(x) - F(baseline) of their default score
    /// (exactly, or in expectation for the sampling ones).
    pub fn completeness_defined(self) -> bool {
        matches!(
            self,
            Method::IntegratedGradients
                | Method::ExactIntegratedGradients
                | Method::Deeplift
                | Method::GradientShap
                | Method::ShapleySampling
        )
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Method {
    type Err = AttributionError;

    /// A method by its `--method` name.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        Method::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| AttributionError::Option {
                option: "method",
                expected: format!("one of {}", Method::ALL.map(Method::name).join(", ")),
                found: format!("'{s}'"),
            })
    }
}

/// The options every method reads; each method reads only its own (see the fields). `None`
/// takes the method's default.
#[derive(Clone, Debug)]
pub struct MethodOptions<T> {
    /// Gradient x input: the signed form (dF/da) * a instead of the study's |ds/da| * a.
    pub signed: bool,
    /// Integrated gradients: path steps.
    pub steps: usize,
    /// Probability or logit; `None`: the method's [`Method::default_score`]. The rule-based
    /// methods accept the logit only.
    pub score: Option<Score>,
    /// Integrated gradients, DeepLIFT: the baseline; GradientSHAP: black or a given one.
    pub baseline: Baseline<T>,
    /// Occlusion, shapley-sampling: patch side (default: the study's, 4 for 28x28, 32 for 256).
    pub patch: Option<usize>,
    /// Occlusion: stride (default: the patch side).
    pub stride: Option<usize>,
    /// Sampling methods: samples per image (default 50; shapley-sampling 25).
    pub samples: Option<usize>,
    /// SmoothGrad, VarGrad: noise level (default 0.15); GradientSHAP: input noise (default 0).
    pub sigma: Option<f64>,
    /// Sampling methods: seed.
    pub seed: u64,
    /// Grad-CAM, guided Grad-CAM: conv layer (default the last).
    pub layer: Option<String>,
    /// LRP: stabilizer (default 1e-9, Captum's).
    pub epsilon: Option<f64>,
    /// LRP-gamma: gamma (default 0.25).
    pub gamma: Option<f64>,
    /// LRP-alpha-beta: alpha (default 2).
    pub alpha: Option<f64>,
    /// LRP-alpha-beta: beta (default 1).
    pub beta: Option<f64>,
    /// SmoothGrad, VarGrad, GradientSHAP: noisy copies or path points per forward/backward pass
    /// (`None`: [`super::default_batch`]). Memory only: results do not depend on it.
    pub batch: Option<usize>,
}

impl<T> Default for MethodOptions<T> {
    fn default() -> Self {
        MethodOptions {
            signed: false,
            steps: 50,
            score: None,
            baseline: Baseline::Black,
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
            batch: None,
        }
    }
}

/// How far a method's maps are from adding up to F(x) - F(baseline), for the methods that report
/// it as they run (integrated gradients, exact integrated gradients, DeepLIFT).
#[derive(Clone, Debug, PartialEq)]
pub struct CompletenessReport {
    /// Per image: sum(map) - (F(x) - F(baseline)).
    pub error: Vec<f32>,
    /// Per image: F(x) - F(baseline).
    pub delta: Vec<f32>,
    /// Exact integrated gradients: per image, the linear regions its path crossed.
    pub regions: Option<Vec<usize>>,
}

/// What [`run`] returns.
#[derive(Clone, Debug)]
pub struct MethodOutput<T> {
    /// The maps: shaped like the inputs, or (N, 1, H, W) for the channel-free methods.
    pub maps: Tensor<T>,
    /// The completeness the method measured on the way, where it does.
    pub completeness: Option<CompletenessReport>,
}

/// Runs `method` on `inputs` (N, C, H, W, values in [0, 1]) explaining `classes` (one per image).
/// Bad options come back as [`AttributionError::Option`] naming the option.
pub fn run<T: Float>(
    method: Method,
    options: &MethodOptions<T>,
    model: &Model<T>,
    inputs: &Tensor<T>,
    classes: &[usize],
) -> Result<MethodOutput<T>, AttributionError> {
    if method.rule_based() && options.score == Some(Score::Probability) {
        return Err(AttributionError::Option {
            option: "score",
            expected: format!(
                "logit: {} runs on backward rules from the logit (the model's output, as in \
                 Captum)",
                method.name()
            ),
            found: "'probability'".into(),
        });
    }
    let score = options.score.unwrap_or_else(|| method.default_score());
    let epsilon = options.epsilon.unwrap_or(1e-9);
    let mut occ = OcclusionOptions::for_input(model.input);
    if let Some(p) = options.patch {
        occ.patch = p;
        occ.stride = p;
    }
    if let Some(s) = options.stride {
        occ.stride = s;
    }
    let noise = || NoiseOptions {
        samples: options.samples.unwrap_or(50),
        sigma: options.sigma.unwrap_or(0.15),
        seed: options.seed,
        score,
        batch: options.batch,
    };
    let mut completeness = None;
    let maps = match method {
        Method::GradientXInput if options.signed => {
            gradient_x_input_signed(model, inputs, classes, score)?
        }
        Method::GradientXInput => gradient_x_input(model, inputs, classes)?,
        Method::Occlusion => occlusion(model, inputs, &occ)?,
        Method::OcclusionXGradient => occlusion_x_gradient(model, inputs, &occ)?,
        Method::IntegratedGradients => {
            let ig_options = IgOptions {
                steps: options.steps,
                score,
                ..IgOptions::default()
            };
            let r = integrated_gradients(model, inputs, classes, &options.baseline, &ig_options)?;
            completeness = Some(CompletenessReport {
                error: r.completeness_error,
                delta: r.delta,
                regions: None,
            });
            r.attributions
        }
        Method::ExactIntegratedGradients => {
            let exact = ExactIgOptions {
                score,
                ..ExactIgOptions::default()
            };
            let r = exact_integrated_gradients(model, inputs, classes, &options.baseline, &exact)?;
            completeness = Some(CompletenessReport {
                error: r.ig.completeness_error,
                delta: r.ig.delta,
                regions: Some(r.regions),
            });
            r.ig.attributions
        }
        Method::SaliencyMap => saliency_map(model, inputs, classes, score)?,
        Method::Smoothgrad => smoothgrad(model, inputs, classes, &noise())?,
        Method::Vargrad => vargrad(model, inputs, classes, &noise())?,
        Method::GradientShap => {
            let [c, h, w] = model.input;
            let baselines = match &options.baseline {
                Baseline::Given(r) => r.clone(),
                Baseline::Black => Tensor::zeros(&[1, c, h, w]),
                Baseline::Gray => {
                    return Err(AttributionError::Option {
                        option: "baseline",
                        expected: "black or a given reference for gradient-shap".into(),
                        found: "'gray'".into(),
                    })
                }
            };
            let shap = GradientShapOptions {
                samples: options.samples.unwrap_or(50),
                sigma: options.sigma.unwrap_or(0.0),
                seed: options.seed,
                score,
                batch: options.batch,
            };
            gradient_shap(model, inputs, classes, &baselines, &shap)?
        }
        Method::GradCam => {
            let cam = GradCamOptions {
                layer: options.layer.clone(),
                relu: false,
                score,
            };
            grad_cam(model, inputs, classes, &cam)?
        }
        Method::ShapleySampling => {
            let mut shapley = ShapleyOptions::for_input(model.input);
            shapley.patch = options.patch.unwrap_or(shapley.patch);
            shapley.samples = options.samples.unwrap_or(shapley.samples);
            shapley.seed = options.seed;
            shapley.score = score;
            shapley_sampling(model, inputs, classes, &shapley)?
        }
        Method::GuidedBackprop => guided_backprop(model, inputs, classes)?,
        Method::Deconvnet => deconvnet(model, inputs, classes)?,
        Method::GuidedGradCam => guided_grad_cam(model, inputs, classes, options.layer.as_deref())?,
        Method::LrpEpsilon => lrp(model, inputs, classes, LrpRule::Epsilon { epsilon })?,
        Method::LrpGamma => {
            let gamma = options.gamma.unwrap_or(0.25);
            lrp(model, inputs, classes, LrpRule::Gamma { gamma, epsilon })?
        }
        Method::LrpAlphaBeta => {
            let (alpha, beta) = (options.alpha.unwrap_or(2.0), options.beta.unwrap_or(1.0));
            let rule = LrpRule::AlphaBeta {
                alpha,
                beta,
                epsilon,
            };
            lrp(model, inputs, classes, rule)?
        }
        Method::Deeplift => {
            let r = deeplift(model, inputs, classes, &options.baseline)?;
            completeness = Some(CompletenessReport {
                error: r.completeness_error,
                delta: r.delta,
                regions: None,
            });
            r.attributions
        }
    };
    Ok(MethodOutput { maps, completeness })
}
