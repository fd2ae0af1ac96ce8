//! Window assigners: which windows an element belongs to. Tumbling,
//! sliding and session windows in event or processing time, with offsets,
//! and global windows.

use super::trigger::{EventTimeTrigger, NeverTrigger, ProcessingTimeTrigger};
use super::{GlobalWindow, TimeWindow, Window};
use crate::time::Timestamp;
use std::time::Duration;

/// A size or slide in milliseconds (at least 1).
fn millis(d: Duration) -> i64 {
    crate::time::millis(d).max(1)
}

/// Assigns elements to windows.
///
/// ```
/// use dataflow_core::window::{TimeWindow, TumblingEventTimeWindows, WindowAssigner};
/// use std::time::Duration;
/// let a = TumblingEventTimeWindows::of(Duration::from_millis(10));
/// let mut out = Vec::new();
/// WindowAssigner::<()>::assign(&a, &(), 17, &mut out);
/// assert_eq!(out, [TimeWindow::new(10, 20)]);
/// ```
pub trait WindowAssigner<T>: Clone + Send + Sync + 'static {
    /// The window type.
    type W: Window;
    /// The trigger used unless another is set.
    type DefaultTrigger: Default;

    /// Appends the windows of an element with timestamp `timestamp` (its
    /// event time, or the current processing time for processing-time
    /// assigners) to `out`.
    fn assign(&self, value: &T, timestamp: Timestamp, out: &mut Vec<Self::W>);

    /// Whether windows are in event time (else processing time).
    fn is_event_time(&self) -> bool;

    /// Whether windows merge (sessions): overlapping windows of a key are
    /// combined with [`Window::merge`].
    fn is_merging(&self) -> bool {
        false
    }
}

/// The windows of a timestamp within `size` of the ends of the `i64`
/// range, computed in `i128` and clamped to it (no overflow).
#[cold]
fn assign_near_the_ends(timestamp: Timestamp, size: i64, slide: i64, offset: i64, out: &mut Vec<TimeWindow>) {
    let clamp = |t: i128| t.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
    let (ts, size, slide, offset) = (i128::from(timestamp), i128::from(size), i128::from(slide), i128::from(offset));
    let mut start = ts - (ts - offset).rem_euclid(slide);
    while start > ts - size {
        out.push(TimeWindow::new(clamp(start), clamp(start + size)));
        start -= slide;
    }
}

macro_rules! time_assigner {
    ($(#[$doc:meta])* $name:ident, event = $event:expr, trigger = $trigger:ty) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name {
            size: i64,
            slide: i64,
            offset: i64,
        }

        impl<T> WindowAssigner<T> for $name {
            type W = TimeWindow;
            type DefaultTrigger = $trigger;

            #[inline]
            fn assign(&self, _value: &T, timestamp: Timestamp, out: &mut Vec<TimeWindow>) {
                if timestamp.checked_sub(self.size).is_some() && timestamp.checked_add(self.size).is_some() {
                    let mut start = TimeWindow::start_of(timestamp, self.offset, self.slide);
                    while start > timestamp - self.size {
                        out.push(TimeWindow::new(start, start + self.size));
                        start -= self.slide;
                    }
                } else {
                    assign_near_the_ends(timestamp, self.size, self.slide, self.offset, out);
                }
            }

            fn is_event_time(&self) -> bool {
                $event
            }
        }
    };
}

macro_rules! tumbling {
    ($name:ident) => {
        impl $name {
            /// Windows of `size`, aligned to the epoch.
            pub fn of(size: Duration) -> Self {
                let size = millis(size);
                Self { size, slide: size, offset: 0 }
            }

            /// Shifts the windows by `offset` (e.g. to a time zone).
            pub fn with_offset(self, offset: Duration) -> Self {
                Self { offset: crate::time::millis(offset) % self.size, ..self }
            }
        }
    };
}

macro_rules! sliding {
    ($name:ident) => {
        impl $name {
            /// Windows of `size` starting every `slide`.
            pub fn of(size: Duration, slide: Duration) -> Self {
                Self { size: millis(size), slide: millis(slide), offset: 0 }
            }

            /// Shifts the windows by `offset`.
            pub fn with_offset(self, offset: Duration) -> Self {
                Self { offset: crate::time::millis(offset) % self.slide, ..self }
            }
        }
    };
}

time_assigner!(
    /// Fixed-size, non-overlapping event-time windows.
    ///
    /// ```
    /// use dataflow_core::window::{TimeWindow, TumblingEventTimeWindows, WindowAssigner};
    /// use std::time::Duration;
    /// let a = TumblingEventTimeWindows::of(Duration::from_secs(60)).with_offset(Duration::from_secs(15));
    /// let mut out = Vec::new();
    /// WindowAssigner::<u8>::assign(&a, &0, 10_000, &mut out);
    /// assert_eq!(out, [TimeWindow::new(-45_000, 15_000)]);
    /// ```
    TumblingEventTimeWindows, event = true, trigger = EventTimeTrigger
);
tumbling!(TumblingEventTimeWindows);
time_assigner!(
    /// Fixed-size, non-overlapping processing-time windows.
    ///
    /// ```
    /// use dataflow_core::window::TumblingProcessingTimeWindows;
    /// let a = TumblingProcessingTimeWindows::of(std::time::Duration::from_secs(1));
    /// # let _ = a;
    /// ```
    TumblingProcessingTimeWindows, event = false, trigger = ProcessingTimeTrigger
);
tumbling!(TumblingProcessingTimeWindows);
time_assigner!(
    /// Fixed-size event-time windows that overlap: one starts every `slide`.
    ///
    /// ```
    /// use dataflow_core::window::{SlidingEventTimeWindows, TimeWindow, WindowAssigner};
    /// use std::time::Duration;
    /// let a = SlidingEventTimeWindows::of(Duration::from_millis(10), Duration::from_millis(5));
    /// let mut out = Vec::new();
    /// WindowAssigner::<u8>::assign(&a, &0, 12, &mut out);
    /// assert_eq!(out, [TimeWindow::new(10, 20), TimeWindow::new(5, 15)]);
    /// ```
    SlidingEventTimeWindows, event = true, trigger = EventTimeTrigger
);
sliding!(SlidingEventTimeWindows);
time_assigner!(
    /// Fixed-size processing-time windows that overlap.
    ///
    /// ```
    /// use dataflow_core::window::SlidingProcessingTimeWindows;
    /// use std::time::Duration;
    /// let a = SlidingProcessingTimeWindows::of(Duration::from_secs(10), Duration::from_secs(5));
    /// # let _ = a;
    /// ```
    SlidingProcessingTimeWindows, event = false, trigger = ProcessingTimeTrigger
);
sliding!(SlidingProcessingTimeWindows);

/// Session windows: an element opens `[t, t + gap)`, and windows of a key
/// that overlap or touch merge; a session ends after `gap` without elements.
///
/// ```
/// use dataflow_core::window::{EventTimeSessionWindows, TimeWindow, WindowAssigner};
/// let a = EventTimeSessionWindows::with_gap(std::time::Duration::from_millis(5));
/// let mut out = Vec::new();
/// WindowAssigner::<u8>::assign(&a, &0, 12, &mut out);
/// assert_eq!(out, [TimeWindow::new(12, 17)]);
/// assert!(WindowAssigner::<u8>::is_merging(&a));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventTimeSessionWindows {
    gap: i64,
}

impl EventTimeSessionWindows {
    /// Sessions that close after `gap` of event time without elements.
    pub fn with_gap(gap: Duration) -> Self {
        Self { gap: millis(gap) }
    }
}

/// Session windows in processing time.
///
/// ```
/// use dataflow_core::window::ProcessingTimeSessionWindows;
/// let a = ProcessingTimeSessionWindows::with_gap(std::time::Duration::from_secs(30));
/// # let _ = a;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessingTimeSessionWindows {
    gap: i64,
}

impl ProcessingTimeSessionWindows {
    /// Sessions that close after `gap` of processing time without elements.
    pub fn with_gap(gap: Duration) -> Self {
        Self { gap: millis(gap) }
    }
}

macro_rules! sessions {
    ($name:ident, event = $event:expr, trigger = $trigger:ty) => {
        impl<T> WindowAssigner<T> for $name {
            type W = TimeWindow;
            type DefaultTrigger = $trigger;

            fn assign(&self, _value: &T, timestamp: Timestamp, out: &mut Vec<TimeWindow>) {
                out.push(TimeWindow::new(timestamp, timestamp.saturating_add(self.gap)));
            }

            fn is_event_time(&self) -> bool {
                $event
            }

            fn is_merging(&self) -> bool {
                true
            }
        }
    };
}
sessions!(EventTimeSessionWindows, event = true, trigger = EventTimeTrigger);
sessions!(ProcessingTimeSessionWindows, event = false, trigger = ProcessingTimeTrigger);

/// One window per key holding every element; it never fires unless a
/// trigger is set (a [`CountTrigger`](super::CountTrigger), say).
///
/// ```
/// use dataflow_core::window::{GlobalWindow, GlobalWindows, WindowAssigner};
/// let mut out = Vec::new();
/// WindowAssigner::<u8>::assign(&GlobalWindows, &0, 12, &mut out);
/// assert_eq!(out, [GlobalWindow]);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GlobalWindows;

impl<T> WindowAssigner<T> for GlobalWindows {
    type W = GlobalWindow;
    type DefaultTrigger = NeverTrigger;

    fn assign(&self, _value: &T, _timestamp: Timestamp, out: &mut Vec<GlobalWindow>) {
        out.push(GlobalWindow);
    }

    fn is_event_time(&self) -> bool {
        false
    }
}
