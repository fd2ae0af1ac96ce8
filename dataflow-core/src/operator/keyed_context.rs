//! What a [`KeyedFnOperator`](super::KeyedFnOperator) sees besides its
//! record and state: the [`KeyedContext`], an output [`Collector`] (it
//! dereferences to one) that also knows the current key, the watermark and
//! processing time, and registers timers for that key.

use super::Collector;
use crate::time::{TimeDomain, TimerService, Timestamp, Watermark};
use dataflow_state::Key;
use std::hash::Hash;

/// The timers of a keyed operator instance and the times they are
/// measured against.
pub(crate) struct KeyedTimers<K, N> {
    pub(crate) service: TimerService<K, N>,
    pub(crate) watermark: Watermark,
    pub(crate) processing_time: Timestamp,
}

impl<K: Key, N: Clone + Eq + Hash> KeyedTimers<K, N> {
    pub(crate) fn new() -> Self {
        Self { service: TimerService::new(), watermark: Watermark::MIN, processing_time: Timestamp::MIN }
    }
}

/// The output of a keyed operator for the current key, with its timers.
///
/// ```
/// use dataflow_core::operator::KeyedHarness;
/// use dataflow_core::time::Watermark;
///
/// let mut h = KeyedHarness::<char, (), u32>::new();
/// let mut ctx = h.context(&'k');
/// ctx.collect_value(1, Some(10)); // a Collector's methods
/// ctx.register_event_time_timer(99);
/// assert_eq!(ctx.key(), &'k');
/// assert_eq!(ctx.current_watermark(), Watermark::MIN);
/// assert_eq!(h.output(), [1]);
/// ```
pub struct KeyedContext<'a, K, N, Out> {
    key: &'a K,
    out: &'a mut Collector<Out>,
    timers: &'a mut KeyedTimers<K, N>,
}

impl<'a, K: Key, N: Clone + Eq + Hash, Out> KeyedContext<'a, K, N, Out> {
    pub(crate) fn new(key: &'a K, out: &'a mut Collector<Out>, timers: &'a mut KeyedTimers<K, N>) -> Self {
        Self { key, out, timers }
    }

    /// The key of the record (or timer) being processed.
    pub fn key(&self) -> &K {
        self.key
    }

    /// The operator's current watermark.
    pub fn current_watermark(&self) -> Watermark {
        self.timers.watermark
    }

    /// The current processing time (read from the job's clock once per
    /// batch or timer round).
    pub fn current_processing_time(&self) -> Timestamp {
        self.timers.processing_time
    }

    /// Registers a timer for the current key in `namespace`; the operator's
    /// `on_timer` is called when the watermark (event time) or the clock
    /// (processing time) reaches `timestamp`. Registering the same timer
    /// again keeps one.
    pub fn register_timer(&mut self, domain: TimeDomain, namespace: N, timestamp: Timestamp) {
        self.timers.service.register(domain, self.key.clone(), namespace, timestamp);
    }

    /// Deletes a timer of the current key, if it is registered.
    pub fn delete_timer(&mut self, domain: TimeDomain, namespace: N, timestamp: Timestamp) {
        self.timers.service.delete(domain, self.key.clone(), namespace, timestamp);
    }
}

/// Runs a keyed operator's callbacks outside a job, for unit tests: lends
/// [`KeyedContext`]s and keeps what they emit and the timers they register.
///
/// ```
/// use dataflow_core::operator::KeyedHarness;
/// use dataflow_core::time::TimeDomain;
/// let mut h = KeyedHarness::<u8, (), ()>::new();
/// h.context(&1).register_event_time_timer(5);
/// assert_eq!(h.timers().next(TimeDomain::EventTime), Some(5));
/// ```
pub struct KeyedHarness<K, N, Out> {
    out: Collector<Out>,
    timers: KeyedTimers<K, N>,
}

impl<K: Key, N: Clone + Eq + Hash, Out> Default for KeyedHarness<K, N, Out> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Key, N: Clone + Eq + Hash, Out> KeyedHarness<K, N, Out> {
    /// Nothing emitted, no timers, at `Watermark::MIN`.
    pub fn new() -> Self {
        Self { out: Collector::new(), timers: KeyedTimers::new() }
    }

    /// A context for `key`.
    pub fn context<'a>(&'a mut self, key: &'a K) -> KeyedContext<'a, K, N, Out> {
        KeyedContext::new(key, &mut self.out, &mut self.timers)
    }

    /// Sets the watermark and processing time contexts report.
    pub fn set_times(&mut self, watermark: Watermark, processing_time: Timestamp) {
        self.timers.watermark = watermark;
        self.timers.processing_time = processing_time;
    }

    /// The registered timers.
    pub fn timers(&mut self) -> &mut TimerService<K, N> {
        &mut self.timers.service
    }

    /// Takes the values emitted so far.
    pub fn output(&mut self) -> Vec<Out> {
        self.out.batch.drain_values().collect()
    }
}

impl<'a, K: Key, Out> KeyedContext<'a, K, (), Out> {
    /// Registers an event-time timer for the current key.
    pub fn register_event_time_timer(&mut self, timestamp: Timestamp) {
        self.register_timer(TimeDomain::EventTime, (), timestamp);
    }

    /// Registers a processing-time timer for the current key.
    pub fn register_processing_time_timer(&mut self, timestamp: Timestamp) {
        self.register_timer(TimeDomain::ProcessingTime, (), timestamp);
    }

    /// Deletes an event-time timer of the current key.
    pub fn delete_event_time_timer(&mut self, timestamp: Timestamp) {
        self.delete_timer(TimeDomain::EventTime, (), timestamp);
    }

    /// Deletes a processing-time timer of the current key.
    pub fn delete_processing_time_timer(&mut self, timestamp: Timestamp) {
        self.delete_timer(TimeDomain::ProcessingTime, (), timestamp);
    }
}

impl<K, N, Out> std::ops::Deref for KeyedContext<'_, K, N, Out> {
    type Target = Collector<Out>;

    fn deref(&self) -> &Collector<Out> {
        self.out
    }
}

impl<K, N, Out> std::ops::DerefMut for KeyedContext<'_, K, N, Out> {
    fn deref_mut(&mut self) -> &mut Collector<Out> {
        self.out
    }
}
