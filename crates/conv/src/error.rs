//! The conv crate's error type: geometry problems named with the field, what was expected and what was found.

/// Errors raised when a convolution geometry supplied by a caller cannot work.
///
/// Only [`Conv2dGeometry::new`](crate::Conv2dGeometry::new) (and `with_batch`) return these:
/// once a geometry exists, the kernels cannot fail except through buffer-length mistakes, which
/// are programming errors and panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConvError {
    /// A size that must be positive (batch, channels, in_h, in_w, kernel or stride) is zero.
    #[error("conv2d: {field} must be at least 1, found 0")]
    ZeroSize {
        /// The field's name as in `Conv2dGeometry::new`.
        field: &'static str,
    },
    /// The kernel does not fit in the zero-padded input along at least one axis.
    #[error(
        "conv2d: kernel {kernel} is larger than the padded input {padded_h}x{padded_w} \
         (input {in_h}x{in_w}, padding {padding}); expected kernel <= {}",
        padded_h.min(padded_w)
    )]
    KernelTooLarge {
        /// The kernel side.
        kernel: usize,
        /// Input height before padding.
        in_h: usize,
        /// Input width before padding.
        in_w: usize,
        /// Zeros added on every side.
        padding: usize,
        /// `in_h + 2 * padding`.
        padded_h: usize,
        /// `in_w + 2 * padding`.
        padded_w: usize,
    },
    /// A size or element count does not fit in `usize`.
    #[error("conv2d: {what} with factors {factors:?} overflows usize; expected at most {max}", max = usize::MAX)]
    Overflow {
        /// The expression that overflowed.
        what: &'static str,
        /// Its operands.
        factors: Vec<usize>,
    },
}
