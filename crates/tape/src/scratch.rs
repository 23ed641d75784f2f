//! `Scratch`: memory a tape keeps between steps so the steady state neither allocates nor
//! zeroes: the kernels' workspace, and a pool of retired value buffers for op outputs.

use std::collections::{BTreeMap, VecDeque};

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
    /// Retired max-pool argmax buffers, for the next step's pools (each forward overwrites
    /// its argmax completely).
    pub(crate) argmax: Vec<Vec<u32>>,
}

/// Most argmax buffers kept: a step of the study's networks pools at most 5 times.
const MAX_ARGMAX: usize = 16;

impl<T> Scratch<T> {
    /// An argmax buffer of `len` elements whose contents are unspecified: a retired one of
    /// that length, else a new one.
    pub(crate) fn argmax(&mut self, len: usize) -> Vec<u32> {
        match self.argmax.iter().position(|a| a.len() == len) {
            Some(i) => self.argmax.swap_remove(i),
            None => vec![0; len],
        }
    }

    /// Keeps `argmax` for [`Scratch::argmax`], dropping the oldest past [`MAX_ARGMAX`].
    pub(crate) fn retire_argmax(&mut self, argmax: Vec<u32>) {
        if argmax.is_empty() {
            return;
        }
        if self.argmax.len() == MAX_ARGMAX {
            self.argmax.remove(0);
        }
        self.argmax.push(argmax);
    }
}

/// Retired buffers, handed out again as op outputs.
///
/// A buffer from [`BufferPool::output`] holds stale values from an earlier step, so it is only
/// for outputs a kernel overwrites completely. Reading stale data would not be undefined
/// behaviour (the values are initialized floats) but a silently wrong result; debug builds
/// therefore fill every handed-out buffer with NaN, so any op that reads before writing turns
/// the tests' results into NaN.
pub(crate) struct BufferPool<T> {
    /// Pooled buffers by length, each length's oldest retired first: a request finds its best
    /// fit with one range lookup instead of a scan over the pool (which had grown to 4 % of a
    /// small training step). A length's bucket stays when it empties, so the next step's
    /// buffer of that length goes back without allocating a new bucket.
    by_len: BTreeMap<usize, VecDeque<(u64, Vec<T>)>>,
    /// `(retirement stamp, length)` of retired buffers, oldest first, to drop the oldest. A
    /// buffer handed out again keeps its entry until it reaches the front (it is then skipped):
    /// no search on the hot path.
    by_age: VecDeque<(u64, usize)>,
    /// Buffers in the pool.
    pooled: usize,
    /// The next retirement stamp.
    next_stamp: u64,
    /// The retirement stamps at the ends of the last [`IDLE_STEPS`] + 1 steps (see
    /// [`BufferPool::end_step`]), oldest first.
    step_marks: VecDeque<u64>,
}

/// Steps a pooled buffer may go unused before it is dropped. A buffer a step needs comes back
/// every step; one no request fits (an input the caller put on the tape, a batch of an odd
/// size) would otherwise stay until [`MAX_POOLED`] newer ones push it out: an evaluation that
/// retires little besides its inputs then held hundreds of input batches (about 1 GB at
/// 256x256).
const IDLE_STEPS: usize = 2;

impl<T> Default for BufferPool<T> {
    fn default() -> Self {
        Self {
            by_len: BTreeMap::new(),
            by_age: VecDeque::new(),
            pooled: 0,
            next_stamp: 0,
            step_marks: VecDeque::new(),
        }
    }
}

impl<T: Float> BufferPool<T> {
    /// A buffer of exactly `len` elements whose contents are unspecified: the smallest pooled
    /// buffer at least that long but at most twice as long (truncated), else a new one. The
    /// bound keeps a small request from taking a large buffer that a large one will need.
    pub(crate) fn output(&mut self, len: usize) -> Vec<T> {
        let fit = self
            .by_len
            .range_mut(len..=len.saturating_mul(2))
            .find_map(|(_, bucket)| bucket.pop_front());
        let mut buffer = match fit {
            Some((_, mut b)) => {
                self.pooled -= 1;
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
        let (len, stamp) = (buffer.len(), self.next_stamp);
        self.next_stamp += 1;
        self.by_len
            .entry(len)
            .or_default()
            .push_back((stamp, buffer));
        self.by_age.push_back((stamp, len));
        self.pooled += 1;
        self.drop_older_than(None);
        // entries of buffers handed out again pile up at the back; drop them now and then
        if self.by_age.len() > 4 * MAX_POOLED {
            let live: std::collections::HashSet<u64> = self
                .by_len
                .values()
                .flat_map(|bucket| bucket.iter().map(|&(s, _)| s))
                .collect();
            self.by_age.retain(|(s, _)| live.contains(s));
        }
    }

    /// Marks the end of a step (the tape was cleared and its buffers retired): buffers retired
    /// [`IDLE_STEPS`] steps ago or earlier and not handed out since are dropped.
    pub(crate) fn end_step(&mut self) {
        self.step_marks.push_back(self.next_stamp);
        if self.step_marks.len() > IDLE_STEPS + 1 {
            self.step_marks.pop_front();
        }
        if self.step_marks.len() == IDLE_STEPS + 1 {
            let before = self.step_marks[0];
            self.drop_older_than(Some(before));
        }
    }

    /// Drops the oldest pooled buffers: while the pool holds more than [`MAX_POOLED`], and
    /// those retired before stamp `before`.
    fn drop_older_than(&mut self, before: Option<u64>) {
        while let Some(&(oldest, oldest_len)) = self.by_age.front() {
            let stale = before.is_some_and(|b| oldest < b);
            if !stale && self.pooled <= MAX_POOLED {
                break;
            }
            self.by_age.pop_front();
            // still pooled only if it is the first (oldest) of its length; else handed out
            let bucket = self.by_len.get_mut(&oldest_len).expect("indexed by length");
            if bucket.front().is_some_and(|&(s, _)| s == oldest) {
                bucket.pop_front();
                self.pooled -= 1;
            }
        }
    }

    /// Buffers in the pool.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.pooled
    }

    /// The lengths of the pooled buffers, shortest first.
    #[cfg(test)]
    fn lengths(&self) -> Vec<usize> {
        self.by_len
            .iter()
            .flat_map(|(&len, bucket)| std::iter::repeat_n(len, bucket.len()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_buffers_come_back_by_exact_length_and_the_oldest_go_first() {
        let mut scratch = Scratch::<f32>::default();
        let a = vec![7u32; 10];
        let at = a.as_ptr();
        scratch.retire_argmax(a);
        assert_eq!(
            scratch.argmax(9),
            vec![0; 9],
            "no 9-long one: a new, zeroed buffer"
        );
        let b = scratch.argmax(10);
        assert_eq!(b.as_ptr(), at, "the retired 10-long buffer itself");
        assert!(scratch.argmax.is_empty());
        for len in 1..=MAX_ARGMAX + 1 {
            scratch.retire_argmax(vec![0; len]);
        }
        assert_eq!(scratch.argmax.len(), MAX_ARGMAX);
        assert!(
            scratch.argmax.iter().all(|a| a.len() > 1),
            "the oldest (1-long) dropped"
        );
    }

    /// A buffer every step asks for stays (the same allocation comes back); one no step asks
    /// for is gone after [`IDLE_STEPS`] steps.
    #[test]
    fn buffers_no_step_asks_for_are_dropped_after_two_steps() {
        let mut pool = BufferPool::<f32>::default();
        let used = vec![0.0f32; 64];
        let at = used.as_ptr();
        pool.retire(used);
        pool.retire(vec![0.0; 1000]); // an input batch no op output fits
        pool.end_step();
        for step in 0..5 {
            let b = pool.output(64);
            assert_eq!(b.as_ptr(), at, "step {step}: the same buffer comes back");
            pool.retire(b);
            pool.end_step();
            let idle = pool.lengths().contains(&1000);
            assert_eq!(
                idle,
                step + 1 < IDLE_STEPS,
                "step {step}: {:?}",
                pool.lengths()
            );
        }
        assert_eq!(pool.lengths(), vec![64]);
    }

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
        assert_eq!(pool.len(), 3);
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
    fn buffers_handed_out_again_are_skipped_when_the_oldest_go() {
        let mut pool = BufferPool::<f32>::default();
        for len in 1..=200 {
            pool.retire(vec![0.0; len]);
        }
        for len in 1..=100 {
            assert_eq!(pool.output(len).capacity(), len, "the exact fit");
        }
        for i in 0..200 {
            pool.retire(vec![0.0; 1000 + i]);
        }
        // 300 retired and still pooled: the 44 oldest of them (lengths 101..=144) go
        assert_eq!(pool.len(), MAX_POOLED);
        let want: Vec<usize> = (145..=200).chain(1000..1200).collect();
        assert_eq!(pool.lengths(), want);
        // and the bookkeeping of handed-out buffers stays bounded
        for _ in 0..10 {
            for i in 0..200 {
                let b = pool.output(1000 + i);
                pool.retire(b);
            }
        }
        assert!(
            pool.by_age.len() <= 4 * MAX_POOLED + 1,
            "{}",
            pool.by_age.len()
        );
        assert_eq!(pool.len(), MAX_POOLED);
    }

    #[test]
    fn the_pool_is_bounded() {
        let mut pool = BufferPool::<f64>::default();
        pool.retire(vec![0.0; 7]); // the oldest
        for _ in 0..MAX_POOLED {
            pool.retire(vec![0.0; 3]);
        }
        pool.retire(Vec::new());
        assert_eq!(pool.len(), MAX_POOLED);
        assert_eq!(
            pool.lengths(),
            vec![3; MAX_POOLED],
            "the oldest was dropped"
        );
    }
}
