//! `Scratch`: memory a tape keeps between steps so the steady state neither allocates nor
//! zeroes: the kernels' workspace, and a pool of retired value buffers for op outputs.

use std::collections::VecDeque;

use tensor::Float;

/// Most buffers the pool holds; a training step of the study's networks retires a few dozen.
const MAX_POOLED: usize = 256;

/// What the kernels and ops reuse from one step to the next.
#[derive(Default)]
pub(crate) struct Scratch<T> {
    /// Kernel scratch (im2col columns); every kernel writes it before reading it.
    pub(crate) workspace: Vec<T>,
    /// Retired value and gradient buffers.
    pub(crate) buffers: BufferPool<T>,
}

/// Retired buffers, handed out again as op outputs.
///
/// A buffer from [`BufferPool::output`] holds stale values from an earlier step, so it is only
/// for outputs a kernel overwrites completely. Reading stale data would not be undefined
/// behaviour (the values are initialized floats) but a silently wrong result; debug builds
/// therefore fill every handed-out buffer with NaN, so any op that reads before writing turns
/// the tests' results into NaN.
pub(crate) struct BufferPool<T> {
    /// Oldest retired first.
    free: VecDeque<Vec<T>>,
}

impl<T> Default for BufferPool<T> {
    fn default() -> Self {
        Self {
            free: VecDeque::new(),
        }
    }
}

impl<T: Float> BufferPool<T> {
    /// A buffer of exactly `len` elements whose contents are unspecified: the smallest pooled
    /// buffer at least that long but at most twice as long (truncated), else a new one. The
    /// bound keeps a small request from taking a large buffer that a large one will need.
    pub(crate) fn output(&mut self, len: usize) -> Vec<T> {
        let best = self
            .free
            .iter()
            .enumerate()
            .filter(|(_, b)| b.len() >= len && b.len() / 2 <= len)
            .min_by_key(|(_, b)| b.len())
            .map(|(i, _)| i);
        let mut buffer = match best {
            Some(i) => {
                let mut b = self.free.remove(i).expect("index from the scan");
                b.truncate(len);
                b
            }
            None => vec![T::ZERO; len],
        };
        if cfg!(debug_assertions) {
            buffer.fill(T::from_f64(f64::NAN));
        }
        buffer
    }

    /// Keeps `buffer` for a later [`BufferPool::output`], at its full capacity: a buffer
    /// handed out for a shorter output than it held would otherwise shrink for good, and the
    /// next step's longer request would allocate (and fault in) a new one.
    ///
    /// Past [`MAX_POOLED`] buffers the oldest is dropped. Buffers that fit the requests come
    /// back every step and stay young; those no request fits (outputs of ops that allocate
    /// their own, inputs the caller put on the tape) age out instead of filling the pool.
    pub(crate) fn retire(&mut self, mut buffer: Vec<T>) {
        if buffer.capacity() == 0 {
            return;
        }
        buffer.resize(buffer.capacity(), T::ZERO);
        self.free.push_back(buffer);
        if self.free.len() > MAX_POOLED {
            self.free.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hands_out_the_smallest_fitting_buffer_at_the_requested_length() {
        let mut pool = BufferPool::<f32>::default();
        pool.retire(vec![1.0; 10]);
        pool.retire(vec![2.0; 4]);
        pool.retire(vec![3.0; 6]);
        pool.retire(vec![4.0; 100]);
        let b = pool.output(5);
        assert_eq!(b.len(), 5);
        assert_eq!(b.capacity(), 6, "the 6-long buffer is the best fit");
        let c = pool.output(20); // the 100-long one is too big to spend on it: a new buffer
        assert_eq!((c.len(), c.capacity()), (20, 20));
        assert_eq!(pool.free.len(), 3);
        if cfg!(debug_assertions) {
            assert!(
                b.iter().all(|v| v.is_nan()),
                "debug builds poison reused buffers"
            );
        }
        // a truncated buffer comes back at its full length, so it still fits a 6-long request
        pool.retire(b);
        let d = pool.output(6);
        assert_eq!((d.len(), d.capacity()), (6, 6));
    }

    #[test]
    fn the_pool_is_bounded() {
        let mut pool = BufferPool::<f64>::default();
        pool.retire(vec![0.0; 7]); // the oldest
        for _ in 0..MAX_POOLED {
            pool.retire(vec![0.0; 3]);
        }
        pool.retire(Vec::new());
        assert_eq!(pool.free.len(), MAX_POOLED);
        assert!(
            pool.free.iter().all(|b| b.len() == 3),
            "the oldest was dropped"
        );
    }
}
