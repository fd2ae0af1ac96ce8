//! How the records of an edge are spread over the downstream subtasks
//! ([`Partitioning`]), and for `key_by` edges which subtask owns each
//! record's key (by key group: `hash(key) % max_parallelism`, subtask `i`
//! of `p` owning a contiguous range of key groups).

use dataflow_state::Key;
use dataflow_state::key_group::{key_group_for_hash, operator_index_for_key_group};

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

/// Computes, for a whole batch, which downstream subtask each record goes
/// to. Implemented for the typed key selector given to `key_by`, so the
/// per-record loop is compiled for the concrete key type.
pub(crate) trait KeyRoute<T>: Send + Sync {
    fn route(&self, values: &[T], max_parallelism: u32, parallelism: u32, out: &mut Vec<u32>);
}

/// The [`KeyRoute`] of a key selector function.
pub(crate) struct FnKeyRoute<F>(pub(crate) F);

impl<T, K, F> KeyRoute<T> for FnKeyRoute<F>
where
    K: Key,
    F: Fn(&T) -> K + Send + Sync,
{
    #[inline]
    fn route(&self, values: &[T], max_parallelism: u32, parallelism: u32, out: &mut Vec<u32>) {
        out.clear();
        out.extend(values.iter().map(|v| {
            let kg = key_group_for_hash((self.0)(v).stable_hash(), max_parallelism);
            operator_index_for_key_group(max_parallelism, parallelism, kg) as u32
        }));
    }
}
