//! Checkpoint storage: a directory per job, a folder per checkpoint, and
//! the rule that only complete, intact checkpoints are restored.
//!
//! ```text
//! <job dir>/chk-<id>/<files the tasks wrote>
//! <job dir>/chk-<id>/_metadata     written last: write, fsync, rename
//! ```
//!
//! A checkpoint is complete once its `_metadata` exists. The metadata lists
//! every file the checkpoint needs with its length and CRC32C, and carries
//! a checksum of its own, so a damaged or missing file is found before
//! anything is restored: [`CheckpointStorage::find`] looks at the
//! checkpoints newest first and stops at the first complete, intact one,
//! saying which newer ones it passed: *incomplete* (no `_metadata`: the
//! process died while writing it; nothing was committed under it) or
//! *damaged* (complete, but its metadata or a file it lists is damaged or
//! missing: sinks may have committed output under it).
//! [`Found::restore_point`] is the rule a job restores by: incomplete
//! ones are skipped with a warning, but a damaged one fails the restore,
//! naming it, unless falling back past it is allowed
//! ([`CheckpointConfig::allow_fallback_past_damaged_checkpoints`](super::coordinator::CheckpointConfig::allow_fallback_past_damaged_checkpoints));
//! a location whose checkpoints are all damaged is always an error, never a
//! fresh start. [`CheckpointStorage::retain`] keeps the newest N complete
//! checkpoints and removes the rest.
//!
//! [`LocalStorage`] keeps checkpoints on a local file system;
//! `ObjectStorage` ([`super::object_storage`]) on an object store.
//!
//! ```
//! use dataflow_core::checkpoint::storage::{CheckpointMetadata, CheckpointStorage, LocalStorage, StateFile};
//! let storage = LocalStorage::new(tempfile::tempdir().unwrap().keep());
//! let dir = storage.checkpoint_dir(1).unwrap();
//! std::fs::write(dir.join("op-0"), b"state").unwrap();
//! let file = StateFile::of(&dir, "op-0", "count", 0).unwrap();
//! storage.complete(&CheckpointMetadata { id: 1, timestamp: 0, files: vec![file] }).unwrap();
//! assert_eq!(storage.latest().unwrap().unwrap().metadata.id, 1);
//! assert_eq!(storage.find().unwrap().restore_point(false).unwrap().unwrap().metadata.id, 1);
//! ```

use crate::error::Error;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"DFCHKPT\0";
const VERSION: u16 = 1;
/// The metadata file's name in a checkpoint's folder.
pub(crate) const METADATA: &str = "_metadata";

/// What marks the `operator` under which an operator instance's operator
/// state is listed in `_metadata`: the operator's state id, then this.
pub(crate) const OPERATOR_STATE: &str = "#operator-state";

/// A file a checkpoint needs, as its metadata records it.
///
/// ```
/// use dataflow_core::checkpoint::storage::StateFile;
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::write(dir.path().join("f"), b"abc").unwrap();
/// let f = StateFile::of(dir.path(), "f", "map", 1).unwrap();
/// assert_eq!((f.len, f.crc32c), (3, crc32c::crc32c(b"abc")));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateFile {
    /// The operator it belongs to (its uid, or its name).
    pub operator: String,
    /// The subtask that wrote it.
    pub subtask: u32,
    /// Its path, relative to the checkpoint's folder.
    pub name: String,
    /// Its length in bytes.
    pub len: u64,
    /// The CRC32C of its bytes.
    pub crc32c: u32,
}

impl StateFile {
    /// The handle of `dir/name`, read back and checksummed.
    pub fn of(dir: &Path, name: &str, operator: &str, subtask: u32) -> Result<Self, Error> {
        let path = dir.join(name);
        let bytes = std::fs::read(&path).map_err(|e| io(&path, e))?;
        Ok(Self {
            operator: operator.to_string(),
            subtask,
            name: name.to_string(),
            len: bytes.len() as u64,
            crc32c: crc32c::crc32c(&bytes),
        })
    }
}

/// What a complete checkpoint consists of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointMetadata {
    /// The checkpoint's id.
    pub id: u64,
    /// When it was triggered (processing time).
    pub timestamp: Timestamp,
    /// Every file it needs.
    pub files: Vec<StateFile>,
}

/// A complete checkpoint found by [`CheckpointStorage::latest`].
#[derive(Clone, Debug)]
pub struct CompleteCheckpoint {
    /// Its metadata.
    pub metadata: CheckpointMetadata,
    /// Its folder (the files' names are relative to it).
    pub dir: PathBuf,
    /// The newer checkpoints that were skipped, and why (each names the
    /// file at fault).
    pub skipped: Vec<String>,
}

/// A complete checkpoint that [`CheckpointStorage::find`] passed because
/// its metadata or a file it lists is damaged or missing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DamagedCheckpoint {
    /// Its id.
    pub id: u64,
    /// Why: the error, naming the file at fault.
    pub reason: String,
}

/// What [`CheckpointStorage::find`] found: the newest complete, intact
/// checkpoint and the newer ones it passed.
#[derive(Clone, Debug, Default)]
pub struct Found {
    /// The newest complete checkpoint whose metadata and files are intact.
    pub latest: Option<CompleteCheckpoint>,
    /// Newer complete checkpoints that are damaged, newest first (all of
    /// them when `latest` is `None`).
    pub damaged: Vec<DamagedCheckpoint>,
    /// Newer checkpoints without metadata (in progress when the process
    /// died), newest first.
    pub incomplete: Vec<u64>,
    /// Where the checkpoints are (for messages).
    pub location: String,
}

impl Found {
    /// What a job restores from, by the rule of the [module docs](self):
    /// the latest intact checkpoint if no damaged complete one is newer;
    /// past damaged ones only with `allow_fallback`; `None` (a fresh start)
    /// only where no complete checkpoint exists at all. The error
    /// ([`Error::CheckpointDamaged`]) names each damaged checkpoint and why.
    pub fn restore_point(self, allow_fallback: bool) -> Result<Option<CompleteCheckpoint>, Error> {
        let Found { latest, damaged, incomplete, location } = self;
        if !incomplete.is_empty() {
            tracing::warn!(location = %location, checkpoints = ?incomplete, "incomplete checkpoints (no {METADATA}) skipped");
        }
        if damaged.is_empty() {
            return Ok(latest);
        }
        let reasons: Vec<String> = damaged.iter().map(|d| format!("checkpoint {}: {}", d.id, d.reason)).collect();
        match latest {
            Some(cp) if allow_fallback => {
                tracing::warn!(location = %location, restored = cp.metadata.id, damaged = ?reasons,
                    "falling back past damaged checkpoints (allowed): sinks remove the output committed after the restored one");
                Ok(Some(cp))
            }
            latest => {
                Err(Error::CheckpointDamaged { location, fallback: latest.map(|cp| cp.metadata.id), damaged: reasons })
            }
        }
    }
}

/// Where checkpoints are kept.
pub trait CheckpointStorage: Send + Sync + std::fmt::Debug {
    /// The folder (created if missing) where the tasks write the files of
    /// checkpoint `id`.
    fn checkpoint_dir(&self, id: u64) -> Result<PathBuf, Error>;

    /// Makes checkpoint `metadata.id` complete: writes its metadata last,
    /// atomically. Call it only once every file is written.
    fn complete(&self, metadata: &CheckpointMetadata) -> Result<(), Error>;

    /// The newest complete checkpoint whose metadata and files are intact,
    /// and the newer ones passed on the way (incomplete or damaged).
    fn find(&self) -> Result<Found, Error>;

    /// The newest complete checkpoint whose metadata and files are intact;
    /// newer ones that are incomplete or damaged are skipped, each with a
    /// log line naming the file. (What a job restores from is
    /// [`Found::restore_point`], stricter about damaged ones.)
    fn latest(&self) -> Result<Option<CompleteCheckpoint>, Error> {
        Ok(self.find()?.latest)
    }

    /// Removes checkpoint `id` (aborted, or past retention).
    fn discard(&self, id: u64) -> Result<(), Error>;

    /// The id the next checkpoint of a run gets: above every checkpoint
    /// kept here (1 if none).
    fn next_id(&self) -> Result<u64, Error> {
        Ok(1)
    }

    /// Keeps the newest `keep` complete checkpoints (and anything newer
    /// than the oldest of them, which may be in progress) and removes the
    /// rest.
    fn retain(&self, keep: usize) -> Result<(), Error>;
}

/// Checkpoints in a directory of the local file system.
#[derive(Clone, Debug)]
pub struct LocalStorage {
    root: PathBuf,
}

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::checkpoint_io(path)(e)
}

fn corrupt(path: &Path, reason: impl Into<String>) -> Error {
    Error::CheckpointCorrupt { path: path.to_path_buf(), reason: reason.into() }
}

impl LocalStorage {
    /// Checkpoints under `root` (created when the first one is).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn dir(&self, id: u64) -> PathBuf {
        self.root.join(format!("chk-{id}"))
    }

    /// The ids of every checkpoint folder, newest first.
    fn ids(&self) -> Result<Vec<u64>, Error> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&self.root, e)),
        };
        let mut ids: Vec<u64> = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io(&self.root, e))?;
            let name = entry.file_name();
            if let Some(id) = name.to_str().and_then(|n| n.strip_prefix("chk-")).and_then(|n| n.parse().ok()) {
                ids.push(id);
            }
        }
        ids.sort_unstable_by(|a, b| b.cmp(a));
        Ok(ids)
    }

    /// Reads and checks checkpoint `id`: its metadata and every file it lists.
    fn verify(&self, id: u64) -> Result<CheckpointMetadata, Error> {
        let dir = self.dir(id);
        let path = dir.join(METADATA);
        let bytes = std::fs::read(&path).map_err(|e| io(&path, e))?;
        let metadata = decode_metadata(&bytes).map_err(|reason| corrupt(&path, reason))?;
        if metadata.id != id {
            return Err(corrupt(&path, format!("it describes checkpoint {}", metadata.id)));
        }
        verify_files(&dir, &metadata.files)?;
        Ok(metadata)
    }
}

impl Found {
    /// Passes checkpoint `id`, which has no metadata.
    pub(crate) fn skip_incomplete(&mut self, id: u64) {
        tracing::warn!("checkpoint {id} is incomplete (no {METADATA}): skipped");
        self.incomplete.push(id);
    }

    /// Passes checkpoint `id`, complete but damaged.
    pub(crate) fn skip_damaged(&mut self, id: u64, e: &Error) {
        tracing::warn!("checkpoint {id} is damaged: {e}");
        self.damaged.push(DamagedCheckpoint { id, reason: e.to_string() });
    }

    /// Stops at checkpoint `metadata.id`, intact, in folder `dir`.
    pub(crate) fn with(mut self, metadata: CheckpointMetadata, dir: PathBuf) -> Self {
        let incomplete =
            self.incomplete.iter().map(|id| format!("checkpoint {id} is incomplete (no {METADATA}): skipped"));
        let damaged = self.damaged.iter().map(|d| format!("checkpoint {} skipped: {}", d.id, d.reason));
        let mut skipped: Vec<(u64, String)> = self.incomplete.iter().copied().zip(incomplete).collect();
        skipped.extend(self.damaged.iter().map(|d| d.id).zip(damaged));
        skipped.sort_by_key(|s| std::cmp::Reverse(s.0));
        let skipped = skipped.into_iter().map(|(_, why)| why).collect();
        self.latest = Some(CompleteCheckpoint { metadata, dir, skipped });
        self
    }
}

/// The bytes of checkpoint metadata, framed and checksummed.
pub(crate) fn encode_metadata(m: &CheckpointMetadata) -> Result<Vec<u8>, Error> {
    encode_framed(MAGIC, VERSION, m)
}

/// The metadata in `bytes`, if whole.
pub(crate) fn decode_metadata(bytes: &[u8]) -> Result<CheckpointMetadata, String> {
    decode_framed(MAGIC, VERSION, bytes)
}

/// `value` framed as a metadata file: magic, format version, length,
/// postcard body, CRC32C of all that.
pub(crate) fn encode_framed<T: Serialize>(magic: &[u8; 8], version: u16, value: &T) -> Result<Vec<u8>, Error> {
    let body = postcard::to_stdvec(value).map_err(|e| Error::Internal(format!("encoding metadata: {e}")))?;
    let mut out = Vec::with_capacity(body.len() + 18);
    out.extend_from_slice(magic);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32c::crc32c(&out).to_be_bytes());
    Ok(out)
}

/// The value of a metadata file [`encode_framed`] wrote, if it is whole and
/// of a format version up to `version` (a newer one says so).
pub(crate) fn decode_framed<T: serde::de::DeserializeOwned>(
    magic: &[u8; 8],
    version: u16,
    bytes: &[u8],
) -> Result<T, String> {
    let Some((framed, crc)) = bytes.split_last_chunk::<4>() else { return Err("truncated".into()) };
    if crc32c::crc32c(framed) != u32::from_be_bytes(*crc) {
        return Err("checksum mismatch (truncated or damaged)".into());
    }
    let Some((found, rest)) = framed.split_first_chunk::<8>() else { return Err("truncated".into()) };
    if found != magic {
        return Err(format!("not a {} file", String::from_utf8_lossy(magic).trim_end_matches('\0')));
    }
    let Some((v, rest)) = rest.split_first_chunk::<2>() else { return Err("truncated".into()) };
    let v = u16::from_be_bytes(*v);
    if v > version {
        return Err(format!("format version {v} is newer than this build reads ({version}): use a newer dataflow"));
    }
    // Older versions decode as the current one: every version so far is 1
    // (a later change of layout decodes older ones by their version here).
    let Some((len, body)) = rest.split_first_chunk::<4>() else { return Err("truncated".into()) };
    if u32::from_be_bytes(*len) as usize != body.len() {
        return Err("length mismatch".into());
    }
    postcard::from_bytes(body).map_err(|e| format!("cannot decode: {e}"))
}

/// Checks that every file in `files` (relative to `dir`) has its recorded
/// length and CRC32C; the first that does not is the error, naming it.
pub(crate) fn verify_files(dir: &Path, files: &[StateFile]) -> Result<(), Error> {
    for f in files {
        let file = dir.join(&f.name);
        let bytes = std::fs::read(&file).map_err(|e| io(&file, e))?;
        if bytes.len() as u64 != f.len {
            return Err(corrupt(&file, format!("{} bytes, {} expected", bytes.len(), f.len)));
        }
        if crc32c::crc32c(&bytes) != f.crc32c {
            return Err(corrupt(&file, "checksum mismatch"));
        }
    }
    Ok(())
}

/// Writes `dir/name` atomically: a temporary file, fsync, rename, fsync of
/// the folder.
pub(crate) fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), Error> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = std::fs::File::create(&tmp).map_err(|e| io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| io(&tmp, e))?;
    f.sync_all().map_err(|e| io(&tmp, e))?;
    let path = dir.join(name);
    std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<(), Error> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io(dir, e))
}

impl CheckpointStorage for LocalStorage {
    fn checkpoint_dir(&self, id: u64) -> Result<PathBuf, Error> {
        let dir = self.dir(id);
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        Ok(dir)
    }

    fn complete(&self, metadata: &CheckpointMetadata) -> Result<(), Error> {
        let dir = self.checkpoint_dir(metadata.id)?;
        write_atomically(&dir, METADATA, &encode_metadata(metadata)?)
    }

    fn find(&self) -> Result<Found, Error> {
        let mut found = Found { location: self.root.display().to_string(), ..Found::default() };
        for id in self.ids()? {
            if !self.dir(id).join(METADATA).exists() {
                found.skip_incomplete(id);
                continue;
            }
            match self.verify(id) {
                Ok(metadata) => return Ok(found.with(metadata, self.dir(id))),
                Err(e) => found.skip_damaged(id, &e),
            }
        }
        Ok(found)
    }

    fn discard(&self, id: u64) -> Result<(), Error> {
        let referenced = self.referenced(id)?;
        self.remove(id, &referenced)
    }

    fn next_id(&self) -> Result<u64, Error> {
        Ok(self.ids()?.first().map_or(1, |id| id + 1))
    }

    fn retain(&self, keep: usize) -> Result<(), Error> {
        let ids = self.ids()?;
        let complete: Vec<u64> = ids.iter().copied().filter(|id| self.dir(*id).join(METADATA).exists()).collect();
        let Some(&oldest_kept) = complete.get(keep.max(1) - 1).or(complete.last()) else { return Ok(()) };
        let old: Vec<u64> = ids.into_iter().filter(|id| *id < oldest_kept).collect();
        let referenced = self.referenced(oldest_kept)?;
        old.into_iter().try_for_each(|id| self.remove(id, &referenced))
    }
}

impl LocalStorage {
    /// The files of other checkpoints' folders that the complete
    /// checkpoints from `from` on list (a file shared by a later
    /// checkpoint is named `../chk-<id>/<file>` in its metadata).
    fn referenced(&self, from: u64) -> Result<HashSet<(u64, String)>, Error> {
        let mut referenced = HashSet::new();
        for id in self.ids()?.into_iter().filter(|id| *id >= from) {
            let path = self.dir(id).join(METADATA);
            let Ok(bytes) = std::fs::read(&path) else { continue };
            let Ok(metadata) = decode_metadata(&bytes) else { continue };
            referenced.extend(metadata.files.iter().filter_map(|f| shared_file(&f.name)));
        }
        Ok(referenced)
    }

    /// Removes checkpoint `id`, except the files in `referenced`: its
    /// `_metadata` goes first (it is no longer a checkpoint), then every
    /// file no kept checkpoint needs, then the folder if it is empty.
    fn remove(&self, id: u64, referenced: &HashSet<(u64, String)>) -> Result<(), Error> {
        let dir = self.dir(id);
        if !referenced.iter().any(|(r, _)| *r == id) {
            return match std::fs::remove_dir_all(&dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&dir, e)),
                _ => Ok(()),
            };
        }
        let metadata = dir.join(METADATA);
        match std::fs::remove_file(&metadata) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&metadata, e)),
            _ => sync_dir(&dir)?,
        }
        for entry in std::fs::read_dir(&dir).map_err(|e| io(&dir, e))? {
            let entry = entry.map_err(|e| io(&dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !referenced.contains(&(id, name)) {
                let path = entry.path();
                std::fs::remove_file(&path).map_err(|e| io(&path, e))?;
            }
        }
        Ok(())
    }
}

/// The checkpoint and file name of a file shared from another
/// checkpoint's folder (`../chk-<id>/<file>`).
pub(crate) fn shared_file(name: &str) -> Option<(u64, String)> {
    let rest = name.strip_prefix("../chk-")?;
    let (id, file) = rest.split_once('/')?;
    Some((id.parse().ok()?, file.to_string()))
}

/// How checkpoint metadata names `file`, written for checkpoint `id`, when
/// a later checkpoint lists it too (incremental checkpoints share files).
///
/// ```
/// assert_eq!(dataflow_core::checkpoint::storage::shared_name(3, "op2-0"), "../chk-3/op2-0");
/// ```
pub fn shared_name(id: u64, file: &str) -> String {
    format!("../chk-{id}/{file}")
}
