//! The snapshot file format, the same for every backend.
//!
//! ```text
//! header   "DFSTATE\0" | version u16 | state count u16 |
//!          per state: id u16 | name (u16 length + UTF-8) | value type (u16 length + UTF-8)
//!          | header crc32c u32
//! blocks   length u32 | crc32c u32 | entries (key length u32 | key | value length u32 | value)…
//! end      length 0 u32 | entry count u64 | crc32c of the count u32
//! ```
//!
//! All integers are big-endian. Entries are in key order, so a key-group
//! range is one contiguous run. Every block and the header carry a CRC32C:
//! a flipped bit or a truncated file is a [`StateError::Corrupt`] naming
//! the file, never a panic.
//!
//! ```
//! use dataflow_state::backend::{MemoryBackend, StateBackend, StateKey};
//! use dataflow_state::KeyGroupRange;
//! let dir = std::env::temp_dir().join(format!("dfstate-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let file = dir.join("snap");
//! let mut a = MemoryBackend::new();
//! a.put(&StateKey::new(1, 0, b"k", b""), b"v").unwrap();
//! a.snapshot(KeyGroupRange::new(0, 128)).unwrap().write_to(&file, &[]).unwrap();
//! let mut b = MemoryBackend::new();
//! b.restore(&[&file], KeyGroupRange::new(0, 128)).unwrap();
//! assert_eq!(b.get(&StateKey::new(1, 0, b"k", b"")).unwrap().as_deref(), Some(&b"v"[..]));
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```

use crate::{KeyGroupRange, StateError};
use std::io::{BufWriter, Read, Write};
use std::path::Path;

const MAGIC: &[u8; 8] = b"DFSTATE\0";
/// The format version this code writes and reads.
pub const VERSION: u16 = 1;
const BLOCK: usize = 64 * 1024;

/// One entry of a snapshot: key bytes and value bytes.
pub type SnapshotEntry<'a> = (&'a [u8], &'a [u8]);

/// What receives the entries of a snapshot, one at a time.
pub type EntrySink<'a> = dyn FnMut(&[u8], &[u8]) -> Result<(), StateError> + 'a;

/// A consistent view of a backend's entries, taken by the synchronous part
/// of a snapshot.
pub trait SnapshotView: Send {
    /// Calls `f` with every entry in key order.
    fn for_each(&self, f: &mut EntrySink<'_>) -> Result<(), StateError>;
}

/// The result of a snapshot's synchronous part; [`Snapshot::write_to`] is
/// the asynchronous part (run it on another thread if you like: the
/// backend is free to change meanwhile).
pub struct Snapshot {
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
pub struct StateInfo {
    /// The id in entry keys.
    pub id: u16,
    /// The descriptor's name.
    pub name: String,
    /// The value type's name.
    pub value_type: String,
}

fn io(file: &Path, e: std::io::Error) -> StateError {
    StateError::Io { file: file.display().to_string(), message: e.to_string() }
}

fn corrupt(file: &Path, reason: impl Into<String>) -> StateError {
    StateError::Corrupt { file: file.display().to_string(), reason: reason.into() }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let b = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
    out.extend_from_slice(&(b.len() as u16).to_be_bytes());
    out.extend_from_slice(b);
}

impl Snapshot {
    /// Wraps a view.
    pub fn new(view: Box<dyn SnapshotView>) -> Self {
        Self { view }
    }

    /// Calls `f` with every entry in key order.
    pub fn for_each(&self, f: &mut EntrySink<'_>) -> Result<(), StateError> {
        self.view.for_each(f)
    }

    /// Writes the snapshot to `file` (created or replaced), with the
    /// states' descriptions in its header; returns the number of entries.
    pub fn write_to(&self, file: &Path, states: &[StateInfo]) -> Result<u64, StateError> {
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

/// Reads a snapshot file's header: the states it describes.
pub fn read_header(file: &Path) -> Result<Vec<StateInfo>, StateError> {
    let f = std::fs::File::open(file).map_err(|e| io(file, e))?;
    read_header_from(&mut std::io::BufReader::new(f), file)
}

fn read_header_from(r: &mut impl Read, file: &Path) -> Result<Vec<StateInfo>, StateError> {
    let mut seen = Vec::new();
    let magic = take(r, 8, file, "header")?;
    if magic != MAGIC {
        return Err(corrupt(file, "not a dataflow state snapshot (bad magic)"));
    }
    seen.extend_from_slice(&magic);
    let head = take(r, 4, file, "header")?;
    seen.extend_from_slice(&head);
    let version = be_u16(&head[..2]);
    if version != VERSION {
        return Err(corrupt(file, format!("format version {version}; this build reads version {VERSION}")));
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
    let crc = take(r, 4, file, "header")?;
    if be_u32(&crc) != crc32c::crc32c(&seen) {
        return Err(corrupt(file, "header checksum mismatch"));
    }
    Ok(states)
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
