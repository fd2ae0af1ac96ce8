//! The logical job graph (what the typed API builds) and the physical plan
//! derived from it (parallelism, partitioning, chains, channels).
//!
//! Each node is one operator with an optional parallelism, name and `uid`;
//! each edge says how records move between two nodes ([`Partitioning`]).
//! A node holds the factory that builds its instances; the graph stores
//! factories but never calls them, so their types come in through
//! `NodeFactories` from the layer that runs the job (the runtime's
//! `job::factory`). The typed API guarantees that the two ends of an edge
//! agree on the record type, so the type-erased factories always fit
//! together.

mod partitioning;
mod plan;

pub use partitioning::Partitioning;
pub(crate) use partitioning::{FnKeyRoute, KeyRoute};
pub(crate) use plan::resolve;
pub use plan::{ChainPlan, EdgePlan, PhysicalPlan};

use crate::operator::TagKey;
use std::any::Any;
use std::sync::Arc;

pub(crate) type NodeId = usize;

/// The factory types a graph's nodes hold: chosen by the layer that runs
/// the job, which alone knows how to build tasks, channels and drivers.
pub(crate) trait NodeFactories {
    /// Builds the task of a source node.
    type Source;
    /// Builds the instances of a one-input node.
    type OneInput;
    /// Builds the task of a two-input node.
    type TwoInput;
    /// The record type of a side output, for the runtime to build its
    /// channels.
    type Port: Clone;
}

/// What kind of operator a node holds, with its factory.
pub(crate) enum NodeKind<F: NodeFactories> {
    Source(F::Source),
    OneInput(F::OneInput),
    TwoInput(F::TwoInput),
}

pub(crate) struct Node<F: NodeFactories> {
    pub(crate) name: String,
    pub(crate) uid: Option<String>,
    pub(crate) parallelism: Option<usize>,
    /// A source that can only run as one subtask (an iterator, a stream).
    pub(crate) non_parallel: bool,
    /// Without an explicit parallelism, take the first input's (sinks do,
    /// so a sink chains to what it writes).
    pub(crate) inherit_parallelism: bool,
    pub(crate) kind: NodeKind<F>,
}

pub(crate) struct Edge<F: NodeFactories> {
    pub(crate) from: NodeId,
    pub(crate) to: NodeId,
    /// Which input of `to` (0, or 1 for the second input of a two-input node).
    pub(crate) input: usize,
    /// `None`: forward when the parallelism matches, rebalance otherwise.
    pub(crate) partitioning: Option<Partitioning>,
    /// For hash edges: an `Arc<dyn KeyRoute<T>>` for the edge's record type.
    pub(crate) key: Option<Arc<dyn Any + Send + Sync>>,
    /// For an edge from a side output: which one, and its record type.
    pub(crate) side: Option<SideEdge<F>>,
}

/// The side output an edge starts from.
pub(crate) struct SideEdge<F: NodeFactories> {
    pub(crate) key: TagKey,
    pub(crate) port: F::Port,
}

impl<F: NodeFactories> Clone for SideEdge<F> {
    fn clone(&self) -> Self {
        Self { key: self.key.clone(), port: self.port.clone() }
    }
}

pub(crate) struct Graph<F: NodeFactories> {
    pub(crate) nodes: Vec<Node<F>>,
    pub(crate) edges: Vec<Edge<F>>,
}

impl<F: NodeFactories> Default for Graph<F> {
    fn default() -> Self {
        Self { nodes: Vec::new(), edges: Vec::new() }
    }
}

impl<F: NodeFactories> Graph<F> {
    pub(crate) fn add_node(&mut self, name: String, kind: NodeKind<F>) -> NodeId {
        self.nodes.push(Node {
            name,
            uid: None,
            parallelism: None,
            non_parallel: false,
            inherit_parallelism: false,
            kind,
        });
        self.nodes.len() - 1
    }
}
