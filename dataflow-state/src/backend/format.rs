//! The snapshot file format, the same for every backend.
//!
//! ```text
//! header   "DFSTATE\0" | version u16 | state count u16 |
//!          per state: id u16 | name (u16 length + UTF-8) | value type (u16 length + UTF-8)
//!          | chain (version 2 only, see below)
//!          | header crc32c u32
//! blocks   length u32 | crc32c u32 | entries (key length u32 | key | value length u32 | value)…
//! end      length 0 u32 | entry count u64 | crc32c of the count u32
//!
//! chain    kind u8: 0 a stand-alone full file (nothing follows),
//!                   1 the full file of a chain, 2 a delta of a chain;
//!          for 1 and 2: key groups start u32 | end u32 (the writer's range)
//!                       | sequence u64 | parent u64 | base u64
//! ```
//!
//! All integers are big-endian. Entries are in key order, so a key-group
//! range is one contiguous run. Every block and the header carry a CRC32C:
//! a flipped bit or a truncated file is a [`StateError::Corrupt`] naming
//! the file, never a panic.
//!
//! Version 2 (written since incremental snapshots) adds the chain field to
//! the header (`ChainInfo`): whether the file holds every entry (full) or
//! only what changed since the writer's previous snapshot (delta), which
//! key groups its writer held, and its place in its chain (a full file
//! followed by deltas, each one's `parent` the `sequence` of the file
//! before it, each one's `base` the full file's). Version 1 files (no
//! chain field) are still read, as stand-alone full files; any other
//! version is a [`StateError::Corrupt`] saying which versions this build
//! reads. What an entry of a delta means is its writer's business (the
//! state tables mark deletions in their values, see [`crate::table`]); a
//! backend's own restore refuses delta files.
//!
//! Outside the crate, [`read_file`] reads the entries of a file (the
//! writers and the restores are the state tables' and the operator
//! state's):
//!
//! ```
//! use dataflow_state::backend::{StateKey, format};
//! use dataflow_state::table::{StateBackendConfig, StateTable, TableSpec, TIMERS_ID};
//! use dataflow_state::{KeyGroupRange, StateError, ValueState};
//!
//! let all = KeyGroupRange::new(0, 128);
//! let mut t = StateTable::<u32, ValueState<u8>>::open(&StateBackendConfig::InMemory, TableSpec::new("t", 128, all), "op").unwrap();
//! t.with_state(&1, |s| Ok::<_, StateError>((s.update(9), false))).unwrap();
//! let timer = (StateKey::new(0, TIMERS_ID, b"t", b"").as_bytes().to_vec(), b"v".to_vec());
//! let file = tempfile::tempdir().unwrap().keep().join("snap");
//! t.snapshot(vec![timer.clone()]).unwrap().write_to(&file).unwrap();
//! let mut entries = Vec::new();
//! format::read_file(&file, all, &mut |k, v| Ok(entries.push((k.to_vec(), v.to_vec())))).unwrap();
//! assert_eq!(entries.len(), 2);
//! assert!(entries.contains(&timer));
//! ```

use crate::{KeyGroupRange, StateError};
use std::io::{BufWriter, Read, Write};
use std::path::Path;

const MAGIC: &[u8; 8] = b"DFSTATE\0";
/// The format version this code writes (it also reads [`MIN_VERSION`] and
/// later).
pub(crate) const VERSION: u16 = 2;
/// The oldest format version this code reads (version 1: no chain field).
pub(crate) const MIN_VERSION: u16 = 1;
const BLOCK: usize = 64 * 1024;

/// What receives the entries of a snapshot, one at a time.
pub type EntrySink<'a> = dyn FnMut(&[u8], &[u8]) -> Result<(), StateError> + 'a;

/// A consistent view of a backend's entries, taken by the synchronous part
/// of a snapshot.
pub(crate) trait SnapshotView: Send {
    /// Calls `f` with every entry in key order.
    fn for_each(&self, f: &mut EntrySink<'_>) -> Result<(), StateError>;
}

/// The result of a snapshot's synchronous part; [`Snapshot::write_to`] is
/// the asynchronous part (run it on another thread if you like: the
/// backend is free to change meanwhile).
pub(crate) struct Snapshot {
    view: Box<dyn SnapshotView>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot").finish_non_exhaustive()
    }
}

/// What a snapshot file says about a state: its id, descriptor name and
/// value type name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StateInfo {
    /// The id in entry keys.
    pub(crate) id: u16,
    /// The descriptor's name.
    pub(crate) name: String,
    /// The value type's name.
    pub(crate) value_type: String,
}

/// Whether a file holds every entry of its writer or only the changes
/// since its writer's previous snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SnapshotKind {
    /// Every entry (of the writer's key groups).
    Full,
    /// The entries changed since the writer's previous snapshot, and
    /// deletions.
    Delta,
}

/// Where a file stands in a chain of snapshots of one writer (a state
/// table of one subtask): a full file, then deltas, each relative to the
/// file before it.
///
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ChainInfo {
    /// Full or delta.
    pub(crate) kind: SnapshotKind,
    /// The key groups of the writer (its subtask's); with `base` it names
    /// the chain.
    pub(crate) key_groups: KeyGroupRange,
    /// The writer's snapshot counter: one more for each snapshot it takes,
    /// full or delta.
    pub(crate) sequence: u64,
    /// A delta: the `sequence` of the snapshot its changes are relative
    /// to (the file before it in its chain); a full file: its own.
    pub(crate) parent: u64,
    /// The `sequence` of the chain's full file (a full file: its own).
    pub(crate) base: u64,
}

impl ChainInfo {
    /// A full file at `sequence`, starting a chain.
    pub(crate) fn full(key_groups: KeyGroupRange, sequence: u64) -> Self {
        Self { kind: SnapshotKind::Full, key_groups, sequence, parent: sequence, base: sequence }
    }

    /// The delta that follows this file in its chain.
    pub(crate) fn next_delta(&self) -> Self {
        Self { kind: SnapshotKind::Delta, sequence: self.sequence + 1, parent: self.sequence, ..*self }
    }
}

/// A snapshot file's header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FileHeader {
    /// The format version it was written in.
    pub(crate) version: u16,
    /// The states it describes.
    pub(crate) states: Vec<StateInfo>,
    /// Its place in a chain; `None` for a stand-alone full file (every
    /// version 1 file, and files written by [`Snapshot::write_to`]).
    pub(crate) chain: Option<ChainInfo>,
}

impl FileHeader {
    /// Whether the file holds every entry of its writer.
    pub(crate) fn is_full(&self) -> bool {
        self.chain.is_none_or(|c| c.kind == SnapshotKind::Full)
    }
}

fn io(file: &Path, e: std::io::Error) -> StateError {
    StateError::io(file, e)
}

fn corrupt(file: &Path, reason: impl Into<String>) -> StateError {
    StateError::corrupt(file, reason)
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let b = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
    out.extend_from_slice(&(b.len() as u16).to_be_bytes());
    out.extend_from_slice(b);
}

impl Snapshot {
    /// Wraps a view.
    pub(crate) fn new(view: Box<dyn SnapshotView>) -> Self {
        Self { view }
    }

    /// Calls `f` with every entry in key order.
    pub(crate) fn for_each(&self, f: &mut EntrySink<'_>) -> Result<(), StateError> {
        self.view.for_each(f)
    }

    /// Writes the snapshot to `file` (created or replaced) as a
    /// stand-alone full file, with the states' descriptions in its header;
    /// returns the number of entries.
    pub(crate) fn write_to(&self, file: &Path, states: &[StateInfo]) -> Result<u64, StateError> {
        self.write_file(file, states, None)
    }

    /// Writes the snapshot to `file` (created or replaced), with the
    /// states' descriptions and its place in a chain (`None`: a
    /// stand-alone full file) in its header; returns the number of
    /// entries.
    pub(crate) fn write_file(
        &self,
        file: &Path,
        states: &[StateInfo],
        chain: Option<&ChainInfo>,
    ) -> Result<u64, StateError> {
        let f = std::fs::File::create(file).map_err(|e| io(file, e))?;
        let mut w = BufWriter::new(f);
        let mut header = Vec::new();
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&VERSION.to_be_bytes());
        header.extend_from_slice(&(states.len() as u16).to_be_bytes());
        for s in states {
            header.extend_from_slice(&s.id.to_be_bytes());
            put_str(&mut header, &s.name);
            put_str(&mut header, &s.value_type);
        }
        put_chain(&mut header, chain);
        let crc = crc32c::crc32c(&header);
        header.extend_from_slice(&crc.to_be_bytes());
        w.write_all(&header).map_err(|e| io(file, e))?;

        let mut block = Vec::with_capacity(BLOCK);
        let mut count = 0u64;
        let flush = |block: &mut Vec<u8>, w: &mut BufWriter<std::fs::File>| -> Result<(), StateError> {
            if block.is_empty() {
                return Ok(());
            }
            w.write_all(&(block.len() as u32).to_be_bytes()).map_err(|e| io(file, e))?;
            w.write_all(&crc32c::crc32c(block).to_be_bytes()).map_err(|e| io(file, e))?;
            w.write_all(block).map_err(|e| io(file, e))?;
            block.clear();
            Ok(())
        };
        self.view.for_each(&mut |k, v| {
            block.extend_from_slice(&(k.len() as u32).to_be_bytes());
            block.extend_from_slice(k);
            block.extend_from_slice(&(v.len() as u32).to_be_bytes());
            block.extend_from_slice(v);
            count += 1;
            if block.len() >= BLOCK { flush(&mut block, &mut w) } else { Ok(()) }
        })?;
        flush(&mut block, &mut w)?;
        w.write_all(&0u32.to_be_bytes()).map_err(|e| io(file, e))?;
        w.write_all(&count.to_be_bytes()).map_err(|e| io(file, e))?;
        w.write_all(&crc32c::crc32c(&count.to_be_bytes()).to_be_bytes()).map_err(|e| io(file, e))?;
        let f = w.into_inner().map_err(|e| io(file, e.into_error()))?;
        f.sync_all().map_err(|e| io(file, e))?;
        Ok(count)
    }
}

fn put_chain(out: &mut Vec<u8>, chain: Option<&ChainInfo>) {
    let Some(c) = chain else {
        out.push(0);
        return;
    };
    out.push(match c.kind {
        SnapshotKind::Full => 1,
        SnapshotKind::Delta => 2,
    });
    out.extend_from_slice(&c.key_groups.start.to_be_bytes());
    out.extend_from_slice(&c.key_groups.end.to_be_bytes());
    out.extend_from_slice(&c.sequence.to_be_bytes());
    out.extend_from_slice(&c.parent.to_be_bytes());
    out.extend_from_slice(&c.base.to_be_bytes());
}

/// Reads exactly `n` bytes, or says the file is truncated.
fn take(r: &mut impl Read, n: usize, file: &Path, what: &str) -> Result<Vec<u8>, StateError> {
    let mut buf = vec![0; n];
    r.read_exact(&mut buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => corrupt(file, format!("truncated in the {what}")),
        _ => io(file, e),
    })?;
    Ok(buf)
}

fn be_u16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn be_u64(b: &[u8]) -> u64 {
    u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

/// Reads a snapshot file's header: the states it describes.
pub(crate) fn read_header(file: &Path) -> Result<Vec<StateInfo>, StateError> {
    Ok(read_file_header(file)?.states)
}

/// Reads a snapshot file's header: its version, the states it describes
/// and its place in a chain.
///
pub(crate) fn read_file_header(file: &Path) -> Result<FileHeader, StateError> {
    let f = std::fs::File::open(file).map_err(|e| io(file, e))?;
    read_header_from(&mut std::io::BufReader::new(f), file)
}

fn read_header_from(r: &mut impl Read, file: &Path) -> Result<FileHeader, StateError> {
    let mut seen = Vec::new();
    let magic = take(r, 8, file, "header")?;
    if magic != MAGIC {
        return Err(corrupt(file, "not a dataflow state snapshot (bad magic)"));
    }
    seen.extend_from_slice(&magic);
    let head = take(r, 4, file, "header")?;
    seen.extend_from_slice(&head);
    let version = be_u16(&head[..2]);
    if !(MIN_VERSION..=VERSION).contains(&version) {
        return Err(corrupt(
            file,
            format!("format version {version}; this build reads versions {MIN_VERSION} to {VERSION}"),
        ));
    }
    let mut states = Vec::new();
    for _ in 0..be_u16(&head[2..]) {
        let id = take(r, 2, file, "header")?;
        seen.extend_from_slice(&id);
        let mut strs = Vec::new();
        for _ in 0..2 {
            let len = take(r, 2, file, "header")?;
            seen.extend_from_slice(&len);
            let s = take(r, be_u16(&len) as usize, file, "header")?;
            seen.extend_from_slice(&s);
            strs.push(String::from_utf8(s).map_err(|_| corrupt(file, "a state name is not UTF-8"))?);
        }
        let value_type = strs.pop().unwrap_or_default();
        let name = strs.pop().unwrap_or_default();
        states.push(StateInfo { id: be_u16(&id), name, value_type });
    }
    let chain = if version >= 2 { read_chain(r, file, &mut seen)? } else { None };
    let crc = take(r, 4, file, "header")?;
    if be_u32(&crc) != crc32c::crc32c(&seen) {
        return Err(corrupt(file, "header checksum mismatch"));
    }
    Ok(FileHeader { version, states, chain })
}

/// Reads the chain field of a version 2 header (checked with the header's
/// checksum by the caller; a kind it does not know is damage, said at once).
fn read_chain(r: &mut impl Read, file: &Path, seen: &mut Vec<u8>) -> Result<Option<ChainInfo>, StateError> {
    let kind = take(r, 1, file, "header")?;
    seen.extend_from_slice(&kind);
    let kind = match kind[0] {
        0 => return Ok(None),
        1 => SnapshotKind::Full,
        2 => SnapshotKind::Delta,
        k => return Err(corrupt(file, format!("an unknown snapshot kind {k} in the header"))),
    };
    let b = take(r, 32, file, "header")?;
    seen.extend_from_slice(&b);
    Ok(Some(ChainInfo {
        kind,
        key_groups: KeyGroupRange::new(be_u32(&b[..4]), be_u32(&b[4..8])),
        sequence: be_u64(&b[8..16]),
        parent: be_u64(&b[16..24]),
        base: be_u64(&b[24..32]),
    }))
}

/// Calls `f` with every entry of `file` whose key group is in `range`, in
/// key order. Every block is checked before any of its entries is used.
pub fn read_file(file: &Path, range: KeyGroupRange, f: &mut EntrySink<'_>) -> Result<(), StateError> {
    let handle = std::fs::File::open(file).map_err(|e| io(file, e))?;
    let mut r = std::io::BufReader::new(handle);
    read_header_from(&mut r, file)?;
    let mut count = 0u64;
    loop {
        let len = be_u32(&take(&mut r, 4, file, "block length")?) as usize;
        if len == 0 {
            let n = take(&mut r, 8, file, "end marker")?;
            let crc = take(&mut r, 4, file, "end marker")?;
            if be_u32(&crc) != crc32c::crc32c(&n) {
                return Err(corrupt(file, "end marker checksum mismatch"));
            }
            let expected = u64::from_be_bytes(n.try_into().unwrap_or([0; 8]));
            if expected != count {
                return Err(corrupt(file, format!("{count} entries where the end marker says {expected}")));
            }
            return Ok(());
        }
        if len > 1 << 30 {
            return Err(corrupt(file, format!("a block of {len} bytes")));
        }
        let crc = be_u32(&take(&mut r, 4, file, "block header")?);
        let block = take(&mut r, len, file, "block")?;
        if crc32c::crc32c(&block) != crc {
            return Err(corrupt(file, format!("block checksum mismatch after entry {count}")));
        }
        let mut at = 0;
        while at < block.len() {
            let field = |at: &mut usize| -> Result<&[u8], StateError> {
                let n = block.get(*at..*at + 4).map(be_u32).ok_or_else(|| corrupt(file, "an entry cut short"))?;
                let start = *at + 4;
                let end = start.checked_add(n as usize).filter(|e| *e <= block.len());
                let end = end.ok_or_else(|| corrupt(file, "an entry longer than its block"))?;
                *at = end;
                Ok(&block[start..end])
            };
            let k = field(&mut at)?;
            let v = field(&mut at)?;
            count += 1;
            if k.len() < 4 {
                return Err(corrupt(file, "an entry key shorter than its header"));
            }
            if range.contains(u32::from(be_u16(k))) {
                f(k, v)?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Entries(Vec<(Vec<u8>, Vec<u8>)>);

    impl SnapshotView for Entries {
        fn for_each(&self, f: &mut EntrySink<'_>) -> Result<(), StateError> {
            self.0.iter().try_for_each(|(k, v)| f(k, v))
        }
    }

    #[test]
    fn a_delta_follows_its_parent_in_its_chain() {
        let full = ChainInfo::full(KeyGroupRange::new(0, 64), 7);
        let delta = full.next_delta();
        assert_eq!((delta.kind, delta.sequence, delta.parent, delta.base), (SnapshotKind::Delta, 8, 7, 7));
        let next = delta.next_delta();
        assert_eq!((next.sequence, next.parent, next.base, next.key_groups), (9, 8, 7, full.key_groups));
    }

    /// The header says what it was written with; the entries of the range
    /// asked for come back in order.
    #[test]
    fn files_round_trip_header_and_entries() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("snap");
        let entries: Vec<_> = [(1u16, b"a"), (1, b"b"), (5, b"c")]
            .iter()
            .map(|(kg, v)| (crate::backend::StateKey::new(*kg, 1, *v, b"").as_bytes().to_vec(), v.to_vec()))
            .collect();
        let states = [StateInfo { id: 1, name: "s".into(), value_type: "u8".into() }];
        let chain = ChainInfo { kind: SnapshotKind::Delta, ..ChainInfo::full(KeyGroupRange::new(0, 64), 3) };
        let snap = Snapshot::new(Box::new(Entries(entries.clone())));
        assert_eq!(snap.write_file(&file, &states, Some(&chain)).unwrap(), 3);
        let header = read_file_header(&file).unwrap();
        assert_eq!((header.version, header.chain, &header.states[..]), (VERSION, Some(chain), &states[..]));
        assert!(!header.is_full());
        let mut seen = Vec::new();
        read_file(&file, KeyGroupRange::new(0, 2), &mut |k, v| {
            seen.push((k.to_vec(), v.to_vec()));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, entries[..2]);
        snap.write_to(&file, &states).unwrap();
        assert!(read_file_header(&file).unwrap().is_full(), "a stand-alone file is full");
    }
}
