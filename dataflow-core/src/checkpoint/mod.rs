//! Checkpoints: barriers, the coordinator's decisions ([`coordinator`]),
//! where complete checkpoints are stored ([`storage`]), and what happens
//! after a failure ([`restart`]). Wiring them into the running job (barrier
//! alignment, channel state, recovery) and savepoints land next.
//!
//! A barrier travels on the priority lane of a channel
//! (`runtime::channel`), so in unaligned mode it can overtake the records
//! queued ahead of it.

pub mod coordinator;
mod hub;
pub mod restart;
pub mod storage;

pub use hub::CheckpointHandle;
pub(crate) use hub::{Acks, CheckpointSetup, Hub, Part, part_name};

use crate::time::Timestamp;

/// Checkpoint barrier `id`, injected by the sources.
///
/// ```
/// let b = dataflow_core::checkpoint::CheckpointBarrier { id: 3, timestamp: 0 };
/// assert_eq!(b.id, 3);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CheckpointBarrier {
    /// The checkpoint this barrier belongs to; increases by one per checkpoint.
    pub id: u64,
    /// Processing time at which the checkpoint was triggered.
    pub timestamp: Timestamp,
}
