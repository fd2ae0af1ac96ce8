//! Incremental checkpoints in a running job: after a full checkpoint of
//! many keys, a checkpoint after 1 % of them changed writes only those
//! (and lists the full checkpoint's file it builds on); a job restored
//! from that chain counts every record once.

use dataflow_core::checkpoint::CheckpointHandle;
use dataflow_core::checkpoint::coordinator::CheckpointConfig;
use dataflow_core::checkpoint::restart::RestartStrategy;
use dataflow_core::checkpoint::storage::{CheckpointStorage, LocalStorage};
use dataflow_core::connectors::{Source, SourceContext, SourceStatus};
use dataflow_core::time::ManualClock;
use dataflow_core::{BoxError, FjallStateConfig, StateBackendConfig, StreamEnvironment};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const KEYS: u64 = 20_000;
const CHANGED: u64 = KEYS / 100;

/// Record `j`: key `j % KEYS`. Phase 1 is `0..KEYS` (every key once), then
/// checkpoint 1; phase 2 is `KEYS..KEYS + CHANGED` (1 % of the keys
/// again), then checkpoint 2; then one failure, and the end.
struct Phases {
    next: u64,
    clock: Arc<ManualClock>,
    handle: CheckpointHandle,
    failed: Arc<AtomicBool>,
}

impl Phases {
    /// At a phase's end: trigger a checkpoint (returns with nothing, so the
    /// source injects the barrier); at the next poll, wait for it.
    async fn checkpoint_at(&mut self, end: u64, id: u64) -> Result<bool, BoxError> {
        if self.next != end || *self.handle.completed().borrow() >= id {
            return Ok(false);
        }
        if *self.handle.triggered().borrow() < id {
            self.clock.advance(100);
            self.handle.triggered().wait_for(|t| *t >= id).await?;
            return Ok(true);
        }
        self.handle.completed().wait_for(|c| *c >= id).await?;
        Ok(false)
    }
}

#[async_trait::async_trait]
impl Source<u64> for Phases {
    async fn poll_batch(&mut self, ctx: &mut SourceContext<u64>) -> Result<SourceStatus, BoxError> {
        if self.checkpoint_at(KEYS, 1).await? || self.checkpoint_at(KEYS + CHANGED, 2).await? {
            return Ok(SourceStatus::More);
        }
        if self.next == KEYS + CHANGED && !self.failed.swap(true, Ordering::SeqCst) {
            return Err("injected failure after checkpoint 2".into());
        }
        let stop = if self.next < KEYS { KEYS } else { KEYS + CHANGED };
        while self.next < stop && !ctx.is_full() {
            ctx.collect(self.next, None);
            self.next += 1;
        }
        Ok(if self.next == KEYS + CHANGED && self.failed.load(Ordering::SeqCst) {
            SourceStatus::Finished
        } else {
            SourceStatus::More
        })
    }

    fn position(&self) -> Option<Vec<u8>> {
        Some(self.next.to_be_bytes().to_vec())
    }

    fn seek(&mut self, position: &[u8]) -> Result<(), BoxError> {
        self.next = u64::from_be_bytes(position.try_into()?);
        Ok(())
    }
}

fn run(backend: Option<&std::path::Path>) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(0));
    let env = StreamEnvironment::new().with_parallelism(1).with_clock(clock.clone());
    if let Some(state) = backend {
        env.set_state_backend(StateBackendConfig::Fjall(FjallStateConfig::new(state)));
    }
    let config = CheckpointConfig {
        incremental: Some(true),
        retained: 3,
        ..CheckpointConfig::every(Duration::from_millis(100))
    };
    let handle = env.enable_checkpointing(config, dir.path());
    env.set_restart_strategy(RestartStrategy::fixed_delay(1, Duration::ZERO));
    let (h, c, failed) = (handle.clone(), clock.clone(), Arc::new(AtomicBool::new(false)));
    let sums = env
        .add_source("phases", move |_| Phases { next: 0, clock: c.clone(), handle: h.clone(), failed: failed.clone() })
        .map(|j: u64| (j % KEYS, 1u64))
        .key_by(|e: &(u64, u64)| e.0)
        .reduce(|a: (u64, u64), b: (u64, u64)| (a.0, a.1 + b.1))
        .collect();
    tokio::runtime::Runtime::new().unwrap().block_on(env.execute()).unwrap();

    // Checkpoint 2 wrote the changed keys only, and lists checkpoint 1's file.
    let stats = handle.stats();
    let (full, delta) = (&stats[0], &stats[1]);
    assert_eq!((full.id, delta.id), (1, 2));
    assert!(
        delta.state_bytes * 20 <= full.state_bytes,
        "the delta wrote {} bytes, the full checkpoint {}",
        delta.state_bytes,
        full.state_bytes
    );
    // The restart restored the chain (full + delta): every key counted
    // once, the changed ones twice.
    let mut last: BTreeMap<u64, u64> = BTreeMap::new();
    for (k, n) in sums.take() {
        let e = last.entry(k).or_default();
        *e = (*e).max(n);
    }
    let expected: BTreeMap<u64, u64> = (0..KEYS).map(|k| (k, if k < CHANGED { 2 } else { 1 })).collect();
    assert_eq!(last, expected);
}

#[test]
fn a_delta_writes_what_changed_and_restores_with_its_chain_in_memory() {
    run(None);
}

#[test]
fn a_delta_writes_what_changed_and_restores_with_its_chain_on_fjall() {
    let state = tempfile::tempdir().unwrap();
    run(Some(state.path()));
}

/// The storage view: checkpoint 2's metadata names checkpoint 1's file.
#[test]
fn a_delta_checkpoint_lists_the_files_it_builds_on() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(0));
    let env = StreamEnvironment::new().with_parallelism(1).with_clock(clock.clone());
    let config = CheckpointConfig {
        incremental: Some(true),
        retained: 5,
        ..CheckpointConfig::every(Duration::from_millis(100))
    };
    let handle = env.enable_checkpointing(config, dir.path());
    let (h, c) = (handle.clone(), clock.clone());
    // No restart strategy: the injected failure ends the job after checkpoint 2.
    env.add_source("phases", move |_| Phases { next: 0, clock: c.clone(), handle: h.clone(), failed: Arc::default() })
        .map(|j: u64| (j % KEYS, 1u64))
        .key_by(|e: &(u64, u64)| e.0)
        .reduce(|a: (u64, u64), b: (u64, u64)| (a.0, a.1 + b.1))
        .collect();
    let err = tokio::runtime::Runtime::new().unwrap().block_on(env.execute()).unwrap_err();
    assert!(err.to_string().contains("injected failure"), "{err}");
    let latest = LocalStorage::new(dir.path()).latest().unwrap().unwrap();
    assert_eq!(latest.metadata.id, 2);
    let shared: Vec<_> = latest.metadata.files.iter().filter(|f| f.name.starts_with("../chk-1/")).collect();
    assert_eq!(shared.len(), 1, "{:?}", latest.metadata.files);
}
