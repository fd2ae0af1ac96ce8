//! Typed keyed state over any [`StateBackend`]: the state of the current
//! key, read and written through registered [`StateDescriptor`]s, encoded
//! with serde (postcard) and optionally expiring ([`Ttl`]).
//!
//! Layout per state kind (user key after `key group | state id | key`):
//!
//! * value, reducing, aggregating: one entry, empty user key;
//! * list: a length entry (empty user key) and one entry per element
//!   (user key: its index, `u64` big-endian), so appending does not
//!   rewrite the list;
//! * map: one entry per map key (user key: the map key's canonical bytes;
//!   the value holds key and value, so iteration needs no key decoding).
//!
//! With a TTL every stored value starts with its expiry time (`i64`,
//! big-endian); an expired value reads as absent and is deleted when read,
//! and a snapshot leaves it out (Flink's cleanup in full snapshots).
//!
//! ```
//! use dataflow_state::backend::MemoryBackend;
//! use dataflow_state::store::{KeyedStateStore, StateDescriptor};
//!
//! let mut store = KeyedStateStore::new(Box::new(MemoryBackend::new()), 128);
//! let clicks = store.register(&StateDescriptor::<u64>::new("clicks"));
//! store.set_current_key(&"alice".to_string());
//! assert_eq!(store.value(&clicks).unwrap(), None);
//! store.set_value(&clicks, &3).unwrap();
//! store.set_current_key(&"bob".to_string());
//! assert_eq!(store.value(&clicks).unwrap(), None);
//! store.set_current_key(&"alice".to_string());
//! assert_eq!(store.value(&clicks).unwrap(), Some(3));
//! ```

use crate::backend::format::{EntrySink, SnapshotView, StateInfo};
use crate::backend::{Snapshot, StateBackend, StateKey};
use crate::{Key, KeyGroupRange, StateError, key_group};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::time::Duration;

/// When a value's time to live restarts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TtlUpdate {
    /// When it is created or written (Flink's `OnCreateAndWrite`).
    OnCreateAndWrite,
    /// Also when it is read (Flink's `OnReadAndWrite`).
    OnReadAndWrite,
}

/// A state's time to live (Flink's `StateTtlConfig`): expired values are
/// never returned.
///
/// ```
/// use dataflow_state::store::{Ttl, TtlUpdate};
/// let ttl = Ttl::new(std::time::Duration::from_secs(60)).with_update(TtlUpdate::OnReadAndWrite);
/// assert_eq!(ttl.millis(), 60_000);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ttl {
    millis: i64,
    update: TtlUpdate,
}

impl Ttl {
    /// Values live `time_to_live` after they are written.
    pub fn new(time_to_live: Duration) -> Self {
        Self {
            millis: i64::try_from(time_to_live.as_millis()).unwrap_or(i64::MAX),
            update: TtlUpdate::OnCreateAndWrite,
        }
    }

    /// When the time to live restarts.
    pub fn with_update(self, update: TtlUpdate) -> Self {
        Self { update, ..self }
    }

    /// The time to live in milliseconds.
    pub fn millis(&self) -> i64 {
        self.millis
    }
}

/// Names a state and its value type; registering it in a store gives a
/// [`StateId`].
///
/// ```
/// use dataflow_state::store::{StateDescriptor, Ttl};
/// let d = StateDescriptor::<String>::new("last seen").with_ttl(Ttl::new(std::time::Duration::from_secs(3600)));
/// assert_eq!(d.name(), "last seen");
/// ```
#[derive(Clone, Debug)]
pub struct StateDescriptor<T> {
    name: String,
    ttl: Option<Ttl>,
    _t: PhantomData<fn() -> T>,
}

impl<T> StateDescriptor<T> {
    /// A state named `name` (unique in its operator).
    pub fn new(name: &str) -> Self {
        Self { name: name.to_string(), ttl: None, _t: PhantomData }
    }

    /// Values expire after `ttl`.
    pub fn with_ttl(self, ttl: Ttl) -> Self {
        Self { ttl: Some(ttl), ..self }
    }

    /// The state's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A registered state of values of type `T`.
#[derive(Debug)]
pub struct StateId<T> {
    id: u16,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for StateId<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for StateId<T> {}

struct Registered {
    info: StateInfo,
    ttl: Option<Ttl>,
}

/// Keyed state of one operator instance on a backend: set the current key,
/// then read and write its states.
pub struct KeyedStateStore {
    backend: Box<dyn StateBackend>,
    max_parallelism: u32,
    states: Vec<Registered>,
    by_name: HashMap<String, u16>,
    key_group: u16,
    key: Vec<u8>,
    now: i64,
}

impl std::fmt::Debug for KeyedStateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedStateStore").field("states", &self.by_name).field("key_group", &self.key_group).finish()
    }
}

const LEN: &[u8] = &[];

impl KeyedStateStore {
    /// A store on `backend` for keys spread over `max_parallelism` key groups.
    pub fn new(backend: Box<dyn StateBackend>, max_parallelism: u32) -> Self {
        Self {
            backend,
            max_parallelism,
            states: Vec::new(),
            by_name: HashMap::new(),
            key_group: 0,
            key: Vec::new(),
            now: 0,
        }
    }

    /// Registers a state (the same name again gives the same id).
    pub fn register<T>(&mut self, d: &StateDescriptor<T>) -> StateId<T> {
        let id = match self.by_name.get(&d.name) {
            Some(id) => *id,
            None => {
                let id = self.states.len() as u16;
                let info = StateInfo { id, name: d.name.clone(), value_type: std::any::type_name::<T>().to_string() };
                self.states.push(Registered { info, ttl: d.ttl });
                self.by_name.insert(d.name.clone(), id);
                id
            }
        };
        StateId { id, _t: PhantomData }
    }

    /// The registered states, as snapshot file headers describe them.
    pub fn infos(&self) -> Vec<StateInfo> {
        self.states.iter().map(|s| s.info.clone()).collect()
    }

    /// Makes `key` the current key.
    pub fn set_current_key<K: Key>(&mut self, key: &K) {
        self.key_group = key_group::assign_to_key_group(key, self.max_parallelism) as u16;
        self.key.clear();
        key.write_canonical(&mut self.key);
    }

    /// Sets the time TTLs are measured against (processing time, ms).
    pub fn set_now(&mut self, now: i64) {
        self.now = now;
    }

    fn entry(&self, id: u16, user_key: &[u8]) -> StateKey {
        StateKey::new(self.key_group, id, &self.key, user_key)
    }

    fn ttl(&self, id: u16) -> Option<Ttl> {
        self.states.get(id as usize).and_then(|s| s.ttl)
    }

    fn decode_err(&self, id: u16, e: impl std::fmt::Display) -> StateError {
        let state = self.states.get(id as usize).map_or_else(|| format!("#{id}"), |s| s.info.name.clone());
        StateError::Decode { state, key_group: u32::from(self.key_group), message: e.to_string() }
    }

    fn encode<T: Serialize>(&self, id: u16, v: &T) -> Result<Vec<u8>, StateError> {
        let mut out = Vec::new();
        if let Some(ttl) = self.ttl(id) {
            out.extend_from_slice(&self.now.saturating_add(ttl.millis).to_be_bytes());
        }
        postcard::to_extend(v, out).map_err(|e| self.decode_err(id, e))
    }

    /// Reads an entry: `None` if absent or expired (then deleted); renews
    /// the TTL on read if so configured.
    fn read<T: DeserializeOwned>(&mut self, id: u16, user_key: &[u8]) -> Result<Option<T>, StateError> {
        let key = self.entry(id, user_key);
        let Some(bytes) = self.backend.get(&key)? else { return Ok(None) };
        let payload = match self.ttl(id) {
            None => &bytes[..],
            Some(ttl) => {
                let Some((exp, rest)) = bytes.split_first_chunk::<8>() else {
                    return Err(self.decode_err(id, "a value shorter than its expiry time"));
                };
                if i64::from_be_bytes(*exp) <= self.now {
                    self.backend.delete(&key)?;
                    return Ok(None);
                }
                if ttl.update == TtlUpdate::OnReadAndWrite {
                    let mut renewed = self.now.saturating_add(ttl.millis).to_be_bytes().to_vec();
                    renewed.extend_from_slice(rest);
                    self.backend.put(&key, &renewed)?;
                }
                rest
            }
        };
        postcard::from_bytes(payload).map(Some).map_err(|e| self.decode_err(id, e))
    }

    fn write<T: Serialize>(&mut self, id: u16, user_key: &[u8], v: &T) -> Result<(), StateError> {
        let bytes = self.encode(id, v)?;
        let key = self.entry(id, user_key);
        self.backend.put(&key, &bytes)
    }

    /// The current key's value.
    pub fn value<T: DeserializeOwned>(&mut self, s: &StateId<T>) -> Result<Option<T>, StateError> {
        self.read(s.id, LEN)
    }

    /// Sets the current key's value.
    pub fn set_value<T: Serialize>(&mut self, s: &StateId<T>, v: &T) -> Result<(), StateError> {
        self.write(s.id, LEN, v)
    }

    /// Combines `v` into the current key's value with `f` (a reducing or
    /// aggregating state): `f(None, v)` for the first value.
    pub fn update<T, V>(&mut self, s: &StateId<T>, v: V, f: impl FnOnce(Option<T>, V) -> T) -> Result<(), StateError>
    where
        T: Serialize + DeserializeOwned,
    {
        let cur = self.value(s)?;
        self.set_value(s, &f(cur, v))
    }

    /// Removes the current key's entries of state `s` (value, list or map).
    pub fn clear<T>(&mut self, s: &StateId<T>) -> Result<(), StateError> {
        let prefix = self.entry(s.id, LEN);
        self.backend.delete_prefix(prefix.as_bytes())
    }

    /// Appends to the current key's list.
    pub fn list_add<T: Serialize>(&mut self, s: &StateId<T>, v: &T) -> Result<(), StateError> {
        let len: u64 = self.read(s.id, LEN)?.unwrap_or(0);
        self.write(s.id, &len.to_be_bytes(), v)?;
        self.write(s.id, LEN, &(len + 1))
    }

    /// The current key's list, in insertion order (expired elements left out).
    pub fn list<T: DeserializeOwned>(&mut self, s: &StateId<T>) -> Result<Vec<T>, StateError> {
        let Some(len) = self.read::<u64>(s.id, LEN)? else { return Ok(Vec::new()) };
        let mut out = Vec::with_capacity(len as usize);
        for i in 0..len {
            if let Some(v) = self.read(s.id, &i.to_be_bytes())? {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// Puts `uk → v` in the current key's map.
    pub fn map_put<UK: Key + Serialize, V: Serialize>(
        &mut self,
        s: &StateId<(UK, V)>,
        uk: &UK,
        v: &V,
    ) -> Result<(), StateError> {
        self.write(s.id, &canonical(uk), &(uk, v))
    }

    /// The value of `uk` in the current key's map.
    pub fn map_get<UK: Key + DeserializeOwned, V: DeserializeOwned>(
        &mut self,
        s: &StateId<(UK, V)>,
        uk: &UK,
    ) -> Result<Option<V>, StateError> {
        Ok(self.read::<(UK, V)>(s.id, &canonical(uk))?.map(|(_, v)| v))
    }

    /// Removes `uk` from the current key's map.
    pub fn map_remove<UK: Key, V>(&mut self, s: &StateId<(UK, V)>, uk: &UK) -> Result<(), StateError> {
        let key = self.entry(s.id, &canonical(uk));
        self.backend.delete(&key)
    }

    /// The current key's map entries, in the order of the map keys'
    /// canonical bytes (for integers: numeric order).
    pub fn map_entries<UK: DeserializeOwned, V: DeserializeOwned>(
        &mut self,
        s: &StateId<(UK, V)>,
    ) -> Result<Vec<(UK, V)>, StateError> {
        let prefix = self.entry(s.id, LEN);
        let mut raw = Vec::new();
        self.backend.scan_prefix(prefix.as_bytes(), &mut |k, v| {
            if k.len() > prefix.as_bytes().len() {
                raw.push((k[prefix.as_bytes().len()..].to_vec(), v.to_vec()));
            }
            true
        })?;
        let mut out = Vec::with_capacity(raw.len());
        for (uk, _) in raw {
            if let Some(e) = self.read(s.id, &uk)? {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// The synchronous part of a snapshot of `range` (see
    /// [`StateBackend::snapshot`]); write it with [`Snapshot::write_to`]
    /// and [`Self::infos`].
    ///
    /// Entries of states with a TTL that have expired at the current time
    /// ([`Self::set_now`]) are left out of the snapshot (not deleted from
    /// the backend). Each entry is judged by its own expiry time. A list
    /// stays consistent: its length entry is written (and renewed) with
    /// or after its elements, so it outlives them, and [`Self::list`]
    /// skips an element that is absent just as one that has expired.
    ///
    /// ```
    /// use dataflow_state::backend::MemoryBackend;
    /// use dataflow_state::store::{KeyedStateStore, StateDescriptor, Ttl};
    /// use dataflow_state::KeyGroupRange;
    /// let mut store = KeyedStateStore::new(Box::new(MemoryBackend::new()), 128);
    /// let ttl = Ttl::new(std::time::Duration::from_millis(10));
    /// let s = store.register(&StateDescriptor::<u8>::new("s").with_ttl(ttl));
    /// store.set_current_key(&1u32);
    /// store.set_value(&s, &1).unwrap();
    /// let count = |store: &mut KeyedStateStore| {
    ///     let mut n = 0;
    ///     let snap = store.snapshot(KeyGroupRange::new(0, 128)).unwrap();
    ///     snap.for_each(&mut |_, _| { n += 1; Ok(()) }).unwrap();
    ///     n
    /// };
    /// assert_eq!(count(&mut store), 1);
    /// store.set_now(10);
    /// assert_eq!(count(&mut store), 0, "expired at 10");
    /// ```
    pub fn snapshot(&mut self, range: KeyGroupRange) -> Result<Snapshot, StateError> {
        let inner = self.backend.snapshot(range)?;
        let ttl: Vec<bool> = self.states.iter().map(|s| s.ttl.is_some()).collect();
        if !ttl.contains(&true) {
            return Ok(inner);
        }
        Ok(Snapshot::new(Box::new(WithoutExpired { inner, ttl, now: self.now })))
    }

    /// Restores the entries of `range` from snapshot files.
    pub fn restore(&mut self, files: &[&std::path::Path], range: KeyGroupRange) -> Result<(), StateError> {
        self.backend.restore(files, range)
    }
}

/// A snapshot without the entries of TTL states (`ttl[state id]`) whose
/// expiry time is at or before `now`. A value too short to hold an expiry
/// time is kept (reading it reports the damage).
struct WithoutExpired {
    inner: Snapshot,
    ttl: Vec<bool>,
    now: i64,
}

impl SnapshotView for WithoutExpired {
    fn for_each(&self, f: &mut EntrySink<'_>) -> Result<(), StateError> {
        self.inner.for_each(&mut |k, v| {
            let id = k.get(2..4).and_then(|id| id.try_into().ok()).map(u16::from_be_bytes);
            let expired = id.and_then(|id| self.ttl.get(usize::from(id))).copied().unwrap_or(false)
                && v.first_chunk::<8>().is_some_and(|exp| i64::from_be_bytes(*exp) <= self.now);
            if expired { Ok(()) } else { f(k, v) }
        })
    }
}

fn canonical<K: Key>(k: &K) -> Vec<u8> {
    let mut v = Vec::new();
    k.write_canonical(&mut v);
    v
}
