//! Split-based sources (after Flink's FLIP-27): the input is made of
//! [`Split`]s — the files of a folder, the partitions of a topic, the shards
//! of a generator — that a [`SplitEnumerator`] discovers and a
//! [`SplitReader`] reads, each in order from its own position.
//!
//! [`StreamEnvironment::from_source`](crate::StreamEnvironment::from_source)
//! runs a [`SplitSource`] with a [`WatermarkStrategy`](crate::time::WatermarkStrategy):
//!
//! * **Assignment.** Split `s` belongs to subtask `s.owner(p)` of `p` (by
//!   default a hash of its id). Every subtask discovers the splits itself
//!   and keeps its own, so the assignment needs no coordination and is the
//!   same after a restore; restored at another parallelism (from a
//!   savepoint) the splits and their positions move to their new owners.
//! * **Positions.** A checkpoint holds, per subtask, each split it is
//!   reading with its position after the last record handed out, and the
//!   ids of the splits it finished (so a source that follows a folder does
//!   not read a file twice).
//! * **Watermarks per split.** Each split has its own watermark generator;
//!   the source's watermark is the minimum over its active splits. A split
//!   without records for the strategy's idle timeout is left out; a
//!   finished split no longer holds anything back. When every split is idle,
//!   or it has none, the subtask is idle. So records that are in bound for their own split
//!   are never late, however the splits' rates differ.
//! * **Barriers do not wait for data.** A read runs as a future that the
//!   source keeps across polls; a barrier, a stop or a savepoint is
//!   injected while it waits, with the positions of what was handed out.
//! * **Bad input** goes to the job's bad-record policy with where it was
//!   (file and line) and its text.
//!
//! ```
//! use dataflow_core::connectors::split::{Split, SplitEnumerator, SplitOutput, SplitReader, SplitSource};
//! use dataflow_core::{time::WatermarkStrategy, BoxError, StreamEnvironment};
//!
//! /// Shard `n` of a counter: the numbers `n*100 ..` up to `n*100 + 5`.
//! #[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
//! struct Shard { n: u64, at: u64 }
//!
//! impl Split for Shard {
//!     fn id(&self) -> String { format!("shard-{}", self.n) }
//! }
//!
//! struct Shards;
//! #[async_trait::async_trait]
//! impl SplitEnumerator<Shard> for Shards {
//!     async fn discover(&mut self) -> Result<Vec<Shard>, BoxError> {
//!         Ok((0..3).map(|n| Shard { n, at: 0 }).collect())
//!     }
//! }
//!
//! struct Count;
//! #[async_trait::async_trait]
//! impl SplitReader<u64, Shard> for Count {
//!     async fn read(&mut self, s: &mut Shard, max: usize, out: &mut SplitOutput<u64>) -> Result<bool, BoxError> {
//!         for _ in 0..max.min((5 - s.at) as usize) {
//!             out.push(s.n * 100 + s.at);
//!             s.at += 1;
//!         }
//!         Ok(s.at == 5)
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let env = StreamEnvironment::new().with_parallelism(2);
//! let source = SplitSource::new("counter", |_| Shards, |_| Count);
//! let out = env.from_source(source, WatermarkStrategy::no_watermarks()).collect();
//! env.execute().await.unwrap();
//! assert_eq!(out.take().len(), 15);
//! # });
//! ```

mod reader;
mod watermarks;

pub(crate) use reader::SplitSourceReader;

use crate::error::BoxError;
use crate::operator::OperatorInfo;
use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;

/// A part of a split-based source's input, with the position it is read
/// from (a file and a byte offset, a partition and an offset). Positions
/// are kept in checkpoints through serde.
pub trait Split: Clone + std::fmt::Debug + Send + Sync + Serialize + DeserializeOwned + 'static {
    /// A stable id, unique among the source's splits.
    fn id(&self) -> String;

    /// The subtask of `parallelism` that reads it: by default a hash of
    /// its id (CRC32C, stable across runs and builds).
    ///
    /// ```
    /// # use dataflow_core::connectors::split::Split;
    /// # #[derive(Clone, Debug, serde::Serialize, serde::Deserialize)] struct S;
    /// # impl Split for S { fn id(&self) -> String { "a.csv".into() } }
    /// assert!(S.owner(3) < 3);
    /// ```
    fn owner(&self, parallelism: usize) -> usize {
        crc32c::crc32c(self.id().as_bytes()) as usize % parallelism.max(1)
    }
}

/// Finds a source's splits: all of them on the first call; in continuous
/// mode it is called again on an interval, and splits whose ids were seen
/// before are ignored.
#[async_trait]
pub trait SplitEnumerator<S>: Send + 'static {
    /// The splits there are now (at their initial positions).
    async fn discover(&mut self) -> Result<Vec<S>, BoxError>;
}

/// Reads splits. One reader per subtask reads all of its splits in turns.
#[async_trait]
pub trait SplitReader<T, S>: Send + 'static {
    /// Appends up to `max` records of `split`, from its position on, to
    /// `out` and moves the position past them; returns whether the split is
    /// finished. It may return fewer records (none) when nothing is ready,
    /// but should not wait long for data: other splits take turns after it.
    async fn read(&mut self, split: &mut S, max: usize, out: &mut SplitOutput<T>) -> Result<bool, BoxError>;

    /// A read round found nothing in any split (none had records, none
    /// finished): waits until records may be there, for a short while at
    /// most (discovery and idleness are looked at between rounds). A reader
    /// of an input that grows (a topic) waits here instead of being asked
    /// again at once; the default returns at once.
    async fn wait_for_records(&mut self) -> Result<(), BoxError> {
        Ok(())
    }

    /// A checkpoint completed with `splits` at these positions (those the
    /// subtask was reading): for effects outside the job, such as
    /// committing offsets to a consumer group for monitoring. Called before
    /// the next read round; the default does nothing.
    async fn checkpoint_complete(&mut self, splits: &[S]) {
        let _ = splits;
    }
}

/// Input a reader could not decode: where it was and its text.
///
/// ```
/// let bad = dataflow_core::connectors::split::BadInput {
///     location: "in.csv:3".into(), raw: "x,,".into(), error: "not a number".into(),
/// };
/// assert_eq!(bad.to_string(), "in.csv:3: not a number: x,,");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {error}: {raw}")]
pub struct BadInput {
    /// Where: a file and line (`path:line`), a partition and offset.
    pub location: String,
    /// The input as it was (a line's text).
    pub raw: String,
    /// Why it could not be decoded.
    pub error: String,
}

/// What one [`SplitReader::read`] produced: records (with the timestamps
/// their input carries, if any) and bad input.
///
/// ```
/// let mut out = dataflow_core::connectors::split::SplitOutput::new();
/// out.push(1u8);
/// out.push_with_timestamp(2, 1_700_000_000_000);
/// assert_eq!(out.len(), 2);
/// ```
#[derive(Debug)]
pub struct SplitOutput<T> {
    pub(crate) records: Vec<T>,
    /// The records' own timestamps, one each, or empty when none has one.
    pub(crate) timestamps: Vec<Option<crate::time::Timestamp>>,
    pub(crate) bad: Vec<BadInput>,
}

impl<T> Default for SplitOutput<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> SplitOutput<T> {
    /// An empty output.
    pub fn new() -> Self {
        Self { records: Vec::new(), timestamps: Vec::new(), bad: Vec::new() }
    }

    /// An empty output with room for `records` records.
    pub(crate) fn with_capacity(records: usize) -> Self {
        Self { records: Vec::with_capacity(records), timestamps: Vec::new(), bad: Vec::new() }
    }

    /// Hands out a record.
    pub fn push(&mut self, record: T) {
        if !self.timestamps.is_empty() {
            self.timestamps.push(None);
        }
        self.records.push(record);
    }

    /// Hands out a record with the timestamp its input carries (a Kafka
    /// record's): the event time unless the watermark strategy's
    /// timestamp assigner says otherwise (it gets this one as its
    /// second argument).
    pub fn push_with_timestamp(&mut self, record: T, timestamp: crate::time::Timestamp) {
        if self.timestamps.is_empty() {
            self.timestamps.resize(self.records.len(), None);
        }
        self.timestamps.push(Some(timestamp));
        self.records.push(record);
    }

    /// Reports input that could not be decoded (it counts towards `max`).
    pub fn bad(&mut self, bad: BadInput) {
        self.bad.push(bad);
    }

    /// Records and bad input so far.
    pub fn len(&self) -> usize {
        self.records.len() + self.bad.len()
    }

    /// Whether nothing was produced.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

type Make<X> = Arc<dyn Fn(&OperatorInfo) -> X + Send + Sync>;

/// A split-based source: how each subtask makes its enumerator and its
/// reader, and whether it follows its input (continuous) or ends once
/// every split it found is read (bounded). See the [module](self) docs.
pub struct SplitSource<T, S> {
    pub(crate) name: String,
    pub(crate) enumerator: Make<Box<dyn SplitEnumerator<S>>>,
    pub(crate) reader: Make<Box<dyn SplitReader<T, S>>>,
    pub(crate) discovery: Option<Duration>,
    pub(crate) turn: usize,
}

impl<T, S> Clone for SplitSource<T, S> {
    fn clone(&self) -> Self {
        Self {
            name: self.name.clone(),
            enumerator: self.enumerator.clone(),
            reader: self.reader.clone(),
            discovery: self.discovery,
            turn: self.turn,
        }
    }
}

impl<T: 'static, S: 'static> SplitSource<T, S> {
    /// A bounded source named `name`; every subtask makes its enumerator
    /// and its reader with these functions.
    pub fn new<E, R>(
        name: &str,
        enumerator: impl Fn(&OperatorInfo) -> E + Send + Sync + 'static,
        reader: impl Fn(&OperatorInfo) -> R + Send + Sync + 'static,
    ) -> Self
    where
        E: SplitEnumerator<S>,
        R: SplitReader<T, S>,
    {
        Self {
            name: name.to_string(),
            enumerator: Arc::new(move |info| Box::new(enumerator(info))),
            reader: Arc::new(move |info| Box::new(reader(info))),
            discovery: None,
            turn: 1024,
        }
    }

    /// Follows the input: discovers new splits every `interval` (on the
    /// job's clock) and never ends by itself.
    pub fn continuous(self, interval: Duration) -> Self {
        Self { discovery: Some(interval), ..self }
    }

    /// Reads at most `records` records of a split before the next split's
    /// turn (default 1024): smaller turns keep the splits' event times
    /// closer together within a subtask.
    pub fn with_turn(self, records: usize) -> Self {
        Self { turn: records.max(1), ..self }
    }
}
