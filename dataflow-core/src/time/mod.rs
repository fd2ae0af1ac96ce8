//! Time: timestamps, watermarks, clocks, where watermarks are generated
//! ([`WatermarkStrategy`]) and where the watermarks of a task's input
//! channels are combined ([`InputWatermarks`]), and timers ([`TimerService`]).

mod clock;
mod input_watermarks;
pub(crate) mod strategy;
mod timer_entries;
mod timers;
mod watermark_alignment;

pub use crate::element::{Timestamp, Watermark};
pub use clock::{Clock, ManualClock, SystemClock, Wakeup};
pub use input_watermarks::InputWatermarks;
pub use strategy::{BoundedOutOfOrderness, WatermarkGenerator, WatermarkOutput, WatermarkStrategy};
pub(crate) use timer_entries::{decode_timer, entries_of, timer_entries};
pub use timers::{TimeDomain, Timer, TimerRequest, TimerService};
pub use watermark_alignment::AlignmentGroup;

/// A duration in whole milliseconds, saturating at `i64::MAX`.
pub(crate) fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
