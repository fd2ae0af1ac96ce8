//! Checkpoints of a running job: the coordinator triggers on the job's
//! clock, sources put the barrier after their position, every operator
//! instance acknowledges, and the completed checkpoint holds a consistent
//! cut: with aligned barriers, the keyed state equals a batch computation
//! over exactly the records before the sources' positions (p = 2). In
//! unaligned mode (the default) the records in flight are channel state,
//! and a resumed job replays them: its final state counts every record once.

use dataflow_core::checkpoint::CheckpointHandle;
use dataflow_core::checkpoint::CheckpointingMode;
use dataflow_core::checkpoint::coordinator::CheckpointConfig;
use dataflow_core::checkpoint::storage::{CheckpointStorage, LocalStorage};
use dataflow_core::connectors::{Source, SourceContext, SourceStatus};
use dataflow_core::operator::{KeyedOperatorHarness, KeyedReduce};
use dataflow_core::time::ManualClock;
use dataflow_core::{BoxError, StateBackendConfig, StreamEnvironment};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const N: u64 = 10_000;
const K: u64 = 4_000;
const KEYS: u64 = 50;

type Ev = (u64, u64);

fn event(j: u64) -> Ev {
    (j % KEYS, j)
}

/// Subtask `i` emits events `i*N .. (i+1)*N`. At `K` records in, it waits
/// for the other subtask to get there too; then subtask 0 moves the clock
/// one interval on (so the coordinator triggers), and both wait until
/// checkpoint 1 is triggered: each barrier goes exactly after `K`.
struct Numbers {
    next: u64,
    end: u64,
    pause_at: Option<u64>,
    /// Fails here, once checkpoint 1 completed (an injected failure; once
    /// per job, restarts included).
    fail_at: Option<u64>,
    failed: Arc<AtomicBool>,
    subtask: usize,
    both_at_k: Arc<tokio::sync::Barrier>,
    /// Checkpoint 1 was triggered at `K`: wait for it to complete.
    after_k: bool,
    clock: Arc<ManualClock>,
    handle: CheckpointHandle,
}

#[async_trait::async_trait]
impl Source<Ev> for Numbers {
    async fn poll_batch(&mut self, ctx: &mut SourceContext<Ev>) -> Result<SourceStatus, BoxError> {
        if self.pause_at == Some(self.next) {
            self.pause_at = None;
            self.both_at_k.wait().await;
            if self.subtask == 0 {
                self.clock.set(100);
            }
            self.handle.triggered().wait_for(|id| *id >= 1).await?;
            self.after_k = true;
            return Ok(SourceStatus::More);
        }
        if std::mem::take(&mut self.after_k) {
            // The barrier went out between the two polls; go on once
            // checkpoint 1 completed, so the final checkpoint does not
            // subsume it.
            self.handle.completed().wait_for(|id| *id >= 1).await?;
        }
        if self.fail_at == Some(self.next) {
            self.fail_at = None;
            if !self.failed.swap(true, Ordering::SeqCst) {
                self.handle.completed().wait_for(|id| *id >= 1).await?;
                return Err("injected failure".into());
            }
        }
        let stop = self.pause_at.or(self.fail_at).unwrap_or(self.end);
        while self.next < stop && !ctx.is_full() {
            ctx.collect(event(self.next), None);
            self.next += 1;
        }
        Ok(if self.next == self.end { SourceStatus::Finished } else { SourceStatus::More })
    }

    fn position(&self) -> Option<Vec<u8>> {
        Some(self.next.to_be_bytes().to_vec())
    }

    fn seek(&mut self, position: &[u8]) -> Result<(), BoxError> {
        self.next = u64::from_be_bytes(position.try_into()?);
        Ok(())
    }
}

/// The source of every test: `Numbers` on two subtasks.
fn numbers(
    env: &StreamEnvironment,
    handle: &CheckpointHandle,
    clock: &Arc<ManualClock>,
    pause: bool,
    fail: bool,
) -> dataflow_core::Stream<Ev> {
    let (c, h, both) = (clock.clone(), handle.clone(), Arc::new(tokio::sync::Barrier::new(2)));
    let failed = Arc::new(AtomicBool::new(false));
    env.add_source("numbers", move |info| {
        let i = info.subtask as u64;
        Numbers {
            next: i * N,
            end: (i + 1) * N,
            pause_at: pause.then_some(i * N + K),
            fail_at: (fail && i == 0).then_some(K + 500),
            failed: failed.clone(),
            subtask: info.subtask,
            both_at_k: both.clone(),
            after_k: false,
            clock: c.clone(),
            handle: h.clone(),
        }
    })
}

/// The keyed job: numbers, keyed by `event.0`, summed.
fn job(
    env: &StreamEnvironment,
    handle: &CheckpointHandle,
    clock: &Arc<ManualClock>,
    pause: bool,
    fail: bool,
) -> dataflow_core::connectors::CollectHandle<Ev> {
    numbers(env, handle, clock, pause, fail).key_by(|e: &Ev| e.0).reduce(|a: Ev, b: Ev| (a.0, a.1 + b.1)).collect()
}

#[test]
fn a_completed_checkpoint_is_a_consistent_cut() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(0));
    let env = StreamEnvironment::new().with_parallelism(2).with_clock(clock.clone());
    let config = CheckpointConfig {
        mode: CheckpointingMode::Aligned,
        retained: 2,
        ..CheckpointConfig::every(Duration::from_millis(100))
    };
    let handle = env.enable_checkpointing(config, dir.path());
    job(&env, &handle, &clock, true, false);
    tokio::runtime::Runtime::new().unwrap().block_on(env.execute()).unwrap();
    // Checkpoint 1, and the final checkpoint once both sources finished.
    assert_eq!(*handle.completed().borrow(), 2, "checkpoints 1 and 2 did not complete");
    let storage = LocalStorage::new(dir.path());
    let positions = |cp: &dataflow_core::checkpoint::storage::CompleteCheckpoint| -> Vec<u64> {
        let mut f: Vec<_> = cp.metadata.files.iter().filter(|f| f.operator.ends_with(":numbers")).cloned().collect();
        f.sort_by_key(|f| f.subtask);
        f.iter().map(|f| u64::from_be_bytes(std::fs::read(cp.dir.join(&f.name)).unwrap().try_into().unwrap())).collect()
    };
    let last = storage.latest().unwrap().expect("a complete checkpoint");
    assert_eq!(positions(&last), [N, 2 * N], "the final checkpoint has the sources at their end");
    std::fs::remove_dir_all(&last.dir).unwrap();

    let latest = storage.latest().unwrap().expect("checkpoint 1");
    let files = |op: &str| -> Vec<_> {
        let mut f: Vec<_> = latest.metadata.files.iter().filter(|f| f.operator.ends_with(op)).cloned().collect();
        f.sort_by_key(|f| f.subtask);
        f
    };
    // The sources stood exactly after K records each.
    assert_eq!(positions(&latest), [K, N + K]);

    // The keyed state: restored (both subtasks' files into one subtask),
    // probed with a zero per key, equals the sums over the records before
    // the barrier.
    let state: Vec<_> = files(":reduce").iter().map(|f| latest.dir.join(&f.name)).collect();
    assert_eq!(state.len(), 2);
    let mut h = KeyedOperatorHarness::new(
        KeyedReduce::new(|a: Ev, b: Ev| (a.0, a.1 + b.1)),
        |e: &Ev| e.0,
        StateBackendConfig::InMemory,
    )
    .unwrap();
    h.restore(&state.iter().map(|p| p.as_path()).collect::<Vec<_>>()).unwrap();
    (0..KEYS).for_each(|k| h.process((k, 0), None).unwrap());
    let got: BTreeMap<u64, u64> = h.take_output().into_iter().collect();
    let mut expected: BTreeMap<u64, u64> = (0..KEYS).map(|k| (k, 0)).collect();
    for j in (0..K).chain(N..N + K) {
        *expected.entry(event(j).0).or_default() += j;
    }
    assert_eq!(got, expected);
}

/// A job that fails after checkpoint 1 completed, started again with the
/// same checkpoint directory, resumes from it: sources from their
/// positions, keyed state from its files, in-flight records from the
/// channel state. Its final sums count every record exactly once.
fn resume_from_latest_checkpoint(mode: CheckpointingMode) -> (Vec<Ev>, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let config = CheckpointConfig { mode, ..CheckpointConfig::every(Duration::from_millis(100)) };

    let clock = Arc::new(ManualClock::new(0));
    let env = StreamEnvironment::new().with_parallelism(2).with_clock(clock.clone());
    let handle = env.enable_checkpointing(config.clone(), dir.path());
    job(&env, &handle, &clock, true, true);
    let err = rt.block_on(env.execute()).unwrap_err();
    assert!(err.to_string().contains("injected failure"), "{err}");
    assert_eq!(*handle.completed().borrow(), 1);
    let latest = LocalStorage::new(dir.path()).latest().unwrap().expect("a complete checkpoint");
    let files = latest.metadata.files.iter().map(|f| f.name.clone()).collect();

    let clock = Arc::new(ManualClock::new(0));
    let env = StreamEnvironment::new().with_parallelism(2).with_clock(clock.clone());
    let handle = env.enable_checkpointing(config, dir.path());
    let out = job(&env, &handle, &clock, false, false);
    rt.block_on(env.execute()).unwrap();
    let out = out.take();
    assert_eq!(final_sums(out.clone()), totals(), "{mode:?}");
    (out, files)
}

#[test]
fn an_aligned_job_resumes_from_its_latest_checkpoint() {
    let (out, files) = resume_from_latest_checkpoint(CheckpointingMode::Aligned);
    assert_eq!(out.len() as u64, 2 * (N - K), "records after the checkpoint are processed once");
    assert!(!files.iter().any(|f| f.starts_with("ch")), "no channel state when aligned: {files:?}");
}

#[test]
fn an_unaligned_job_resumes_from_its_latest_checkpoint() {
    // The output after the restart: the records after the sources'
    // positions, and the replayed in-flight ones, if any (whether records
    // were in flight depends on timing; `backpressure.rs` makes sure).
    let (out, _) = resume_from_latest_checkpoint(CheckpointingMode::Unaligned);
    assert!(out.len() as u64 >= 2 * (N - K), "{}", out.len());
}

/// The largest (so, the rolling reduce's final) sum per key.
fn final_sums(out: Vec<Ev>) -> BTreeMap<u64, u64> {
    let mut last: BTreeMap<u64, u64> = BTreeMap::new();
    for (k, sum) in out {
        let e = last.entry(k).or_default();
        *e = (*e).max(sum);
    }
    last
}

/// Every record's value summed per key, in one batch pass.
fn totals() -> BTreeMap<u64, u64> {
    let mut expected: BTreeMap<u64, u64> = BTreeMap::new();
    for j in 0..2 * N {
        *expected.entry(event(j).0).or_default() += j;
    }
    expected
}

/// With a restart strategy, the failed job restarts in-process from its
/// latest checkpoint and ends with every record counted once in its state.
#[test]
fn a_failed_job_restarts_from_its_latest_checkpoint() {
    use dataflow_core::checkpoint::restart::RestartStrategy;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(0));
    let env = StreamEnvironment::new().with_parallelism(2).with_clock(clock.clone());
    let handle = env.enable_checkpointing(CheckpointConfig::every(Duration::from_millis(100)), dir.path());
    env.set_restart_strategy(RestartStrategy::fixed_delay(2, Duration::ZERO));
    let out = job(&env, &handle, &clock, true, true);
    tokio::runtime::Runtime::new().unwrap().block_on(env.execute()).unwrap();
    // The first run's output up to the failure is there too (the collect
    // sink is not transactional); the state counted each record once.
    assert_eq!(final_sums(out.take()), totals());
}

/// End to end: a transactional file sink behind a failing, restarted job
/// shows every record exactly once.
#[test]
fn transactional_files_hold_every_record_exactly_once() {
    use dataflow_core::checkpoint::restart::RestartStrategy;
    use dataflow_core::connectors::two_phase::read_committed;
    let (dir, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let clock = Arc::new(ManualClock::new(0));
    let env = StreamEnvironment::new().with_parallelism(2).with_clock(clock.clone());
    let handle = env.enable_checkpointing(CheckpointConfig::every(Duration::from_millis(100)), dir.path());
    env.set_restart_strategy(RestartStrategy::fixed_delay(2, Duration::ZERO));
    numbers(&env, &handle, &clock, true, true).map(|e: Ev| e.1).write_transactional_files(out.path());
    tokio::runtime::Runtime::new().unwrap().block_on(env.execute()).unwrap();
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    for l in read_committed(out.path()).unwrap() {
        *seen.entry(l.parse().unwrap()).or_default() += 1;
    }
    let missing: Vec<u64> = (0..2 * N).filter(|j| !seen.contains_key(j)).collect();
    let twice: Vec<u64> = seen.iter().filter(|(_, n)| **n > 1).map(|(j, _)| *j).collect();
    assert!(
        missing.is_empty() && twice.is_empty() && seen.len() as u64 == 2 * N,
        "{} missing (first {:?}), {} more than once (first {:?})",
        missing.len(),
        &missing[..missing.len().min(5)],
        twice.len(),
        &twice[..twice.len().min(5)]
    );
}

/// A job that finished ends with a final checkpoint (every source at its
/// end, the sinks' last output sealed): run again with the same checkpoint
/// directory, as after a crash just before the process exited, it resumes
/// from there and publishes nothing twice.
#[test]
fn a_finished_job_run_again_publishes_nothing_twice() {
    use dataflow_core::connectors::two_phase::read_committed;
    let (dir, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut runs = Vec::new();
    for _ in 0..2 {
        let clock = Arc::new(ManualClock::new(0));
        let env = StreamEnvironment::new().with_parallelism(2).with_clock(clock.clone());
        let handle = env.enable_checkpointing(CheckpointConfig::every(Duration::from_millis(100)), dir.path());
        numbers(&env, &handle, &clock, false, false).map(|e: Ev| e.1).write_transactional_files(out.path());
        rt.block_on(env.execute()).unwrap();
        let mut lines: Vec<u64> = read_committed(out.path()).unwrap().iter().map(|l| l.parse().unwrap()).collect();
        lines.sort();
        runs.push(lines);
    }
    assert_eq!(runs[0], (0..2 * N).collect::<Vec<_>>());
    assert_eq!(runs[1], runs[0]);
}
