//! [`SinkNode`]: a handle to a sink in the graph, to name it, set its
//! parallelism and its uid.

use super::StreamEnvironment;
use crate::graph::NodeId;

/// A handle to a sink in the graph, to configure it.
///
/// ```
/// let env = dataflow_core::StreamEnvironment::new();
/// env.from_iter(0..3).for_each(|_| {}).name("drop").set_parallelism(1).uid("drop-v1");
/// assert!(env.explain().unwrap().to_string().contains("drop"));
/// ```
#[derive(Debug, Clone)]
pub struct SinkNode {
    pub(super) env: StreamEnvironment,
    pub(super) node: NodeId,
}

impl SinkNode {
    /// Sets the sink's parallelism.
    pub fn set_parallelism(self, parallelism: usize) -> Self {
        self.env.update_node(self.node, |n| n.parallelism = Some(parallelism));
        self
    }

    /// Names the sink.
    pub fn name(self, name: &str) -> Self {
        self.env.update_node(self.node, |n| n.name = name.to_string());
        self
    }

    /// Gives the sink a stable id.
    pub fn uid(self, uid: &str) -> Self {
        self.env.update_node(self.node, |n| n.uid = Some(uid.to_string()));
        self
    }
}
