//! Checkpoints in a running job: the coordinator's loop triggers barriers
//! on the job's clock, every operator instance acknowledges each barrier
//! with what it wrote, and the checkpoint completes when the last one has.
//!
//! Every operator instance (sources and sinks included) has a slot. On
//! barrier `n` it takes the synchronous part of its snapshot and calls
//! [`Acks::acknowledge`], which writes the asynchronous part on a blocking
//! thread into checkpoint `n`'s folder (for an object store, a local
//! staging folder uploaded when the checkpoint completes) and then
//! acknowledges to the
//! [`Coordinator`]; the task goes on meanwhile. Sources inject the barrier
//! between two batches, with their position as their part.

use super::coordinator::{Coordinator, Decision, Ready, StorageWork};
use super::handle::{CheckpointSetup, NoCheckpoints};
use super::parts::{CHANNELS, Part, PartFile, channel_state_name, part_name};
use super::savepoint::{SavepointOperator, SavepointStorage};
use super::stats::{Collector, PartStats};
use super::storage::{CheckpointStorage, StateFile, shared_name};
use super::{BarrierKind, CheckpointBarrier, CheckpointingMode};
use super::{SavepointRequest, SavepointRequests};
use crate::error::Error;
use crate::operator::OperatorInfo;
use crate::time::Clock;
use dataflow_state::operator_state::OperatorSnapshot;
use dataflow_state::table::SnapshotKind;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// What a job run's hub is made of.
pub(crate) struct HubSetup {
    /// Checkpointing as configured (or [`CheckpointSetup::savepoints_only`]).
    pub(crate) setup: CheckpointSetup,
    /// Where the job checkpoints (`None`: it only takes savepoints).
    pub(crate) storage: Option<Arc<dyn CheckpointStorage>>,
    /// Acknowledging operator instances (and tasks' channel state).
    pub(crate) slots: usize,
    /// Source instances.
    pub(crate) sources: usize,
    /// The id of the checkpoint or savepoint the run restored (0: none).
    pub(crate) restored_id: u64,
    /// The highest checkpoint id in the storage, whatever its state (0:
    /// none): the run's checkpoints are numbered above it.
    pub(crate) highest_id: u64,
    /// Where savepoint requests come from.
    pub(crate) savepoints: Option<SavepointRequests>,
    /// The job's max parallelism and operators, as savepoints record them.
    pub(crate) max_parallelism: u32,
    pub(crate) operators: Vec<SavepointOperator>,
    /// Options for savepoints into object stores.
    pub(crate) storage_options: Vec<(String, String)>,
}

/// The savepoint in flight: its storage, its id once triggered, and who
/// waits for it.
struct InFlight {
    id: u64,
    stop: bool,
    storage: Arc<SavepointStorage>,
    dir: PathBuf,
    reply: tokio::sync::oneshot::Sender<Result<PathBuf, Error>>,
}

/// The checkpoint state of one job run.
pub(crate) struct Hub {
    coordinator: Mutex<Coordinator>,
    storage: Arc<dyn CheckpointStorage>,
    checkpointing: bool,
    savepoint: Mutex<Option<InFlight>>,
    /// The latest savepoint's id and whether it completed (for sources
    /// that stop after it).
    savepoint_outcome: watch::Sender<(u64, bool)>,
    requests: Option<SavepointRequests>,
    max_parallelism: u32,
    operators: Vec<SavepointOperator>,
    storage_options: Vec<(String, String)>,
    clock: Arc<dyn Clock>,
    barrier: watch::Sender<Option<CheckpointBarrier>>,
    setup: CheckpointSetup,
    wake: Notify,
    writes: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Commits that wait for the job to end well (transactional sinks'
    /// last parts).
    at_end: Mutex<Vec<EndCommit>>,
    /// Source instances of the job, and how many of them finished.
    sources: usize,
    finished_sources: Mutex<usize>,
    all_finished: watch::Sender<bool>,
    /// The final checkpoint's id once triggered (0: none).
    final_id: watch::Sender<u64>,
    stats: Collector,
    chains: Mutex<Chains>,
    /// Held while storage work is done (one piece at a time, never under
    /// the coordinator's lock): a checkpoint's metadata is written and the
    /// checkpoint finished before any other storage work.
    storage_io: Mutex<()>,
    /// Checkpoints every slot acknowledged, whose metadata is to be written.
    to_complete: Mutex<std::collections::BTreeMap<u64, Ready>>,
}

/// Incremental checkpoints: each slot's files since its last full
/// snapshot, and how the latest checkpoints were triggered.
#[derive(Default)]
struct Chains {
    slots: std::collections::HashMap<usize, Vec<(u64, StateFile)>>,
    last_triggered: u64,
    since_full: u32,
}

/// A commit to run once every task of the job ended well.
pub(crate) type EndCommit = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), Error>> + Send>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Hub {
    /// A hub for a job run.
    pub(crate) fn new(parts: HubSetup, clock: Arc<dyn Clock>) -> Arc<Self> {
        let HubSetup {
            setup,
            storage,
            slots,
            sources,
            restored_id,
            highest_id,
            savepoints,
            max_parallelism,
            operators,
            storage_options,
        } = parts;
        let checkpointing = storage.is_some();
        let storage: Arc<dyn CheckpointStorage> = storage.unwrap_or_else(|| Arc::new(NoCheckpoints));
        let first = setup.triggered.borrow().max(*setup.completed.borrow()).max(restored_id).max(highest_id) + 1;
        let mut coordinator = Coordinator::starting_at(setup.config.clone(), slots, storage.clone(), first);
        coordinator.defer_storage_work();
        coordinator.start(clock.now_millis());
        Arc::new(Self {
            coordinator: Mutex::new(coordinator),
            storage,
            checkpointing,
            savepoint: Mutex::new(None),
            savepoint_outcome: watch::channel((0, false)).0,
            requests: savepoints,
            max_parallelism,
            operators,
            storage_options,
            clock,
            barrier: watch::channel(None).0,
            setup,
            wake: Notify::new(),
            writes: Mutex::new(Vec::new()),
            at_end: Mutex::new(Vec::new()),
            sources,
            finished_sources: Mutex::new(0),
            all_finished: watch::channel(false).0,
            final_id: watch::channel(0).0,
            stats: Collector::default(),
            chains: Mutex::default(),
            storage_io: Mutex::new(()),
            to_complete: Mutex::default(),
        })
    }

    /// Does storage work the coordinator decided on (blocking I/O: on a
    /// blocking thread, outside the coordinator's lock).
    fn perform(&self, work: Vec<StorageWork>) {
        if !work.is_empty() {
            let _io = lock(&self.storage_io);
            work.into_iter().for_each(StorageWork::perform);
        }
    }

    /// Has storage work done on a blocking thread (from an async task);
    /// the job's end waits for it ([`Self::settle`]).
    fn perform_off_task(self: &Arc<Self>, work: Vec<StorageWork>) {
        if !work.is_empty() {
            let hub = self.clone();
            lock(&self.writes).push(tokio::task::spawn_blocking(move || hub.perform(work)));
        }
    }

    /// The acknowledgement slot `slot`, of the operator whose state id
    /// (uid, or generated) is `operator`.
    pub(crate) fn acks(self: &Arc<Self>, slot: usize, operator: &str) -> Acks {
        Acks { hub: self.clone(), slot, operator: operator.into() }
    }

    /// Takes a savepoint request: triggered at the coordinator's next poll.
    fn request_savepoint(&self, request: SavepointRequest) {
        let SavepointRequest { dir, stop, reply } = request;
        let made =
            SavepointStorage::new(dir.clone(), &self.storage_options, self.max_parallelism, self.operators.clone());
        let storage = match made {
            Ok(s) => Arc::new(s),
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        let kind = match stop {
            None => BarrierKind::Savepoint,
            Some(drain) => BarrierKind::Stop { drain },
        };
        lock(&self.coordinator).request_savepoint(storage.clone(), kind);
        *lock(&self.savepoint) = Some(InFlight { id: 0, stop: stop.is_some(), storage, dir, reply });
        self.wake.notify_one();
    }

    /// Answers the savepoint in flight once it completed (`completed` is
    /// the checkpoint that just did) or is no longer pending (aborted).
    fn settle_savepoint(&self, coordinator: &Coordinator, completed: Option<u64>) -> bool {
        let mut current = lock(&self.savepoint);
        let Some(sp) = current.as_ref() else { return false };
        let done = completed == Some(sp.id) && sp.id != 0;
        if !done && (sp.id == 0 || coordinator.is_pending(sp.id)) {
            return false;
        }
        let Some(sp) = current.take() else { return false };
        let outcome = match done {
            true => Ok(sp.dir),
            false => Err(Error::Savepoint {
                path: sp.dir.clone(),
                message: match sp.storage.failure() {
                    Some(why) => format!("savepoint {} could not be written: {why}", sp.id),
                    None => format!("savepoint {} was aborted (declined, timed out or a task failed)", sp.id),
                },
            }),
        };
        if let (true, true, Some(r)) = (done, sp.stop, &self.requests) {
            r.stopped.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        self.savepoint_outcome.send_replace((sp.id, done));
        let _ = sp.reply.send(outcome);
        done
    }

    /// The coordinator's loop: triggers checkpoints on the job's clock,
    /// the first one interval after the hub was made, and savepoints when
    /// asked. Runs until dropped.
    pub(crate) async fn run(self: Arc<Self>) {
        let mut requests = match &self.requests {
            Some(r) => Some(r.requests.clone().lock_owned().await),
            None => None,
        };
        loop {
            let next = {
                let c = lock(&self.coordinator);
                match (c.next_trigger_time(), c.next_timeout()) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            };
            let wait = match next {
                Some(t) => self.clock.wait_until(t),
                None => Box::pin(std::future::pending()),
            };
            let idle = lock(&self.savepoint).is_none();
            tokio::select! {
                _ = wait => {}
                _ = self.wake.notified() => {}
                Some(request) = async { requests.as_mut()?.recv().await }, if idle => self.request_savepoint(request),
            }
            let (decisions, final_id, work) = {
                let mut c = lock(&self.coordinator);
                let decisions = c.poll(self.clock.now_millis());
                self.settle_savepoint(&c, None);
                (decisions, c.final_id().unwrap_or(0), c.take_storage_work())
            };
            self.perform_off_task(work);
            self.final_id.send_if_modified(|f| std::mem::replace(f, final_id) != final_id);
            for d in decisions {
                if let Decision::Savepoint { id, timestamp, kind } = d {
                    if let Some(sp) = lock(&self.savepoint).as_mut() {
                        sp.id = id;
                    }
                    // Savepoints are aligned and full.
                    let mode = CheckpointingMode::Aligned;
                    self.barrier.send_replace(Some(CheckpointBarrier {
                        id,
                        timestamp,
                        mode,
                        incremental: false,
                        kind,
                    }));
                    if let Some(r) = &self.requests {
                        r.triggered.send_replace(id);
                    }
                }
                if let Decision::Trigger { id, timestamp } = d {
                    // The final checkpoint is aligned: no record is in
                    // flight behind it, so nothing is processed after it
                    // that a restore from it would replay.
                    let mode = match id == final_id {
                        true => CheckpointingMode::Aligned,
                        false => self.setup.config.mode,
                    };
                    self.stats.triggered(id);
                    let incremental = self.incremental(id);
                    let kind = BarrierKind::Checkpoint;
                    self.barrier.send_replace(Some(CheckpointBarrier { id, timestamp, mode, incremental, kind }));
                    self.setup.triggered.send_replace(id);
                }
            }
        }
    }

    /// Waits for the snapshot writes still running (at the end of the job).
    pub(crate) async fn settle(&self) {
        loop {
            let writes = std::mem::take(&mut *lock(&self.writes));
            if writes.is_empty() {
                return;
            }
            for w in writes {
                let _ = w.await;
            }
        }
    }

    /// Runs the commits that waited for the job to end well.
    pub(crate) async fn commit_at_end(&self) -> Result<(), Error> {
        let commits = std::mem::take(&mut *lock(&self.at_end));
        for commit in commits {
            commit.await?;
        }
        Ok(())
    }

    /// The files slot `slot` lists for checkpoint `id`: what it wrote now
    /// (`own`) and, for a delta, the earlier files of its chain back to the
    /// last full snapshot (named into their checkpoints' folders). Also
    /// returns the bytes written now.
    fn chain(&self, slot: usize, id: u64, own: Vec<StateFile>, delta: bool) -> (Vec<StateFile>, u64) {
        let bytes = own.iter().map(|f| f.len).sum();
        let mut chains = lock(&self.chains);
        let chain = chains.slots.entry(slot).or_default();
        if !delta {
            chain.clear();
        }
        let mut files: Vec<StateFile> =
            chain.iter().map(|(cid, f)| StateFile { name: shared_name(*cid, &f.name), ..f.clone() }).collect();
        files.extend(own.iter().cloned());
        if delta || !own.is_empty() {
            chain.extend(own.into_iter().map(|f| (id, f)));
        }
        (files, bytes)
    }

    /// Whether checkpoint `id` may be incremental: configured so, the
    /// previous one of this run completed, and fewer than
    /// `materialize_every` deltas followed the last full one.
    fn incremental(&self, id: u64) -> bool {
        let config = &self.setup.config;
        let completed = *self.setup.completed.borrow();
        let mut chains = lock(&self.chains);
        let previous = std::mem::replace(&mut chains.last_triggered, id);
        let incremental = config.incremental == Some(true)
            && previous != 0
            && completed == previous
            && chains.since_full + 1 < config.materialize_every.max(1);
        chains.since_full = if incremental { chains.since_full + 1 } else { 0 };
        incremental
    }

    /// Slot `slot` wrote its part of checkpoint `id` (`written`: its
    /// files) on a blocking thread: acknowledges it, and if it was the
    /// last, completes it: its metadata is written outside the
    /// coordinator's lock, checkpoints in the order they became ready.
    /// Retention before the completion is announced.
    fn acknowledged(&self, id: u64, slot: usize, written: Result<Vec<StateFile>, Error>, part: &str) {
        let declined = |c: &mut Coordinator, e: &Error| {
            tracing::warn!(checkpoint = id, operator = %part, error = %e, "cannot write a checkpoint part");
            c.decline(id, &e.to_string());
            self.settle_savepoint(c, None);
        };
        let work = {
            let mut c = lock(&self.coordinator);
            let now = self.clock.now_millis();
            let ready = written.and_then(|files| c.acknowledged(id, slot, files, now));
            if let Some(ready) = ready.inspect_err(|e| declined(&mut c, e)).ok().flatten() {
                lock(&self.to_complete).insert(id, ready);
            }
            c.take_storage_work()
        };
        self.perform(work);
        self.complete_ready();
    }

    /// Writes the metadata of the checkpoints every slot acknowledged,
    /// oldest first, and finishes each (one at a time: a newer one that
    /// completes subsumes the older ones still waiting).
    fn complete_ready(&self) {
        if lock(&self.to_complete).is_empty() {
            return;
        }
        let _io = lock(&self.storage_io);
        loop {
            let Some((id, ready)) = lock(&self.to_complete).pop_first() else { return };
            if !lock(&self.coordinator).is_completing(id) {
                continue;
            }
            let written = ready.write();
            let (completed, work) = {
                let mut c = lock(&self.coordinator);
                let completed = match c.finish(id, written) {
                    Ok(Some(id)) => (!self.settle_savepoint(&c, Some(id))).then_some(id),
                    Ok(None) => None,
                    Err(e) => {
                        tracing::warn!(checkpoint = id, error = %e, "cannot complete a checkpoint");
                        self.settle_savepoint(&c, None);
                        None
                    }
                };
                (completed, c.take_storage_work())
            };
            work.into_iter().for_each(StorageWork::perform);
            if let Some(id) = completed {
                self.stats.completed(id, &self.setup.history);
                self.setup.completed.send_if_modified(|c| std::mem::replace(c, id.max(*c)) < id);
            }
        }
    }

    /// The folder of checkpoint or savepoint `b`.
    fn dir(&self, b: &CheckpointBarrier) -> Result<PathBuf, Error> {
        let id = b.id;
        let savepoint = lock(&self.savepoint).as_ref().filter(|sp| sp.id == id).map(|sp| sp.storage.clone());
        match savepoint {
            Some(sp) => sp.checkpoint_dir(id),
            None if b.kind.is_savepoint() => Err(Error::Internal(format!("savepoint {id} is no longer in flight"))),
            None => self.storage.checkpoint_dir(id),
        }
    }
}

/// One operator instance's way to acknowledge barriers.
#[derive(Clone)]
pub(crate) struct Acks {
    hub: Arc<Hub>,
    slot: usize,
    /// The state id its files are listed under.
    operator: Arc<str>,
}

impl Acks {
    /// Runs `commit` once the whole job ended well (dropped if it fails).
    pub(crate) fn commit_at_end(&self, commit: EndCommit) {
        lock(&self.hub.at_end).push(commit);
    }

    /// The id of the latest completed checkpoint, as it changes (for
    /// sinks that commit on completion).
    pub(crate) fn completed(&self) -> watch::Receiver<u64> {
        self.hub.setup.completed.subscribe()
    }

    /// A source instance finished: once all have, the final checkpoint is
    /// triggered. Returns the final checkpoint's id as it is triggered (0
    /// until then; a new id if one was aborted and another followed).
    pub(crate) fn source_finished(&self) -> watch::Receiver<u64> {
        let mut finished = lock(&self.hub.finished_sources);
        *finished += 1;
        if *finished == self.hub.sources {
            self.hub.all_finished.send_replace(true);
        }
        if *finished == self.hub.sources && self.hub.checkpointing {
            lock(&self.hub.coordinator).request_final();
            self.hub.wake.notify_one();
        }
        self.hub.final_id.subscribe()
    }

    /// Whether every source instance finished, as it changes.
    pub(crate) fn all_sources_finished(&self) -> watch::Receiver<bool> {
        self.hub.all_finished.subscribe()
    }

    /// Whether the job checkpoints (else it only takes savepoints, and a
    /// finished source does not wait for a final checkpoint).
    pub(crate) fn checkpointing(&self) -> bool {
        self.hub.checkpointing
    }

    /// The latest savepoint's id and whether it completed, as it changes
    /// (for sources that stop after a savepoint).
    pub(crate) fn savepoint_outcome(&self) -> watch::Receiver<(u64, bool)> {
        self.hub.savepoint_outcome.subscribe()
    }

    /// The barriers the coordinator triggers (for sources).
    pub(crate) fn barriers(&self) -> watch::Receiver<Option<CheckpointBarrier>> {
        self.hub.barrier.subscribe()
    }

    /// Writes `part` for barrier `b` off the task, then acknowledges it.
    /// A failed write declines the checkpoint (the job goes on).
    /// `synchronous`: how long the synchronous part took.
    /// `operator_state`: the instance's operator state, if it keeps any
    /// (written in full beside `part`).
    pub(crate) fn acknowledge(
        &self,
        info: &OperatorInfo,
        b: CheckpointBarrier,
        part: Part,
        operator_state: Option<OperatorSnapshot>,
        synchronous: Duration,
    ) {
        let file =
            PartFile { name: part_name(info), operator: self.operator.to_string(), subtask: info.subtask as u32 };
        let stats = PartStats {
            synchronous,
            asynchronous: Duration::ZERO,
            alignment: Duration::ZERO,
            bytes: 0,
            channel_state: false,
        };
        self.submit(info, b, file, (part, operator_state), stats);
    }

    /// Acknowledges barrier `b` with a task's channel state (`info`: its
    /// head), written off the task; empty channel state writes no file.
    /// `alignment`: how long the task aligned.
    pub(crate) fn acknowledge_channels(
        &self,
        info: &OperatorInfo,
        b: CheckpointBarrier,
        channel_state: Vec<u8>,
        alignment: Duration,
    ) {
        let file = PartFile {
            name: channel_state_name(info),
            operator: format!("{}{CHANNELS}", self.operator),
            subtask: info.subtask as u32,
        };
        let stats = PartStats {
            synchronous: Duration::ZERO,
            asynchronous: Duration::ZERO,
            alignment,
            bytes: 0,
            channel_state: true,
        };
        self.submit(info, b, file, (Part::Bytes(channel_state), None), stats);
    }

    fn submit(
        &self,
        info: &OperatorInfo,
        b: CheckpointBarrier,
        file: PartFile,
        (part, operator_state): (Part, Option<OperatorSnapshot>),
        mut stats: PartStats,
    ) {
        let hub = self.hub.clone();
        let slot = self.slot;
        let info = info.to_string();
        let write = tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let delta = matches!(&part, Part::State(s) if s.kind() == SnapshotKind::Delta);
            let savepoint = b.kind.is_savepoint();
            let written = hub.dir(&b).and_then(|dir| file.write(&dir, part)).map(|own| match savepoint {
                // A savepoint's files are its own: no chain.
                true => {
                    let bytes = own.iter().map(|f| f.len).sum();
                    (own, bytes)
                }
                false => hub.chain(slot, b.id, own, delta),
            });
            let written = written.and_then(|(mut files, mut bytes)| {
                if let Some(state) = &operator_state {
                    let f = file.write_operator_state(&hub.dir(&b)?, state)?;
                    bytes += f.len;
                    files.push(f);
                }
                Ok((files, bytes))
            });
            if let (Ok((_, bytes)), false) = (&written, savepoint) {
                stats.asynchronous = started.elapsed();
                stats.bytes = *bytes;
                hub.stats.part(b.id, stats);
            }
            let written = written.map(|(files, _)| files);
            hub.acknowledged(b.id, slot, written, &info);
            hub.wake.notify_one();
        });
        lock(&self.hub.writes).push(write);
    }
}
