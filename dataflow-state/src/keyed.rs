//! Keyed state primitives: the values an operator keeps per key.
//!
//! An `#[operator]` function names them as parameters
//! (`count: &mut ValueState<u64>`); the runtime hands it the state of the
//! current record's key, kept in a [`StateTable`](crate::table::StateTable)
//! of the job's backend. Every primitive is a serde type so the backend can
//! encode it; a key's whole state (all its primitives) is a [`StateValue`].

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::hash::Hash;

/// A value that can be kept in state: cloned, encoded with serde, and
/// shared with a snapshot being written on another thread. Any
/// `Clone + Send + Sync` serde type is one.
///
/// ```
/// fn keepable<T: dataflow_state::StateData>() {}
/// keepable::<(String, Vec<u64>)>();
/// ```
pub trait StateData: Clone + Serialize + DeserializeOwned + Send + Sync + 'static {}
impl<T: Clone + Serialize + DeserializeOwned + Send + Sync + 'static> StateData for T {}

/// What a keyed operator keeps per key: a value the backend can create
/// empty, copy (for copy-on-write snapshots) and encode. Every state
/// primitive is one, and so is a tuple of them.
///
/// ```
/// use dataflow_state::{ListState, StateValue, ValueState};
/// fn takes<S: StateValue>() {}
/// takes::<(ValueState<u64>, ListState<String>)>();
/// ```
pub trait StateValue: Default + Clone + Serialize + DeserializeOwned + Send + Sync + 'static {}
impl<S: Default + Clone + Serialize + DeserializeOwned + Send + Sync + 'static> StateValue for S {}

/// One value per key.
///
/// ```
/// use dataflow_state::ValueState;
/// let mut s = ValueState::default();
/// assert_eq!(s.value(), None);
/// s.update(3u64);
/// assert_eq!(s.value(), Some(&3));
/// *s.get_or_insert_with(|| 0) += 1;
/// assert_eq!(s.take(), Some(4));
/// assert_eq!(s.value(), None);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValueState<T> {
    value: Option<T>,
}

impl<T> Default for ValueState<T> {
    fn default() -> Self {
        Self { value: None }
    }
}

impl<T> ValueState<T> {
    /// The value, if one was set.
    pub fn value(&self) -> Option<&T> {
        self.value.as_ref()
    }

    /// Sets the value.
    pub fn update(&mut self, value: T) {
        self.value = Some(value);
    }

    /// The value, set with `f` first if there was none.
    pub fn get_or_insert_with(&mut self, f: impl FnOnce() -> T) -> &mut T {
        self.value.get_or_insert_with(f)
    }

    /// Removes and returns the value.
    pub fn take(&mut self) -> Option<T> {
        self.value.take()
    }

    /// Removes the value.
    pub fn clear(&mut self) {
        self.value = None;
    }
}

/// A list of values per key.
///
/// ```
/// use dataflow_state::ListState;
/// let mut s = ListState::default();
/// s.add("a");
/// s.add_all(["b", "c"]);
/// assert_eq!(s.get(), &["a", "b", "c"]);
/// s.update(vec!["z"]);
/// assert_eq!(s.len(), 1);
/// s.clear();
/// assert!(s.is_empty());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListState<T> {
    items: Vec<T>,
}

impl<T> Default for ListState<T> {
    fn default() -> Self {
        Self { items: Vec::new() }
    }
}

impl<T> ListState<T> {
    /// Appends a value.
    pub fn add(&mut self, value: T) {
        self.items.push(value);
    }

    /// Appends every value.
    pub fn add_all(&mut self, values: impl IntoIterator<Item = T>) {
        self.items.extend(values);
    }

    /// The values, in the order they were added.
    pub fn get(&self) -> &[T] {
        &self.items
    }

    /// Replaces the values.
    pub fn update(&mut self, values: Vec<T>) {
        self.items = values;
    }

    /// Removes and returns every value.
    pub fn take(&mut self) -> Vec<T> {
        std::mem::take(&mut self.items)
    }

    /// The number of values.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there is no value.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Removes every value.
    pub fn clear(&mut self) {
        self.items.clear();
    }
}

/// A map per key (from user keys to values).
///
/// ```
/// use dataflow_state::MapState;
/// let mut s = MapState::default();
/// s.put("x".to_string(), 1);
/// *s.entry("x".to_string()).or_insert(0) += 1;
/// assert_eq!(s.get("x"), Some(&2));
/// assert!(s.contains("x"));
/// assert_eq!(s.remove("x"), Some(2));
/// assert!(s.is_empty());
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(bound(serialize = "K: Serialize + Eq + Hash, V: Serialize"))]
#[serde(bound(deserialize = "K: Deserialize<'de> + Eq + Hash, V: Deserialize<'de>"))]
pub struct MapState<K, V> {
    map: HashMap<K, V>,
}

impl<K, V> Default for MapState<K, V> {
    fn default() -> Self {
        Self { map: HashMap::new() }
    }
}

impl<K: Eq + Hash, V> MapState<K, V> {
    /// The value of `key`.
    pub fn get<Q: Eq + Hash + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: std::borrow::Borrow<Q>,
    {
        self.map.get(key)
    }

    /// Sets the value of `key`, returning the old one.
    pub fn put(&mut self, key: K, value: V) -> Option<V> {
        self.map.insert(key, value)
    }

    /// The entry of `key`, to read or change in place.
    pub fn entry(&mut self, key: K) -> std::collections::hash_map::Entry<'_, K, V> {
        self.map.entry(key)
    }

    /// Removes `key`, returning its value.
    pub fn remove<Q: Eq + Hash + ?Sized>(&mut self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
    {
        self.map.remove(key)
    }

    /// Whether `key` has a value.
    pub fn contains<Q: Eq + Hash + ?Sized>(&self, key: &Q) -> bool
    where
        K: std::borrow::Borrow<Q>,
    {
        self.map.contains_key(key)
    }

    /// Every (user key, value) pair, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.map.iter()
    }

    /// The number of user keys.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.map.clear();
    }
}

/// How a [`ReducingState`] combines two values; implemented by a (usually
/// zero-sized) type named in the state's type, so the state needs no
/// function value.
///
/// ```
/// use dataflow_state::{Reducer, ReducingState};
/// struct Longest;
/// impl Reducer<String> for Longest {
///     fn reduce(a: String, b: String) -> String { if b.len() > a.len() { b } else { a } }
/// }
/// let mut s = ReducingState::<String, Longest>::default();
/// s.add("ab".into());
/// s.add("abc".into());
/// s.add("x".into());
/// assert_eq!(s.get().map(String::as_str), Some("abc"));
/// ```
pub trait Reducer<T> {
    /// Combines the current value with a new one.
    fn reduce(current: T, value: T) -> T;
}

/// A [`Reducer`] that adds.
///
/// ```
/// let mut s = dataflow_state::ReducingState::<u64, dataflow_state::Sum>::default();
/// s.add(2);
/// s.add(3);
/// assert_eq!(s.get(), Some(&5));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Sum;

impl<T: std::ops::Add<Output = T>> Reducer<T> for Sum {
    fn reduce(current: T, value: T) -> T {
        current + value
    }
}

/// A [`Reducer`] that keeps the smallest value.
///
/// ```
/// let mut s = dataflow_state::ReducingState::<i32, dataflow_state::Min>::default();
/// s.add(4);
/// s.add(-1);
/// assert_eq!(s.get(), Some(&-1));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Min;

impl<T: Ord> Reducer<T> for Min {
    fn reduce(current: T, value: T) -> T {
        current.min(value)
    }
}

/// A [`Reducer`] that keeps the largest value.
///
/// ```
/// let mut s = dataflow_state::ReducingState::<i32, dataflow_state::Max>::default();
/// s.add(4);
/// s.add(9);
/// assert_eq!(s.get(), Some(&9));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Max;

impl<T: Ord> Reducer<T> for Max {
    fn reduce(current: T, value: T) -> T {
        current.max(value)
    }
}

/// One value per key, combined with every added value by the reducer `R`.
#[derive(Serialize, Deserialize)]
#[serde(bound(serialize = "T: Serialize", deserialize = "T: Deserialize<'de>"))]
pub struct ReducingState<T, R> {
    value: Option<T>,
    #[serde(skip)]
    _r: std::marker::PhantomData<fn() -> R>,
}

impl<T: Clone, R> Clone for ReducingState<T, R> {
    fn clone(&self) -> Self {
        Self { value: self.value.clone(), _r: std::marker::PhantomData }
    }
}

impl<T, R> Default for ReducingState<T, R> {
    fn default() -> Self {
        Self { value: None, _r: std::marker::PhantomData }
    }
}

impl<T: std::fmt::Debug, R> std::fmt::Debug for ReducingState<T, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReducingState").field("value", &self.value).finish()
    }
}

impl<T, R: Reducer<T>> ReducingState<T, R> {
    /// Combines `value` into the state.
    pub fn add(&mut self, value: T) {
        self.value = Some(match self.value.take() {
            Some(current) => R::reduce(current, value),
            None => value,
        });
    }

    /// The combined value, if any value was added.
    pub fn get(&self) -> Option<&T> {
        self.value.as_ref()
    }

    /// Removes the value.
    pub fn clear(&mut self) {
        self.value = None;
    }
}

/// How an [`AggregatingState`] folds inputs into an accumulator and reads a
/// result from it (Flink's `AggregateFunction`), implemented by a type named
/// in the state's type.
///
/// ```
/// use dataflow_state::{AggregateFunction, AggregatingState};
/// struct Average;
/// impl AggregateFunction for Average {
///     type In = f64;
///     type Acc = (f64, u64);
///     type Out = f64;
///     fn create() -> (f64, u64) { (0.0, 0) }
///     fn add(acc: &mut (f64, u64), v: f64) { acc.0 += v; acc.1 += 1; }
///     fn merge(a: (f64, u64), b: (f64, u64)) -> (f64, u64) { (a.0 + b.0, a.1 + b.1) }
///     fn result(acc: &(f64, u64)) -> f64 { acc.0 / acc.1 as f64 }
/// }
/// let mut s = AggregatingState::<Average>::default();
/// s.add(1.0);
/// s.add(3.0);
/// assert_eq!(s.get(), Some(2.0));
/// ```
pub trait AggregateFunction {
    /// What is added.
    type In;
    /// The accumulator kept per key.
    type Acc;
    /// What is read.
    type Out;
    /// A new, empty accumulator.
    fn create() -> Self::Acc;
    /// Adds a value to the accumulator.
    fn add(acc: &mut Self::Acc, value: Self::In);
    /// Combines two accumulators (when session windows merge).
    fn merge(a: Self::Acc, b: Self::Acc) -> Self::Acc;
    /// The result of the accumulator.
    fn result(acc: &Self::Acc) -> Self::Out;
}

/// One accumulator per key, fed and read through the aggregate function `A`.
#[derive(Serialize, Deserialize)]
#[serde(bound(serialize = "A::Acc: Serialize", deserialize = "A::Acc: Deserialize<'de>"))]
pub struct AggregatingState<A: AggregateFunction> {
    acc: Option<A::Acc>,
}

impl<A: AggregateFunction> Clone for AggregatingState<A>
where
    A::Acc: Clone,
{
    fn clone(&self) -> Self {
        Self { acc: self.acc.clone() }
    }
}

impl<A: AggregateFunction> Default for AggregatingState<A> {
    fn default() -> Self {
        Self { acc: None }
    }
}

impl<A: AggregateFunction> std::fmt::Debug for AggregatingState<A>
where
    A::Acc: std::fmt::Debug,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AggregatingState").field("acc", &self.acc).finish()
    }
}

impl<A: AggregateFunction> AggregatingState<A> {
    /// Adds a value.
    pub fn add(&mut self, value: A::In) {
        A::add(self.acc.get_or_insert_with(A::create), value);
    }

    /// The result, if any value was added.
    pub fn get(&self) -> Option<A::Out> {
        self.acc.as_ref().map(A::result)
    }

    /// Removes the accumulator.
    pub fn clear(&mut self) {
        self.acc = None;
    }
}
