//! `Conv2dGeometry`: the validated shape of one 2-D convolution, the one place convolution can fail.

use crate::conv2d::MAX_WEIGHT_PARTIALS;
use crate::ConvError;

/// The shape of a square-kernel 2-D convolution over an NCHW tensor, with the same stride and
/// zero padding along both axes.
///
/// Build it with [`Conv2dGeometry::new`], which checks every field; the fields are public for
/// reading. The kernels re-check that a geometry is consistent, so one assembled by hand with a
/// wrong `out_h` panics with a message rather than convolving the wrong windows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv2dGeometry {
    /// Number of images, N.
    pub batch: usize,
    /// Input channels per image, C.
    pub in_channels: usize,
    /// Input height, H.
    pub in_h: usize,
    /// Input width, W.
    pub in_w: usize,
    /// Output channels (number of filters), Cout.
    pub out_channels: usize,
    /// Kernel side, K: every filter is `in_channels x K x K`.
    pub kernel: usize,
    /// Step between window origins, the same along both axes.
    pub stride: usize,
    /// Zero rows and columns added on every side of the input.
    pub padding: usize,
    /// Output height, `(in_h + 2 * padding - kernel) / stride + 1`.
    pub out_h: usize,
    /// Output width, `(in_w + 2 * padding - kernel) / stride + 1`.
    pub out_w: usize,
}

/// The product of `factors`, or an [`ConvError::Overflow`] naming `what`.
fn checked_product(what: &'static str, factors: &[usize]) -> Result<usize, ConvError> {
    factors
        .iter()
        .try_fold(1usize, |acc, &f| acc.checked_mul(f))
        .ok_or_else(|| ConvError::Overflow {
            what,
            factors: factors.to_vec(),
        })
}

impl Conv2dGeometry {
    /// Validates a convolution of a `batch x in_channels x in_h x in_w` input by `out_channels`
    /// filters of `in_channels x kernel x kernel`, stepped by `stride`, over the input padded
    /// with `padding` zeros on every side.
    ///
    /// Floor mode: `out = (in + 2 * padding - kernel) / stride + 1`. Padding may be as large as
    /// the kernel or larger (some windows then see only zeros); all that matters is that the
    /// kernel fits in the padded input, which also guarantees `out >= 1`.
    ///
    /// Fails if any size other than `padding` is zero, if the kernel is larger than the padded
    /// input along an axis, or if any element count the kernels use (input, output, weight, the
    /// im2col matrix and the workspace) overflows `usize`.
    #[allow(clippy::too_many_arguments)] // the eight numbers that define a convolution
    pub fn new(
        batch: usize,
        in_channels: usize,
        in_h: usize,
        in_w: usize,
        out_channels: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> Result<Self, ConvError> {
        let sizes = [
            ("batch", batch),
            ("in_channels", in_channels),
            ("in_h", in_h),
            ("in_w", in_w),
            ("out_channels", out_channels),
            ("kernel", kernel),
            ("stride", stride),
        ];
        for (field, value) in sizes {
            if value == 0 {
                return Err(ConvError::ZeroSize { field });
            }
        }
        let padded = |side: usize| {
            padding
                .checked_mul(2)
                .and_then(|p2| p2.checked_add(side))
                .ok_or_else(|| ConvError::Overflow {
                    what: "in + 2 * padding",
                    factors: vec![side, padding],
                })
        };
        let (padded_h, padded_w) = (padded(in_h)?, padded(in_w)?);
        if kernel > padded_h || kernel > padded_w {
            return Err(ConvError::KernelTooLarge {
                kernel,
                in_h,
                in_w,
                padding,
                padded_h,
                padded_w,
            });
        }
        // kernel <= padded, so the first window fits and out >= 1: no zero-size output case.
        let out_h = (padded_h - kernel) / stride + 1;
        let out_w = (padded_w - kernel) / stride + 1;

        // Check every count the kernels compute with plain `*`, so they never overflow later.
        checked_product(
            "batch * in_channels * in_h * in_w",
            &[batch, in_channels, in_h, in_w],
        )?;
        checked_product(
            "batch * out_channels * out_h * out_w",
            &[batch, out_channels, out_h, out_w],
        )?;
        checked_product(
            "out_channels * in_channels * kernel * kernel",
            &[out_channels, in_channels, kernel, kernel],
        )?;
        let col_rows = checked_product(
            "in_channels * kernel * kernel",
            &[in_channels, kernel, kernel],
        )?;
        let col_cols = checked_product("batch * out_h * out_w", &[batch, out_h, out_w])?;
        // The largest workspace (the weight backward's) holds the im2col matrix, one
        // (out_channels, col_cols) matrix and up to MAX_WEIGHT_PARTIALS partial weight gradients.
        let workspace = (col_rows.checked_add(out_channels))
            .and_then(|rows| rows.checked_mul(col_cols))
            .zip(MAX_WEIGHT_PARTIALS.checked_mul(out_channels * col_rows))
            .and_then(|(matrices, partials)| matrices.checked_add(partials));
        if workspace.is_none() {
            return Err(ConvError::Overflow {
                what: "workspace (in_channels * kernel * kernel + out_channels) * col_cols + partials * weight_len",
                factors: vec![col_rows, out_channels, col_cols, MAX_WEIGHT_PARTIALS, out_channels * col_rows],
            });
        }

        Ok(Self {
            batch,
            in_channels,
            in_h,
            in_w,
            out_channels,
            kernel,
            stride,
            padding,
            out_h,
            out_w,
        })
    }

    /// Elements in the input, `N * C * H * W`.
    pub fn input_len(&self) -> usize {
        self.batch * self.in_channels * self.in_plane()
    }

    /// Elements in the output, `N * Cout * OH * OW`.
    pub fn output_len(&self) -> usize {
        self.batch * self.out_channels * self.out_plane()
    }

    /// Elements in the weight, `Cout * C * K * K` (PyTorch layout `[out, in, kh, kw]`).
    pub fn weight_len(&self) -> usize {
        self.out_channels * self.col_rows()
    }

    /// Rows of the im2col matrix, `C * K * K`: one per (channel, ky, kx) tap.
    pub fn col_rows(&self) -> usize {
        self.in_channels * self.kernel * self.kernel
    }

    /// Columns of the im2col matrix, `N * OH * OW`: one per output pixel of the batch.
    pub fn col_cols(&self) -> usize {
        self.batch * self.out_plane()
    }

    /// The same convolution for another batch size (the last batch of an epoch may be short).
    pub fn with_batch(&self, batch: usize) -> Result<Self, ConvError> {
        Self::new(
            batch,
            self.in_channels,
            self.in_h,
            self.in_w,
            self.out_channels,
            self.kernel,
            self.stride,
            self.padding,
        )
    }

    /// Elements in one (n, c) input plane, `H * W`.
    pub(crate) fn in_plane(&self) -> usize {
        self.in_h * self.in_w
    }

    /// Elements in one (n, cout) output plane, `OH * OW`.
    pub(crate) fn out_plane(&self) -> usize {
        self.out_h * self.out_w
    }

    /// Panics unless `self` is exactly what [`Conv2dGeometry::new`] builds from its sizes.
    ///
    /// The fields are public, so a kernel cannot assume they were validated; this O(1) check
    /// keeps a hand-assembled geometry from reading the wrong windows or overflowing.
    pub(crate) fn assert_consistent(&self, op: &str) {
        let rebuilt = Self::new(
            self.batch,
            self.in_channels,
            self.in_h,
            self.in_w,
            self.out_channels,
            self.kernel,
            self.stride,
            self.padding,
        );
        match rebuilt {
            Ok(valid) if valid == *self => {}
            Ok(valid) => {
                panic!("{op}: inconsistent geometry {self:?}; Conv2dGeometry::new gives {valid:?}")
            }
            Err(e) => panic!("{op}: invalid geometry: {e}"),
        }
    }
}

/// Panics with a message naming the buffer unless `found == expected`: a wrong length is a
/// programming error, not a recoverable condition.
pub(crate) fn assert_len(op: &str, buffer: &str, expected: usize, found: usize) {
    assert!(
        found == expected,
        "{op}: {buffer} has length {found}, expected {expected}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(r: Result<Conv2dGeometry, ConvError>) -> String {
        r.expect_err("geometry should be rejected").to_string()
    }

    #[test]
    fn output_size_is_floor_of_windows_that_fit() {
        // 3x3 stride 1 padding 1 keeps the size: (28 + 2 - 3) / 1 + 1 = 28.
        let g = Conv2dGeometry::new(2, 3, 28, 28, 8, 3, 1, 1).unwrap();
        assert_eq!((g.out_h, g.out_w), (28, 28));
        assert_eq!(
            (g.input_len(), g.output_len(), g.weight_len()),
            (2 * 3 * 784, 2 * 8 * 784, 8 * 3 * 9)
        );
        assert_eq!((g.col_rows(), g.col_cols()), (27, 2 * 784));
        // AlexNet conv1: (227 - 11) / 4 + 1 = 55.
        let g = Conv2dGeometry::new(1, 3, 227, 227, 96, 11, 4, 0).unwrap();
        assert_eq!((g.out_h, g.out_w), (55, 55));
        // Non-square input, floor: (7 + 4 - 5) / 2 + 1 = 4 rows; (6 + 4 - 5) / 2 + 1 = 3 columns (5/2 floors).
        let g = Conv2dGeometry::new(1, 1, 7, 6, 1, 5, 2, 2).unwrap();
        assert_eq!((g.out_h, g.out_w), (4, 3));
        // Padding larger than the kernel is fine while the kernel fits: (1 + 6 - 2) / 1 + 1 = 6.
        let g = Conv2dGeometry::new(1, 1, 1, 1, 1, 2, 1, 3).unwrap();
        assert_eq!((g.out_h, g.out_w), (6, 6));
    }

    #[test]
    fn with_batch_keeps_everything_else() {
        let g = Conv2dGeometry::new(4, 3, 10, 12, 5, 3, 2, 1).unwrap();
        let h = g.with_batch(1).unwrap();
        assert_eq!(h, Conv2dGeometry { batch: 1, ..g });
        assert!(err(g.with_batch(0)).contains("batch"));
    }

    #[test]
    fn zero_sizes_are_named() {
        let cases: [(&str, [usize; 8]); 7] = [
            ("batch", [0, 1, 4, 4, 1, 3, 1, 0]),
            ("in_channels", [1, 0, 4, 4, 1, 3, 1, 0]),
            ("in_h", [1, 1, 0, 4, 1, 3, 1, 2]),
            ("in_w", [1, 1, 4, 0, 1, 3, 1, 2]),
            ("out_channels", [1, 1, 4, 4, 0, 3, 1, 0]),
            ("kernel", [1, 1, 4, 4, 1, 0, 1, 0]),
            ("stride", [1, 1, 4, 4, 1, 3, 0, 0]),
        ];
        for (field, [n, c, h, w, co, k, s, p]) in cases {
            let msg = err(Conv2dGeometry::new(n, c, h, w, co, k, s, p));
            assert_eq!(msg, format!("conv2d: {field} must be at least 1, found 0"));
        }
    }

    #[test]
    fn kernel_larger_than_padded_input_is_rejected() {
        let msg = err(Conv2dGeometry::new(1, 1, 1, 1, 1, 5, 1, 1));
        assert!(
            msg.starts_with(
                "conv2d: kernel 5 is larger than the padded input 3x3 (input 1x1, padding 1)"
            ),
            "{msg}"
        );
        // Only one axis too small is enough.
        let msg = err(Conv2dGeometry::new(1, 1, 10, 2, 1, 5, 1, 1));
        assert!(
            msg.contains("padded input 12x4 (input 10x2, padding 1)"),
            "{msg}"
        );
        assert!(msg.contains("expected kernel <= 4"), "{msg}");
    }

    #[test]
    fn overflow_is_rejected_with_the_product_named() {
        let big = usize::MAX / 2 + 1;
        let msg = err(Conv2dGeometry::new(1, 1, 4, 4, 1, 3, 1, big));
        assert!(
            msg.contains("in + 2 * padding") && msg.contains("overflows usize"),
            "{msg}"
        );
        let msg = err(Conv2dGeometry::new(big, 4, 1, 1, 1, 1, 1, 0));
        assert!(msg.contains("batch * in_channels * in_h * in_w"), "{msg}");
        let msg = err(Conv2dGeometry::new(2, 1, 1, 1, big, 1, 1, 0));
        assert!(
            msg.contains("batch * out_channels * out_h * out_w"),
            "{msg}"
        );
        // Every buffer fits, but the workspace (im2col matrix plus partial gradients) does not.
        let msg = err(Conv2dGeometry::new(1, 1, 1, 1, usize::MAX / 4, 1, 1, 0));
        assert!(msg.contains("workspace"), "{msg}");
        // A huge kernel over a huge padded input: K * K overflows even though each fits.
        let k = 1usize << (usize::BITS / 2 + 1);
        let msg = err(Conv2dGeometry::new(1, 1, 1, 1, 1, k, 1, k / 2));
        assert!(msg.contains("kernel * kernel"), "{msg}");
    }

    #[test]
    #[should_panic(expected = "inconsistent geometry")]
    fn hand_built_geometry_is_checked() {
        let g = Conv2dGeometry::new(1, 1, 5, 5, 1, 3, 1, 0).unwrap();
        Conv2dGeometry { out_h: 4, ..g }.assert_consistent("test");
    }
}
