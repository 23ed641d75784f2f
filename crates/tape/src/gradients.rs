//! `Gradients`: the result of one backward pass, indexed by node.

use tensor::{Float, Tensor};

use crate::NodeId;

/// Gradients of one backward pass, one optional tensor per node of the tape.
///
/// Only variables keep their gradient; intermediate gradients are dropped as soon as they have
/// been propagated, so a backward pass holds at most one layer's worth of them at a time.
#[derive(Debug)]
pub struct Gradients<T> {
    pub(crate) grads: Vec<Option<Tensor<T>>>,
}

impl<T: Float> Gradients<T> {
    /// The gradient of the output with respect to `id`, if `id` is a variable the output depends on.
    pub fn get(&self, id: NodeId) -> Option<&Tensor<T>> {
        self.grads.get(id.0).and_then(|g| g.as_ref())
    }

    /// Takes the gradient out, leaving `None`.
    pub fn take(&mut self, id: NodeId) -> Option<Tensor<T>> {
        self.grads.get_mut(id.0).and_then(|g| g.take())
    }

    /// The gradient for `id`, or zeros shaped like `shape` when the output does not depend on it.
    pub fn get_or_zeros(&self, id: NodeId, shape: &[usize]) -> Tensor<T> {
        self.get(id)
            .cloned()
            .unwrap_or_else(|| Tensor::zeros(shape))
    }

    /// Adds `g` into the gradient slot of `id` (a node read by several ops gets the sum).
    pub(crate) fn accumulate(&mut self, id: NodeId, g: Tensor<T>) {
        match &mut self.grads[id.0] {
            Some(existing) => T::vadd_assign(existing.data_mut(), g.data()),
            slot @ None => *slot = Some(g),
        }
    }
}
