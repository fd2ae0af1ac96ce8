//! How a [`JobClient`](crate::JobClient) asks the running job for a
//! savepoint: requests go through a channel that each run of the job
//! takes in turn, and the coordinator's hub answers each one.

use crate::error::Error;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, watch};

/// What a savepoint request asks for.
#[derive(Debug)]
pub(crate) struct SavepointRequest {
    /// The savepoint's folder (missing or empty).
    pub(crate) dir: PathBuf,
    /// `Some(drain)`: stop the job once the savepoint completed; with
    /// `drain`, event time first advances to the end so every window fires.
    pub(crate) stop: Option<bool>,
    /// Where the outcome goes.
    pub(crate) reply: oneshot::Sender<Result<PathBuf, Error>>,
}

/// The job's end of the savepoint requests (each run of the job takes them
/// in turn), and where it says which savepoint it triggered.
#[derive(Clone, Debug)]
pub(crate) struct SavepointRequests {
    pub(crate) requests: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<SavepointRequest>>>,
    pub(crate) triggered: Arc<watch::Sender<u64>>,
    /// A savepoint that stops the job completed: a failure after it ends
    /// the job instead of restarting it.
    pub(crate) stopped: Arc<std::sync::atomic::AtomicBool>,
}
