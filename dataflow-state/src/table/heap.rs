//! The in-memory table: typed states in a hash map per key group, each
//! behind an `Arc` so a snapshot shares them and the next write to a group
//! copies it (copy-on-write).

use super::{Entry, TableSpec, decode, encode, entry_key};
use crate::backend::format::{EntrySink, SnapshotView};
use crate::backend::{Snapshot, StateKey};
use crate::{Key, StateError, StateValue};
use rustc_hash::FxHashMap;
use std::sync::Arc;

type Group<K, S> = Arc<FxHashMap<K, Entry<S>>>;

pub(super) struct HeapTable<K, S> {
    spec: TableSpec,
    /// One map per key group of the range, in order.
    groups: Vec<Group<K, S>>,
    /// The processing time expiry is measured in.
    pub(super) now: i64,
}

impl<K: Key, S: StateValue> HeapTable<K, S> {
    pub(super) fn new(spec: TableSpec) -> Self {
        let groups = spec.range.iter().map(|_| Arc::default()).collect();
        Self { spec, groups, now: i64::MIN }
    }

    pub(super) fn spec(&self) -> &TableSpec {
        &self.spec
    }

    #[inline]
    fn group(&mut self, key: &K) -> Result<&mut FxHashMap<K, Entry<S>>, StateError> {
        let kg = self.spec.key_group(key)?;
        let group = &mut self.groups[(kg - self.spec.range.start) as usize];
        Ok(Arc::make_mut(group))
    }

    #[inline]
    pub(super) fn with_state<R, E: From<StateError>>(
        &mut self,
        key: &K,
        f: impl FnOnce(&mut S) -> Result<(R, bool), E>,
    ) -> Result<R, E> {
        let (now, expires) = (self.now, self.spec.expiry(self.now));
        let group = self.group(key)?;
        match group.get_mut(key) {
            Some(entry) => {
                if entry.expired(now) {
                    entry.state = S::default();
                }
                entry.expires = expires;
                let (r, empty) = f(&mut entry.state)?;
                if empty {
                    group.remove(key);
                }
                Ok(r)
            }
            None => {
                let mut state = S::default();
                let (r, empty) = f(&mut state)?;
                if !empty {
                    group.insert(key.clone(), Entry { state, expires });
                }
                Ok(r)
            }
        }
    }

    pub(super) fn get(&mut self, key: &K) -> Result<Option<S>, StateError> {
        let kg = self.spec.key_group(key)?;
        let entry = self.groups[(kg - self.spec.range.start) as usize].get(key);
        Ok(entry.filter(|e| !e.expired(self.now)).map(|e| e.state.clone()))
    }

    /// Shares every non-empty key group with the snapshot.
    pub(super) fn snapshot(&mut self) -> Result<Snapshot, StateError> {
        let groups = (self.spec.range.iter().zip(&self.groups))
            .filter(|(_, g)| !g.is_empty())
            .map(|(kg, g)| (kg, g.clone()))
            .collect();
        Ok(Snapshot::new(Box::new(HeapView { spec: self.spec.clone(), groups })))
    }

    pub(super) fn restore_entry(&mut self, key: &StateKey, value: &[u8]) -> Result<(), StateError> {
        let kg = u32::from(key.key_group());
        let (k, entry) = decode::<K, S>(&self.spec, kg, value)?;
        self.group(&k)?.insert(k, entry);
        Ok(())
    }
}

/// Frozen key groups, encoded when written.
struct HeapView<K, S> {
    spec: TableSpec,
    groups: Vec<(u32, Group<K, S>)>,
}

impl<K: Key, S: StateValue> SnapshotView for HeapView<K, S> {
    fn for_each(&self, f: &mut EntrySink<'_>) -> Result<(), StateError> {
        let mut entries = Vec::new();
        for (kg, group) in &self.groups {
            entries.clear();
            for (k, s) in group.iter() {
                entries.push((entry_key(*kg, k), encode(&self.spec, *kg, k, s)?));
            }
            entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            for (k, v) in &entries {
                f(k.as_bytes(), v)?;
            }
        }
        Ok(())
    }
}
