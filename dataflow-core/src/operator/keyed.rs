//! Keyed operators: [`KeyedFnOperator`] (an operator with per-key state,
//! as `#[operator]` functions with state parameters are) run by [`Keyed`],
//! and the keyed built-ins, rolling reduce and fold per key.
//!
//! They keep their per-key values in a hash map owned by the operator
//! instance; with hash partitioning every key reaches exactly one instance.
//! (The keyed state backends replace this map when they land.)

use super::{BoxError, Collector, Operator, OperatorInfo};
use crate::batch::Batch;
use crate::element::{Data, Record};
use crate::time::Watermark;
use dataflow_state::Key;
use rustc_hash::FxHashMap;
use std::marker::PhantomData;
use std::sync::Arc;

/// The function that extracts a key from a value.
pub type KeySelector<T, K> = Arc<dyn Fn(&T) -> K + Send + Sync>;

/// For every record, combines it with the current value of its key and
/// emits the new value (Flink's rolling `reduce`).
///
/// ```
/// use std::sync::Arc;
/// use dataflow_core::{operator::KeyedReduce, Collector, Operator, Record};
/// let mut r = KeyedReduce::new(Arc::new(|v: &(u8, u32)| v.0), |a: (u8, u32), b: (u8, u32)| (a.0, a.1 + b.1));
/// let mut out = Collector::new();
/// r.process(Record::new((1, 2)), &mut out).unwrap();
/// r.process(Record::new((1, 3)), &mut out).unwrap();
/// assert_eq!(out.len(), 2);
/// ```
pub struct KeyedReduce<K, T, F> {
    key: KeySelector<T, K>,
    f: F,
    values: FxHashMap<K, T>,
}

impl<K: Key, T: Data, F: Clone> Clone for KeyedReduce<K, T, F> {
    fn clone(&self) -> Self {
        Self::new(self.key.clone(), self.f.clone())
    }
}

impl<K: Key, T, F> KeyedReduce<K, T, F> {
    /// A reduce that keys values with `key` and combines them with `f`.
    pub fn new(key: KeySelector<T, K>, f: F) -> Self {
        Self { key, f, values: FxHashMap::default() }
    }
}

impl<K, T, F> Operator for KeyedReduce<K, T, F>
where
    K: Key,
    T: Data,
    F: FnMut(T, T) -> T + Send + 'static,
{
    type In = T;
    type Out = T;

    #[inline]
    fn process(&mut self, record: Record<T>, out: &mut Collector<T>) -> Result<(), BoxError> {
        let k = (self.key)(&record.value);
        let ts = record.timestamp();
        let next = match self.values.remove(&k) {
            Some(acc) => (self.f)(acc, record.value),
            None => record.value,
        };
        out.collect_value(next.clone(), ts);
        self.values.insert(k, next);
        Ok(())
    }

    #[inline]
    fn process_batch(&mut self, batch: &mut Batch<T>, out: &mut Collector<T>) -> Result<(), BoxError> {
        if batch.timestamps().is_some() {
            return batch.drain().try_for_each(|r| self.process(r, out));
        }
        let Self { key, f, values } = self;
        out.batch.extend_values(batch.drain_values().map(|v| {
            let k = key(&v);
            let next = match values.remove(&k) {
                Some(acc) => f(acc, v),
                None => v,
            };
            values.insert(k, next.clone());
            next
        }));
        Ok(())
    }
}

/// For every record, folds it into its key's accumulator and emits
/// `(key, accumulator)`.
///
/// ```
/// use std::sync::Arc;
/// use dataflow_core::{operator::KeyedFold, Collector, Operator, Record};
/// let mut f = KeyedFold::new(Arc::new(|v: &u32| v % 2), 0u64, |acc: &mut u64, v: u32| *acc += v as u64);
/// let mut out = Collector::new();
/// f.process(Record::new(3), &mut out).unwrap();
/// assert_eq!(out.len(), 1);
/// ```
pub struct KeyedFold<K, T, A, F> {
    key: KeySelector<T, K>,
    init: A,
    f: F,
    values: FxHashMap<K, A>,
    _t: PhantomData<fn(T)>,
}

impl<K: Key, T, A: Clone, F: Clone> Clone for KeyedFold<K, T, A, F> {
    fn clone(&self) -> Self {
        Self::new(self.key.clone(), self.init.clone(), self.f.clone())
    }
}

impl<K: Key, T, A, F> KeyedFold<K, T, A, F> {
    /// A fold that keys values with `key`, starts each key at `init` and
    /// folds with `f`.
    pub fn new(key: KeySelector<T, K>, init: A, f: F) -> Self {
        Self { key, init, f, values: FxHashMap::default(), _t: PhantomData }
    }
}

impl<K, T, A, F> Operator for KeyedFold<K, T, A, F>
where
    K: Key,
    T: Data,
    A: Data,
    F: FnMut(&mut A, T) + Send + 'static,
{
    type In = T;
    type Out = (K, A);

    #[inline]
    fn process(&mut self, record: Record<T>, out: &mut Collector<(K, A)>) -> Result<(), BoxError> {
        let k = (self.key)(&record.value);
        let ts = record.timestamp();
        let acc = match self.values.get_mut(&k) {
            Some(acc) => acc,
            None => self.values.entry(k.clone()).or_insert_with(|| self.init.clone()),
        };
        (self.f)(acc, record.value);
        out.collect_value((k, acc.clone()), ts);
        Ok(())
    }

    #[inline]
    fn process_batch(&mut self, batch: &mut Batch<T>, out: &mut Collector<(K, A)>) -> Result<(), BoxError> {
        if batch.timestamps().is_some() {
            return batch.drain().try_for_each(|r| self.process(r, out));
        }
        let Self { key, init, f, values, .. } = self;
        out.batch.extend_values(batch.drain_values().map(|v| {
            let k = key(&v);
            let acc = match values.get_mut(&k) {
                Some(acc) => acc,
                None => values.entry(k.clone()).or_insert_with(|| init.clone()),
            };
            f(acc, v);
            (k, acc.clone())
        }));
        Ok(())
    }
}

/// An operator that keeps state per key: the runtime hands it the state of
/// the current record's key. `#[operator]` functions with keyed state
/// parameters implement it (and only it, so they apply to a
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
pub trait KeyedFnOperator: Send + 'static {
    /// The input type.
    type In: Data;
    /// The output type.
    type Out: Data;
    /// The state of one key.
    type State: Default + Send + 'static;

    /// Called once before the first element.
    fn open(&mut self, _info: &OperatorInfo) -> Result<(), BoxError> {
        Ok(())
    }

    /// Processes one record with the state of its key.
    fn process_keyed(
        &mut self,
        record: Record<Self::In>,
        state: &mut Self::State,
        out: &mut Collector<Self::Out>,
    ) -> Result<(), BoxError>;

    /// The watermark advanced.
    fn on_watermark(&mut self, _watermark: Watermark, _out: &mut Collector<Self::Out>) -> Result<(), BoxError> {
        Ok(())
    }
}

/// Runs a [`KeyedFnOperator`]: keys every record and keeps each key's
/// state. (A hash map per operator instance until the state backends land.)
pub struct Keyed<O: KeyedFnOperator, K> {
    op: O,
    key: KeySelector<O::In, K>,
    states: FxHashMap<K, O::State>,
}

impl<O: KeyedFnOperator, K> Keyed<O, K> {
    /// `op`, keyed with `key`.
    pub fn new(op: O, key: KeySelector<O::In, K>) -> Self {
        Self { op, key, states: FxHashMap::default() }
    }
}

impl<O: KeyedFnOperator, K: Key> Operator for Keyed<O, K> {
    type In = O::In;
    type Out = O::Out;

    fn open(&mut self, info: &OperatorInfo) -> Result<(), BoxError> {
        self.op.open(info)
    }

    #[inline]
    fn process(&mut self, record: Record<O::In>, out: &mut Collector<O::Out>) -> Result<(), BoxError> {
        let state = self.states.entry((self.key)(&record.value)).or_default();
        self.op.process_keyed(record, state, out)
    }

    fn on_watermark(&mut self, watermark: Watermark, out: &mut Collector<O::Out>) -> Result<(), BoxError> {
        self.op.on_watermark(watermark, out)
    }
}
