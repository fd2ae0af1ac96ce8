//! The state table of a keyed operator instance, as every keyed operator
//! ([`Keyed`](super::Keyed), the window operators) opens, snapshots and
//! restores it: this subtask's key groups on the job's backend, the
//! timers beside the states in every snapshot.

use super::{BoxError, OperatorInfo};
use crate::element::CheckpointBarrier;
use crate::time::{Timer, decode_timer};
use dataflow_state::table::{RawEntry, StateBackendConfig, StateSnapshot, StateTable, TIMERS_ID, TableSpec, state_id};
use dataflow_state::{Key, KeyGroupRange, StateValue, Ttl};
use serde::de::DeserializeOwned;
use std::path::Path;

/// Opens the table of the instance `info` on `backend`, with state
/// expiring `ttl` after its last access if given.
pub(crate) fn open<K: Key, S: StateValue>(
    info: &OperatorInfo,
    backend: &StateBackendConfig,
    ttl: Option<Ttl>,
) -> Result<StateTable<K, S>, BoxError> {
    let range = KeyGroupRange::for_operator(info.max_parallelism, info.parallelism as u32, info.subtask as u32)?;
    let spec = TableSpec { ttl, ..TableSpec::new(&info.name, info.max_parallelism, range) }
        .with_incremental(info.incremental_checkpoints);
    let name = format!("operator-{}/subtask-{}", info.operator_index, info.subtask);
    Ok(StateTable::open(backend, spec, &name)?)
}

/// The synchronous part of the table's snapshot for `barrier`, with the
/// `timers` entries: a savepoint in full, in the canonical encoding; an
/// incremental checkpoint what changed since the previous one; any other
/// checkpoint in full.
pub(crate) fn snapshot<K: Key, S: StateValue>(
    table: &mut StateTable<K, S>,
    barrier: &CheckpointBarrier,
    timers: Vec<RawEntry>,
) -> Result<StateSnapshot, BoxError> {
    Ok(match (barrier.kind.is_savepoint(), barrier.incremental) {
        (true, _) => table.snapshot_canonical(timers)?,
        (false, true) => table.snapshot_changes(timers)?,
        (false, false) => table.snapshot(timers)?,
    })
}

/// Restores the table from `files` and returns the timers they hold (of
/// this table's key groups), keyed by `TK` (the table's key type, or the
/// key part of it).
pub(crate) fn restore<K: Key, S: StateValue, TK: Key, N: DeserializeOwned>(
    table: &mut StateTable<K, S>,
    files: &[&Path],
) -> Result<Vec<Timer<TK, N>>, BoxError> {
    let mut timers = Vec::new();
    for (key, value) in table.restore(files)? {
        if state_id(&key) == TIMERS_ID {
            timers.push(decode_timer(&key, &value)?);
        }
    }
    Ok(timers)
}
