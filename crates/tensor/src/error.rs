//! The tensor crate's error type: shape problems named with the operation and both shapes.

/// Errors raised when a shape supplied by a caller does not fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TensorError {
    /// The data length does not match the product of the shape.
    #[error("{op}: shape {shape:?} holds {expected} elements but {found} were given")]
    LengthMismatch {
        op: &'static str,
        shape: Vec<usize>,
        expected: usize,
        found: usize,
    },
    /// Two shapes that must agree do not.
    #[error("{op}: expected shape {expected:?}, found {found:?}")]
    ShapeMismatch {
        op: &'static str,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    /// A shape has the wrong number of dimensions.
    #[error("{op}: expected {expected} dimensions, found shape {found:?}")]
    RankMismatch {
        op: &'static str,
        expected: usize,
        found: Vec<usize>,
    },
}
