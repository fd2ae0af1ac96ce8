//! The in-memory backend: an ordered map of bytes per key group, each
//! behind an `Arc` so that a snapshot's synchronous part only clones
//! pointers; the first write to a key group after a snapshot copies that
//! key group's map (copy-on-write), the snapshot keeps the old one.

use super::format::{EntrySink, Snapshot, SnapshotView};
use super::{StateBackend, StateKey};
use crate::{KeyGroupRange, StateError};
use std::collections::BTreeMap;
use std::sync::Arc;

type Group = BTreeMap<Vec<u8>, Vec<u8>>;

/// State in memory, snapshotted copy-on-write per key group.
///
/// ```
/// use dataflow_state::backend::{MemoryBackend, StateBackend, StateKey};
/// use dataflow_state::KeyGroupRange;
/// let mut b = MemoryBackend::new();
/// let k = StateKey::new(0, 0, b"a", b"");
/// b.put(&k, b"1").unwrap();
/// let snap = b.snapshot(KeyGroupRange::new(0, 1)).unwrap();
/// b.put(&k, b"2").unwrap(); // after the snapshot: not in it
/// let mut seen = Vec::new();
/// snap.for_each(&mut |_, v| { seen.push(v.to_vec()); Ok(()) }).unwrap();
/// assert_eq!(seen, [b"1".to_vec()]);
/// ```
#[derive(Debug, Default)]
pub struct MemoryBackend {
    groups: Vec<Option<Arc<Group>>>,
}

impl MemoryBackend {
    /// An empty backend.
    pub fn new() -> Self {
        Self::default()
    }

    fn group(&self, kg: u16) -> Option<&Group> {
        self.groups.get(kg as usize).and_then(|g| g.as_deref())
    }

    fn group_mut(&mut self, kg: u16) -> &mut Group {
        let i = kg as usize;
        if self.groups.len() <= i {
            self.groups.resize(i + 1, None);
        }
        Arc::make_mut(self.groups[i].get_or_insert_with(Default::default))
    }

    /// How many entries are stored.
    pub fn len(&self) -> usize {
        self.groups.iter().flatten().map(|g| g.len()).sum()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl StateBackend for MemoryBackend {
    fn get(&self, key: &StateKey) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self.group(key.key_group()).and_then(|g| g.get(key.as_bytes())).cloned())
    }

    fn put(&mut self, key: &StateKey, value: &[u8]) -> Result<(), StateError> {
        self.group_mut(key.key_group()).insert(key.as_bytes().to_vec(), value.to_vec());
        Ok(())
    }

    fn delete(&mut self, key: &StateKey) -> Result<(), StateError> {
        if self.group(key.key_group()).is_some_and(|g| g.contains_key(key.as_bytes())) {
            self.group_mut(key.key_group()).remove(key.as_bytes());
        }
        Ok(())
    }

    fn scan_prefix(&self, prefix: &[u8], f: &mut dyn FnMut(&[u8], &[u8]) -> bool) -> Result<(), StateError> {
        let groups: Box<dyn Iterator<Item = &Group>> = match prefix {
            [a, b, ..] => Box::new(self.group(u16::from_be_bytes([*a, *b])).into_iter()),
            _ => Box::new(self.groups.iter().flatten().map(|g| &**g)),
        };
        for g in groups {
            for (k, v) in g.range(prefix.to_vec()..) {
                if !k.starts_with(prefix) || !f(k, v) {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    fn snapshot(&mut self, range: KeyGroupRange) -> Result<Snapshot, StateError> {
        let groups =
            range.iter().filter_map(|kg| self.groups.get(kg as usize).and_then(|g| g.clone())).collect::<Vec<_>>();
        Ok(Snapshot::new(Box::new(MemoryView(groups))))
    }
}

/// The key groups of a snapshot, shared with the backend until it writes.
struct MemoryView(Vec<Arc<Group>>);

impl SnapshotView for MemoryView {
    fn for_each(&self, f: &mut EntrySink<'_>) -> Result<(), StateError> {
        for g in &self.0 {
            for (k, v) in g.iter() {
                f(k, v)?;
            }
        }
        Ok(())
    }
}
