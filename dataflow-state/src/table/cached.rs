//! The fjall table: entries in an fjall store, with a bounded write-back
//! cache of decoded states in front.
//!
//! A state read from the store (or created) stays in the cache; changes
//! are written back when the cache evicts (it keeps at most
//! `cached_keys` keys: when full it writes back every changed state and
//! drops about half) and when a snapshot starts. A state that became empty
//! is deleted from the store at the next write-back.
//!
//! Change tracking (incremental tables) records the keys written back or
//! deleted since the last snapshot, at the write-back: every change
//! reaches the store through a write-back (at an eviction or when the
//! snapshot starts), so this sees them all, and the per-record path (a
//! cache hit sets the flag it always set) costs nothing more; a write-back
//! already encodes the state and writes it to the LSM store, next to which
//! a hash insert is small. A delta snapshot writes back, takes the set and
//! pins the store; its asynchronous part reads each key of the set from
//! the pinned view, in key order: the state as of the snapshot, or a
//! tombstone if it has none. (A per-entry stamp, as in memory, would need
//! the store's entries scanned or stamped on disk; the cache forgets
//! entries, so it cannot hold them either.)

use super::{Entry, Expiry, FjallStateConfig, TableSpec, decode, decode_key, encode, encode_tombstone, entry_key};
use crate::backend::format::{EntrySink, SnapshotView};
use crate::backend::{FjallBackend, FjallConfig, FjallPinned, Snapshot, StateBackend, StateKey};
use crate::{Key, StateError, StateValue, key_group};
use rustc_hash::{FxHashMap, FxHashSet};

struct Cached<S> {
    entry: Entry<S, i64>,
    dirty: bool,
    /// Whether the store may hold an entry for the key (it was read from
    /// there or written back): only then does dropping the state need a
    /// deletion. A state created and dropped between two write-backs
    /// (a window's pane, say) never reaches the store.
    stored: bool,
}

pub(super) struct CachedTable<K, S> {
    spec: TableSpec,
    store: FjallBackend,
    cache: FxHashMap<K, Cached<S>>,
    /// Keys whose state became empty since the last write-back.
    deleted: FxHashSet<K>,
    /// With change tracking: the keys written back or deleted since the
    /// last snapshot.
    changed: Option<FxHashSet<K>>,
    capacity: usize,
    /// The processing time expiry is measured in.
    pub(super) now: i64,
}

impl<K: Key, S: StateValue> CachedTable<K, S> {
    pub(super) fn open(config: &FjallStateConfig, spec: TableSpec, name: &str) -> Result<Self, StateError> {
        let path = config.dir.join(name);
        if path.exists() {
            std::fs::remove_dir_all(&path).map_err(|e| StateError::io(&path, e))?;
        }
        let store = FjallBackend::open(FjallConfig {
            path,
            cache_bytes: config.cache_bytes,
            write_buffer_bytes: config.write_buffer_bytes,
        })?;
        let capacity = config.cached_keys.max(1);
        let changed = spec.incremental.then(FxHashSet::default);
        Ok(Self {
            spec,
            store,
            cache: FxHashMap::default(),
            deleted: FxHashSet::default(),
            changed,
            capacity,
            now: i64::MIN,
        })
    }

    pub(super) fn spec(&self) -> &TableSpec {
        &self.spec
    }

    /// The state of `key` as stored (not looking in the cache), if it has
    /// not expired; and whether the store holds an entry for it that no
    /// pending deletion covers (expired or not).
    fn load(&self, key: &K) -> Result<(Option<S>, bool), StateError> {
        if self.deleted.contains(key) {
            return Ok((None, false));
        }
        let kg = self.spec.key_group(key)?;
        match self.store.get(&entry_key(kg, key))? {
            Some(bytes) => {
                let entry = decode::<K, S, i64, ()>(&self.spec, kg, &bytes)?.1;
                Ok((Some(entry).filter(|e| !e.expired(self.now)).map(|e| e.state), true))
            }
            None => Ok((None, false)),
        }
    }

    #[inline]
    pub(super) fn with_state<R, E: From<StateError>>(
        &mut self,
        key: &K,
        f: impl FnOnce(&mut S) -> Result<(R, bool), E>,
    ) -> Result<R, E> {
        let expires = i64::at(&self.spec, self.now);
        if let Some(c) = self.cache.get_mut(key) {
            if c.entry.expired(self.now) {
                c.entry.state = S::default();
            }
            c.entry.expires = expires;
            let (r, empty) = f(&mut c.entry.state)?;
            c.dirty = true;
            if empty {
                let stored = c.stored;
                self.cache.remove(key);
                if stored {
                    self.deleted.insert(key.clone());
                }
            }
            return Ok(r);
        }
        // An expired stored state is overwritten or deleted below.
        let (stored, in_store) = self.load(key)?;
        let mut state = stored.unwrap_or_default();
        let (r, empty) = f(&mut state)?;
        if empty {
            // Nothing to delete (nor a tombstone to write) for a key the
            // store does not hold.
            if in_store {
                self.deleted.insert(key.clone());
            }
        } else {
            // A deletion still pending means the store holds the old entry.
            let stored = self.deleted.remove(key) || in_store;
            let entry = Entry { state, expires, stamp: () };
            self.cache.insert(key.clone(), Cached { entry, dirty: true, stored });
            if self.cache.len() > self.capacity {
                self.evict()?;
            }
        }
        Ok(r)
    }

    pub(super) fn get(&mut self, key: &K) -> Result<Option<S>, StateError> {
        match self.cache.get(key) {
            Some(c) => Ok(Some(&c.entry).filter(|e| !e.expired(self.now)).map(|e| e.state.clone())),
            None => Ok(self.load(key)?.0),
        }
    }

    /// Writes every changed state and every deletion to the store (and,
    /// with change tracking, records their keys).
    fn write_back(&mut self) -> Result<(), StateError> {
        let Self { spec, store, cache, deleted, changed, .. } = self;
        for key in deleted.drain() {
            let kg = spec.key_group(&key)?;
            store.delete(&entry_key(kg, &key))?;
            if let Some(changed) = changed {
                changed.insert(key);
            }
        }
        for (key, c) in cache.iter_mut().filter(|(_, c)| c.dirty) {
            let kg = spec.key_group(key)?;
            store.put(&entry_key(kg, key), &encode(spec, kg, key, &c.entry)?)?;
            (c.dirty, c.stored) = (false, true);
            if let Some(changed) = changed {
                changed.insert(key.clone());
            }
        }
        Ok(())
    }

    /// Writes back, then drops about half of the cache (whichever keys the
    /// hash order puts first).
    fn evict(&mut self) -> Result<(), StateError> {
        self.write_back()?;
        let mut keep = false;
        self.cache.retain(|_, _| {
            keep = !keep;
            keep
        });
        Ok(())
    }

    /// Writes back and pins the store: all of it, or (`changes`, with
    /// change tracking only) the keys changed since the last snapshot,
    /// with tombstones for those without a state now. Either way the
    /// tracking starts over.
    pub(super) fn snapshot(&mut self, changes: bool) -> Result<Snapshot, StateError> {
        self.write_back()?;
        let changed = self.changed.as_mut().map(std::mem::take);
        match changed {
            Some(keys) if changes => {
                Ok(Snapshot::new(Box::new(ChangedView { spec: self.spec.clone(), keys, pinned: self.store.pin() })))
            }
            _ => self.store.snapshot(self.spec.range),
        }
    }

    pub(super) fn restore_entry(&mut self, key: &StateKey, value: &[u8]) -> Result<(), StateError> {
        self.store.put(key, value)
    }

    /// Applies a tombstone of a delta file.
    pub(super) fn restore_delete(&mut self, key: &StateKey, tombstone: &[u8]) -> Result<(), StateError> {
        let k: K = decode_key(&self.spec, u32::from(key.key_group()), tombstone)?;
        self.cache.remove(&k);
        self.deleted.remove(&k);
        self.store.delete(key)
    }

    /// Forgets the changes tracked so far: what the table holds now is the
    /// base of the next delta (after a restore).
    pub(super) fn forget_changes(&mut self) -> Result<(), StateError> {
        self.write_back()?;
        if let Some(changed) = &mut self.changed {
            changed.clear();
        }
        Ok(())
    }
}

/// The keys changed since the previous snapshot, read from a pinned view
/// of the store when written.
struct ChangedView<K> {
    spec: TableSpec,
    keys: FxHashSet<K>,
    pinned: FjallPinned,
}

impl<K: Key> SnapshotView for ChangedView<K> {
    fn for_each(&self, f: &mut EntrySink<'_>) -> Result<(), StateError> {
        let mp = self.spec.max_parallelism;
        let mut order: Vec<(StateKey, &K)> =
            self.keys.iter().map(|k| (entry_key(key_group::assign_to_key_group(k, mp), k), k)).collect();
        order.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (key, k) in order {
            match self.pinned.get(key.as_bytes())? {
                Some(value) => f(key.as_bytes(), &value)?,
                None => f(key.as_bytes(), &encode_tombstone(&self.spec, u32::from(key.key_group()), k)?)?,
            }
        }
        Ok(())
    }
}
