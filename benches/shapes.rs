//! Layer shapes of the study's two Fashion-MNIST networks, shared by the criterion benches.
//!
//! `deep`: nine 3x3 convs (padding 1), 2x2 pools after conv1..conv4 (28 -> 14 -> 7 -> 3 -> 1), so
//! conv5..conv9 see 1x1 maps. `alexnet`: conv1 11/4 (28 -> 5), a 3/2 pool (5 -> 2), then
//! conv2 5/1/2 and conv3..conv5 3/1/1 on 2x2 maps.

#![allow(dead_code)] // each bench uses part of this file

/// One convolution: (name, in channels, side, out channels, kernel, stride, padding).
pub type ConvShape = (&'static str, usize, usize, usize, usize, usize, usize);

/// The deep network's convolutions.
pub const DEEP_CONVS: [ConvShape; 9] = [
    ("deep.conv1", 1, 28, 16, 3, 1, 1),
    ("deep.conv2", 16, 14, 16, 3, 1, 1),
    ("deep.conv3", 16, 7, 16, 3, 1, 1),
    ("deep.conv4", 16, 3, 32, 3, 1, 1),
    ("deep.conv5", 32, 1, 32, 3, 1, 1),
    ("deep.conv6", 32, 1, 32, 3, 1, 1),
    ("deep.conv7", 32, 1, 64, 3, 1, 1),
    ("deep.conv8", 64, 1, 64, 3, 1, 1),
    ("deep.conv9", 64, 1, 64, 3, 1, 1),
];

/// AlexNet's convolutions.
pub const ALEXNET_CONVS: [ConvShape; 5] = [
    ("alexnet.conv1", 1, 28, 96, 11, 4, 0),
    ("alexnet.conv2", 96, 2, 256, 5, 1, 2),
    ("alexnet.conv3", 256, 2, 384, 3, 1, 1),
    ("alexnet.conv4", 384, 2, 384, 3, 1, 1),
    ("alexnet.conv5", 384, 2, 256, 3, 1, 1),
];

/// Dense layers: (name, in, out).
pub const DENSE: [(&str, usize, usize); 6] = [
    ("deep.fc1", 64, 512),
    ("deep.fc2", 512, 50),
    ("deep.fc3", 50, 10),
    ("alexnet.fc1", 1024, 2048),
    ("alexnet.fc2", 2048, 2048),
    ("alexnet.fc3", 2048, 10),
];

/// Max-pools: (name, channels, side, kernel, stride).
pub const POOLS: [(&str, usize, usize, usize, usize); 5] = [
    ("deep.pool1", 16, 28, 2, 2),
    ("deep.pool2", 16, 14, 2, 2),
    ("deep.pool3", 16, 7, 2, 2),
    ("deep.pool4", 32, 3, 2, 2),
    ("alexnet.pool1", 96, 5, 3, 2),
];

/// The batch sizes the study trains with and the larger one used for throughput.
pub const BATCHES: [usize; 2] = [16, 128];

/// Deterministic values in [-1, 1): a small LCG, so benches need no random-number crate.
pub fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}
