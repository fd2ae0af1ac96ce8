//! Checkpoints and savepoints: the barriers' path from the coordinator's
//! trigger to the acknowledgements, and what is kept.
//!
//! * [`coordinator`]: when to trigger a checkpoint, when one is complete
//!   or aborted (pure decisions, no I/O);
//! * `hub`: the running job's side of the coordinator: sources ask it for
//!   barriers, operator instances acknowledge with their state files
//!   ([`CheckpointHandle`] is its public face);
//! * `barrier_alignment`: how a task with several input channels treats a
//!   barrier (aligned, unaligned, with a timeout, at-least-once);
//! * `channel_state`: the in-flight records an unaligned checkpoint
//!   captures, and their replay on restore;
//! * [`storage`]: complete checkpoints on disk (`_metadata` written last),
//!   retention, and which checkpoint a job restores (incomplete ones are
//!   skipped; damaged ones fail the restore unless a fallback is allowed);
//! * [`object_storage`]: the storage by the location's form, and
//!   checkpoints on object stores (`s3://`, `gs://`, `az://`: parts
//!   staged locally and uploaded, `_metadata` last; downloaded to restore);
//! * [`savepoint`]: savepoints (self-contained, matched by `uid`);
//!   `savepoint_requests` carries a [`JobClient`](crate::JobClient)'s
//!   requests to the job;
//! * [`restart`]: restart strategies after a failure;
//! * [`stats`]: the history of checkpoints.
//!
//! A barrier ([`CheckpointBarrier`], defined with the other stream
//! elements) always travels in-band, at its place among the records of
//! each channel. In unaligned mode (and aligned with a timeout) a copy
//! also travels on the channel's priority lane, so a task can take its
//! snapshot before the records queued ahead of it. See
//! `docs/checkpoints.md`.

pub(crate) mod barrier_alignment;
pub(crate) mod channel_state;
pub mod coordinator;
mod framing;
mod handle;
mod hub;
pub mod object_storage;
mod parts;
pub mod restart;
pub mod savepoint;
mod savepoint_requests;
pub mod stats;
pub mod storage;

pub use crate::element::{BarrierKind, CheckpointBarrier, CheckpointingMode};
pub use handle::CheckpointHandle;
pub(crate) use handle::CheckpointSetup;
pub(crate) use hub::{Acks, Hub, HubSetup};
pub(crate) use parts::{CHANNELS, Part};
pub(crate) use savepoint_requests::{SavepointRequest, SavepointRequests};
pub use stats::CheckpointStats;
pub(crate) use storage::OPERATOR_STATE;
