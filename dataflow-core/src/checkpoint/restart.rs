//! Restart strategies: whether, and when, a failed job is restarted.
//!
//! When a task fails, the job cancels all tasks and asks its
//! [`RestartTracker`] what to do: restart from the latest complete
//! checkpoint once the job's [`Clock`] reaches a time, or give up and fail
//! the job. The strategies follow Flink's: [`RestartStrategy::NoRestart`],
//! fixed delay, exponential delay and failure rate. The tracker only does
//! arithmetic on the timestamps it is given, so tests drive it with a
//! [`ManualClock`](crate::time::ManualClock) and never sleep; the runtime
//! waits with [`wait_to_restart`].
//!
//! A failure reported before the pending restart time (`now` earlier than
//! the last [`RestartDecision::RestartAt`]) belongs to the failure already
//! being handled (another task of the same attempt failing while the job is
//! cancelled): it gets the same decision and counts for nothing, as in
//! Flink's exponential-delay strategy. Once a tracker gives up, it always
//! gives up.

use crate::time::{Clock, Timestamp, millis};
use std::collections::VecDeque;
use std::time::Duration;

/// How a job is restarted after a failure. A count of `u32::MAX` means
/// unlimited wherever a count bounds restarts.
///
/// ```
/// use dataflow_core::checkpoint::restart::{RestartDecision, RestartStrategy};
/// use std::time::Duration;
/// let mut t = RestartStrategy::fixed_delay(1, Duration::from_secs(1)).tracker();
/// assert_eq!(t.on_failure(0), RestartDecision::RestartAt(1_000));
/// assert_eq!(t.on_failure(5_000), RestartDecision::GiveUp { attempts: 1 });
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RestartStrategy {
    /// The first failure fails the job.
    NoRestart,
    /// Restart `delay` after each failure, at most `attempts` times in the
    /// job's life (never reset); the failure after the last one fails the
    /// job. `u32::MAX` is unlimited, `0` never restarts.
    FixedDelay {
        /// Restarts allowed.
        attempts: u32,
        /// Time from a failure to its restart.
        delay: Duration,
    },
    /// Restart after `initial`, then `initial * multiplier`, `initial *
    /// multiplier²`, ... capped at `max` (and never below `initial`).
    /// No jitter, so restart times are deterministic.
    ExponentialBackoff {
        /// Delay of the first restart (and the first after a reset).
        initial: Duration,
        /// Longest delay.
        max: Duration,
        /// Growth of the delay per restart.
        multiplier: f64,
        /// A run at least this long without failure (from the restart, or
        /// from [`RestartTracker::on_running`] if called) resets the delay
        /// to `initial` and the attempt count to 0 (Flink's
        /// reset-backoff-threshold).
        reset_after: Duration,
        /// Restarts allowed between resets; the failure after the last one
        /// fails the job (Flink's attempts-before-reset-backoff).
        /// `u32::MAX` is unlimited, `0` never restarts.
        max_attempts: u32,
    },
    /// Restart `delay` after each failure unless more than `max_failures`
    /// failures, the current one included, happened within the last
    /// `interval` (at times `t` with `now - interval <= t <= now`): then
    /// fail the job. With `max_failures = 3` and a one-minute interval, a
    /// fourth failure within a minute of the first fails the job. `0` never
    /// restarts.
    FailureRate {
        /// Failures tolerated within any `interval`.
        max_failures: u32,
        /// The sliding window failures are counted in.
        interval: Duration,
        /// Time from a failure to its restart.
        delay: Duration,
    },
}

impl Default for RestartStrategy {
    /// Flink's classic default for a checkpointed job: fixed delay of one
    /// second, unlimited attempts (Flink 1.19+ defaults to exponential delay
    /// instead).
    ///
    /// ```
    /// use dataflow_core::checkpoint::restart::RestartStrategy;
    /// let d = RestartStrategy::default();
    /// assert_eq!(d, RestartStrategy::fixed_delay(u32::MAX, std::time::Duration::from_secs(1)));
    /// ```
    fn default() -> Self {
        Self::fixed_delay(u32::MAX, Duration::from_secs(1))
    }
}

impl RestartStrategy {
    /// At most `attempts` restarts (`u32::MAX`: unlimited), each `delay`
    /// after its failure.
    ///
    /// ```
    /// use dataflow_core::checkpoint::restart::RestartStrategy;
    /// let s = RestartStrategy::fixed_delay(3, std::time::Duration::from_millis(10));
    /// assert!(matches!(s, RestartStrategy::FixedDelay { attempts: 3, .. }));
    /// ```
    pub fn fixed_delay(attempts: u32, delay: Duration) -> Self {
        Self::FixedDelay { attempts, delay }
    }

    /// Exponential delay from `initial` up to `max`, doubling per restart,
    /// reset after an hour without failure, unlimited attempts.
    ///
    /// ```
    /// use dataflow_core::checkpoint::restart::RestartStrategy;
    /// use std::time::Duration;
    /// let s = RestartStrategy::exponential_backoff(Duration::from_secs(1), Duration::from_secs(60));
    /// let RestartStrategy::ExponentialBackoff { multiplier, reset_after, max_attempts, .. } = s else {
    ///     unreachable!()
    /// };
    /// assert_eq!((multiplier, reset_after, max_attempts), (2.0, Duration::from_secs(3600), u32::MAX));
    /// ```
    pub fn exponential_backoff(initial: Duration, max: Duration) -> Self {
        Self::ExponentialBackoff {
            initial,
            max,
            multiplier: 2.0,
            reset_after: Duration::from_secs(3600),
            max_attempts: u32::MAX,
        }
    }

    /// Restart `delay` after a failure unless more than `max_failures`
    /// failures fall within `interval`.
    ///
    /// ```
    /// use dataflow_core::checkpoint::restart::RestartStrategy;
    /// use std::time::Duration;
    /// let s = RestartStrategy::failure_rate(2, Duration::from_secs(10), Duration::ZERO);
    /// assert!(matches!(s, RestartStrategy::FailureRate { max_failures: 2, .. }));
    /// ```
    pub fn failure_rate(max_failures: u32, interval: Duration, delay: Duration) -> Self {
        Self::FailureRate { max_failures, interval, delay }
    }

    /// A fresh tracker for one job under this strategy.
    ///
    /// ```
    /// use dataflow_core::checkpoint::restart::RestartStrategy;
    /// assert_eq!(RestartStrategy::NoRestart.tracker().attempts(), 0);
    /// ```
    pub fn tracker(self) -> RestartTracker {
        RestartTracker::new(self)
    }
}

/// What to do after a failure.
///
/// ```
/// use dataflow_core::checkpoint::restart::{RestartDecision, RestartStrategy};
/// let mut t = RestartStrategy::NoRestart.tracker();
/// assert_eq!(t.on_failure(7), RestartDecision::GiveUp { attempts: 0 });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartDecision {
    /// Restart the job when its clock reaches this time (ms).
    RestartAt(Timestamp),
    /// Fail the job; `attempts` restarts were made before.
    GiveUp {
        /// Restarts granted over the job's life.
        attempts: u32,
    },
}

/// Applies a [`RestartStrategy`] to the failures of one job.
///
/// ```
/// use dataflow_core::checkpoint::restart::{RestartDecision, RestartTracker, RestartStrategy};
/// use std::time::Duration;
/// let mut t = RestartTracker::new(RestartStrategy::fixed_delay(2, Duration::from_millis(100)));
/// assert_eq!(t.on_failure(1_000), RestartDecision::RestartAt(1_100));
/// assert_eq!(t.attempts(), 1);
/// ```
#[derive(Clone, Debug)]
pub struct RestartTracker {
    strategy: RestartStrategy,
    /// Restarts granted over the job's life.
    attempts: u32,
    /// Restarts since the last backoff reset (exponential backoff).
    streak: u32,
    /// The last decision, repeated for failures merged into it.
    last: Option<RestartDecision>,
    /// When the current run started (exponential backoff).
    running_since: Option<Timestamp>,
    /// Recent failure times, oldest first (failure rate).
    failures: VecDeque<Timestamp>,
}

impl RestartTracker {
    /// A tracker that has seen no failure.
    ///
    /// ```
    /// use dataflow_core::checkpoint::restart::{RestartTracker, RestartStrategy};
    /// assert_eq!(RestartTracker::new(RestartStrategy::default()).attempts(), 0);
    /// ```
    pub fn new(strategy: RestartStrategy) -> Self {
        Self { strategy, attempts: 0, streak: 0, last: None, running_since: None, failures: VecDeque::new() }
    }

    /// Restarts granted so far (failures merged into a pending restart
    /// not counted).
    ///
    /// ```
    /// use dataflow_core::checkpoint::restart::RestartStrategy;
    /// let mut t = RestartStrategy::default().tracker();
    /// t.on_failure(0);
    /// t.on_failure(500); // before the restart at 1 000: the same failure
    /// assert_eq!(t.attempts(), 1);
    /// ```
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Tells the tracker the job is running again at `now`, e.g. once
    /// restored; exponential backoff measures the healthy run from here
    /// instead of from the restart time. Optional.
    ///
    /// ```
    /// use dataflow_core::checkpoint::restart::{RestartDecision, RestartStrategy};
    /// use std::time::Duration;
    /// let mut t = RestartStrategy::exponential_backoff(Duration::from_secs(1), Duration::from_secs(60)).tracker();
    /// const HOUR: i64 = 3_600_000; // the default `reset_after`
    /// assert_eq!(t.on_failure(0), RestartDecision::RestartAt(1_000));
    /// t.on_running(HOUR); // restoring took an hour: not a healthy run
    /// assert_eq!(t.on_failure(HOUR + 500), RestartDecision::RestartAt(HOUR + 2_500));
    /// ```
    pub fn on_running(&mut self, now: Timestamp) {
        self.running_since = Some(now);
    }

    /// Records a failure at `now` (ms on the job's clock) and decides.
    ///
    /// ```
    /// use dataflow_core::checkpoint::restart::{RestartDecision, RestartStrategy};
    /// use std::time::Duration;
    /// let mut t = RestartStrategy::failure_rate(1, Duration::from_secs(10), Duration::ZERO).tracker();
    /// assert_eq!(t.on_failure(0), RestartDecision::RestartAt(0));
    /// assert_eq!(t.on_failure(20_000), RestartDecision::RestartAt(20_000));
    /// assert_eq!(t.on_failure(25_000), RestartDecision::GiveUp { attempts: 2 });
    /// ```
    pub fn on_failure(&mut self, now: Timestamp) -> RestartDecision {
        match self.last {
            Some(d @ RestartDecision::GiveUp { .. }) => return d,
            Some(d @ RestartDecision::RestartAt(at)) if now < at => return d,
            _ => {}
        }
        let delay = match self.strategy {
            RestartStrategy::NoRestart => None,
            RestartStrategy::FixedDelay { attempts, delay } => {
                (attempts == u32::MAX || self.attempts < attempts).then(|| millis(delay))
            }
            RestartStrategy::ExponentialBackoff { initial, max, multiplier, reset_after, max_attempts } => {
                if self.running_since.is_some_and(|s| now.saturating_sub(s) >= millis(reset_after)) {
                    self.streak = 0;
                }
                let (initial, max) = (millis(initial), millis(max));
                let grown = initial as f64 * multiplier.powi(i32::try_from(self.streak).unwrap_or(i32::MAX));
                // `as` saturates (NaN is 0); the bounds below fix any odd multiplier.
                let delay = (grown as i64).min(max).max(initial);
                let allowed = max_attempts == u32::MAX || self.streak < max_attempts;
                self.streak = self.streak.saturating_add(1);
                allowed.then_some(delay)
            }
            RestartStrategy::FailureRate { max_failures, interval, delay } => {
                let interval = millis(interval);
                while self.failures.front().is_some_and(|&t| now.saturating_sub(t) > interval) {
                    self.failures.pop_front();
                }
                self.failures.push_back(now);
                (self.failures.len() <= max_failures as usize).then(|| millis(delay))
            }
        };
        let decision = match delay {
            Some(delay) => {
                self.attempts = self.attempts.saturating_add(1);
                let at = now.saturating_add(delay);
                self.running_since = Some(at);
                RestartDecision::RestartAt(at)
            }
            None => RestartDecision::GiveUp { attempts: self.attempts },
        };
        self.last = Some(decision);
        decision
    }
}

/// Completes once `clock` reaches `at` (at once if it already has): the
/// wait before a restart. On a [`ManualClock`](crate::time::ManualClock)
/// it completes when the clock is moved to `at`, without sleeping.
///
/// ```
/// use dataflow_core::checkpoint::restart::wait_to_restart;
/// use dataflow_core::time::{Clock, ManualClock};
/// use std::sync::Arc;
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let clock = Arc::new(ManualClock::new(0));
/// let c = clock.clone();
/// tokio::spawn(async move { c.advance(1_000) });
/// wait_to_restart(&*clock, 1_000).await;
/// assert_eq!(clock.now_millis(), 1_000);
/// # });
/// ```
pub async fn wait_to_restart(clock: &dyn Clock, at: Timestamp) {
    clock.wait_until(at).await;
}
