//! Two-phase-commit sinks: the building block of exactly-once output.
//!
//! After a failure the sources replay what followed the last complete
//! checkpoint, so a sink that simply appends would repeat that output. A
//! [`TwoPhaseCommitSink`] (Flink's `TwoPhaseCommitSinkFunction`, or its
//! `FileSink`) writes where readers do not look, seals that durably when a
//! checkpoint barrier passes (*pre-commit*) and publishes it once the
//! checkpoint is complete (*commit*). The hooks, per subtask (the checkpoint
//! coordinator will call them; today a caller does):
//!
//! 1. [`write_batch`](TwoPhaseCommitSink::write_batch) for every batch;
//! 2. barrier `n`: [`pre_commit(n)`](TwoPhaseCommitSink::pre_commit); the
//!    committables it returns are this subtask's sink state in checkpoint `n`;
//! 3. checkpoint `n` complete: [`commit`](TwoPhaseCommitSink::commit) those
//!    committables. A lost or late notice does no harm: the next pre-commit
//!    returns them again, and committing twice is a no-op;
//! 4. restore from checkpoint `c`: a new sink,
//!    [`recover`](TwoPhaseCommitSink::recover) with `c`'s committables (or
//!    none without a checkpoint) before anything is written; the sources then
//!    replay from `c`;
//! 5. end of input: [`finish`](TwoPhaseCommitSink::finish).
//!
//! [`TransactionalFileSink`] writes lines into part files of a directory;
//! [`read_committed`] reads what readers may see. A crash after checkpoint 1
//! keeps its output and drops what came after:
//!
//! ```
//! use dataflow_core::{connectors::two_phase::*, Batch};
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let dir = tempfile::tempdir()?;
//! let mut sink = TransactionalFileSink::new(dir.path(), 0);
//! sink.write_batch(&mut Batch::from(vec![1, 2])).await?;
//! let checkpoint_1 = sink.pre_commit(1).await?; // stored with checkpoint 1
//! sink.write_batch(&mut Batch::from(vec![3])).await?;
//! assert!(read_committed(dir.path())?.is_empty()); // nothing visible yet
//! drop(sink); // crash: checkpoint 1 completed, but its notice never came
//!
//! let mut sink = TransactionalFileSink::new(dir.path(), 0);
//! sink.recover(checkpoint_1).await?; // restore from checkpoint 1; 3 is replayed
//! sink.write_batch(&mut Batch::from(vec![3])).await?;
//! sink.finish().await?;
//! assert_eq!(read_committed(dir.path())?, ["1", "2", "3"]);
//! # Ok::<(), dataflow_core::BoxError>(()) }).unwrap();
//! ```

use super::blocking::OffThread;
use crate::element::Batch;
use crate::element::Data;
use crate::error::BoxError;
use crate::error::Error;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::fmt::Display;
use std::fs::{self, File};
use std::io::{self, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

/// The checkpoint id the default [`TwoPhaseCommitSink::finish`] pre-commits under.
///
/// ```
/// assert_eq!(dataflow_core::connectors::two_phase::END_OF_INPUT, u64::MAX);
/// ```
pub const END_OF_INPUT: u64 = u64::MAX;

/// A sink with exactly-once output: written data is sealed on a checkpoint
/// barrier and published when the checkpoint completes (see the
/// [module docs](self) for the order of the calls).
///
/// ```
/// use dataflow_core::{connectors::two_phase::*, Batch, BoxError};
/// // What a coordinator does with any two-phase sink.
/// async fn checkpoint<S: TwoPhaseCommitSink<u32>>(s: &mut S, n: u64) -> Result<Vec<u8>, BoxError> {
///     let committables = s.pre_commit(n).await?;
///     let stored = postcard::to_allocvec(&committables)?; // into checkpoint n
///     s.commit(committables).await?; // once n is complete
///     Ok(stored)
/// }
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let dir = tempfile::tempdir()?;
/// let mut sink = TransactionalFileSink::new(dir.path(), 0);
/// sink.write_batch(&mut Batch::from(vec![7])).await?;
/// let stored = checkpoint(&mut sink, 1).await?;
/// assert_eq!(postcard::from_bytes::<Vec<FileCommittable>>(&stored)?[0].file, "part-0-0");
/// assert_eq!(read_committed(dir.path())?, ["7"]);
/// # Ok::<(), BoxError>(()) }).unwrap();
/// ```
#[async_trait]
pub trait TwoPhaseCommitSink<T>: Send + 'static {
    /// What a commit needs; stored in the checkpoint, so serde.
    type Committable: Serialize + serde::de::DeserializeOwned + Clone + Send + Sync + 'static;

    /// Writes a batch (invisible to readers until committed), leaving it empty.
    async fn write_batch(&mut self, batch: &mut Batch<T>) -> Result<(), BoxError>;

    /// Barrier `checkpoint`: seals everything written since the previous
    /// pre-commit (durably, but invisible to readers) and returns what
    /// committing it takes: the new committables and those of earlier
    /// pre-commits not committed yet, so checkpoint `checkpoint` alone
    /// suffices to publish everything before its barrier.
    async fn pre_commit(&mut self, checkpoint: u64) -> Result<Vec<Self::Committable>, BoxError>;

    /// Checkpoint completed: makes these visible. Idempotent: committing
    /// twice, or something already committed, is fine.
    async fn commit(&mut self, committables: Vec<Self::Committable>) -> Result<(), BoxError>;

    /// Restoring from a checkpoint: commits what it pre-committed (its notice
    /// may have been lost) and discards everything else this subtask left
    /// unfinished (it will be written again from replayed input). Call it on
    /// a new sink, before writing; with an empty list on a fresh start.
    async fn recover(&mut self, committables: Vec<Self::Committable>) -> Result<(), BoxError>;

    /// End of input: pre-commits (as [`END_OF_INPUT`]) and commits whatever
    /// is left, so a bounded job's end is its last commit. Once this
    /// returns, the job must not be restored from an earlier checkpoint (its
    /// replay would repeat published output); a job that checkpoints may end
    /// with a final checkpoint instead. (The [module docs](self) show it.)
    async fn finish(&mut self) -> Result<(), BoxError> {
        let committables = self.pre_commit(END_OF_INPUT).await?;
        self.commit(committables).await
    }

    /// How far this subtask's output had got at its latest pre-commit, if
    /// the sink can tell (the file sink: its next part's sequence number);
    /// stored in the checkpoint beside the committables. Default: `None`.
    fn output_mark(&self) -> Option<u64> {
        None
    }

    /// Like [`recover`](Self::recover), when the job restores a checkpoint
    /// older than complete ones that are damaged (a fallback the job
    /// allowed): first removes the output committed after the pre-commit
    /// whose [`output_mark`](Self::output_mark) was `mark`, so nothing is
    /// published twice. The default refuses (it cannot tell what to
    /// remove).
    async fn recover_discarding_later(
        &mut self,
        committables: Vec<Self::Committable>,
        mark: Option<u64>,
    ) -> Result<(), BoxError> {
        let _ = (committables, mark);
        Err("this sink cannot remove the output it committed after the restored checkpoint".into())
    }
}

fn io_err(op: &'static str, file: &Path) -> impl FnOnce(io::Error) -> Error {
    move |source| Error::SinkIo { op, path: file.to_path_buf(), source }
}

fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err("sync directory", dir))
}

/// What publishing one sealed part file takes: its hidden pending name and
/// its final, visible name, both relative to the sink's directory.
///
/// ```
/// use dataflow_core::connectors::two_phase::FileCommittable;
/// let c = FileCommittable { pending: ".part-0-4.pending".into(), file: "part-0-4".into() };
/// let bytes = postcard::to_allocvec(&c).unwrap();
/// assert_eq!(postcard::from_bytes::<FileCommittable>(&bytes).unwrap(), c);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileCommittable {
    /// The sealed, hidden file (`.part-<subtask>-<seq>.pending`).
    pub pending: String,
    /// The name it gets when committed (`part-<subtask>-<seq>`).
    pub file: String,
}

#[derive(Debug)]
struct Part {
    path: PathBuf,
    seq: u64,
    out: File,
}

/// A two-phase-commit sink writing each value's `Display` form as a line
/// (values must not contain newlines), subtask `i` of a job into part files
/// of one directory (created if missing):
///
/// * `.part-<i>-<seq>.inprogress`: being written, hidden;
/// * `.part-<i>-<seq>.pending`: sealed by a pre-commit (flushed, fsynced,
///   renamed, directory fsynced), hidden; a [`FileCommittable`];
/// * `part-<i>-<seq>`: committed (renamed, directory fsynced), visible.
///
/// A pre-commit with new data seals one part, one without seals nothing.
/// Sequence numbers only grow, past every file of the subtask in the
/// directory, so names never collide and an existing final file can only be
/// the committed form of its pending file. Subtasks touch only their own
/// files, so they can share a directory; as [`recover`] deletes subtask
/// `i`'s hidden files that its committables do not name, the committables
/// of subtask `i`'s files must go to subtask `i`. Each batch's lines are
/// written, like every other file operation, on tokio's blocking pool, not
/// on the async worker threads.
///
/// [`recover`]: TwoPhaseCommitSink::recover
///
/// ```
/// use dataflow_core::{connectors::two_phase::*, Batch};
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let dir = tempfile::tempdir()?;
/// let mut sink = TransactionalFileSink::new(dir.path(), 3);
/// sink.write_batch(&mut Batch::from(vec![String::from("a")])).await?;
/// let committables = sink.pre_commit(1).await?;
/// assert_eq!(committables, [FileCommittable { pending: ".part-3-0.pending".into(), file: "part-3-0".into() }]);
/// sink.commit(committables).await?;
/// assert_eq!(std::fs::read_to_string(dir.path().join("part-3-0"))?, "a\n");
/// # Ok::<(), dataflow_core::BoxError>(()) }).unwrap();
/// ```
#[derive(Debug)]
pub struct TransactionalFileSink<T> {
    files: OffThread<PartFiles>,
    /// The next part's sequence number at the latest pre-commit.
    mark: Option<u64>,
    /// A batch's lines, formatted here and written on the blocking pool.
    lines: Vec<u8>,
    values: PhantomData<fn(T)>,
}

/// A subtask's part files: all the sink's file work, run on the blocking
/// pool.
#[derive(Debug)]
struct PartFiles {
    dir: PathBuf,
    subtask: usize,
    /// `None` until the directory was scanned.
    next_seq: Option<u64>,
    part: Option<Part>,
    /// Pre-committed and not known to be committed, oldest first.
    uncommitted: Vec<FileCommittable>,
}

impl<T> TransactionalFileSink<T> {
    /// The sink of subtask `subtask` in `dir`; touches nothing until used.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let _sink = dataflow_core::connectors::two_phase::TransactionalFileSink::<u64>::new(dir.path().join("out"), 0);
    /// assert!(!dir.path().join("out").exists());
    /// ```
    pub fn new(dir: impl Into<PathBuf>, subtask: usize) -> Self {
        let files = PartFiles { dir: dir.into(), subtask, next_seq: None, part: None, uncommitted: Vec::new() };
        Self { files: OffThread::new(files), mark: None, lines: Vec::new(), values: PhantomData }
    }

    /// Writes the buffered lines to the part file (opening one if needed).
    async fn write_lines(&mut self) -> Result<(), Error> {
        if self.lines.is_empty() {
            return Ok(()); // so an empty part is never opened
        }
        let lines = std::mem::take(&mut self.lines);
        self.files.run(move |files| files.write(&lines)).await
    }
}

impl PartFiles {
    /// The sequence number of `name` and whether it is hidden, if it is one
    /// of this subtask's files.
    fn parse(&self, name: &str) -> Option<(u64, bool)> {
        let stem = match name.strip_prefix('.') {
            None => name,
            Some(h) => h.strip_suffix(".inprogress").or_else(|| h.strip_suffix(".pending"))?,
        };
        let (subtask, seq) = stem.strip_prefix("part-")?.split_once('-')?;
        let num = |s: &str| s.bytes().all(|b| b.is_ascii_digit()).then(|| s.parse::<u64>().ok()).flatten();
        (num(subtask)? == self.subtask as u64).then_some((num(seq)?, name.starts_with('.')))
    }

    /// Lists this subtask's files (name, hidden) and moves `next_seq` past all of them.
    fn scan(&mut self) -> Result<Vec<(String, bool)>, Error> {
        fs::create_dir_all(&self.dir).map_err(io_err("create directory", &self.dir))?;
        let mut own = Vec::new();
        let mut next = self.next_seq.unwrap_or(0);
        for entry in fs::read_dir(&self.dir).map_err(io_err("list", &self.dir))? {
            let entry = entry.map_err(io_err("list", &self.dir))?;
            let Some(name) = entry.file_name().to_str().map(String::from) else { continue };
            if let Some((seq, hidden)) = self.parse(&name) {
                next = next.max(seq.saturating_add(1));
                own.push((name, hidden));
            }
        }
        self.next_seq = Some(next);
        Ok(own)
    }

    fn open_part(&mut self) -> Result<&mut Part, Error> {
        let part = match self.part.take() {
            Some(part) => part,
            None => {
                if self.next_seq.is_none() {
                    self.scan()?;
                }
                let seq = self.next_seq.unwrap_or(0);
                let path = self.dir.join(format!(".part-{}-{seq}.inprogress", self.subtask));
                let file = fs::OpenOptions::new().write(true).create_new(true).open(&path);
                let out = file.map_err(io_err("create", &path))?;
                self.next_seq = Some(seq.saturating_add(1));
                Part { path, seq, out }
            }
        };
        Ok(self.part.insert(part))
    }

    fn seal(&mut self) -> Result<(), Error> {
        let Some(part) = self.part.take() else { return Ok(()) };
        part.out.sync_all().map_err(io_err("sync", &part.path))?;
        drop(part.out);
        let c = FileCommittable {
            pending: format!(".part-{}-{}.pending", self.subtask, part.seq),
            file: format!("part-{}-{}", self.subtask, part.seq),
        };
        fs::rename(&part.path, self.dir.join(&c.pending)).map_err(io_err("rename", &part.path))?;
        sync_dir(&self.dir)?;
        self.uncommitted.push(c);
        Ok(())
    }

    /// `dir/name`, if `name` is a plain file name, hidden or not as asked.
    fn file(&self, name: &str, hidden: bool) -> Result<PathBuf, Error> {
        let plain = !name.contains(['/', '\\']) && !matches!(name, "" | "." | "..");
        match plain && name.starts_with('.') == hidden {
            true => Ok(self.dir.join(name)),
            false => Err(Error::SinkCommit {
                path: name.into(),
                reason: format!("not a part file of {}", self.dir.display()),
            }),
        }
    }

    fn commit_all(&mut self, committables: &[FileCommittable]) -> Result<(), Error> {
        for c in committables {
            let (pending, file) = (self.file(&c.pending, true)?, self.file(&c.file, false)?);
            match fs::rename(&pending, &file) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    // Committed before (the pending file is gone, the final one exists).
                    if !file.try_exists().map_err(io_err("look up", &file))? {
                        return Err(Error::SinkCommit {
                            path: file.clone(),
                            reason: format!("neither it nor {} exists", pending.display()),
                        });
                    }
                }
                Err(e) => return Err(io_err("commit (rename)", &pending)(e)),
            }
        }
        if !committables.is_empty() {
            // Also after no-op commits: a rename before a crash may not be durable yet.
            sync_dir(&self.dir)?;
        }
        self.uncommitted.retain(|c| !committables.contains(c));
        Ok(())
    }

    fn write(&mut self, lines: &[u8]) -> Result<(), Error> {
        let part = self.open_part()?;
        part.out.write_all(lines).map_err(io_err("write", &part.path))
    }

    /// Seals the open part; returns what is not committed yet and the next
    /// part's sequence number (every part sealed so far is below it).
    fn pre_commit(&mut self) -> Result<(Vec<FileCommittable>, u64), Error> {
        self.seal()?;
        if self.next_seq.is_none() {
            self.scan()?;
        }
        Ok((self.uncommitted.clone(), self.next_seq.unwrap_or(0)))
    }

    /// Removes this subtask's committed parts from sequence number `mark`
    /// on (committed after the pre-commit that returned it), each with a
    /// warning.
    fn remove_committed_from(&mut self, mark: u64) -> Result<(), Error> {
        self.part = None;
        for (name, hidden) in self.scan()? {
            let later = self.parse(&name).is_some_and(|(seq, _)| seq >= mark);
            if hidden || !later {
                continue;
            }
            let path = self.dir.join(&name);
            match fs::remove_file(&path) {
                Ok(()) => {
                    tracing::warn!(file = %path.display(), "removed a part committed after the restored checkpoint (it follows damaged checkpoints; its records are written again)")
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("remove", &path)(e)),
            }
        }
        sync_dir(&self.dir)
    }

    /// Commits `committables` and deletes this subtask's other hidden files.
    fn recover(&mut self, committables: &[FileCommittable]) -> Result<(), Error> {
        self.part = None; // abandoned: deleted below like any leftover
        self.uncommitted.clear();
        let own = self.scan()?;
        self.commit_all(committables)?;
        for (name, hidden) in own {
            if !hidden || committables.iter().any(|c| c.pending == name) {
                continue;
            }
            let path = self.dir.join(&name);
            match fs::remove_file(&path) {
                Ok(()) => tracing::debug!(file = %path.display(), "removed an uncommitted part"),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("remove", &path)(e)),
            }
        }
        Ok(())
    }
}

#[async_trait]
impl<T: Data + Display> TwoPhaseCommitSink<T> for TransactionalFileSink<T> {
    type Committable = FileCommittable;

    async fn write_batch(&mut self, batch: &mut Batch<T>) -> Result<(), BoxError> {
        for v in batch.drain_values() {
            writeln!(self.lines, "{v}").map_err(|e| Error::Internal(format!("formatting a line: {e}")))?;
        }
        Ok(self.write_lines().await?)
    }

    async fn pre_commit(&mut self, checkpoint: u64) -> Result<Vec<FileCommittable>, BoxError> {
        self.write_lines().await?;
        let (uncommitted, mark) = self.files.run(|files| files.pre_commit()).await?;
        tracing::debug!(checkpoint, parts = uncommitted.len(), "pre-committed");
        self.mark = Some(mark);
        Ok(uncommitted)
    }

    fn output_mark(&self) -> Option<u64> {
        self.mark
    }

    async fn recover_discarding_later(
        &mut self,
        committables: Vec<FileCommittable>,
        mark: Option<u64>,
    ) -> Result<(), BoxError> {
        let Some(mark) = mark else {
            let dir = self.files.run(|files| Ok::<_, Error>(files.dir.clone())).await?;
            return Err(Error::SinkCommit {
                path: dir,
                reason: "the restored checkpoint does not record how far this sink's output went (no mark): \
                         cannot remove what was committed after it"
                    .into(),
            }
            .into());
        };
        self.lines.clear();
        Ok(self
            .files
            .run(move |files| files.remove_committed_from(mark).and_then(|()| files.recover(&committables)))
            .await?)
    }

    async fn commit(&mut self, committables: Vec<FileCommittable>) -> Result<(), BoxError> {
        Ok(self.files.run(move |files| files.commit_all(&committables)).await?)
    }

    async fn recover(&mut self, committables: Vec<FileCommittable>) -> Result<(), BoxError> {
        self.lines.clear(); // abandoned with the part they belonged to
        Ok(self.files.run(move |files| files.recover(&committables)).await?)
    }
}

/// The lines of every visible part file in `dir`: the files
/// `part-<subtask>-<seq>` in (subtask, seq) order, numerically (`part-0-2`
/// before `part-0-10`: each subtask's output in write order), then any other
/// file whose name starts with `part-`, by name. Hidden files are skipped.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::write(dir.path().join("part-0-10"), "c\n").unwrap();
/// std::fs::write(dir.path().join("part-0-2"), "a\nb\n").unwrap();
/// std::fs::write(dir.path().join(".part-0-11.pending"), "hidden\n").unwrap();
/// let lines = dataflow_core::connectors::two_phase::read_committed(dir.path()).unwrap();
/// assert_eq!(lines, ["a", "b", "c"]);
/// ```
pub fn read_committed(dir: impl AsRef<Path>) -> Result<Vec<String>, Error> {
    let dir = dir.as_ref();
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err("list", dir))? {
        let path = entry.map_err(io_err("list", dir))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
        let Some(rest) = name.strip_prefix("part-").filter(|_| path.is_file()) else { continue };
        let key = rest.split_once('-').and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)));
        files.push((key.is_none(), key, name.to_string(), path.clone()));
    }
    files.sort();
    let mut lines = Vec::new();
    for (_, _, _, path) in files {
        let text = fs::read_to_string(&path).map_err(io_err("read", &path))?;
        lines.extend(text.lines().map(String::from));
    }
    Ok(lines)
}

/// A [`TwoPhaseCommitSink`] as a [`Sink`](super::Sink) a job runs: its
/// committables are its part of each checkpoint, committed when the
/// checkpoint completes and recovered when the job resumes.
///
/// ```
/// use dataflow_core::connectors::two_phase::{read_committed, TransactionalFileSink, TransactionalSink};
/// use dataflow_core::connectors::Sink;
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let dir = tempfile::tempdir().unwrap();
/// let mut s = TransactionalSink::new(TransactionalFileSink::new(dir.path(), 0));
/// let mut batch = dataflow_core::Batch::new();
/// batch.push_with(7u32, None);
/// s.write_batch(&mut batch).await.unwrap();
/// let part = s.pre_commit(1).await.unwrap();
/// assert!(part.is_some() && read_committed(dir.path()).unwrap().is_empty());
/// s.commit(1).await.unwrap();
/// assert_eq!(read_committed(dir.path()).unwrap(), ["7"]);
/// # });
/// ```
#[derive(Debug)]
pub struct TransactionalSink<T, S: TwoPhaseCommitSink<T>> {
    sink: S,
    /// What each pending checkpoint would commit.
    pending: std::collections::BTreeMap<u64, Vec<S::Committable>>,
    _t: PhantomData<fn(T)>,
}

impl<T, S: TwoPhaseCommitSink<T>> TransactionalSink<T, S> {
    /// Runs `sink` with the job's checkpoints.
    pub fn new(sink: S) -> Self {
        Self { sink, pending: std::collections::BTreeMap::new(), _t: PhantomData }
    }
}

#[async_trait]
impl<T: Send + 'static, S: TwoPhaseCommitSink<T>> super::Sink<T> for TransactionalSink<T, S> {
    async fn write_batch(&mut self, batch: &mut Batch<T>) -> Result<(), BoxError> {
        self.sink.write_batch(batch).await
    }

    async fn finish(&mut self) -> Result<(), BoxError> {
        self.sink.finish().await
    }

    async fn pre_commit(&mut self, checkpoint: u64) -> Result<Option<Vec<u8>>, BoxError> {
        let committables = self.sink.pre_commit(checkpoint).await?;
        let part = postcard::to_stdvec(&(&committables, self.sink.output_mark()))?;
        self.pending.insert(checkpoint, committables);
        Ok(Some(part))
    }

    async fn commit(&mut self, checkpoint: u64) -> Result<(), BoxError> {
        while let Some(entry) = self.pending.first_entry()
            && *entry.key() <= checkpoint
        {
            self.sink.commit(entry.remove()).await?;
        }
        Ok(())
    }

    async fn recover(&mut self, part: Option<Vec<u8>>) -> Result<(), BoxError> {
        let (committables, _) = decode_part(part.as_deref())?;
        self.sink.recover(committables).await
    }

    async fn recover_past_damaged(&mut self, part: Option<Vec<u8>>) -> Result<(), BoxError> {
        let (committables, mark) = decode_part(part.as_deref())?;
        self.sink.recover_discarding_later(committables, mark).await
    }
}

/// A [`TransactionalSink`]'s part of a checkpoint: its committables and
/// the sink's [`output_mark`](TwoPhaseCommitSink::output_mark) (parts
/// written before the mark existed hold the committables alone).
type DecodedPart<C> = (Vec<C>, Option<u64>);

fn decode_part<C: serde::de::DeserializeOwned>(part: Option<&[u8]>) -> Result<DecodedPart<C>, BoxError> {
    let Some(bytes) = part else { return Ok((Vec::new(), None)) };
    if let Ok((decoded, [])) = postcard::take_from_bytes::<DecodedPart<C>>(bytes) {
        return Ok(decoded);
    }
    let committables =
        postcard::from_bytes(bytes).map_err(|e| format!("a sink's checkpoint part does not decode: {e}"))?;
    Ok((committables, None))
}
