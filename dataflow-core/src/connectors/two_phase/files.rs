//! [`TransactionalFileSink`]: exactly-once part files in a directory, and
//! [`read_committed`], what readers of that directory may see.

use super::TwoPhaseCommitSink;
use super::folder::{Folder, io_err};
use crate::connectors::blocking::OffThread;
use crate::element::{Batch, Data};
use crate::error::{BoxError, Error};
use crate::time::Clock;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::fmt::Display;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

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
    bytes: u64,
    /// When it was opened (processing time, ms), for rolling by time.
    opened: i64,
}

/// When the open part is rolled over, besides every checkpoint.
#[derive(Clone, Copy, Debug, Default)]
struct Rolling {
    max_bytes: Option<u64>,
    /// The part's age (ms) and the time now.
    max_age: Option<(i64, i64)>,
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
pub struct TransactionalFileSink<T> {
    files: OffThread<PartFiles>,
    /// The next part's sequence number at the latest pre-commit.
    mark: Option<u64>,
    /// A batch's lines, formatted here and written on the blocking pool.
    lines: Vec<u8>,
    encode: Encoder<T>,
    /// A part is sealed once it holds this many bytes.
    max_part_bytes: Option<u64>,
    /// A part is sealed once it is this old, by this clock.
    max_part_age: Option<(Duration, Arc<dyn Clock>)>,
}

/// Appends one value's line (with its line break) to a buffer.
pub type Encoder<T> = Arc<dyn Fn(&T, &mut Vec<u8>) -> Result<(), String> + Send + Sync>;

impl<T> std::fmt::Debug for TransactionalFileSink<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransactionalFileSink").field("files", &self.files).field("mark", &self.mark).finish()
    }
}

/// A subtask's part files: all the sink's file work, run on the blocking
/// pool.
#[derive(Debug)]
struct PartFiles {
    dir: PathBuf,
    /// Object store options, for a `dir` that is a URL.
    options: Arc<[(String, String)]>,
    /// `dir`, once opened.
    folder: Option<Folder>,
    subtask: usize,
    /// `None` until the directory was scanned.
    next_seq: Option<u64>,
    part: Option<Part>,
    /// Pre-committed and not known to be committed, oldest first.
    uncommitted: Vec<FileCommittable>,
}

impl<T: Display> TransactionalFileSink<T> {
    /// The sink of subtask `subtask` in `dir`, a value's `Display` form per
    /// line; touches nothing until used.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let _sink = dataflow_core::connectors::two_phase::TransactionalFileSink::<u64>::new(dir.path().join("out"), 0);
    /// assert!(!dir.path().join("out").exists());
    /// ```
    pub fn new(dir: impl Into<PathBuf>, subtask: usize) -> Self {
        Self::with_encoder(
            dir,
            subtask,
            Arc::new(|v: &T, out: &mut Vec<u8>| writeln!(out, "{v}").map_err(|e| e.to_string())),
        )
    }
}

impl<T> TransactionalFileSink<T> {
    /// The sink of subtask `subtask` in `dir`, each value's line made by
    /// `encode` (see [`Format::encoder`](crate::connectors::file::Format::encoder)).
    pub fn with_encoder(dir: impl Into<PathBuf>, subtask: usize, encode: Encoder<T>) -> Self {
        let (dir, options, folder) = (dir.into(), Arc::from([]), None);
        let files = PartFiles { dir, options, folder, subtask, next_seq: None, part: None, uncommitted: Vec::new() };
        let (mark, lines, max_part_bytes, max_part_age) = (None, Vec::new(), None, None);
        Self { files: OffThread::new(files), mark, lines, encode, max_part_bytes, max_part_age }
    }

    /// Options for the object store when the folder is an object store's
    /// URL (`s3://bucket/out`; see
    /// [`StreamEnvironment::set_storage_options`](crate::StreamEnvironment::set_storage_options)).
    pub fn with_storage_options(mut self, options: Arc<[(String, String)]>) -> Self {
        if let Some(files) = self.files.get_mut() {
            files.options = options;
        }
        self
    }

    /// Rolls over to a new part file once a part holds `bytes` bytes (the
    /// full part waits, hidden, for the next checkpoint to commit it).
    pub fn with_max_part_bytes(self, bytes: u64) -> Self {
        Self { max_part_bytes: Some(bytes.max(1)), ..self }
    }

    /// Also rolls over to a new part file once a part is `interval` old on
    /// `clock` (checked as batches arrive; a part left open is sealed at
    /// the next checkpoint anyway).
    pub fn with_rollover_interval(self, interval: Duration, clock: Arc<dyn Clock>) -> Self {
        Self { max_part_age: Some((interval, clock)), ..self }
    }

    /// Writes the buffered lines to the part file (opening one if needed).
    async fn write_lines(&mut self) -> Result<(), Error> {
        if self.lines.is_empty() {
            return Ok(()); // so an empty part is never opened
        }
        let max_age = self.max_part_age.as_ref().map(|(age, clock)| (age.as_millis() as i64, clock.now_millis()));
        let (lines, rolling) = (std::mem::take(&mut self.lines), Rolling { max_bytes: self.max_part_bytes, max_age });
        self.files.run(move |files| files.write(&lines, rolling)).await
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

    /// The folder, opened (created) on first use.
    fn folder(&mut self) -> Result<&Folder, Error> {
        if self.folder.is_none() {
            self.folder = Some(Folder::open(&self.dir, &self.options)?);
        }
        Ok(self.folder.as_ref().expect("opened above"))
    }

    /// Lists this subtask's files (name, hidden) and moves `next_seq` past all of them.
    fn scan(&mut self) -> Result<Vec<(String, bool)>, Error> {
        let mut own = Vec::new();
        let mut next = self.next_seq.unwrap_or(0);
        for name in self.folder()?.list()? {
            if let Some((seq, hidden)) = self.parse(&name) {
                next = next.max(seq.saturating_add(1));
                own.push((name, hidden));
            }
        }
        self.next_seq = Some(next);
        Ok(own)
    }

    fn open_part(&mut self, now: i64) -> Result<&mut Part, Error> {
        let part = match self.part.take() {
            Some(part) => part,
            None => {
                if self.next_seq.is_none() {
                    self.scan()?;
                }
                let seq = self.next_seq.unwrap_or(0);
                let name = format!(".part-{}-{seq}.inprogress", self.subtask);
                let (path, out) = self.folder()?.create(&name)?;
                self.next_seq = Some(seq.saturating_add(1));
                Part { path, seq, out, bytes: 0, opened: now }
            }
        };
        Ok(self.part.insert(part))
    }

    fn seal(&mut self) -> Result<(), Error> {
        let Some(part) = self.part.take() else { return Ok(()) };
        let c = FileCommittable {
            pending: format!(".part-{}-{}.pending", self.subtask, part.seq),
            file: format!("part-{}-{}", self.subtask, part.seq),
        };
        self.folder()?.seal(part.out, &part.path, &c.pending)?;
        self.uncommitted.push(c);
        Ok(())
    }

    /// `name`, if it is a plain file name, hidden or not as asked.
    fn file<'a>(&self, name: &'a str, hidden: bool) -> Result<&'a str, Error> {
        let plain = !name.contains(['/', '\\']) && !matches!(name, "" | "." | "..");
        match plain && name.starts_with('.') == hidden {
            true => Ok(name),
            false => Err(Error::SinkCommit {
                path: name.into(),
                reason: format!("not a part file of {}", self.dir.display()),
            }),
        }
    }

    fn commit_all(&mut self, committables: &[FileCommittable]) -> Result<(), Error> {
        for c in committables {
            let (pending, file) = (self.file(&c.pending, true)?, self.file(&c.file, false)?);
            let folder = self.folder()?;
            // Not there: committed before (the final file must exist).
            if !folder.publish(pending, file)? && !folder.exists(file)? {
                return Err(Error::SinkCommit {
                    path: folder.display(file),
                    reason: format!("neither it nor {} exists", folder.display(pending).display()),
                });
            }
        }
        if !committables.is_empty() {
            // Also after no-op commits: a rename before a crash may not be durable yet.
            self.folder()?.sync()?;
        }
        self.uncommitted.retain(|c| !committables.contains(c));
        Ok(())
    }

    /// Appends `lines` to the open part; seals it once it holds
    /// `max_bytes`, and after them once it is `max_age` old (if set).
    fn write(&mut self, mut lines: &[u8], rolling: Rolling) -> Result<(), Error> {
        let (max_bytes, now) = (rolling.max_bytes, rolling.max_age.map_or(0, |(_, now)| now));
        while !lines.is_empty() {
            let part = self.open_part(now)?;
            // Whole lines, up to the one that fills the part.
            let n = match max_bytes {
                None => lines.len(),
                Some(max) => {
                    let room = max.saturating_sub(part.bytes) as usize;
                    let from = room.saturating_sub(1).min(lines.len() - 1);
                    lines[from..].iter().position(|b| *b == b'\n').map_or(lines.len(), |p| from + p + 1)
                }
            };
            part.out.write_all(&lines[..n]).map_err(io_err("write", &part.path))?;
            part.bytes += n as u64;
            lines = &lines[n..];
            if max_bytes.is_some_and(|max| part.bytes >= max) {
                self.seal()?;
            }
        }
        if let (Some((age, now)), Some(part)) = (rolling.max_age, &self.part)
            && now - part.opened >= age
        {
            self.seal()?;
        }
        Ok(())
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
            let folder = self.folder()?;
            if folder.remove(&name)? {
                let file = folder.display(&name);
                tracing::warn!(file = %file.display(), "removed a part committed after the restored checkpoint (it follows damaged checkpoints; its records are written again)")
            }
        }
        self.folder()?.sync()
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
            let folder = self.folder()?;
            if folder.remove(&name)? {
                tracing::debug!(file = %folder.display(&name).display(), "removed an uncommitted part");
            }
        }
        Ok(())
    }
}

#[async_trait]
impl<T: Data> TwoPhaseCommitSink<T> for TransactionalFileSink<T> {
    type Committable = FileCommittable;

    async fn write_batch(&mut self, batch: &mut Batch<T>) -> Result<(), BoxError> {
        for v in batch.drain_values() {
            (self.encode)(&v, &mut self.lines).map_err(|e| format!("cannot encode a value for a part file: {e}"))?;
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
