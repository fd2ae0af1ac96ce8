//! Restart strategies on a manual clock: fixed delay, exponential backoff
//! (growth, cap, reset, attempt limit), failure rate (sliding window), no
//! restart, merged failures, and waiting for the restart time.

use dataflow_core::checkpoint::restart::{RestartDecision, RestartStrategy, RestartTracker, wait_to_restart};
use dataflow_core::time::{Clock, ManualClock, Timestamp};
use std::sync::Arc;
use std::time::Duration;

use RestartDecision::{GiveUp, RestartAt};

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

/// Fails the job at the clock's time; on a restart decision, moves the clock
/// to the restart time (as the runtime would wait for it) and returns the
/// delay.
fn fail_and_restart(t: &mut RestartTracker, clock: &ManualClock) -> Result<i64, u32> {
    let now = clock.now_millis();
    match t.on_failure(now) {
        RestartAt(at) => {
            clock.set(at);
            Ok(at - now)
        }
        GiveUp { attempts } => Err(attempts),
    }
}

/// Runs the job healthily for `millis` on the clock.
fn run_for(clock: &ManualClock, millis: i64) {
    clock.advance(millis);
}

#[test]
fn fixed_delay_restarts_after_the_delay_until_the_attempts_run_out() {
    let clock = ManualClock::new(10_000);
    let mut t = RestartStrategy::fixed_delay(3, ms(500)).tracker();
    assert_eq!(t.on_failure(clock.now_millis()), RestartAt(10_500));
    clock.set(10_500);
    run_for(&clock, 100);
    assert_eq!(t.on_failure(clock.now_millis()), RestartAt(11_100));
    clock.set(11_100);
    // A long healthy run does not give attempts back.
    run_for(&clock, 1_000_000_000);
    assert_eq!(fail_and_restart(&mut t, &clock), Ok(500));
    assert_eq!(t.attempts(), 3);
    run_for(&clock, 1);
    assert_eq!(fail_and_restart(&mut t, &clock), Err(3));
    assert_eq!(t.attempts(), 3);
}

#[test]
fn fixed_delay_with_max_attempts_is_unlimited_and_zero_never_restarts() {
    let clock = ManualClock::new(0);
    let mut t = RestartStrategy::default().tracker();
    for _ in 0..10_000 {
        assert_eq!(fail_and_restart(&mut t, &clock), Ok(1_000));
    }
    assert_eq!(t.attempts(), 10_000);

    let mut t = RestartStrategy::fixed_delay(0, ms(500)).tracker();
    assert_eq!(t.on_failure(0), GiveUp { attempts: 0 });
}

#[test]
fn failures_before_the_pending_restart_are_merged_into_it() {
    let clock = ManualClock::new(0);
    let mut t = RestartStrategy::fixed_delay(1, ms(1_000)).tracker();
    assert_eq!(t.on_failure(0), RestartAt(1_000));
    // Other tasks of the failed attempt report while it is cancelled.
    assert_eq!(t.on_failure(0), RestartAt(1_000));
    assert_eq!(t.on_failure(999), RestartAt(1_000));
    assert_eq!(t.attempts(), 1);
    // At the restart time a failure is a new one.
    clock.set(1_000);
    assert_eq!(fail_and_restart(&mut t, &clock), Err(1));
}

#[test]
fn zero_delay_failures_at_the_same_millisecond_still_count() {
    let mut t = RestartStrategy::fixed_delay(2, Duration::ZERO).tracker();
    assert_eq!(t.on_failure(5), RestartAt(5));
    assert_eq!(t.on_failure(5), RestartAt(5));
    assert_eq!(t.on_failure(5), GiveUp { attempts: 2 });
}

#[test]
fn exponential_backoff_grows_by_the_multiplier_and_caps_at_max() {
    let clock = ManualClock::new(1_000);
    let mut t = RestartStrategy::exponential_backoff(ms(100), ms(1_000)).tracker();
    let delays: Vec<_> = (0..7)
        .map(|_| {
            run_for(&clock, 10);
            fail_and_restart(&mut t, &clock)
        })
        .collect();
    assert_eq!(delays, [100, 200, 400, 800, 1_000, 1_000, 1_000].map(Ok));

    let mut t = RestartStrategy::ExponentialBackoff {
        initial: ms(100),
        max: ms(10_000),
        multiplier: 1.5,
        reset_after: Duration::from_secs(3600),
        max_attempts: u32::MAX,
    }
    .tracker();
    let delays: Vec<_> = (0..4).map(|_| fail_and_restart(&mut t, &clock)).collect();
    assert_eq!(delays, [100, 150, 225, 337].map(Ok));
}

#[test]
fn exponential_backoff_resets_after_a_long_healthy_run() {
    let clock = ManualClock::new(0);
    let mut t = RestartStrategy::ExponentialBackoff {
        initial: ms(100),
        max: ms(60_000),
        multiplier: 2.0,
        reset_after: ms(5_000),
        max_attempts: u32::MAX,
    }
    .tracker();
    assert_eq!(fail_and_restart(&mut t, &clock), Ok(100));
    assert_eq!(fail_and_restart(&mut t, &clock), Ok(200));
    // Just short of the threshold since the restart: keeps growing.
    run_for(&clock, 4_999);
    assert_eq!(fail_and_restart(&mut t, &clock), Ok(400));
    // A run of exactly the threshold resets.
    run_for(&clock, 5_000);
    assert_eq!(fail_and_restart(&mut t, &clock), Ok(100));
    assert_eq!(fail_and_restart(&mut t, &clock), Ok(200));
    assert_eq!(t.attempts(), 5);

    // The run is measured from `on_running` when the runtime reports it.
    let restored_at = clock.now_millis() + 4_000;
    t.on_running(restored_at);
    clock.set(restored_at + 4_999);
    assert_eq!(fail_and_restart(&mut t, &clock), Ok(400));
}

#[test]
fn exponential_backoff_gives_up_after_max_attempts_between_resets() {
    let clock = ManualClock::new(0);
    let mut t = RestartStrategy::ExponentialBackoff {
        initial: ms(10),
        max: ms(1_000),
        multiplier: 2.0,
        reset_after: ms(10_000),
        max_attempts: 2,
    }
    .tracker();
    assert_eq!(fail_and_restart(&mut t, &clock), Ok(10));
    assert_eq!(fail_and_restart(&mut t, &clock), Ok(20));
    // A reset gives the attempts back.
    run_for(&clock, 10_000);
    assert_eq!(fail_and_restart(&mut t, &clock), Ok(10));
    assert_eq!(fail_and_restart(&mut t, &clock), Ok(20));
    run_for(&clock, 9_999);
    assert_eq!(fail_and_restart(&mut t, &clock), Err(4));
    // Given up for good, even after a long while.
    run_for(&clock, 1_000_000);
    assert_eq!(fail_and_restart(&mut t, &clock), Err(4));
}

#[test]
fn failure_rate_gives_up_when_more_than_max_failures_fall_within_the_interval() {
    let clock = ManualClock::new(0);
    let mut t = RestartStrategy::failure_rate(3, ms(10_000), ms(100)).tracker();
    // Failures at 0, 1 000, 2 000: three within 10 s, tolerated.
    for _ in 0..3 {
        assert_eq!(fail_and_restart(&mut t, &clock), Ok(100));
        run_for(&clock, 900);
    }
    // The fourth at 10 000: exactly `interval` after the first, which counts.
    clock.set(10_000);
    assert_eq!(t.on_failure(clock.now_millis()), GiveUp { attempts: 3 });
}

#[test]
fn failure_rate_forgets_failures_that_leave_the_window() {
    let clock = ManualClock::new(0);
    let mut t = RestartStrategy::failure_rate(2, ms(10_000), Duration::ZERO).tracker();
    let mut at = |now: Timestamp| {
        clock.set(now);
        t.on_failure(clock.now_millis())
    };
    assert_eq!(at(0), RestartAt(0));
    assert_eq!(at(5_000), RestartAt(5_000));
    // 10 001 ms after the first: it has left the window, two remain.
    assert_eq!(at(10_001), RestartAt(10_001));
    assert_eq!(at(15_001), RestartAt(15_001));
    // Three within 10 s (10 001, 15 001, 15 002): one too many.
    assert_eq!(at(15_002), GiveUp { attempts: 4 });
}

#[test]
fn no_restart_gives_up_at_once() {
    let mut t = RestartStrategy::NoRestart.tracker();
    assert_eq!(t.on_failure(1_000), GiveUp { attempts: 0 });
    assert_eq!(t.on_failure(2_000), GiveUp { attempts: 0 });
    assert_eq!(t.attempts(), 0);
}

#[tokio::test(flavor = "current_thread")]
async fn wait_to_restart_completes_only_once_the_clock_reaches_the_time() {
    let clock = Arc::new(ManualClock::new(1_000));
    let mut t = RestartStrategy::fixed_delay(1, ms(500)).tracker();
    let RestartAt(at) = t.on_failure(clock.now_millis()) else { panic!("expected a restart") };
    assert_eq!(at, 1_500);

    let c = clock.clone();
    let wait = tokio::spawn(async move { wait_to_restart(&*c, at).await });
    // On a current-thread runtime, yielding lets the spawned wait run until
    // it blocks on the clock.
    tokio::task::yield_now().await;
    assert!(!wait.is_finished());
    clock.advance(499);
    tokio::task::yield_now().await;
    assert!(!wait.is_finished());
    clock.advance(1);
    // Guard against a hang only; completes as soon as it is polled.
    tokio::time::timeout(Duration::from_secs(10), wait).await.expect("woke up").expect("no panic");
    assert_eq!(clock.now_millis(), 1_500);

    // A time already reached does not wait.
    tokio::time::timeout(Duration::from_secs(10), wait_to_restart(&*clock, 1_000)).await.expect("at once");
}
