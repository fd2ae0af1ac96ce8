//! Clocks: where processing time comes from.
//!
//! The environment holds an `Arc<dyn Clock>`; tests swap in a
//! [`ManualClock`] and advance it, so nothing time-dependent needs a sleep.

use super::Timestamp;
use std::future::Future;
use std::pin::Pin;

/// A future that completes when a clock reaches a time.
pub type Wakeup = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A source of processing time.
///
/// ```
/// use dataflow_core::time::{Clock, SystemClock};
/// assert!(SystemClock.now_millis() > 1_600_000_000_000);
/// ```
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_millis(&self) -> Timestamp;

    /// Completes once `now_millis() >= deadline`. Tasks wait on it for
    /// processing-time timers and idleness. The default sleeps on the
    /// tokio timer for the difference, which suits clocks that follow the
    /// wall clock; a clock that moves otherwise overrides it.
    fn wait_until(&self, deadline: Timestamp) -> Wakeup {
        let wait = deadline.saturating_sub(self.now_millis()).max(0) as u64;
        Box::pin(tokio::time::sleep(std::time::Duration::from_millis(wait)))
    }
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

/// A clock that only moves when told to: for deterministic tests. Tasks
/// waiting for a processing time wake up when the clock is moved past it.
///
/// ```
/// use dataflow_core::time::{Clock, ManualClock};
/// let c = ManualClock::new(1_000);
/// c.advance(500);
/// assert_eq!(c.now_millis(), 1_500);
/// c.set(10);
/// assert_eq!(c.now_millis(), 10);
/// ```
#[derive(Debug)]
pub struct ManualClock {
    now: tokio::sync::watch::Sender<Timestamp>,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new(0)
    }
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: Timestamp) -> Self {
        Self { now: tokio::sync::watch::Sender::new(start) }
    }

    /// Moves the clock forward by `millis`.
    pub fn advance(&self, millis: i64) {
        self.now.send_modify(|t| *t = t.saturating_add(millis));
    }

    /// Sets the clock to `now`.
    pub fn set(&self, now: Timestamp) {
        self.now.send_replace(now);
    }
}

impl Clock for ManualClock {
    fn now_millis(&self) -> Timestamp {
        *self.now.borrow()
    }

    /// ```
    /// use dataflow_core::time::{Clock, ManualClock};
    /// use std::sync::Arc;
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let clock = Arc::new(ManualClock::new(0));
    /// let wake = clock.wait_until(100);
    /// let c = clock.clone();
    /// tokio::spawn(async move { c.advance(100) });
    /// wake.await; // returns once the clock reached 100
    /// assert_eq!(clock.now_millis(), 100);
    /// # });
    /// ```
    fn wait_until(&self, deadline: Timestamp) -> Wakeup {
        let mut rx = self.now.subscribe();
        Box::pin(async move {
            // The clock cannot be dropped while a task holds it, but if it
            // is, nothing will ever move it: wait forever.
            if rx.wait_for(|t| *t >= deadline).await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}
