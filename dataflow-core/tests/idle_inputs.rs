//! An input that stays open without data must not hold back event time
//! once the other inputs have ended: three of four source subtasks end,
//! then the fourth, silent, goes idle (the job's clock moves past the idle
//! timeout only then), and every window of the three fires while the
//! fourth is still open — compared with a batch count. (Whether the
//! window tasks see the three ends before the fourth's idleness is up to
//! the scheduler; the unit tests of `time/input_watermarks.rs` pin the
//! order down.)

use dataflow_core::connectors::{Source, SourceContext, SourceStatus};
use dataflow_core::time::{ManualClock, WatermarkStrategy};
use dataflow_core::window::{TimeWindow, TumblingEventTimeWindows};
use dataflow_core::{BoxError, StreamEnvironment};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

const PER_SUBTASK: u64 = 3_000;
const KEYS: u64 = 5;
const WINDOW_MS: u64 = 100;

/// Subtasks 0–2 emit `(key, time)` pairs and end; subtask 3 waits, without
/// data, until released.
struct Events {
    subtask: usize,
    next: u64,
    release: watch::Receiver<bool>,
    ended: Arc<(AtomicUsize, tokio::sync::Notify)>,
}

#[async_trait::async_trait]
impl Source<(u64, u64)> for Events {
    async fn poll_batch(&mut self, ctx: &mut SourceContext<(u64, u64)>) -> Result<SourceStatus, BoxError> {
        if self.subtask == 3 {
            let _ = self.release.wait_for(|r| *r).await;
            return Ok(SourceStatus::Finished);
        }
        while self.next < PER_SUBTASK && !ctx.is_full() {
            let i = self.next;
            ctx.collect(((i + self.subtask as u64) % KEYS, i), None);
            self.next += 1;
        }
        if self.next < PER_SUBTASK {
            return Ok(SourceStatus::More);
        }
        self.ended.0.fetch_add(1, Ordering::SeqCst);
        self.ended.1.notify_one();
        Ok(SourceStatus::Finished)
    }
}

fn expected() -> BTreeMap<(u64, u64), u64> {
    let mut counts = BTreeMap::new();
    for subtask in 0..3u64 {
        for i in 0..PER_SUBTASK {
            *counts.entry(((i + subtask) % KEYS, i / WINDOW_MS * WINDOW_MS)).or_default() += 1;
        }
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_input_does_not_hold_back_windows_once_the_others_ended() {
    for p in [4usize, 2] {
        let clock = Arc::new(ManualClock::new(0));
        let env = StreamEnvironment::new().with_parallelism(p).with_clock(clock.clone());
        let (release, rx) = watch::channel(false);
        let (tx, mut windows) = mpsc::unbounded_channel();
        let ended = Arc::new((AtomicUsize::new(0), tokio::sync::Notify::new()));
        let e = ended.clone();
        env.add_source("events", move |info| Events {
            subtask: info.subtask,
            next: 0,
            release: rx.clone(),
            ended: e.clone(),
        })
        .set_parallelism(4)
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_millis(10))
                .with_timestamp_assigner(|e: &(u64, u64), _| e.1 as i64)
                .with_idleness(Duration::from_millis(50)),
        )
        .key_by(|e: &(u64, u64)| e.0)
        .window(TumblingEventTimeWindows::of(Duration::from_millis(WINDOW_MS)))
        .count()
        .for_each(move |(k, w, n): (u64, TimeWindow, u64)| {
            let _ = tx.send(((k, w.start as u64), n));
        });
        let job = env.submit();
        while ended.0.load(Ordering::SeqCst) < 3 {
            ended.1.notified().await;
        }
        // Only now does the fourth input go idle.
        clock.advance(1_000);
        // Every window must fire while subtask 3 is still open; the timeout
        // is a safety net (it fails the test), not a wait.
        let want = expected();
        let mut got = BTreeMap::new();
        while got.len() < want.len() {
            match tokio::time::timeout(Duration::from_secs(30), windows.recv()).await {
                Ok(Some((w, n))) => assert!(got.insert(w, n).is_none(), "window {w:?} fired twice"),
                _ => panic!("p={p}: {} of {} windows fired while one input stayed open", got.len(), want.len()),
            }
        }
        assert_eq!(got, want, "p={p}");
        release.send_replace(true);
        job.wait().await.unwrap();
        assert!(windows.recv().await.is_none(), "p={p}: a window fired after the silent input ended");
    }
}
