//! `Tensor<T>`: a contiguous row-major buffer with a runtime shape.

use crate::buffer::Buffer;
use crate::{Float, TensorError};
use rayon::prelude::*;

/// A dense tensor: `data` holds `shape.iter().product()` elements in row-major order.
///
/// A tensor is a value: a clone copies its elements, unless the tensor was made shared
/// ([`Tensor::make_shared`]); then clones share one buffer until one of them is written
/// ([`Tensor::data_mut`] copies a buffer a clone still holds first). A model's parameters are
/// shared, so every shard's tape holds them without a copy (`alexnet`'s are 40 MB).
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor<T> {
    shape: Vec<usize>,
    data: Buffer<T>,
}

impl<T: Float> Tensor<T> {
    /// Wraps `data` with `shape`; fails if the lengths disagree.
    pub fn from_vec(shape: &[usize], data: Vec<T>) -> Result<Self, TensorError> {
        let expected: usize = shape.iter().product();
        if expected != data.len() {
            return Err(TensorError::LengthMismatch {
                op: "Tensor::from_vec",
                shape: shape.to_vec(),
                expected,
                found: data.len(),
            });
        }
        Ok(Self {
            shape: shape.to_vec(),
            data: Buffer::from(data),
        })
    }

    /// A tensor of zeros.
    pub fn zeros(shape: &[usize]) -> Self {
        Self {
            shape: shape.to_vec(),
            data: Buffer::from(vec![T::ZERO; shape.iter().product()]),
        }
    }

    /// A tensor filled with one value.
    pub fn full(shape: &[usize], value: T) -> Self {
        Self {
            shape: shape.to_vec(),
            data: Buffer::from(vec![value; shape.iter().product()]),
        }
    }

    /// A one-element tensor of shape `[1]`.
    pub fn scalar(value: T) -> Self {
        Self {
            shape: vec![1],
            data: Buffer::from(vec![value]),
        }
    }

    /// A tensor whose element at flat index `i` is `f(i)`.
    pub fn from_fn(shape: &[usize], f: impl FnMut(usize) -> T) -> Self {
        let n = shape.iter().product();
        Self {
            shape: shape.to_vec(),
            data: Buffer::from((0..n).map(f).collect::<Vec<T>>()),
        }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The elements in row-major order.
    pub fn data(&self) -> &[T] {
        &self.data
    }

    /// The elements, writable. A shared buffer that a clone still holds is copied first, so
    /// the clone keeps its values.
    pub fn data_mut(&mut self) -> &mut [T] {
        self.data.as_mut_slice()
    }

    /// Takes the buffer out (a copy, when a clone shares it).
    pub fn into_vec(self) -> Vec<T> {
        self.data.into_vec()
    }

    /// Takes the buffer out if no clone shares it: for a buffer pool, which has no use for a
    /// copy of a buffer someone else still holds.
    pub fn into_unshared_vec(self) -> Option<Vec<T>> {
        self.data.into_unshared_vec()
    }

    /// Makes the buffer shared, if it is not yet: from then on clones share it until one of
    /// them is written (see [`Tensor`]).
    pub fn make_shared(&mut self) {
        self.data.make_shared();
    }

    /// Whether clones of this tensor share its buffer rather than copy it.
    pub fn is_shared(&self) -> bool {
        self.data.is_shared()
    }

    /// Whether `self` and `other` are clones sharing one buffer.
    pub fn shares_buffer_with(&self, other: &Self) -> bool {
        self.data.same_shared(&other.data)
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// The same data under another shape with the same element count.
    pub fn reshape(self, shape: &[usize]) -> Result<Self, TensorError> {
        let expected: usize = shape.iter().product();
        if expected != self.data.len() {
            return Err(TensorError::LengthMismatch {
                op: "Tensor::reshape",
                shape: shape.to_vec(),
                expected,
                found: self.data.len(),
            });
        }
        // the buffer stays as it is, shared or not
        Ok(Self {
            shape: shape.to_vec(),
            data: self.data,
        })
    }

    /// The four dimensions of an NCHW tensor, or an error naming `op`.
    pub fn dims4(&self, op: &'static str) -> Result<[usize; 4], TensorError> {
        match self.shape[..] {
            [n, c, h, w] => Ok([n, c, h, w]),
            _ => Err(TensorError::RankMismatch {
                op,
                expected: 4,
                found: self.shape.clone(),
            }),
        }
    }

    /// The two dimensions of a matrix, or an error naming `op`.
    pub fn dims2(&self, op: &'static str) -> Result<[usize; 2], TensorError> {
        match self.shape[..] {
            [r, c] => Ok([r, c]),
            _ => Err(TensorError::RankMismatch {
                op,
                expected: 2,
                found: self.shape.clone(),
            }),
        }
    }

    /// Converts every element to another float type.
    pub fn cast<U: Float>(&self) -> Tensor<U> {
        Tensor {
            shape: self.shape.clone(),
            data: Buffer::from(
                self.data
                    .iter()
                    .map(|&v| U::from_f64(v.to_f64()))
                    .collect::<Vec<U>>(),
            ),
        }
    }

    /// True when every element is finite.
    ///
    /// Training checks every gradient and parameter after each step (40 MB for AlexNet), so
    /// the scan runs in parallel chunks, each folded without an early exit so it vectorizes.
    pub fn all_finite(&self) -> bool {
        const CHUNK: usize = 16 * 1024;
        let chunk_finite = |c: &[T]| T::vall_finite(c);
        if self.data.len() <= CHUNK {
            return chunk_finite(&self.data);
        }
        self.data.par_chunks(CHUNK).all(chunk_finite)
    }

    /// The index of the first of `tensors` with a NaN or infinite element, if any: one parallel
    /// pass over all of them (a step's dozens of small gradients would otherwise each be a
    /// serial scan, or a parallel region of their own).
    pub fn first_non_finite(tensors: &[Tensor<T>]) -> Option<usize> {
        const CHUNK: usize = 16 * 1024;
        let tasks: Vec<(usize, &[T])> = tensors
            .iter()
            .enumerate()
            .flat_map(|(i, t)| t.data.chunks(CHUNK).map(move |c| (i, c)))
            .collect();
        tasks
            .into_par_iter()
            .filter(|(_, c)| !T::vall_finite(c))
            .map(|(i, _)| i)
            .min()
    }

    /// Fails unless `self` has exactly `expected` shape.
    pub fn expect_shape(&self, op: &'static str, expected: &[usize]) -> Result<(), TensorError> {
        if self.shape != expected {
            return Err(TensorError::ShapeMismatch {
                op,
                expected: expected.to_vec(),
                found: self.shape.clone(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An owned tensor's clone is a copy; once shared, clones hold one buffer until one is
    /// written, and the writer gets its own copy while the others keep their values.
    #[test]
    fn a_shared_tensor_is_copied_on_write_only() {
        let mut t = Tensor::from_vec(&[2, 3], vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        assert!(!t.is_shared() && !t.clone().shares_buffer_with(&t));
        t.make_shared();
        let mut c = t.clone();
        assert!(c.is_shared() && c.shares_buffer_with(&t));
        let r = t.clone().reshape(&[3, 2]).unwrap();
        assert!(r.shares_buffer_with(&t), "a reshape keeps the buffer");
        // a pool must not take a buffer a clone still holds
        assert_eq!(r.clone().into_unshared_vec(), None);
        assert_eq!(
            r.into_vec(),
            t.data().to_vec(),
            "a held buffer is copied out"
        );
        c.data_mut()[0] = 9.0;
        assert_eq!(t.data(), &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(c.data(), &[9.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert!(!c.shares_buffer_with(&t));
        // held alone again: written in place, and handed out whole
        let at = t.data().as_ptr();
        t.data_mut()[1] = 7.0;
        assert_eq!(t.data().as_ptr(), at, "no copy of a buffer held alone");
        assert_eq!(
            t.into_unshared_vec(),
            Some(vec![1.0, 7.0, 3.0, 4.0, 5.0, 6.0])
        );
    }

    #[test]
    fn from_vec_checks_length() {
        assert!(Tensor::<f32>::from_vec(&[2, 3], vec![0.0; 6]).is_ok());
        let err = Tensor::<f32>::from_vec(&[2, 3], vec![0.0; 5]).unwrap_err();
        assert!(err.to_string().contains("6 elements but 5"), "{err}");
    }

    #[test]
    fn reshape_keeps_data_and_rank_checks_name_the_op() {
        let t = Tensor::<f64>::from_fn(&[2, 3, 4, 5], |i| i as f64);
        assert_eq!(t.dims4("x").unwrap(), [2, 3, 4, 5]);
        let r = t.clone().reshape(&[6, 20]).unwrap();
        assert_eq!(r.data(), t.data());
        let err = r.dims4("conv2d").unwrap_err().to_string();
        assert!(err.contains("conv2d") && err.contains("[6, 20]"), "{err}");
    }

    #[test]
    fn first_non_finite_names_the_first_bad_tensor() {
        let good = |len: usize| Tensor::<f32>::from_fn(&[len], |i| i as f32);
        let mut ts = vec![good(3), good(40_000), good(0), good(17)];
        assert_eq!(Tensor::first_non_finite(&ts), None);
        ts[3].data_mut()[16] = f32::NAN;
        assert_eq!(Tensor::first_non_finite(&ts), Some(3));
        ts[1].data_mut()[39_999] = f32::INFINITY;
        assert_eq!(Tensor::first_non_finite(&ts), Some(1));
        assert_eq!(Tensor::<f32>::first_non_finite(&[]), None);
    }

    #[test]
    fn all_finite_finds_one_bad_value_anywhere_in_small_and_chunked_tensors() {
        for len in [1, 7, 16 * 1024, 16 * 1024 + 1, 100_003] {
            let t = Tensor::<f32>::from_fn(&[len], |i| i as f32 * 0.5 - 3.0);
            assert!(t.all_finite(), "len {len}");
            for at in [0, len / 2, len - 1] {
                for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                    let mut u = t.clone();
                    u.data_mut()[at] = bad;
                    assert!(!u.all_finite(), "len {len}: {bad} at {at}");
                }
            }
        }
    }
}
