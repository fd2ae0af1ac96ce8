//! The windows themselves: [`TimeWindow`] (`[start, end)`) and
//! [`GlobalWindow`] (one window holding everything).

use crate::time::Timestamp;
use std::hash::Hash;

/// A window: a bucket of elements of one key, fired by a trigger.
///
/// ```
/// use dataflow_core::window::{TimeWindow, Window};
/// assert_eq!(TimeWindow::new(0, 10).max_timestamp(), 9);
/// ```
pub trait Window:
    Clone + Eq + Hash + Send + Sync + std::fmt::Debug + serde::Serialize + serde::de::DeserializeOwned + 'static
{
    /// The largest timestamp that still belongs to the window; an
    /// event-time window fires when the watermark reaches it.
    fn max_timestamp(&self) -> Timestamp;

    /// The smallest window covering both, if they overlap or touch (for
    /// merging windows, such as sessions); `None` for windows that never
    /// merge.
    fn merge(&self, _other: &Self) -> Option<Self> {
        None
    }
}

/// A window of time `[start, end)`.
///
/// ```
/// use dataflow_core::window::{TimeWindow, Window};
/// let w = TimeWindow::new(0, 10);
/// assert_eq!(w.merge(&TimeWindow::new(10, 20)), Some(TimeWindow::new(0, 20))); // touching windows merge
/// assert_eq!(w.merge(&TimeWindow::new(11, 20)), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct TimeWindow {
    /// The first timestamp in the window.
    pub start: Timestamp,
    /// The first timestamp after the window.
    pub end: Timestamp,
}

impl TimeWindow {
    /// The window `[start, end)`.
    pub fn new(start: Timestamp, end: Timestamp) -> Self {
        Self { start, end }
    }

    /// Whether the two windows overlap or touch (Flink's `intersects`).
    pub fn intersects(&self, other: &TimeWindow) -> bool {
        self.start <= other.end && self.end >= other.start
    }

    /// The smallest window covering both.
    pub fn cover(&self, other: &TimeWindow) -> TimeWindow {
        TimeWindow::new(self.start.min(other.start), self.end.max(other.end))
    }

    /// The start of the window of `size` (shifted by `offset`) that holds `timestamp`.
    ///
    /// ```
    /// use dataflow_core::window::TimeWindow;
    /// assert_eq!(TimeWindow::start_of(17, 0, 10), 10);
    /// assert_eq!(TimeWindow::start_of(-3, 0, 10), -10);
    /// assert_eq!(TimeWindow::start_of(17, 5, 10), 15);
    /// assert_eq!(TimeWindow::start_of(i64::MIN, 0, 10), i64::MIN); // clamped, no overflow
    /// ```
    pub fn start_of(timestamp: Timestamp, offset: i64, size: i64) -> Timestamp {
        timestamp.saturating_sub(timestamp.wrapping_sub(offset).rem_euclid(size.max(1)))
    }
}

impl Window for TimeWindow {
    fn max_timestamp(&self) -> Timestamp {
        self.end - 1
    }

    fn merge(&self, other: &Self) -> Option<Self> {
        self.intersects(other).then(|| self.cover(other))
    }
}

impl std::fmt::Display for TimeWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}, {})", self.start, self.end)
    }
}

/// The single window of [`GlobalWindows`](super::GlobalWindows): every
/// element of a key; it fires only by its trigger.
///
/// ```
/// use dataflow_core::window::{GlobalWindow, Window};
/// assert_eq!(GlobalWindow.max_timestamp(), i64::MAX);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct GlobalWindow;

impl Window for GlobalWindow {
    fn max_timestamp(&self) -> Timestamp {
        Timestamp::MAX
    }
}
