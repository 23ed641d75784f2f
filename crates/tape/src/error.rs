//! The tape's error type: each variant names the op and what did not fit.

/// Errors from recording or differentiating a computation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TapeError {
    /// An input had the wrong shape for the op.
    #[error("{op}: expected {expected}, found shape {found:?}")]
    Shape {
        op: &'static str,
        expected: String,
        found: Vec<usize>,
    },
    /// Backward was asked of a node with more than one element.
    #[error("backward: the output must hold one element, found shape {found:?}")]
    NotScalar { found: Vec<usize> },
    /// Backward was asked of a tape in no-record mode.
    #[error("backward: this tape is in no-record mode and kept no history")]
    NoRecord,
    /// A value was released and then used.
    #[error("{op}: node {node} was released (no-record mode) and cannot be read")]
    Released { op: &'static str, node: usize },
    /// A class index or label beyond the number of columns.
    #[error("{op}: index {index} at row {row} is out of range for {classes} classes")]
    IndexOutOfRange {
        op: &'static str,
        row: usize,
        index: usize,
        classes: usize,
    },
    /// An invalid scalar argument (probability, epsilon).
    #[error("{op}: {what}")]
    Argument { op: &'static str, what: String },
    /// Convolution geometry.
    #[error(transparent)]
    Conv(#[from] conv::ConvError),
    /// Pooling geometry.
    #[error(transparent)]
    Pool(#[from] pool::PoolError),
    /// Tensor shape.
    #[error(transparent)]
    Tensor(#[from] tensor::TensorError),
}
