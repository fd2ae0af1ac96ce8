//! Keyed operators: [`KeyedFnOperator`] (an operator with per-key state,
//! as `#[operator]` functions with state parameters are) run by [`Keyed`],
//! and the keyed built-ins, rolling reduce and fold per key.
//!
//! Per-key state lives in a [`StateTable`] on the job's state backend
//! (in memory by default, or fjall); with hash partitioning every key
//! reaches exactly one subtask, which holds its key group.

use super::keyed_context::KeyedTimers;
use super::keyed_table;
use super::{BoxError, Collector, FnOperator, KeyedContext, Operator, OperatorInfo};
use crate::element::Batch;
use crate::element::CheckpointBarrier;
use crate::element::{Data, Record};
use crate::time::{Clock, TimeDomain, Timer, Timestamp, Watermark, timer_entries};
use dataflow_state::Ttl;
use dataflow_state::table::{StateBackendConfig, StateSnapshot, StateTable};
use dataflow_state::{Key, StateData, StateValue, ValueState};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::hash::Hash;
use std::marker::PhantomData;
use std::path::Path;
use std::sync::Arc;

/// The function that extracts a key from a value.
pub type KeySelector<T, K> = Arc<dyn Fn(&T) -> K + Send + Sync>;

/// Keys a whole batch with one dynamic call: the loop inside is compiled
/// for the concrete key function given to `key_by`.
pub(crate) trait KeyBatch<T, K>: Send + Sync {
    fn keys(&self, values: &[T], out: &mut Vec<K>);
}

/// The [`KeyBatch`] of a key function.
pub(crate) struct KeyFn<F>(pub(crate) F);

impl<T, K, F: Fn(&T) -> K + Send + Sync> KeyBatch<T, K> for KeyFn<F> {
    #[inline]
    fn keys(&self, values: &[T], out: &mut Vec<K>) {
        out.clear();
        out.extend(values.iter().map(&self.0));
    }
}

/// For every record, combines it with the current value of its key and
/// emits the new value (Flink's rolling `reduce`). Written as a
/// [`KeyedFnOperator`] with a [`ValueState`], as an `#[operator]` function
/// with state would be.
///
/// ```
/// use dataflow_core::{operator::{KeyedFnOperator, KeyedHarness, KeyedReduce}, Record, ValueState};
/// let mut r = KeyedReduce::new(|a: u32, b: u32| a + b);
/// let (mut state, mut h) = (ValueState::default(), KeyedHarness::new());
/// r.process_keyed(&'k', Record::new(2), &mut state, &mut h.context(&'k')).unwrap();
/// r.process_keyed(&'k', Record::new(3), &mut state, &mut h.context(&'k')).unwrap();
/// assert_eq!(state.value(), Some(&5));
/// assert_eq!(h.output(), [2, 5]);
/// ```
#[derive(Clone)]
pub struct KeyedReduce<T, F> {
    f: F,
    _t: PhantomData<fn(T)>,
}

impl<T, F> KeyedReduce<T, F> {
    /// A reduce combining values with `f`.
    pub fn new(f: F) -> Self {
        Self { f, _t: PhantomData }
    }
}

impl<T, F> FnOperator for KeyedReduce<T, F> {
    const NAME: &'static str = "reduce";
}

impl<K, T, F> KeyedFnOperator<K> for KeyedReduce<T, F>
where
    K: Key,
    T: StateData,
    F: FnMut(T, T) -> T + Send + 'static,
{
    type In = T;
    type Out = T;
    type State = ValueState<T>;
    type Namespace = ();

    #[inline]
    fn process_keyed(
        &mut self,
        _key: &K,
        record: Record<T>,
        state: &mut ValueState<T>,
        out: &mut KeyedContext<'_, K, (), T>,
    ) -> Result<(), BoxError> {
        let ts = record.timestamp();
        let next = match state.take() {
            Some(acc) => (self.f)(acc, record.value),
            None => record.value,
        };
        out.collect_value(next.clone(), ts);
        state.update(next);
        Ok(())
    }
}

/// For every record, folds it into its key's accumulator and emits
/// `(key, accumulator)`.
///
/// ```
/// use dataflow_core::{operator::{KeyedFnOperator, KeyedFold, KeyedHarness}, Record, ValueState};
/// let mut f = KeyedFold::new(0u64, |acc: &mut u64, v: u32| *acc += v as u64);
/// let (mut state, mut h) = (ValueState::default(), KeyedHarness::new());
/// f.process_keyed(&'k', Record::new(3), &mut state, &mut h.context(&'k')).unwrap();
/// assert_eq!(h.output(), [('k', 3)]);
/// ```
#[derive(Clone)]
pub struct KeyedFold<T, A, F> {
    init: A,
    f: F,
    _t: PhantomData<fn(T)>,
}

impl<T, A, F> KeyedFold<T, A, F> {
    /// A fold that starts each key at `init` and folds with `f`.
    pub fn new(init: A, f: F) -> Self {
        Self { init, f, _t: PhantomData }
    }
}

impl<T, A, F> FnOperator for KeyedFold<T, A, F> {
    const NAME: &'static str = "fold";
}

impl<K, T, A, F> KeyedFnOperator<K> for KeyedFold<T, A, F>
where
    K: Key,
    T: Data,
    A: StateData,
    F: FnMut(&mut A, T) + Send + 'static,
{
    type In = T;
    type Out = (K, A);
    type State = ValueState<A>;
    type Namespace = ();

    #[inline]
    fn process_keyed(
        &mut self,
        key: &K,
        record: Record<T>,
        state: &mut ValueState<A>,
        out: &mut KeyedContext<'_, K, (), (K, A)>,
    ) -> Result<(), BoxError> {
        let ts = record.timestamp();
        let acc = state.get_or_insert_with(|| self.init.clone());
        (self.f)(acc, record.value);
        out.collect_value((key.clone(), acc.clone()), ts);
        Ok(())
    }
}

/// An operator that keeps state per key and may set timers per key (Flink's
/// `KeyedProcessFunction`): the runtime hands it the state of the current
/// record's key and a [`KeyedContext`] to emit, read the watermark and
/// register timers; a timer calls [`KeyedFnOperator::on_timer`] with the
/// state of its key. `#[operator]` functions with keyed state parameters
/// implement it (and only it, so they apply to a
/// [`KeyedStream`](crate::KeyedStream) alone); stateless ones implement it
/// with `State = ()` besides [`Operator`].
///
/// ```
/// use dataflow_core::{operator, StreamEnvironment, ValueState};
///
/// /// Numbers each word's occurrences.
/// #[operator]
/// fn occurrence(word: String, seen: &mut ValueState<u64>) -> (String, u64) {
///     let n = seen.get_or_insert_with(|| 0);
///     *n += 1;
///     (word, *n)
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let env = StreamEnvironment::new().with_parallelism(1);
/// let out = env.from_iter(vec!["a".to_string(), "b".into(), "a".into()])
///     .key_by(|w: &String| w.clone())
///     .apply(occurrence())
///     .collect();
/// env.execute().await.unwrap();
/// assert_eq!(out.take(), [("a".to_string(), 1), ("b".to_string(), 1), ("a".to_string(), 2)]);
/// # });
/// ```
///
/// With a timer: emit each key's sum once the watermark passes the time of
/// its first record plus 10.
///
/// ```
/// use dataflow_core::operator::{FnOperator, KeyedContext, KeyedFnOperator};
/// use dataflow_core::time::{Timer, WatermarkStrategy};
/// use dataflow_core::{BoxError, Record, StreamEnvironment, ValueState};
///
/// #[derive(Clone)]
/// struct SumAfter10;
/// impl FnOperator for SumAfter10 {
///     const NAME: &'static str = "sum after 10";
/// }
/// impl KeyedFnOperator<u32> for SumAfter10 {
///     type In = (u32, i64);
///     type Out = (u32, i64);
///     type State = ValueState<i64>;
///     type Namespace = ();
///
///     fn process_keyed(&mut self, _key: &u32, r: Record<(u32, i64)>, sum: &mut ValueState<i64>,
///                      ctx: &mut KeyedContext<'_, u32, (), (u32, i64)>) -> Result<(), BoxError> {
///         if sum.value().is_none() {
///             ctx.register_event_time_timer(r.value.1 + 10);
///         }
///         *sum.get_or_insert_with(|| 0) += r.value.1;
///         Ok(())
///     }
///
///     fn on_timer(&mut self, timer: Timer<u32, ()>, sum: &mut ValueState<i64>,
///                 ctx: &mut KeyedContext<'_, u32, (), (u32, i64)>) -> Result<(), BoxError> {
///         ctx.collect_value((timer.key, sum.take().unwrap_or(0)), Some(timer.timestamp));
///         Ok(())
///     }
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let env = StreamEnvironment::new().with_parallelism(1);
/// let out = env.from_iter(vec![(1u32, 1i64), (1, 5), (2, 3), (3, 30)])
///     .assign_timestamps_and_watermarks(WatermarkStrategy::for_monotonous_timestamps()
///         .with_timestamp_assigner(|e: &(u32, i64), _| e.1))
///     .key_by(|e: &(u32, i64)| e.0)
///     .apply(SumAfter10)
///     .collect();
/// env.execute().await.unwrap();
/// // Timers 11 and 13 fire at watermark 29 (after record 30); timer 40 at the end.
/// assert_eq!(out.take(), [(1, 6), (2, 3), (3, 30)]);
/// # });
/// ```
pub trait KeyedFnOperator<K: Key>: Send + 'static {
    /// The input type.
    type In: Data;
    /// The output type.
    type Out: Data;
    /// The state of one key (a state primitive, a tuple of them, or any
    /// serde type with a default).
    type State: StateValue;
    /// What distinguishes timers of the same key and time (`()` if nothing
    /// does; the window, for window operators).
    type Namespace: Clone + Eq + Hash + Send + Serialize + DeserializeOwned + 'static;

    /// Called once before the first element.
    fn open(&mut self, _info: &OperatorInfo) -> Result<(), BoxError> {
        Ok(())
    }

    /// Processes one record with its key and the state of its key.
    fn process_keyed(
        &mut self,
        key: &K,
        record: Record<Self::In>,
        state: &mut Self::State,
        ctx: &mut KeyedContext<'_, K, Self::Namespace, Self::Out>,
    ) -> Result<(), BoxError>;

    /// A timer of this key fired. `state` is the key's state (created
    /// empty if the key has none).
    fn on_timer(
        &mut self,
        _timer: Timer<K, Self::Namespace>,
        _state: &mut Self::State,
        _ctx: &mut KeyedContext<'_, K, Self::Namespace, Self::Out>,
    ) -> Result<(), BoxError> {
        Ok(())
    }

    /// The watermark advanced (after the event-time timers it made due fired).
    fn on_watermark(&mut self, _watermark: Watermark, _out: &mut Collector<Self::Out>) -> Result<(), BoxError> {
        Ok(())
    }

    /// Whether the state of a key can be dropped (called after each record
    /// and timer of the key; the default keeps every key's state).
    fn is_state_empty(&self, _state: &Self::State) -> bool {
        false
    }
}

/// Runs a [`KeyedFnOperator`]: keys every record, keeps each key's state
/// in a [`StateTable`] on the job's backend and the operator's timers, and
/// fires timers as the watermark and the clock advance. Snapshots hold
/// both.
pub(crate) struct Keyed<O: KeyedFnOperator<K>, K: Key> {
    op: O,
    keys: Arc<dyn KeyBatch<O::In, K>>,
    scratch: Vec<K>,
    /// Opened with the operator (`None` before); stateless operators keep
    /// no key in it (only their timers go into its snapshots).
    table: Option<StateTable<K, O::State>>,
    timers: KeyedTimers<K, O::Namespace>,
    clock: Option<Arc<dyn Clock>>,
    max_parallelism: u32,
    ttl: Option<Ttl>,
}

impl<O: KeyedFnOperator<K>, K: Key> Keyed<O, K> {
    /// A copy of `key`'s state, if this subtask holds one.
    pub(crate) fn state(&mut self, key: &K) -> Result<Option<O::State>, BoxError> {
        match &mut self.table {
            Some(table) => match table.get(key) {
                Err(dataflow_state::StateError::ForeignKeyGroup { .. }) => Ok(None),
                r => Ok(r?),
            },
            None => Err("the operator is not open".into()),
        }
    }
}

/// Whether an operator's per-key state holds nothing at all (a stateless
/// operator on a keyed stream): then no table is kept.
const fn stateless<S>() -> bool {
    std::mem::size_of::<S>() == 0
}

impl<O: KeyedFnOperator<K>, K: Key> Keyed<O, K> {
    /// `op`, keyed by `keys`.
    pub(crate) fn new(op: O, keys: Arc<dyn KeyBatch<O::In, K>>) -> Self {
        let timers = KeyedTimers::new();
        Self { op, keys, scratch: Vec::new(), table: None, timers, clock: None, max_parallelism: 0, ttl: None }
    }

    /// Lets each key's state expire `ttl` (processing time) after its last
    /// access.
    pub(crate) fn with_ttl(self, ttl: Option<Ttl>) -> Self {
        Self { ttl, ..self }
    }

    /// Runs `f` on the state of `key` (empty if it has none) with a
    /// context for `key`, dropping the state if the operator says it is
    /// empty afterwards.
    #[inline]
    fn with_key(
        &mut self,
        key: &K,
        out: &mut Collector<O::Out>,
        f: impl FnOnce(&mut O, &mut O::State, &mut KeyedContext<'_, K, O::Namespace, O::Out>) -> Result<(), BoxError>,
    ) -> Result<(), BoxError> {
        let Self { op, table, timers, .. } = self;
        let mut ctx = KeyedContext::new(key, out, timers);
        match table {
            // A stateless operator on a keyed stream: nothing to keep per key.
            _ if stateless::<O::State>() => f(op, &mut O::State::default(), &mut ctx),
            Some(table) => table.with_state(key, |state| {
                f(op, state, &mut ctx)?;
                Ok(((), op.is_state_empty(state)))
            }),
            None => Err("keyed state used before the operator was opened".into()),
        }
    }

    /// Fires the timers of `domain` due at `now`, in time order.
    fn fire(&mut self, domain: TimeDomain, now: Timestamp, out: &mut Collector<O::Out>) -> Result<(), BoxError> {
        while let Some(timer) = self.timers.service.pop_due(domain, now) {
            let key = timer.key.clone();
            self.with_key(&key, out, |op, state, ctx| op.on_timer(timer, state, ctx))?;
        }
        Ok(())
    }

    fn tick(&mut self) {
        if let Some(clock) = &self.clock {
            self.set_processing_time(clock.now_millis());
        }
    }

    fn set_processing_time(&mut self, now: Timestamp) {
        self.timers.processing_time = now;
        if let Some(table) = &mut self.table {
            table.set_now(now);
        }
    }
}

impl<O: KeyedFnOperator<K>, K: Key> Operator for Keyed<O, K> {
    type In = O::In;
    type Out = O::Out;

    fn open(&mut self, info: &OperatorInfo) -> Result<(), BoxError> {
        self.clock = Some(info.clock.clone());
        self.max_parallelism = info.max_parallelism;
        // A stateless operator keeps its timers in an in-memory table.
        let backend = if stateless::<O::State>() { &StateBackendConfig::InMemory } else { &info.state_backend };
        self.table = Some(keyed_table::open(info, backend, self.ttl)?);
        self.tick();
        self.op.open(info)
    }

    fn process(&mut self, record: Record<O::In>, out: &mut Collector<O::Out>) -> Result<(), BoxError> {
        self.keys.keys(std::slice::from_ref(&record.value), &mut self.scratch);
        match self.scratch.pop() {
            Some(key) => self.with_key(&key, out, |op, state, ctx| op.process_keyed(&key, record, state, ctx)),
            None => Err("the key function gave no key".into()),
        }
    }

    fn process_batch(&mut self, batch: &mut Batch<O::In>, out: &mut Collector<O::Out>) -> Result<(), BoxError> {
        self.tick();
        let mut keys = std::mem::take(&mut self.scratch);
        self.keys.keys(batch.values(), &mut keys);
        let result = match &mut self.table {
            Some(table) if !stateless::<O::State>() => {
                let Self { op, timers, .. } = self;
                table.with_states(keys.drain(..).zip(batch.drain()), |key, record, state| {
                    op.process_keyed(key, record, state, &mut KeyedContext::new(key, out, timers))?;
                    Ok::<_, BoxError>(op.is_state_empty(state))
                })
            }
            _ => keys.drain(..).zip(batch.drain()).try_for_each(|(key, record)| {
                self.with_key(&key, out, |op, state, ctx| op.process_keyed(&key, record, state, ctx))
            }),
        };
        self.scratch = keys;
        result
    }

    fn on_watermark(&mut self, watermark: Watermark, out: &mut Collector<O::Out>) -> Result<(), BoxError> {
        self.tick();
        self.timers.watermark = watermark;
        self.fire(TimeDomain::EventTime, watermark.0, out)?;
        self.op.on_watermark(watermark, out)
    }

    fn snapshot(&mut self, barrier: &CheckpointBarrier) -> Result<Option<StateSnapshot>, BoxError> {
        let Some(table) = &mut self.table else { return Ok(None) };
        let timers = timer_entries(&self.timers.service, self.max_parallelism)?;
        Ok(Some(keyed_table::snapshot(table, barrier, timers)?))
    }

    fn restore(&mut self, files: &[&Path]) -> Result<(), BoxError> {
        let Some(table) = &mut self.table else { return Err("restore before the operator was opened".into()) };
        let timers: Vec<Timer<K, O::Namespace>> = keyed_table::restore(table, files)?;
        for t in timers {
            self.timers.service.register(t.domain, t.key, t.namespace, t.timestamp);
        }
        Ok(())
    }

    fn next_processing_time(&self) -> Option<Timestamp> {
        self.timers.service.next_processing_time()
    }

    fn on_processing_time(&mut self, now: Timestamp, out: &mut Collector<O::Out>) -> Result<(), BoxError> {
        self.set_processing_time(now);
        self.fire(TimeDomain::ProcessingTime, now, out)
    }
}
