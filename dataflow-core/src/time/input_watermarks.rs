//! Combining the watermarks of a task's input channels.
//!
//! A task's watermark is the minimum over its *active, aligned* input
//! channels. An idle channel does not hold it back; when it becomes active
//! again it rejoins the minimum once its own watermark has caught up with
//! the task's (so the task's watermark never goes backwards). A channel that
//! reached its end of input drops out. The combined watermark is reported
//! only when it advances. When every channel is idle the task becomes idle
//! and its watermark moves to the largest watermark any channel has seen.

use super::{Timestamp, Watermark};
use crate::element::StreamStatus;

#[derive(Clone, Copy, Debug)]
struct Channel {
    watermark: Timestamp,
    idle: bool,
    ended: bool,
    aligned: bool,
}

/// The per-channel watermark and status bookkeeping of one task input.
///
/// ```
/// use dataflow_core::time::{InputWatermarks, Watermark};
/// use dataflow_core::StreamStatus;
///
/// let mut w = InputWatermarks::new(2);
/// assert_eq!(w.on_watermark(0, Watermark(10)), None); // channel 1 holds it back
/// assert_eq!(w.on_watermark(1, Watermark(7)), Some(Watermark(7)));
/// let (wm, status) = w.on_status(1, StreamStatus::Idle); // channel 1 goes idle
/// assert_eq!((wm, status), (Some(Watermark(10)), None));
/// ```
#[derive(Clone, Debug)]
pub struct InputWatermarks {
    channels: Vec<Channel>,
    current: Timestamp,
    idle: bool,
}

impl InputWatermarks {
    /// Bookkeeping for `channels` input channels, all active, at `Watermark::MIN`.
    pub fn new(channels: usize) -> Self {
        let ch = Channel { watermark: Timestamp::MIN, idle: false, ended: false, aligned: true };
        Self { channels: vec![ch; channels], current: Timestamp::MIN, idle: false }
    }

    /// The combined watermark so far.
    ///
    /// ```
    /// assert_eq!(dataflow_core::time::InputWatermarks::new(1).current(), dataflow_core::time::Watermark::MIN);
    /// ```
    pub fn current(&self) -> Watermark {
        Watermark(self.current)
    }

    /// Whether every live input channel is idle.
    ///
    /// ```
    /// assert!(!dataflow_core::time::InputWatermarks::new(1).is_idle());
    /// ```
    pub fn is_idle(&self) -> bool {
        self.idle
    }

    /// A watermark arrived on `channel`; returns the new combined watermark
    /// if it advanced. A watermark on an idle channel makes it active.
    pub fn on_watermark(&mut self, channel: usize, wm: Watermark) -> Option<Watermark> {
        let ch = &mut self.channels[channel];
        if wm.0 <= ch.watermark {
            return None;
        }
        ch.watermark = wm.0;
        ch.idle = false;
        if ch.watermark >= self.current {
            ch.aligned = true;
        }
        self.idle = false;
        self.advance()
    }

    /// `channel` changed status; returns the new combined watermark if it
    /// advanced and the task's new status if that changed.
    pub fn on_status(&mut self, channel: usize, status: StreamStatus) -> (Option<Watermark>, Option<StreamStatus>) {
        let was_idle = self.idle;
        let current = self.current;
        let ch = &mut self.channels[channel];
        match status {
            StreamStatus::Idle => ch.idle = true,
            StreamStatus::Active => {
                ch.idle = false;
                ch.aligned = ch.watermark >= current;
            }
        }
        let wm = self.advance();
        let changed =
            (self.idle != was_idle).then_some(if self.idle { StreamStatus::Idle } else { StreamStatus::Active });
        (wm, changed)
    }

    /// `channel` reached its end of input; returns the new combined
    /// watermark if it advanced.
    pub fn on_end_of_input(&mut self, channel: usize) -> Option<Watermark> {
        self.channels[channel].ended = true;
        self.advance()
    }

    fn advance(&mut self) -> Option<Watermark> {
        let live = || self.channels.iter().filter(|c| !c.ended);
        let active_min = live().filter(|c| !c.idle && c.aligned).map(|c| c.watermark).min();
        let any_live = live().next().is_some();
        let all_idle = any_live && live().all(|c| c.idle);
        self.idle = all_idle;
        let candidate = match active_min {
            Some(min) => min,
            None if all_idle => live().map(|c| c.watermark).max().unwrap_or(Timestamp::MIN),
            None => return None,
        };
        if candidate > self.current {
            self.current = candidate;
            for c in self.channels.iter_mut().filter(|c| c.watermark >= candidate) {
                c.aligned = true;
            }
            Some(Watermark(candidate))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimum_over_active_channels_and_only_when_advancing() {
        let mut w = InputWatermarks::new(3);
        assert_eq!(w.on_watermark(0, Watermark(5)), None);
        assert_eq!(w.on_watermark(1, Watermark(3)), None);
        assert_eq!(w.on_watermark(2, Watermark(4)), Some(Watermark(3)));
        assert_eq!(w.on_watermark(1, Watermark(4)), Some(Watermark(4)));
        assert_eq!(w.on_watermark(2, Watermark(4)), None);
    }

    #[test]
    fn idle_channel_does_not_hold_back_and_rejoins_when_caught_up() {
        let mut w = InputWatermarks::new(2);
        w.on_watermark(0, Watermark(10));
        assert_eq!(w.on_status(1, StreamStatus::Idle), (Some(Watermark(10)), None));
        assert_eq!(w.on_watermark(0, Watermark(20)), Some(Watermark(20)));
        // Channel 1 comes back behind: it must not pull the watermark back.
        assert_eq!(w.on_status(1, StreamStatus::Active), (None, None));
        assert_eq!(w.on_watermark(0, Watermark(30)), Some(Watermark(30)));
        assert_eq!(w.on_watermark(1, Watermark(25)), None);
        // Once caught up it counts again.
        assert_eq!(w.on_watermark(1, Watermark(35)), None);
        assert_eq!(w.on_watermark(0, Watermark(40)), Some(Watermark(35)));
    }

    #[test]
    fn all_idle_makes_the_task_idle() {
        let mut w = InputWatermarks::new(2);
        w.on_watermark(0, Watermark(1));
        w.on_watermark(1, Watermark(2));
        assert_eq!(w.on_status(0, StreamStatus::Idle), (Some(Watermark(2)), None));
        assert_eq!(w.on_status(1, StreamStatus::Idle), (None, Some(StreamStatus::Idle)));
        assert!(w.is_idle());
        assert_eq!(w.on_watermark(0, Watermark(3)), Some(Watermark(3)));
        assert!(!w.is_idle());
    }

    #[test]
    fn ended_channels_drop_out() {
        let mut w = InputWatermarks::new(2);
        w.on_watermark(0, Watermark(9));
        assert_eq!(w.on_end_of_input(1), Some(Watermark(9)));
    }
}
