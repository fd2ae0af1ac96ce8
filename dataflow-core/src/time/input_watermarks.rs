//! Combining the watermarks of a task's input channels.
//!
//! A task's watermark is the minimum over its *active, aligned* input
//! channels. An idle channel does not hold it back; when it becomes active
//! again it rejoins the minimum once its own watermark has caught up with
//! the task's (so the task's watermark never goes backwards). A channel that
//! reached its end of input counts as at the maximum watermark (as in
//! Flink's valve): it no longer holds the minimum back. The combined
//! watermark is reported only when it advances. When every live channel is
//! idle the task becomes idle and its watermark moves to the largest
//! watermark any channel has seen, a finished one's included — so once
//! every other input ended, an idle one does not hold back event time.

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
/// assert_eq!(w.on_watermark(0, Watermark(10)), (None, None)); // channel 1 holds it back
/// assert_eq!(w.on_watermark(1, Watermark(7)), (Some(Watermark(7)), None));
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
    /// if it advanced, and the task's new status if that changed. A
    /// watermark on an idle channel makes it active (it rejoins the minimum
    /// once it has caught up).
    pub fn on_watermark(&mut self, channel: usize, wm: Watermark) -> (Option<Watermark>, Option<StreamStatus>) {
        let (was_idle, current) = (self.idle, self.current);
        let ch = &mut self.channels[channel];
        if ch.idle {
            ch.idle = false;
            ch.aligned = wm.0 >= current;
        }
        if wm.0 > ch.watermark {
            ch.watermark = wm.0;
            if ch.watermark >= current {
                ch.aligned = true;
            }
        }
        let wm = self.advance();
        (wm, self.status_change(was_idle))
    }

    fn status_change(&self, was_idle: bool) -> Option<StreamStatus> {
        (self.idle != was_idle).then_some(if self.idle { StreamStatus::Idle } else { StreamStatus::Active })
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
        (wm, self.status_change(was_idle))
    }

    /// `channel` reached its end of input; returns the new combined
    /// watermark if it advanced, and the task's new status if that changed.
    pub fn on_end_of_input(&mut self, channel: usize) -> (Option<Watermark>, Option<StreamStatus>) {
        let was_idle = self.idle;
        let ch = &mut self.channels[channel];
        (ch.ended, ch.watermark) = (true, Timestamp::MAX);
        let wm = self.advance();
        (wm, self.status_change(was_idle))
    }

    fn advance(&mut self) -> Option<Watermark> {
        let live = || self.channels.iter().filter(|c| !c.ended);
        let active_min = live().filter(|c| !c.idle && c.aligned).map(|c| c.watermark).min();
        let any_live = live().next().is_some();
        let all_idle = any_live && live().all(|c| c.idle);
        self.idle = all_idle;
        let candidate = match active_min {
            Some(min) => min,
            None if all_idle => self.channels.iter().map(|c| c.watermark).max().unwrap_or(Timestamp::MIN),
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
        assert_eq!(w.on_watermark(0, Watermark(5)).0, None);
        assert_eq!(w.on_watermark(1, Watermark(3)).0, None);
        assert_eq!(w.on_watermark(2, Watermark(4)).0, Some(Watermark(3)));
        assert_eq!(w.on_watermark(1, Watermark(4)).0, Some(Watermark(4)));
        assert_eq!(w.on_watermark(2, Watermark(4)).0, None);
    }

    #[test]
    fn idle_channel_does_not_hold_back_and_rejoins_when_caught_up() {
        let mut w = InputWatermarks::new(2);
        w.on_watermark(0, Watermark(10));
        assert_eq!(w.on_status(1, StreamStatus::Idle), (Some(Watermark(10)), None));
        assert_eq!(w.on_watermark(0, Watermark(20)).0, Some(Watermark(20)));
        // Channel 1 comes back behind: it must not pull the watermark back.
        assert_eq!(w.on_status(1, StreamStatus::Active), (None, None));
        assert_eq!(w.on_watermark(0, Watermark(30)).0, Some(Watermark(30)));
        assert_eq!(w.on_watermark(1, Watermark(25)).0, None);
        // Once caught up it counts again.
        assert_eq!(w.on_watermark(1, Watermark(35)).0, None);
        assert_eq!(w.on_watermark(0, Watermark(40)).0, Some(Watermark(35)));
    }

    #[test]
    fn all_idle_makes_the_task_idle() {
        let mut w = InputWatermarks::new(2);
        w.on_watermark(0, Watermark(1));
        w.on_watermark(1, Watermark(2));
        assert_eq!(w.on_status(0, StreamStatus::Idle), (Some(Watermark(2)), None));
        assert_eq!(w.on_status(1, StreamStatus::Idle), (None, Some(StreamStatus::Idle)));
        assert!(w.is_idle());
        assert_eq!(w.on_watermark(0, Watermark(3)), (Some(Watermark(3)), Some(StreamStatus::Active)));
        assert!(!w.is_idle());
    }

    #[test]
    fn an_idle_channel_woken_by_a_late_watermark_does_not_hold_back() {
        let mut w = InputWatermarks::new(2);
        w.on_watermark(0, Watermark(5));
        w.on_watermark(1, Watermark(5));
        w.on_status(1, StreamStatus::Idle);
        assert_eq!(w.on_watermark(0, Watermark(50)).0, Some(Watermark(50)));
        // Channel 1 wakes up behind: it must not stall the task at 20.
        assert_eq!(w.on_watermark(1, Watermark(20)), (None, None));
        assert_eq!(w.on_watermark(0, Watermark(60)).0, Some(Watermark(60)));
    }

    #[test]
    fn the_last_active_channel_ending_makes_the_task_idle() {
        let mut w = InputWatermarks::new(2);
        w.on_status(0, StreamStatus::Idle);
        assert_eq!(w.on_end_of_input(1).1, Some(StreamStatus::Idle));
    }

    #[test]
    fn an_idle_channel_does_not_hold_back_once_the_others_ended() {
        // Three inputs end (without a final watermark: a stop), the fourth
        // stays open and goes idle: event time must not stay behind it.
        let mut w = InputWatermarks::new(4);
        for c in 0..4 {
            w.on_watermark(c, Watermark(10 + c as i64));
        }
        for c in 0..3 {
            assert_eq!(w.on_end_of_input(c).1, None);
        }
        assert_eq!(w.current(), Watermark(13));
        assert_eq!(w.on_status(3, StreamStatus::Idle), (Some(Watermark::MAX), Some(StreamStatus::Idle)));
    }

    #[test]
    fn ended_channels_drop_out() {
        let mut w = InputWatermarks::new(2);
        w.on_watermark(0, Watermark(9));
        assert_eq!(w.on_end_of_input(1), (Some(Watermark(9)), None));
    }
}
