//! `Tape`: the node list, leaf creation, and the reverse walk.

use rayon::prelude::*;
use tensor::{Float, Tensor};

use crate::gradients::Gradients;
use crate::op::Op;
use crate::rules::RuleSet;
use crate::scratch::Scratch;
use crate::TapeError;

/// Index of a node on its tape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NodeId(pub usize);

/// One recorded value and how it was made.
pub(crate) struct Node<T> {
    /// `None` once released in no-record mode.
    pub(crate) value: Option<Tensor<T>>,
    pub(crate) op: Op<T>,
    /// True when some variable reaches this node, so backward must pass gradient through it.
    pub(crate) needs_grad: bool,
    /// How many recorded ops take this node as an input, and the last of them: an op may
    /// take over part of its input's backward only when it is that input's one consumer
    /// ([`Tape::lrp_epsilon_handed_over`]).
    pub(crate) consumers: u32,
    pub(crate) last_consumer: usize,
}

/// A Wengert list: values in push order, each with the op that made it.
pub struct Tape<T: Float> {
    pub(crate) nodes: Vec<Node<T>>,
    recording: bool,
    /// Kernel workspace and retired buffers, kept across ops and steps so the steady state
    /// neither allocates nor zeroes.
    pub(crate) scratch: Scratch<T>,
    /// The backward rules given to the ops recorded from now on.
    pub(crate) rules: RuleSet,
}

impl<T: Float> Default for Tape<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Float> Tape<T> {
    /// A recording tape: every op keeps what its backward needs.
    pub fn new() -> Self {
        Self {
            nodes: Vec::new(),
            recording: true,
            scratch: Scratch::default(),
            rules: RuleSet::default(),
        }
    }

    /// A tape for inference only: ops keep no backward caches and `backward` refuses.
    pub fn no_record() -> Self {
        Self {
            nodes: Vec::new(),
            recording: false,
            scratch: Scratch::default(),
            rules: RuleSet::default(),
        }
    }

    /// A recording tape whose ops pass their gradient back by `rules` (see [`RuleSet`]).
    pub fn with_rules(rules: RuleSet) -> Self {
        Self {
            rules,
            ..Self::new()
        }
    }

    /// Sets the backward rules of the ops recorded from now on (ops already recorded keep
    /// theirs), so one tape can mix rules layer by layer.
    pub fn set_rules(&mut self, rules: RuleSet) {
        self.rules = rules;
    }

    /// The rules new ops are recorded with.
    pub fn rules(&self) -> RuleSet {
        self.rules
    }

    /// True unless made with [`Tape::no_record`].
    pub fn is_recording(&self) -> bool {
        self.recording
    }

    /// Number of nodes recorded.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Forgets every node but keeps allocations, ready for the next step. Clearing an empty
    /// tape is not a step: the pool's count of steps a buffer went unused (see
    /// `BufferPool::end_step`) only advances when something was recorded, so a caller that clears
    /// before and after each pass does not age its buffers twice as fast.
    pub fn clear(&mut self) {
        self.forget_from(0);
    }

    /// Forgets the nodes from `keep` on, as [`Tape::clear`] does all of them, and keeps the first
    /// `keep`, which must all be leaves (say, a model's parameters from [`Tape::shared_leaves`]):
    /// a batch passed through in chunks then binds its parameters once, not once per chunk. A
    /// tape's prefix of leaves is a whole tape: no kept node refers to a forgotten one, and each
    /// kept node's count of consumers starts again from zero.
    pub fn rewind(&mut self, keep: usize) -> Result<(), TapeError> {
        if let Some(node) = self.nodes[..keep.min(self.nodes.len())]
            .iter()
            .position(|n| !matches!(n.op, Op::Leaf))
        {
            return Err(TapeError::RewindPastOp { keep, node });
        }
        for node in self.nodes.iter_mut().take(keep) {
            node.consumers = 0;
            node.last_consumer = 0;
        }
        self.forget_from(keep);
        Ok(())
    }

    /// Retires the values and argmax buffers of the nodes from `keep` on and drops them; a
    /// step's end for the pool when any were dropped.
    fn forget_from(&mut self, keep: usize) {
        if self.nodes.len() <= keep {
            return;
        }
        for node in self.nodes.drain(keep..) {
            // a parameter shared with the model (`shared_leaves`) stays the model's
            if let Some(buffer) = node.value.and_then(Tensor::into_unshared_vec) {
                self.scratch.buffers.retire(buffer);
            }
            if let Op::MaxPool2d(op) = node.op {
                self.scratch.retire_argmax(op.into_argmax());
            }
        }
        self.scratch.buffers.end_step();
    }

    /// Clears the tape (as [`Tape::clear`]) and makes it a recording tape or an inference-only
    /// one, keeping its scratch and buffer pool: one tape per thread can then serve both kinds
    /// of pass, and an inference pass's released activations become the next recorded pass's
    /// outputs (and back) instead of a second pool of the same buffers.
    pub fn restart(&mut self, recording: bool) {
        self.clear();
        self.recording = recording;
    }

    /// Gives `value`'s buffer to the tape's pool, for later op outputs: a training step's
    /// gradients, once applied, so the next step's backward writes into them instead of
    /// allocating and zeroing new ones.
    pub fn recycle(&mut self, value: Tensor<T>) {
        if let Some(buffer) = value.into_unshared_vec() {
            self.scratch.buffers.retire(buffer);
        }
    }

    /// A leaf whose gradient backward reports (a parameter, or an input being attributed).
    pub fn variable(&mut self, value: Tensor<T>) -> NodeId {
        let needs_grad = self.recording;
        self.nodes.push(Node {
            value: Some(value),
            op: Op::Leaf,
            needs_grad,
            consumers: 0,
            last_consumer: 0,
        });
        NodeId(self.nodes.len() - 1)
    }

    /// A leaf without gradient (data, labels, fixed weights).
    pub fn constant(&mut self, value: Tensor<T>) -> NodeId {
        self.nodes.push(Node {
            value: Some(value),
            op: Op::Leaf,
            needs_grad: false,
            consumers: 0,
            last_consumer: 0,
        });
        NodeId(self.nodes.len() - 1)
    }

    /// `value` as a leaf ([`Tape::variable`] if `trainable`, else [`Tape::constant`]) without a
    /// copy when the tensor is shared ([`Tensor::make_shared`]: the tape holds a share until the node
    /// is forgotten, and no op writes a leaf), else as a copy in a buffer from the tape's pool.
    pub fn shared_leaf(&mut self, value: &Tensor<T>, trainable: bool) -> NodeId {
        self.shared_leaves(std::slice::from_ref(value), trainable)[0]
    }

    /// [`Tape::shared_leaf`] of each of `values`, in order: a model's parameters, shared, put
    /// on the tape of each shard of a batch without a copy (`alexnet`'s are 40 MB).
    pub fn shared_leaves(&mut self, values: &[Tensor<T>], trainable: bool) -> Vec<NodeId> {
        let owned: Vec<&Tensor<T>> = values.iter().filter(|v| !v.is_shared()).collect();
        let mut copies = if owned.is_empty() {
            Vec::new()
        } else {
            self.copies(&owned)
        }
        .into_iter();
        values
            .iter()
            .map(|v| {
                let value = if v.is_shared() {
                    v.clone()
                } else {
                    copies.next().expect("one copy per unshared value")
                };
                if trainable {
                    self.variable(value)
                } else {
                    self.constant(value)
                }
            })
            .collect()
    }

    /// Copies of `values` in buffers from the tape's pool, the copying split between the
    /// threads (a serial copy kept the other thread waiting).
    fn copies(&mut self, values: &[&Tensor<T>]) -> Vec<Tensor<T>> {
        /// Elements per copy task.
        const CHUNK: usize = 1 << 14;
        let mut buffers: Vec<Vec<T>> = values
            .iter()
            .map(|v| self.scratch.buffers.output(v.numel()))
            .collect();
        let mut tasks = Vec::new();
        for (dst, src) in buffers.iter_mut().zip(values) {
            tasks.extend(dst.chunks_mut(CHUNK).zip(src.data().chunks(CHUNK)));
        }
        tasks
            .into_par_iter()
            .for_each(|(dst, src)| dst.copy_from_slice(src));
        buffers
            .into_iter()
            .zip(values)
            .map(|(data, v)| {
                Tensor::from_vec(v.shape(), data).expect("same length as the original")
            })
            .collect()
    }

    /// The value of a node. Panics if `id` is not from this tape or was released: both are
    /// programming errors, not input errors.
    pub fn value(&self, id: NodeId) -> &Tensor<T> {
        self.try_value("value", id).expect("node value")
    }

    /// The value of a node, or an error if it was released.
    pub(crate) fn try_value(&self, op: &'static str, id: NodeId) -> Result<&Tensor<T>, TapeError> {
        self.nodes[id.0]
            .value
            .as_ref()
            .ok_or(TapeError::Released { op, node: id.0 })
    }

    /// Moves a node's value out, leaving the node released. For handing borrowed leaves (a
    /// model's parameters, moved in with [`Tape::variable`] to avoid copying them every step)
    /// back to their owner once backward is done; a later op or backward reading the node gets
    /// a `Released` error, never a stale value.
    pub fn take_value(&mut self, id: NodeId) -> Option<Tensor<T>> {
        self.nodes.get_mut(id.0).and_then(|n| n.value.take())
    }

    /// Gives a node's value back to the tape's buffer pool, for a later op's output (the next
    /// pass's layer of that size writes into it instead of into a freshly zeroed allocation:
    /// 15 % of a `deep` inference pass at batch 1000 on an AVX-512 Xeon's AVX2 tier). Only in no-record mode, where no backward
    /// will need it; on a recording tape this does nothing.
    pub fn release(&mut self, id: NodeId) {
        if !self.recording {
            let value = self.nodes[id.0].value.take();
            if let Some(buffer) = value.and_then(Tensor::into_unshared_vec) {
                self.scratch.buffers.retire(buffer);
            }
        }
    }

    /// Pushes a computed value. `inputs` decide whether gradient must flow through it; in
    /// no-record mode the op is forgotten.
    pub(crate) fn push(&mut self, value: Tensor<T>, op: Op<T>, inputs: &[NodeId]) -> NodeId {
        let needs_grad = self.recording && inputs.iter().any(|i| self.nodes[i.0].needs_grad);
        let op = if needs_grad { op } else { Op::Leaf };
        let id = self.nodes.len();
        for input in inputs {
            let node = &mut self.nodes[input.0];
            node.consumers += 1;
            node.last_consumer = id;
        }
        self.nodes.push(Node {
            value: Some(value),
            op,
            needs_grad,
            consumers: 0,
            last_consumer: 0,
        });
        NodeId(id)
    }

    /// True when backward must compute a gradient for `id`.
    pub(crate) fn needs_grad(&self, id: NodeId) -> bool {
        self.nodes[id.0].needs_grad
    }

    /// Reverse-mode differentiation of the one-element node `output` with respect to every
    /// variable it depends on.
    ///
    /// Takes `&mut self` only to reuse the tape's kernel scratch space across calls.
    pub fn backward(&mut self, output: NodeId) -> Result<Gradients<T>, TapeError> {
        if !self.recording {
            return Err(TapeError::NoRecord);
        }
        let out = self.try_value("backward", output)?;
        if out.numel() != 1 {
            return Err(TapeError::NotScalar {
                found: out.shape().to_vec(),
            });
        }
        let mut grads = Gradients {
            grads: (0..self.nodes.len()).map(|_| None).collect(),
        };
        grads.grads[output.0] = Some(Tensor::full(out.shape(), T::ONE));
        let mut scratch = std::mem::take(&mut self.scratch);
        let result = self.backward_from(output, grads, &mut scratch);
        self.scratch = scratch;
        result
    }

    /// The reverse sweep of [`Tape::backward`], with `grads` seeded at `output`.
    fn backward_from(
        &self,
        output: NodeId,
        mut grads: Gradients<T>,
        scratch: &mut Scratch<T>,
    ) -> Result<Gradients<T>, TapeError> {
        for i in (0..=output.0).rev() {
            let node = &self.nodes[i];
            if matches!(node.op, Op::Leaf) || !node.needs_grad {
                continue;
            }
            // Every consumer of node i has a larger index, so its gradient is complete here.
            // Intermediate gradients are dropped once propagated; only leaves keep theirs.
            let Some(g) = grads.grads[i].take() else {
                continue;
            };
            node.op.backward(self, NodeId(i), &g, &mut grads, scratch)?;
            if let Some(buffer) = g.into_unshared_vec() {
                scratch.buffers.retire(buffer);
            }
        }
        Ok(grads)
    }
}
