//! State backends: where keyed state lives, as ordered bytes.
//!
//! A backend stores entries under a [`StateKey`] laid out as
//! `key group (u16, big-endian) | state id (u16, big-endian) | key | user key`
//! so that one key group (or a range of them) is one contiguous scan, and so
//! are one key's entries of one state (a list's elements, a map's entries).
//! Typed state (value, list, map, …) is encoded on top with serde.
//!
//! Two backends implement [`StateBackend`]:
//!
//! * [`MemoryBackend`]: ordered maps per key group, snapshotted
//!   copy-on-write (the synchronous part clones a pointer per key group);
//! * `FjallBackend` (module `fjall`): an LSM store on local disk, snapshotted
//!   from a pinned consistent view; memory is bounded by configuration.
//!
//! A snapshot's synchronous part ([`StateBackend::snapshot`]) returns a
//! [`Snapshot`] that no longer depends on the backend: writing it out (the
//! asynchronous part, [`Snapshot::write_to`]) can run on another thread
//! while the backend keeps changing. Snapshot files have one format for
//! every backend (see [`mod@format`]), so state can move between backends, and
//! restoring takes any key-group range out of any number of files.
//!
//! ```
//! use dataflow_state::backend::{MemoryBackend, StateBackend, StateKey};
//! let mut b = MemoryBackend::new();
//! let k = StateKey::new(7, 1, b"alice", b"");
//! b.put(&k, b"42").unwrap();
//! assert_eq!(b.get(&k).unwrap().as_deref(), Some(&b"42"[..]));
//! ```

mod fjall;
pub mod format;
mod memory;

pub use self::fjall::{FjallBackend, FjallConfig, FjallPinned};
pub use format::{EntrySink, Snapshot, SnapshotEntry};
pub use memory::MemoryBackend;

use crate::{KeyGroupRange, StateError};
use std::path::Path;

/// The bytes of an entry's key: `key group | state id | key | user key`.
///
/// ```
/// use dataflow_state::backend::StateKey;
/// let k = StateKey::new(3, 9, b"k", b"u");
/// assert_eq!(k.as_bytes(), [0, 3, 0, 9, b'k', b'u']);
/// assert_eq!(k.key_group(), 3);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StateKey(Vec<u8>);

impl StateKey {
    /// The key of an entry of state `state` for the key whose canonical
    /// bytes are `key`, in `key_group`; `user_key` is a map's key or a
    /// list's index (empty for a value).
    pub fn new(key_group: u16, state: u16, key: &[u8], user_key: &[u8]) -> Self {
        let mut v = Vec::with_capacity(4 + key.len() + user_key.len());
        v.extend_from_slice(&key_group.to_be_bytes());
        v.extend_from_slice(&state.to_be_bytes());
        v.extend_from_slice(key);
        v.extend_from_slice(user_key);
        Self(v)
    }

    /// A key from its bytes (as stored); `None` if too short to hold a key
    /// group and a state id.
    pub fn from_bytes(bytes: Vec<u8>) -> Option<Self> {
        (bytes.len() >= 4).then_some(Self(bytes))
    }

    /// The stored bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The key group.
    pub fn key_group(&self) -> u16 {
        u16::from_be_bytes([self.0[0], self.0[1]])
    }
}

/// Where keyed state lives: an ordered map of bytes, with snapshots.
///
/// Every method that can fail returns a [`StateError`]; a backend never
/// panics on what it reads back.
pub trait StateBackend: Send {
    /// The value stored under `key`.
    fn get(&self, key: &StateKey) -> Result<Option<Vec<u8>>, StateError>;

    /// Stores `value` under `key`.
    fn put(&mut self, key: &StateKey, value: &[u8]) -> Result<(), StateError>;

    /// Removes `key`.
    fn delete(&mut self, key: &StateKey) -> Result<(), StateError>;

    /// Calls `f` with every entry whose key starts with `prefix`, in key
    /// order; stops early if `f` returns false.
    fn scan_prefix(&self, prefix: &[u8], f: &mut dyn FnMut(&[u8], &[u8]) -> bool) -> Result<(), StateError>;

    /// Removes every entry whose key starts with `prefix`.
    fn delete_prefix(&mut self, prefix: &[u8]) -> Result<(), StateError> {
        let mut keys = Vec::new();
        self.scan_prefix(prefix, &mut |k, _| {
            keys.push(k.to_vec());
            true
        })?;
        for k in keys {
            if let Some(k) = StateKey::from_bytes(k) {
                self.delete(&k)?;
            }
        }
        Ok(())
    }

    /// The synchronous part of a snapshot: a consistent view of the entries
    /// of `range`, independent of later changes. Keep it short; write the
    /// result out with [`Snapshot::write_to`] (the asynchronous part).
    fn snapshot(&mut self, range: KeyGroupRange) -> Result<Snapshot, StateError>;

    /// Adds the entries of `range` found in the snapshot files `files`
    /// (written by any backend) to this backend. Delta files (of a state
    /// table's incremental snapshots) are refused with a
    /// [`StateError::BrokenChain`]: their entries mean something only to
    /// the table that reads their chain.
    fn restore(&mut self, files: &[&Path], range: KeyGroupRange) -> Result<(), StateError> {
        for file in files {
            if !format::read_file_header(file)?.is_full() {
                return Err(StateError::BrokenChain {
                    file: file.display().to_string(),
                    reason: "a delta file; restore it with its chain through a state table".into(),
                });
            }
            format::read_file(file, range, &mut |k, v| {
                let key = StateKey::from_bytes(k.to_vec()).ok_or_else(|| StateError::Corrupt {
                    file: file.display().to_string(),
                    reason: "an entry key shorter than its header".into(),
                })?;
                self.put(&key, v)
            })?;
        }
        Ok(())
    }
}
