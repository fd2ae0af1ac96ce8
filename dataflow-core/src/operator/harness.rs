//! [`KeyedOperatorHarness`]: runs one subtask of a keyed operator by hand,
//! as the runtime would, on a chosen state backend, so tests can feed it
//! records, watermarks and processing time, take and restore snapshots,
//! and read what it emitted (Flink's
//! `KeyedOneInputStreamOperatorTestHarness`).

use super::keyed::{KeyFn, Keyed};
use super::{BadRecordPolicy, BoxError, Collector, KeyedFnOperator, Operator, OperatorInfo};
use crate::element::Batch;
use crate::element::CheckpointBarrier;
use crate::time::{ManualClock, Timestamp, Watermark};
use dataflow_state::Ttl;
use dataflow_state::table::{StateBackendConfig, StateSnapshot};
use dataflow_state::{DEFAULT_MAX_PARALLELISM, Key};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One subtask of a keyed operator, driven by hand.
///
/// ```
/// use dataflow_core::operator::{KeyedOperatorHarness, KeyedReduce};
/// use dataflow_core::StateBackendConfig;
///
/// let mut h = KeyedOperatorHarness::new(KeyedReduce::new(|a: u64, b: u64| a + b), |v: &u64| v % 2,
///     StateBackendConfig::InMemory).unwrap();
/// for v in [1, 2, 3] {
///     h.process(v, None).unwrap();
/// }
/// let snapshot = h.snapshot().unwrap(); // the synchronous part
/// let file = tempfile::tempdir().unwrap().keep().join("reduce");
/// snapshot.write_to(&file).unwrap(); // the asynchronous part
/// h.process(5, None).unwrap();
/// assert_eq!(h.take_output(), [1, 2, 4, 9]);
///
/// let mut restored = KeyedOperatorHarness::new(KeyedReduce::new(|a: u64, b: u64| a + b), |v: &u64| v % 2,
///     StateBackendConfig::InMemory).unwrap();
/// restored.restore(&[&file]).unwrap();
/// restored.process(5, None).unwrap();
/// assert_eq!(restored.take_output(), [9]);
/// ```
pub struct KeyedOperatorHarness<O: KeyedFnOperator<K>, K: Key> {
    keyed: Keyed<O, K>,
    out: Collector<O::Out>,
    clock: Arc<ManualClock>,
    checkpoint: u64,
}

impl<O: KeyedFnOperator<K>, K: Key> KeyedOperatorHarness<O, K> {
    /// The only subtask (parallelism 1) of `op` keyed by `key`, opened on
    /// `backend`, at processing time 0.
    pub fn new(
        op: O,
        key: impl Fn(&O::In) -> K + Send + Sync + 'static,
        backend: StateBackendConfig,
    ) -> Result<Self, BoxError> {
        Self::subtask(op, key, backend, 1, 0)
    }

    /// Subtask `subtask` of `parallelism` (so it holds that subtask's key
    /// groups, of the default 128).
    pub fn subtask(
        op: O,
        key: impl Fn(&O::In) -> K + Send + Sync + 'static,
        backend: StateBackendConfig,
        parallelism: usize,
        subtask: usize,
    ) -> Result<Self, BoxError> {
        Self::open(Keyed::new(op, Arc::new(KeyFn(key))), backend, parallelism, subtask)
    }

    /// The only subtask, with each key's state expiring `ttl` after its
    /// last access (see
    /// [`KeyedStream::with_state_ttl`](crate::KeyedStream::with_state_ttl)).
    pub fn with_state_ttl(
        op: O,
        key: impl Fn(&O::In) -> K + Send + Sync + 'static,
        backend: StateBackendConfig,
        ttl: Ttl,
    ) -> Result<Self, BoxError> {
        Self::open(Keyed::new(op, Arc::new(KeyFn(key))).with_ttl(Some(ttl)), backend, 1, 0)
    }

    fn open(
        mut keyed: Keyed<O, K>,
        backend: StateBackendConfig,
        parallelism: usize,
        subtask: usize,
    ) -> Result<Self, BoxError> {
        // Every harness gets stores of its own.
        static HARNESSES: AtomicUsize = AtomicUsize::new(0);
        let clock = Arc::new(ManualClock::new(0));
        let info = OperatorInfo {
            name: "harness".into(),
            subtask,
            parallelism,
            max_parallelism: DEFAULT_MAX_PARALLELISM,
            bad_record_policy: BadRecordPolicy::Fail,
            clock: clock.clone(),
            state_backend: backend,
            operator_index: HARNESSES.fetch_add(1, Ordering::Relaxed),
            incremental_checkpoints: false,
            storage_options: Arc::from([]),
        };
        keyed.open(&info)?;
        Ok(Self { keyed, out: Collector::new(), clock, checkpoint: 0 })
    }

    /// Processes a record.
    pub fn process(&mut self, value: O::In, timestamp: Option<Timestamp>) -> Result<(), BoxError> {
        let mut batch = Batch::new();
        batch.push_with(value, timestamp);
        self.keyed.process_batch(&mut batch, &mut self.out)
    }

    /// Advances the watermark (firing due event-time timers).
    pub fn watermark(&mut self, watermark: Timestamp) -> Result<(), BoxError> {
        self.keyed.on_watermark(Watermark(watermark), &mut self.out)
    }

    /// Sets the processing time (firing due processing-time timers).
    pub fn set_processing_time(&mut self, now: Timestamp) -> Result<(), BoxError> {
        self.clock.set(now);
        self.keyed.on_processing_time(now, &mut self.out)
    }

    /// The synchronous part of a snapshot of the operator's state and
    /// timers; write it with [`StateSnapshot::write_to`].
    pub fn snapshot(&mut self) -> Result<StateSnapshot, BoxError> {
        self.take(crate::element::BarrierKind::Checkpoint)
    }

    /// The same for a savepoint: the state in the canonical,
    /// self-describing encoding (`docs/savepoints.md`).
    pub fn savepoint(&mut self) -> Result<StateSnapshot, BoxError> {
        self.take(crate::element::BarrierKind::Savepoint)
    }

    fn take(&mut self, kind: crate::element::BarrierKind) -> Result<StateSnapshot, BoxError> {
        self.checkpoint += 1;
        let barrier = CheckpointBarrier {
            id: self.checkpoint,
            timestamp: 0,
            mode: crate::element::CheckpointingMode::Aligned,
            kind,
            incremental: false,
        };
        self.keyed.snapshot(&barrier)?.ok_or_else(|| "the operator has no state".into())
    }

    /// A copy of `key`'s state, if this subtask holds one (a key of
    /// another subtask's key groups has none here).
    pub fn state(&mut self, key: &K) -> Result<Option<O::State>, BoxError> {
        self.keyed.state(key)
    }

    /// Restores this subtask's key groups from snapshot files.
    pub fn restore(&mut self, files: &[&Path]) -> Result<(), BoxError> {
        self.keyed.restore(files)
    }

    /// Takes the values emitted so far.
    pub fn take_output(&mut self) -> Vec<O::Out> {
        self.out.batch.drain_values().collect()
    }
}
