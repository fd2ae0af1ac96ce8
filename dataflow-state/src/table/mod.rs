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
//! # Incremental snapshots
//!
//! With [`TableSpec::incremental`] a table tracks what changed since its
//! previous snapshot, and [`StateTable::snapshot_changes`] writes a
//! *delta*: the states accessed since (every access may write: the
//! closure gets `&mut S`), a *tombstone* for each key whose state was
//! dropped since (value: the byte `0xFF`, then the key, postcard; a state
//! entry's value starts with `0` or `1`), and the extra entries in full
//! (timers are small, and a file with all of them lets a restore take
//! them from the newest file alone). Each file's header says what it is
//! (its chain: full or delta, the writer's key groups, its sequence
//! number, the sequence it follows and its chain's full file's), so a
//! restore takes a flat list of files of any subtasks in any order and
//! rebuilds each chain: full file, then deltas in order, later entries
//! replacing earlier ones, tombstones deleting.
//!
//! How changes are tracked:
//!
//! * in memory, each entry carries the table's epoch (the number of
//!   snapshots taken) of its last access: one store into the entry the
//!   access holds anyway, where a set of changed keys would cost a hash
//!   insert and a key clone per access; a snapshot starts the next epoch,
//!   forgetting every stamp at once. Deleted keys go to a set (a state
//!   empties once in its life, far less often than it is accessed). A
//!   delta freezes the shards as a full snapshot does; its asynchronous
//!   part scans them and encodes only the entries stamped in its epoch.
//! * on fjall, the table records the keys it writes back or deletes
//!   (every change reaches the store through a write-back, at an eviction
//!   or when a snapshot starts), so a cache hit costs nothing more; a
//!   delta writes back, takes the set and pins the store, and its
//!   asynchronous part reads those keys from the pinned view (absent: a
//!   tombstone).
//!
//! Without [`TableSpec::incremental`] entries carry no stamp (a
//! zero-sized type) and the per-record path is unchanged.
//!
//! ```
//! use dataflow_state::table::{SnapshotKind, StateBackendConfig, StateTable, TableSpec};
//! use dataflow_state::{KeyGroupRange, StateError, ValueState};
//!
//! let spec = TableSpec::new("counts", 128, KeyGroupRange::new(0, 128)).with_incremental(true);
//! let mut t = StateTable::<u32, ValueState<u64>>::open(&StateBackendConfig::InMemory, spec.clone(), "op").unwrap();
//! let mut count = |t: &mut StateTable<u32, ValueState<u64>>, k: u32| {
//!     t.with_state(&k, |s| Ok::<_, StateError>((*s.get_or_insert_with(|| 0) += 1, false))).unwrap()
//! };
//! (0..1000).for_each(|k| count(&mut t, k));
//! let dir = tempfile::tempdir().unwrap();
//! let (full, delta) = (dir.path().join("full"), dir.path().join("delta"));
//! assert_eq!(t.snapshot(Vec::new()).unwrap().write_to(&full).unwrap(), 1000);
//! count(&mut t, 7);
//! let snap = t.snapshot_changes(Vec::new()).unwrap();
//! assert_eq!(snap.kind(), SnapshotKind::Delta);
//! assert_eq!(snap.write_to(&delta).unwrap(), 1); // only key 7
//!
//! let mut u = StateTable::<u32, ValueState<u64>>::open(&StateBackendConfig::InMemory, spec, "op").unwrap();
//! u.restore(&[&delta, &full]).unwrap(); // any order: the headers say
//! assert_eq!(u.get(&7).unwrap().and_then(|s| s.value().copied()), Some(2));
//! ```
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
mod canonical;
mod chain;
mod entry;
mod heap;
mod merge;
pub(crate) mod ttl;

use canonical::CANONICAL;
use entry::{Entry, Expiry, Stamp, TOMBSTONE, decode, decode_key, encode, encode_tombstone, entry_key};

pub use crate::backend::format::SnapshotKind;

use crate::backend::format::{self, ChainInfo, StateInfo};
use crate::backend::{FjallConfig, Snapshot, StateKey};
use crate::{Key, KeyGroupRange, StateError, StateValue, Ttl, key_group};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

/// The state id of the per-key state in a table's entries.
pub(crate) const STATE_ID: u16 = 1;
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
    /// Stores under `dir` with a 32 MiB block cache and a 16 MiB write
    /// buffer each, and 65 536 cached keys per table.
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
    /// Whether the table tracks its changes, so that
    /// [`StateTable::snapshot_changes`] can write only what changed since
    /// the previous snapshot (off by default: the per-record path of a
    /// table without it is the same as before).
    pub incremental: bool,
}

impl TableSpec {
    /// A spec, without a time to live or change tracking.
    pub fn new(name: &str, max_parallelism: u32, range: KeyGroupRange) -> Self {
        Self { name: name.to_string(), max_parallelism, range, ttl: None, incremental: false }
    }

    /// The spec with change tracking on or off ([`Self::incremental`]).
    ///
    /// ```
    /// use dataflow_state::{table::TableSpec, KeyGroupRange};
    /// assert!(TableSpec::new("t", 128, KeyGroupRange::new(0, 128)).with_incremental(true).incremental);
    /// ```
    pub fn with_incremental(self, incremental: bool) -> Self {
        Self { incremental, ..self }
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
///
/// It tells its table whether its file was written: a delta taken after
/// a snapshot whose write failed, or that was dropped unwritten, would
/// follow a file that does not exist, so the table's next
/// [`StateTable::snapshot_changes`] is a full one instead.
#[derive(Debug)]
pub struct StateSnapshot {
    snapshot: Snapshot,
    infos: Vec<StateInfo>,
    chain: ChainInfo,
    written: Arc<AtomicU8>,
}

/// [`StateSnapshot::written`] states.
const PENDING: u8 = 0;
const WRITTEN: u8 = 1;
const LOST: u8 = 2;

impl StateSnapshot {
    /// Writes the snapshot file; returns the number of entries.
    pub fn write_to(&self, file: &Path) -> Result<u64, StateError> {
        let written = self.snapshot.write_file(file, &self.infos, Some(&self.chain));
        match written {
            Ok(_) => self.written.store(WRITTEN, Ordering::Release),
            Err(_) => _ = self.written.compare_exchange(PENDING, LOST, Ordering::AcqRel, Ordering::Acquire),
        }
        written
    }

    /// Full or delta.
    pub fn kind(&self) -> SnapshotKind {
        self.chain.kind
    }
}

impl Drop for StateSnapshot {
    fn drop(&mut self) {
        // Dropped unwritten: the next delta must not follow it.
        _ = self.written.compare_exchange(PENDING, LOST, Ordering::AcqRel, Ordering::Acquire);
    }
}

/// An entry as stored: key bytes and value bytes.
pub type RawEntry = (Vec<u8>, Vec<u8>);

/// A keyed operator's per-key state on the job's backend.
pub struct StateTable<K, S> {
    inner: Inner<K, S>,
    /// The sequence number of the next snapshot.
    next: u64,
    /// The last snapshot (or the newest restored file) of the chain the
    /// next delta would extend, and whether its file was written (`None`:
    /// restored, so it exists); `None`: the next snapshot is full.
    last: Option<(ChainInfo, Option<Arc<AtomicU8>>)>,
}

enum Inner<K, S> {
    Heap(heap::HeapTable<K, S, (), ()>),
    HeapTtl(heap::HeapTable<K, S, i64, ()>),
    HeapTracked(heap::HeapTable<K, S, (), u64>),
    HeapTtlTracked(heap::HeapTable<K, S, i64, u64>),
    Cached(Box<cached::CachedTable<K, S>>),
}

/// Runs `$body` with `$t` bound to whichever table `$inner` holds.
macro_rules! each_table {
    ($inner:expr, $t:ident => $body:expr) => {
        match $inner {
            Inner::Heap($t) => $body,
            Inner::HeapTtl($t) => $body,
            Inner::HeapTracked($t) => $body,
            Inner::HeapTtlTracked($t) => $body,
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
            // Without a TTL, entries take no room for an expiry; without
            // change tracking, none for a stamp.
            StateBackendConfig::InMemory => match (spec.ttl.is_some(), spec.incremental) {
                (false, false) => Inner::Heap(heap::HeapTable::new(spec)),
                (true, false) => Inner::HeapTtl(heap::HeapTable::new(spec)),
                (false, true) => Inner::HeapTracked(heap::HeapTable::new(spec)),
                (true, true) => Inner::HeapTtlTracked(heap::HeapTable::new(spec)),
            },
            StateBackendConfig::Fjall(c) => Inner::Cached(Box::new(cached::CachedTable::open(c, spec, name)?)),
        };
        Ok(Self { inner, next: 0, last: None })
    }

    fn spec(&self) -> &TableSpec {
        each_table!(&self.inner, t => t.spec())
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

    /// The synchronous part of a full snapshot of the table, with `extra`
    /// entries (sorted by key, under another state id) added. It starts a
    /// new chain: the next [`Self::snapshot_changes`] is relative to it.
    pub fn snapshot(&mut self, extra: Vec<RawEntry>) -> Result<StateSnapshot, StateError> {
        self.take(extra, false, false)
    }

    /// The synchronous part of a delta snapshot: the states changed since
    /// the previous snapshot (full or delta; every access through
    /// [`Self::with_state`] or [`Self::with_states`] counts as a change),
    /// a tombstone for each key whose state was dropped since, and
    /// `extra` in full (sorted by key, under another state id: the timers,
    /// complete in every file).
    ///
    /// It is a full snapshot instead ([`StateSnapshot::kind`] says which)
    /// when there is nothing for a delta to follow: without change
    /// tracking ([`TableSpec::incremental`]), for a table's first
    /// snapshot, after a restore that did not continue one chain of this
    /// table's key groups (a rescale, old files), and after a snapshot
    /// whose file was not written (its [`StateSnapshot::write_to`] failed,
    /// or it was dropped unwritten).
    pub fn snapshot_changes(&mut self, extra: Vec<RawEntry>) -> Result<StateSnapshot, StateError> {
        self.take(extra, true, false)
    }

    /// The synchronous part of a full snapshot in the canonical,
    /// self-describing encoding (a savepoint's: CBOR, so a state type that
    /// serde can bridge, such as one with a new `#[serde(default)]` field,
    /// reads it back), with
    /// `extra` entries as they are. It is no link of a chain: the next
    /// [`Self::snapshot_changes`] is a full snapshot.
    pub fn snapshot_canonical(&mut self, extra: Vec<RawEntry>) -> Result<StateSnapshot, StateError> {
        let snapshot = self.take(extra, false, true)?;
        self.last = None;
        Ok(snapshot)
    }

    fn take(&mut self, extra: Vec<RawEntry>, changes: bool, canonical: bool) -> Result<StateSnapshot, StateError> {
        let follows = self
            .last
            .as_ref()
            .filter(|(_, written)| written.as_ref().is_none_or(|w| w.load(Ordering::Acquire) != LOST));
        let chain = match follows {
            Some((last, _)) if changes && self.spec().incremental => last.next_delta(),
            _ => ChainInfo::full(self.spec().range, self.next),
        };
        let delta = chain.kind == SnapshotKind::Delta;
        self.last = None; // until the snapshot is taken
        let (snapshot, spec, now) = each_table!(&mut self.inner, t => (t.snapshot(delta)?, t.spec(), t.now));
        let infos = spec.infos::<S>();
        // A delta keeps its changed states even if they expired: restored,
        // they are expired all the same (never handed out, dropped when
        // accessed, left out of the next full snapshot).
        let snapshot = if spec.ttl.is_some() && !delta { ttl::without_expired(snapshot, now) } else { snapshot };
        let snapshot = if canonical { canonical::canonical::<K, S>(snapshot, spec.clone()) } else { snapshot };
        let written = Arc::new(AtomicU8::new(PENDING));
        self.next = chain.sequence + 1;
        self.last = Some((chain, Some(written.clone())));
        Ok(StateSnapshot { snapshot: merge::with_extra(snapshot, extra), infos, chain, written })
    }

    /// Restores the entries of this table's key groups from snapshot files
    /// (of any backend, of any subtasks: a flat list in any order);
    /// returns the entries of other state ids (the timers) of the newest
    /// file of each chain, in key order per file.
    ///
    /// The files' headers group them into chains (a full file and the
    /// deltas after it, of one writer) and order each
    /// chain; each chain is applied from its full file on (later entries
    /// replace earlier ones, tombstones delete), and its extra entries come
    /// from its newest file only (so timers deleted since an earlier file
    /// do not come back). Files without a chain (format version 1, or
    /// written by a bytes backend) are full files on their own. Chains of
    /// writers whose key groups miss this table's are not read. A delta
    /// whose full file or parent is not among the files, two files at one
    /// place of a chain, or two chains whose key groups overlap, are a
    /// [`StateError::BrokenChain`] naming a file, before anything is
    /// restored; a damaged file is a [`StateError::Corrupt`] naming it.
    ///
    /// When the files are one chain of this table's key groups (a restore
    /// at the same parallelism), the next [`Self::snapshot_changes`]
    /// continues that chain; otherwise it is a full snapshot.
    pub fn restore(&mut self, files: &[&Path]) -> Result<Vec<RawEntry>, StateError> {
        let range = self.spec().range;
        let plan = chain::plan(files, range)?;
        let mut extra = Vec::new();
        for step in &plan.steps {
            let file = step.file;
            let delta = !step.header.is_full();
            format::read_file(file, range, &mut |k, v| {
                if state_id(k) != STATE_ID {
                    if step.newest {
                        extra.push((k.to_vec(), v.to_vec()));
                    }
                    return Ok(());
                }
                let key = StateKey::from_bytes(k.to_vec())
                    .ok_or_else(|| StateError::corrupt(file, "an entry key shorter than its header"))?;
                match v.first() {
                    Some(&TOMBSTONE) if delta => each_table!(&mut self.inner, t => t.restore_delete(&key, v)),
                    Some(&CANONICAL) => {
                        let v = canonical::to_postcard::<K, S>(self.spec(), u32::from(key.key_group()), v)?;
                        each_table!(&mut self.inner, t => t.restore_entry(&key, &v))
                    }
                    _ => each_table!(&mut self.inner, t => t.restore_entry(&key, v)),
                }
            })?;
        }
        each_table!(&mut self.inner, t => t.forget_changes()?);
        self.next = self.next.max(plan.max_sequence.map_or(0, |s| s + 1));
        self.last = plan.continues.map(|c| (c, None));
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

#[cfg(test)]
mod tests;
