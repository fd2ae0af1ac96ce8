//! Watermark strategies: how a stream gets event timestamps and watermarks
//! (Flink's `WatermarkStrategy`), applied with
//! [`Stream::assign_timestamps_and_watermarks`](crate::Stream::assign_timestamps_and_watermarks)
//! right after a source (it chains to it) or after any operator.
//!
//! ```
//! use dataflow_core::time::{Watermark, WatermarkStrategy};
//! use std::time::Duration;
//!
//! // Events carry their time in milliseconds; they arrive up to 5 s late.
//! let strategy = WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_secs(5))
//!     .with_timestamp_assigner(|event: &(String, i64), _previous| event.1);
//! # let _ = strategy;
//! ```

use super::{AlignmentGroup, Timestamp, Watermark, millis};
use std::sync::Arc;
use std::time::Duration;

/// Where a [`WatermarkGenerator`] puts a watermark. Emitting one that does
/// not advance on the last emitted is ignored.
///
/// ```
/// let mut out = dataflow_core::time::WatermarkOutput::default();
/// out.emit(dataflow_core::time::Watermark(5));
/// out.emit(dataflow_core::time::Watermark(3));
/// assert_eq!(out.take(), Some(dataflow_core::time::Watermark(5)));
/// ```
#[derive(Debug, Default)]
pub struct WatermarkOutput {
    pending: Option<Watermark>,
}

impl WatermarkOutput {
    /// Emits a watermark.
    pub fn emit(&mut self, watermark: Watermark) {
        if self.pending.is_none_or(|p| watermark > p) {
            self.pending = Some(watermark);
        }
    }

    /// Takes the highest watermark emitted since the last take.
    pub fn take(&mut self) -> Option<Watermark> {
        self.pending.take()
    }
}

/// Generates watermarks from the events it sees, per parallel instance
/// (Flink's `WatermarkGenerator`): punctuated generators emit in
/// `on_event`, periodic ones in `on_periodic_emit`.
///
/// ```
/// use dataflow_core::time::{Timestamp, Watermark, WatermarkGenerator, WatermarkOutput};
///
/// /// A watermark at every event whose value says so.
/// struct Marks;
/// impl WatermarkGenerator<(bool, i64)> for Marks {
///     fn on_event(&mut self, event: &(bool, i64), ts: Timestamp, out: &mut WatermarkOutput) {
///         if event.0 { out.emit(Watermark(ts)) }
///     }
///     fn on_periodic_emit(&mut self, _out: &mut WatermarkOutput) {}
/// }
/// ```
pub trait WatermarkGenerator<T>: Send + 'static {
    /// Called for every event with its timestamp.
    fn on_event(&mut self, event: &T, timestamp: Timestamp, out: &mut WatermarkOutput);
    /// Called periodically: after every batch of events (see `docs/time.md`).
    fn on_periodic_emit(&mut self, out: &mut WatermarkOutput);
}

/// The generator for events at most `bound` out of order: the watermark is
/// the largest timestamp seen minus `bound` minus one millisecond.
///
/// ```
/// use dataflow_core::time::{BoundedOutOfOrderness, Watermark, WatermarkGenerator, WatermarkOutput};
/// let mut g = BoundedOutOfOrderness::new(10);
/// let mut out = WatermarkOutput::default();
/// g.on_event(&(), 100, &mut out);
/// g.on_event(&(), 90, &mut out);
/// WatermarkGenerator::<()>::on_periodic_emit(&mut g, &mut out);
/// assert_eq!(out.take(), Some(Watermark(89)));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct BoundedOutOfOrderness {
    bound: i64,
    max_timestamp: Timestamp,
}

impl BoundedOutOfOrderness {
    /// A generator for events at most `bound_millis` out of order.
    pub fn new(bound_millis: i64) -> Self {
        Self { bound: bound_millis.max(0), max_timestamp: Timestamp::MIN }
    }
}

impl<T> WatermarkGenerator<T> for BoundedOutOfOrderness {
    fn on_event(&mut self, _event: &T, timestamp: Timestamp, _out: &mut WatermarkOutput) {
        self.max_timestamp = self.max_timestamp.max(timestamp);
    }

    fn on_periodic_emit(&mut self, out: &mut WatermarkOutput) {
        if self.max_timestamp != Timestamp::MIN {
            out.emit(Watermark(self.max_timestamp.saturating_sub(self.bound).saturating_sub(1)));
        }
    }
}

pub(crate) type Assigner<T> = Arc<dyn Fn(&T, Option<Timestamp>) -> Timestamp + Send + Sync>;
type GeneratorFactory<T> = Arc<dyn Fn() -> Box<dyn WatermarkGenerator<T>> + Send + Sync>;

/// How to give a stream timestamps and watermarks: a watermark generator and
/// an optional timestamp assigner (without one, records keep the timestamp
/// they have).
///
/// ```
/// use dataflow_core::time::WatermarkStrategy;
/// let s = WatermarkStrategy::<u64>::for_monotonous_timestamps().with_timestamp_assigner(|v, _| *v as i64);
/// # let _ = s;
/// ```
pub struct WatermarkStrategy<T> {
    pub(crate) generator: GeneratorFactory<T>,
    pub(crate) assigner: Option<Assigner<T>>,
    pub(crate) idle_timeout: Option<i64>,
    pub(crate) alignment: Option<Alignment>,
}

/// The alignment group a strategy joins: by name until the stream resolves
/// it to the job's group.
#[derive(Clone, Debug)]
pub(crate) struct Alignment {
    pub(crate) group: String,
    pub(crate) max_drift: i64,
    pub(crate) resolved: Option<Arc<AlignmentGroup>>,
}

impl<T> Clone for WatermarkStrategy<T> {
    fn clone(&self) -> Self {
        Self {
            generator: self.generator.clone(),
            assigner: self.assigner.clone(),
            idle_timeout: self.idle_timeout,
            alignment: self.alignment.clone(),
        }
    }
}

impl<T> std::fmt::Debug for WatermarkStrategy<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatermarkStrategy").field("assigner", &self.assigner.is_some()).finish()
    }
}

impl<T: 'static> WatermarkStrategy<T> {
    /// Events arrive at most `bound` out of order.
    pub fn for_bounded_out_of_orderness(bound: Duration) -> Self {
        let bound = millis(bound);
        Self::for_generator(move || BoundedOutOfOrderness::new(bound))
    }

    /// No timestamps and no watermarks (Flink's `noWatermarks`): records
    /// keep whatever timestamp their source gave them, and event time
    /// reaches its end only when the input does.
    ///
    /// ```
    /// let s = dataflow_core::time::WatermarkStrategy::<u8>::no_watermarks();
    /// # let _ = s;
    /// ```
    pub fn no_watermarks() -> Self {
        struct Never;
        impl<T> WatermarkGenerator<T> for Never {
            fn on_event(&mut self, _: &T, _: Timestamp, _: &mut WatermarkOutput) {}
            fn on_periodic_emit(&mut self, _: &mut WatermarkOutput) {}
        }
        Self::for_generator(|| Never)
    }

    /// Timestamps never decrease.
    pub fn for_monotonous_timestamps() -> Self {
        Self::for_generator(|| BoundedOutOfOrderness::new(0))
    }

    /// A generator of your own, made once per parallel instance.
    ///
    /// ```
    /// use dataflow_core::time::{BoundedOutOfOrderness, WatermarkStrategy};
    /// let s = WatermarkStrategy::<u8>::for_generator(|| BoundedOutOfOrderness::new(3));
    /// # let _ = s;
    /// ```
    pub fn for_generator<G: WatermarkGenerator<T>>(make: impl Fn() -> G + Send + Sync + 'static) -> Self {
        Self { generator: Arc::new(move || Box::new(make())), assigner: None, idle_timeout: None, alignment: None }
    }

    /// Takes each record's timestamp from its value (and the timestamp it
    /// already had, if any).
    pub fn with_timestamp_assigner(
        self,
        assigner: impl Fn(&T, Option<Timestamp>) -> Timestamp + Send + Sync + 'static,
    ) -> Self {
        Self { assigner: Some(Arc::new(assigner)), ..self }
    }

    /// Marks the stream idle after `timeout` of processing time without
    /// records, so downstream tasks stop waiting for its watermark; the
    /// next record makes it active again.
    ///
    /// ```
    /// use dataflow_core::time::WatermarkStrategy;
    /// use std::time::Duration;
    /// let s = WatermarkStrategy::<u8>::for_monotonous_timestamps().with_idleness(Duration::from_secs(60));
    /// # let _ = s;
    /// ```
    pub fn with_idleness(self, timeout: Duration) -> Self {
        Self { idle_timeout: Some(millis(timeout)), ..self }
    }

    /// Aligns the watermarks of every source whose strategy names `group`:
    /// a source more than `max_drift` ahead of the group's slowest stops
    /// reading until it catches up. Applies where the strategy is chained
    /// to a source (right after it).
    ///
    /// ```
    /// use dataflow_core::time::WatermarkStrategy;
    /// use std::time::Duration;
    /// let s = WatermarkStrategy::<u8>::for_monotonous_timestamps()
    ///     .with_watermark_alignment("sensors", Duration::from_secs(20));
    /// # let _ = s;
    /// ```
    pub fn with_watermark_alignment(self, group: &str, max_drift: Duration) -> Self {
        let alignment = Alignment { group: group.to_string(), max_drift: millis(max_drift), resolved: None };
        Self { alignment: Some(alignment), ..self }
    }
}
