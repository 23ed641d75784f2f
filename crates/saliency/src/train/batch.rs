//! Minibatches: the epoch's seeded permutation, gathering images, and augmentation.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::data::{DataError, ImageSource};
use crate::models::mix_seed;

use super::config::Augment;

/// The order of training images in `epoch`: a Fisher-Yates shuffle from ChaCha8 seeded by
/// (seed, epoch), so an epoch's order is known without replaying earlier ones (exact resume).
pub fn epoch_order(n: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(mix_seed(seed, 0x5EED_0000 + epoch));
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        // Multiply-shift maps 64 random bits to 0..=i without a modulo's bias worth caring about.
        let j = ((rng.next_u64() as u128 * (i as u128 + 1)) >> 64) as usize;
        order.swap(i, j);
    }
    order
}

/// The images at `indices` in one (N, C, H, W) buffer, with their labels.
pub fn gather(
    data: &dyn ImageSource,
    indices: &[usize],
) -> Result<(Vec<f32>, Vec<usize>), DataError> {
    let mut images = vec![0.0; indices.len() * data.values_per_image()];
    data.fill(indices, &mut images)?;
    let labels = data.labels();
    Ok((
        images,
        indices.iter().map(|&i| labels[i] as usize).collect(),
    ))
}

/// Applies flips and shifts in place, drawn from `seed` (one seed per step).
pub fn augment(images: &mut [f32], shape: [usize; 3], aug: &Augment, seed: u64) {
    if !aug.hflip && aug.max_shift == 0 {
        return;
    }
    let [c, h, w] = shape;
    let per = c * h * w;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Saturating and capped so an absurd shift (the CLI refuses shifts >= the image side) just
    // blanks the image instead of overflowing; every realistic shift keeps its exact draws.
    let max_shift = aug.max_shift.min(isize::MAX as usize / 4);
    let span = (max_shift as u64).saturating_mul(2).saturating_add(1);
    let mut scratch = vec![0.0f32; per];
    for img in images.chunks_exact_mut(per) {
        let r = rng.next_u64();
        let flip = aug.hflip && r & 1 == 1;
        let dx = ((r >> 8) % span) as isize - max_shift as isize;
        let dy = ((r >> 32) % span) as isize - max_shift as isize;
        scratch.iter_mut().for_each(|v| *v = 0.0);
        for ch in 0..c {
            for y in 0..h as isize {
                let sy = y - dy;
                if sy < 0 || sy >= h as isize {
                    continue;
                }
                for x in 0..w as isize {
                    let mut sx = x - dx;
                    if sx < 0 || sx >= w as isize {
                        continue;
                    }
                    if flip {
                        sx = w as isize - 1 - sx;
                    }
                    scratch[ch * h * w + y as usize * w + x as usize] =
                        img[ch * h * w + sy as usize * w + sx as usize];
                }
            }
        }
        img.copy_from_slice(&scratch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_order_is_a_seeded_permutation() {
        let a = epoch_order(1000, 7, 3);
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
        assert_eq!(a, epoch_order(1000, 7, 3));
        assert_ne!(a, epoch_order(1000, 7, 4));
        assert_ne!(a, epoch_order(1000, 8, 3));
    }

    #[test]
    fn flip_mirrors_and_shift_moves_with_zero_fill() {
        let img: Vec<f32> = (0..9).map(|v| v as f32 + 1.0).collect();
        // Find a seed whose first draw flips without shifting (max_shift 0 => no shift).
        let mut flipped = img.clone();
        let aug = Augment {
            hflip: true,
            max_shift: 0,
        };
        let seed = (0..100)
            .find(|&s| ChaCha8Rng::seed_from_u64(s).next_u64() & 1 == 1)
            .unwrap();
        augment(&mut flipped, [1, 3, 3], &aug, seed);
        assert_eq!(flipped, vec![3.0, 2.0, 1.0, 6.0, 5.0, 4.0, 9.0, 8.0, 7.0]);
        let mut shifted = img.clone();
        augment(
            &mut shifted,
            [1, 3, 3],
            &Augment {
                hflip: false,
                max_shift: 1,
            },
            1,
        );
        let kept = shifted.iter().filter(|&&v| v != 0.0).count();
        assert!(
            kept == 9 || kept == 6 || kept == 4,
            "a shift of at most one pixel keeps 9, 6 or 4 pixels, kept {kept}"
        );
    }
}
