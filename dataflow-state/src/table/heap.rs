//! The in-memory table: typed states in hash maps, in shards by the key's
//! (fast, in-process) hash: one shard while the state is small, doubling
//! whenever a shard passes [`SHARD_ENTRIES`] entries, so a shard (the unit
//! of copy-on-write) stays small while a small state stays one map (the
//! fastest to look up in).
//!
//! A snapshot freezes every non-empty shard behind an `Arc` that it shares
//! with the table; the table's next access to a frozen shard takes it
//! back (without copying if the snapshot was written by then, with one
//! copy of that shard if not). Shards not frozen are plain maps, so the
//! per-record path has no atomic operations, and it computes no key group
//! either: a key's key group is checked when the key is first inserted,
//! and computed again (to order the file) only by the asynchronous part of
//! a snapshot.
//!
//! Change tracking (incremental tables, `V = u64`; `V = ()` takes no room
//! and no time elsewhere) stamps each entry with the table's epoch (the
//! number of snapshots taken so far) on every access, and keeps the keys
//! whose state became empty in a set. A delta snapshot freezes the shards
//! as a full one does, takes the set, and moves on to the next epoch; its
//! asynchronous part writes only the entries stamped with the snapshot's
//! epoch, and a tombstone per key of the set. Why a stamp and not a set of
//! changed keys: the access path already holds the entry, so the stamp is
//! one store into memory it touches anyway, where a set would cost a hash
//! and an insert (and a clone of the key) per access; and moving to the
//! next epoch forgets every stamp at once, without a pass over the
//! entries. The price: the delta's asynchronous part scans every entry
//! (reading stamps, encoding only the changed ones), and each entry takes
//! 8 bytes more (often 0 more, in its padding). Deletions are rare next to
//! accesses (a state empties once per life), so their set costs little; a
//! key inserted again in the same epoch leaves it (its entry says what it
//! is now).

use super::{Entry, Expiry, Stamp, TableSpec, decode, decode_key, encode, encode_tombstone, entry_key};
use crate::backend::format::{EntrySink, SnapshotView};
use crate::backend::{Snapshot, StateKey};
use crate::{Key, StateError, StateValue, key_group};
use rustc_hash::{FxHashMap, FxHashSet};
use std::hash::BuildHasher;
use std::sync::Arc;

/// How many entries a shard (the unit copied on write after a snapshot)
/// holds before the shards double.
pub(super) const SHARD_ENTRIES: usize = 1 << 16;

type Map<K, S, X, V> = FxHashMap<K, Entry<S, X, V>>;

enum Group<K, S, X, V> {
    Owned(Map<K, S, X, V>),
    /// Shared with a snapshot that may still be writing it.
    Frozen(Arc<Map<K, S, X, V>>),
}

impl<K: Key, S: StateValue, X: Expiry, V: Stamp> Group<K, S, X, V> {
    #[inline]
    fn map(&self) -> &Map<K, S, X, V> {
        match self {
            Group::Owned(m) => m,
            Group::Frozen(m) => m,
        }
    }

    #[inline(always)]
    fn map_mut(&mut self) -> &mut Map<K, S, X, V> {
        match self {
            Group::Owned(m) => m,
            Group::Frozen(_) => self.thaw(),
        }
    }

    /// Takes a frozen shard back: without copying if the snapshot is done
    /// with it, with one copy if not.
    #[cold]
    fn thaw(&mut self) -> &mut Map<K, S, X, V> {
        if let Group::Frozen(m) = self {
            let m = std::mem::take(m);
            *self = Group::Owned(Arc::try_unwrap(m).unwrap_or_else(|shared| (*shared).clone()));
        }
        match self {
            Group::Owned(m) => m,
            Group::Frozen(m) => Arc::make_mut(m), // not reached: thawed above
        }
    }

    /// Shares the group with a snapshot.
    fn freeze(&mut self) -> Arc<Map<K, S, X, V>> {
        if let Group::Owned(m) = self {
            *self = Group::Frozen(Arc::new(std::mem::take(m)));
        }
        match self {
            Group::Frozen(m) => m.clone(),
            Group::Owned(m) => Arc::new(m.clone()), // not reached: frozen above
        }
    }
}

pub(super) struct HeapTable<K, S, X, V> {
    spec: TableSpec,
    /// The shards (a power of two of them); a key's is chosen by [`shard`].
    groups: Vec<Group<K, S, X, V>>,
    /// `groups.len() - 1`.
    mask: usize,
    /// The processing time expiry is measured in.
    pub(super) now: i64,
    /// The number of snapshots taken: what accesses stamp entries with
    /// (from 1: restored entries have stamp 0, unchanged).
    epoch: u64,
    /// With change tracking: the keys whose state became empty since the
    /// last snapshot (and was not created again since).
    deleted: FxHashSet<K>,
}

impl<K: Key, S: StateValue, X: Expiry, V: Stamp> HeapTable<K, S, X, V> {
    pub(super) fn new(spec: TableSpec) -> Self {
        Self {
            spec,
            groups: vec![Group::Owned(Map::default())],
            mask: 0,
            now: i64::MIN,
            epoch: 1,
            deleted: FxHashSet::default(),
        }
    }

    pub(super) fn spec(&self) -> &TableSpec {
        &self.spec
    }

    #[inline]
    fn group(&mut self, key: &K) -> &mut Map<K, S, X, V> {
        self.groups[shard(key, self.mask)].map_mut()
    }

    /// Doubles the shards, moving every entry to its new shard.
    #[cold]
    fn split(&mut self) {
        let n = self.groups.len() * 2;
        let old = std::mem::replace(&mut self.groups, (0..n).map(|_| Group::Owned(Map::default())).collect());
        self.mask = n - 1;
        for mut g in old {
            for (k, e) in std::mem::take(g.map_mut()) {
                self.group(&k).insert(k, e);
            }
        }
    }

    #[inline]
    pub(super) fn with_state<R, E: From<StateError>>(
        &mut self,
        key: &K,
        f: impl FnOnce(&mut S) -> Result<(R, bool), E>,
    ) -> Result<R, E> {
        let (now, expires, stamp) = (self.now, X::at(&self.spec, self.now), V::at(self.epoch));
        let group = self.groups[shard(key, self.mask)].map_mut();
        match group.get_mut(key) {
            Some(entry) => {
                if entry.expired(now) {
                    entry.state = S::default();
                }
                entry.expires = expires;
                let result = f(&mut entry.state);
                // After `f` (measured: a little cheaper than before it),
                // and also when it fails: it may have changed the state.
                entry.stamp = stamp;
                let (r, empty) = result?;
                if empty {
                    group.remove(key);
                    if V::TRACKS {
                        self.deleted.insert(key.clone());
                    }
                }
                Ok(r)
            }
            None => {
                self.spec.key_group(key)?;
                let mut state = S::default();
                let (r, empty) = f(&mut state)?;
                if !empty {
                    if V::TRACKS && !self.deleted.is_empty() {
                        self.deleted.remove(key);
                    }
                    group.insert(key.clone(), Entry { state, expires, stamp });
                    if group.len() > SHARD_ENTRIES {
                        self.split();
                    }
                }
                Ok(r)
            }
        }
    }

    pub(super) fn get(&mut self, key: &K) -> Result<Option<S>, StateError> {
        let entry = self.groups[shard(key, self.mask)].map().get(key);
        Ok(entry.filter(|e| !e.expired(self.now)).map(|e| e.state.clone()))
    }

    /// Freezes every non-empty shard and shares it with the snapshot; a
    /// delta (`changes`, with change tracking only) keeps only the
    /// entries changed in this epoch and adds the deletions. Either way
    /// the next epoch starts.
    pub(super) fn snapshot(&mut self, changes: bool) -> Result<Snapshot, StateError> {
        let groups = self.groups.iter_mut().filter(|g| !g.map().is_empty()).map(Group::freeze).collect();
        let deleted = std::mem::take(&mut self.deleted);
        let delta = (V::TRACKS && changes).then(|| Delta { epoch: self.epoch, deleted });
        self.epoch += 1;
        Ok(Snapshot::new(Box::new(HeapView { spec: self.spec.clone(), groups, delta })))
    }

    pub(super) fn restore_entry(&mut self, key: &StateKey, value: &[u8]) -> Result<(), StateError> {
        let kg = u32::from(key.key_group());
        let (k, entry) = decode::<K, S, X, V>(&self.spec, kg, value)?;
        self.spec.key_group(&k)?;
        let group = self.group(&k);
        group.insert(k, entry);
        if group.len() > SHARD_ENTRIES {
            self.split();
        }
        Ok(())
    }

    /// Applies a tombstone of a delta file.
    pub(super) fn restore_delete(&mut self, key: &StateKey, tombstone: &[u8]) -> Result<(), StateError> {
        let k: K = decode_key(&self.spec, u32::from(key.key_group()), tombstone)?;
        self.spec.key_group(&k)?;
        self.group(&k).remove(&k);
        Ok(())
    }

    /// Forgets the changes tracked so far: what the table holds now is the
    /// base of the next delta (after a restore).
    pub(super) fn forget_changes(&mut self) -> Result<(), StateError> {
        self.deleted.clear();
        self.epoch += 1;
        Ok(())
    }
}

/// The shard of `key` (of `mask + 1`): bits of its in-process hash that
/// the shard's own hash map does not use (it takes the lowest bits for the
/// bucket and the highest seven for its tags).
#[inline]
fn shard<K: Key>(key: &K, mask: usize) -> usize {
    if mask == 0 { 0 } else { (rustc_hash::FxBuildHasher.hash_one(key) >> 32) as usize & mask }
}

/// What a delta snapshot keeps: the entries stamped with `epoch`, and
/// tombstones for `deleted`.
struct Delta<K> {
    epoch: u64,
    deleted: FxHashSet<K>,
}

/// Entries (`None`: a tombstone) under their key bytes, to be sorted.
type Ordered<'a, K, S, X, V> = Vec<(StateKey, &'a K, Option<&'a Entry<S, X, V>>)>;

/// Frozen shards, ordered and encoded when written.
struct HeapView<K, S, X, V> {
    spec: TableSpec,
    groups: Vec<Arc<Map<K, S, X, V>>>,
    /// `None`: a full snapshot.
    delta: Option<Delta<K>>,
}

impl<K: Key, S: StateValue, X: Expiry, V: Stamp> SnapshotView for HeapView<K, S, X, V> {
    fn for_each(&self, f: &mut EntrySink<'_>) -> Result<(), StateError> {
        // Every entry's key bytes (key group first), sorted: the file's
        // order. `None`: a tombstone.
        let mut order: Ordered<'_, K, S, X, V> = Vec::new();
        let at = |k: &K| entry_key(key_group::assign_to_key_group(k, self.spec.max_parallelism), k);
        // A full snapshot writes every entry, a delta those stamped in its
        // epoch.
        let epoch = self.delta.as_ref().map(|d| d.epoch);
        for group in &self.groups {
            let changed = group.iter().filter(|(_, e)| epoch.is_none_or(|epoch| e.stamp.changed_in(epoch)));
            order.extend(changed.map(|(k, e)| (at(k), k, Some(e))));
        }
        if let Some(d) = &self.delta {
            order.extend(d.deleted.iter().map(|k| (at(k), k, None)));
        }
        order.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (key, k, e) in order {
            let kg = u32::from(key.key_group());
            let value = match e {
                Some(e) => encode(&self.spec, kg, k, e)?,
                None => encode_tombstone(&self.spec, kg, k)?,
            };
            f(key.as_bytes(), &value)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{KeyGroupRange, ValueState};

    /// Past `SHARD_ENTRIES` entries the shards double; every state stays
    /// reachable, and a snapshot taken before later writes (which thaw and
    /// split frozen shards) keeps its contents.
    #[test]
    fn shards_double_and_snapshots_stay_frozen() {
        let spec = TableSpec::new("t", 128, KeyGroupRange::new(0, 128));
        let mut t = HeapTable::<u64, ValueState<u64>, (), ()>::new(spec);
        let n = SHARD_ENTRIES as u64 + 1_000;
        let put = |t: &mut HeapTable<u64, ValueState<u64>, (), ()>, k: u64, v: u64| {
            t.with_state(&k, |s| {
                s.update(v);
                Ok::<_, StateError>(((), false))
            })
            .unwrap()
        };
        for k in 0..n {
            put(&mut t, k, k);
        }
        assert!(t.mask > 0, "no split after {n} keys");
        let snap = t.snapshot(false).unwrap();
        for k in n..3 * n {
            put(&mut t, k, k); // splits again, thawing frozen shards
        }
        put(&mut t, 0, 99);
        assert!(t.mask > 1);
        assert!(
            (0..3 * n)
                .all(|k| t.get(&k).unwrap().and_then(|s| s.value().copied()) == Some(if k == 0 { 99 } else { k }))
        );
        let mut seen = 0u64;
        snap.for_each(&mut |_, v| {
            let (_, k, s): (Option<i64>, u64, ValueState<u64>) = postcard::from_bytes(v).unwrap();
            assert_eq!(s.value(), Some(&k));
            seen += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, n);
    }
}
