//! `ImageCache`: decoded images of an image folder kept in memory up to a byte budget shared by
//! the sets of a run, so that epochs after the first read them from memory when they fit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// Bytes that the caches sharing it may hold together.
#[derive(Debug)]
pub struct CacheBudget {
    limit: u64,
    used: AtomicU64,
}

impl CacheBudget {
    /// Room for `limit` bytes.
    pub fn new(limit: u64) -> Arc<Self> {
        Arc::new(CacheBudget {
            limit,
            used: AtomicU64::new(0),
        })
    }

    /// The default for a run: a quarter of the memory available now (the rest is left to the
    /// model's activations, its minibatches, the images decoded for them and the freed memory the
    /// allocator keeps, `allocator.rs`), or 1 GiB when it cannot be read.
    pub fn from_available_memory() -> Arc<Self> {
        Self::new(default_limit(crate::memory::available_bytes()))
    }

    /// The most bytes the caches may hold.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes held now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Claims `bytes` if they fit under the limit.
    fn claim(&self, bytes: u64) -> bool {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(bytes).filter(|&after| after <= self.limit)
            })
            .is_ok()
    }

    fn release(&self, bytes: u64) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// The default cache limit for `available` bytes of free memory (see
/// [`CacheBudget::from_available_memory`]).
pub fn default_limit(available: Option<u64>) -> u64 {
    available.map_or(1 << 30, |a| a / 4)
}

/// One slot per image of a set, each filled at most once while the shared budget has room;
/// nothing is evicted. Under a random order every epoch, keeping a fixed share of the images
/// serves as many from memory as any eviction policy would, without decoding them twice.
#[derive(Debug)]
pub struct ImageCache {
    slots: Vec<OnceLock<Box<[u8]>>>,
    budget: Arc<CacheBudget>,
}

impl ImageCache {
    /// An empty cache for `len` images drawing on `budget`.
    pub fn new(len: usize, budget: Arc<CacheBudget>) -> Self {
        ImageCache {
            slots: (0..len).map(|_| OnceLock::new()).collect(),
            budget,
        }
    }

    /// Image `i`'s pixels, if kept.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        self.slots[i].get().map(|b| &b[..])
    }

    /// Keeps `pixels` as image `i` if the budget has room (and `i` is not kept yet).
    pub fn offer(&self, i: usize, pixels: Vec<u8>) {
        let bytes = pixels.len() as u64;
        if self.slots[i].get().is_some() || !self.budget.claim(bytes) {
            return;
        }
        if self.slots[i].set(pixels.into_boxed_slice()).is_err() {
            self.budget.release(bytes);
        }
    }

    /// Whether an image of `bytes` would still fit.
    pub fn has_room(&self, bytes: u64) -> bool {
        self.budget.used().saturating_add(bytes) <= self.budget.limit()
    }

    /// Images kept.
    pub fn kept(&self) -> usize {
        self.slots.iter().filter(|s| s.get().is_some()).count()
    }

    /// The shared budget.
    pub fn budget(&self) -> &Arc<CacheBudget> {
        &self.budget
    }
}

impl Drop for ImageCache {
    fn drop(&mut self) {
        let held: u64 = self
            .slots
            .iter()
            .filter_map(|s| s.get().map(|b| b.len() as u64))
            .sum();
        self.budget.release(held);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_shared_and_never_exceeded() {
        let budget = CacheBudget::new(10);
        let a = ImageCache::new(3, Arc::clone(&budget));
        let b = ImageCache::new(3, Arc::clone(&budget));
        a.offer(0, vec![1; 4]);
        a.offer(0, vec![2; 4]); // already kept: the first stays
        b.offer(1, vec![3; 4]);
        assert!(!a.has_room(4));
        a.offer(2, vec![4; 4]); // 12 > 10: not kept
        assert_eq!(
            (a.get(0), a.get(2), b.get(1)),
            (Some(&[1u8; 4][..]), None, Some(&[3u8; 4][..]))
        );
        assert_eq!((budget.used(), a.kept(), b.kept()), (8, 1, 1));
        drop(b);
        assert_eq!(budget.used(), 4, "a dropped cache gives its bytes back");
        a.offer(2, vec![4; 6]);
        assert_eq!((budget.used(), a.kept()), (10, 2));
    }

    #[test]
    fn the_default_limit_is_a_quarter_of_the_available_memory() {
        assert_eq!(default_limit(Some(8 << 30)), 2 << 30);
        assert_eq!(default_limit(None), 1 << 30);
    }
}
