//! The operator model: what a task calls for every batch of records and
//! every control element.
//!
//! An operator implements [`Operator`] (one input) or [`TwoInputOperator`]
//! (two inputs of different types, from `connect`). The runtime calls
//! [`Operator::process_batch`] once per batch; its default walks the batch
//! and calls [`Operator::process`] per record, and an operator that can do
//! better on a whole batch (a map, a filter) overrides it. Outputs go into a
//! [`Collector`], which the runtime hands to the next operator of the chain
//! (a function call, no copy) or to the channels of the next task.
//!
//! Barriers do not pass through the operator's record path: the task calls
//! [`Operator::snapshot`] when a barrier is complete. A barrier travels in
//! order with the data, and in unaligned mode a copy also overtakes the
//! records queued in the channel on its priority lane, so the snapshot can
//! be taken ahead of them (`docs/checkpoints.md`). The built-ins (`map`, `filter`, `flat_map`,
//! `reduce`, …) are ordinary implementations of these traits; users write
//! operators the same way and add them with
//! [`Stream::transform`](crate::Stream::transform).

mod async_fn;
mod builtin;
pub mod function;
mod harness;
mod keyed;
mod keyed_context;
pub(crate) mod keyed_table;
mod side;
mod watermarks;

pub use async_fn::{AsyncCall, AsyncFnOperator, AsyncOrder};
pub use builtin::{CoFlatMap, CoMap, Filter, FlatMap, Inspect, Map, Process};
pub use function::{BadRecord, BadRecordPolicy, BadRecordReport, Context, FnOperator};
pub use harness::KeyedOperatorHarness;
pub(crate) use keyed::{KeyBatch, KeyFn, Keyed};
pub use keyed::{KeySelector, KeyedFnOperator, KeyedFold, KeyedReduce};
pub use keyed_context::{KeyedContext, KeyedHarness};
pub use side::OutputTag;
pub(crate) use side::{ErasedBatch, SideBuffers, TagKey};
pub use watermarks::TimestampsAndWatermarks;

use crate::element::Batch;
use crate::element::{CheckpointBarrier, Data, Record, StreamStatus};
pub use crate::error::BoxError;
use crate::time::{Clock, Timestamp, Wakeup, Watermark};
use dataflow_state::operator_state::OperatorStateStore;
use dataflow_state::table::{StateBackendConfig, StateSnapshot};
use std::path::Path;
use std::sync::Arc;

/// Which operator instance this is.
///
/// ```
/// use dataflow_core::{operator::BadRecordPolicy, time::SystemClock, OperatorInfo};
/// use std::sync::Arc;
/// let info = OperatorInfo {
///     name: "map".into(), subtask: 0, parallelism: 2, max_parallelism: 128, bad_record_policy: BadRecordPolicy::Fail,
///     clock: Arc::new(SystemClock), state_backend: Default::default(), operator_index: 0,
///     incremental_checkpoints: false, storage_options: Arc::from([]),
/// };
/// assert_eq!(info.to_string(), "map (1/2)");
/// ```
#[derive(Clone, Debug)]
pub struct OperatorInfo {
    /// The operator's name.
    pub name: String,
    /// This subtask's index, from 0.
    pub subtask: usize,
    /// The operator's parallelism.
    pub parallelism: usize,
    /// The number of key groups.
    pub max_parallelism: u32,
    /// What to do with records a function rejects.
    pub bad_record_policy: BadRecordPolicy,
    /// Where processing time comes from (the environment's clock).
    pub clock: Arc<dyn Clock>,
    /// Where keyed state lives (the environment's state backend).
    pub state_backend: StateBackendConfig,
    /// The operator's index in the job (tells its state stores apart).
    pub operator_index: usize,
    /// Whether the job takes incremental checkpoints (keyed state tables
    /// then track their changes).
    pub incremental_checkpoints: bool,
    /// Options for object stores (`StreamEnvironment::set_storage_options`),
    /// for connectors that read or write them.
    pub storage_options: Arc<[(String, String)]>,
}

impl std::fmt::Display for OperatorInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}/{})", self.name, self.subtask + 1, self.parallelism)
    }
}

/// Where an operator puts its output records.
///
/// ```
/// use dataflow_core::{Collector, Record};
/// let mut out = Collector::new();
/// out.collect(Record::new(1));
/// out.collect_value(2, Some(5));
/// assert_eq!(out.len(), 2);
/// ```
#[derive(Debug)]
pub struct Collector<T> {
    pub(crate) batch: Batch<T>,
    pub(crate) skipped: u64,
    pub(crate) side: SideBuffers,
    pub(crate) watermark: Option<Watermark>,
    pub(crate) status: Option<StreamStatus>,
}

impl<T> Default for Collector<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Collector<T> {
    /// An empty collector.
    pub fn new() -> Self {
        Self { batch: Batch::new(), skipped: 0, side: SideBuffers::default(), watermark: None, status: None }
    }

    /// Emits a record.
    #[inline]
    pub fn collect(&mut self, record: Record<T>) {
        self.batch.push(record);
    }

    /// Emits a value with an optional timestamp.
    #[inline]
    pub fn collect_value(&mut self, value: T, timestamp: Option<Timestamp>) {
        self.batch.push_with(value, timestamp);
    }

    /// Emits a value with an optional timestamp to the side output `tag`.
    ///
    /// ```
    /// use dataflow_core::{operator::OutputTag, Collector};
    /// let mut out = Collector::<u8>::new();
    /// out.output(&OutputTag::<String>::new("rejects"), "bad".to_string(), None);
    /// assert!(out.is_empty());
    /// ```
    pub fn output<U: Data>(&mut self, tag: &OutputTag<U>, value: U, timestamp: Option<Timestamp>) {
        self.side.push(tag, value, timestamp);
    }

    /// Emits a watermark after the records collected so far (for operators
    /// that generate watermarks; see [`Operator::forwards_watermarks`]).
    ///
    /// ```
    /// let mut out = dataflow_core::Collector::<u8>::new();
    /// out.emit_watermark(dataflow_core::time::Watermark(7));
    /// assert!(out.is_empty());
    /// ```
    pub fn emit_watermark(&mut self, watermark: Watermark) {
        self.watermark = Some(self.watermark.map_or(watermark, |w| w.max(watermark)));
    }

    /// Announces that this output goes idle (no records or watermarks for
    /// a while, so downstream tasks stop waiting for its watermark) or
    /// active again; it follows the records collected so far.
    ///
    /// ```
    /// let mut out = dataflow_core::Collector::<u8>::new();
    /// out.emit_status(dataflow_core::StreamStatus::Idle);
    /// assert!(out.is_empty());
    /// ```
    pub fn emit_status(&mut self, status: StreamStatus) {
        self.status = Some(status);
    }

    /// Emits every record of an iterator.
    #[inline]
    pub fn extend(&mut self, records: impl IntoIterator<Item = Record<T>>) {
        records.into_iter().for_each(|r| self.batch.push(r));
    }

    /// How many records were emitted and not yet handed on.
    pub fn len(&self) -> usize {
        self.batch.len()
    }

    /// Whether nothing is waiting to be handed on.
    pub fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }

    /// The batch being filled, for operators that work on whole batches.
    ///
    /// ```
    /// let mut out = dataflow_core::Collector::new();
    /// out.batch_mut().extend_values([1, 2]);
    /// assert_eq!(out.len(), 2);
    /// ```
    pub fn batch_mut(&mut self) -> &mut Batch<T> {
        &mut self.batch
    }
}

/// An operator with one input.
///
/// ```
/// use dataflow_core::{BoxError, Collector, Operator, Record, StreamEnvironment};
///
/// /// Emits each value and its running count.
/// #[derive(Clone, Default)]
/// struct Numbered { n: u64 }
///
/// impl Operator for Numbered {
///     type In = String;
///     type Out = (u64, String);
///     fn process(&mut self, r: Record<String>, out: &mut Collector<(u64, String)>) -> Result<(), BoxError> {
///         self.n += 1;
///         out.collect(r.map(|v| (self.n, v)));
///         Ok(())
///     }
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let env = StreamEnvironment::new().with_parallelism(1);
/// let out = env.from_iter(vec!["a".to_string(), "b".into()])
///     .transform("numbered", Numbered::default())
///     .collect();
/// env.execute().await.unwrap();
/// assert_eq!(out.take(), vec![(1, "a".to_string()), (2, "b".to_string())]);
/// # });
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an operator for a plain stream",
    note = "an `#[operator]` function with keyed state parameters applies to a `KeyedStream`: call `.key_by(..)` first"
)]
pub trait Operator: Send + 'static {
    /// The input type.
    type In: Data;
    /// The output type.
    type Out: Data;

    /// Called once before the first element, with this instance's identity.
    fn open(&mut self, _info: &OperatorInfo) -> Result<(), BoxError> {
        Ok(())
    }

    /// Processes one record.
    fn process(&mut self, record: Record<Self::In>, out: &mut Collector<Self::Out>) -> Result<(), BoxError>;

    /// Processes a batch of records, leaving `batch` empty. Override it when
    /// a whole batch can be handled faster than record by record.
    fn process_batch(&mut self, batch: &mut Batch<Self::In>, out: &mut Collector<Self::Out>) -> Result<(), BoxError> {
        for r in batch.drain() {
            self.process(r, out)?;
        }
        Ok(())
    }

    /// The task's watermark advanced to `watermark`. The runtime forwards it
    /// downstream after this returns (after anything emitted here).
    fn on_watermark(&mut self, _watermark: Watermark, _out: &mut Collector<Self::Out>) -> Result<(), BoxError> {
        Ok(())
    }

    /// Checkpoint barrier: the synchronous part of a snapshot of this
    /// operator's state, taken before the barrier goes downstream; `None`
    /// if it keeps no state. Writing the result out
    /// ([`StateSnapshot::write_to`]) is the asynchronous part, which may
    /// run while processing goes on.
    fn snapshot(&mut self, _barrier: &CheckpointBarrier) -> Result<Option<StateSnapshot>, BoxError> {
        Ok(None)
    }

    /// Restores the state of this subtask's key groups from snapshot files
    /// (of any parallelism and backend). Called after [`Self::open`],
    /// before the first element.
    fn restore(&mut self, _files: &[&Path]) -> Result<(), BoxError> {
        Ok(())
    }

    /// The operator's operator state (list, union and broadcast state,
    /// not keyed), if it keeps any: Flink's `CheckpointedFunction`.
    ///
    /// On every barrier the runtime calls [`Self::snapshot`] first (an
    /// operator may move values it keeps in fields into the store there),
    /// then snapshots this store into the checkpoint beside the keyed
    /// state. On a restore it replaces the store with this subtask's share
    /// of the saved one, redistributed when the parallelism changed (list
    /// state split evenly, union state to every subtask, broadcast state
    /// copied), before [`Self::open`], so `open` sees the restored values.
    ///
    /// ```
    /// use dataflow_core::state::operator_state::{OperatorStateDescriptor, OperatorStateStore};
    /// use dataflow_core::{BoxError, Collector, Operator, Record};
    ///
    /// /// Counts its records; the count survives failures and rescaling.
    /// struct Count(OperatorStateStore);
    ///
    /// impl Operator for Count {
    ///     type In = u64;
    ///     type Out = u64;
    ///     fn process(&mut self, _r: Record<u64>, _out: &mut Collector<u64>) -> Result<(), BoxError> {
    ///         let counts = self.0.list_state(&OperatorStateDescriptor::list("count"))?;
    ///         match counts.first_mut() {
    ///             Some(n) => *n += 1,
    ///             None => counts.push(1u64),
    ///         }
    ///         Ok(())
    ///     }
    ///     fn finish(&mut self, out: &mut Collector<u64>) -> Result<(), BoxError> {
    ///         let counts = self.0.list_state(&OperatorStateDescriptor::<u64>::list("count"))?;
    ///         out.collect_value(counts.iter().sum(), None);
    ///         Ok(())
    ///     }
    ///     fn operator_state(&mut self) -> Option<&mut OperatorStateStore> {
    ///         Some(&mut self.0)
    ///     }
    /// }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let env = dataflow_core::StreamEnvironment::new();
    /// let out = env.from_iter(0..10u64).transform_with("count", |_| Count(OperatorStateStore::new())).collect();
    /// env.execute().await.unwrap();
    /// assert_eq!(out.take().iter().sum::<u64>(), 10); // one count per subtask
    /// # });
    /// ```
    fn operator_state(&mut self) -> Option<&mut OperatorStateStore> {
        None
    }

    /// Every input ended: emit what is left.
    fn finish(&mut self, _out: &mut Collector<Self::Out>) -> Result<(), BoxError> {
        Ok(())
    }

    /// The processing time at which the operator wants
    /// [`Operator::on_processing_time`] called (its earliest processing-time
    /// timer, an idleness deadline), if any. The task asks after every
    /// batch and control element and waits on the job's
    /// [`Clock`] for it while no input arrives.
    fn next_processing_time(&self) -> Option<Timestamp> {
        None
    }

    /// Processing time reached `now` (at or past what
    /// [`Operator::next_processing_time`] asked for).
    fn on_processing_time(&mut self, _now: Timestamp, _out: &mut Collector<Self::Out>) -> Result<(), BoxError> {
        Ok(())
    }

    /// For an operator chained to a source: while this returns a future,
    /// the task does not read its source; when the future completes it
    /// asks again (watermark alignment pauses a source this way).
    fn source_paused(&self) -> Option<Wakeup> {
        None
    }

    /// Whether the watermarks of the input pass on after `on_watermark`
    /// (the default). An operator that generates its own watermarks returns
    /// false: only the final `Watermark::MAX` then passes.
    fn forwards_watermarks(&self) -> bool {
        true
    }
}

/// An operator with two inputs of possibly different types (`connect`).
///
/// ```
/// use dataflow_core::{BoxError, Collector, Record, StreamEnvironment, TwoInputOperator};
///
/// /// Tags every record with the input it came from.
/// #[derive(Clone)]
/// struct Tag;
/// impl TwoInputOperator for Tag {
///     type In1 = u32;
///     type In2 = String;
///     type Out = String;
///     fn process1(&mut self, r: Record<u32>, out: &mut Collector<String>) -> Result<(), BoxError> {
///         out.collect(r.map(|v| format!("1:{v}")));
///         Ok(())
///     }
///     fn process2(&mut self, r: Record<String>, out: &mut Collector<String>) -> Result<(), BoxError> {
///         out.collect(r.map(|v| format!("2:{v}")));
///         Ok(())
///     }
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let env = StreamEnvironment::new();
/// let a = env.from_iter(vec![7u32]);
/// let b = env.from_iter(vec!["x".to_string()]);
/// let out = a.connect(&b).transform("tag", Tag).collect();
/// env.execute().await.unwrap();
/// let mut v = out.take();
/// v.sort();
/// assert_eq!(v, ["1:7", "2:x"]);
/// # });
/// ```
pub trait TwoInputOperator: Send + 'static {
    /// The first input's type.
    type In1: Data;
    /// The second input's type.
    type In2: Data;
    /// The output type.
    type Out: Data;

    /// Called once before the first element.
    fn open(&mut self, _info: &OperatorInfo) -> Result<(), BoxError> {
        Ok(())
    }

    /// Processes a record of the first input.
    fn process1(&mut self, record: Record<Self::In1>, out: &mut Collector<Self::Out>) -> Result<(), BoxError>;

    /// Processes a record of the second input.
    fn process2(&mut self, record: Record<Self::In2>, out: &mut Collector<Self::Out>) -> Result<(), BoxError>;

    /// The combined watermark of both inputs (their minimum) advanced.
    fn on_watermark(&mut self, _watermark: Watermark, _out: &mut Collector<Self::Out>) -> Result<(), BoxError> {
        Ok(())
    }

    /// Checkpoint barrier: the synchronous part of a snapshot of this
    /// operator's state (see [`Operator::snapshot`]).
    fn snapshot(&mut self, _barrier: &CheckpointBarrier) -> Result<Option<StateSnapshot>, BoxError> {
        Ok(None)
    }

    /// Restores this operator's state from snapshot files (see
    /// [`Operator::restore`]).
    fn restore(&mut self, _files: &[&Path]) -> Result<(), BoxError> {
        Ok(())
    }

    /// The operator's operator state, if it keeps any (see
    /// [`Operator::operator_state`]).
    fn operator_state(&mut self) -> Option<&mut OperatorStateStore> {
        None
    }

    /// Both inputs ended.
    fn finish(&mut self, _out: &mut Collector<Self::Out>) -> Result<(), BoxError> {
        Ok(())
    }
}
