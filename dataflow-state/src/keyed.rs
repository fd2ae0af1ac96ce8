//! Keyed state primitives: the values an operator keeps per key.
//!
//! An `#[operator]` function names them as parameters
//! (`count: &mut ValueState<u64>`); the runtime hands it the state of the
//! current record's key. For now every key's state lives in a hash map
//! owned by the operator instance (partitioned with the stream, so each key
//! is in exactly one instance); the state backends replace that map without
//! changing these types' methods.

use std::collections::HashMap;
use std::hash::Hash;

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
#[derive(Clone, Debug, PartialEq, Eq)]
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
#[derive(Clone, Debug, PartialEq, Eq)]
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
#[derive(Clone, Debug)]
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
