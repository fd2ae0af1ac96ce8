//! Savepoints: checkpoints a user asks for and keeps, self-contained and
//! backend-independent, to stop a job, change it, rescale it, switch its
//! state backend and resume it, or to reprocess history with a new version.
//!
//! A savepoint is taken like a checkpoint (the barrier travels from the
//! sources), but it is always aligned and full, its keyed state is written
//! in the canonical, self-describing encoding (`dataflow_state`'s
//! `table::canonical`: state types may gain fields with serde defaults),
//! and everything it needs lies in its own folder:
//!
//! ```text
//! <savepoint dir>/
//!   op0-0 op0-1   # every operator instance's part (state, source position, sink committables)
//!   _metadata     # written last: format version, max parallelism, the operators
//!                 # (uid, name, parallelism) and every file with length and CRC32C
//! ```
//!
//! Operators are matched by `uid` on restore ([`Savepoint::check_operators`]);
//! an operator without one is saved under a generated id (its index in the
//! graph and its name), which changes when the graph does.
//!
//! ```no_run
//! # async fn f() -> Result<(), dataflow_core::Error> {
//! use dataflow_core::checkpoint::savepoint::Savepoint;
//! let sp = Savepoint::load("/var/lib/myjob/savepoints/sp-1")?;
//! for op in sp.operators() {
//!     println!("{} ({}): parallelism {}, {} bytes", op.uid, op.name, op.parallelism, op.bytes);
//! }
//! # Ok(()) }
//! ```

use super::framing::{decode_framed, encode_framed};
use super::storage::{CheckpointMetadata, CheckpointStorage, CompleteCheckpoint, Found, OPERATOR_STATE, StateFile};
use crate::connectors::local_folder::LocalFolder;
use crate::connectors::store::{Location, block, object_store_of, object_url, upload, url_err};
use crate::error::Error;
use crate::time::Timestamp;
use object_store::ObjectStore;
use object_store::path::Path as ObjectPath;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MAGIC: &[u8; 8] = b"DFSAVEPT";
/// The savepoint format version this build writes and the newest it reads.
pub const SAVEPOINT_VERSION: u16 = 1;
const METADATA: &str = "_metadata";

/// An operator of the job a savepoint was taken of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavepointOperator {
    /// The id its state is saved under: its `uid`, or a generated one.
    pub uid: String,
    /// Its name.
    pub name: String,
    /// Whether `uid` was generated (no `uid` was set).
    pub generated_uid: bool,
    /// Its parallelism when the savepoint was taken.
    pub parallelism: u32,
}

/// What a savepoint's `_metadata` holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavepointMetadata {
    /// The checkpoint id of the savepoint in the job that took it.
    pub id: u64,
    /// When it was triggered (processing time).
    pub timestamp: Timestamp,
    /// The job's max parallelism (its number of key groups).
    pub max_parallelism: u32,
    /// Every operator of the job.
    pub operators: Vec<SavepointOperator>,
    /// Every file, named relative to the savepoint's folder.
    pub files: Vec<StateFile>,
}

/// One operator as [`Savepoint::operators`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorSummary {
    /// The id its state is saved under.
    pub uid: String,
    /// Its name.
    pub name: String,
    /// Whether the id was generated.
    pub generated_uid: bool,
    /// Its parallelism when saved.
    pub parallelism: u32,
    /// The key groups its keyed state is split into (the job's max parallelism).
    pub key_groups: u32,
    /// Its files (one per subtask that had state): subtask and bytes.
    pub files: Vec<(u32, u64)>,
    /// Bytes of state in all.
    pub bytes: u64,
}

/// A complete savepoint, read back and checked ([`Savepoint::load`]).
#[derive(Clone, Debug)]
pub struct Savepoint {
    /// Its folder.
    pub dir: PathBuf,
    /// Its metadata.
    pub metadata: SavepointMetadata,
}

/// Whether a file listed under `listed` belongs to operator `uid`: its
/// own part, or its operator state.
fn of_operator(listed: &str, uid: &str) -> bool {
    listed.strip_prefix(uid).is_some_and(|rest| rest.is_empty() || rest == OPERATOR_STATE)
}

fn savepoint_err(dir: &Path, message: impl Into<String>) -> Error {
    Error::Savepoint { path: dir.to_path_buf(), message: message.into() }
}

impl Savepoint {
    /// Reads the savepoint in `dir` and checks every file it lists (length
    /// and CRC32C). A savepoint of a newer format version than this build
    /// reads is an [`Error::Savepoint`] that says so.
    pub fn load(dir: impl Into<PathBuf>) -> Result<Self, Error> {
        let dir = dir.into();
        let path = dir.join(METADATA);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(savepoint_err(&dir, "no _metadata: not a (complete) savepoint"));
            }
            Err(e) => return Err(Error::CheckpointIo { path: path.to_path_buf(), source: e }),
        };
        let metadata: SavepointMetadata = decode_framed(MAGIC, SAVEPOINT_VERSION, &bytes)
            .map_err(|reason| Error::CheckpointCorrupt { path: path.to_path_buf(), reason })?;
        super::storage::verify_files(&dir, &metadata.files)?;
        Ok(Self { dir, metadata })
    }

    /// The operators, with their state's size per subtask.
    pub fn operators(&self) -> Vec<OperatorSummary> {
        self.metadata
            .operators
            .iter()
            .map(|op| {
                let files: Vec<(u32, u64)> = self.files_of(&op.uid).map(|f| (f.subtask, f.len)).collect();
                OperatorSummary {
                    uid: op.uid.clone(),
                    name: op.name.clone(),
                    generated_uid: op.generated_uid,
                    parallelism: op.parallelism,
                    key_groups: self.metadata.max_parallelism,
                    bytes: files.iter().map(|(_, b)| b).sum(),
                    files,
                }
            })
            .collect()
    }

    /// Bytes of all its files.
    pub fn bytes(&self) -> u64 {
        self.metadata.files.iter().map(|f| f.len).sum()
    }

    fn files_of<'a>(&'a self, uid: &'a str) -> impl Iterator<Item = &'a StateFile> + 'a {
        self.metadata.files.iter().filter(move |f| of_operator(&f.operator, uid))
    }

    /// The parallelism operator `uid` had when saved.
    pub fn parallelism_of(&self, uid: &str) -> Option<u32> {
        self.metadata.operators.iter().find(|o| o.uid == uid).map(|o| o.parallelism)
    }

    /// Checks that a job with operators `job` (their state ids) and max
    /// parallelism `max_parallelism` can start from this savepoint: every
    /// operator with state in the savepoint must match one of the job by
    /// uid, unless `allow_non_restored_state` (its state is then dropped,
    /// with a log line); operators of the job that the savepoint does not
    /// know start empty. The key groups must be the same.
    pub fn check_operators(
        &self,
        job: &[String],
        max_parallelism: u32,
        allow_non_restored_state: bool,
    ) -> Result<(), Error> {
        if self.metadata.max_parallelism != max_parallelism {
            return Err(savepoint_err(
                &self.dir,
                format!(
                    "taken with max parallelism {} but the job has {max_parallelism}: its key groups cannot be mapped (set the same max parallelism)",
                    self.metadata.max_parallelism
                ),
            ));
        }
        let unmatched: Vec<&SavepointOperator> = (self.metadata.operators.iter())
            .filter(|op| self.files_of(&op.uid).next().is_some() && !job.contains(&op.uid))
            .collect();
        if unmatched.is_empty() {
            return Ok(());
        }
        let list = unmatched.iter().map(|op| format!("'{}' (operator '{}')", op.uid, op.name)).collect::<Vec<_>>();
        if allow_non_restored_state {
            tracing::warn!(savepoint = %self.dir.display(), operators = ?list, "state of operators that are not in the job is dropped (allow_non_restored_state)");
            return Ok(());
        }
        Err(savepoint_err(
            &self.dir,
            format!(
                "holds state of {} that match no operator of this job (its uids: {}); \
                 if a uid was renamed, set it back; to drop that state, allow non-restored state",
                list.join(", "),
                job.iter().map(|u| format!("'{u}'")).collect::<Vec<_>>().join(", ")
            ),
        ))
    }

    /// The savepoint as a complete checkpoint to restore from.
    pub(crate) fn as_checkpoint(&self) -> CompleteCheckpoint {
        let files = self.metadata.files.clone();
        CompleteCheckpoint {
            metadata: CheckpointMetadata { id: self.metadata.id, timestamp: self.metadata.timestamp, files },
            dir: self.dir.clone(),
            skipped: Vec::new(),
        }
    }
}

/// Where a savepoint's files go: its own folder, `_metadata` last.
#[derive(Debug)]
pub(crate) struct SavepointStorage {
    /// The savepoint's folder (for an object store, the local staging
    /// folder it is uploaded from).
    dir: PathBuf,
    /// Where it is uploaded to when complete, if to an object store.
    upload_to: Option<UploadTo>,
    /// Why writing it failed, if it did (for the savepoint's error).
    failure: std::sync::Mutex<Option<String>>,
    /// Set when the savepoint was aborted: a write still running must not
    /// create its folder again.
    discarded: std::sync::atomic::AtomicBool,
    max_parallelism: u32,
    operators: Vec<SavepointOperator>,
}

/// An object-store location a savepoint is uploaded to.
#[derive(Debug)]
struct UploadTo {
    url: url::Url,
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    /// Holds the staging folder.
    _staging: LocalFolder,
}

impl UploadTo {
    fn put(&self, name: &str, bytes: Vec<u8>) -> Result<(), Error> {
        let at = object_url(self.url.as_str(), name);
        let object = self.prefix.clone().join(name);
        upload(&self.store, object, bytes)?
            .map_err(|e| Error::CheckpointIo { path: at, source: std::io::Error::other(e) })
    }
}

impl SavepointStorage {
    /// A savepoint into `dir` (a path or a `file://` URL, or an object
    /// store's URL, configured by `options`), which must not exist or be
    /// empty. Into an object store, the savepoint is written to a local
    /// staging folder and uploaded when complete, `_metadata` last (a
    /// prefix that holds objects then fails it).
    pub(crate) fn new(
        dir: PathBuf,
        options: &[(String, String)],
        max_parallelism: u32,
        operators: Vec<SavepointOperator>,
    ) -> Result<Self, Error> {
        let (dir, upload_to) = match Location::of(&dir)? {
            Location::Local(dir) => (dir, None),
            Location::Url(url) => {
                let (store, prefix) = object_store_of(&url, options)?;
                let staging = LocalFolder::new("savepoint");
                let dir = staging.path().join("savepoint");
                (dir, Some(UploadTo { url, store, prefix, _staging: staging }))
            }
        };
        if std::fs::read_dir(&dir).is_ok_and(|mut entries| entries.next().is_some()) {
            return Err(savepoint_err(&dir, "the folder is not empty (a savepoint needs a folder of its own)"));
        }
        let failure = Default::default();
        Ok(Self { dir, upload_to, failure, discarded: Default::default(), max_parallelism, operators })
    }

    /// Why writing the savepoint failed, if it did.
    pub(crate) fn failure(&self) -> Option<String> {
        self.failure.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn write(&self, metadata: &CheckpointMetadata) -> Result<(), Error> {
        for op in self.operators.iter().filter(|o| o.generated_uid) {
            if metadata.files.iter().any(|f| of_operator(&f.operator, &op.uid)) {
                tracing::warn!(operator = %op.name, id = %op.uid, "an operator with state has no uid: its state is saved under a generated id, which changes when the graph changes (set one with .uid(..))");
            }
        }
        let sp = SavepointMetadata {
            id: metadata.id,
            timestamp: metadata.timestamp,
            max_parallelism: self.max_parallelism,
            operators: self.operators.clone(),
            files: metadata.files.clone(),
        };
        let dir = self.checkpoint_dir(sp.id)?;
        let encoded = encode_framed(MAGIC, SAVEPOINT_VERSION, &sp)?;
        let Some(to) = &self.upload_to else { return super::storage::write_atomically(&dir, METADATA, &encoded) };
        // (Checked here, on a blocking thread, not when requested.)
        let (store, prefix) = (to.store.clone(), to.prefix.clone());
        let listed = block(async move { store.list_with_delimiter(Some(&prefix)).await })?
            .map_err(|e| url_err(&to.url, format!("cannot list: {e}")))?;
        if !listed.objects.is_empty() || !listed.common_prefixes.is_empty() {
            return Err(url_err(&to.url, "not empty (a savepoint needs a folder of its own)"));
        }
        for f in &sp.files {
            let path = dir.join(&f.name);
            to.put(&f.name, std::fs::read(&path).map_err(Error::checkpoint_io(&path))?)?;
        }
        // The commit point, last.
        to.put(METADATA, encoded)
    }
}

impl CheckpointStorage for SavepointStorage {
    fn checkpoint_dir(&self, id: u64) -> Result<PathBuf, Error> {
        if self.discarded.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(savepoint_err(&self.dir, format!("savepoint {id} was aborted")));
        }
        std::fs::create_dir_all(&self.dir).map_err(Error::checkpoint_io(&self.dir))?;
        Ok(self.dir.clone())
    }

    fn complete(&self, metadata: &CheckpointMetadata) -> Result<(), Error> {
        let written = self.write(metadata);
        if let Err(e) = &written {
            *self.failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.to_string());
        }
        written
    }

    fn find(&self) -> Result<Found, Error> {
        Ok(Found::default())
    }

    fn discard(&self, _id: u64) -> Result<(), Error> {
        self.discarded.store(true, std::sync::atomic::Ordering::SeqCst);
        match std::fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::CheckpointIo { path: self.dir.to_path_buf(), source: e })
            }
            _ => Ok(()),
        }
    }

    fn retain(&self, _keep: usize) -> Result<(), Error> {
        Ok(())
    }
}
