//! Metrics per checkpoint: how long it took (in all, in the synchronous
//! and asynchronous parts of the snapshots, in alignment) and how many
//! bytes of state and of channel state it wrote. Completed checkpoints'
//! metrics are kept (the latest [`KEPT`]) for the job's
//! [`CheckpointHandle`](super::CheckpointHandle) and logged with `tracing`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// How many completed checkpoints' metrics are kept.
pub const KEPT: usize = 100;

/// What one completed checkpoint cost.
///
/// ```
/// let s = dataflow_core::checkpoint::CheckpointStats::default();
/// assert_eq!(s.state_bytes + s.channel_state_bytes, 0);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckpointStats {
    /// The checkpoint.
    pub id: u64,
    /// From the trigger until `_metadata` was written (wall time).
    pub duration: Duration,
    /// The longest synchronous part of one operator instance's snapshot.
    pub synchronous: Duration,
    /// The longest asynchronous part (writing one part's file).
    pub asynchronous: Duration,
    /// The longest alignment in one task: from the first barrier that
    /// reached it until it took its snapshot.
    pub alignment: Duration,
    /// Bytes of operator state (and source positions, sink committables).
    pub state_bytes: u64,
    /// Bytes of channel state (in-flight records of unaligned checkpoints).
    pub channel_state_bytes: u64,
}

/// What one part of a checkpoint reports.
pub(crate) struct PartStats {
    pub(crate) synchronous: Duration,
    pub(crate) asynchronous: Duration,
    pub(crate) alignment: Duration,
    pub(crate) bytes: u64,
    pub(crate) channel_state: bool,
}

/// Collects the parts' metrics of pending checkpoints.
#[derive(Default)]
pub(crate) struct Collector {
    pending: Mutex<BTreeMap<u64, (Instant, CheckpointStats)>>,
}

/// The completed checkpoints' metrics, shared with the job's handle.
pub(crate) type History = Arc<Mutex<VecDeque<CheckpointStats>>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Collector {
    /// Checkpoint `id` was triggered now.
    pub(crate) fn triggered(&self, id: u64) {
        let mut pending = lock(&self.pending);
        // Checkpoints that never completed are forgotten.
        pending.retain(|&p, (since, _)| p + 64 > id && since.elapsed() < Duration::from_secs(3_600));
        pending.insert(id, (Instant::now(), CheckpointStats { id, ..CheckpointStats::default() }));
    }

    /// One part of checkpoint `id` was written.
    pub(crate) fn part(&self, id: u64, part: PartStats) {
        if let Some((_, s)) = lock(&self.pending).get_mut(&id) {
            s.synchronous = s.synchronous.max(part.synchronous);
            s.asynchronous = s.asynchronous.max(part.asynchronous);
            s.alignment = s.alignment.max(part.alignment);
            match part.channel_state {
                true => s.channel_state_bytes += part.bytes,
                false => s.state_bytes += part.bytes,
            }
        }
    }

    /// Checkpoint `id` completed: its metrics go to `history` and the log.
    pub(crate) fn completed(&self, id: u64, history: &History) {
        let Some((since, mut s)) = lock(&self.pending).remove(&id) else { return };
        s.duration = since.elapsed();
        tracing::info!(
            checkpoint = id,
            duration_ms = s.duration.as_millis() as u64,
            synchronous_ms = s.synchronous.as_millis() as u64,
            asynchronous_ms = s.asynchronous.as_millis() as u64,
            alignment_ms = s.alignment.as_millis() as u64,
            state_bytes = s.state_bytes,
            channel_state_bytes = s.channel_state_bytes,
            "checkpoint metrics"
        );
        let mut h = lock(history);
        if h.len() == KEPT {
            h.pop_front();
        }
        h.push_back(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_add_up_and_completion_records_them() {
        let c = Collector::default();
        let history = History::default();
        c.triggered(1);
        let ms = Duration::from_millis;
        c.part(
            1,
            PartStats { synchronous: ms(2), asynchronous: ms(5), alignment: ms(0), bytes: 10, channel_state: false },
        );
        c.part(
            1,
            PartStats { synchronous: ms(1), asynchronous: ms(7), alignment: ms(3), bytes: 4, channel_state: true },
        );
        c.part(
            2,
            PartStats { synchronous: ms(9), asynchronous: ms(9), alignment: ms(9), bytes: 9, channel_state: true },
        );
        c.completed(1, &history);
        let s = history.lock().unwrap()[0].clone();
        assert_eq!((s.id, s.synchronous, s.asynchronous, s.alignment), (1, ms(2), ms(7), ms(3)));
        assert_eq!((s.state_bytes, s.channel_state_bytes), (10, 4));
        c.completed(1, &history);
        assert_eq!(history.lock().unwrap().len(), 1, "once");
    }
}
