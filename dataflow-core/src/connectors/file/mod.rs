//! Files: the file source reads the files of a folder (or one file) as
//! text lines, CSV or JSON Lines, typed through serde, one split per file, on
//! the [split framework](super::split) — so it resumes from (file, byte
//! offset), rescales, and keeps a watermark per file.
//!
//! A line that does not decode goes to the job's bad-record policy with
//! the file, the line number (from 1) and its text. Bounded by default;
//! [`FileSource::continuous`] follows the folder and reads files added
//! later (a file is read once, when found: write it elsewhere and rename it
//! into the folder when complete). Hidden files (`.name`) and files whose
//! name starts with `_` are left out.
//!
//! The folder may be an object store's prefix: `s3://bucket/orders/` (or
//! one object), `gs://…`, `az://…` (a plain path or `file:///…` is the
//! local disk). The store is configured as checkpoint storage is, from the
//! environment (`AWS_ENDPOINT`, …) and
//! [`StreamEnvironment::set_storage_options`](crate::StreamEnvironment::set_storage_options).
//! Objects are read in ranges of 8 MiB, from the position on restore.
//!
//! ```
//! use dataflow_core::connectors::file::{FileSource, Format};
//! use dataflow_core::{time::WatermarkStrategy, StreamEnvironment};
//!
//! #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
//! struct Order { id: u64, amount: f64 }
//!
//! let dir = tempfile::tempdir().unwrap();
//! std::fs::write(dir.path().join("a.csv"), "id,amount\n1,2.5\n2,x\n3,4.0\n").unwrap();
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let env = StreamEnvironment::new()
//!     .with_bad_record_policy(dataflow_core::operator::BadRecordPolicy::Skip);
//! let orders = FileSource::new(dir.path(), Format::<Order>::csv());
//! let out = env.from_source(orders.into(), WatermarkStrategy::no_watermarks()).collect();
//! env.execute().await.unwrap();
//! let mut ids: Vec<u64> = out.take().iter().map(|o| o.id).collect();
//! ids.sort();
//! assert_eq!(ids, [1, 3]); // line 3 skipped
//! # });
//! ```

mod format;
mod read;
mod storage;

pub use format::Format;
pub use read::FileSplit;

use super::split::{SplitEnumerator, SplitSource};
use super::two_phase::Encoder;
use crate::error::BoxError;
use crate::operator::OperatorInfo;
use async_trait::async_trait;
use read::FileReader;
use serde::de::DeserializeOwned;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use storage::Stores;

/// Where and how the file sink writes: exactly-once part files in a
/// folder, in a [`Format`], rolled at every checkpoint and, optionally,
/// once a part holds a number of bytes.
/// [`Stream::write_files`](crate::Stream::write_files) adds it.
///
/// ```
/// use dataflow_core::connectors::file::{FileOutput, Format};
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let dir = tempfile::tempdir().unwrap();
/// let env = dataflow_core::StreamEnvironment::new().with_parallelism(1);
/// env.from_iter(vec![(1u8, "a".to_string()), (2, "b".into())])
///     .write_files(FileOutput::new(dir.path(), Format::csv()).with_max_part_bytes(4));
/// env.execute().await.unwrap();
/// let lines = dataflow_core::connectors::two_phase::read_committed(dir.path()).unwrap();
/// assert_eq!(lines, ["1,a", "2,b"]);
/// assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2); // two parts
/// # });
/// ```
pub struct FileOutput<T> {
    pub(crate) dir: PathBuf,
    pub(crate) encoder: Encoder<T>,
    pub(crate) max_part_bytes: Option<u64>,
    pub(crate) rollover: Option<Duration>,
}

impl<T: serde::Serialize + 'static> FileOutput<T> {
    /// Part files in `dir` (created if missing), in `format`.
    pub fn new(dir: impl Into<PathBuf>, format: Format<T>) -> Self {
        Self { dir: dir.into(), encoder: format.encoder(), max_part_bytes: None, rollover: None }
    }

    /// Also rolls to a new part once a part holds `bytes` bytes.
    pub fn with_max_part_bytes(self, bytes: u64) -> Self {
        Self { max_part_bytes: Some(bytes), ..self }
    }

    /// Also rolls to a new part once a part is `interval` old (processing
    /// time, the job's clock; checked as records arrive).
    pub fn with_rollover_interval(self, interval: Duration) -> Self {
        Self { rollover: Some(interval), ..self }
    }
}

/// A file source: a folder, a file or a glob over a folder's file names
/// (`in/*.csv`), on the local disk or an object store, in a [`Format`].
pub struct FileSource<T> {
    path: PathBuf,
    format: Format<T>,
    discovery: Option<Duration>,
    split_bytes: u64,
}

/// Files larger than this are read as byte ranges of this size, by default.
const SPLIT_BYTES: u64 = 128 << 20;

impl<T: DeserializeOwned + Send + 'static> FileSource<T> {
    /// Reads the files of folder `path` (or the file `path`), bounded.
    pub fn new(path: impl Into<PathBuf>, format: Format<T>) -> Self {
        Self { path: path.into(), format, discovery: None, split_bytes: SPLIT_BYTES }
    }

    /// Reads files larger than `bytes` as byte ranges of `bytes` (each a
    /// split of its own, so subtasks share a large file); 128 MiB by
    /// default. A range holds the lines that start in it.
    pub fn with_split_size(self, bytes: u64) -> Self {
        Self { split_bytes: bytes.max(1), ..self }
    }

    /// Follows the folder: looks for new files every `interval`.
    pub fn continuous(self, interval: Duration) -> Self {
        Self { discovery: Some(interval), ..self }
    }
}

impl<T: DeserializeOwned + Send + 'static> From<FileSource<T>> for SplitSource<T, FileSplit> {
    fn from(f: FileSource<T>) -> Self {
        let (path, format, split_bytes) = (Arc::new(f.path), f.format, f.split_bytes);
        let source = SplitSource::new(
            "file source",
            move |info: &OperatorInfo| Files {
                path: path.clone(),
                stores: Arc::new(Stores::new(info.storage_options.clone())),
                split_bytes,
            },
            move |info: &OperatorInfo| FileReader::new(format.clone(), Stores::new(info.storage_options.clone())),
        );
        match f.discovery {
            Some(interval) => source.continuous(interval),
            None => source,
        }
    }
}

/// Finds the files of a source.
struct Files {
    path: Arc<PathBuf>,
    stores: Arc<Stores>,
    split_bytes: u64,
}

#[async_trait]
impl SplitEnumerator<FileSplit> for Files {
    async fn discover(&mut self) -> Result<Vec<FileSplit>, BoxError> {
        let (path, stores) = (self.path.clone(), self.stores.clone());
        let files = super::blocking::blocking(move || stores.list(&path)).await??;
        let step = self.split_bytes;
        let mut splits = Vec::new();
        for (path, size) in files {
            if size <= step {
                splits.push(FileSplit { path, start: 0, end: None, offset: 0, line: 0 });
                continue;
            }
            for start in (0..size).step_by(step as usize) {
                let end = (start + step < size).then_some(start + step);
                splits.push(FileSplit { path: path.clone(), start, end, offset: start, line: 0 });
            }
        }
        Ok(splits)
    }
}
