//! The `Op` enum: what made a node, and the one `match` that dispatches backward.

use tensor::{Float, Tensor};

use crate::gradients::Gradients;
use crate::ops::*;
use crate::scratch::Scratch;
use crate::{NodeId, Tape, TapeError};

/// How a node was computed; each variant's data is what its backward needs.
pub(crate) enum Op<T> {
    Leaf,
    Conv2d(conv2d::Conv2dOp),
    MaxPool2d(max_pool2d::MaxPool2dOp),
    Linear(linear::LinearOp),
    Relu(relu::ReluOp),
    Reshape(reshape::ReshapeOp),
    Dropout(dropout::DropoutOp<T>),
    BatchNorm(batch_norm::BatchNormOp<T>),
    Softmax(softmax::SoftmaxOp),
    LogSoftmax(log_softmax::LogSoftmaxOp),
    CrossEntropy(cross_entropy::CrossEntropyOp),
    Nll(nll::NllOp),
    Sum(sum::SumOp),
    Mean(mean::MeanOp),
    Scale(scale::ScaleOp<T>),
    Add(add::AddOp),
    Mul(mul::MulOp),
    MaxRow(max_row::MaxRowOp),
    SquareSum(square_sum::SquareSumOp),
    Select(select::SelectOp),
}

impl<T: Float> Op<T> {
    /// Propagates `g` (the gradient of node `out`) to the node's inputs.
    pub(crate) fn backward(
        &self,
        tape: &Tape<T>,
        out: NodeId,
        g: &Tensor<T>,
        grads: &mut Gradients<T>,
        scratch: &mut Scratch<T>,
    ) -> Result<(), TapeError> {
        match self {
            Op::Leaf => Ok(()),
            Op::Conv2d(op) => op.backward(tape, out, g, grads, scratch),
            Op::MaxPool2d(op) => op.backward(tape, out, g, grads, &mut scratch.buffers),
            Op::Linear(op) => op.backward(tape, out, g, grads, &mut scratch.buffers),
            Op::Relu(op) => op.backward(tape, out, g, grads, &mut scratch.buffers),
            Op::Reshape(op) => op.backward(tape, g, grads),
            Op::Dropout(op) => op.backward(tape, g, grads),
            Op::BatchNorm(op) => op.backward(tape, g, grads),
            Op::Softmax(op) => op.backward(tape, out, g, grads),
            Op::LogSoftmax(op) => op.backward(tape, out, g, grads),
            Op::CrossEntropy(op) => op.backward(tape, g, grads),
            Op::Nll(op) => op.backward(tape, g, grads),
            Op::Sum(op) => op.backward(tape, g, grads),
            Op::Mean(op) => op.backward(tape, g, grads),
            Op::Scale(op) => op.backward(tape, g, grads),
            Op::Add(op) => op.backward(tape, g, grads),
            Op::Mul(op) => op.backward(tape, g, grads),
            Op::MaxRow(op) => op.backward(tape, g, grads),
            Op::SquareSum(op) => op.backward(tape, g, grads),
            Op::Select(op) => op.backward(tape, g, grads),
        }
    }
}
