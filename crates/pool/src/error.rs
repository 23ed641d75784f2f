//! The pool crate's error type: geometry problems named with the field, what was expected and what was found.

/// Errors raised when a pooling geometry supplied by a caller cannot work.
///
/// Only [`Pool2dGeometry::new`](crate::Pool2dGeometry::new) (and `with_batch`) return these:
/// once a geometry exists, the kernels cannot fail except through buffer-length mistakes, which
/// are programming errors and panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// A size that must be positive (batch, channels, in_h, in_w, kernel or stride) is zero.
    #[error("pool2d geometry: {field} must be at least 1, found 0")]
    ZeroSize {
        /// The geometry field at fault.
        field: &'static str,
    },
    /// The kernel is larger than the input along one axis, so not even one window fits.
    #[error("pool2d geometry: kernel {kernel} does not fit in {field} = {found}; expected {field} >= {kernel}")]
    KernelTooLarge {
        /// The geometry field at fault.
        field: &'static str,
        /// The kernel size.
        kernel: usize,
        /// What was found.
        found: usize,
    },
    /// An element count does not fit in `usize`.
    #[error("pool2d geometry: {what} with factors {factors:?} overflows usize; expected a product of at most {max}", max = usize::MAX)]
    Overflow {
        /// What was being counted, or what is wrong.
        what: &'static str,
        /// The factors whose product overflows.
        factors: Vec<usize>,
    },
    /// One (n, c) plane has more elements than a `u32` argmax index can address.
    #[error("pool2d geometry: in_h * in_w = {found} elements per plane; argmax is u32, so expected at most {max}")]
    /// See the message.
    PlaneTooLarge {
        /// What was found.
        found: usize,
        /// The largest value allowed.
        max: usize,
    },
}
