//! What `#[operator]` functions expand to: the [`FnOperator`] trait that
//! carries a function operator's options, the [`Context`] a function can
//! take, the job's [`BadRecordPolicy`] for functions that return `Result`,
//! and the helpers generated code calls to emit a function's return value.
//!
//! ```
//! use dataflow_core::{operator, StreamEnvironment};
//!
//! /// Keeps the words that are long enough.
//! #[operator(name = "long words")]
//! fn long_words(#[config] min: usize, word: String) -> Option<String> {
//!     (word.len() >= min).then_some(word)
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let env = StreamEnvironment::new().with_parallelism(1);
//! let out = env.from_iter(vec!["a".to_string(), "stream".into()]).apply(long_words(3)).collect();
//! env.execute().await.unwrap();
//! assert_eq!(out.take(), ["stream"]);
//! # });
//! ```

use super::{BoxError, Collector, KeyedContext, OutputTag, SideBuffers};
use crate::element::Batch;
use crate::element::Data;
use crate::time::{TimeDomain, TimerRequest};
use crate::time::{Timestamp, Watermark};
use dataflow_state::Key;

/// An operator made from a function: the options given on its
/// `#[operator(...)]` attribute. Implemented by the macro and by the
/// built-ins; [`Stream::apply`](crate::Stream::apply) uses them to configure
/// the node.
///
/// ```
/// use dataflow_core::operator::FnOperator;
/// #[dataflow_core::operator(uid = "double-v1", parallelism = 2)]
/// fn double(x: u64) -> u64 { x * 2 }
/// assert_eq!(<double as FnOperator>::NAME, "double");
/// assert_eq!(<double as FnOperator>::UID, Some("double-v1"));
/// assert_eq!(<double as FnOperator>::PARALLELISM, Some(2));
/// ```
pub trait FnOperator {
    /// The operator's name (the function's name unless `name = ".."`).
    const NAME: &'static str;
    /// The operator's stable id, if `uid = ".."` was given.
    const UID: Option<&'static str> = None;
    /// The operator's parallelism, if `parallelism = N` was given.
    const PARALLELISM: Option<usize> = None;
}

/// What a job does with a record whose function returned an `Err`.
///
/// ```
/// use dataflow_core::{operator::BadRecordPolicy, StreamEnvironment};
/// let env = StreamEnvironment::new().with_bad_record_policy(BadRecordPolicy::Skip);
/// assert_eq!(env.bad_record_policy(), BadRecordPolicy::Skip);
/// assert_eq!(BadRecordPolicy::default(), BadRecordPolicy::Fail);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum BadRecordPolicy {
    /// Fail the job with an error naming the operator, subtask and the
    /// record's position in that subtask's input.
    #[default]
    Fail,
    /// Drop the record and count it (`OperatorStats::records_skipped`).
    Skip,
    /// Drop and count it, and send a [`BadRecordReport`] to the side output
    /// read by [`Stream::bad_records`](crate::Stream::bad_records).
    SideOutput,
}

/// A record that a function rejected, with where it was.
///
/// ```
/// let e = dataflow_core::operator::BadRecord { position: 4, timestamp: None, source: "not a number".into() };
/// assert_eq!(e.to_string(), "bad record at input position 4: not a number");
/// ```
#[derive(Debug, thiserror::Error)]
#[error("bad record at input position {position}{}: {source}", .timestamp.map(|t| format!(" (timestamp {t})")).unwrap_or_default())]
pub struct BadRecord {
    /// The record's index in this subtask's input, from 0.
    pub position: u64,
    /// The record's event timestamp, if it had one.
    pub timestamp: Option<Timestamp>,
    /// What the function returned.
    #[source]
    pub source: BoxError,
}

/// The context an `#[operator]` function can take as `ctx: &mut Context<Out>`:
/// the current record's timestamp, the operator's watermark, and a way to
/// emit any number of outputs.
///
/// ```
/// use dataflow_core::{operator, operator::Context, StreamEnvironment};
///
/// /// Emits every word of a line.
/// #[operator]
/// fn words(line: String, ctx: &mut Context<String>) {
///     for w in line.split(' ') {
///         ctx.emit(w.to_string());
///     }
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let env = StreamEnvironment::new().with_parallelism(1);
/// let out = env.from_iter(vec!["a b".to_string()]).apply(words()).collect();
/// env.execute().await.unwrap();
/// assert_eq!(out.take(), ["a", "b"]);
/// # });
/// ```
#[derive(Debug)]
pub struct Context<Out> {
    out: Batch<Out>,
    side: SideBuffers,
    timestamp: Option<Timestamp>,
    watermark: Watermark,
    timers: Vec<TimerRequest>,
}

impl<Out> Default for Context<Out> {
    fn default() -> Self {
        Self {
            out: Batch::new(),
            side: SideBuffers::default(),
            timestamp: None,
            watermark: Watermark::MIN,
            timers: Vec::new(),
        }
    }
}

impl<Out> Context<Out> {
    /// The event timestamp of the record being processed.
    pub fn timestamp(&self) -> Option<Timestamp> {
        self.timestamp
    }

    /// The operator's current watermark.
    pub fn watermark(&self) -> Watermark {
        self.watermark
    }

    /// Emits a value with the current record's timestamp.
    #[inline]
    pub fn emit(&mut self, value: Out) {
        self.out.push_with(value, self.timestamp);
    }

    /// Emits a value with the given timestamp.
    #[inline]
    pub fn emit_with_timestamp(&mut self, value: Out, timestamp: Timestamp) {
        self.out.push_with(value, Some(timestamp));
    }

    /// Emits a value with the current record's timestamp to the side
    /// output `tag` (see [`OutputTag`]).
    pub fn output<U: Data>(&mut self, tag: &OutputTag<U>, value: U) {
        self.side.push(tag, value, self.timestamp);
    }

    fn timer(&mut self, domain: TimeDomain, timestamp: Timestamp, delete: bool) {
        self.timers.push(TimerRequest { domain, timestamp, delete });
    }

    /// Asks for the function named by `#[operator(on_timer = ..)]` to be
    /// called for the current key once the watermark reaches `timestamp`.
    /// Timers need a keyed stream; registering the same one twice keeps one.
    pub fn register_event_time_timer(&mut self, timestamp: Timestamp) {
        self.timer(TimeDomain::EventTime, timestamp, false);
    }

    /// Like [`Context::register_event_time_timer`], when the job's clock
    /// reaches `timestamp`.
    pub fn register_processing_time_timer(&mut self, timestamp: Timestamp) {
        self.timer(TimeDomain::ProcessingTime, timestamp, false);
    }

    /// Deletes an event-time timer of the current key.
    pub fn delete_event_time_timer(&mut self, timestamp: Timestamp) {
        self.timer(TimeDomain::EventTime, timestamp, true);
    }

    /// Deletes a processing-time timer of the current key.
    pub fn delete_processing_time_timer(&mut self, timestamp: Timestamp) {
        self.timer(TimeDomain::ProcessingTime, timestamp, true);
    }

    /// Applies the timer requests to the current key's timers (generated
    /// code calls this).
    #[doc(hidden)]
    pub fn __apply_timers<K: Key>(&mut self, out: &mut KeyedContext<'_, K, (), Out>) {
        for r in self.timers.drain(..) {
            match r.delete {
                false => out.register_timer(r.domain, (), r.timestamp),
                true => out.delete_timer(r.domain, (), r.timestamp),
            }
        }
    }

    /// Fails if the function asked for timers outside a keyed stream
    /// (generated code calls this).
    #[doc(hidden)]
    pub fn __no_timers(&mut self) -> Result<(), BoxError> {
        if self.timers.is_empty() {
            return Ok(());
        }
        self.timers.clear();
        Err("timers need a keyed stream: apply the operator after `key_by`".into())
    }

    /// Prepares the context for the next record (generated code calls this).
    #[doc(hidden)]
    #[inline]
    pub fn __begin(&mut self, timestamp: Option<Timestamp>) {
        self.timestamp = timestamp;
    }

    /// Records the operator's watermark (generated code calls this).
    #[doc(hidden)]
    pub fn __set_watermark(&mut self, watermark: Watermark) {
        self.watermark = watermark;
    }

    /// Moves what was emitted into the operator's collector.
    #[doc(hidden)]
    #[inline]
    pub fn __flush_into(&mut self, out: &mut Collector<Out>) {
        out.batch.append(&mut self.out);
        if !self.side.buffers.is_empty() {
            self.side.move_into(&mut out.side);
        }
    }
}

/// Emits the value of a function that returns exactly one output.
#[doc(hidden)]
#[inline]
pub fn __emit_one<T>(value: T, timestamp: Option<Timestamp>, out: &mut Collector<T>) {
    out.batch.push_with(value, timestamp);
}

/// Emits the value of a function that returns zero or more outputs.
#[doc(hidden)]
#[inline]
pub fn __emit_many<T>(values: impl IntoIterator<Item = T>, timestamp: Option<Timestamp>, out: &mut Collector<T>) {
    match timestamp {
        None => out.batch.extend_values(values),
        Some(_) => values.into_iter().for_each(|v| out.batch.push_with(v, timestamp)),
    }
}

/// The side output that the [`BadRecordPolicy::SideOutput`] policy sends
/// reports of rejected records to; read it with
/// [`Stream::bad_records`](crate::Stream::bad_records).
///
/// ```
/// assert_eq!(dataflow_core::operator::function::bad_records_tag().name(), "bad records");
/// ```
pub fn bad_records_tag() -> OutputTag<BadRecordReport> {
    OutputTag::new("bad records")
}

/// What the `SideOutput` bad-record policy reports about a rejected record.
///
/// ```
/// let r = dataflow_core::operator::BadRecordReport {
///     operator: "parse".into(), subtask: 0, position: 7, timestamp: None, error: "not a number".into(),
///     location: None, raw: None,
/// };
/// assert_eq!(r.position, 7);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct BadRecordReport {
    /// The operator that rejected the record.
    pub operator: String,
    /// Its subtask.
    pub subtask: usize,
    /// The record's index in that subtask's input, from 0.
    pub position: u64,
    /// The record's event timestamp, if it had one.
    pub timestamp: Option<Timestamp>,
    /// The error the function returned, as text.
    pub error: String,
    /// Where the input was, when a source rejected it (`path:line`).
    pub location: Option<String>,
    /// The input as it was, when a source rejected it (a line's text).
    pub raw: Option<String>,
}

/// The bad-record bookkeeping of a function operator: the policy, where it
/// runs, and the position of the next record. Generated code keeps one.
#[doc(hidden)]
#[derive(Clone, Debug, Default)]
pub struct BadRecords {
    policy: BadRecordPolicy,
    operator: String,
    subtask: usize,
    position: u64,
}

impl BadRecords {
    /// Bookkeeping for the operator instance `info`.
    pub fn new(info: &crate::operator::OperatorInfo) -> Self {
        Self { policy: info.bad_record_policy, operator: info.name.clone(), subtask: info.subtask, position: 0 }
    }

    /// The position of the record about to be processed.
    #[inline]
    pub fn next_position(&mut self) -> u64 {
        self.position += 1;
        self.position - 1
    }

    /// Handles a rejected record by the policy.
    pub fn reject<T>(
        &self,
        error: impl Into<BoxError>,
        position: u64,
        timestamp: Option<Timestamp>,
        out: &mut Collector<T>,
    ) -> Result<(), BoxError> {
        match self.policy {
            BadRecordPolicy::Fail => Err(Box::new(BadRecord { position, timestamp, source: error.into() })),
            BadRecordPolicy::Skip => {
                out.skipped += 1;
                Ok(())
            }
            BadRecordPolicy::SideOutput => {
                out.skipped += 1;
                let report = BadRecordReport {
                    operator: self.operator.clone(),
                    subtask: self.subtask,
                    position,
                    timestamp,
                    error: error.into().to_string(),
                    location: None,
                    raw: None,
                };
                out.side.push(&bad_records_tag(), report, timestamp);
                Ok(())
            }
        }
    }
}
