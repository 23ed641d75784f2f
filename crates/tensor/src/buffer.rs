//! `Buffer<T>`: a tensor's elements, owned or shared between clones (copy on write).

use std::ops::Deref;
use std::sync::Arc;

/// A tensor's elements. An owned buffer is a plain `Vec`, with no second allocation (every op
/// output is one, a few hundred per training step); [`Buffer::make_shared`] moves it behind an `Arc`
/// once, after which clones share it until one is written. A model's parameters are shared
/// this way, so each shard's tape of an inference call holds them without a copy.
#[derive(Debug)]
pub(crate) enum Buffer<T> {
    /// Held by this tensor alone; a clone copies it.
    Owned(Vec<T>),
    /// Possibly held by clones too; writing copies it first unless it is held here alone.
    Shared(Arc<Vec<T>>),
}

impl<T: Copy> Buffer<T> {
    /// The elements, writable: a shared buffer some clone still holds is copied first.
    pub(crate) fn as_mut_slice(&mut self) -> &mut [T] {
        match self {
            Buffer::Owned(v) => v,
            Buffer::Shared(a) => Arc::make_mut(a).as_mut_slice(),
        }
    }

    /// The `Vec`, copied only when a clone still shares it.
    pub(crate) fn into_vec(self) -> Vec<T> {
        match self {
            Buffer::Owned(v) => v,
            Buffer::Shared(a) => Arc::try_unwrap(a).unwrap_or_else(|a| a.as_ref().clone()),
        }
    }

    /// The `Vec` if no clone shares it.
    pub(crate) fn into_unshared_vec(self) -> Option<Vec<T>> {
        match self {
            Buffer::Owned(v) => Some(v),
            Buffer::Shared(a) => Arc::try_unwrap(a).ok(),
        }
    }

    /// Moves an owned buffer behind an `Arc`, so clones share it from now on.
    pub(crate) fn make_shared(&mut self) {
        if let Buffer::Owned(v) = self {
            *self = Buffer::Shared(Arc::new(std::mem::take(v)));
        }
    }

    /// Whether clones share the buffer rather than copy it.
    pub(crate) fn is_shared(&self) -> bool {
        matches!(self, Buffer::Shared(_))
    }

    /// Whether both are clones of one shared buffer.
    pub(crate) fn same_shared(&self, other: &Self) -> bool {
        match (self, other) {
            (Buffer::Shared(a), Buffer::Shared(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl<T> Deref for Buffer<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        match self {
            Buffer::Owned(v) => v,
            Buffer::Shared(a) => a,
        }
    }
}

impl<T: Clone> Clone for Buffer<T> {
    fn clone(&self) -> Self {
        match self {
            Buffer::Owned(v) => Buffer::Owned(v.clone()),
            Buffer::Shared(a) => Buffer::Shared(Arc::clone(a)),
        }
    }
}

impl<T: PartialEq> PartialEq for Buffer<T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T> From<Vec<T>> for Buffer<T> {
    fn from(v: Vec<T>) -> Self {
        Buffer::Owned(v)
    }
}
