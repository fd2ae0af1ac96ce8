//! Checkpoints under backpressure, counted, not timed. A sink consumes a
//! batch only when the test hands it a permit, so the channel into its
//! task stays full. An unaligned checkpoint completes after the sink took
//! one more batch: its barrier overtook the backlog, which became channel
//! state. An aligned one completes only once the sink consumed everything
//! queued ahead of its barrier. A job restored from the unaligned
//! checkpoint replays the channel state and counts every record once.

use dataflow_core::checkpoint::CheckpointingMode;
use dataflow_core::checkpoint::coordinator::CheckpointConfig;
use dataflow_core::checkpoint::storage::{CheckpointStorage, LocalStorage};
use dataflow_core::connectors::{Sink, Source, SourceContext, SourceStatus};
use dataflow_core::time::ManualClock;
use dataflow_core::{Batch, BoxError, StreamEnvironment};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Semaphore, watch};

const N: u64 = 5_000;
const KEYS: u64 = 10;
const BATCH: usize = 10;
const CAPACITY: usize = 4;

/// Emits `0..N`, reporting how many it handed out; fails once `fail` is set.
struct Counting {
    next: u64,
    emitted: Arc<watch::Sender<u64>>,
    /// Where the source stood when it last put a barrier in its output.
    injected: Arc<watch::Sender<u64>>,
    fail: Arc<AtomicBool>,
}

#[async_trait::async_trait]
impl Source<u64> for Counting {
    async fn poll_batch(&mut self, ctx: &mut SourceContext<u64>) -> Result<SourceStatus, BoxError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err("stopped by the test".into());
        }
        while self.next < N && !ctx.is_full() {
            ctx.collect(self.next, None);
            self.next += 1;
        }
        self.emitted.send_replace(self.next);
        Ok(if self.next == N { SourceStatus::Finished } else { SourceStatus::More })
    }

    fn position(&self) -> Option<Vec<u8>> {
        // Called once a barrier was put in the source's output.
        self.injected.send_replace(self.next);
        Some(self.next.to_be_bytes().to_vec())
    }

    fn seek(&mut self, position: &[u8]) -> Result<(), BoxError> {
        self.next = u64::from_be_bytes(position.try_into()?);
        Ok(())
    }
}

/// What the sink subtask with data did: batches it asked a permit for,
/// and what it had consumed when checkpoint 1's barrier reached it.
#[derive(Clone, Copy, Debug, Default)]
struct Progress {
    subtask: Option<usize>,
    asked: usize,
    at_barrier: Option<usize>,
}

/// Takes a permit per batch and reports its progress.
struct Gated {
    subtask: usize,
    permits: Arc<Semaphore>,
    out: Arc<Mutex<Vec<(u64, u64)>>>,
    consumed: usize,
    progress: Arc<watch::Sender<Progress>>,
}

#[async_trait::async_trait]
impl Sink<(u64, u64)> for Gated {
    async fn write_batch(&mut self, batch: &mut Batch<(u64, u64)>) -> Result<(), BoxError> {
        let subtask = self.subtask;
        self.progress.send_modify(|p| {
            p.subtask = Some(subtask);
            p.asked += 1;
        });
        self.permits.acquire().await?.forget();
        self.consumed += batch.len();
        self.out.lock().unwrap().extend(batch.drain_values());
        Ok(())
    }

    async fn pre_commit(&mut self, checkpoint: u64) -> Result<Option<Vec<u8>>, BoxError> {
        let (subtask, consumed) = (self.subtask, self.consumed);
        if checkpoint == 1 {
            self.progress.send_if_modified(|p| {
                let data = p.subtask == Some(subtask);
                if data {
                    p.at_barrier = Some(consumed);
                }
                data
            });
        }
        Ok(None)
    }
}

struct Run {
    env: StreamEnvironment,
    clock: Arc<ManualClock>,
    handle: dataflow_core::checkpoint::CheckpointHandle,
    emitted: watch::Receiver<u64>,
    injected: watch::Receiver<u64>,
    permits: Arc<Semaphore>,
    fail: Arc<AtomicBool>,
    out: Arc<Mutex<Vec<(u64, u64)>>>,
    progress: watch::Receiver<Progress>,
}

/// source → (j % KEYS, j) → key_by → rolling sum → gated sink, with small
/// batches and channels. The source is one subtask; the sum and the sink
/// (chained) are two, and every record goes to one of them (one key), so
/// one channel holds the backlog.
fn job(mode: CheckpointingMode, dir: &std::path::Path, permits: usize) -> Run {
    let clock = Arc::new(ManualClock::new(0));
    let env = StreamEnvironment::new()
        .with_parallelism(2)
        .with_batch_size(BATCH)
        .with_channel_capacity(CAPACITY)
        .with_clock(clock.clone());
    let config = CheckpointConfig { mode, ..CheckpointConfig::every(Duration::from_millis(100)) };
    let handle = env.enable_checkpointing(config, dir);
    let (tx, emitted) = watch::channel(0);
    let (itx, injected) = watch::channel(0);
    let (tx, itx) = (Arc::new(tx), Arc::new(itx));
    let (fail, permits) = (Arc::new(AtomicBool::new(false)), Arc::new(Semaphore::new(permits)));
    let (progress_tx, progress) = watch::channel(Progress::default());
    let progress_tx = Arc::new(progress_tx);
    let out = Arc::new(Mutex::new(Vec::new()));
    let (f, p, o) = (fail.clone(), permits.clone(), out.clone());
    env.add_source("counting", move |_| Counting {
        next: 0,
        emitted: tx.clone(),
        injected: itx.clone(),
        fail: f.clone(),
    })
    .set_parallelism(1)
    .map(|j: u64| (j % KEYS, j))
    .set_parallelism(1)
    .key_by(|_: &(u64, u64)| 0u8)
    .reduce(|a: (u64, u64), b: (u64, u64)| (a.0, a.1 + b.1))
    .sink("gated", move |info| Gated {
        subtask: info.subtask,
        permits: p.clone(),
        out: o.clone(),
        consumed: 0,
        progress: progress_tx.clone(),
    });
    Run { env, clock, handle, emitted, injected, permits, fail, out, progress }
}

type JobHandle = tokio::task::JoinHandle<dataflow_core::Result<dataflow_core::JobResult>>;

/// Starts the job with no permits and waits for a full backlog; triggers
/// checkpoint 1; hands out permits one batch at a time until its barrier
/// reached the sink. Returns how many permits that took, and the job.
async fn checkpoint_under_backpressure(mode: CheckpointingMode, dir: &std::path::Path) -> (usize, Run, JobHandle) {
    let mut run = job(mode, dir, 0);
    let env = run.env.clone();
    let job = tokio::spawn(async move { env.execute().await });
    // The sink waits for a permit for its first batch, and the channel
    // into its task fills up behind it.
    run.progress.wait_for(|p| p.asked >= 1).await.unwrap();
    run.emitted.wait_for(|e| *e >= ((CAPACITY + 1) * BATCH) as u64).await.unwrap();
    run.clock.advance(100);
    run.handle.triggered().wait_for(|id| *id >= 1).await.unwrap();
    if mode == CheckpointingMode::Unaligned {
        // The barrier overtook the queue; an aligned one waits behind it.
        run.injected.wait_for(|at| *at > 0).await.unwrap();
    }
    let mut granted = 0;
    loop {
        let asked = run.progress.borrow().asked;
        run.permits.add_permits(1);
        granted += 1;
        // The sink either took the barrier or asks for the next batch.
        let p = *run.progress.wait_for(|p| p.at_barrier.is_some() || p.asked > asked).await.unwrap();
        if p.at_barrier.is_some() {
            break;
        }
    }
    run.handle.completed().wait_for(|id| *id >= 1).await.unwrap();
    (granted, run, job)
}

/// The source's position in checkpoint 1: the records ahead of the barrier.
fn position_in_checkpoint_1(dir: &std::path::Path) -> usize {
    let latest = LocalStorage::new(dir).latest().unwrap().unwrap();
    assert_eq!(latest.metadata.id, 1);
    let f = latest.metadata.files.iter().find(|f| f.operator.ends_with(":counting")).unwrap();
    u64::from_be_bytes(std::fs::read(latest.dir.join(&f.name)).unwrap().try_into().unwrap()) as usize
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aligned_waits_for_the_backlog() {
    let dir = tempfile::tempdir().unwrap();
    let (granted, run, running) = checkpoint_under_backpressure(CheckpointingMode::Aligned, dir.path()).await;
    // The held batch, then every batch queued ahead of the barrier: the
    // sink consumed all of them before the checkpoint could complete.
    assert!(granted > CAPACITY, "aligned completed after {granted} batches");
    let consumed = run.progress.borrow().at_barrier.unwrap();
    assert_eq!(consumed, position_in_checkpoint_1(dir.path()));
    assert!(consumed >= (CAPACITY + 1) * BATCH, "{consumed}");
    let latest = LocalStorage::new(dir.path()).latest().unwrap().unwrap();
    assert!(!latest.metadata.files.iter().any(|f| f.name.starts_with("ch")), "no channel state when aligned");
    // The metrics say the same, and the alignment took a while.
    let stats = run.handle.stats();
    assert_eq!(stats.len(), 1);
    assert_eq!((stats[0].id, stats[0].channel_state_bytes), (1, 0));
    assert!(stats[0].state_bytes > 0 && stats[0].alignment > std::time::Duration::ZERO, "{stats:?}");
    run.permits.add_permits(Semaphore::MAX_PERMITS / 2);
    running.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unaligned_overtakes_the_backlog_and_replays_it_after_a_restore() {
    let dir = tempfile::tempdir().unwrap();
    let (granted, run, running) = checkpoint_under_backpressure(CheckpointingMode::Unaligned, dir.path()).await;
    // The barrier reached the sink ahead of the backlog: the checkpoint
    // completed while records sent before it were still queued. (One
    // permit finishes the held batch; the barrier is next, unless the sink
    // took another batch before the source injected it.)
    let consumed = run.progress.borrow().at_barrier.unwrap();
    let before = position_in_checkpoint_1(dir.path());
    assert!(before >= consumed + 2 * BATCH, "{consumed} of {before} consumed, after {granted} permits");
    let latest = LocalStorage::new(dir.path()).latest().unwrap().unwrap();
    let channel_state: u64 = latest.metadata.files.iter().filter(|f| f.name.starts_with("ch")).map(|f| f.len).sum();
    assert!(channel_state > 0, "the overtaken backlog is channel state: {:?}", latest.metadata.files);
    let stats = run.handle.stats();
    assert_eq!((stats[0].id, stats[0].channel_state_bytes), (1, channel_state), "{stats:?}");
    assert!(stats[0].state_bytes > 0 && stats[0].duration >= stats[0].asynchronous, "{stats:?}");

    // Fail the job after checkpoint 1, then restore: the snapshot, the
    // channel state and the rest of the source count every record once.
    run.fail.store(true, Ordering::SeqCst);
    run.permits.add_permits(Semaphore::MAX_PERMITS / 2);
    assert!(running.await.unwrap().is_err());
    let again = job(CheckpointingMode::Unaligned, dir.path(), Semaphore::MAX_PERMITS / 2);
    again.env.execute().await.unwrap();
    let out = again.out.lock().unwrap().clone();
    assert_eq!(out.len(), N as usize - consumed, "every record not in the snapshot, once");
    // One key: the largest rolling sum is the final one.
    assert_eq!(out.iter().map(|e| e.1).max(), Some((0..N).sum::<u64>()));
}
