//! The fjall backend: state in an LSM tree on local disk ([fjall] 3), so
//! state can be much larger than memory.
//!
//! One [`FjallBackend`] is one fjall database (one directory) with one
//! keyspace holding every entry under its [`StateKey`] bytes, so a key
//! group, a range of key groups, or one key's entries of one state are
//! each one contiguous scan.
//!
//! Memory is bounded by the [`FjallConfig`], not by the state's size: the
//! block cache holds at most [`FjallConfig::cache_bytes`], and the write
//! buffer (the in-memory memtable) is flushed to disk once it reaches
//! [`FjallConfig::write_buffer_bytes`] (fjall keeps at most a handful of
//! sealed memtables waiting for their flush, and stalls writes beyond
//! that).
//!
//! Writes are not made durable one by one: they go to fjall's journal
//! buffer without a flush or an fsync per operation. State is made durable
//! by snapshots ([`StateBackend::snapshot`], then [`Snapshot::write_to`]),
//! and a job restores from those, so a subtask should open its backend on
//! a fresh (or emptied) directory before restoring into it.
//!
//! A snapshot's synchronous part only pins a consistent view (a fjall
//! snapshot, which is a sequence number the engine keeps readable); the
//! returned [`Snapshot`] reads the pinned view in key order when it is
//! written out, on any thread, while the backend keeps changing.
//!
//! [fjall]: https://docs.rs/fjall/3

use super::format::{EntrySink, Snapshot, SnapshotView};
use super::{StateBackend, StateKey};
use crate::{KeyGroupRange, StateError};
use fjall::config::PartitioningPolicy;
use fjall::{Database, Keyspace, KeyspaceCreateOptions, Readable};
use std::ops::Bound;
use std::path::{Path, PathBuf};

/// The name of the keyspace that holds every entry.
const KEYSPACE: &str = "state";

/// The smallest journal limit fjall accepts (it panics below it).
const MIN_JOURNAL_BYTES: u64 = 64 * 1024 * 1024;

/// The longest key fjall stores.
const MAX_KEY_LEN: usize = u16::MAX as usize;

/// What fjall counts per memtable entry besides its key and value bytes
/// (the size of its internal entry struct).
const ENTRY_OVERHEAD: usize = 64;

/// How a [`FjallBackend`] is set up: where it lives and how much memory it
/// may use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FjallConfig {
    /// The directory of the store (created if missing); one per subtask.
    pub(crate) path: PathBuf,
    /// The capacity of the block cache, in bytes.
    pub(crate) cache_bytes: u64,
    /// The size at which the in-memory write buffer (memtable) is flushed
    /// to disk, in bytes. fjall may hold a few sealed buffers while they
    /// are being flushed, so the write path uses up to about five times
    /// this. The on-disk journal is limited to four times this (at least
    /// 64 MiB, fjall's minimum).
    pub(crate) write_buffer_bytes: u64,
}

impl FjallConfig {
    /// The default configuration for a store at `path`: a 32 MiB block
    /// cache and a 16 MiB write buffer.
    pub(crate) fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), cache_bytes: 32 << 20, write_buffer_bytes: 16 << 20 }
    }

    fn journal_bytes(&self) -> u64 {
        self.write_buffer_bytes.saturating_mul(4).max(MIN_JOURNAL_BYTES)
    }
}

/// State in an LSM tree on local disk ([fjall] 3); memory is bounded by
/// its [`FjallConfig`].
///
/// [fjall]: https://docs.rs/fjall/3
pub(crate) struct FjallBackend {
    db: Database,
    keyspace: Keyspace,
    path: PathBuf,
    /// Bytes written to the active memtable since it was last rotated
    /// here, counted as fjall counts them.
    unflushed: u64,
    /// When to rotate: [`FjallConfig::write_buffer_bytes`].
    rotate_at: u64,
}

impl std::fmt::Debug for FjallBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FjallBackend").field("path", &self.path).finish_non_exhaustive()
    }
}

fn backend_error(operation: &'static str, path: &Path, source: fjall::Error) -> StateError {
    StateError::Backend { path: path.to_path_buf(), operation, source }
}

impl FjallBackend {
    /// Opens the store at `config.path`, creating the directory and the
    /// store if missing (an existing store is opened with its entries).
    /// A store is opened by one backend at a time: while another backend,
    /// or a [`Snapshot`] taken from one, has it open, this fails.
    pub(crate) fn open(config: FjallConfig) -> Result<Self, StateError> {
        let path = config.path.clone();
        std::fs::create_dir_all(&path).map_err(|e| StateError::io(&path, e))?;
        let db = Database::builder(&path)
            .cache_size(config.cache_bytes)
            // One background worker per store: with more, fjall 3.1's first
            // worker re-queues every compaction request while another
            // compacts, spinning (`docs/state.md`). Measured on the 10M-key
            // large-state job with a checkpoint every 5 s, back to back:
            // 102 k records/s against 87 k with fjall's default (2 here).
            .worker_threads(1)
            .max_journaling_size(config.journal_bytes())
            // Batches (if ever used) are not flushed per write either.
            .manual_journal_persist(true)
            .open()
            .map_err(|e| backend_error("open", &path, e))?;
        // fjall's own size trigger only asks a background worker to rotate
        // the memtable; under a steady stream of writes that request can
        // wait behind compactions while the memtable grows far past its
        // limit (measured: a 8 MiB memtable at over 150 MiB). So this
        // backend rotates the memtable itself, on the writing thread, at
        // `write_buffer_bytes` (see `account`); fjall's trigger, at twice
        // that, is only a fallback. (`Keyspace::rotate_memtable` is public
        // but doc-hidden in fjall 3.1, the version Cargo.lock pins; should a
        // later fjall drop it, this stops compiling rather than misbehaving.)
        let fallback = config.write_buffer_bytes.saturating_mul(2);
        let keyspace = db
            .keyspace(KEYSPACE, move || {
                KeyspaceCreateOptions::default()
                    .max_memtable_size(fallback)
                    .manual_journal_persist(true)
                    // Filters and indexes in partitions from level 1 on
                    // (fjall: from level 3), so that a point read that
                    // misses the block cache loads a partition of a few KiB,
                    // not a table's whole filter and index (hundreds of KiB
                    // each, read and checksummed again on every miss).
                    // Measured on the 10M-key large-state job: from 130 k
                    // records/s down to 6–10 k once the state outgrew the
                    // cache's share of level-2 filters.
                    .filter_block_partitioning_policy(PartitioningPolicy::new([false, true]))
                    .index_block_partitioning_policy(PartitioningPolicy::new([false, true]))
            })
            .map_err(|e| backend_error("open the keyspace", &path, e))?;
        Ok(Self { db, keyspace, path, unflushed: 0, rotate_at: config.write_buffer_bytes.max(1) })
    }

    fn error(&self, what: &'static str, e: fjall::Error) -> StateError {
        backend_error(what, &self.path, e)
    }

    /// Counts a write of `key_len + value_len` bytes into the memtable
    /// (plus fjall's per-entry overhead) and, once the memtable holds
    /// `write_buffer_bytes`, seals it and queues its flush. fjall holds
    /// writes while 4 sealed memtables wait for their flush, so the write
    /// path uses at most about 5 × `write_buffer_bytes`.
    fn account(&mut self, key_len: usize, value_len: usize) -> Result<(), StateError> {
        self.unflushed += (key_len + value_len + ENTRY_OVERHEAD) as u64;
        if self.unflushed >= self.rotate_at {
            self.unflushed = 0;
            self.keyspace.rotate_memtable().map_err(|e| self.error("rotate the write buffer", e))?;
        }
        Ok(())
    }

    /// fjall panics on a key it cannot store (and would have journaled it
    /// cut short): refuse it first.
    fn check_key(&self, key: &StateKey) -> Result<(), StateError> {
        if key.as_bytes().len() > MAX_KEY_LEN {
            return Err(StateError::TooLarge {
                path: self.path.clone(),
                what: "key",
                len: key.as_bytes().len(),
                max: MAX_KEY_LEN,
            });
        }
        Ok(())
    }
}

impl StateBackend for FjallBackend {
    fn get(&self, key: &StateKey) -> Result<Option<Vec<u8>>, StateError> {
        if key.as_bytes().len() > MAX_KEY_LEN {
            return Ok(None);
        }
        let v = self.keyspace.get(key.as_bytes()).map_err(|e| self.error("get", e))?;
        Ok(v.map(|v| v.to_vec()))
    }

    fn put(&mut self, key: &StateKey, value: &[u8]) -> Result<(), StateError> {
        self.check_key(key)?;
        if u32::try_from(value.len()).is_err() {
            return Err(StateError::TooLarge {
                path: self.path.clone(),
                what: "value",
                len: value.len(),
                max: u32::MAX as usize,
            });
        }
        self.keyspace.insert(key.as_bytes(), value).map_err(|e| self.error("put", e))?;
        self.account(key.as_bytes().len(), value.len())
    }

    fn delete(&mut self, key: &StateKey) -> Result<(), StateError> {
        if key.as_bytes().len() > MAX_KEY_LEN {
            return Ok(()); // never stored
        }
        self.keyspace.remove(key.as_bytes()).map_err(|e| self.error("delete", e))?;
        self.account(key.as_bytes().len(), 0)
    }

    fn snapshot(&mut self, range: KeyGroupRange) -> Result<Snapshot, StateError> {
        let bound = |kg: u32| u16::try_from(kg).ok().map(|kg| kg.to_be_bytes().to_vec());
        // Pin first: everything written so far, nothing written later.
        let view = FjallView { pinned: self.pin(), start: bound(range.start), end: bound(range.end) };
        Ok(Snapshot::new(Box::new(view)))
    }
}

impl FjallBackend {
    /// Pins a consistent view of the whole store (everything written so
    /// far, nothing written later) for point reads, on any thread, while
    /// the backend keeps changing: what the incremental snapshots of the
    /// state tables read the changed keys from.
    pub(crate) fn pin(&self) -> FjallPinned {
        FjallPinned {
            snapshot: self.db.snapshot(),
            keyspace: self.keyspace.clone(),
            _db: self.db.clone(),
            path: self.path.clone(),
        }
    }
}

/// A pinned consistent view of a store ([`FjallBackend::pin`]). It holds
/// its own handles to the database and the keyspace, so it outlives the
/// backend and can move to another thread.
pub(crate) struct FjallPinned {
    snapshot: fjall::Snapshot,
    keyspace: Keyspace,
    /// Keeps the database (and its background workers) open while the
    /// view is read, even if the backend is dropped meanwhile.
    _db: Database,
    path: PathBuf,
}

impl std::fmt::Debug for FjallPinned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FjallPinned").field("path", &self.path).finish_non_exhaustive()
    }
}

impl FjallPinned {
    /// The value stored under `key` in the pinned view.
    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        if key.len() > MAX_KEY_LEN {
            return Ok(None); // never stored
        }
        let v = self.snapshot.get(&self.keyspace, key).map_err(|e| backend_error("snapshot read", &self.path, e))?;
        Ok(v.map(|v| v.to_vec()))
    }
}

/// A pinned view of a store, over a key-group range.
struct FjallView {
    pinned: FjallPinned,
    /// The first key group's 2 bytes; `None`: past the last key group.
    start: Option<Vec<u8>>,
    /// The end key group's 2 bytes; `None`: up to the end.
    end: Option<Vec<u8>>,
}

impl SnapshotView for FjallView {
    fn for_each(&self, f: &mut EntrySink<'_>) -> Result<(), StateError> {
        let Some(start) = &self.start else {
            return Ok(()); // the range starts past every key group
        };
        let end = match &self.end {
            Some(end) => Bound::Excluded(end.as_slice()),
            None => Bound::Unbounded,
        };
        let range: (Bound<&[u8]>, Bound<&[u8]>) = (Bound::Included(start.as_slice()), end);
        let p = &self.pinned;
        for entry in p.snapshot.range::<&[u8], _>(&p.keyspace, range) {
            let (k, v) = entry.into_inner().map_err(|e| backend_error("snapshot read", &p.path, e))?;
            f(&k, &v)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod memory_tests;
#[cfg(test)]
mod tests;
