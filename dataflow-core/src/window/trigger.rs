//! Triggers: when a window's result is emitted. Each window of each key has
//! its own trigger state; triggers set timers through a [`TriggerContext`]
//! and answer with a [`TriggerResult`].

use super::Window;
use crate::time::{TimeDomain, TimerRequest, Timestamp, Watermark};
use dataflow_state::StateValue;

/// What a trigger decides.
///
/// ```
/// use dataflow_core::window::TriggerResult;
/// assert!(TriggerResult::FireAndPurge.fires() && TriggerResult::FireAndPurge.purges());
/// assert!(!TriggerResult::Continue.fires());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TriggerResult {
    /// Nothing happens.
    Continue,
    /// Emit the window's result; keep its contents.
    Fire,
    /// Drop the window's contents without emitting.
    Purge,
    /// Emit the result, then drop the contents.
    FireAndPurge,
}

impl TriggerResult {
    /// Whether the window's result is emitted.
    pub fn fires(self) -> bool {
        matches!(self, TriggerResult::Fire | TriggerResult::FireAndPurge)
    }

    /// Whether the window's contents are dropped.
    pub fn purges(self) -> bool {
        matches!(self, TriggerResult::Purge | TriggerResult::FireAndPurge)
    }
}

/// What a trigger can see and do: the current times, and timers for the
/// window it is called for.
///
/// ```
/// use dataflow_core::window::TriggerContext;
/// let mut requests = Vec::new();
/// let mut ctx = TriggerContext::new(dataflow_core::time::Watermark(5), 100, &mut requests);
/// ctx.register_event_time_timer(9);
/// assert_eq!(ctx.current_watermark().0, 5);
/// ```
pub struct TriggerContext<'a> {
    watermark: Watermark,
    processing_time: Timestamp,
    requests: &'a mut Vec<TimerRequest>,
}

impl<'a> TriggerContext<'a> {
    /// A context at the given times collecting timer requests into `requests`.
    pub fn new(watermark: Watermark, processing_time: Timestamp, requests: &'a mut Vec<TimerRequest>) -> Self {
        Self { watermark, processing_time, requests }
    }

    /// The operator's watermark.
    pub fn current_watermark(&self) -> Watermark {
        self.watermark
    }

    /// The current processing time.
    pub fn current_processing_time(&self) -> Timestamp {
        self.processing_time
    }

    fn request(&mut self, domain: TimeDomain, timestamp: Timestamp, delete: bool) {
        self.requests.push(TimerRequest { domain, timestamp, delete });
    }

    /// Calls the trigger's `on_event_time` when the watermark reaches `t`.
    pub fn register_event_time_timer(&mut self, t: Timestamp) {
        self.request(TimeDomain::EventTime, t, false);
    }

    /// Calls the trigger's `on_processing_time` when the clock reaches `t`.
    pub fn register_processing_time_timer(&mut self, t: Timestamp) {
        self.request(TimeDomain::ProcessingTime, t, false);
    }

    /// Deletes an event-time timer of this window.
    pub fn delete_event_time_timer(&mut self, t: Timestamp) {
        self.request(TimeDomain::EventTime, t, true);
    }

    /// Deletes a processing-time timer of this window.
    pub fn delete_processing_time_timer(&mut self, t: Timestamp) {
        self.request(TimeDomain::ProcessingTime, t, true);
    }
}

/// Decides when a window fires (Flink's `Trigger`). `State` is kept per key
/// and window.
///
/// ```
/// use dataflow_core::window::{CountTrigger, GlobalWindow, Trigger, TriggerContext, TriggerResult};
/// let mut t = CountTrigger::of(2);
/// let (mut state, mut requests) = (0, Vec::new());
/// let mut ctx = TriggerContext::new(dataflow_core::time::Watermark::MIN, 0, &mut requests);
/// let mut on = |t: &mut CountTrigger, s: &mut u64| Trigger::<u8, GlobalWindow>::on_element(t, &1, 0, &GlobalWindow, s, &mut ctx);
/// assert_eq!(on(&mut t, &mut state), TriggerResult::Continue);
/// assert_eq!(on(&mut t, &mut state), TriggerResult::Fire);
/// ```
pub trait Trigger<T, W: Window>: Clone + Send + Sync + 'static {
    /// What the trigger keeps per key and window.
    type State: StateValue;

    /// An element was added to `window`.
    fn on_element(
        &mut self,
        value: &T,
        timestamp: Timestamp,
        window: &W,
        state: &mut Self::State,
        ctx: &mut TriggerContext<'_>,
    ) -> TriggerResult;

    /// An event-time timer of `window` fired at `time`.
    fn on_event_time(
        &mut self,
        _time: Timestamp,
        _window: &W,
        _state: &mut Self::State,
        _ctx: &mut TriggerContext<'_>,
    ) -> TriggerResult {
        TriggerResult::Continue
    }

    /// A processing-time timer of `window` fired at `time`.
    fn on_processing_time(
        &mut self,
        _time: Timestamp,
        _window: &W,
        _state: &mut Self::State,
        _ctx: &mut TriggerContext<'_>,
    ) -> TriggerResult {
        TriggerResult::Continue
    }

    /// Whether the trigger supports merging windows (sessions).
    fn can_merge(&self) -> bool {
        false
    }

    /// Windows were merged into `window`: combine their `merged` states
    /// into `state` (a fresh state of `window`) and set its timers.
    fn on_merge(
        &mut self,
        _window: &W,
        _merged: &[Self::State],
        _state: &mut Self::State,
        _ctx: &mut TriggerContext<'_>,
    ) {
    }

    /// The window is dropped: delete its timers.
    fn clear(&mut self, _window: &W, _state: &mut Self::State, _ctx: &mut TriggerContext<'_>) {}

    /// The domain in which this trigger is the plain end-of-window trigger
    /// ([`EventTimeTrigger`] or [`ProcessingTimeTrigger`]), if it is one:
    /// with it, and windows that do not merge, the window operator keeps
    /// one timer per window instead of one per key and window (see
    /// `docs/time.md`, "Windows"). Any other trigger returns `None` (the
    /// default).
    ///
    /// ```
    /// use dataflow_core::time::TimeDomain;
    /// use dataflow_core::window::{CountTrigger, EventTimeTrigger, GlobalWindow, TimeWindow, Trigger};
    /// assert_eq!(Trigger::<u8, TimeWindow>::end_of_window(&EventTimeTrigger), Some(TimeDomain::EventTime));
    /// assert_eq!(Trigger::<u8, GlobalWindow>::end_of_window(&CountTrigger::of(3)), None);
    /// ```
    fn end_of_window(&self) -> Option<TimeDomain> {
        None
    }
}

/// Fires once the watermark passes the window's end, and again for every
/// late element within the allowed lateness. The default of event-time
/// windows.
///
/// ```
/// let t = dataflow_core::window::EventTimeTrigger::default();
/// # let _ = t;
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct EventTimeTrigger;

impl<T, W: Window> Trigger<T, W> for EventTimeTrigger {
    /// Whether the window's timer is registered.
    type State = bool;

    #[inline]
    fn on_element(
        &mut self,
        _: &T,
        _: Timestamp,
        w: &W,
        set: &mut bool,
        ctx: &mut TriggerContext<'_>,
    ) -> TriggerResult {
        if w.max_timestamp() <= ctx.current_watermark().0 {
            return TriggerResult::Fire;
        }
        if !*set {
            ctx.register_event_time_timer(w.max_timestamp());
            *set = true;
        }
        TriggerResult::Continue
    }

    fn on_event_time(&mut self, time: Timestamp, w: &W, _: &mut bool, _: &mut TriggerContext<'_>) -> TriggerResult {
        if time == w.max_timestamp() { TriggerResult::Fire } else { TriggerResult::Continue }
    }

    fn end_of_window(&self) -> Option<TimeDomain> {
        Some(TimeDomain::EventTime)
    }

    fn can_merge(&self) -> bool {
        true
    }

    fn on_merge(&mut self, w: &W, _: &[bool], set: &mut bool, ctx: &mut TriggerContext<'_>) {
        if w.max_timestamp() > ctx.current_watermark().0 {
            ctx.register_event_time_timer(w.max_timestamp());
            *set = true;
        }
    }

    fn clear(&mut self, w: &W, set: &mut bool, ctx: &mut TriggerContext<'_>) {
        ctx.delete_event_time_timer(w.max_timestamp());
        *set = false;
    }
}

/// Fires when the clock passes the window's end. The default of
/// processing-time windows.
///
/// ```
/// let t = dataflow_core::window::ProcessingTimeTrigger::default();
/// # let _ = t;
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessingTimeTrigger;

impl<T, W: Window> Trigger<T, W> for ProcessingTimeTrigger {
    /// Whether the window's timer is registered.
    type State = bool;

    fn on_element(
        &mut self,
        _: &T,
        _: Timestamp,
        w: &W,
        set: &mut bool,
        ctx: &mut TriggerContext<'_>,
    ) -> TriggerResult {
        if !*set {
            ctx.register_processing_time_timer(w.max_timestamp());
            *set = true;
        }
        TriggerResult::Continue
    }

    fn on_processing_time(&mut self, _: Timestamp, _: &W, _: &mut bool, _: &mut TriggerContext<'_>) -> TriggerResult {
        TriggerResult::Fire
    }

    fn end_of_window(&self) -> Option<TimeDomain> {
        Some(TimeDomain::ProcessingTime)
    }

    fn can_merge(&self) -> bool {
        true
    }

    fn on_merge(&mut self, w: &W, _: &[bool], set: &mut bool, ctx: &mut TriggerContext<'_>) {
        ctx.register_processing_time_timer(w.max_timestamp());
        *set = true;
    }

    fn clear(&mut self, w: &W, set: &mut bool, ctx: &mut TriggerContext<'_>) {
        ctx.delete_processing_time_timer(w.max_timestamp());
        *set = false;
    }
}

/// Never fires: the default of [`GlobalWindows`](super::GlobalWindows).
///
/// ```
/// let t = dataflow_core::window::NeverTrigger;
/// # let _ = t;
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct NeverTrigger;

impl<T, W: Window> Trigger<T, W> for NeverTrigger {
    type State = ();

    fn on_element(&mut self, _: &T, _: Timestamp, _: &W, _: &mut (), _: &mut TriggerContext<'_>) -> TriggerResult {
        TriggerResult::Continue
    }
}

/// Fires every `n` elements of a window.
///
/// ```
/// let t = dataflow_core::window::CountTrigger::of(100);
/// # let _ = t;
/// ```
#[derive(Clone, Copy, Debug)]
pub struct CountTrigger {
    n: u64,
}

impl CountTrigger {
    /// Fires at every `n`-th element (`n` of at least 1).
    pub fn of(n: u64) -> Self {
        Self { n: n.max(1) }
    }
}

impl<T, W: Window> Trigger<T, W> for CountTrigger {
    /// Elements since the last firing.
    type State = u64;

    fn on_element(&mut self, _: &T, _: Timestamp, _: &W, count: &mut u64, _: &mut TriggerContext<'_>) -> TriggerResult {
        *count += 1;
        if *count >= self.n {
            *count = 0;
            TriggerResult::Fire
        } else {
            TriggerResult::Continue
        }
    }

    fn can_merge(&self) -> bool {
        true
    }

    fn on_merge(&mut self, _: &W, merged: &[u64], count: &mut u64, _: &mut TriggerContext<'_>) {
        *count = merged.iter().sum();
    }

    fn clear(&mut self, _: &W, count: &mut u64, _: &mut TriggerContext<'_>) {
        *count = 0;
    }
}

/// Turns every firing of the trigger it wraps into fire-and-purge, so each
/// result covers only the elements since the last one.
///
/// ```
/// use dataflow_core::window::{CountTrigger, PurgingTrigger};
/// let t = PurgingTrigger::of(CountTrigger::of(10));
/// # let _ = t;
/// ```
#[derive(Clone, Copy, Debug)]
pub struct PurgingTrigger<Tr> {
    inner: Tr,
}

impl<Tr> PurgingTrigger<Tr> {
    /// Wraps `inner`.
    pub fn of(inner: Tr) -> Self {
        Self { inner }
    }
}

fn purging(r: TriggerResult) -> TriggerResult {
    if r.fires() { TriggerResult::FireAndPurge } else { r }
}

impl<T, W: Window, Tr: Trigger<T, W>> Trigger<T, W> for PurgingTrigger<Tr> {
    type State = Tr::State;

    fn on_element(
        &mut self,
        v: &T,
        ts: Timestamp,
        w: &W,
        s: &mut Tr::State,
        ctx: &mut TriggerContext<'_>,
    ) -> TriggerResult {
        purging(self.inner.on_element(v, ts, w, s, ctx))
    }

    fn on_event_time(&mut self, t: Timestamp, w: &W, s: &mut Tr::State, ctx: &mut TriggerContext<'_>) -> TriggerResult {
        purging(self.inner.on_event_time(t, w, s, ctx))
    }

    fn on_processing_time(
        &mut self,
        t: Timestamp,
        w: &W,
        s: &mut Tr::State,
        ctx: &mut TriggerContext<'_>,
    ) -> TriggerResult {
        purging(self.inner.on_processing_time(t, w, s, ctx))
    }

    fn can_merge(&self) -> bool {
        self.inner.can_merge()
    }

    fn on_merge(&mut self, w: &W, merged: &[Tr::State], s: &mut Tr::State, ctx: &mut TriggerContext<'_>) {
        self.inner.on_merge(w, merged, s, ctx)
    }

    fn clear(&mut self, w: &W, s: &mut Tr::State, ctx: &mut TriggerContext<'_>) {
        self.inner.clear(w, s, ctx)
    }
}
