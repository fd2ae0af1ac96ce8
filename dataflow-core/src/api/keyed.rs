//! `KeyedStream<K, T>`: a stream partitioned by key, and the keyed
//! aggregations on it.

use super::Stream;
use crate::element::Data;
use crate::operator::{
    FnOperator, KeyBatch, KeyFn, KeySelector, Keyed, KeyedFnOperator, KeyedFold, KeyedReduce, Operator, OperatorInfo,
};
use dataflow_state::Ttl;
use dataflow_state::{Key, StateData};
use std::sync::Arc;

/// A stream partitioned by a key of type `K`: every record with the same
/// key reaches the same subtask of the next operator.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let env = dataflow_core::StreamEnvironment::new().with_parallelism(2);
/// let counts = env
///     .from_iter(["a", "b", "a"].map(String::from))
///     .key_by(|w| w.clone())
///     .count()
///     .collect();
/// env.execute().await.unwrap();
/// let mut v = counts.take();
/// v.sort();
/// assert_eq!(v, [("a".to_string(), 1), ("a".to_string(), 2), ("b".to_string(), 1)]);
/// # });
/// ```
pub struct KeyedStream<K, T> {
    stream: Stream<T>,
    key: KeySelector<T, K>,
    keys: Arc<dyn KeyBatch<T, K>>,
    ttl: Option<Ttl>,
}

impl<K, T> Clone for KeyedStream<K, T> {
    fn clone(&self) -> Self {
        Self { stream: self.stream.clone(), key: self.key.clone(), keys: self.keys.clone(), ttl: self.ttl }
    }
}

impl<K, T> std::fmt::Debug for KeyedStream<K, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedStream").field("stream", &self.stream).finish()
    }
}

impl<K: Key, T: Data> KeyedStream<K, T> {
    pub(crate) fn new<F>(stream: Stream<T>, f: F) -> Self
    where
        F: Fn(&T) -> K + Clone + Send + Sync + 'static,
    {
        Self { stream, key: Arc::new(f.clone()), keys: Arc::new(KeyFn(f)), ttl: None }
    }

    /// Lets the per-key state of the operators applied to this stream
    /// expire (Flink's state TTL, in processing time): a key's state lives
    /// `ttl` after its last access, is never handed out once expired (the
    /// key starts empty) and is left out of snapshots. Every access renews
    /// it (an operator may change the state it is given).
    ///
    /// ```
    /// use dataflow_core::state::Ttl;
    /// let env = dataflow_core::StreamEnvironment::new();
    /// let counts = env.from_iter(vec![1u32, 2, 1])
    ///     .key_by(|x| *x)
    ///     .with_state_ttl(Ttl::new(std::time::Duration::from_secs(3600)))
    ///     .count();
    /// ```
    pub fn with_state_ttl(&self, ttl: Ttl) -> Self {
        Self { ttl: Some(ttl), ..self.clone() }
    }

    /// The key selector.
    ///
    /// ```
    /// let env = dataflow_core::StreamEnvironment::new();
    /// let k = env.from_iter(vec![5u32]).key_by(|x| x % 2);
    /// assert_eq!((k.key_selector())(&5), 1);
    /// ```
    pub fn key_selector(&self) -> KeySelector<T, K> {
        self.key.clone()
    }

    /// Applies an operator to the hash-partitioned records; `make` builds
    /// one instance per subtask and may take the key selector.
    ///
    /// ```
    /// use dataflow_core::operator::Map;
    /// let env = dataflow_core::StreamEnvironment::new();
    /// let keyed = env.from_iter(vec![1u64, 2, 3]).key_by(|x| x % 2);
    /// let key = keyed.key_selector();
    /// let _tagged = keyed.transform_with("tag", move |_| {
    ///     let key = key.clone();
    ///     Map::new(move |x: u64| (key(&x), x))
    /// });
    /// ```
    pub fn transform_with<O, F>(&self, name: &str, make: F) -> Stream<O::Out>
    where
        O: Operator<In = T>,
        F: Fn(&OperatorInfo) -> O + Send + Sync + 'static,
    {
        self.stream.transform_with(name, make)
    }

    /// Applies an operator that keys the records itself (with the stream's
    /// batch key function) and keeps per-key state with its TTL: `make`
    /// gets both.
    pub(crate) fn transform_keyed<O, F>(&self, name: &str, make: F) -> Stream<O::Out>
    where
        O: Operator<In = T>,
        F: Fn(Arc<dyn KeyBatch<T, K>>, Option<Ttl>) -> O + Send + Sync + 'static,
    {
        let (keys, ttl) = (self.keys.clone(), self.ttl);
        self.transform_with(name, move |_| make(keys.clone(), ttl))
    }

    /// Applies an `#[operator]` function (or any [`KeyedFnOperator`] that is
    /// also an [`FnOperator`]): each record is processed with the state of
    /// its key. See [`KeyedFnOperator`] for an example.
    pub fn apply<O>(&self, op: O) -> Stream<O::Out>
    where
        O: KeyedFnOperator<K, In = T> + FnOperator + Clone,
    {
        let (keys, ttl) = (self.keys.clone(), self.ttl);
        let op = std::sync::Mutex::new(op);
        self.transform_with(O::NAME, move |_| {
            Keyed::new(op.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone(), keys.clone()).with_ttl(ttl)
        })
        .with_options::<O>()
    }

    /// For every record, combines it with its key's current value and emits
    /// the result (a rolling reduce, as Flink's `reduce`).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let env = dataflow_core::StreamEnvironment::new().with_parallelism(1);
    /// let out = env.from_iter(vec![1, 2, 3]).key_by(|_| 0u8).reduce(|a, b| a + b).collect();
    /// env.execute().await.unwrap();
    /// assert_eq!(out.take(), [1, 3, 6]);
    /// # });
    /// ```
    pub fn reduce<F>(&self, f: F) -> Stream<T>
    where
        T: StateData,
        F: FnMut(T, T) -> T + Clone + Send + Sync + 'static,
    {
        self.apply(KeyedReduce::new(f))
    }

    /// For every record, folds it into its key's accumulator (starting at
    /// `init`) and emits `(key, accumulator)`.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let env = dataflow_core::StreamEnvironment::new().with_parallelism(1);
    /// let out = env.from_iter(["a", "bb"].map(String::from)).key_by(|_| ()).fold(String::new(), |acc, s| acc.push_str(&s)).collect();
    /// env.execute().await.unwrap();
    /// assert_eq!(out.take(), [((), "a".to_string()), ((), "abb".to_string())]);
    /// # });
    /// ```
    pub fn fold<A, F>(&self, init: A, f: F) -> Stream<(K, A)>
    where
        A: StateData,
        F: FnMut(&mut A, T) + Clone + Send + Sync + 'static,
    {
        self.apply(KeyedFold::new(init, f))
    }

    /// The running sum per key of the values `f` extracts: emits
    /// `(key, sum so far)` for every record.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let env = dataflow_core::StreamEnvironment::new().with_parallelism(1);
    /// let out = env.from_iter(vec![('x', 2), ('x', 5)]).key_by(|p| p.0).sum(|p| p.1).collect();
    /// env.execute().await.unwrap();
    /// assert_eq!(out.take(), [('x', 2), ('x', 7)]);
    /// # });
    /// ```
    pub fn sum<V, F>(&self, f: F) -> Stream<(K, V)>
    where
        V: StateData + Default + std::ops::AddAssign,
        F: Fn(&T) -> V + Clone + Send + Sync + 'static,
    {
        self.fold(V::default(), move |acc, v| *acc += f(&v)).name("sum")
    }

    /// The running count per key: emits `(key, count so far)` for every record.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let env = dataflow_core::StreamEnvironment::new().with_parallelism(1);
    /// let out = env.from_iter(vec![1, 1, 2]).key_by(|x| *x).count().collect();
    /// env.execute().await.unwrap();
    /// assert_eq!(out.take(), [(1, 1), (1, 2), (2, 1)]);
    /// # });
    /// ```
    pub fn count(&self) -> Stream<(K, u64)> {
        self.fold(0u64, |acc, _| *acc += 1).name("count")
    }
}
