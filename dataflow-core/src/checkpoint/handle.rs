//! Checkpointing as the environment configures it, and the handle that
//! follows a job's checkpoints.

use super::CheckpointingMode;
use super::coordinator::CheckpointConfig;
use super::stats::{CheckpointStats, History};
use super::storage::{CheckpointMetadata, CheckpointStorage, Found};
use crate::error::Error;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError};
use std::time::Duration;
use tokio::sync::watch;

/// Checkpointing as the environment configures it, with the watches its
/// [`CheckpointHandle`] reads.
#[derive(Clone, Debug)]
pub(crate) struct CheckpointSetup {
    pub(crate) config: CheckpointConfig,
    pub(crate) dir: PathBuf,
    pub(crate) triggered: Arc<watch::Sender<u64>>,
    pub(crate) completed: Arc<watch::Sender<u64>>,
    pub(crate) history: History,
}

/// What a job's checkpoints are doing, for whoever enabled them: the id of
/// the latest triggered and of the latest completed checkpoint (0: none).
///
/// ```
/// use dataflow_core::checkpoint::coordinator::CheckpointConfig;
/// let env = dataflow_core::StreamEnvironment::new();
/// let h = env.enable_checkpointing(CheckpointConfig::every(std::time::Duration::from_secs(1)), std::env::temp_dir().join("chk-doc"));
/// assert_eq!(*h.completed().borrow(), 0);
/// ```
#[derive(Clone, Debug)]
pub struct CheckpointHandle {
    pub(crate) triggered: watch::Receiver<u64>,
    pub(crate) completed: watch::Receiver<u64>,
    pub(crate) history: History,
}

impl CheckpointHandle {
    /// The id of the latest triggered checkpoint, as it changes.
    pub fn triggered(&self) -> watch::Receiver<u64> {
        self.triggered.clone()
    }

    /// The id of the latest completed checkpoint, as it changes.
    pub fn completed(&self) -> watch::Receiver<u64> {
        self.completed.clone()
    }

    /// The metrics of the latest completed checkpoints (at most
    /// [`stats::KEPT`](super::stats::KEPT)), oldest first.
    pub fn stats(&self) -> Vec<CheckpointStats> {
        self.history.lock().unwrap_or_else(PoisonError::into_inner).iter().cloned().collect()
    }
}

impl CheckpointSetup {
    /// The setup of a job that takes savepoints but no checkpoints.
    pub(crate) fn savepoints_only() -> Self {
        let config = CheckpointConfig { mode: CheckpointingMode::Aligned, ..CheckpointConfig::every(Duration::MAX) };
        Self {
            config,
            dir: PathBuf::new(),
            triggered: Arc::new(watch::channel(0).0),
            completed: Arc::new(watch::channel(0).0),
            history: History::default(),
        }
    }
}

/// Storage for a job without checkpoints (it only takes savepoints).
#[derive(Debug)]
pub(crate) struct NoCheckpoints;

impl CheckpointStorage for NoCheckpoints {
    fn checkpoint_dir(&self, id: u64) -> Result<PathBuf, Error> {
        Err(Error::Internal(format!("checkpoint {id} of a job without checkpointing")))
    }
    fn complete(&self, metadata: &CheckpointMetadata) -> Result<(), Error> {
        self.checkpoint_dir(metadata.id).map(drop)
    }
    fn find(&self) -> Result<Found, Error> {
        Ok(Found::default())
    }
    fn discard(&self, _id: u64) -> Result<(), Error> {
        Ok(())
    }
    fn retain(&self, _keep: usize) -> Result<(), Error> {
        Ok(())
    }
}
