# One cargo line per recipe (install just with `cargo install just`; every line also works by hand).
# Data: found as the README says (set SALIENCY_DATA for full copies; else the shipped data/sample).

# Run the whole study and write the report (quick profile).
study:
    cargo run --release -- study --out out/study

# Rebuild the report (finished steps are skipped, so this only redraws it).
report:
    cargo run --release -p saliency -- study --out out/study

# Run every test.
test:
    cargo test --workspace

# Criterion benchmarks of the kernels.
bench:
    cargo bench -p saliency

# Fuzz the IDX image parser for 10 minutes (see fuzz/README.md for the other targets).
fuzz:
    cargo fuzz run idx_images --sanitizer none -- -max_total_time=600

# Train the study's deep network on Fashion-MNIST.
train:
    cargo run --release -p saliency -- train --model deep --epochs 10 --out runs/deep

# Print every model's layer table.
models:
    cargo run --release -p saliency -- models
