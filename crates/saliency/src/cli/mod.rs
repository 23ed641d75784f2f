//! The command line: argument parsing with clap and one module per subcommand.

mod adversary;
mod attribute;
mod attribute_method;
mod bench;
mod checkpoint_data;
mod choices;
mod common;
mod download;
mod eval;
mod evaluate_attribution;
mod models;
mod study;
mod study_bar;
mod train;
mod user_images;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Input attribution and adversarial examples on a from-scratch CNN engine.
#[derive(Parser, Debug)]
#[command(
    name = "saliency",
    version,
    about = "saliency: input attribution and adversarial examples on a CPU-only CNN engine \
             written from scratch (tensors, convolution, autodiff). Reproduces the study \
             'Input Attribution and Adversarial Examples': `saliency study` runs it whole.",
    long_about = None,
    propagate_version = true,
    after_help = "`saliency help COMMAND` or `saliency COMMAND --help` lists a command's options."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the whole study (training, attribution, adversarial examples) and write a report.
    Study(study::StudyArgs),
    /// Print each model's layer table (layer, output shape, parameters) and total.
    Models(models::ModelsArgs),
    /// Train a model and write model.safetensors, config.json and metrics.jsonl.
    Train(train::TrainArgs),
    /// Evaluate a checkpoint on its data set's test split.
    Eval(eval::EvalArgs),
    /// Attribution maps of test images or image files (the study's methods, SmoothGrad, Grad-CAM,
    /// LRP, DeepLIFT, ...; `--method` lists them).
    Attribute(attribute::AttributeArgs),
    /// Which attribution map to trust: deletion/insertion areas, infidelity, max-sensitivity,
    /// completeness and the randomization sanity check, per method.
    EvaluateAttribution(evaluate_attribution::EvaluateAttributionArgs),
    /// Adversarial examples (the study's attacks and controls; PGD, targeted, DeepFool, Carlini-Wagner),
    /// flip statistics and robust accuracy curves.
    Adversary(adversary::AdversaryArgs),
    /// Time a workload (train-step, infer, gradient-x-input, integrated-gradients, fgsm, pgd-step,
    /// occlusion and the rule-based attribution methods) on synthetic data and print images per
    /// second.
    Bench(bench::BenchArgs),
    /// Download a full data set (fashion-mnist, flowers, flowers17) from its official address,
    /// checked against its pinned checksum.
    Download(download::DownloadArgs),
}

/// Parses the arguments and runs the subcommand; errors are printed without a backtrace.
pub fn main() -> ExitCode {
    crate::allocator::keep_freed_memory();
    let cli = Cli::parse();
    // An unusable SALIENCY_SIMD is refused here, before any kernel runs, rather than left to
    // the library's warning and fallback.
    if let Err(e) = tensor::cpu::init_from_env() {
        eprintln!("error: {}: {e}", tensor::cpu::SIMD_ENV);
        return ExitCode::from(1);
    }
    let result = match cli.command {
        Command::Study(a) => common::on_pool(a.threads, move || study::run(a)),
        Command::Models(a) => models::run(a),
        Command::Train(a) => common::on_pool(a.threads, move || train::run(a)),
        Command::Eval(a) => common::on_pool(a.threads, move || eval::run(a)),
        Command::Attribute(a) => common::on_pool(a.threads, move || attribute::run(a)),
        Command::EvaluateAttribution(a) => {
            common::on_pool(a.threads, move || evaluate_attribution::run(a))
        }
        Command::Adversary(a) => common::on_pool(a.threads, move || adversary::run(a)),
        Command::Bench(a) => common::on_pool(a.threads, move || bench::run(a)),
        Command::Download(a) => download::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_message(&e));
            ExitCode::from(1)
        }
    }
}

/// The error and its causes joined by ": ", each said once: many errors already quote their
/// source in their own message, which anyhow's `{:#}` then appended again ("Permission denied
/// (os error 13): Permission denied (os error 13)").
fn error_message(e: &anyhow::Error) -> String {
    let mut message = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_already_quoted_is_not_repeated() {
        let io = std::io::Error::from_raw_os_error(13);
        let e =
            anyhow::Error::new(io).context("writing out/a.png: Permission denied (os error 13)");
        assert_eq!(
            error_message(&e),
            "writing out/a.png: Permission denied (os error 13)"
        );
        let e = anyhow::Error::msg("inner cause").context("loading the data");
        assert_eq!(error_message(&e), "loading the data: inner cause");
    }
}
