//! Entries as ordered bytes, and the snapshot file format.
//!
//! Every entry of keyed state is stored under a [`StateKey`] laid out as
//! `key group (u16, big-endian) | state id (u16, big-endian) | key | user key`
//! so that one key group (or a range of them) is one contiguous scan, and
//! so are one key's entries of one state. The state tables
//! ([`crate::table`]) write their entries this way (each key's state is one
//! entry, a keyed operator's timers are more entries under another state
//! id), and so does a snapshot file ([`format`](mod@format)), whatever the backend.
//!
//! Inside the crate, the `StateBackend` trait is what the fjall table
//! stores through: an ordered map of bytes with snapshots, implemented by
//! `FjallBackend` (module `fjall`: an LSM store on local disk, snapshotted
//! from a pinned consistent view; memory is bounded by configuration). A
//! snapshot's synchronous part (`StateBackend::snapshot`) returns a
//! `Snapshot` that no longer depends on the backend: writing it out (the
//! asynchronous part) can run on another thread while the backend keeps
//! changing.
//!
//! ```
//! use dataflow_state::backend::StateKey;
//! let k = StateKey::new(7, 1, b"alice", b"");
//! assert_eq!(k.as_bytes(), [0, 7, 0, 1, b'a', b'l', b'i', b'c', b'e']);
//! ```

mod fjall;
pub mod format;

pub(crate) use self::fjall::{FjallBackend, FjallConfig, FjallPinned};
pub(crate) use format::Snapshot;

use crate::{KeyGroupRange, StateError};

/// The bytes of an entry's key: `key group | state id | key | user key`.
///
/// ```
/// use dataflow_state::backend::StateKey;
/// let k = StateKey::new(3, 9, b"k", b"u");
/// assert_eq!(k.as_bytes(), [0, 3, 0, 9, b'k', b'u']);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StateKey(Vec<u8>);

impl StateKey {
    /// The key of an entry of state `state` for the key whose canonical
    /// bytes are `key`, in `key_group`; `user_key` follows the key (empty
    /// for a state table's entry; a timer's time and namespace).
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
    pub(crate) fn from_bytes(bytes: Vec<u8>) -> Option<Self> {
        (bytes.len() >= 4).then_some(Self(bytes))
    }

    /// The stored bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The key group.
    pub(crate) fn key_group(&self) -> u16 {
        u16::from_be_bytes([self.0[0], self.0[1]])
    }
}

/// Where a table's entries live: an ordered map of bytes, with snapshots.
///
/// Every method that can fail returns a [`StateError`]; a backend never
/// panics on what it reads back.
pub(crate) trait StateBackend: Send {
    /// The value stored under `key`.
    fn get(&self, key: &StateKey) -> Result<Option<Vec<u8>>, StateError>;

    /// Stores `value` under `key`.
    fn put(&mut self, key: &StateKey, value: &[u8]) -> Result<(), StateError>;

    /// Removes `key`.
    fn delete(&mut self, key: &StateKey) -> Result<(), StateError>;

    /// The synchronous part of a snapshot: a consistent view of the entries
    /// of `range`, independent of later changes. Keep it short; write the
    /// result out with [`Snapshot::write_to`] (the asynchronous part).
    fn snapshot(&mut self, range: KeyGroupRange) -> Result<Snapshot, StateError>;
}
