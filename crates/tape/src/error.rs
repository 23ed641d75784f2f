//! The tape's error type: each variant names the op and what did not fit.

/// Errors from recording or differentiating a computation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TapeError {
    /// An input had the wrong shape for the op.
    #[error("{op}: expected {expected}, found shape {found:?}")]
    Shape {
        /// The operation that refused its input.
        op: &'static str,
        /// What was expected.
        expected: String,
        /// What was found.
        found: Vec<usize>,
    },
    /// Backward was asked of a node with more than one element.
    #[error("backward: the output must hold one element, found shape {found:?}")]
    NotScalar {
        /// What was found.
        found: Vec<usize>,
    },
    /// Backward was asked of a tape in no-record mode.
    #[error("backward: this tape is in no-record mode and kept no history")]
    NoRecord,
    /// A value was released and then used.
    #[error("{op}: node {node} was released (no-record mode) and cannot be read")]
    /// See the message.
    Released {
        /// The operation that refused its input.
        op: &'static str,
        /// The node index.
        node: usize,
    },
    /// A class index or label beyond the number of columns.
    #[error("{op}: index {index} at row {row} is out of range for {classes} classes")]
    IndexOutOfRange {
        /// The operation that refused its input.
        op: &'static str,
        /// The row of the offending index.
        row: usize,
        /// The offending index.
        index: usize,
        /// The number of classes (columns).
        classes: usize,
    },
    /// An invalid scalar argument (probability, epsilon).
    #[error("{op}: {what}")]
    /// See the message.
    Argument {
        /// The operation that refused its input.
        op: &'static str,
        /// What was being counted, or what is wrong.
        what: String,
    },
    /// [`crate::Tape::rewind`] was asked to keep a node an op made.
    #[error("rewind: the {keep} nodes kept must all be leaves, but node {node} was made by an op")]
    RewindPastOp {
        /// Nodes asked to keep.
        keep: usize,
        /// The first kept node that is not a leaf.
        node: usize,
    },
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
