//! Event time end to end: idle source partitions, allowed lateness and
//! watermark alignment.

use dataflow_core::connectors::{Source, SourceContext, SourceStatus};
use dataflow_core::operator::OutputTag;
use dataflow_core::time::{ManualClock, WatermarkStrategy};
use dataflow_core::window::{TimeWindow, TumblingEventTimeWindows};
use dataflow_core::{BoxError, StreamEnvironment};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// A parallel source whose subtask `i` sends what the test pushes into
/// channel `i`, and ends when the test drops its sender.
struct Controlled {
    rx: mpsc::UnboundedReceiver<Vec<(u8, i64)>>,
}

#[async_trait::async_trait]
impl Source<(u8, i64)> for Controlled {
    async fn poll_batch(&mut self, ctx: &mut SourceContext<(u8, i64)>) -> Result<SourceStatus, BoxError> {
        match self.rx.recv().await {
            Some(events) => {
                events.into_iter().for_each(|e| ctx.collect(e, None));
                Ok(SourceStatus::More)
            }
            None => Ok(SourceStatus::Finished),
        }
    }
}

type Senders = Vec<mpsc::UnboundedSender<Vec<(u8, i64)>>>;

/// A source of `n` controlled partitions and the senders feeding them.
fn controlled(env: &StreamEnvironment, n: usize) -> (dataflow_core::Stream<(u8, i64)>, Senders) {
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..n).map(|_| mpsc::unbounded_channel()).unzip();
    let rxs = Arc::new(Mutex::new(rxs.into_iter().map(Some).collect::<Vec<_>>()));
    let stream = env
        .add_source("controlled", move |info| Controlled {
            rx: rxs.lock().unwrap()[info.subtask].take().expect("one source instance per subtask"),
        })
        .set_parallelism(n);
    (stream, txs)
}

/// Counts per (key, window start) by a plain computation.
fn batch_counts(events: &[(u8, i64)], size: i64) -> BTreeMap<(u8, i64), u64> {
    let mut m = BTreeMap::new();
    for &(k, ts) in events {
        *m.entry((k, ts - ts.rem_euclid(size))).or_default() += 1;
    }
    m
}

/// One partition carries events, the other stays silent. The windows of
/// the active partition fire while the silent one is idle only when the
/// strategy has `with_idleness`; without it they wait for the end of input.
async fn idle_partition(idleness: bool) {
    let clock = Arc::new(ManualClock::new(0));
    let env = StreamEnvironment::new().with_parallelism(2).with_clock(clock.clone());
    let (source, txs) = controlled(&env, 2);
    let mut strategy = WatermarkStrategy::for_monotonous_timestamps().with_timestamp_assigner(|e: &(u8, i64), _| e.1);
    if idleness {
        strategy = strategy.with_idleness(Duration::from_secs(1));
    }
    let (out_tx, mut out) = mpsc::channel(1024);
    let seen = Arc::new(tokio::sync::watch::Sender::new(0usize));
    let mut seen_rx = seen.subscribe();
    source
        .assign_timestamps_and_watermarks(strategy)
        .inspect(move |_| seen.send_modify(|n| *n += 1))
        .key_by(|e: &(u8, i64)| e.0)
        .window(TumblingEventTimeWindows::of(Duration::from_millis(10)))
        .count()
        .sink_channel(out_tx);
    let job = tokio::spawn(env.execute());

    let first: Vec<(u8, i64)> = (0..50).map(|t| ((t % 3) as u8, t)).collect();
    let second: Vec<(u8, i64)> = (50..100).map(|t| ((t % 3) as u8, t)).collect();
    txs[0].send(first.clone()).unwrap();
    seen_rx.wait_for(|n| *n == first.len()).await.unwrap();
    // Both partitions idle for a while (the active one only until its next
    // records), then the active partition moves the watermark to 98.
    clock.advance(2_000);
    txs[0].send(second.clone()).unwrap();
    let all: Vec<(u8, i64)> = first.iter().chain(&second).copied().collect();
    let want = batch_counts(&all, 10);
    // Windows ending at or before 98 (starts 0..=80) can fire now.
    let early: BTreeMap<_, _> = want.iter().filter(|((_, s), _)| s + 9 <= 98).map(|(k, v)| (*k, *v)).collect();

    let mut got = BTreeMap::new();
    if idleness {
        while got.len() < early.len() {
            // A generous bound, so a regression fails instead of hanging.
            let next = tokio::time::timeout(Duration::from_secs(30), out.recv()).await;
            let (k, w, n): (u8, TimeWindow, u64) = next.expect("windows held back by the idle partition").unwrap();
            got.insert((k, w.start), n);
        }
        assert_eq!(got, early, "the idle partition must not hold the windows back");
    } else {
        let quiet = tokio::time::timeout(Duration::from_millis(300), out.recv()).await;
        assert!(quiet.is_err(), "a window fired although the silent partition is not marked idle: {quiet:?}");
    }
    drop(txs);
    while let Some((k, w, n)) = out.recv().await {
        got.insert((k, w.start), n);
    }
    job.await.unwrap().unwrap();
    assert_eq!(got, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_partition_does_not_hold_windows_back_with_idleness() {
    idle_partition(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_idleness_a_silent_partition_holds_windows_until_the_end() {
    idle_partition(false).await;
}

/// A window fires on time, then again with the updated count for every
/// late element within the allowed lateness; an element later than that
/// goes to the late-data output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_elements_within_lateness_refire_the_window() {
    // Batches of one record, so a watermark follows every record.
    let env = StreamEnvironment::new().with_parallelism(1).with_batch_size(1);
    let events: Vec<(u8, i64)> = vec![
        (0, 1),
        (0, 5),
        (0, 12), // watermark 11: [0, 10) fires with 2
        (0, 3),  // late, within lateness (9 + 10 > 11): fires with 3
        (0, 7),  // again: 4
        (0, 25), // watermark 24: [10, 20) fires with 1; [0, 10) is dropped at 19
        (0, 4),  // beyond lateness (9 + 10 <= 24): late output
    ];
    let late_tag = OutputTag::<(u8, i64)>::new("late");
    let counts = env
        .from_iter(events.clone())
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_monotonous_timestamps().with_timestamp_assigner(|e: &(u8, i64), _| e.1),
        )
        .key_by(|e: &(u8, i64)| e.0)
        .window(TumblingEventTimeWindows::of(Duration::from_millis(10)))
        .allowed_lateness(Duration::from_millis(10))
        .side_output_late_data(&late_tag)
        .count();
    let late = counts.side_output(&late_tag).collect();
    let fired = counts.collect();
    env.execute().await.unwrap();

    // Replay the same rules by hand: on time, then one firing per late
    // element within lateness, the final firing at the end of input.
    let fired: Vec<(i64, u64)> = fired.take().into_iter().map(|(_, w, n)| (w.start, n)).collect();
    assert_eq!(fired, [(0, 2), (0, 3), (0, 4), (10, 1), (20, 1)]);
    assert_eq!(late.take(), [(0, 4)]);
}

/// A source that reads `events` in small batches, publishes the largest
/// timestamp it has read, and counts the polls it got while its watermark
/// (monotonous: largest timestamp − 1) was above `allowed`, the most the
/// alignment group lets it have and still read.
struct Tracked {
    events: std::vec::IntoIter<(u8, i64)>,
    read: Arc<tokio::sync::watch::Sender<i64>>,
    allowed: Arc<AtomicI64>,
    overshoots: Arc<AtomicU64>,
}

#[async_trait::async_trait]
impl Source<(u8, i64)> for Tracked {
    async fn poll_batch(&mut self, ctx: &mut SourceContext<(u8, i64)>) -> Result<SourceStatus, BoxError> {
        let watermark = self.read.borrow().saturating_sub(1);
        if watermark > self.allowed.load(Ordering::SeqCst) {
            self.overshoots.fetch_add(1, Ordering::SeqCst);
        }
        for e in self.events.by_ref().take(10) {
            self.read.send_modify(|r| *r = (*r).max(e.1));
            ctx.collect(e, None);
        }
        Ok(if self.events.len() == 0 { SourceStatus::Finished } else { SourceStatus::More })
    }
}

/// Two sources in one alignment group with a drift of 100 ms: the fast one
/// (all its data ready) is never read while its watermark is more than the
/// drift ahead of the slow one's, and goes on as the slow one advances.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watermark_alignment_pauses_the_fast_source() {
    const DRIFT: i64 = 100;
    let env = StreamEnvironment::new().with_parallelism(1).with_batch_size(10);
    let strategy = || {
        WatermarkStrategy::for_monotonous_timestamps()
            .with_timestamp_assigner(|e: &(u8, i64), _| e.1)
            .with_watermark_alignment("group", Duration::from_millis(DRIFT as u64))
    };
    let read = Arc::new(tokio::sync::watch::Sender::new(i64::MIN));
    let mut progress = read.subscribe();
    // The slow source has no watermark yet.
    let allowed = Arc::new(AtomicI64::new(i64::MIN.saturating_add(DRIFT)));
    let overshoots = Arc::new(AtomicU64::new(0));
    let fast_events: Vec<(u8, i64)> = (0..10_000).map(|t| (1, t)).collect();
    let (r, a, o) = (read.clone(), allowed.clone(), overshoots.clone());
    let fast = env
        .add_source("fast", move |_| Tracked {
            events: fast_events.clone().into_iter(),
            read: r.clone(),
            allowed: a.clone(),
            overshoots: o.clone(),
        })
        .set_parallelism(1)
        .assign_timestamps_and_watermarks(strategy());
    let (slow, txs) = controlled(&env, 1);
    let slow = slow.assign_timestamps_and_watermarks(strategy());
    let total = fast.union(&slow).collect();
    let job = tokio::spawn(env.execute());

    // The slow source goes to watermark 48 (the bound is raised before its
    // records are sent, so it is never below the group's true one): the
    // fast one reads until its watermark passes 148, i.e. up to 159.
    allowed.store(48 + DRIFT, Ordering::SeqCst);
    txs[0].send((0..50).map(|t| (0, t)).collect()).unwrap();
    progress.wait_for(|r| *r >= 150).await.unwrap();

    // The slow source advances to watermark 998: the fast one follows.
    allowed.store(998 + DRIFT, Ordering::SeqCst);
    txs[0].send((50..1_000).map(|t| (0, t)).collect()).unwrap();
    progress.wait_for(|r| *r >= 1_090).await.unwrap();

    // The slow source ends: it no longer holds the group back.
    allowed.store(i64::MAX, Ordering::SeqCst);
    drop(txs);
    job.await.unwrap().unwrap();
    assert_eq!(overshoots.load(Ordering::SeqCst), 0, "the fast source was read while too far ahead");
    assert_eq!(*read.borrow(), 9_999);
    assert_eq!(total.len(), 11_000);
}
