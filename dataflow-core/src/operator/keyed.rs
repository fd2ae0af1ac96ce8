//! Keyed operators: [`KeyedFnOperator`] (an operator with per-key state,
//! as `#[operator]` functions with state parameters are) run by [`Keyed`],
//! and the keyed built-ins, rolling reduce and fold per key.
//!
//! They keep their per-key values in a hash map owned by the operator
//! instance; with hash partitioning every key reaches exactly one instance.
//! (The keyed state backends replace this map when they land.)

use super::{BoxError, Collector, FnOperator, Operator, OperatorInfo};
use crate::batch::Batch;
use crate::element::{Data, Record};
use crate::time::Watermark;
use dataflow_state::{Key, ValueState};
use rustc_hash::FxHashMap;
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
/// use dataflow_core::{operator::{KeyedFnOperator, KeyedReduce}, Collector, Record, ValueState};
/// let mut r = KeyedReduce::new(|a: u32, b: u32| a + b);
/// let (mut state, mut out) = (ValueState::default(), Collector::new());
/// r.process_keyed(&"k", Record::new(2), &mut state, &mut out).unwrap();
/// r.process_keyed(&"k", Record::new(3), &mut state, &mut out).unwrap();
/// assert_eq!(state.value(), Some(&5));
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

    #[inline]
    fn process_keyed(
        &mut self,
        _key: &K,
        record: Record<T>,
        state: &mut ValueState<T>,
        out: &mut Collector<T>,
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
/// use dataflow_core::{operator::{KeyedFnOperator, KeyedFold}, Collector, Record, ValueState};
/// let mut f = KeyedFold::new(0u64, |acc: &mut u64, v: u32| *acc += v as u64);
/// let (mut state, mut out) = (ValueState::default(), Collector::new());
/// f.process_keyed(&'k', Record::new(3), &mut state, &mut out).unwrap();
/// assert_eq!(out.len(), 1);
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

    #[inline]
    fn process_keyed(
        &mut self,
        key: &K,
        record: Record<T>,
        state: &mut ValueState<A>,
        out: &mut Collector<(K, A)>,
    ) -> Result<(), BoxError> {
        let ts = record.timestamp();
        let acc = state.get_or_insert_with(|| self.init.clone());
        (self.f)(acc, record.value);
        out.collect_value((key.clone(), acc.clone()), ts);
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
pub trait KeyedFnOperator<K: Key>: Send + 'static {
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

    /// Processes one record with its key and the state of its key.
    fn process_keyed(
        &mut self,
        key: &K,
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
pub(crate) struct Keyed<O: KeyedFnOperator<K>, K: Key> {
    op: O,
    keys: Arc<dyn KeyBatch<O::In, K>>,
    scratch: Vec<K>,
    states: FxHashMap<K, O::State>,
}

impl<O: KeyedFnOperator<K>, K: Key> Keyed<O, K> {
    /// `op`, keyed by `keys`.
    pub(crate) fn new(op: O, keys: Arc<dyn KeyBatch<O::In, K>>) -> Self {
        Self { op, keys, scratch: Vec::new(), states: FxHashMap::default() }
    }

    #[inline]
    fn process_with_key(&mut self, key: K, record: Record<O::In>, out: &mut Collector<O::Out>) -> Result<(), BoxError> {
        if std::mem::size_of::<O::State>() == 0 {
            // A stateless operator on a keyed stream: nothing to keep per key.
            return self.op.process_keyed(&key, record, &mut O::State::default(), out);
        }
        match self.states.get_mut(&key) {
            Some(state) => self.op.process_keyed(&key, record, state, out),
            None => {
                let mut state = O::State::default();
                self.op.process_keyed(&key, record, &mut state, out)?;
                self.states.insert(key, state);
                Ok(())
            }
        }
    }
}

impl<O: KeyedFnOperator<K>, K: Key> Operator for Keyed<O, K> {
    type In = O::In;
    type Out = O::Out;

    fn open(&mut self, info: &OperatorInfo) -> Result<(), BoxError> {
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
        let mut keys = std::mem::take(&mut self.scratch);
        self.keys.keys(batch.values(), &mut keys);
        let result = keys.drain(..).zip(batch.drain()).try_for_each(|(k, r)| self.process_with_key(k, r, out));
        self.scratch = keys;
        result
    }

    fn on_watermark(&mut self, watermark: Watermark, out: &mut Collector<O::Out>) -> Result<(), BoxError> {
        self.op.on_watermark(watermark, out)
    }
}
