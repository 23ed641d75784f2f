//! `Pool2dGeometry`: the validated shape of one 2-D pooling, the one place pooling can fail.

use crate::PoolError;

/// The shape of a square-window 2-D pooling over an NCHW tensor: no padding, floor mode.
///
/// Build it with [`Pool2dGeometry::new`], which checks every field; the fields are public for
/// reading. The kernels re-check that a geometry is consistent (so one assembled by hand with
/// a wrong `out_h` panics with a message rather than pooling the wrong windows).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pool2dGeometry {
    /// Number of images, N.
    pub batch: usize,
    /// Channels per image, C.
    pub channels: usize,
    /// Input height, H.
    pub in_h: usize,
    /// Input width, W.
    pub in_w: usize,
    /// Window side: every window is `kernel x kernel`.
    pub kernel: usize,
    /// Step between window origins, the same along both axes.
    pub stride: usize,
    /// Output height, `(in_h - kernel) / stride + 1`.
    pub out_h: usize,
    /// Output width, `(in_w - kernel) / stride + 1`.
    pub out_w: usize,
}

impl Pool2dGeometry {
    /// Validates a pooling of `batch x channels x in_h x in_w` by `kernel x kernel` windows
    /// stepped by `stride`.
    ///
    /// No padding, floor mode: `out = (in - kernel) / stride + 1`, so trailing rows or columns
    /// that do not fill a whole window are ignored. `kernel != stride` is allowed (AlexNet
    /// pools 3x3 windows with stride 2, so neighbouring windows overlap).
    ///
    /// Fails if any size is zero, if the kernel is larger than the input along an axis, if the
    /// input length overflows `usize`, or if one plane (`in_h * in_w`) exceeds `u32::MAX`
    /// elements, the range of the argmax indices.
    pub fn new(
        batch: usize,
        channels: usize,
        in_h: usize,
        in_w: usize,
        kernel: usize,
        stride: usize,
    ) -> Result<Self, PoolError> {
        let sizes = [
            ("batch", batch),
            ("channels", channels),
            ("in_h", in_h),
            ("in_w", in_w),
            ("kernel", kernel),
            ("stride", stride),
        ];
        for (field, value) in sizes {
            if value == 0 {
                return Err(PoolError::ZeroSize { field });
            }
        }
        for (field, found) in [("in_h", in_h), ("in_w", in_w)] {
            if kernel > found {
                return Err(PoolError::KernelTooLarge {
                    field,
                    kernel,
                    found,
                });
            }
        }
        let plane = in_h.checked_mul(in_w).ok_or(PoolError::Overflow {
            what: "in_h * in_w",
            factors: vec![in_h, in_w],
        })?;
        // Argmax indices are u32 offsets inside one plane; capping the plane at u32::MAX
        // elements keeps every index (and the count itself) representable.
        let max = u32::MAX as usize;
        if plane > max {
            return Err(PoolError::PlaneTooLarge { found: plane, max });
        }
        batch
            .checked_mul(channels)
            .and_then(|bc| bc.checked_mul(plane))
            .ok_or(PoolError::Overflow {
                what: "batch * channels * in_h * in_w",
                factors: vec![batch, channels, in_h, in_w],
            })?;
        // The output is never longer than the input (out <= in along each axis), so its
        // length cannot overflow once the input's does not.
        let out_h = (in_h - kernel) / stride + 1;
        let out_w = (in_w - kernel) / stride + 1;
        Ok(Self {
            batch,
            channels,
            in_h,
            in_w,
            kernel,
            stride,
            out_h,
            out_w,
        })
    }

    /// Elements in the input, `N * C * H * W`.
    pub fn input_len(&self) -> usize {
        self.batch * self.channels * self.in_plane()
    }

    /// Elements in the output (and in the argmax buffer), `N * C * H_out * W_out`.
    pub fn output_len(&self) -> usize {
        self.batch * self.channels * self.out_plane()
    }

    /// The same pooling for another batch size (the last batch of an epoch may be short).
    pub fn with_batch(&self, batch: usize) -> Result<Self, PoolError> {
        Self::new(
            batch,
            self.channels,
            self.in_h,
            self.in_w,
            self.kernel,
            self.stride,
        )
    }

    /// Elements in one (n, c) input plane.
    pub(crate) fn in_plane(&self) -> usize {
        self.in_h * self.in_w
    }

    /// Elements in one (n, c) output plane.
    pub(crate) fn out_plane(&self) -> usize {
        self.out_h * self.out_w
    }

    /// Panics unless `self` is exactly what [`Pool2dGeometry::new`] builds from its sizes.
    ///
    /// The fields are public, so a kernel cannot assume they were validated; this O(1) check
    /// keeps a hand-assembled geometry from reading the wrong windows.
    pub(crate) fn assert_consistent(&self, op: &str) {
        match Self::new(
            self.batch,
            self.channels,
            self.in_h,
            self.in_w,
            self.kernel,
            self.stride,
        ) {
            Ok(valid) if valid == *self => {}
            Ok(valid) => {
                panic!("{op}: inconsistent geometry {self:?}; Pool2dGeometry::new gives {valid:?}")
            }
            Err(e) => panic!("{op}: invalid geometry: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_size_is_floor_of_windows_that_fit() {
        // 224 -> AlexNet-style 3x3 stride 2: (224 - 3) / 2 + 1 = 111 (221 / 2 floors to 110).
        let g = Pool2dGeometry::new(2, 3, 224, 225, 3, 2).unwrap();
        assert_eq!((g.out_h, g.out_w), (111, 112));
        // 5x7 with 2x2 stride 2: (5 - 2) / 2 + 1 = 2 rows, (7 - 2) / 2 + 1 = 3 columns.
        let g = Pool2dGeometry::new(1, 1, 5, 7, 2, 2).unwrap();
        assert_eq!((g.out_h, g.out_w), (2, 3));
        assert_eq!((g.input_len(), g.output_len()), (35, 6));
        // kernel == input: one window.
        let g = Pool2dGeometry::new(4, 2, 3, 3, 3, 5).unwrap();
        assert_eq!((g.out_h, g.out_w, g.output_len()), (1, 1, 8));
    }

    #[test]
    fn with_batch_keeps_everything_else() {
        let g = Pool2dGeometry::new(8, 3, 9, 10, 3, 2).unwrap();
        let h = g.with_batch(5).unwrap();
        assert_eq!(h, Pool2dGeometry { batch: 5, ..g });
        assert_eq!(
            g.with_batch(0).unwrap_err(),
            PoolError::ZeroSize { field: "batch" }
        );
    }

    #[test]
    fn each_zero_size_is_named() {
        let ok = [2, 3, 6, 7, 2, 1];
        let fields = ["batch", "channels", "in_h", "in_w", "kernel", "stride"];
        for (i, field) in fields.into_iter().enumerate() {
            let mut s = ok;
            s[i] = 0;
            let err = Pool2dGeometry::new(s[0], s[1], s[2], s[3], s[4], s[5]).unwrap_err();
            assert_eq!(err, PoolError::ZeroSize { field });
            let msg = err.to_string();
            assert!(
                msg.contains(field) && msg.contains("at least 1, found 0"),
                "{msg}"
            );
        }
    }

    #[test]
    fn kernel_larger_than_input_is_named_per_axis() {
        let err = Pool2dGeometry::new(1, 1, 2, 9, 3, 1).unwrap_err();
        assert_eq!(
            err,
            PoolError::KernelTooLarge {
                field: "in_h",
                kernel: 3,
                found: 2
            }
        );
        assert!(
            err.to_string().contains("in_h = 2; expected in_h >= 3"),
            "{err}"
        );
        let err = Pool2dGeometry::new(1, 1, 9, 2, 3, 1).unwrap_err();
        assert_eq!(
            err,
            PoolError::KernelTooLarge {
                field: "in_w",
                kernel: 3,
                found: 2
            }
        );
    }

    #[test]
    fn overflow_is_caught() {
        let err = Pool2dGeometry::new(usize::MAX, 2, 1, 1, 1, 1).unwrap_err();
        assert_eq!(
            err,
            PoolError::Overflow {
                what: "batch * channels * in_h * in_w",
                factors: vec![usize::MAX, 2, 1, 1]
            }
        );
        assert!(err.to_string().contains("overflows usize"), "{err}");
        let err = Pool2dGeometry::new(1, 1, usize::MAX, 2, 1, 1).unwrap_err();
        assert_eq!(
            err,
            PoolError::Overflow {
                what: "in_h * in_w",
                factors: vec![usize::MAX, 2]
            }
        );
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn plane_must_fit_u32_argmax() {
        // 65536 * 65536 = 2^32 = u32::MAX + 1: one element too many. Nothing is allocated.
        let err = Pool2dGeometry::new(1, 1, 1 << 16, 1 << 16, 2, 2).unwrap_err();
        assert_eq!(
            err,
            PoolError::PlaneTooLarge {
                found: 1 << 32,
                max: u32::MAX as usize
            }
        );
        assert!(
            err.to_string().contains("expected at most 4294967295"),
            "{err}"
        );
        assert!(Pool2dGeometry::new(1, 1, 65535, 65537, 2, 2).is_ok()); // 2^32 - 1 elements
    }

    #[test]
    #[should_panic(expected = "inconsistent geometry")]
    fn hand_built_geometry_is_rechecked() {
        let g = Pool2dGeometry::new(1, 1, 6, 6, 2, 2).unwrap();
        Pool2dGeometry { out_h: 4, ..g }.assert_consistent("test");
    }
}
