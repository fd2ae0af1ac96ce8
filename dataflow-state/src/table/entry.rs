//! How a table entry is encoded: a key's state with its expiry and change
//! stamp in memory, `(expiry, key, state)` in postcard as stored, and the
//! tombstones of delta files.

use super::{STATE_ID, TableSpec};
use crate::backend::StateKey;
use crate::{Key, StateError, StateValue};

/// The first byte of a tombstone's value in a delta file (followed by the
/// key, postcard): a state entry's value starts with its expiry, a
/// postcard `Option` (byte 0 or 1), so the two never meet.
pub(super) const TOMBSTONE: u8 = 0xFF;

/// The value of a tombstone for `key`.
pub(super) fn encode_tombstone<K: Key>(spec: &TableSpec, key_group: u32, key: &K) -> Result<Vec<u8>, StateError> {
    let mut out = vec![TOMBSTONE];
    postcard::to_io(key, &mut out).map_err(|e| spec.decode_err(key_group, e))?;
    Ok(out)
}

/// The key of a tombstone's value.
pub(super) fn decode_key<K: Key>(spec: &TableSpec, key_group: u32, tombstone: &[u8]) -> Result<K, StateError> {
    match tombstone.split_first() {
        Some((&TOMBSTONE, key)) => postcard::from_bytes(key).map_err(|e| spec.decode_err(key_group, e)),
        _ => Err(spec.decode_err(key_group, "not a tombstone")),
    }
}

/// The entry of `key`'s state: its key bytes.
pub(super) fn entry_key<K: Key>(key_group: u32, key: &K) -> StateKey {
    let mut canonical = Vec::with_capacity(16);
    key.write_canonical(&mut canonical);
    StateKey::new(key_group as u16, STATE_ID, &canonical, &[])
}

/// The expiry of a state without a time to live.
const NEVER: i64 = i64::MAX;

/// When a state expires: `()` in tables without a TTL (so entries take no
/// room for it), an `i64` (`NEVER` for none) in tables with one.
pub(super) trait Expiry: Copy + Send + Sync + 'static {
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

/// When a state was last accessed, in tables that track changes: the
/// table's epoch then (`u64`); `()` in tables that do not (so entries take
/// no room for it and accesses do not write it).
pub(super) trait Stamp: Copy + Send + Sync + 'static {
    /// Whether the table tracks changes.
    const TRACKS: bool;
    /// The stamp of a restored state: unchanged in every epoch.
    const UNCHANGED: Self;
    /// The stamp of an access in `epoch`.
    fn at(epoch: u64) -> Self;
    /// Whether the state was accessed in `epoch` (always, untracked).
    fn changed_in(self, epoch: u64) -> bool;
}

impl Stamp for () {
    const TRACKS: bool = false;
    const UNCHANGED: Self = ();
    #[inline(always)]
    fn at(_: u64) -> Self {}
    fn changed_in(self, _: u64) -> bool {
        true
    }
}

impl Stamp for u64 {
    const TRACKS: bool = true;
    const UNCHANGED: Self = 0;
    #[inline(always)]
    fn at(epoch: u64) -> Self {
        epoch
    }
    #[inline]
    fn changed_in(self, epoch: u64) -> bool {
        self == epoch
    }
}

/// A key's state, when it expires and (tracking changes) when it was last
/// accessed.
#[derive(Clone)]
pub(super) struct Entry<S, X, V = ()> {
    pub(super) state: S,
    pub(super) expires: X,
    pub(super) stamp: V,
}

impl<S, X: Expiry, V> Entry<S, X, V> {
    #[inline]
    pub(super) fn expired(&self, now: i64) -> bool {
        self.expires.expired(now)
    }
}

/// The entry of `key`'s state: its value bytes.
pub(super) fn encode<K: Key, S: StateValue, X: Expiry, V>(
    spec: &TableSpec,
    key_group: u32,
    key: &K,
    entry: &Entry<S, X, V>,
) -> Result<Vec<u8>, StateError> {
    postcard::to_stdvec(&(entry.expires.stored(), key, &entry.state)).map_err(|e| spec.decode_err(key_group, e))
}

/// Decodes an entry's value.
pub(super) fn decode<K: Key, S: StateValue, X: Expiry, V: Stamp>(
    spec: &TableSpec,
    key_group: u32,
    bytes: &[u8],
) -> Result<(K, Entry<S, X, V>), StateError> {
    let (expires, key, state): (Option<i64>, K, S) =
        postcard::from_bytes(bytes).map_err(|e| spec.decode_err(key_group, e))?;
    Ok((key, Entry { state, expires: X::from_stored(expires), stamp: V::UNCHANGED }))
}
