//! The logical job graph (what the typed API builds) and the physical plan
//! derived from it (parallelism, partitioning, chains, channels).
//!
//! Each node is one operator with an optional parallelism, name and `uid`;
//! each edge says how records move between two nodes. The typed API
//! guarantees that the two ends of an edge agree on the record type, so the
//! type-erased factories stored here always fit together.

mod plan;

pub(crate) use plan::resolve;
pub use plan::{ChainPlan, EdgePlan, PhysicalPlan};

use crate::operator::TagKey;
use crate::runtime::factory::{OneInputFactory, Port, SourceFactory, TwoInputFactory};
use std::any::Any;
use std::sync::Arc;

pub(crate) type NodeId = usize;

/// How the records of an edge are spread over the downstream subtasks.
///
/// ```
/// assert_eq!(dataflow_core::Partitioning::Hash.to_string(), "HASH");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Partitioning {
    /// Subtask `i` to subtask `i` (equal parallelism); chained when possible.
    Forward,
    /// Round robin over all downstream subtasks.
    Rebalance,
    /// Every record to every downstream subtask.
    Broadcast,
    /// By key group of the record's key (`key_by`).
    Hash,
}

impl std::fmt::Display for Partitioning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Partitioning::Forward => "FORWARD",
            Partitioning::Rebalance => "REBALANCE",
            Partitioning::Broadcast => "BROADCAST",
            Partitioning::Hash => "HASH",
        })
    }
}

/// What kind of operator a node holds, with its factory.
pub(crate) enum NodeKind {
    Source(Box<dyn SourceFactory>),
    OneInput(Box<dyn OneInputFactory>),
    TwoInput(Box<dyn TwoInputFactory>),
}

pub(crate) struct Node {
    pub(crate) name: String,
    pub(crate) uid: Option<String>,
    pub(crate) parallelism: Option<usize>,
    /// A source that can only run as one subtask (an iterator, a stream).
    pub(crate) non_parallel: bool,
    /// Without an explicit parallelism, take the first input's (sinks do,
    /// so a sink chains to what it writes).
    pub(crate) inherit_parallelism: bool,
    pub(crate) kind: NodeKind,
}

pub(crate) struct Edge {
    pub(crate) from: NodeId,
    pub(crate) to: NodeId,
    /// Which input of `to` (0, or 1 for the second input of a two-input node).
    pub(crate) input: usize,
    /// `None`: forward when the parallelism matches, rebalance otherwise.
    pub(crate) partitioning: Option<Partitioning>,
    /// For hash edges: an `Arc<dyn KeyRoute<T>>` for the edge's record type.
    pub(crate) key: Option<Arc<dyn Any + Send + Sync>>,
    /// For an edge from a side output: which one, and its record type.
    pub(crate) side: Option<SideEdge>,
}

/// The side output an edge starts from.
#[derive(Clone)]
pub(crate) struct SideEdge {
    pub(crate) key: TagKey,
    pub(crate) port: Arc<dyn Port>,
}

#[derive(Default)]
pub(crate) struct Graph {
    pub(crate) nodes: Vec<Node>,
    pub(crate) edges: Vec<Edge>,
}

impl Graph {
    pub(crate) fn add_node(&mut self, name: String, kind: NodeKind) -> NodeId {
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
