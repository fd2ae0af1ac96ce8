//! A running job's handle ([`JobClient`]): take savepoints, stop the job
//! with a savepoint, wait for its result.

use crate::checkpoint::SavepointRequest;
use crate::error::Error;
use crate::runtime::JobResult;
use std::path::PathBuf;
use tokio::sync::{mpsc, oneshot, watch};

/// A job started with [`StreamEnvironment::submit`](crate::StreamEnvironment::submit):
/// it runs on the tokio runtime while this handle takes savepoints of it
/// and stops it.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let env = dataflow_core::StreamEnvironment::new().with_parallelism(1);
/// env.from_splits(1, |_| 0..10u64).key_by(|x| x % 2).sum(|x| *x).uid("sum").for_each(|_| {});
/// let job = env.submit();
/// let result = job.wait().await.unwrap();
/// assert_eq!(result.operator("sum").unwrap().records_in, 10);
/// # });
/// ```
#[derive(Debug)]
pub struct JobClient {
    pub(crate) requests: mpsc::UnboundedSender<SavepointRequest>,
    pub(crate) handle: tokio::task::JoinHandle<Result<JobResult, Error>>,
    pub(crate) triggered: watch::Receiver<u64>,
}

impl JobClient {
    async fn request(&self, dir: PathBuf, stop: Option<bool>) -> Result<PathBuf, Error> {
        let (reply, outcome) = oneshot::channel();
        let ended = || Error::Savepoint {
            path: dir.clone(),
            message: "the job ended (or failed) before the savepoint completed".into(),
        };
        self.requests.send(SavepointRequest { dir: dir.clone(), stop, reply }).map_err(|_| ended())?;
        outcome.await.map_err(|_| ended())?
    }

    /// Takes a savepoint into `dir` (a folder that is missing or empty,
    /// or an empty object-store prefix such as `s3://bucket/sp-1`) while
    /// the job goes on; returns `dir` once the savepoint is complete. See
    /// `docs/savepoints.md`.
    pub async fn savepoint(&self, dir: impl Into<PathBuf>) -> Result<PathBuf, Error> {
        self.request(dir.into(), None).await
    }

    /// Takes a savepoint into `dir` and stops the job: the sources emit
    /// nothing after their savepoint barrier, and the job ends once the
    /// savepoint completed (sinks commit what came before it). With
    /// `drain`, the sources first advance event time to the end, so every
    /// event-time window and timer fires before the savepoint (for a job
    /// that is stopped for good; resuming it afterwards sees those windows
    /// as fired). If the savepoint fails, a job that was not draining goes
    /// on; a draining one fails.
    pub async fn stop_with_savepoint(&self, dir: impl Into<PathBuf>, drain: bool) -> Result<PathBuf, Error> {
        self.request(dir.into(), Some(drain)).await
    }

    /// The checkpoint id of the latest savepoint triggered (0: none yet),
    /// as it changes: its barriers are on their way from the sources.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let env = dataflow_core::StreamEnvironment::new();
    /// env.from_iter(0..3).for_each(|_| {});
    /// let job = env.submit();
    /// assert_eq!(*job.savepoint_triggered().borrow(), 0);
    /// job.wait().await.unwrap();
    /// # });
    /// ```
    pub fn savepoint_triggered(&self) -> watch::Receiver<u64> {
        self.triggered.clone()
    }

    /// Waits for the job to end: its result, or the failure that ended it.
    pub async fn wait(self) -> Result<JobResult, Error> {
        match self.handle.await {
            Ok(r) => r,
            Err(e) => Err(Error::Internal(format!("the job's task ended abnormally: {e}"))),
        }
    }
}
