//! Checkpoints: barriers, the coordinator's decisions ([`coordinator`]),
//! where complete checkpoints are stored ([`storage`]), and what happens
//! after a failure ([`restart`]). How tasks align barriers and log
//! in-flight records is in `runtime::alignment`; see `docs/checkpoints.md`.
//!
//! A barrier always travels in-band, at its place among the records of
//! each channel. In unaligned mode (and aligned with a timeout) a copy
//! also travels on the channel's priority lane (`runtime::channel`), so a
//! task can take its snapshot before the records queued ahead of it.

pub mod coordinator;
mod hub;
pub mod restart;
pub mod stats;
pub mod storage;

pub use coordinator::CheckpointingMode;
pub use hub::CheckpointHandle;
pub(crate) use hub::{Acks, CheckpointSetup, Hub, Part, channel_state_name, channel_state_operator, part_name};
pub use stats::CheckpointStats;

use crate::time::Timestamp;

/// Checkpoint barrier `id`, injected by the sources.
///
/// ```
/// use dataflow_core::checkpoint::{CheckpointBarrier, CheckpointingMode};
/// let b = CheckpointBarrier { id: 3, timestamp: 0, mode: CheckpointingMode::Aligned, incremental: false };
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
}

impl CheckpointBarrier {
    /// Whether a copy of the barrier travels on the priority lane, ahead
    /// of the records queued in the channel.
    pub(crate) fn overtakes(&self) -> bool {
        matches!(self.mode, CheckpointingMode::Unaligned | CheckpointingMode::AlignedWithTimeout(_))
    }
}
