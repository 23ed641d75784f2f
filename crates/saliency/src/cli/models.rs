//! `saliency models`: every model's layer table for both input shapes.

use clap::Args;

use crate::models::{layer_table, Model, ModelKind};

/// Options of `saliency models`.
#[derive(Args, Debug)]
pub struct ModelsArgs {
    /// Only this model (deep, alexnet, medium).
    #[arg(long)]
    model: Option<ModelKind>,
}

/// Prints the tables.
pub fn run(args: ModelsArgs) -> anyhow::Result<()> {
    let kinds: Vec<ModelKind> = args
        .model
        .map(|k| vec![k])
        .unwrap_or_else(|| ModelKind::ALL.to_vec());
    for kind in kinds {
        for (data, input, classes) in [
            ("Fashion-MNIST", [1, 28, 28], 10),
            ("flowers RGB", [3, 256, 256], 5),
        ] {
            let model: Model<f32> = kind.build(input, classes, 0)?;
            println!(
                "{kind} on {data} (input {}x{}x{}, {classes} classes)",
                input[0], input[1], input[2]
            );
            println!("  {:<24} {:>16} {:>12}", "layer", "output", "parameters");
            for row in layer_table(&model) {
                let shape = row
                    .output
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join("x");
                println!(
                    "  {:<24} {:>16} {:>12}",
                    row.layer,
                    shape,
                    group(row.params)
                );
            }
            let stats = model.total_count() - model.param_count();
            let extra = if stats > 0 {
                format!(
                    " ({} trainable + {} running statistics)",
                    group(model.param_count()),
                    group(stats)
                )
            } else {
                String::new()
            };
            println!("  total {}{extra}\n", group(model.total_count()));
        }
    }
    Ok(())
}

/// 10041418 -> "10,041,418".
fn group(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}
