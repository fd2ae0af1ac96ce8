//! Seeded fault injection: keyed, windowed jobs at parallelism 2–4 with
//! checkpoints every few hundred records, failing at random points (an
//! error in a source, a panic in a user operator, a failure while taking a
//! snapshot, a failure after acknowledging a checkpoint but before it
//! completed, a failure while the job recovers, and sometimes a second
//! failure soon after a restart), restarting from their latest checkpoint.
//! In the unaligned and the aligned mode, 200 seeds each: the committed
//! files hold every record once and every window count once, equal to a
//! failure-free batch computation, and the keyed state and the operator
//! state (a count per subtask in list state) count every record once. At least once (fewer seeds): nothing is lost. Seeds are printed
//! on failure.

use dataflow_core::Record;
use dataflow_core::checkpoint::coordinator::CheckpointConfig;
use dataflow_core::checkpoint::restart::RestartStrategy;
use dataflow_core::checkpoint::{CheckpointBarrier, CheckpointingMode};
use dataflow_core::connectors::two_phase::read_committed;
use dataflow_core::connectors::{Source, SourceContext, SourceStatus};
use dataflow_core::operator::{Collector, Operator, OperatorInfo};
use dataflow_core::state::operator_state::{OperatorStateDescriptor, OperatorStateStore};
use dataflow_core::state::table::StateSnapshot;
use dataflow_core::time::ManualClock;
use dataflow_core::time::WatermarkStrategy;
use dataflow_core::window::TumblingEventTimeWindows;
use dataflow_core::{BoxError, FjallStateConfig, StateBackendConfig, StreamEnvironment};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const N: u64 = 3_000;
const KEYS: u64 = 37;
/// Records between two moves of the clock (so, between checkpoints).
const EVERY: u64 = 300;

/// A small deterministic generator (the seed decides everything).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// Failures still to inject: (record at which to fail, where).
type Plan = Arc<Mutex<Vec<(u64, &'static str)>>>;

/// Takes the failure planned at record `j` in `place`, if any.
fn take_failure(plan: &Plan, j: u64, place: &str) -> bool {
    let mut p = plan.lock().unwrap();
    match p.iter().position(|&(at, w)| at == j && w == place) {
        Some(i) => {
            p.remove(i);
            true
        }
        None => false,
    }
}

/// Subtask `i` emits records `i*N .. (i+1)*N`, a few per poll; subtask 0
/// moves the clock on every `EVERY` records.
struct Ticking {
    next: u64,
    end: u64,
    first: bool,
    clock: Arc<ManualClock>,
    emitted: Arc<AtomicU64>,
    plan: Plan,
}

#[async_trait::async_trait]
impl Source<u64> for Ticking {
    async fn poll_batch(&mut self, ctx: &mut SourceContext<u64>) -> Result<SourceStatus, BoxError> {
        for _ in 0..16 {
            if self.next == self.end {
                break;
            }
            if take_failure(&self.plan, self.next, "source") {
                return Err(format!("injected source failure at {}", self.next).into());
            }
            ctx.collect(self.next, None);
            self.next += 1;
            if self.first && self.emitted.fetch_add(1, Ordering::SeqCst) % EVERY == EVERY - 1 {
                self.clock.advance(100);
            }
        }
        tokio::task::yield_now().await;
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

/// A pass-through operator that fails where the plan says: a panic at a
/// record, an error while snapshotting checkpoint `n`, a failure at the
/// first record after its snapshot of `n` was acknowledged (while `n` has
/// not completed), or an error when it opens again after a restart. It
/// counts its records in operator state and reports the count when its
/// input ends.
struct Chaos {
    plan: Plan,
    subtask: usize,
    opens: Arc<AtomicU64>,
    completed: tokio::sync::watch::Receiver<u64>,
    acknowledged: Option<u64>,
    store: OperatorStateStore,
    count: u64,
    /// The count of each subtask at its end (the last run's wins).
    counts: Arc<Mutex<BTreeMap<usize, u64>>>,
}

fn count_state() -> OperatorStateDescriptor<u64> {
    OperatorStateDescriptor::list("count")
}

impl Operator for Chaos {
    type In = u64;
    type Out = u64;

    fn open(&mut self, _info: &OperatorInfo) -> Result<(), BoxError> {
        let restarting = self.subtask == 0 && self.opens.fetch_add(1, Ordering::SeqCst) > 0;
        if restarting && take_failure(&self.plan, 0, "recovery") {
            return Err("injected failure during recovery".into());
        }
        self.count = self.store.list_state(&count_state())?.iter().sum();
        Ok(())
    }

    fn finish(&mut self, _out: &mut Collector<u64>) -> Result<(), BoxError> {
        self.counts.lock().unwrap().insert(self.subtask, self.count);
        Ok(())
    }

    fn operator_state(&mut self) -> Option<&mut OperatorStateStore> {
        Some(&mut self.store)
    }

    fn process(&mut self, record: Record<u64>, out: &mut Collector<u64>) -> Result<(), BoxError> {
        if let Some(n) = self.acknowledged.take()
            && *self.completed.borrow() < n
        {
            return Err(format!("injected failure after acknowledging checkpoint {n}").into());
        }
        if take_failure(&self.plan, record.value, "operator") {
            panic!("injected operator panic at {}", record.value);
        }
        self.count += 1;
        out.collect(record);
        Ok(())
    }

    fn snapshot(&mut self, barrier: &CheckpointBarrier) -> Result<Option<StateSnapshot>, BoxError> {
        if self.subtask == 0 && take_failure(&self.plan, barrier.id, "snapshot") {
            return Err(format!("injected failure while snapshotting checkpoint {}", barrier.id).into());
        }
        if self.subtask == 0 && take_failure(&self.plan, barrier.id, "after-ack") {
            self.acknowledged = Some(barrier.id);
        }
        *self.store.list_state(&count_state())? = vec![self.count];
        Ok(None)
    }
}

/// Event time of record `j` (ms) and the window size: every source's
/// records are in time order, so none is late.
const WINDOW_MS: u64 = 50;

/// A random failure: where, and at which record or checkpoint.
fn failure(rng: &mut Lcg, total: u64) -> (u64, &'static str) {
    let checkpoints = total / EVERY;
    match rng.below(5) {
        0 => (rng.below(total), "source"),
        1 => (rng.below(total), "operator"),
        2 => (1 + rng.below(checkpoints), "snapshot"),
        3 => (1 + rng.below(checkpoints), "after-ack"),
        _ => (0, "recovery"),
    }
}

fn run(seed: u64, mode: CheckpointingMode) -> Result<(), String> {
    run_with(seed, CheckpointConfig { mode, ..CheckpointConfig::every(Duration::from_millis(100)) })
}

fn run_with(seed: u64, config: CheckpointConfig) -> Result<(), String> {
    let mode = config.mode;
    let mut rng = Lcg(seed);
    rng.below(1_000); // the first draw of a small seed is not well mixed
    let p = 2 + rng.below(3) as usize;
    let total = p as u64 * N;
    let mut plan = vec![failure(&mut rng, total)];
    if plan[0].1 == "recovery" || rng.below(3) == 0 {
        // A second failure (a recovery failure needs a first one), often
        // soon after the first one's restart.
        let second = loop {
            let f = failure(&mut rng, total);
            if f.1 != "recovery" {
                break f;
            }
        };
        plan.push(second);
    }
    let plan: Plan = Arc::new(Mutex::new(plan));
    let (chk, out, windows) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let clock = Arc::new(ManualClock::new(0));
    let env = StreamEnvironment::new().with_parallelism(p).with_clock(clock.clone());
    // Incremental runs with odd seeds keep their state in fjall.
    let state = tempfile::tempdir().unwrap();
    if config.incremental == Some(true) && seed % 2 == 1 {
        env.set_state_backend(StateBackendConfig::Fjall(FjallStateConfig::new(state.path())));
    }
    let handle = env.enable_checkpointing(config, chk.path());
    env.set_restart_strategy(RestartStrategy::fixed_delay(6, Duration::ZERO));
    let (c, pl, emitted) = (clock.clone(), plan.clone(), Arc::new(AtomicU64::new(0)));
    let records = env.add_source("ticking", move |info| {
        let i = info.subtask as u64;
        Ticking {
            next: i * N,
            end: (i + 1) * N,
            first: i == 0,
            clock: c.clone(),
            emitted: emitted.clone(),
            plan: pl.clone(),
        }
    });
    let (pl, opens) = (plan.clone(), Arc::new(AtomicU64::new(0)));
    let counts = Arc::new(Mutex::new(BTreeMap::new()));
    let c = counts.clone();
    let checked = records.transform_with("chaos", move |info| Chaos {
        plan: pl.clone(),
        subtask: info.subtask,
        opens: opens.clone(),
        completed: handle.completed(),
        acknowledged: None,
        store: OperatorStateStore::new(),
        count: 0,
        counts: c.clone(),
    });
    checked.write_transactional_files(out.path());
    let pairs = checked.map(|j: u64| (j % KEYS, j));
    let sums = pairs.key_by(|e: &(u64, u64)| e.0).reduce(|a: (u64, u64), b: (u64, u64)| (a.0, a.1 + b.1)).collect();
    pairs
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_monotonous_timestamps().with_timestamp_assigner(|e: &(u64, u64), _| e.1 as i64),
        )
        .key_by(|e: &(u64, u64)| e.0)
        .window(TumblingEventTimeWindows::of(Duration::from_millis(WINDOW_MS)))
        .count()
        .map(|(k, w, n): (u64, dataflow_core::window::TimeWindow, u64)| format!("{k} {} {n}", w.start))
        .write_transactional_files(windows.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(env.execute()).map_err(|e| format!("p={p}: the job failed: {e}"))?;
    let left: Vec<_> = plan.lock().unwrap().clone();
    let what = format!("p={p}, failures not reached: {left:?}");

    let mut seen: BTreeMap<u64, u64> = BTreeMap::new();
    for l in read_committed(out.path()).map_err(|e| e.to_string())? {
        *seen.entry(l.parse().map_err(|e| format!("{e}"))?).or_default() += 1;
    }
    let missing = (0..total).filter(|j| !seen.contains_key(j)).count();
    let twice = seen.values().filter(|n| **n > 1).count();
    let exactly_once = mode != CheckpointingMode::AtLeastOnce;
    if missing > 0 || (exactly_once && twice > 0) {
        return Err(format!("{what}: {missing} records missing, {twice} more than once in the committed output"));
    }
    // Window counts: the committed lines equal a batch count, line for line.
    let mut got: Vec<String> = read_committed(windows.path()).map_err(|e| e.to_string())?;
    let mut expected: BTreeMap<(u64, u64), u64> = BTreeMap::new();
    for j in 0..total {
        *expected.entry((j % KEYS, j / WINDOW_MS * WINDOW_MS)).or_default() += 1;
    }
    let mut expected: Vec<String> = expected.iter().map(|((k, w), n)| format!("{k} {w} {n}")).collect();
    got.sort();
    expected.sort();
    if exactly_once && got != expected {
        let extra = got.iter().filter(|l| !expected.contains(l)).take(3).collect::<Vec<_>>();
        let lost = expected.iter().filter(|l| !got.contains(l)).take(3).collect::<Vec<_>>();
        return Err(format!(
            "{what}: window counts differ: {} lines vs {}; extra {extra:?}, lost {lost:?}",
            got.len(),
            expected.len()
        ));
    }
    // The rolling sums only grow: the largest per key is the final state,
    // which must count every record once.
    let mut last: BTreeMap<u64, u64> = BTreeMap::new();
    for (k, sum) in sums.take() {
        let e = last.entry(k).or_default();
        *e = (*e).max(sum);
    }
    let mut expected: BTreeMap<u64, u64> = BTreeMap::new();
    for j in 0..total {
        *expected.entry(j % KEYS).or_default() += j;
    }
    if exactly_once && last != expected {
        return Err(format!("{what}: the keyed state did not count every record once"));
    }
    // The operator state counted every record once (at least once).
    let counts = counts.lock().unwrap().clone();
    let counted: u64 = counts.values().sum();
    if counts.len() != p || counted < total || (exactly_once && counted != total) {
        return Err(format!("{what}: the operator state counted {counted} of {total} records: {counts:?}"));
    }
    Ok(())
}

fn seeds(mode: CheckpointingMode, seeds: std::ops::Range<u64>) {
    let failures: Vec<String> =
        seeds.filter_map(|seed| run(seed, mode).err().map(|e| format!("seed {seed}: {e}"))).collect();
    assert!(failures.is_empty(), "{mode:?}: {} failed: {failures:#?}", failures.len());
}

#[test]
fn unaligned_checkpoints_neither_lose_nor_duplicate() {
    seeds(CheckpointingMode::Unaligned, 0..200);
}

#[test]
fn aligned_checkpoints_neither_lose_nor_duplicate() {
    seeds(CheckpointingMode::Aligned, 0..200);
}

#[test]
fn aligned_with_a_timeout_neither_loses_nor_duplicates() {
    seeds(CheckpointingMode::AlignedWithTimeout(Duration::ZERO), 0..50);
}

#[test]
fn at_least_once_loses_nothing() {
    seeds(CheckpointingMode::AtLeastOnce, 0..50);
}

/// Incremental checkpoints (deltas of the keyed state, a full one every
/// third checkpoint), unaligned, in memory and (odd seeds) on fjall.
#[test]
fn incremental_checkpoints_neither_lose_nor_duplicate() {
    let config = CheckpointConfig {
        incremental: Some(true),
        materialize_every: 3,
        retained: 2,
        ..CheckpointConfig::every(Duration::from_millis(100))
    };
    let failures: Vec<String> = (0..60u64)
        .filter_map(|seed| run_with(seed, config.clone()).err().map(|e| format!("seed {seed}: {e}")))
        .collect();
    assert!(failures.is_empty(), "incremental: {} failed: {failures:#?}", failures.len());
}
