//! Sources: the [`Source`] trait and the built-in iterator, element and
//! async-stream sources.

use crate::element::Batch;
use crate::element::{Control, Data, StreamElement};
use crate::error::BoxError;
use crate::operator::{OutputTag, SideBuffers};
use crate::time::Timestamp;
use async_trait::async_trait;
use futures::{FutureExt, StreamExt};

/// What a source hands the runtime in one call: a batch of records and
/// optionally one control element that follows them.
///
/// ```
/// use dataflow_core::connectors::SourceContext;
/// let mut ctx = SourceContext::<u8>::new(4);
/// ctx.collect(1, None);
/// assert!(!ctx.is_full());
/// ```
#[derive(Debug)]
pub struct SourceContext<T> {
    pub(crate) records: Batch<T>,
    pub(crate) control: Option<Control>,
    pub(crate) side: SideBuffers,
    pub(crate) skipped: u64,
    batch_size: usize,
}

impl<T> SourceContext<T> {
    /// A context whose batches hold up to `batch_size` records.
    pub fn new(batch_size: usize) -> Self {
        let (side, skipped) = (SideBuffers::default(), 0);
        Self { records: Batch::with_capacity(batch_size), control: None, side, skipped, batch_size }
    }

    /// Emits a value to the side output `tag` (read downstream with
    /// [`Stream::side_output`](crate::Stream::side_output)); a source
    /// reports bad input this way under
    /// [`BadRecordPolicy::SideOutput`](crate::operator::BadRecordPolicy).
    ///
    /// ```
    /// let mut ctx = dataflow_core::connectors::SourceContext::<u8>::new(4);
    /// ctx.output(&dataflow_core::operator::OutputTag::<String>::new("odd"), "x".to_string(), None);
    /// assert!(ctx.values().is_empty());
    /// ```
    pub fn output<U: Data>(&mut self, tag: &OutputTag<U>, value: U, timestamp: Option<Timestamp>) {
        self.side.push(tag, value, timestamp);
    }

    /// Counts an input record the source dropped (bad input under
    /// [`BadRecordPolicy::Skip`](crate::operator::BadRecordPolicy)).
    ///
    /// ```
    /// dataflow_core::connectors::SourceContext::<u8>::new(4).skip();
    /// ```
    pub fn skip(&mut self) {
        self.skipped += 1;
    }

    /// Emits a value with an optional event timestamp.
    #[inline]
    pub fn collect(&mut self, value: T, timestamp: Option<i64>) {
        self.records.push_with(value, timestamp);
    }

    /// Emits a control element after the records collected so far; the
    /// batch ends there.
    pub fn emit_control(&mut self, control: Control) {
        self.control = Some(control);
    }

    /// Whether the batch is full (or closed by a control element) and the
    /// source should return.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.records.len() >= self.batch_size || self.control.is_some()
    }

    /// The values collected so far in this batch.
    ///
    /// ```
    /// let mut ctx = dataflow_core::connectors::SourceContext::new(4);
    /// ctx.collect('a', None);
    /// assert_eq!(ctx.values(), ['a']);
    /// ```
    pub fn values(&self) -> &[T] {
        self.records.values()
    }

    /// The most records a batch takes (the job's batch size).
    pub(crate) fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// How many records this batch may still take.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.batch_size.saturating_sub(self.records.len())
    }
}

/// Whether a source has more to give.
///
/// ```
/// assert_ne!(dataflow_core::connectors::SourceStatus::More, dataflow_core::connectors::SourceStatus::Finished);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceStatus {
    /// Call again.
    More,
    /// The source is exhausted; the runtime sends the maximum watermark and
    /// the end of input.
    Finished,
}

/// A source of records, one instance per parallel subtask.
///
/// `poll_batch` fills the context with up to a batch of records (and
/// possibly one control element) and returns; it may await when no data is
/// ready. The runtime calls it in a loop, so returning after a partial batch
/// is fine.
///
/// ```
/// use dataflow_core::connectors::{Source, SourceContext, SourceStatus};
/// use dataflow_core::{BoxError, StreamEnvironment};
///
/// struct Countdown(u32);
///
/// #[async_trait::async_trait]
/// impl Source<u32> for Countdown {
///     async fn poll_batch(&mut self, ctx: &mut SourceContext<u32>) -> Result<SourceStatus, BoxError> {
///         while self.0 > 0 && !ctx.is_full() {
///             ctx.collect(self.0, None);
///             self.0 -= 1;
///         }
///         Ok(if self.0 == 0 { SourceStatus::Finished } else { SourceStatus::More })
///     }
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let env = StreamEnvironment::new();
/// let out = env.add_source("countdown", |_| Countdown(3)).set_parallelism(1).collect();
/// env.execute().await.unwrap();
/// assert_eq!(out.take(), [3, 2, 1]);
/// # });
/// ```
#[async_trait]
pub trait Source<T>: Send + 'static {
    /// Produces the next batch.
    async fn poll_batch(&mut self, ctx: &mut SourceContext<T>) -> Result<SourceStatus, BoxError>;

    /// Where the source stands: what [`Self::seek`] needs for a new
    /// instance (built by the same factory) to go on right after the last
    /// record handed out. Checkpoints keep it as operator state. `None`
    /// (the default): the source cannot be replayed, so a job restored
    /// after a failure reads it from wherever a new instance starts.
    fn position(&self) -> Option<Vec<u8>> {
        None
    }

    /// Moves a new instance to a position [`Self::position`] returned.
    fn seek(&mut self, _position: &[u8]) -> Result<(), BoxError> {
        Err("this source cannot be replayed (it has no position)".into())
    }

    /// Moves a new instance of a job restored from a savepoint at another
    /// parallelism: `positions` are every old subtask's, and the instance
    /// keeps what belongs to its subtask now (its `OperatorInfo`). The
    /// default refuses: a source whose position is not made of parts that
    /// can move between subtasks cannot be rescaled. The split source
    /// ([`from_splits`](crate::StreamEnvironment::from_splits)) can.
    fn seek_rescaled(&mut self, _positions: &[Vec<u8>]) -> Result<(), BoxError> {
        Err("this source cannot be restored at another parallelism (keep its parallelism, or use splits)".into())
    }

    /// Checkpoint `checkpoint` completed, and every one before it; `position`
    /// is what [`Self::position`] returned at its barrier. For effects
    /// outside the job (Flink's `notifyCheckpointComplete`: a Kafka source
    /// commits the offsets to its group, for monitoring). It comes at the
    /// source's next poll; the default does nothing.
    fn checkpoint_complete(&mut self, _checkpoint: u64, _position: &[u8]) {}

    /// Whether [`Self::poll_batch`] may be dropped while it waits, losing
    /// nothing: it collects into the context only after its last await.
    /// Then a barrier, a stop or a savepoint does not wait for data to
    /// arrive: the runtime drops the waiting poll, injects the barrier and
    /// polls again. The default is `false` (the runtime waits for the poll).
    fn poll_is_cancel_safe(&self) -> bool {
        false
    }
}

/// A position counting the records handed out (the iterator sources').
fn count_position(taken: u64) -> Option<Vec<u8>> {
    Some(taken.to_be_bytes().to_vec())
}

/// Skips the records a [`count_position`] counted, on a new iterator.
fn seek_count<I: Iterator>(iter: &mut I, position: &[u8]) -> Result<u64, BoxError> {
    let n = <[u8; 8]>::try_from(position).map_err(|_| format!("a position of {} bytes, not 8", position.len()))?;
    let n = u64::from_be_bytes(n);
    let skipped = iter.by_ref().take(usize::try_from(n)?).count() as u64;
    if skipped < n {
        return Err(format!("cannot seek to record {n}: the source has only {skipped}").into());
    }
    Ok(n)
}

/// A source over an iterator of values (no timestamps). Its position is
/// the number of values handed out, so it replays when a new instance is
/// built over the same values.
///
/// ```
/// use dataflow_core::connectors::{IterSource, Source, SourceContext, SourceStatus};
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let mut s = IterSource::new(0..5);
/// let mut ctx = SourceContext::new(2);
/// assert_eq!(s.poll_batch(&mut ctx).await.unwrap(), SourceStatus::More);
/// let at = s.position().unwrap(); // after 0 and 1
///
/// let mut replay = IterSource::new(0..5);
/// replay.seek(&at).unwrap();
/// let mut ctx = SourceContext::new(8);
/// assert_eq!(replay.poll_batch(&mut ctx).await.unwrap(), SourceStatus::Finished);
/// assert_eq!(ctx.values(), [2, 3, 4]);
/// # });
/// ```
#[derive(Debug)]
pub struct IterSource<I> {
    iter: I,
    taken: u64,
}

impl<I> IterSource<I> {
    /// A source over `iter`.
    pub fn new(iter: I) -> Self {
        Self { iter, taken: 0 }
    }
}

#[async_trait]
impl<I> Source<I::Item> for IterSource<I>
where
    I: Iterator + Send + 'static,
    I::Item: Data,
{
    async fn poll_batch(&mut self, ctx: &mut SourceContext<I::Item>) -> Result<SourceStatus, BoxError> {
        let n = ctx.remaining();
        let before = ctx.records.len();
        ctx.records.extend_values(self.iter.by_ref().take(n));
        let got = ctx.records.len() - before;
        self.taken += got as u64;
        Ok(if got < n { SourceStatus::Finished } else { SourceStatus::More })
    }

    fn position(&self) -> Option<Vec<u8>> {
        count_position(self.taken)
    }

    fn seek(&mut self, position: &[u8]) -> Result<(), BoxError> {
        self.taken = seek_count(&mut self.iter, position)?;
        Ok(())
    }
}

/// A source over an iterator of [`StreamElement`]s: records with
/// timestamps, watermarks, idleness, as scripted.
///
/// ```
/// use dataflow_core::{connectors::ElementSource, StreamElement, Record, time::Watermark};
/// let _s = ElementSource::new(vec![
///     StreamElement::Record(Record::with_timestamp("a", 1)),
///     StreamElement::Watermark(Watermark(1)),
/// ].into_iter());
/// ```
#[derive(Debug)]
pub struct ElementSource<I> {
    iter: I,
    /// Elements handed out: the position.
    taken: u64,
}

impl<I> ElementSource<I> {
    /// A source over `iter`; its position counts the elements handed out.
    pub fn new(iter: I) -> Self {
        Self { iter, taken: 0 }
    }
}

#[async_trait]
impl<T, I> Source<T> for ElementSource<I>
where
    T: Data,
    I: Iterator<Item = StreamElement<T>> + Send + 'static,
{
    async fn poll_batch(&mut self, ctx: &mut SourceContext<T>) -> Result<SourceStatus, BoxError> {
        while !ctx.is_full() {
            let next = self.iter.next();
            self.taken += u64::from(next.is_some());
            match next {
                None => return Ok(SourceStatus::Finished),
                Some(StreamElement::EndOfInput) => return Ok(SourceStatus::Finished),
                Some(e) => match e.into_record() {
                    Ok(r) => ctx.records.push(r),
                    Err(c) => ctx.emit_control(c),
                },
            }
        }
        Ok(SourceStatus::More)
    }

    fn position(&self) -> Option<Vec<u8>> {
        count_position(self.taken)
    }

    fn seek(&mut self, position: &[u8]) -> Result<(), BoxError> {
        self.taken = seek_count(&mut self.iter, position)?;
        Ok(())
    }
}

/// A source over an async [`futures::Stream`] of values. It waits for the
/// first value of a batch and then takes whatever is ready without waiting.
///
/// ```
/// use dataflow_core::StreamEnvironment;
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let env = StreamEnvironment::new();
/// let out = env.from_stream(futures::stream::iter(vec![1, 2, 3])).collect();
/// env.execute().await.unwrap();
/// assert_eq!(out.take(), [1, 2, 3]);
/// # });
/// ```
#[derive(Debug)]
pub struct StreamSource<S> {
    stream: S,
}

impl<S> StreamSource<S> {
    /// A source over `stream`.
    pub fn new(stream: S) -> Self {
        Self { stream }
    }
}

#[async_trait]
impl<S> Source<S::Item> for StreamSource<S>
where
    S: futures::Stream + Send + Unpin + 'static,
    S::Item: Data,
{
    async fn poll_batch(&mut self, ctx: &mut SourceContext<S::Item>) -> Result<SourceStatus, BoxError> {
        match self.stream.next().await {
            None => return Ok(SourceStatus::Finished),
            Some(v) => ctx.collect(v, None),
        }
        while !ctx.is_full() {
            match self.stream.next().now_or_never() {
                Some(Some(v)) => ctx.collect(v, None),
                Some(None) => return Ok(SourceStatus::Finished),
                None => break,
            }
        }
        Ok(SourceStatus::More)
    }
}
