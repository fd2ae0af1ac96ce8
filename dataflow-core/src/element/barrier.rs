//! Checkpoint barriers: what the sources inject and every channel carries
//! in-band among the records (Flink's `CheckpointBarrier`), with how tasks
//! treat them ([`CheckpointingMode`]) and what they take ([`BarrierKind`]).
//! How tasks align barriers and log in-flight records is in the
//! `checkpoint` module.

use super::Timestamp;
use std::time::Duration;

/// How barriers are handled in tasks with several input channels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CheckpointingMode {
    /// Exactly once; the first barrier is taken at once and the records it
    /// overtakes become channel state (the default).
    #[default]
    Unaligned,
    /// Exactly once; each channel waits after its barrier until all have
    /// delivered it.
    Aligned,
    /// Aligned, switching to unaligned when alignment takes longer than
    /// this.
    AlignedWithTimeout(Duration),
    /// No alignment and no channel state: records may be processed twice
    /// after a failure.
    AtLeastOnce,
}

/// Checkpoint barrier `id`, injected by the sources.
///
/// ```
/// use dataflow_core::checkpoint::{CheckpointBarrier, CheckpointingMode};
/// use dataflow_core::checkpoint::BarrierKind;
/// let b = CheckpointBarrier { id: 3, timestamp: 0, mode: CheckpointingMode::Aligned, incremental: false, kind: BarrierKind::Checkpoint };
/// assert_eq!(b.id, 3);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CheckpointBarrier {
    /// The checkpoint this barrier belongs to; increases by one per checkpoint.
    pub id: u64,
    /// Processing time at which the checkpoint was triggered.
    pub timestamp: Timestamp,
    /// How tasks handle this barrier (a savepoint is always aligned).
    pub mode: CheckpointingMode,
    /// Whether keyed state may be written as the changes since the
    /// previous checkpoint (incremental checkpoints), or must be in full.
    pub incremental: bool,
    /// A checkpoint or a savepoint (and whether the job stops after it).
    pub kind: BarrierKind,
}

/// What a barrier takes: a checkpoint, or a savepoint (always aligned and
/// full, its keyed state in the canonical encoding, its files in a folder
/// of its own; see `checkpoint::savepoint`).
///
/// ```
/// use dataflow_core::checkpoint::BarrierKind;
/// assert!(BarrierKind::Stop { drain: false }.is_savepoint());
/// assert!(!BarrierKind::Checkpoint.is_savepoint());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum BarrierKind {
    /// A checkpoint (periodic, or the final one).
    #[default]
    Checkpoint,
    /// A savepoint; the job goes on.
    Savepoint,
    /// A savepoint after which the sources stop; with `drain`, event time
    /// advances to the end before it.
    Stop {
        /// Whether the sources emit the maximum watermark before the barrier.
        drain: bool,
    },
}

impl BarrierKind {
    /// Whether the barrier takes a savepoint.
    pub fn is_savepoint(self) -> bool {
        !matches!(self, BarrierKind::Checkpoint)
    }
}

impl CheckpointBarrier {
    /// Whether a copy of the barrier travels on the priority lane, ahead
    /// of the records queued in the channel.
    pub(crate) fn overtakes(&self) -> bool {
        matches!(self.mode, CheckpointingMode::Unaligned | CheckpointingMode::AlignedWithTimeout(_))
    }
}
