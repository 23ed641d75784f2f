//! The tensor crate's error type: shape problems named with the operation and both shapes.

/// Errors raised when a shape supplied by a caller does not fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TensorError {
    /// The data length does not match the product of the shape.
    #[error("{op}: shape {shape:?} holds {expected} elements but {found} were given")]
    LengthMismatch {
        /// The operation that refused its input.
        op: &'static str,
        /// The shape given.
        shape: Vec<usize>,
        /// What was expected.
        expected: usize,
        /// What was found.
        found: usize,
    },
    /// Two shapes that must agree do not.
    #[error("{op}: expected shape {expected:?}, found {found:?}")]
    ShapeMismatch {
        /// The operation that refused its input.
        op: &'static str,
        /// What was expected.
        expected: Vec<usize>,
        /// What was found.
        found: Vec<usize>,
    },
    /// A shape has the wrong number of dimensions.
    #[error("{op}: expected {expected} dimensions, found shape {found:?}")]
    RankMismatch {
        /// The operation that refused its input.
        op: &'static str,
        /// What was expected.
        expected: usize,
        /// What was found.
        found: Vec<usize>,
    },
}
