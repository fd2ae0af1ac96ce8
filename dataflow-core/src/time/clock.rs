//! Clocks: where processing time comes from.
//!
//! The environment holds an `Arc<dyn Clock>`; tests swap in a
//! [`ManualClock`] and advance it, so nothing time-dependent needs a sleep.

use super::Timestamp;
use std::sync::atomic::{AtomicI64, Ordering};

/// A source of processing time.
///
/// ```
/// use dataflow_core::time::{Clock, SystemClock};
/// assert!(SystemClock.now_millis() > 1_600_000_000_000);
/// ```
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_millis(&self) -> Timestamp;
}

/// The wall clock.
///
/// ```
/// use dataflow_core::time::{Clock, SystemClock};
/// let a = SystemClock.now_millis();
/// assert!(SystemClock.now_millis() >= a);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> Timestamp {
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        d.as_millis() as Timestamp
    }
}

/// A clock that only moves when told to: for deterministic tests.
///
/// ```
/// use dataflow_core::time::{Clock, ManualClock};
/// let c = ManualClock::new(1_000);
/// c.advance(500);
/// assert_eq!(c.now_millis(), 1_500);
/// c.set(10);
/// assert_eq!(c.now_millis(), 10);
/// ```
#[derive(Debug, Default)]
pub struct ManualClock {
    now: AtomicI64,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: Timestamp) -> Self {
        Self { now: AtomicI64::new(start) }
    }

    /// Moves the clock forward by `millis`.
    pub fn advance(&self, millis: i64) {
        self.now.fetch_add(millis, Ordering::SeqCst);
    }

    /// Sets the clock to `now`.
    pub fn set(&self, now: Timestamp) {
        self.now.store(now, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_millis(&self) -> Timestamp {
        self.now.load(Ordering::SeqCst)
    }
}
