//! Time: timestamps, watermarks, clocks, where watermarks are generated
//! ([`WatermarkStrategy`]) and where the watermarks of a task's input
//! channels are combined ([`InputWatermarks`]), and timers ([`TimerService`]).

mod alignment;
mod clock;
mod input_watermarks;
mod strategy;
mod timer_entries;
mod timers;

pub use alignment::AlignmentGroup;
pub use clock::{Clock, ManualClock, SystemClock, Wakeup};
pub use input_watermarks::InputWatermarks;
pub use strategy::{
    BoundedOutOfOrderness, TimestampsAndWatermarks, WatermarkGenerator, WatermarkOutput, WatermarkStrategy,
};
pub(crate) use timer_entries::{decode_timer, timer_entries};
pub use timers::{TimeDomain, Timer, TimerRequest, TimerService};

/// Milliseconds since the Unix epoch (event or processing time).
pub type Timestamp = i64;

/// A duration in whole milliseconds, saturating at `i64::MAX`.
pub(crate) fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A promise that no record with a timestamp at or below this one follows
/// on the channel (bar late data).
///
/// ```
/// use dataflow_core::time::Watermark;
/// assert!(Watermark(5) < Watermark(6));
/// assert_eq!(Watermark::MAX.0, i64::MAX);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Watermark(pub Timestamp);

impl Watermark {
    /// The watermark before any event time: nothing is known.
    pub const MIN: Watermark = Watermark(Timestamp::MIN);
    /// The watermark at the end of input: every window can fire.
    pub const MAX: Watermark = Watermark(Timestamp::MAX);
}
