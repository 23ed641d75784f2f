//! Weight initialization: Keras's glorot-uniform and PyTorch's default, from a seeded ChaCha8.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How a model's weights are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Init {
    /// Keras default: weights U(-l, l) with l = sqrt(6 / (fan_in + fan_out)), biases zero.
    GlorotUniform,
    /// PyTorch default for conv and linear: weights and biases U(-b, b) with b = 1/sqrt(fan_in).
    TorchDefault,
}

/// A seeded source of uniform numbers; draws repeat across versions of this crate and of rand.
pub struct UniformSource {
    rng: ChaCha8Rng,
}

impl UniformSource {
    /// A source seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// A draw in [0, 1) with 53 random bits.
    pub fn next_unit(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A draw in [-limit, limit).
    pub fn symmetric(&mut self, limit: f64) -> f64 {
        (self.next_unit() * 2.0 - 1.0) * limit
    }

    /// A raw 64-bit draw (for seeding dropout masks).
    pub fn next_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }
}

/// Draws a weight tensor of `numel` elements and its bias of `fan_out_units` elements.
/// `fan_in` and `fan_out` count connections per output and per input unit (kernel area included).
pub fn draw_weight_and_bias(
    init: Init,
    src: &mut UniformSource,
    numel: usize,
    bias_len: usize,
    fan_in: usize,
    fan_out: usize,
) -> (Vec<f64>, Vec<f64>) {
    match init {
        Init::GlorotUniform => {
            let limit = (6.0 / (fan_in + fan_out) as f64).sqrt();
            (
                (0..numel).map(|_| src.symmetric(limit)).collect(),
                vec![0.0; bias_len],
            )
        }
        Init::TorchDefault => {
            // kaiming_uniform(a = sqrt(5)) reduces to bound 1/sqrt(fan_in); the bias uses the same.
            let bound = 1.0 / (fan_in as f64).sqrt();
            let w = (0..numel).map(|_| src.symmetric(bound)).collect();
            let b = (0..bias_len).map(|_| src.symmetric(bound)).collect();
            (w, b)
        }
    }
}
