//! The fjall table: entries in an fjall store, with a bounded write-back
//! cache of decoded states in front.
//!
//! A state read from the store (or created) stays in the cache; changes
//! are written back when the cache evicts (it keeps at most
//! `cached_keys` keys: when full it writes back every changed state and
//! drops about half) and when a snapshot starts. A state that became empty
//! is deleted from the store at the next write-back.

use super::{Entry, Expiry, FjallStateConfig, TableSpec, decode, encode, entry_key};
use crate::backend::{FjallBackend, FjallConfig, Snapshot, StateBackend, StateKey};
use crate::{Key, StateError, StateValue};
use rustc_hash::{FxHashMap, FxHashSet};

struct Cached<S> {
    entry: Entry<S, i64>,
    dirty: bool,
}

pub(super) struct CachedTable<K, S> {
    spec: TableSpec,
    store: FjallBackend,
    cache: FxHashMap<K, Cached<S>>,
    /// Keys whose state became empty since the last write-back.
    deleted: FxHashSet<K>,
    capacity: usize,
    /// The processing time expiry is measured in.
    pub(super) now: i64,
}

impl<K: Key, S: StateValue> CachedTable<K, S> {
    pub(super) fn open(config: &FjallStateConfig, spec: TableSpec, name: &str) -> Result<Self, StateError> {
        let path = config.dir.join(name);
        if path.exists() {
            std::fs::remove_dir_all(&path)
                .map_err(|e| StateError::Io { file: path.display().to_string(), message: e.to_string() })?;
        }
        let store = FjallBackend::open(FjallConfig {
            path,
            cache_bytes: config.cache_bytes,
            write_buffer_bytes: config.write_buffer_bytes,
        })?;
        let capacity = config.cached_keys.max(1);
        Ok(Self { spec, store, cache: FxHashMap::default(), deleted: FxHashSet::default(), capacity, now: i64::MIN })
    }

    pub(super) fn spec(&self) -> &TableSpec {
        &self.spec
    }

    /// The state of `key` as stored (not looking in the cache), if it has
    /// not expired.
    fn load(&self, key: &K) -> Result<Option<S>, StateError> {
        if self.deleted.contains(key) {
            return Ok(None);
        }
        let kg = self.spec.key_group(key)?;
        match self.store.get(&entry_key(kg, key))? {
            Some(bytes) => Ok(Some(decode::<K, S, i64>(&self.spec, kg, &bytes)?.1)
                .filter(|e| !e.expired(self.now))
                .map(|e| e.state)),
            None => Ok(None),
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
                self.cache.remove(key);
                self.deleted.insert(key.clone());
            }
            return Ok(r);
        }
        // An expired stored state is overwritten or deleted below.
        let stored = self.load(key)?;
        let mut state = stored.unwrap_or_default();
        let (r, empty) = f(&mut state)?;
        if empty {
            self.deleted.insert(key.clone());
        } else {
            self.deleted.remove(key);
            self.cache.insert(key.clone(), Cached { entry: Entry { state, expires }, dirty: true });
            if self.cache.len() > self.capacity {
                self.evict()?;
            }
        }
        Ok(r)
    }

    pub(super) fn get(&mut self, key: &K) -> Result<Option<S>, StateError> {
        match self.cache.get(key) {
            Some(c) => Ok(Some(&c.entry).filter(|e| !e.expired(self.now)).map(|e| e.state.clone())),
            None => self.load(key),
        }
    }

    /// Writes every changed state and every deletion to the store.
    fn write_back(&mut self) -> Result<(), StateError> {
        for key in self.deleted.drain() {
            let kg = self.spec.key_group(&key)?;
            self.store.delete(&entry_key(kg, &key))?;
        }
        for (key, c) in self.cache.iter_mut().filter(|(_, c)| c.dirty) {
            let kg = self.spec.key_group(key)?;
            self.store.put(&entry_key(kg, key), &encode(&self.spec, kg, key, &c.entry)?)?;
            c.dirty = false;
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

    pub(super) fn snapshot(&mut self) -> Result<Snapshot, StateError> {
        self.write_back()?;
        self.store.snapshot(self.spec.range)
    }

    pub(super) fn restore_entry(&mut self, key: &StateKey, value: &[u8]) -> Result<(), StateError> {
        self.store.put(key, value)
    }
}
