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
//! [`Found::restore_point`] is the rule a job restores by (choosing
//! between the latest intact checkpoint and a savepoint the job starts
//! from): incomplete ones are skipped with a warning, but a damaged one
//! newer than what is restored fails the restore, naming it, unless
//! falling back past it is allowed
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
//! let restore = storage.find().unwrap().restore_point(false, None).unwrap().restore;
//! assert!(matches!(restore, dataflow_core::checkpoint::storage::Restore::Checkpoint(cp) if cp.metadata.id == 1));
//! ```

use super::framing::{decode_framed, encode_framed};
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
        let (len, crc32c) = length_and_crc(&path)?;
        Ok(Self { operator: operator.to_string(), subtask, name: name.to_string(), len, crc32c })
    }
}

/// The length and CRC32C of the file at `path`, read in chunks (a state
/// file can be as large as the state: reading it whole would take that
/// much memory, measured at 1.1 GiB for a full checkpoint of fjall state).
fn length_and_crc(path: &Path) -> Result<(u64, u32), Error> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| io(path, e))?;
    let mut buf = vec![0u8; 1 << 20];
    let (mut len, mut crc) = (0u64, 0u32);
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Ok((len, crc)),
            Ok(n) => {
                crc = crc32c::crc32c_append(crc, &buf[..n]);
                len += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io(path, e)),
        }
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

pub use crate::error::DamagedCheckpoint;

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
    /// The highest checkpoint id there, whatever its state (0: none): a
    /// new run numbers its checkpoints above it, never reusing a folder.
    pub highest_id: u64,
}

/// What a job restores from ([`Found::restore_point`]).
#[derive(Clone, Debug)]
pub enum Restore {
    /// Nothing: the job starts fresh.
    Fresh,
    /// The latest intact checkpoint.
    Checkpoint(CompleteCheckpoint),
    /// The savepoint the job was told to start from.
    Savepoint,
}

/// What a job restores from, and whether damaged checkpoints are newer
/// than it (an allowed fallback: sinks first remove the output committed
/// after it).
#[derive(Clone, Debug)]
pub struct RestorePoint {
    /// What is restored.
    pub restore: Restore,
    /// Whether complete checkpoints newer than what is restored are
    /// damaged (only with the fallback allowed).
    pub past_damaged: bool,
}

impl Found {
    /// What a job restores from, by the rule of the [module docs](self):
    /// the latest intact checkpoint, or the savepoint `savepoint` (its
    /// id: the job was told to start from it) when no checkpoint taken
    /// since it (a higher id) is intact; past damaged checkpoints newer
    /// than what is restored only with `allow_fallback` (then
    /// `past_damaged`); [`Restore::Fresh`] only where neither a savepoint
    /// nor a complete checkpoint exists. Damage to checkpoints older than
    /// what is restored does not matter. The error
    /// ([`Error::CheckpointDamaged`]) names each damaged checkpoint and why.
    pub fn restore_point(self, allow_fallback: bool, savepoint: Option<u64>) -> Result<RestorePoint, Error> {
        let Found { latest, mut damaged, incomplete, location, .. } = self;
        if !incomplete.is_empty() {
            tracing::warn!(location = %location, checkpoints = ?incomplete, "incomplete checkpoints (no {METADATA}) skipped");
        }
        // A checkpoint taken since the savepoint (its ids continue above
        // the savepoint's: the job restarted) wins; an older one (taken
        // before the savepoint, by the job it was taken of) does not.
        let (restore, restored) = match (latest, savepoint) {
            (Some(cp), sp) if sp.is_none_or(|sp| cp.metadata.id > sp) => {
                let id = cp.metadata.id;
                (Restore::Checkpoint(cp), Some(id))
            }
            (_, Some(sp)) => (Restore::Savepoint, Some(sp)),
            // (A checkpoint without a savepoint is taken above.)
            _ => (Restore::Fresh, None),
        };
        if let Some(restored) = restored {
            damaged.retain(|d| d.id > restored);
        }
        if damaged.is_empty() {
            return Ok(RestorePoint { restore, past_damaged: false });
        }
        match restored {
            Some(restored) if allow_fallback => {
                tracing::warn!(location = %location, restored, damaged = ?damaged.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
                    "falling back past damaged checkpoints (allowed): sinks remove the output committed after the restored one");
                Ok(RestorePoint { restore, past_damaged: true })
            }
            fallback => Err(Error::CheckpointDamaged { location, fallback, damaged }),
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
    /// kept here, complete or not (1 if none).
    fn next_id(&self) -> Result<u64, Error> {
        Ok(self.find()?.highest_id + 1)
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
}

/// What a checkpoint storage is made of. The rules (which checkpoint is
/// found, retention, discarding) are written once over these primitives
/// ([`find_in`], [`retain_in`], [`discard_in`]).
pub(crate) trait Folders {
    /// Where the checkpoints are (for messages).
    fn location(&self) -> String;
    /// Every checkpoint folder, newest first: its id and its files' names.
    fn list(&self) -> Result<Vec<(u64, Vec<String>)>, Error>;
    /// How messages name file `name` of checkpoint `id`.
    fn at(&self, id: u64, name: &str) -> PathBuf;
    /// The bytes of file `name` of checkpoint `id` (a missing one is an
    /// [`Error::CheckpointIo`] of kind `NotFound`), errors naming it.
    fn read(&self, id: u64, name: &str) -> Result<Vec<u8>, Error>;
    /// Checks `files` of checkpoint `id` (length and CRC32C, through
    /// [`check`]) and returns the local folder they are restored from.
    fn fetch(&self, id: u64, files: &[StateFile]) -> Result<PathBuf, Error>;
    /// Deletes file `name` of checkpoint `id` (already gone: fine).
    fn delete(&self, id: u64, name: &str) -> Result<(), Error>;
    /// After the files of checkpoint `id` were deleted (`emptied`: all of
    /// them), removes what is left of it.
    fn delete_folder(&self, id: u64, emptied: bool) -> Result<(), Error>;
}

fn has_metadata(names: &[String]) -> bool {
    names.iter().any(|n| n == METADATA)
}

/// Whether `e`, met reading a complete checkpoint, means it is damaged (a
/// file corrupt or missing) rather than unreachable for now (any other
/// I/O error, which propagates and is retried like others).
fn is_damage(e: &Error) -> bool {
    match e {
        Error::CheckpointCorrupt { .. } => true,
        Error::CheckpointIo { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
        _ => false,
    }
}

/// Checks `bytes`, read from `at`, against `f`'s length and CRC32C.
pub(crate) fn check(at: &Path, bytes: &[u8], f: &StateFile) -> Result<(), Error> {
    matches(at, bytes.len() as u64, crc32c::crc32c(bytes), f)
}

/// Whether a file of `len` bytes with checksum `crc` is `f`.
fn matches(at: &Path, len: u64, crc: u32, f: &StateFile) -> Result<(), Error> {
    if len != f.len {
        return Err(corrupt(at, format!("{len} bytes, {} expected", f.len)));
    }
    if crc != f.crc32c {
        return Err(corrupt(at, "checksum mismatch"));
    }
    Ok(())
}

/// The metadata of checkpoint `id`, if whole and its own.
fn metadata_in<F: Folders + ?Sized>(store: &F, id: u64) -> Result<CheckpointMetadata, Error> {
    let bytes = store.read(id, METADATA)?;
    let path = store.at(id, METADATA);
    let metadata = decode_metadata(&bytes).map_err(|reason| corrupt(&path, reason))?;
    if metadata.id != id {
        return Err(corrupt(&path, format!("it describes checkpoint {}", metadata.id)));
    }
    Ok(metadata)
}

/// [`CheckpointStorage::find`] over `store`.
pub(crate) fn find_in<F: Folders + ?Sized>(store: &F) -> Result<Found, Error> {
    let listing = store.list()?;
    let highest_id = listing.first().map_or(0, |(id, _)| *id);
    let mut found = Found { location: store.location(), highest_id, ..Found::default() };
    for (id, names) in listing {
        if !has_metadata(&names) {
            found.skip_incomplete(id);
            continue;
        }
        let fetched = metadata_in(store, id).and_then(|m| Ok((store.fetch(id, &m.files)?, m)));
        match fetched {
            Ok((dir, metadata)) => return Ok(found.with(metadata, dir)),
            Err(e) if is_damage(&e) => found.skip_damaged(id, &e),
            Err(e) => return Err(e),
        }
    }
    Ok(found)
}

/// [`CheckpointStorage::retain`] over `store`.
pub(crate) fn retain_in<F: Folders + ?Sized>(store: &F, keep: usize) -> Result<(), Error> {
    let listing = store.list()?;
    let complete: Vec<u64> = listing.iter().filter(|(_, names)| has_metadata(names)).map(|(id, _)| *id).collect();
    let Some(&oldest_kept) = complete.get(keep.max(1) - 1).or(complete.last()) else { return Ok(()) };
    let referenced = referenced(store, &listing, oldest_kept)?;
    (listing.iter().filter(|(id, _)| *id < oldest_kept))
        .try_for_each(|(id, names)| remove(store, *id, names, &referenced))
}

/// [`CheckpointStorage::discard`] over `store`.
pub(crate) fn discard_in<F: Folders + ?Sized>(store: &F, id: u64) -> Result<(), Error> {
    let listing = store.list()?;
    let referenced = referenced(store, &listing, id)?;
    let names = listing.iter().find(|(i, _)| *i == id).map_or(&[][..], |(_, names)| names.as_slice());
    remove(store, id, names, &referenced)
}

/// The files of other checkpoints that the complete checkpoints from
/// `from` on list (a file shared by a later checkpoint is named
/// `../chk-<id>/<file>` in its metadata). A checkpoint whose metadata is
/// corrupt (or gone meanwhile) lists nothing; any other error reading it
/// is the error, so that nothing a kept checkpoint needs is removed.
fn referenced<F: Folders + ?Sized>(
    store: &F,
    listing: &[(u64, Vec<String>)],
    from: u64,
) -> Result<HashSet<(u64, String)>, Error> {
    let mut referenced = HashSet::new();
    for (id, _) in listing.iter().filter(|(id, names)| *id >= from && has_metadata(names)) {
        match metadata_in(store, *id) {
            Ok(metadata) => referenced.extend(metadata.files.iter().filter_map(|f| shared_file(&f.name))),
            Err(e) if is_damage(&e) => {
                tracing::warn!(checkpoint = id, error = %e, "retention: damaged metadata lists nothing")
            }
            Err(e) => return Err(e),
        }
    }
    Ok(referenced)
}

/// Removes checkpoint `id` (its files `names`), except the files in
/// `referenced`: its `_metadata` goes first (it is no longer a
/// checkpoint), then every file no kept checkpoint needs.
fn remove<F: Folders + ?Sized>(
    store: &F,
    id: u64,
    names: &[String],
    referenced: &HashSet<(u64, String)>,
) -> Result<(), Error> {
    if has_metadata(names) {
        store.delete(id, METADATA)?;
    }
    let kept = |name: &String| referenced.contains(&(id, name.clone()));
    for name in names.iter().filter(|n| *n != METADATA && !kept(n)) {
        store.delete(id, name)?;
    }
    store.delete_folder(id, !names.iter().any(kept))
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

/// Checks that every file in `files` (relative to `dir`) has its recorded
/// length and CRC32C; the first that does not is the error, naming it.
pub(crate) fn verify_files(dir: &Path, files: &[StateFile]) -> Result<(), Error> {
    for f in files {
        let file = dir.join(&f.name);
        let (len, crc) = length_and_crc(&file)?;
        matches(&file, len, crc, f)?;
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
        find_in(self)
    }

    fn discard(&self, id: u64) -> Result<(), Error> {
        discard_in(self, id)
    }

    fn next_id(&self) -> Result<u64, Error> {
        Ok(self.list()?.first().map_or(1, |(id, _)| id + 1))
    }

    fn retain(&self, keep: usize) -> Result<(), Error> {
        retain_in(self, keep)
    }
}

/// The names in folder `dir` (none if it is gone).
fn names_in(dir: &Path) -> Result<Vec<String>, Error> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(dir, e)),
    };
    let names = entries.map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()).map_err(|e| io(dir, e)));
    names.collect()
}

impl Folders for LocalStorage {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn list(&self) -> Result<Vec<(u64, Vec<String>)>, Error> {
        let mut ids: Vec<u64> = (names_in(&self.root)?.iter())
            .filter_map(|n| n.strip_prefix("chk-").and_then(|n| n.parse().ok()))
            .collect();
        ids.sort_unstable_by(|a, b| b.cmp(a));
        ids.into_iter().map(|id| Ok((id, names_in(&self.dir(id))?))).collect()
    }

    fn at(&self, id: u64, name: &str) -> PathBuf {
        self.dir(id).join(name)
    }

    fn read(&self, id: u64, name: &str) -> Result<Vec<u8>, Error> {
        let path = self.at(id, name);
        std::fs::read(&path).map_err(|e| io(&path, e))
    }

    fn fetch(&self, id: u64, files: &[StateFile]) -> Result<PathBuf, Error> {
        verify_files(&self.dir(id), files)?;
        Ok(self.dir(id))
    }

    fn delete(&self, id: u64, name: &str) -> Result<(), Error> {
        let path = self.at(id, name);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&path, e)),
            // Durably no longer a checkpoint before its files go.
            _ if name == METADATA => sync_dir(&self.dir(id)),
            _ => Ok(()),
        }
    }

    fn delete_folder(&self, id: u64, emptied: bool) -> Result<(), Error> {
        let dir = self.dir(id);
        match emptied.then(|| std::fs::remove_dir_all(&dir)) {
            Some(Err(e)) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&dir, e)),
            _ => Ok(()),
        }
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
