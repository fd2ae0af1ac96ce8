//! Continuous triggers: fire every interval of event or processing time
//! while a window is open, the last time at its end.

use super::Window;
use super::trigger::{Trigger, TriggerContext, TriggerResult};
use crate::time::{Timestamp, Watermark};

/// The next periodic firing after `time`: one `interval` later, but never
/// after the window's end (its last firing).
fn next_fire<W: Window>(time: Timestamp, interval: i64, w: &W) -> Timestamp {
    time.saturating_add(interval).min(w.max_timestamp())
}

/// Fires every `interval` of event time while the window is open, and at
/// its end.
///
/// ```
/// let t = dataflow_core::window::ContinuousEventTimeTrigger::of(std::time::Duration::from_secs(10));
/// # let _ = t;
/// ```
#[derive(Clone, Copy, Debug)]
pub struct ContinuousEventTimeTrigger {
    interval: i64,
}

impl ContinuousEventTimeTrigger {
    /// Fires every `interval`.
    pub fn of(interval: std::time::Duration) -> Self {
        Self { interval: crate::time::millis(interval).max(1) }
    }
}

impl<T, W: Window> Trigger<T, W> for ContinuousEventTimeTrigger {
    /// The next periodic firing time.
    type State = Option<Timestamp>;

    fn on_element(
        &mut self,
        _: &T,
        ts: Timestamp,
        w: &W,
        next: &mut Option<Timestamp>,
        ctx: &mut TriggerContext<'_>,
    ) -> TriggerResult {
        if w.max_timestamp() <= ctx.current_watermark().0 {
            return TriggerResult::Fire;
        }
        ctx.register_event_time_timer(w.max_timestamp());
        if next.is_none() {
            let t = next_fire(ts.saturating_sub(ts.rem_euclid(self.interval)), self.interval, w);
            ctx.register_event_time_timer(t);
            *next = Some(t);
        }
        TriggerResult::Continue
    }

    fn on_event_time(
        &mut self,
        time: Timestamp,
        w: &W,
        next: &mut Option<Timestamp>,
        ctx: &mut TriggerContext<'_>,
    ) -> TriggerResult {
        if time == w.max_timestamp() {
            return TriggerResult::Fire;
        }
        if *next == Some(time) {
            // At the end of input every later firing would be due at once:
            // the firing at the window's end (or now) is the last.
            let t = next_fire(time, self.interval, w);
            if ctx.current_watermark() != Watermark::MAX {
                ctx.register_event_time_timer(t);
                *next = Some(t);
            }
            return TriggerResult::Fire;
        }
        TriggerResult::Continue
    }

    fn can_merge(&self) -> bool {
        true
    }

    fn on_merge(
        &mut self,
        w: &W,
        merged: &[Option<Timestamp>],
        next: &mut Option<Timestamp>,
        ctx: &mut TriggerContext<'_>,
    ) {
        *next = merged.iter().flatten().min().copied();
        if let Some(t) = *next {
            ctx.register_event_time_timer(t);
        }
        if w.max_timestamp() > ctx.current_watermark().0 {
            ctx.register_event_time_timer(w.max_timestamp());
        }
    }

    fn clear(&mut self, w: &W, next: &mut Option<Timestamp>, ctx: &mut TriggerContext<'_>) {
        if let Some(t) = next.take() {
            ctx.delete_event_time_timer(t);
        }
        ctx.delete_event_time_timer(w.max_timestamp());
    }
}

/// Fires every `interval` of processing time while the window has elements.
///
/// ```
/// let t = dataflow_core::window::ContinuousProcessingTimeTrigger::of(std::time::Duration::from_secs(1));
/// # let _ = t;
/// ```
#[derive(Clone, Copy, Debug)]
pub struct ContinuousProcessingTimeTrigger {
    interval: i64,
}

impl ContinuousProcessingTimeTrigger {
    /// Fires every `interval`.
    pub fn of(interval: std::time::Duration) -> Self {
        Self { interval: crate::time::millis(interval).max(1) }
    }
}

impl<T, W: Window> Trigger<T, W> for ContinuousProcessingTimeTrigger {
    /// The next periodic firing time.
    type State = Option<Timestamp>;

    fn on_element(
        &mut self,
        _: &T,
        _: Timestamp,
        w: &W,
        next: &mut Option<Timestamp>,
        ctx: &mut TriggerContext<'_>,
    ) -> TriggerResult {
        if next.is_none() {
            let now = ctx.current_processing_time();
            let t = next_fire(now.saturating_sub(now.rem_euclid(self.interval)), self.interval, w);
            ctx.register_processing_time_timer(t);
            *next = Some(t);
        }
        TriggerResult::Continue
    }

    fn on_processing_time(
        &mut self,
        time: Timestamp,
        w: &W,
        next: &mut Option<Timestamp>,
        ctx: &mut TriggerContext<'_>,
    ) -> TriggerResult {
        if *next == Some(time) {
            // The window's last firing is at its end; nothing after it.
            let t = next_fire(time, self.interval, w);
            if t > time {
                ctx.register_processing_time_timer(t);
                *next = Some(t);
            }
            return TriggerResult::Fire;
        }
        TriggerResult::Continue
    }

    fn can_merge(&self) -> bool {
        true
    }

    fn on_merge(
        &mut self,
        _: &W,
        merged: &[Option<Timestamp>],
        next: &mut Option<Timestamp>,
        ctx: &mut TriggerContext<'_>,
    ) {
        *next = merged.iter().flatten().min().copied();
        if let Some(t) = *next {
            ctx.register_processing_time_timer(t);
        }
    }

    fn clear(&mut self, _: &W, next: &mut Option<Timestamp>, ctx: &mut TriggerContext<'_>) {
        if let Some(t) = next.take() {
            ctx.delete_processing_time_timer(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::TimerRequest;
    use crate::window::TimeWindow;

    fn ctx(requests: &mut Vec<TimerRequest>, wm: i64, now: i64) -> TriggerContext<'_> {
        TriggerContext::new(Watermark(wm), now, requests)
    }

    #[test]
    fn continuous_processing_time_fires_at_intervals_and_last_at_the_window_end() {
        let mut t = ContinuousProcessingTimeTrigger::of(std::time::Duration::from_millis(5_000));
        let w = TimeWindow::new(0, 10_000);
        let (mut next, mut req) = (None, Vec::new());
        let r = Trigger::<(), _>::on_element(&mut t, &(), 0, &w, &mut next, &mut ctx(&mut req, 0, 1_000));
        assert_eq!((r, next), (TriggerResult::Continue, Some(5_000)));
        let r = Trigger::<(), _>::on_processing_time(&mut t, 5_000, &w, &mut next, &mut ctx(&mut req, 0, 5_000));
        assert_eq!((r, next), (TriggerResult::Fire, Some(9_999)), "the next firing is capped at the window's end");
        req.clear();
        let r = Trigger::<(), _>::on_processing_time(&mut t, 9_999, &w, &mut next, &mut ctx(&mut req, 0, 9_999));
        assert_eq!(r, TriggerResult::Fire);
        assert!(req.is_empty(), "nothing after the window's end: {req:?}");
    }

    #[test]
    fn continuous_event_time_stops_at_the_window_end() {
        let mut t = ContinuousEventTimeTrigger::of(std::time::Duration::from_millis(5_000));
        let w = TimeWindow::new(0, 10_000);
        let (mut next, mut req) = (None, Vec::new());
        let r = Trigger::<(), _>::on_element(&mut t, &(), 1_000, &w, &mut next, &mut ctx(&mut req, 0, 0));
        assert_eq!((r, next), (TriggerResult::Continue, Some(5_000)));
        let r = Trigger::<(), _>::on_event_time(&mut t, 5_000, &w, &mut next, &mut ctx(&mut req, 5_000, 0));
        assert_eq!((r, next), (TriggerResult::Fire, Some(9_999)));
        req.clear();
        let r = Trigger::<(), _>::on_event_time(&mut t, 9_999, &w, &mut next, &mut ctx(&mut req, 9_999, 0));
        assert_eq!(r, TriggerResult::Fire);
        assert!(req.is_empty(), "{req:?}");
        // At the end of input a window without end stops re-registering.
        let g = crate::window::GlobalWindow;
        let mut next = Some(5_000);
        let r = Trigger::<(), _>::on_event_time(&mut t, 5_000, &g, &mut next, &mut ctx(&mut req, i64::MAX, 0));
        assert_eq!(r, TriggerResult::Fire);
        assert!(req.is_empty(), "{req:?}");
    }
}
