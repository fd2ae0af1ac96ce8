//! Two-phase-commit sinks: the building block of exactly-once output.
//!
//! After a failure the sources replay what followed the last complete
//! checkpoint, so a sink that simply appends would repeat that output. A
//! [`TwoPhaseCommitSink`] (Flink's `TwoPhaseCommitSinkFunction`, or its
//! `FileSink`) writes where readers do not look, seals that durably when a
//! checkpoint barrier passes (*pre-commit*) and publishes it once the
//! checkpoint is complete (*commit*). The hooks, per subtask (the checkpoint
//! coordinator will call them; today a caller does):
//!
//! 1. [`write_batch`](TwoPhaseCommitSink::write_batch) for every batch;
//! 2. barrier `n`: [`pre_commit(n)`](TwoPhaseCommitSink::pre_commit); the
//!    committables it returns are this subtask's sink state in checkpoint `n`;
//! 3. checkpoint `n` complete: [`commit`](TwoPhaseCommitSink::commit) those
//!    committables. A lost or late notice does no harm: the next pre-commit
//!    returns them again, and committing twice is a no-op;
//! 4. restore from checkpoint `c`: a new sink,
//!    [`recover`](TwoPhaseCommitSink::recover) with `c`'s committables (or
//!    none without a checkpoint) before anything is written; the sources then
//!    replay from `c`;
//! 5. end of input: [`finish`](TwoPhaseCommitSink::finish).
//!
//! [`TransactionalFileSink`] writes lines into part files of a directory;
//! [`read_committed`] reads what readers may see. A crash after checkpoint 1
//! keeps its output and drops what came after:
//!
//! ```
//! use dataflow_core::{connectors::two_phase::*, Batch};
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let dir = tempfile::tempdir()?;
//! let mut sink = TransactionalFileSink::new(dir.path(), 0);
//! sink.write_batch(&mut Batch::from(vec![1, 2])).await?;
//! let checkpoint_1 = sink.pre_commit(1).await?; // stored with checkpoint 1
//! sink.write_batch(&mut Batch::from(vec![3])).await?;
//! assert!(read_committed(dir.path())?.is_empty()); // nothing visible yet
//! drop(sink); // crash: checkpoint 1 completed, but its notice never came
//!
//! let mut sink = TransactionalFileSink::new(dir.path(), 0);
//! sink.recover(checkpoint_1).await?; // restore from checkpoint 1; 3 is replayed
//! sink.write_batch(&mut Batch::from(vec![3])).await?;
//! sink.finish().await?;
//! assert_eq!(read_committed(dir.path())?, ["1", "2", "3"]);
//! # Ok::<(), dataflow_core::BoxError>(()) }).unwrap();
//! ```

use crate::element::Batch;
use crate::error::BoxError;
use async_trait::async_trait;
use serde::Serialize;
use std::marker::PhantomData;
mod files;
mod folder;
pub use files::{Encoder, FileCommittable, TransactionalFileSink, read_committed};

/// The checkpoint id the default [`TwoPhaseCommitSink::finish`] pre-commits under.
///
/// ```
/// assert_eq!(dataflow_core::connectors::two_phase::END_OF_INPUT, u64::MAX);
/// ```
pub const END_OF_INPUT: u64 = u64::MAX;

/// A sink with exactly-once output: written data is sealed on a checkpoint
/// barrier and published when the checkpoint completes (see the
/// [module docs](self) for the order of the calls).
///
/// ```
/// use dataflow_core::{connectors::two_phase::*, Batch, BoxError};
/// // What a coordinator does with any two-phase sink.
/// async fn checkpoint<S: TwoPhaseCommitSink<u32>>(s: &mut S, n: u64) -> Result<Vec<u8>, BoxError> {
///     let committables = s.pre_commit(n).await?;
///     let stored = postcard::to_allocvec(&committables)?; // into checkpoint n
///     s.commit(committables).await?; // once n is complete
///     Ok(stored)
/// }
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let dir = tempfile::tempdir()?;
/// let mut sink = TransactionalFileSink::new(dir.path(), 0);
/// sink.write_batch(&mut Batch::from(vec![7])).await?;
/// let stored = checkpoint(&mut sink, 1).await?;
/// assert_eq!(postcard::from_bytes::<Vec<FileCommittable>>(&stored)?[0].file, "part-0-0");
/// assert_eq!(read_committed(dir.path())?, ["7"]);
/// # Ok::<(), BoxError>(()) }).unwrap();
/// ```
#[async_trait]
pub trait TwoPhaseCommitSink<T>: Send + 'static {
    /// What a commit needs; stored in the checkpoint, so serde.
    type Committable: Serialize + serde::de::DeserializeOwned + Clone + Send + Sync + 'static;

    /// Writes a batch (invisible to readers until committed), leaving it empty.
    async fn write_batch(&mut self, batch: &mut Batch<T>) -> Result<(), BoxError>;

    /// Barrier `checkpoint`: seals everything written since the previous
    /// pre-commit (durably, but invisible to readers) and returns what
    /// committing it takes: the new committables and those of earlier
    /// pre-commits not committed yet, so checkpoint `checkpoint` alone
    /// suffices to publish everything before its barrier.
    async fn pre_commit(&mut self, checkpoint: u64) -> Result<Vec<Self::Committable>, BoxError>;

    /// Checkpoint completed: makes these visible. Idempotent: committing
    /// twice, or something already committed, is fine.
    async fn commit(&mut self, committables: Vec<Self::Committable>) -> Result<(), BoxError>;

    /// Restoring from a checkpoint: commits what it pre-committed (its notice
    /// may have been lost) and discards everything else this subtask left
    /// unfinished (it will be written again from replayed input). Call it on
    /// a new sink, before writing; with an empty list on a fresh start.
    async fn recover(&mut self, committables: Vec<Self::Committable>) -> Result<(), BoxError>;

    /// End of input: pre-commits (as [`END_OF_INPUT`]) and commits whatever
    /// is left, so a bounded job's end is its last commit. Once this
    /// returns, the job must not be restored from an earlier checkpoint (its
    /// replay would repeat published output); a job that checkpoints may end
    /// with a final checkpoint instead. (The [module docs](self) show it.)
    async fn finish(&mut self) -> Result<(), BoxError> {
        let committables = self.pre_commit(END_OF_INPUT).await?;
        self.commit(committables).await
    }

    /// How far this subtask's output had got at its latest pre-commit, if
    /// the sink can tell (the file sink: its next part's sequence number);
    /// stored in the checkpoint beside the committables. Default: `None`.
    fn output_mark(&self) -> Option<u64> {
        None
    }

    /// Like [`recover`](Self::recover), when the job restores a checkpoint
    /// older than complete ones that are damaged (a fallback the job
    /// allowed): first removes the output committed after the pre-commit
    /// whose [`output_mark`](Self::output_mark) was `mark`, so nothing is
    /// published twice. The default refuses (it cannot tell what to
    /// remove).
    async fn recover_discarding_later(
        &mut self,
        committables: Vec<Self::Committable>,
        mark: Option<u64>,
    ) -> Result<(), BoxError> {
        let _ = (committables, mark);
        Err("this sink cannot remove the output it committed after the restored checkpoint".into())
    }
}

/// A [`TwoPhaseCommitSink`] as a [`Sink`](super::Sink) a job runs: its
/// committables are its part of each checkpoint, committed when the
/// checkpoint completes and recovered when the job resumes.
///
/// ```
/// use dataflow_core::connectors::two_phase::{read_committed, TransactionalFileSink, TransactionalSink};
/// use dataflow_core::connectors::Sink;
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let dir = tempfile::tempdir().unwrap();
/// let mut s = TransactionalSink::new(TransactionalFileSink::new(dir.path(), 0));
/// let mut batch = dataflow_core::Batch::new();
/// batch.push_with(7u32, None);
/// s.write_batch(&mut batch).await.unwrap();
/// let part = s.pre_commit(1).await.unwrap();
/// assert!(part.is_some() && read_committed(dir.path()).unwrap().is_empty());
/// s.commit(1).await.unwrap();
/// assert_eq!(read_committed(dir.path()).unwrap(), ["7"]);
/// # });
/// ```
#[derive(Debug)]
pub struct TransactionalSink<T, S: TwoPhaseCommitSink<T>> {
    sink: S,
    /// What each pending checkpoint would commit.
    pending: std::collections::BTreeMap<u64, Vec<S::Committable>>,
    _t: PhantomData<fn(T)>,
}

impl<T, S: TwoPhaseCommitSink<T>> TransactionalSink<T, S> {
    /// Runs `sink` with the job's checkpoints.
    pub fn new(sink: S) -> Self {
        Self { sink, pending: std::collections::BTreeMap::new(), _t: PhantomData }
    }
}

#[async_trait]
impl<T: Send + 'static, S: TwoPhaseCommitSink<T>> super::Sink<T> for TransactionalSink<T, S> {
    async fn write_batch(&mut self, batch: &mut Batch<T>) -> Result<(), BoxError> {
        self.sink.write_batch(batch).await
    }

    async fn finish(&mut self) -> Result<(), BoxError> {
        self.sink.finish().await
    }

    async fn pre_commit(&mut self, checkpoint: u64) -> Result<Option<Vec<u8>>, BoxError> {
        let committables = self.sink.pre_commit(checkpoint).await?;
        let part = postcard::to_stdvec(&(&committables, self.sink.output_mark()))?;
        self.pending.insert(checkpoint, committables);
        Ok(Some(part))
    }

    async fn commit(&mut self, checkpoint: u64) -> Result<(), BoxError> {
        while let Some(entry) = self.pending.first_entry()
            && *entry.key() <= checkpoint
        {
            self.sink.commit(entry.remove()).await?;
        }
        Ok(())
    }

    async fn recover(&mut self, part: Option<Vec<u8>>) -> Result<(), BoxError> {
        let (committables, _) = decode_part(part.as_deref())?;
        self.sink.recover(committables).await
    }

    async fn recover_past_damaged(&mut self, part: Option<Vec<u8>>) -> Result<(), BoxError> {
        let (committables, mark) = decode_part(part.as_deref())?;
        self.sink.recover_discarding_later(committables, mark).await
    }
}

/// A [`TransactionalSink`]'s part of a checkpoint: its committables and
/// the sink's [`output_mark`](TwoPhaseCommitSink::output_mark) (parts
/// written before the mark existed hold the committables alone).
type DecodedPart<C> = (Vec<C>, Option<u64>);

fn decode_part<C: serde::de::DeserializeOwned>(part: Option<&[u8]>) -> Result<DecodedPart<C>, BoxError> {
    let Some(bytes) = part else { return Ok((Vec::new(), None)) };
    if let Ok((decoded, [])) = postcard::take_from_bytes::<DecodedPart<C>>(bytes) {
        return Ok(decoded);
    }
    let committables =
        postcard::from_bytes(bytes).map_err(|e| format!("a sink's checkpoint part does not decode: {e}"))?;
    Ok((committables, None))
}
