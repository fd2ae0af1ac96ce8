//! Sinks: the [`Sink`] trait and the built-in collect, channel, callback
//! and file sinks.

use super::blocking::OffThread;
use crate::element::Batch;
use crate::element::Data;
use crate::error::{BoxError, Error};
use async_trait::async_trait;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

/// The end of a stream, one instance per parallel subtask.
///
/// ```
/// use dataflow_core::{connectors::Sink, Batch, BoxError, StreamEnvironment};
/// use std::sync::{Arc, atomic::{AtomicU64, Ordering}};
///
/// struct Sum { local: u64, total: Arc<AtomicU64> }
///
/// #[async_trait::async_trait]
/// impl Sink<u64> for Sum {
///     async fn write_batch(&mut self, batch: &mut Batch<u64>) -> Result<(), BoxError> {
///         self.local += batch.drain_values().sum::<u64>();
///         Ok(())
///     }
///     async fn finish(&mut self) -> Result<(), BoxError> {
///         self.total.fetch_add(self.local, Ordering::Relaxed);
///         Ok(())
///     }
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let env = StreamEnvironment::new();
/// let total = Arc::new(AtomicU64::new(0));
/// let t = total.clone();
/// env.from_iter(1..=10u64).sink("sum", move |_| Sum { local: 0, total: t.clone() });
/// env.execute().await.unwrap();
/// assert_eq!(total.load(Ordering::Relaxed), 55);
/// # });
/// ```
#[async_trait]
pub trait Sink<T>: Send + 'static {
    /// Writes a batch, leaving it empty.
    async fn write_batch(&mut self, batch: &mut Batch<T>) -> Result<(), BoxError>;

    /// The input ended: flush and close.
    async fn finish(&mut self) -> Result<(), BoxError> {
        Ok(())
    }

    /// Checkpoint barrier `checkpoint` (with checkpointing): seal what was
    /// written since the previous one, durably but invisibly; the bytes
    /// returned are this sink's part of the checkpoint. The default keeps
    /// nothing (a sink that is not transactional: after a failure it
    /// writes again what followed the restored checkpoint).
    async fn pre_commit(&mut self, _checkpoint: u64) -> Result<Option<Vec<u8>>, BoxError> {
        Ok(None)
    }

    /// Checkpoint `checkpoint` (and every earlier one) completed: make what
    /// was sealed for it visible.
    async fn commit(&mut self, _checkpoint: u64) -> Result<(), BoxError> {
        Ok(())
    }

    /// The job starts with checkpointing: `part` is what
    /// [`Self::pre_commit`] returned for the checkpoint it resumes from
    /// (`None`: no checkpoint, or none from this sink).
    async fn recover(&mut self, _part: Option<Vec<u8>>) -> Result<(), BoxError> {
        Ok(())
    }

    /// Like [`Self::recover`], when the job falls back past newer complete
    /// checkpoints that are damaged (allowed with
    /// `CheckpointConfig::allow_fallback_past_damaged_checkpoints`): what
    /// this sink committed under them must be removed first, or it is
    /// published twice. The default recovers a sink that keeps no part
    /// (not transactional: at least once anyway) and refuses for one that
    /// does (it cannot remove what it committed).
    async fn recover_past_damaged(&mut self, part: Option<Vec<u8>>) -> Result<(), BoxError> {
        match part {
            None => self.recover(None).await,
            Some(_) => Err("this sink cannot remove the output it committed under the damaged checkpoints: \
                            falling back past them would publish it twice"
                .into()),
        }
    }
}

/// The values a [`CollectSink`] gathered, readable after the job ends.
///
/// ```
/// use dataflow_core::StreamEnvironment;
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let env = StreamEnvironment::new();
/// let out = env.from_iter(vec![1, 2]).collect();
/// env.execute().await.unwrap();
/// assert_eq!(out.take(), [1, 2]);
/// assert!(out.take().is_empty());
/// # });
/// ```
#[derive(Debug)]
pub struct CollectHandle<T> {
    values: Arc<Mutex<Vec<T>>>,
}

impl<T> Clone for CollectHandle<T> {
    fn clone(&self) -> Self {
        Self { values: self.values.clone() }
    }
}

impl<T> Default for CollectHandle<T> {
    fn default() -> Self {
        Self { values: Arc::new(Mutex::new(Vec::new())) }
    }
}

impl<T> CollectHandle<T> {
    /// Takes everything collected so far (in arrival order across subtasks).
    pub fn take(&self) -> Vec<T> {
        std::mem::take(&mut *self.values.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// How many values were collected so far.
    pub fn len(&self) -> usize {
        self.values.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Whether nothing was collected so far.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A sink that appends to this handle.
    pub fn sink(&self) -> CollectSink<T> {
        CollectSink { handle: self.clone() }
    }
}

/// Appends every value to a [`CollectHandle`].
///
/// ```
/// let handle = dataflow_core::connectors::CollectHandle::<u8>::default();
/// let _sink = handle.sink();
/// ```
#[derive(Debug)]
pub struct CollectSink<T> {
    handle: CollectHandle<T>,
}

#[async_trait]
impl<T: Data> Sink<T> for CollectSink<T> {
    async fn write_batch(&mut self, batch: &mut Batch<T>) -> Result<(), BoxError> {
        let mut v = self.handle.values.lock().unwrap_or_else(PoisonError::into_inner);
        v.extend(batch.drain_values());
        Ok(())
    }
}

/// Sends every value into a tokio channel; a full channel holds the job
/// back (backpressure).
///
/// ```
/// use dataflow_core::StreamEnvironment;
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let (tx, mut rx) = tokio::sync::mpsc::channel(4);
/// let env = StreamEnvironment::new();
/// env.from_iter(vec![1, 2, 3]).sink_channel(tx);
/// let job = tokio::spawn(env.execute());
/// let mut got = Vec::new();
/// while let Some(v) = rx.recv().await { got.push(v); }
/// job.await.unwrap().unwrap();
/// assert_eq!(got, [1, 2, 3]);
/// # });
/// ```
#[derive(Debug)]
pub struct ChannelSink<T> {
    tx: tokio::sync::mpsc::Sender<T>,
}

impl<T> ChannelSink<T> {
    /// A sink into `tx`.
    pub fn new(tx: tokio::sync::mpsc::Sender<T>) -> Self {
        Self { tx }
    }
}

#[async_trait]
impl<T: Data> Sink<T> for ChannelSink<T> {
    async fn write_batch(&mut self, batch: &mut Batch<T>) -> Result<(), BoxError> {
        for v in batch.drain_values() {
            self.tx.send(v).await.map_err(|_| "the receiving end of the sink channel was dropped")?;
        }
        Ok(())
    }
}

/// Calls a function for every value.
///
/// ```
/// use dataflow_core::StreamEnvironment;
/// use std::sync::{Arc, atomic::{AtomicUsize, Ordering}};
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let n = Arc::new(AtomicUsize::new(0));
/// let n2 = n.clone();
/// let env = StreamEnvironment::new();
/// env.from_iter(0..5).for_each(move |_| { n2.fetch_add(1, Ordering::Relaxed); });
/// env.execute().await.unwrap();
/// assert_eq!(n.load(Ordering::Relaxed), 5);
/// # });
/// ```
pub struct CallbackSink<F> {
    f: F,
}

impl<F> CallbackSink<F> {
    /// A sink calling `f`.
    pub fn new(f: F) -> Self {
        Self { f }
    }
}

#[async_trait]
impl<T: Data, F: FnMut(T) + Send + 'static> Sink<T> for CallbackSink<F> {
    async fn write_batch(&mut self, batch: &mut Batch<T>) -> Result<(), BoxError> {
        for v in batch.drain_values() {
            (self.f)(v);
        }
        Ok(())
    }
}

/// Writes every value's `Display` form as a line of a file. The file is
/// created (truncated) at the first write; each batch's lines are written
/// on tokio's blocking pool (not on an async worker thread). It is not
/// transactional: after a failure it holds
/// what was written.
///
/// ```
/// use dataflow_core::StreamEnvironment;
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("out.txt");
/// let env = StreamEnvironment::new();
/// env.from_iter(["a", "b"].map(String::from)).write_lines(&path);
/// env.execute().await.unwrap();
/// assert_eq!(std::fs::read_to_string(&path).unwrap(), "a\nb\n");
/// # });
/// ```
#[derive(Debug)]
pub struct FileSink {
    file: OffThread<LinesFile>,
    /// A batch's lines, formatted here and written on the blocking pool.
    lines: Vec<u8>,
}

/// The file, created at the first write, on the blocking pool.
#[derive(Debug)]
struct LinesFile {
    path: PathBuf,
    out: Option<std::fs::File>,
}

impl LinesFile {
    fn write(&mut self, lines: &[u8]) -> Result<(), Error> {
        let path = &self.path;
        let io = |op| move |source| Error::SinkIo { op, path: path.clone(), source };
        if self.out.is_none() {
            self.out = Some(std::fs::File::create(path).map_err(io("create"))?);
        }
        self.out.as_mut().map_or(Ok(()), |out| out.write_all(lines).map_err(io("write")))
    }
}

impl FileSink {
    /// A sink writing to `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { file: OffThread::new(LinesFile { path: path.into(), out: None }), lines: Vec::new() }
    }

    /// Writes the buffered lines on the blocking pool.
    async fn write_lines(&mut self) -> Result<(), Error> {
        let lines = std::mem::take(&mut self.lines);
        self.file.run(move |file| file.write(&lines)).await
    }
}

#[async_trait]
impl<T: Data + std::fmt::Display> Sink<T> for FileSink {
    async fn write_batch(&mut self, batch: &mut Batch<T>) -> Result<(), BoxError> {
        for v in batch.drain_values() {
            writeln!(self.lines, "{v}").map_err(|e| Error::Internal(format!("formatting a line: {e}")))?;
        }
        Ok(self.write_lines().await?)
    }

    async fn finish(&mut self) -> Result<(), BoxError> {
        Ok(self.write_lines().await?)
    }
}
