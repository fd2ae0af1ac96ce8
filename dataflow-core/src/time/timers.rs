//! Timers: callbacks a keyed operator asks for at an event time (fired
//! when the watermark reaches it) or a processing time (fired when the
//! job's clock reaches it), per key and namespace.
//!
//! A [`TimerService`] keeps them in timestamp order. Registering the same
//! (key, namespace, time) twice keeps one timer; deleting removes it; a
//! timer registered while timers fire, at a time already reached, fires in
//! the same round. Windows use the window as the namespace; a plain keyed
//! operator uses `()`. The service belongs to the keyed operator instance,
//! next to its per-key state, and is written into every snapshot of it
//! (`timer_entries`).
//!
//! ```
//! use dataflow_core::time::{TimeDomain, TimerService};
//!
//! let mut timers = TimerService::<&str, ()>::new();
//! timers.register(TimeDomain::EventTime, "a", (), 20);
//! timers.register(TimeDomain::EventTime, "b", (), 10);
//! timers.register(TimeDomain::EventTime, "a", (), 20); // a duplicate
//! let mut fired = Vec::new();
//! while let Some(t) = timers.pop_due(TimeDomain::EventTime, 25) {
//!     fired.push((t.timestamp, t.key));
//! }
//! assert_eq!(fired, [(10, "b"), (20, "a")]);
//! ```

use super::Timestamp;
use rustc_hash::FxHashSet;
use std::collections::{BTreeMap, VecDeque};
use std::hash::Hash;

/// Which clock a timer follows.
///
/// ```
/// assert_ne!(dataflow_core::time::TimeDomain::EventTime, dataflow_core::time::TimeDomain::ProcessingTime);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub enum TimeDomain {
    /// Fires when the operator's watermark reaches the timer's time.
    EventTime,
    /// Fires when the job's clock reaches the timer's time.
    ProcessingTime,
}

/// A timer asked for (or asked to delete) by code that has no direct access
/// to the timer service (a window trigger, an `#[operator]` function's
/// context), for the current key; the operator applies it.
///
/// ```
/// use dataflow_core::time::{TimeDomain, TimerRequest};
/// let r = TimerRequest { domain: TimeDomain::EventTime, timestamp: 9, delete: false };
/// assert!(!r.delete);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerRequest {
    /// Event or processing time.
    pub domain: TimeDomain,
    /// When.
    pub timestamp: Timestamp,
    /// Whether this deletes the timer instead.
    pub delete: bool,
}

/// A timer that fired.
///
/// ```
/// use dataflow_core::time::{TimeDomain, Timer};
/// let t = Timer { key: 7u32, namespace: (), timestamp: 100, domain: TimeDomain::EventTime };
/// assert_eq!(t.timestamp, 100);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timer<K, N> {
    /// The key it was registered for.
    pub key: K,
    /// Its namespace (the window, for window operators).
    pub namespace: N,
    /// The time it was registered for.
    pub timestamp: Timestamp,
    /// Event or processing time.
    pub domain: TimeDomain,
}

/// The timers of one domain, in time order. A timer is live while it is
/// in `live`; the queues may hold stale copies of deleted timers, skipped
/// when they come up, and compacted away when they outnumber live ones.
struct TimerQueue<K, N> {
    by_time: BTreeMap<Timestamp, VecDeque<(K, N)>>,
    live: FxHashSet<(Timestamp, K, N)>,
    stale: usize,
}

impl<K: Clone + Eq + Hash, N: Clone + Eq + Hash> TimerQueue<K, N> {
    fn new() -> Self {
        Self { by_time: BTreeMap::new(), live: FxHashSet::default(), stale: 0 }
    }

    fn register(&mut self, key: K, ns: N, ts: Timestamp) -> bool {
        if !self.live.insert((ts, key.clone(), ns.clone())) {
            return false;
        }
        self.by_time.entry(ts).or_default().push_back((key, ns));
        true
    }

    fn delete(&mut self, key: K, ns: N, ts: Timestamp) -> bool {
        let deleted = self.live.remove(&(ts, key, ns));
        if deleted {
            self.stale += 1;
            if self.stale > self.live.len().max(1024) {
                self.compact();
            }
        }
        deleted
    }

    /// Drops the stale copies of deleted timers.
    fn compact(&mut self) {
        let live = &self.live;
        self.by_time.retain(|ts, q| {
            q.retain(|(k, n)| live.contains(&(*ts, k.clone(), n.clone())));
            !q.is_empty()
        });
        self.stale = 0;
    }

    fn next(&mut self) -> Option<Timestamp> {
        // Drop leading stale entries so the answer is a live timer.
        while let Some(mut first) = self.by_time.first_entry() {
            let ts = *first.key();
            let queue = first.get_mut();
            while let Some((k, n)) = queue.front() {
                if self.live.contains(&(ts, k.clone(), n.clone())) {
                    return Some(ts);
                }
                queue.pop_front();
                self.stale = self.stale.saturating_sub(1);
            }
            first.remove();
        }
        None
    }

    fn pop_due(&mut self, now: Timestamp) -> Option<(Timestamp, K, N)> {
        loop {
            let mut first = self.by_time.first_entry()?;
            let ts = *first.key();
            if ts > now {
                return None;
            }
            match first.get_mut().pop_front() {
                Some((k, n)) => match self.live.take(&(ts, k, n)) {
                    Some(timer) => return Some(timer),
                    None => self.stale = self.stale.saturating_sub(1),
                },
                None => {
                    first.remove();
                }
            }
        }
    }
}

/// The event-time and processing-time timers of a keyed operator instance.
///
/// ```
/// use dataflow_core::time::{TimeDomain, TimerService};
/// let mut timers = TimerService::<u32, ()>::new();
/// timers.register(TimeDomain::ProcessingTime, 1, (), 50);
/// timers.register(TimeDomain::ProcessingTime, 2, (), 40);
/// assert!(timers.delete(TimeDomain::ProcessingTime, 2, (), 40));
/// assert_eq!(timers.next(TimeDomain::ProcessingTime), Some(50));
/// assert!(timers.pop_due(TimeDomain::ProcessingTime, 49).is_none());
/// assert_eq!(timers.pop_due(TimeDomain::ProcessingTime, 50).map(|t| t.key), Some(1));
/// ```
pub struct TimerService<K, N> {
    event: TimerQueue<K, N>,
    processing: TimerQueue<K, N>,
    next_processing: Option<Timestamp>,
}

impl<K: Clone + Eq + Hash, N: Clone + Eq + Hash> Default for TimerService<K, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Clone + Eq + Hash, N: Clone + Eq + Hash> std::fmt::Debug for TimerService<K, N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimerService")
            .field("event_timers", &self.event.live.len())
            .field("processing_timers", &self.processing.live.len())
            .finish()
    }
}

impl<K: Clone + Eq + Hash, N: Clone + Eq + Hash> TimerService<K, N> {
    /// No timers.
    pub fn new() -> Self {
        Self { event: TimerQueue::new(), processing: TimerQueue::new(), next_processing: None }
    }

    fn queue(&mut self, domain: TimeDomain) -> &mut TimerQueue<K, N> {
        match domain {
            TimeDomain::EventTime => &mut self.event,
            TimeDomain::ProcessingTime => &mut self.processing,
        }
    }

    /// Registers a timer; returns false if the same one was already there.
    pub fn register(&mut self, domain: TimeDomain, key: K, namespace: N, timestamp: Timestamp) -> bool {
        let new = self.queue(domain).register(key, namespace, timestamp);
        if domain == TimeDomain::ProcessingTime && new {
            self.next_processing = Some(self.next_processing.map_or(timestamp, |t| t.min(timestamp)));
        }
        new
    }

    /// Deletes a timer; returns whether it was there.
    pub fn delete(&mut self, domain: TimeDomain, key: K, namespace: N, timestamp: Timestamp) -> bool {
        // The cached next processing time may now be early; that only
        // costs a wake-up that finds nothing due.
        self.queue(domain).delete(key, namespace, timestamp)
    }

    /// The time of the earliest timer of `domain`.
    pub fn next(&mut self, domain: TimeDomain) -> Option<Timestamp> {
        self.queue(domain).next()
    }

    /// The earliest processing-time timer, possibly one since deleted
    /// (cheap: for the task's wake-ups).
    pub fn next_processing_time(&self) -> Option<Timestamp> {
        self.next_processing
    }

    /// Removes and returns the earliest timer of `domain` at or before `now`.
    pub fn pop_due(&mut self, domain: TimeDomain, now: Timestamp) -> Option<Timer<K, N>> {
        let popped = self.queue(domain).pop_due(now);
        if domain == TimeDomain::ProcessingTime && popped.is_none() {
            self.next_processing = self.processing.next();
        }
        popped.map(|(timestamp, key, namespace)| Timer { key, namespace, timestamp, domain })
    }

    /// How many timers of `domain` are registered.
    pub fn len(&self, domain: TimeDomain) -> usize {
        match domain {
            TimeDomain::EventTime => self.event.live.len(),
            TimeDomain::ProcessingTime => self.processing.live.len(),
        }
    }

    /// Whether no timer is registered.
    pub fn is_empty(&self) -> bool {
        self.event.live.is_empty() && self.processing.live.is_empty()
    }

    /// Every registered timer, in no particular order.
    ///
    /// ```
    /// use dataflow_core::time::{TimeDomain, TimerService};
    /// let mut t = TimerService::<u8, ()>::new();
    /// t.register(TimeDomain::EventTime, 1, (), 5);
    /// assert_eq!(t.iter().map(|t| t.timestamp).collect::<Vec<_>>(), [5]);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = Timer<&K, &N>> {
        fn timers<K, N>(q: &TimerQueue<K, N>, domain: TimeDomain) -> impl Iterator<Item = Timer<&K, &N>> {
            q.live.iter().map(move |(timestamp, key, namespace)| Timer {
                key,
                namespace,
                timestamp: *timestamp,
                domain,
            })
        }
        timers(&self.event, TimeDomain::EventTime).chain(timers(&self.processing, TimeDomain::ProcessingTime))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TimeDomain::*;

    #[test]
    fn fires_in_time_order_once_and_skips_deleted() {
        let mut t = TimerService::<u8, u8>::new();
        for (k, ts) in [(1, 30), (2, 10), (3, 20), (1, 30), (4, 20)] {
            t.register(EventTime, k, 0, ts);
        }
        assert!(t.delete(EventTime, 3, 0, 20));
        assert!(!t.delete(EventTime, 3, 0, 20));
        // Re-registered after a delete: fires once.
        t.register(EventTime, 4, 0, 20);
        let mut fired = Vec::new();
        while let Some(x) = t.pop_due(EventTime, 100) {
            fired.push((x.timestamp, x.key));
        }
        assert_eq!(fired, [(10, 2), (20, 4), (30, 1)]);
        assert!(t.is_empty());
    }

    #[test]
    fn deleted_timers_do_not_pile_up() {
        let mut t = TimerService::<u32, ()>::new();
        for i in 0..10_000 {
            t.register(EventTime, i, (), 50);
            t.delete(EventTime, i, (), 50);
        }
        t.register(EventTime, 1, (), 60);
        let queued: usize = t.event.by_time.values().map(|q| q.len()).sum();
        assert!(queued <= 1_100, "{queued} entries kept for 1 live timer");
        assert_eq!(t.next(EventTime), Some(60));
    }

    #[test]
    fn namespaces_and_domains_are_separate() {
        let mut t = TimerService::<u8, u8>::new();
        assert!(t.register(EventTime, 1, 0, 5));
        assert!(t.register(EventTime, 1, 1, 5));
        assert!(t.register(ProcessingTime, 1, 0, 5));
        assert_eq!(t.len(EventTime), 2);
        assert_eq!(t.next_processing_time(), Some(5));
        assert!(t.pop_due(ProcessingTime, 5).is_some());
        assert!(t.pop_due(ProcessingTime, 5).is_none());
        assert_eq!(t.next_processing_time(), None);
    }
}
