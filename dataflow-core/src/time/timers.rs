//! Timers: callbacks a keyed operator asks for at an event time (fired
//! when the watermark reaches it) or a processing time (fired when the
//! job's clock reaches it), per key and namespace.
//!
//! A [`TimerService`] keeps them in timestamp order (those of one time in
//! the order registered, unless a deletion moved one). Registering the same
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
use indexmap::IndexSet;
use rustc_hash::{FxBuildHasher, FxHashSet};
use std::collections::BTreeMap;
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

/// The timers of one time, in registration order (a deletion moves the
/// time's last timer into the gap): a set, so a timer registered twice is
/// kept once, that can also be read by position, so firing walks it
/// without a hash lookup per timer.
type Bucket<K, N> = IndexSet<(K, N), FxBuildHasher>;

/// A bucket being fired: taken out of the queue when its time became due.
struct Firing<K, N> {
    time: Timestamp,
    timers: Bucket<K, N>,
    /// The position of the next timer to fire; those before it fired.
    next: usize,
    /// Positions at or after `next` deleted since the bucket was taken.
    deleted: FxHashSet<usize>,
}

impl<K: Eq + Hash, N: Eq + Hash> Firing<K, N> {
    /// The position of `timer` if it is still to fire.
    fn pending(&self, timer: &(K, N)) -> Option<usize> {
        self.timers.get_index_of(timer).filter(|&i| i >= self.next && !self.deleted.contains(&i))
    }
}

/// The timers of one domain: a bucket per time, in time order. Each
/// registration costs one set insert; firing a bucket reads it in order
/// and drops it whole, so a timer that fires costs no lookup at all.
struct TimerQueue<K, N> {
    by_time: BTreeMap<Timestamp, Bucket<K, N>>,
    /// Buckets being fired, the earliest last: a bucket becomes due while
    /// another fires only if a timer was registered at a time already
    /// passed, and it fires first.
    firing: Vec<Firing<K, N>>,
    /// The buckets' timers not yet fired or deleted.
    len: usize,
    /// An emptied bucket kept for the next time (its capacity reused).
    spare: Option<Bucket<K, N>>,
}

impl<K: Clone + Eq + Hash, N: Clone + Eq + Hash> TimerQueue<K, N> {
    fn new() -> Self {
        Self { by_time: BTreeMap::new(), firing: Vec::new(), len: 0, spare: None }
    }

    fn register(&mut self, key: K, ns: N, ts: Timestamp) -> bool {
        let timer = (key, ns);
        if let Some(f) = self.firing.iter_mut().find(|f| f.time == ts)
            && let Some(i) = f.timers.get_index_of(&timer).filter(|&i| i >= f.next)
        {
            // Still to fire in the bucket under way (again, if deleted).
            let revived = f.deleted.remove(&i);
            self.len += usize::from(revived);
            return revived;
        }
        let spare = &mut self.spare;
        let new = self.by_time.entry(ts).or_insert_with(|| spare.take().unwrap_or_default()).insert(timer);
        self.len += usize::from(new);
        new
    }

    fn delete(&mut self, key: K, ns: N, ts: Timestamp) -> bool {
        let timer = (key, ns);
        if let Some(f) = self.firing.iter_mut().find(|f| f.time == ts)
            && let Some(i) = f.pending(&timer)
        {
            f.deleted.insert(i);
            self.len -= 1;
            return true;
        }
        let Some(bucket) = self.by_time.get_mut(&ts) else { return false };
        if !bucket.swap_remove(&timer) {
            return false;
        }
        self.len -= 1;
        if bucket.is_empty() {
            self.by_time.remove(&ts);
        }
        true
    }

    /// Drops the buckets under way that have nothing left to fire.
    fn drop_fired(&mut self) {
        while let Some(f) = self.firing.last() {
            if (f.next..f.timers.len()).any(|i| !f.deleted.contains(&i)) {
                return;
            }
            let mut done = self.firing.pop().expect("a bucket").timers;
            done.clear();
            self.spare = Some(done);
        }
    }

    fn next(&mut self) -> Option<Timestamp> {
        self.drop_fired();
        let firing = self.firing.last().map(|f| f.time);
        let queued = self.by_time.first_key_value().map(|(t, _)| *t);
        firing.into_iter().chain(queued).min()
    }

    fn pop_due(&mut self, now: Timestamp) -> Option<(Timestamp, K, N)> {
        loop {
            let under_way = self.firing.last().map(|f| f.time);
            if let Some((&t, _)) = self.by_time.first_key_value()
                && t <= now
                && under_way.is_none_or(|u| t < u)
            {
                let (time, timers) = self.by_time.pop_first().expect("a bucket");
                self.firing.push(Firing { time, timers, next: 0, deleted: FxHashSet::default() });
                continue;
            }
            let f = self.firing.last_mut()?;
            if f.time > now {
                return None;
            }
            while let Some((k, n)) = f.timers.get_index(f.next) {
                let i = f.next;
                f.next += 1;
                if f.deleted.is_empty() || !f.deleted.remove(&i) {
                    self.len -= 1;
                    return Some((f.time, k.clone(), n.clone()));
                }
            }
            self.drop_fired();
        }
    }

    /// Every timer not yet fired or deleted.
    fn iter(&self) -> impl Iterator<Item = (Timestamp, &K, &N)> {
        let queued = self.by_time.iter().flat_map(|(t, b)| b.iter().map(move |(k, n)| (*t, k, n)));
        let under_way = self.firing.iter().flat_map(|f| {
            f.timers
                .iter()
                .enumerate()
                .skip(f.next)
                .filter(|(i, _)| !f.deleted.contains(i))
                .map(move |(_, (k, n))| (f.time, k, n))
        });
        queued.chain(under_way)
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
            .field("event_timers", &self.event.len)
            .field("processing_timers", &self.processing.len)
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
            TimeDomain::EventTime => self.event.len,
            TimeDomain::ProcessingTime => self.processing.len,
        }
    }

    /// Whether no timer is registered.
    pub fn is_empty(&self) -> bool {
        self.event.len == 0 && self.processing.len == 0
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
        fn timers<K: Clone + Eq + Hash, N: Clone + Eq + Hash>(
            q: &TimerQueue<K, N>,
            domain: TimeDomain,
        ) -> impl Iterator<Item = Timer<&K, &N>> {
            q.iter().map(move |(timestamp, key, namespace)| Timer { key, namespace, timestamp, domain })
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
        let queued: usize = t.event.by_time.values().map(|b| b.len()).sum();
        assert_eq!(queued, 1, "entries kept for 1 live timer");
        assert_eq!(t.next(EventTime), Some(60));
    }

    #[test]
    fn changes_while_a_time_fires() {
        let mut t = TimerService::<u8, ()>::new();
        for k in 1..=4 {
            t.register(EventTime, k, (), 10);
        }
        t.register(EventTime, 9, (), 20);
        assert_eq!(t.pop_due(EventTime, 15).map(|x| x.key), Some(1));
        // While time 10 fires: delete one still to fire, register an
        // earlier one (fires next), one at 10 again (fires after the rest
        // of 10), and one that is still to fire (kept once).
        assert!(t.delete(EventTime, 3, (), 10));
        assert!(!t.delete(EventTime, 1, (), 10), "already fired");
        assert!(t.register(EventTime, 5, (), 7));
        assert!(t.register(EventTime, 1, (), 10));
        assert!(!t.register(EventTime, 2, (), 10));
        assert_eq!(t.len(EventTime), 5);
        assert_eq!(t.iter().count(), 5);
        let mut fired = Vec::new();
        while let Some(x) = t.pop_due(EventTime, 15) {
            fired.push((x.timestamp, x.key));
        }
        assert_eq!(fired, [(7, 5), (10, 2), (10, 4), (10, 1)]);
        assert_eq!(t.next(EventTime), Some(20));
        // Deleted while under way, then registered again: fires once.
        t.register(EventTime, 6, (), 20);
        assert_eq!(t.pop_due(EventTime, 20).map(|x| x.key), Some(9));
        assert!(t.delete(EventTime, 6, (), 20));
        assert!(t.register(EventTime, 6, (), 20));
        assert_eq!(t.pop_due(EventTime, 20).map(|x| x.key), Some(6));
        assert!(t.pop_due(EventTime, 20).is_none());
        assert!(t.is_empty());
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
