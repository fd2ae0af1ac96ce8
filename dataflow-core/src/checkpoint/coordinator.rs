//! The checkpoint coordinator's decisions: when to trigger checkpoint `n`,
//! when `n` is complete, and when to give it up.
//!
//! It is a state machine driven by processing time (from the job's clock)
//! and by the tasks' acknowledgements, so every rule is testable without a
//! running job:
//!
//! * trigger `n` once `interval` has passed since the previous trigger,
//!   `min_pause` has passed since the last completion, and fewer than
//!   `max_concurrent` checkpoints are pending (Flink's rules);
//! * `n` is complete when every task has acknowledged it: the coordinator
//!   then writes its metadata (last, atomically, through
//!   [`CheckpointStorage::complete`]), applies retention, and only then
//!   reports it complete, so the tasks may be notified (sinks commit);
//!   pending checkpoints older than `n` are subsumed (aborted);
//! * `n` is aborted (its files removed) when it times out, when a task
//!   declines it, or when a task fails.
//!
//! Storage work (writing the metadata, removing files) is done at once by
//! the public methods; a running job's hub has the coordinator hand it
//! over instead, and does it outside its lock on a blocking thread
//! (`acknowledged`, `finish`, `take_storage_work`).
//!
//! ```
//! use dataflow_core::checkpoint::coordinator::{CheckpointConfig, Coordinator, Decision};
//! use dataflow_core::checkpoint::storage::LocalStorage;
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! let storage = Arc::new(LocalStorage::new(tempfile::tempdir().unwrap().keep()));
//! let mut c = Coordinator::new(CheckpointConfig::every(Duration::from_millis(100)), 2, storage);
//! assert_eq!(c.poll(0), [Decision::Trigger { id: 1, timestamp: 0 }]);
//! assert_eq!(c.acknowledge(1, 0, vec![], 5).unwrap(), None);
//! assert_eq!(c.acknowledge(1, 1, vec![], 7).unwrap(), Some(1)); // complete at 7: notify the tasks
//! ```

use super::storage::{CheckpointMetadata, CheckpointStorage, StateFile};
use super::{BarrierKind, CheckpointingMode};
use crate::error::Error;
use crate::time::{Timestamp, millis};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// When and how a job checkpoints.
///
/// ```
/// use dataflow_core::checkpoint::{coordinator::CheckpointConfig, CheckpointingMode};
/// use std::time::Duration;
/// let c = CheckpointConfig { mode: CheckpointingMode::Aligned, ..CheckpointConfig::every(Duration::from_secs(1)) };
/// assert_eq!(c.max_concurrent, 1);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointConfig {
    /// Time between triggers.
    pub interval: Duration,
    /// A checkpoint not complete this long after its trigger is aborted.
    pub timeout: Duration,
    /// Time from a completion to the next trigger, at least.
    pub min_pause: Duration,
    /// How many checkpoints may be pending at once.
    pub max_concurrent: usize,
    /// How barriers are aligned.
    pub mode: CheckpointingMode,
    /// How many complete checkpoints are kept.
    pub retained: usize,
    /// Incremental checkpoints: keyed state tables track their changes,
    /// and a checkpoint writes only what changed since the previous one,
    /// listing the earlier files it builds on (`docs/checkpoints.md`).
    /// `None` (the default): incremental on the fjall backend, whose state
    /// may be far larger than what changes between two checkpoints, and
    /// full in memory (where a full snapshot only freezes the shards and a
    /// delta would cost a stamp per access); `Some(_)`: as given, on any
    /// backend.
    pub incremental: Option<bool>,
    /// With `incremental`, every this many checkpoints (and after an
    /// aborted one, and the first of each run) state is written in full.
    pub materialize_every: u32,
    /// Whether a job may restore from an older checkpoint when newer
    /// complete ones are damaged (default: no, the restore fails naming
    /// them, since sinks may have committed output under them). When
    /// allowed, the job restores from the newest intact one, and the
    /// transactional file sink first removes (with a warning) the output
    /// committed after it, so nothing is published twice; other sinks with
    /// committed output refuse. A location whose checkpoints are all
    /// damaged is an error either way. (Incomplete checkpoints, without
    /// `_metadata`, are always skipped: nothing was committed under them.)
    pub allow_fallback_past_damaged_checkpoints: bool,
}

impl CheckpointConfig {
    /// Whether checkpoints are incremental with state on `backend`.
    ///
    /// ```
    /// use dataflow_core::checkpoint::coordinator::CheckpointConfig;
    /// use dataflow_core::{FjallStateConfig, StateBackendConfig};
    /// let c = CheckpointConfig::every(std::time::Duration::from_secs(1));
    /// assert!(!c.is_incremental(&StateBackendConfig::InMemory));
    /// assert!(c.is_incremental(&StateBackendConfig::Fjall(FjallStateConfig::new("/tmp/state"))));
    /// let full = CheckpointConfig { incremental: Some(false), ..c };
    /// assert!(!full.is_incremental(&StateBackendConfig::Fjall(FjallStateConfig::new("/tmp/state"))));
    /// ```
    pub fn is_incremental(&self, backend: &dataflow_state::table::StateBackendConfig) -> bool {
        use dataflow_state::table::StateBackendConfig;
        self.incremental.unwrap_or(matches!(backend, StateBackendConfig::Fjall(_)))
    }

    /// Every `interval`, unaligned, one at a time, a 10-minute timeout, no
    /// pause, keeping the last complete checkpoint (Flink's defaults).
    pub fn every(interval: Duration) -> Self {
        Self {
            interval,
            timeout: Duration::from_secs(600),
            min_pause: Duration::ZERO,
            max_concurrent: 1,
            mode: CheckpointingMode::Unaligned,
            retained: 1,
            incremental: None,
            materialize_every: 10,
            allow_fallback_past_damaged_checkpoints: false,
        }
    }
}

/// What the coordinator decided at a [`Coordinator::poll`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Ask every source to emit barrier `id` after its current position.
    Trigger {
        /// The checkpoint.
        id: u64,
        /// The processing time of the trigger (the barrier carries it).
        timestamp: Timestamp,
    },
    /// Ask every source to emit the barrier of savepoint `id` (requested
    /// with [`Coordinator::request_savepoint`]).
    Savepoint {
        /// The savepoint's checkpoint id.
        id: u64,
        /// The processing time of the trigger.
        timestamp: Timestamp,
        /// A savepoint, or a savepoint that stops the job.
        kind: BarrierKind,
    },
    /// Checkpoint `id` timed out; its files are removed.
    Aborted {
        /// The checkpoint.
        id: u64,
    },
}

struct Pending {
    triggered_at: Timestamp,
    acknowledged: BTreeMap<usize, Vec<StateFile>>,
    /// A savepoint's own storage (`None`: a checkpoint, in the job's).
    savepoint: Option<(Arc<dyn CheckpointStorage>, BarrierKind)>,
    /// Every task acknowledged: its metadata is being written (it is not
    /// aborted meanwhile; the outcome of the write decides).
    completing: bool,
}

impl Pending {
    fn new(triggered_at: Timestamp, savepoint: Option<(Arc<dyn CheckpointStorage>, BarrierKind)>) -> Self {
        Self { triggered_at, acknowledged: BTreeMap::new(), savepoint, completing: false }
    }
}

/// Storage work the coordinator decided on.
pub(crate) enum StorageWork {
    /// Remove the files of aborted checkpoint `id`.
    Discard { id: u64, storage: Arc<dyn CheckpointStorage> },
    /// Keep the newest `keep` complete checkpoints, remove older ones.
    Retain { keep: usize, storage: Arc<dyn CheckpointStorage> },
}

impl StorageWork {
    /// Does it; a failure is a warning (files are left behind, nothing is lost).
    pub(crate) fn perform(self) {
        match self {
            StorageWork::Discard { id, storage } => {
                if let Err(e) = storage.discard(id) {
                    tracing::warn!(checkpoint = id, error = %e, "cannot remove the files of an aborted checkpoint");
                }
            }
            StorageWork::Retain { keep, storage } => {
                if let Err(e) = storage.retain(keep) {
                    tracing::warn!(error = %e, "retention failed: older checkpoints are kept for now");
                }
            }
        }
    }
}

/// A checkpoint (or savepoint) every task acknowledged: its metadata, to
/// write into its storage, then [`Coordinator::finish`] with the outcome.
pub(crate) struct Ready {
    pub(crate) metadata: CheckpointMetadata,
    storage: Arc<dyn CheckpointStorage>,
}

impl Ready {
    /// Writes the metadata (the commit point): blocking I/O.
    pub(crate) fn write(&self) -> Result<(), Error> {
        self.storage.complete(&self.metadata)
    }
}

/// The checkpoint coordinator of one job run.
pub struct Coordinator {
    config: CheckpointConfig,
    tasks: usize,
    storage: Arc<dyn CheckpointStorage>,
    next_id: u64,
    pending: BTreeMap<u64, Pending>,
    last_trigger: Option<Timestamp>,
    last_completion: Option<Timestamp>,
    now: Timestamp,
    /// The final checkpoint: asked for (every source finished), and the
    /// id of the one pending or completed.
    final_requested: bool,
    final_id: Option<u64>,
    /// A savepoint asked for and not yet triggered.
    savepoint: Option<(Arc<dyn CheckpointStorage>, BarrierKind)>,
    /// A savepoint that stops the job was triggered: nothing follows it.
    stopping: bool,
    /// Storage work decided and not yet done, and whether it waits for
    /// [`Self::take_storage_work`] (else it is done at once).
    work: Vec<StorageWork>,
    deferred: bool,
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator")
            .field("next_id", &self.next_id)
            .field("pending", &self.pending.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Coordinator {
    /// A coordinator for `tasks` acknowledging tasks, numbering checkpoints
    /// from 1.
    pub fn new(config: CheckpointConfig, tasks: usize, storage: Arc<dyn CheckpointStorage>) -> Self {
        Self::starting_at(config, tasks, storage, 1)
    }

    /// The same, numbering from `first_id` (after a restore from
    /// checkpoint `first_id - 1`, ids keep increasing).
    pub fn starting_at(
        config: CheckpointConfig,
        tasks: usize,
        storage: Arc<dyn CheckpointStorage>,
        first_id: u64,
    ) -> Self {
        Self {
            config,
            tasks,
            storage,
            next_id: first_id,
            pending: BTreeMap::new(),
            last_trigger: None,
            last_completion: None,
            now: Timestamp::MIN,
            final_requested: false,
            final_id: None,
            savepoint: None,
            stopping: false,
            work: Vec::new(),
            deferred: false,
        }
    }

    /// Storage work is no longer done at once: the caller takes it with
    /// [`Self::take_storage_work`] and does it outside its lock.
    pub(crate) fn defer_storage_work(&mut self) {
        self.deferred = true;
    }

    /// The storage work decided since the last call.
    pub(crate) fn take_storage_work(&mut self) -> Vec<StorageWork> {
        std::mem::take(&mut self.work)
    }

    /// Does the storage work now, unless it is deferred.
    fn flush(&mut self) {
        if !self.deferred {
            self.take_storage_work().into_iter().for_each(StorageWork::perform);
        }
    }

    /// The job started at `now`: the first trigger comes one interval later.
    pub fn start(&mut self, now: Timestamp) {
        self.last_trigger = Some(now);
        self.now = self.now.max(now);
    }

    /// The ids of the pending checkpoints, oldest first.
    pub fn pending(&self) -> Vec<u64> {
        self.pending.keys().copied().collect()
    }

    /// When the next trigger may happen (for the runtime's timer), if one
    /// can happen without an acknowledgement first.
    pub fn next_trigger_time(&self) -> Option<Timestamp> {
        // Nothing goes along with a savepoint (its barrier would replace
        // the savepoint's in the tasks), nor after a stop.
        if self.stopping || self.pending.values().any(|p| p.savepoint.is_some()) {
            return None;
        }
        if self.savepoint.is_some() {
            // A savepoint is triggered as soon as no checkpoint is pending.
            return (self.pending.is_empty()).then_some(Timestamp::MIN);
        }
        if self.final_requested {
            // Only the final checkpoint is left to trigger, at once.
            return self.final_id.is_none().then_some(Timestamp::MIN);
        }
        if self.pending.len() >= self.config.max_concurrent.max(1) {
            return None;
        }
        let after_interval =
            self.last_trigger.map_or(Timestamp::MIN, |t| t.saturating_add(millis(self.config.interval)));
        let after_pause =
            self.last_completion.map_or(Timestamp::MIN, |t| t.saturating_add(millis(self.config.min_pause)));
        Some(after_interval.max(after_pause))
    }

    /// When the oldest pending checkpoint (or savepoint) times out, if one
    /// is pending (the runtime's timer wakes then to abort it).
    pub fn next_timeout(&self) -> Option<Timestamp> {
        let timeout = millis(self.config.timeout);
        self.pending.values().map(|p| p.triggered_at.saturating_add(timeout)).min()
    }

    /// Decides at processing time `now`: aborts the pending checkpoints
    /// that timed out, then triggers the next one if the rules allow.
    pub fn poll(&mut self, now: Timestamp) -> Vec<Decision> {
        self.now = self.now.max(now);
        let timeout = millis(self.config.timeout);
        let expired: Vec<u64> = (self.pending.iter())
            .filter(|(_, p)| !p.completing && now.saturating_sub(p.triggered_at) >= timeout)
            .map(|(id, _)| *id)
            .collect();
        let mut decisions = Vec::new();
        for id in expired {
            tracing::warn!(checkpoint = id, "checkpoint timed out: aborted");
            self.abort(id);
            decisions.push(Decision::Aborted { id });
        }
        if self.next_trigger_time().is_some_and(|t| now >= t)
            && let Some((storage, kind)) = self.savepoint.take()
        {
            let id = self.next_id;
            self.next_id += 1;
            self.stopping = matches!(kind, BarrierKind::Stop { .. });
            self.pending.insert(id, Pending::new(now, Some((storage, kind))));
            tracing::info!(checkpoint = id, ?kind, "savepoint triggered");
            decisions.push(Decision::Savepoint { id, timestamp: now, kind });
        } else if self.next_trigger_time().is_some_and(|t| now >= t) {
            let id = self.next_id;
            if self.final_requested {
                self.final_id = Some(id);
            }
            self.next_id += 1;
            self.last_trigger = Some(now);
            self.pending.insert(id, Pending::new(now, None));
            tracing::debug!(checkpoint = id, "checkpoint triggered");
            decisions.push(Decision::Trigger { id, timestamp: now });
        }
        self.flush();
        decisions
    }

    /// Task `task` (of `0..tasks`) wrote its part of checkpoint `id` (at
    /// processing time `now`). When
    /// it is the last, the checkpoint's metadata is written and `Some(id)`
    /// returned: the checkpoint is complete and the tasks may be notified.
    /// Acknowledging a checkpoint that is no longer pending (aborted or
    /// subsumed) does nothing.
    pub fn acknowledge(
        &mut self,
        id: u64,
        task: usize,
        files: Vec<StateFile>,
        now: Timestamp,
    ) -> Result<Option<u64>, Error> {
        let completed = match self.acknowledged(id, task, files, now)? {
            Some(ready) => self.finish(id, ready.write()),
            None => Ok(None),
        };
        self.flush();
        completed
    }

    /// [`Self::acknowledge`] without the write: when task `task` is the
    /// last, returns the metadata to write ([`Ready::write`], outside any
    /// lock), then [`Self::finish`] with the outcome. Meanwhile the
    /// checkpoint stays pending: it is neither timed out nor declined, but
    /// a newer checkpoint that finishes first subsumes it. So the caller
    /// writes one checkpoint's metadata at a time, each only while
    /// [`Self::is_completing`], and finishes it before the next.
    pub(crate) fn acknowledged(
        &mut self,
        id: u64,
        task: usize,
        files: Vec<StateFile>,
        now: Timestamp,
    ) -> Result<Option<Ready>, Error> {
        self.now = self.now.max(now);
        if task >= self.tasks {
            return Err(Error::Internal(format!("checkpoint {id} acknowledged by task {task} of {}", self.tasks)));
        }
        let Some(pending) = self.pending.get_mut(&id).filter(|p| !p.completing) else { return Ok(None) };
        pending.acknowledged.insert(task, files);
        if pending.acknowledged.len() < self.tasks {
            return Ok(None);
        }
        pending.completing = true;
        let files = std::mem::take(&mut pending.acknowledged).into_values().flatten().collect();
        let metadata = CheckpointMetadata { id, timestamp: pending.triggered_at, files };
        // A savepoint is complete in its own folder; it takes no part in
        // the checkpoints' retention or subsumption.
        let storage = pending.savepoint.as_ref().map_or_else(|| self.storage.clone(), |(s, _)| s.clone());
        Ok(Some(Ready { metadata, storage }))
    }

    /// The metadata of checkpoint `id` ([`Self::acknowledged`]) was
    /// written (`written`): it is complete (`Some(id)`: notify the tasks),
    /// older pending checkpoints are subsumed and retention applies; or the
    /// write failed, and it is aborted (the error).
    pub(crate) fn finish(&mut self, id: u64, written: Result<(), Error>) -> Result<Option<u64>, Error> {
        let Some(pending) = self.pending.get(&id).filter(|p| p.completing) else { return Ok(None) };
        let savepoint = pending.savepoint.is_some();
        if let Err(e) = written {
            self.remove(id);
            return Err(e);
        }
        self.pending.remove(&id);
        if savepoint {
            tracing::info!(checkpoint = id, "savepoint complete");
            return Ok(Some(id));
        }
        self.last_completion = Some(self.now);
        // Older pending checkpoints are subsumed by this one, those whose
        // metadata waits to be written too (not being written: one
        // checkpoint's metadata is written at a time, then `finish`ed).
        let older: Vec<u64> =
            self.pending.range(..id).filter(|(_, p)| p.savepoint.is_none()).map(|(id, _)| *id).collect();
        older.into_iter().for_each(|old| self.remove(old));
        self.work.push(StorageWork::Retain { keep: self.config.retained, storage: self.storage.clone() });
        tracing::info!(checkpoint = id, "checkpoint complete");
        Ok(Some(id))
    }

    /// Every source finished: the next checkpoint, triggered at once, is
    /// the final one (the job ends once it completed; see
    /// `docs/checkpoints.md`). If it is aborted, another final one follows.
    pub fn request_final(&mut self) {
        self.final_requested = true;
    }

    /// Asks for a savepoint into `storage` (its own folder): it is
    /// triggered at the next [`Self::poll`] when no checkpoint is pending
    /// (a [`Decision::Savepoint`]), before any other checkpoint. After a
    /// savepoint that stops the job ([`BarrierKind::Stop`]) nothing more is
    /// triggered, unless it is aborted.
    pub fn request_savepoint(&mut self, storage: Arc<dyn CheckpointStorage>, kind: BarrierKind) {
        self.savepoint = Some((storage, kind));
    }

    /// Whether every task acknowledged checkpoint (or savepoint) `id` and
    /// its metadata is to be written ([`Self::acknowledged`]).
    pub(crate) fn is_completing(&self, id: u64) -> bool {
        self.pending.get(&id).is_some_and(|p| p.completing)
    }

    /// Whether checkpoint (or savepoint) `id` is pending.
    pub fn is_pending(&self, id: u64) -> bool {
        self.pending.contains_key(&id)
    }

    /// The final checkpoint, once triggered (pending or completed).
    pub fn final_id(&self) -> Option<u64> {
        self.final_id
    }

    /// A task could not take its part of checkpoint `id` (its snapshot
    /// failed): the checkpoint is aborted.
    pub fn decline(&mut self, id: u64, reason: &str) {
        if self.pending.get(&id).is_some_and(|p| !p.completing) {
            tracing::warn!(checkpoint = id, reason, "checkpoint declined: aborted");
            self.abort(id);
        }
        self.flush();
    }

    /// A task failed: every pending checkpoint is aborted (the job restarts
    /// from the latest complete one); one whose metadata is being written
    /// is left to the outcome of the write.
    pub fn abort_all(&mut self) {
        let ids = self.pending();
        ids.into_iter().for_each(|id| self.abort(id));
        self.flush();
    }

    /// Aborts pending checkpoint `id`, unless its metadata is being written.
    fn abort(&mut self, id: u64) {
        if self.pending.get(&id).is_some_and(|p| !p.completing) {
            self.remove(id);
        }
    }

    /// Drops pending checkpoint `id`; its files are to be removed.
    fn remove(&mut self, id: u64) {
        let Some(pending) = self.pending.remove(&id) else { return };
        if self.final_id == Some(id) {
            self.final_id = None;
        }
        let storage = match pending.savepoint {
            Some((storage, kind)) => {
                tracing::warn!(checkpoint = id, "savepoint aborted");
                self.stopping &= !matches!(kind, BarrierKind::Stop { .. });
                storage
            }
            None => self.storage.clone(),
        };
        self.work.push(StorageWork::Discard { id, storage });
    }
}
