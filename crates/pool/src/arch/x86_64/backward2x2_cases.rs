//! The cases both 2x2 backward kernels (AVX-512 and AVX2) are tested on, against the general
//! scatter's definition, bit for bit.

use crate::relu_max_pool2d::NO_WINNER;
use crate::{Pool2dGeometry, Upstream};

/// A kernel under test: writes one plane's input gradient, false when it declines the plane.
/// Its last argument says how each gradient is changed.
pub(crate) type Kernel<'a> =
    &'a dyn Fn(&Pool2dGeometry, &[f32], &[u32], &mut [f32], Upstream) -> bool;

/// The general backward's definition: zero, then add each gradient (clamped to the positive
/// unless `upstream` is as-is) at its winner (a window without one: nowhere, or its first
/// element under deconvnet's routing).
fn reference(g: &Pool2dGeometry, dy: &[f32], arg: &[u32], upstream: Upstream) -> Vec<f32> {
    let mut dx = vec![0.0f32; g.in_h * g.in_w];
    for (i, (&d, &a)) in dy.iter().zip(arg).enumerate() {
        let d = if upstream != Upstream::AsIs && !(d > 0.0) {
            0.0
        } else {
            d
        };
        let (oh, ow) = (i / g.out_w, i % g.out_w);
        let first = 2 * oh * g.in_w + 2 * ow;
        match (a, upstream) {
            (NO_WINNER, Upstream::PositiveNoWinnerToFirst) => dx[first] += d,
            (NO_WINNER, _) => {}
            (a, _) => dx[a as usize] += d,
        }
    }
    dx
}

/// `kernel` against [`reference`] on even and odd sides and rows of one to three vectors of
/// windows (8 or 16 a vector), full and partial, with -0.0, NaN and -inf among the gradients and
/// windows without a winner, under every [`Upstream`].
pub(crate) fn every_value_is_the_scatter_s(kernel: Kernel) {
    for (h, w) in [
        (28, 28),
        (14, 14),
        (7, 7),
        (3, 3),
        (2, 2),
        (5, 9),
        (4, 16),
        (4, 34),
        (9, 65),
        (2, 3),
    ] {
        let g = Pool2dGeometry::new(1, 1, h, w, 2, 2).expect("geometry");
        let outputs = g.out_h * g.out_w;
        let dy: Vec<f32> = (0..outputs)
            .map(|i| match i % 7 {
                0 => -0.0,
                3 => f32::NAN,
                5 => f32::NEG_INFINITY,
                _ => i as f32 * 0.75 - 3.0,
            })
            .collect();
        // each window's winner cycles through its four positions, some windows without one
        let arg: Vec<u32> = (0..outputs)
            .map(|i| {
                let (oh, ow) = (i / g.out_w, i % g.out_w);
                let (r, c) = ((i / 2) % 2, i % 2);
                if i % 5 == 4 {
                    NO_WINNER
                } else {
                    ((2 * oh + r) * w + 2 * ow + c) as u32
                }
            })
            .collect();
        for upstream in [
            Upstream::AsIs,
            Upstream::Positive,
            Upstream::PositiveNoWinnerToFirst,
        ] {
            let mut dx = vec![f32::NAN; h * w];
            assert!(kernel(&g, &dy, &arg, &mut dx, upstream), "{h}x{w} declined");
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            let want = reference(&g, &dy, &arg, upstream);
            assert_eq!(bits(&dx), bits(&want), "{h}x{w}, {upstream:?}");
        }
    }
}

/// `kernel` declines a plane where an argmax names a position outside its own window, and
/// takes one whose last, partial vector holds only valid windows.
pub(crate) fn an_argmax_outside_its_window_is_declined(kernel: Kernel) {
    let g = Pool2dGeometry::new(1, 1, 4, 4, 2, 2).expect("geometry");
    let mut dx = vec![0.0f32; 16];
    assert!(kernel(
        &g,
        &[1.0; 4],
        &[0, 3, 13, NO_WINNER],
        &mut dx,
        Upstream::AsIs
    ));
    assert!(
        !kernel(
            &g,
            &[1.0; 4],
            &[0, 3, 13, 1],
            &mut dx,
            Upstream::PositiveNoWinnerToFirst
        ),
        "window 3 names window 0's position"
    );
    assert!(
        !kernel(&g, &[1.0; 4], &[0, 3, 13, 16], &mut dx, Upstream::AsIs),
        "outside the plane"
    );
    let g = Pool2dGeometry::new(1, 1, 2, 6, 2, 2).expect("geometry");
    let mut dx = vec![0.0f32; 12];
    assert!(kernel(
        &g,
        &[1.0; 3],
        &[0, 3, 10],
        &mut dx,
        Upstream::Positive
    ));
}
