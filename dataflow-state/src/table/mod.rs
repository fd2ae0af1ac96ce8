//! State tables: where a keyed operator keeps its typed per-key state while
//! it runs, on the backend the job chose ([`StateBackendConfig`]).
//!
//! A [`StateTable`] maps each key to the operator's state for it (a
//! [`StateValue`]: one primitive or a tuple of them) and takes snapshots in
//! the one file format every backend shares (see
//! [`backend::format`](crate::backend::format)), so a snapshot taken on one
//! backend restores on the other, and any key-group range of it restores
//! alone. Each key's state is one entry: key
//! `key group | STATE_ID | key's canonical bytes`, value
//! `(expiry, key, state)` encoded with postcard (the expiry is `None`
//! without a TTL).
//!
//! With a time to live ([`TableSpec::ttl`], processing time, set with
//! [`StateTable::set_now`]) a key's state expires `ttl` after it was last
//! handed out (every access may write, so every access renews it); an
//! expired state is never handed out (the key starts empty), is dropped
//! when its key is next accessed, and is left out of snapshots.
//!
//! * In memory ([`StateBackendConfig::InMemory`], the default): typed
//!   values in hash maps, sharded by the key's hash. The synchronous part
//!   of a snapshot freezes each shard behind an `Arc` (one pointer per
//!   shard); the first access to a frozen shard after it copies that shard
//!   if the snapshot still holds it (copy-on-write), so the asynchronous
//!   part encodes a frozen view while processing goes on.
//! * On fjall ([`StateBackendConfig::Fjall`]): the entries live in an LSM store
//!   on disk; a bounded cache of decoded states
//!   ([`FjallStateConfig::cached_keys`]) sits in front of it and writes
//!   changed states back when it evicts and when a snapshot starts. The
//!   synchronous part of a snapshot writes back what changed and pins an
//!   fjall snapshot; the asynchronous part reads the pinned view.
//!
//! Snapshots may carry extra entries under other state ids (the keyed
//! operator's timers); [`StateTable::restore`] hands those back.
//!
//! ```
//! use dataflow_state::table::{StateBackendConfig, StateTable, TableSpec};
//! use dataflow_state::{KeyGroupRange, ValueState};
//!
//! let spec = TableSpec::new("counts", 128, KeyGroupRange::new(0, 128));
//! let mut t = StateTable::<String, ValueState<u64>>::open(&StateBackendConfig::InMemory, spec.clone(), "op").unwrap();
//! t.with_state(&"a".to_string(), |s| {
//!     *s.get_or_insert_with(|| 0) += 1;
//!     Ok::<_, dataflow_state::StateError>(((), false))
//! })
//! .unwrap();
//! let snap = t.snapshot(Vec::new()).unwrap(); // the synchronous part
//! let file = tempfile::tempdir().unwrap().keep().join("counts");
//! snap.write_to(&file).unwrap(); // the asynchronous part
//!
//! let mut u = StateTable::<String, ValueState<u64>>::open(&StateBackendConfig::InMemory, spec, "op").unwrap();
//! u.restore(&[&file]).unwrap();
//! assert_eq!(u.get(&"a".to_string()).unwrap().and_then(|s| s.value().copied()), Some(1));
//! ```

mod cached;
mod heap;
mod merge;
mod ttl;

use crate::backend::format::{self, StateInfo};
use crate::backend::{FjallConfig, Snapshot, StateKey};
use crate::store::Ttl;
use crate::{Key, KeyGroupRange, StateError, StateValue, key_group};
use std::path::{Path, PathBuf};

/// The state id of the per-key state in a table's entries.
pub const STATE_ID: u16 = 1;
/// The state id of a keyed operator's timers in its snapshots.
pub const TIMERS_ID: u16 = 2;

/// Which backend keeps a job's keyed state (`env.set_state_backend(..)`).
///
/// ```
/// use dataflow_state::table::{StateBackendConfig, FjallStateConfig};
/// let b = StateBackendConfig::Fjall(FjallStateConfig::new("/tmp/job-state"));
/// assert_ne!(b, StateBackendConfig::default());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum StateBackendConfig {
    /// Typed values in memory, copy-on-write per key group (the default).
    #[default]
    InMemory,
    /// An fjall LSM store per operator subtask, under a directory.
    Fjall(FjallStateConfig),
}

/// How the fjall backend is set up for a job.
///
/// ```
/// use dataflow_state::table::FjallStateConfig;
/// let c = FjallStateConfig { cached_keys: 1_000, ..FjallStateConfig::new("/tmp/state") };
/// assert_eq!(c.cache_bytes, 32 << 20);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FjallStateConfig {
    /// The directory under which every operator subtask gets its store.
    pub dir: PathBuf,
    /// Each store's block cache, in bytes.
    pub cache_bytes: u64,
    /// Each store's write buffer (memtable) size, in bytes.
    pub write_buffer_bytes: u64,
    /// How many keys' decoded states each table keeps in memory.
    pub cached_keys: usize,
}

impl FjallStateConfig {
    /// Stores under `dir` with fjall's defaults of [`FjallConfig::new`] and
    /// 65 536 cached keys per table.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        let d = FjallConfig::new("");
        Self {
            dir: dir.into(),
            cache_bytes: d.cache_bytes,
            write_buffer_bytes: d.write_buffer_bytes,
            cached_keys: 1 << 16,
        }
    }
}

/// What a table is for: the name written in its snapshots' headers, and
/// the key groups it holds.
///
/// ```
/// use dataflow_state::{table::TableSpec, KeyGroupRange};
/// let s = TableSpec::new("window", 128, KeyGroupRange::new(0, 64));
/// assert_eq!(s.range.len(), 64);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableSpec {
    /// The state's name.
    pub name: String,
    /// The number of key groups.
    pub max_parallelism: u32,
    /// The key groups this table holds (its subtask's).
    pub range: KeyGroupRange,
    /// How long a key's state lives after its last access (`None`:
    /// forever).
    pub ttl: Option<Ttl>,
}

impl TableSpec {
    /// A spec, without a time to live.
    pub fn new(name: &str, max_parallelism: u32, range: KeyGroupRange) -> Self {
        Self { name: name.to_string(), max_parallelism, range, ttl: None }
    }

    fn infos<S>(&self) -> Vec<StateInfo> {
        vec![
            StateInfo { id: STATE_ID, name: self.name.clone(), value_type: std::any::type_name::<S>().to_string() },
            StateInfo { id: TIMERS_ID, name: format!("{}/timers", self.name), value_type: "timers".to_string() },
        ]
    }

    /// The key group of `key`, checked to be in this table's range.
    fn key_group<K: Key>(&self, key: &K) -> Result<u32, StateError> {
        let kg = key_group::assign_to_key_group(key, self.max_parallelism);
        if self.range.contains(kg) {
            Ok(kg)
        } else {
            Err(StateError::ForeignKeyGroup { key_group: kg, start: self.range.start, end: self.range.end })
        }
    }

    fn decode_err(&self, key_group: u32, e: impl std::fmt::Display) -> StateError {
        StateError::Decode { state: self.name.clone(), key_group, message: e.to_string() }
    }
}

/// The synchronous part of a table's snapshot; [`Self::write_to`] is the
/// asynchronous part (any thread; the table keeps changing meanwhile).
#[derive(Debug)]
pub struct StateSnapshot {
    snapshot: Snapshot,
    infos: Vec<StateInfo>,
}

impl StateSnapshot {
    /// Writes the snapshot file; returns the number of entries.
    pub fn write_to(&self, file: &Path) -> Result<u64, StateError> {
        self.snapshot.write_to(file, &self.infos)
    }
}

/// An entry as stored: key bytes and value bytes.
pub type RawEntry = (Vec<u8>, Vec<u8>);

/// A keyed operator's per-key state on the job's backend.
pub struct StateTable<K, S> {
    inner: Inner<K, S>,
}

enum Inner<K, S> {
    Heap(heap::HeapTable<K, S, ()>),
    HeapTtl(heap::HeapTable<K, S, i64>),
    Cached(Box<cached::CachedTable<K, S>>),
}

/// Runs `$body` with `$t` bound to whichever table `$inner` holds.
macro_rules! each_table {
    ($inner:expr, $t:ident => $body:expr) => {
        match $inner {
            Inner::Heap($t) => $body,
            Inner::HeapTtl($t) => $body,
            Inner::Cached($t) => $body,
        }
    };
}

impl<K: Key, S: StateValue> StateTable<K, S> {
    /// Opens an empty table on `backend`; `name` tells apart the stores of
    /// different operator subtasks (fjall: a directory under the backend's,
    /// emptied first).
    pub fn open(backend: &StateBackendConfig, spec: TableSpec, name: &str) -> Result<Self, StateError> {
        let inner = match backend {
            // Without a TTL, entries take no room for an expiry.
            StateBackendConfig::InMemory if spec.ttl.is_none() => Inner::Heap(heap::HeapTable::new(spec)),
            StateBackendConfig::InMemory => Inner::HeapTtl(heap::HeapTable::new(spec)),
            StateBackendConfig::Fjall(c) => Inner::Cached(Box::new(cached::CachedTable::open(c, spec, name)?)),
        };
        Ok(Self { inner })
    }

    /// Calls `f` with the state of `key` (empty if it has none); `f` says
    /// whether the state is empty afterwards, and then it is dropped.
    #[inline]
    pub fn with_state<R, E: From<StateError>>(
        &mut self,
        key: &K,
        f: impl FnOnce(&mut S) -> Result<(R, bool), E>,
    ) -> Result<R, E> {
        each_table!(&mut self.inner, t => t.with_state(key, f))
    }

    /// Calls `f` with each item's key, the item and the key's state (a
    /// batch at once: one dispatch on the table's kind for all of them);
    /// `f` says whether the state is empty afterwards.
    #[inline]
    pub fn with_states<T, E: From<StateError>>(
        &mut self,
        items: impl Iterator<Item = (K, T)>,
        mut f: impl FnMut(&K, T, &mut S) -> Result<bool, E>,
    ) -> Result<(), E> {
        each_table!(&mut self.inner, t => {
            for (key, item) in items {
                t.with_state(&key, |s| Ok::<_, E>(((), f(&key, item, s)?)))?;
            }
            Ok(())
        })
    }

    /// Sets the processing time that state expiry is measured in.
    #[inline]
    pub fn set_now(&mut self, now: i64) {
        each_table!(&mut self.inner, t => t.now = now)
    }

    /// A copy of the state of `key`, if it has one (and it has not expired).
    pub fn get(&mut self, key: &K) -> Result<Option<S>, StateError> {
        each_table!(&mut self.inner, t => t.get(key))
    }

    /// The synchronous part of a snapshot of the table, with `extra`
    /// entries (sorted by key, under another state id) added.
    pub fn snapshot(&mut self, extra: Vec<RawEntry>) -> Result<StateSnapshot, StateError> {
        let (snapshot, spec, now) = each_table!(&mut self.inner, t => (t.snapshot()?, t.spec(), t.now));
        let infos = spec.infos::<S>();
        let snapshot = if spec.ttl.is_some() { ttl::without_expired(snapshot, now) } else { snapshot };
        Ok(StateSnapshot { snapshot: merge::with_extra(snapshot, extra), infos })
    }

    /// Adds the entries of this table's key groups found in snapshot
    /// files (of any backend); returns the entries of other state ids (the
    /// timers), in key order per file.
    pub fn restore(&mut self, files: &[&Path]) -> Result<Vec<RawEntry>, StateError> {
        let mut extra = Vec::new();
        for file in files {
            let range = each_table!(&self.inner, t => t.spec().range);
            format::read_file(file, range, &mut |k, v| {
                let key = StateKey::from_bytes(k.to_vec()).ok_or_else(|| StateError::Corrupt {
                    file: file.display().to_string(),
                    reason: "an entry key shorter than its header".into(),
                })?;
                if state_id(k) != STATE_ID {
                    extra.push((k.to_vec(), v.to_vec()));
                    return Ok(());
                }
                each_table!(&mut self.inner, t => t.restore_entry(&key, v))
            })?;
        }
        Ok(extra)
    }
}

/// The state id of an entry's key bytes.
pub fn state_id(key: &[u8]) -> u16 {
    match key {
        [_, _, a, b, ..] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    }
}

/// The entry of `key`'s state: its key bytes.
fn entry_key<K: Key>(key_group: u32, key: &K) -> StateKey {
    let mut canonical = Vec::with_capacity(16);
    key.write_canonical(&mut canonical);
    StateKey::new(key_group as u16, STATE_ID, &canonical, &[])
}

/// The expiry of a state without a time to live.
const NEVER: i64 = i64::MAX;

/// When a state expires: `()` in tables without a TTL (so entries take no
/// room for it), an `i64` (`NEVER` for none) in tables with one.
trait Expiry: Copy + Send + Sync + 'static {
    /// The expiry of a state accessed at `now`.
    fn at(spec: &TableSpec, now: i64) -> Self;
    /// Whether the state is expired at `now`.
    fn expired(self, now: i64) -> bool;
    /// As written in a snapshot.
    fn stored(self) -> Option<i64>;
    /// As read from a snapshot.
    fn from_stored(expires: Option<i64>) -> Self;
}

impl Expiry for () {
    #[inline]
    fn at(_: &TableSpec, _: i64) -> Self {}
    #[inline]
    fn expired(self, _: i64) -> bool {
        false
    }
    fn stored(self) -> Option<i64> {
        None
    }
    fn from_stored(_: Option<i64>) -> Self {}
}

impl Expiry for i64 {
    #[inline]
    fn at(spec: &TableSpec, now: i64) -> Self {
        spec.ttl.map_or(NEVER, |t| now.saturating_add(t.millis()).min(NEVER - 1))
    }
    #[inline]
    fn expired(self, now: i64) -> bool {
        self != NEVER && self <= now
    }
    fn stored(self) -> Option<i64> {
        (self != NEVER).then_some(self)
    }
    fn from_stored(expires: Option<i64>) -> Self {
        expires.unwrap_or(NEVER)
    }
}

/// A key's state and when it expires.
#[derive(Clone)]
struct Entry<S, X> {
    state: S,
    expires: X,
}

impl<S, X: Expiry> Entry<S, X> {
    #[inline]
    fn expired(&self, now: i64) -> bool {
        self.expires.expired(now)
    }
}

/// The entry of `key`'s state: its value bytes.
fn encode<K: Key, S: StateValue, X: Expiry>(
    spec: &TableSpec,
    key_group: u32,
    key: &K,
    entry: &Entry<S, X>,
) -> Result<Vec<u8>, StateError> {
    postcard::to_stdvec(&(entry.expires.stored(), key, &entry.state)).map_err(|e| spec.decode_err(key_group, e))
}

/// Decodes an entry's value.
fn decode<K: Key, S: StateValue, X: Expiry>(
    spec: &TableSpec,
    key_group: u32,
    bytes: &[u8],
) -> Result<(K, Entry<S, X>), StateError> {
    let (expires, key, state): (Option<i64>, K, S) =
        postcard::from_bytes(bytes).map_err(|e| spec.decode_err(key_group, e))?;
    Ok((key, Entry { state, expires: X::from_stored(expires) }))
}
