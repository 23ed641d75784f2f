//! One file per op: the record function (a `Tape` method) and its backward side by side.

pub mod add;
pub mod batch_norm;
pub mod conv2d;
pub mod cross_entropy;
pub mod dropout;
pub mod linear;
pub mod log_softmax;
pub mod max_pool2d;
pub mod max_row;
pub mod mean;
pub mod mul;
pub mod nll;
pub mod relu;
pub mod reshape;
pub mod scale;
pub mod select;
pub mod softmax;
pub mod square_sum;
pub mod sum;

use tensor::Float;

use crate::TapeError;

/// Rows and columns of a matrix-shaped input, or an error naming the op.
pub(crate) fn matrix_dims(op: &'static str, shape: &[usize]) -> Result<(usize, usize), TapeError> {
    match shape {
        [n, k] => Ok((*n, *k)),
        _ => Err(TapeError::Shape {
            op,
            expected: "a matrix (N, K)".into(),
            found: shape.to_vec(),
        }),
    }
}

/// The error of an LRP rule asked for a parameter's gradient.
pub(crate) fn lrp_on_parameters(op: &'static str) -> TapeError {
    TapeError::Argument {
        op,
        what: "an LRP rule propagates relevance to the input only; record parameters as \
               constants (no weight or bias gradient) under it"
            .into(),
    }
}

/// Checks that two inputs have the same shape.
pub(crate) fn same_shape(op: &'static str, a: &[usize], b: &[usize]) -> Result<(), TapeError> {
    if a != b {
        return Err(TapeError::Shape {
            op,
            expected: format!("shape {a:?} (same as the first input)"),
            found: b.to_vec(),
        });
    }
    Ok(())
}

/// Numerically stable softmax of one row into `out`.
pub(crate) fn softmax_row<T: Float>(x: &[T], out: &mut [T]) {
    let max = x.iter().copied().fold(x[0], T::max);
    let mut sum = T::ZERO;
    for (o, &v) in out.iter_mut().zip(x) {
        *o = (v - max).exp();
        sum += *o;
    }
    for o in out.iter_mut() {
        *o /= sum;
    }
}

/// log(sum(exp(x))) of one row, computed stably.
pub(crate) fn log_sum_exp<T: Float>(x: &[T]) -> T {
    let max = x.iter().copied().fold(x[0], T::max);
    let s: T = x.iter().map(|&v| (v - max).exp()).sum();
    max + s.ln()
}

/// Checks there is one label per row and each is below the number of columns.
pub(crate) fn check_labels(
    op: &'static str,
    labels: &[usize],
    n: usize,
    k: usize,
) -> Result<(), TapeError> {
    if labels.len() != n {
        return Err(TapeError::Shape {
            op,
            expected: format!("{} labels (one per row)", n),
            found: vec![labels.len()],
        });
    }
    if let Some((row, &index)) = labels.iter().enumerate().find(|(_, &y)| y >= k) {
        return Err(TapeError::IndexOutOfRange {
            op,
            row,
            index,
            classes: k,
        });
    }
    Ok(())
}

/// The gradient of picking one column per row of an (N, K) matrix: `g[n]` lands at
/// `(n, columns[n])`, zeros elsewhere (the backward of `max_row` and `select`).
pub(crate) fn scatter_rows<T: Float>(
    shape: &[usize],
    columns: &[usize],
    g: &[T],
) -> Result<tensor::Tensor<T>, TapeError> {
    let k = shape[1];
    let mut dx = vec![T::ZERO; shape[0] * k];
    for (row, (&j, &gv)) in columns.iter().zip(g).enumerate() {
        dx[row * k + j] = gv;
    }
    Ok(tensor::Tensor::from_vec(shape, dx)?)
}
