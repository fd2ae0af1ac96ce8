//! From the logical graph to the physical plan: resolve every node's
//! parallelism and every edge's partitioning, then chain forward edges
//! between operators of equal parallelism into one task.

use super::{Graph, NodeFactories, NodeId, NodeKind, Partitioning};
use crate::error::Error;
use std::fmt;

/// One chain of operators that runs as one task per subtask.
///
/// ```
/// use dataflow_core::StreamEnvironment;
/// let env = StreamEnvironment::new().with_parallelism(2);
/// env.from_parallel_iter(|_| 0..10).map(|x| x + 1).name("inc").for_each(|_| {});
/// let plan = env.explain().unwrap();
/// assert_eq!(plan.chains[0].operators, ["parallel source", "inc", "for_each"]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainPlan {
    /// The names of the chained operators, from the head.
    pub operators: Vec<String>,
    /// The number of parallel tasks running this chain.
    pub parallelism: usize,
    pub(crate) nodes: Vec<NodeId>,
}

/// A connection between two chains through channels.
///
/// ```
/// use dataflow_core::{Partitioning, StreamEnvironment};
/// let env = StreamEnvironment::new().with_parallelism(2);
/// env.from_parallel_iter(|_| 0..10u32).key_by(|x| x % 3).count().for_each(|_| {});
/// let plan = env.explain().unwrap();
/// assert_eq!((plan.edges[0].partitioning, plan.edges[0].channels), (Partitioning::Hash, 4));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EdgePlan {
    /// Index of the upstream chain in [`PhysicalPlan::chains`].
    pub from: usize,
    /// Index of the downstream chain.
    pub to: usize,
    /// How records are spread.
    pub partitioning: Partitioning,
    /// How many channels the edge has (upstream × downstream subtasks, or one
    /// per subtask for forward edges).
    pub channels: usize,
}

/// The physical plan: tasks, chains and channels. `Display` prints it.
///
/// ```
/// use dataflow_core::StreamEnvironment;
/// let env = StreamEnvironment::new().with_parallelism(2);
/// env.from_parallel_iter(|_| 0..10).map(|x| x * 2).for_each(|_| {});
/// let plan = env.explain().unwrap();
/// assert_eq!((plan.tasks(), plan.channels()), (2, 0));
/// println!("{plan}");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhysicalPlan {
    /// The chains, in the order of their head operators.
    pub chains: Vec<ChainPlan>,
    /// The edges between chains.
    pub edges: Vec<EdgePlan>,
}

impl PhysicalPlan {
    /// The number of tasks (the sum of every chain's parallelism).
    pub fn tasks(&self) -> usize {
        self.chains.iter().map(|c| c.parallelism).sum()
    }

    /// The number of channels between tasks.
    pub fn channels(&self) -> usize {
        self.edges.iter().map(|e| e.channels).sum()
    }
}

impl fmt::Display for PhysicalPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "physical plan: {} tasks, {} channels", self.tasks(), self.channels())?;
        for (i, c) in self.chains.iter().enumerate() {
            writeln!(f, "  chain {i} ×{}: {}", c.parallelism, c.operators.join(" -> "))?;
        }
        for e in &self.edges {
            writeln!(f, "  edge chain {} => chain {}: {} ({} channels)", e.from, e.to, e.partitioning, e.channels)?;
        }
        Ok(())
    }
}

/// The resolved facts the runtime builds tasks from.
pub(crate) struct Resolved {
    pub(crate) parallelism: Vec<usize>,
    pub(crate) partitioning: Vec<Partitioning>,
    pub(crate) chained: Vec<bool>,
    /// For every node: whether it heads a chain (runs its own task).
    pub(crate) is_head: Vec<bool>,
}

/// Resolves parallelism, partitioning and chaining.
pub(crate) fn resolve<F: NodeFactories>(
    graph: &Graph<F>,
    default_parallelism: usize,
    max_parallelism: u32,
) -> Result<(PhysicalPlan, Resolved), Error> {
    let mut parallelism: Vec<usize> = Vec::with_capacity(graph.nodes.len());
    for (id, n) in graph.nodes.iter().enumerate() {
        let inherited = n
            .inherit_parallelism
            .then(|| graph.edges.iter().find(|e| e.to == id).map(|e| parallelism[e.from]))
            .flatten();
        let p = match (n.non_parallel, n.parallelism) {
            (true, Some(p)) if p != 1 => {
                return Err(Error::InvalidGraph(format!(
                    "source '{}' is not parallel; its parallelism cannot be {p}",
                    n.name
                )));
            }
            (true, _) => 1,
            (false, Some(p)) => p,
            (false, None) => inherited.unwrap_or(default_parallelism),
        };
        if p == 0 || p > max_parallelism as usize {
            return Err(Error::InvalidGraph(format!(
                "operator '{}' has parallelism {p}; it must be in 1..={max_parallelism} (max parallelism)",
                n.name
            )));
        }
        parallelism.push(p);
    }
    let mut inputs = vec![0usize; graph.nodes.len()];
    for e in &graph.edges {
        inputs[e.to] += 1;
    }
    let mut partitioning = Vec::with_capacity(graph.edges.len());
    let mut chained = Vec::with_capacity(graph.edges.len());
    for e in &graph.edges {
        let (pu, pd) = (parallelism[e.from], parallelism[e.to]);
        let part = match e.partitioning {
            Some(Partitioning::Forward) if pu != pd => {
                return Err(Error::InvalidGraph(format!(
                    "forward edge from '{}' (parallelism {pu}) to '{}' (parallelism {pd}) needs equal parallelism",
                    graph.nodes[e.from].name, graph.nodes[e.to].name
                )));
            }
            // One subtask to one subtask: every partitioning is the identity.
            _ if pu == 1 && pd == 1 => Partitioning::Forward,
            Some(p) => p,
            None if pu == pd => Partitioning::Forward,
            None => Partitioning::Rebalance,
        };
        let one_input = matches!(graph.nodes[e.to].kind, NodeKind::OneInput(_));
        chained.push(part == Partitioning::Forward && one_input && inputs[e.to] == 1 && e.side.is_none());
        partitioning.push(part);
    }
    let mut is_head = vec![true; graph.nodes.len()];
    let mut chain_of = vec![usize::MAX; graph.nodes.len()];
    for (e, _) in graph.edges.iter().zip(&chained).filter(|(_, c)| **c) {
        is_head[e.to] = false;
    }
    let mut chains: Vec<ChainPlan> = Vec::new();
    // Nodes are added in topological order, so an upstream node's chain is
    // known before its chained successors are visited.
    for id in 0..graph.nodes.len() {
        let chain = if is_head[id] {
            chains.push(ChainPlan { operators: Vec::new(), parallelism: parallelism[id], nodes: Vec::new() });
            chains.len() - 1
        } else {
            let e = graph.edges.iter().zip(&chained).find(|(e, c)| **c && e.to == id);
            match e {
                Some((e, _)) => chain_of[e.from],
                None => return Err(Error::Internal(format!("chained node {id} has no chained input"))),
            }
        };
        chain_of[id] = chain;
        chains[chain].operators.push(graph.nodes[id].name.clone());
        chains[chain].nodes.push(id);
    }
    let edges = graph
        .edges
        .iter()
        .zip(&partitioning)
        .zip(&chained)
        .filter(|(_, c)| !**c)
        .map(|((e, &part), _)| {
            let (pu, pd) = (parallelism[e.from], parallelism[e.to]);
            let channels = if part == Partitioning::Forward { pd } else { pu * pd };
            EdgePlan { from: chain_of[e.from], to: chain_of[e.to], partitioning: part, channels }
        })
        .collect();
    let plan = PhysicalPlan { chains, edges };
    Ok((plan, Resolved { parallelism, partitioning, chained, is_head }))
}
