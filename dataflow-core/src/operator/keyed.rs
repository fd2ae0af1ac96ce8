//! Keyed operators: [`KeyedFnOperator`] (an operator with per-key state,
//! as `#[operator]` functions with state parameters are) run by [`Keyed`],
//! and the keyed built-ins, rolling reduce and fold per key.
//!
//! They keep their per-key values in a hash map owned by the operator
//! instance; with hash partitioning every key reaches exactly one instance.
//! (The keyed state backends replace this map when they land.)

use super::keyed_context::KeyedTimers;
use super::{BoxError, Collector, FnOperator, KeyedContext, Operator, OperatorInfo};
use crate::batch::Batch;
use crate::element::{Data, Record};
use crate::time::{Clock, TimeDomain, Timer, Timestamp, Watermark};
use dataflow_state::{Key, ValueState};
use rustc_hash::FxHashMap;
use std::hash::Hash;
use std::marker::PhantomData;
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
/// r.process_keyed(&"k", Record::new(2), &mut state, &mut h.context(&"k")).unwrap();
/// r.process_keyed(&"k", Record::new(3), &mut state, &mut h.context(&"k")).unwrap();
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
    T: Data,
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
    A: Data,
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
    /// The state of one key.
    type State: Default + Send + 'static;
    /// What distinguishes timers of the same key and time (`()` if nothing
    /// does; the window, for window operators).
    type Namespace: Clone + Eq + Hash + Send + 'static;

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
/// and the operator's timers, and fires timers as the watermark and the
/// clock advance. (A hash map per operator instance until the state
/// backends land.)
pub(crate) struct Keyed<O: KeyedFnOperator<K>, K: Key> {
    op: O,
    keys: Arc<dyn KeyBatch<O::In, K>>,
    scratch: Vec<K>,
    states: FxHashMap<K, O::State>,
    timers: KeyedTimers<K, O::Namespace>,
    clock: Option<Arc<dyn Clock>>,
}

impl<O: KeyedFnOperator<K>, K: Key> Keyed<O, K> {
    /// `op`, keyed by `keys`.
    pub(crate) fn new(op: O, keys: Arc<dyn KeyBatch<O::In, K>>) -> Self {
        Self { op, keys, scratch: Vec::new(), states: FxHashMap::default(), timers: KeyedTimers::new(), clock: None }
    }

    #[inline]
    fn process_with_key(&mut self, key: K, record: Record<O::In>, out: &mut Collector<O::Out>) -> Result<(), BoxError> {
        let mut ctx = KeyedContext::new(&key, out, &mut self.timers);
        if std::mem::size_of::<O::State>() == 0 {
            // A stateless operator on a keyed stream: nothing to keep per key.
            return self.op.process_keyed(&key, record, &mut O::State::default(), &mut ctx);
        }
        match self.states.get_mut(&key) {
            Some(state) => {
                self.op.process_keyed(&key, record, state, &mut ctx)?;
                if self.op.is_state_empty(state) {
                    self.states.remove(&key);
                }
                Ok(())
            }
            None => {
                let mut state = O::State::default();
                self.op.process_keyed(&key, record, &mut state, &mut ctx)?;
                if !self.op.is_state_empty(&state) {
                    self.states.insert(key, state);
                }
                Ok(())
            }
        }
    }

    /// Fires the timers of `domain` due at `now`, in time order.
    fn fire(&mut self, domain: TimeDomain, now: Timestamp, out: &mut Collector<O::Out>) -> Result<(), BoxError> {
        while let Some(timer) = self.timers.service.pop_due(domain, now) {
            let key = timer.key.clone();
            let mut ctx = KeyedContext::new(&key, out, &mut self.timers);
            match self.states.get_mut(&key) {
                Some(state) => {
                    self.op.on_timer(timer, state, &mut ctx)?;
                    if self.op.is_state_empty(state) {
                        self.states.remove(&key);
                    }
                }
                None => {
                    let mut state = O::State::default();
                    self.op.on_timer(timer, &mut state, &mut ctx)?;
                    if std::mem::size_of::<O::State>() != 0 && !self.op.is_state_empty(&state) {
                        self.states.insert(key, state);
                    }
                }
            }
        }
        Ok(())
    }

    fn tick(&mut self) {
        if let Some(clock) = &self.clock {
            self.timers.processing_time = clock.now_millis();
        }
    }
}

impl<O: KeyedFnOperator<K>, K: Key> Operator for Keyed<O, K> {
    type In = O::In;
    type Out = O::Out;

    fn open(&mut self, info: &OperatorInfo) -> Result<(), BoxError> {
        self.clock = Some(info.clock.clone());
        self.tick();
        self.op.open(info)
    }

    fn process(&mut self, record: Record<O::In>, out: &mut Collector<O::Out>) -> Result<(), BoxError> {
        self.keys.keys(std::slice::from_ref(&record.value), &mut self.scratch);
        match self.scratch.pop() {
            Some(key) => self.process_with_key(key, record, out),
            None => Err("the key function gave no key".into()),
        }
    }

    fn process_batch(&mut self, batch: &mut Batch<O::In>, out: &mut Collector<O::Out>) -> Result<(), BoxError> {
        self.tick();
        let mut keys = std::mem::take(&mut self.scratch);
        self.keys.keys(batch.values(), &mut keys);
        let result = keys.drain(..).zip(batch.drain()).try_for_each(|(k, r)| self.process_with_key(k, r, out));
        self.scratch = keys;
        result
    }

    fn on_watermark(&mut self, watermark: Watermark, out: &mut Collector<O::Out>) -> Result<(), BoxError> {
        self.tick();
        self.timers.watermark = watermark;
        self.fire(TimeDomain::EventTime, watermark.0, out)?;
        self.op.on_watermark(watermark, out)
    }

    fn next_processing_time(&self) -> Option<Timestamp> {
        self.timers.service.next_processing_time()
    }

    fn on_processing_time(&mut self, now: Timestamp, out: &mut Collector<O::Out>) -> Result<(), BoxError> {
        self.timers.processing_time = now;
        self.fire(TimeDomain::ProcessingTime, now, out)
    }
}
