//! The Kafka source against a real broker (tansu, on a local port).
//!
//! * Eight partitions of different rates at parallelism 2 and 3, every
//!   record within the 5 s bound of its own partition, one partition quiet
//!   after its first records, the topic written while the job runs: windows
//!   fire as the busy partitions go on (the quiet one went idle), nothing
//!   is late, and the window counts equal a batch count over the topic.
//! * A savepoint taken mid-run at parallelism 2, restored at 3: the
//!   partitions and their offsets move, every record arrives once.
//! * Records that are not JSON go to the bad-record policy with topic,
//!   partition and offset.

mod common;

use common::Broker;
use dataflow_core::operator::{BadRecordPolicy, OutputTag};
use dataflow_core::time::{ManualClock, WatermarkStrategy};
use dataflow_core::window::{TimeWindow, TumblingEventTimeWindows};
use dataflow_core::{JobClient, StreamEnvironment};
use dataflow_kafka::{KafkaSource, StartFrom};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

const PARTITIONS: i32 = 8;
/// Partition 7 has a few records at the start, then none.
const QUIET: i32 = 7;
const KEYS: u64 = 7;
const WINDOW_MS: u64 = 10_000;
const BOUND_MS: u64 = 5_000;
/// Event times run from `BASE` (a Kafka timestamp of 0 means "now").
const BASE: u64 = 1_000_000;
/// Event time covered, in slices produced one after the other.
const SLICES: u64 = 6;
const SLICE_MS: u64 = 60_000;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
struct Event {
    key: u64,
    time: u64,
    partition: i32,
    seq: u64,
}

/// Partitions 0, 1, 4, 5 are dense (a record per 100 ms of event time),
/// 2, 3, 6 sparse (one per second), 7 quiet (20 records in its first 2 s);
/// times jitter back by up to 4 s, within the bound.
fn step(p: i32) -> u64 {
    match p {
        QUIET => 100,
        p if p % 4 < 2 => 100,
        _ => 1_000,
    }
}

fn event(p: i32, i: u64) -> Event {
    let jitter = (i * 7 + p as u64 * 13) % 5 * 1_000;
    let time = BASE + (i * step(p) + 4_000).saturating_sub(jitter);
    Event { key: (i + p as u64) % KEYS, time, partition: p, seq: i }
}

/// Slice `k` of every partition: the records whose undisturbed times fall
/// in it (the quiet partition's only in the first).
fn slice(k: u64) -> Vec<Event> {
    let mut out = Vec::new();
    for p in 0..PARTITIONS {
        let n = |t: u64| t.div_ceil(step(p));
        let (from, to) = match p {
            QUIET if k == 0 => (0, 20),
            QUIET => (0, 0),
            _ => (n(k * SLICE_MS), n((k + 1) * SLICE_MS)),
        };
        out.extend((from..to).map(|i| event(p, i)));
    }
    out
}

fn events() -> Vec<Event> {
    (0..SLICES).flat_map(slice).collect()
}

fn produce(broker: &Broker, topic: &str, events: &[Event]) {
    let records = events.iter().map(|e| (e.partition, e.time as i64, serde_json::to_vec(e).unwrap()));
    broker.produce(topic, records);
}

fn fill(broker: &Broker, topic: &str) -> Vec<Event> {
    broker.create_topic(topic, PARTITIONS);
    let all = events();
    produce(broker, topic, &all);
    all
}

/// Counts per (key, window start), as a batch computation.
fn batch_counts(events: &[Event]) -> BTreeMap<(u64, u64), u64> {
    let mut counts = BTreeMap::new();
    for e in events {
        *counts.entry((e.key, e.time / WINDOW_MS * WINDOW_MS)).or_default() += 1;
    }
    counts
}

/// Windows over the topic at parallelism `p`, its slices produced while
/// the job runs, on a manual processing-time clock that moves 200 ms per
/// slice (idle timeout 500 ms): the busy partitions are read in every
/// slice, the quiet one goes idle from slice 3 on. Until then no window of
/// the newest slice fires; from then on each slice's windows fire while
/// the job runs. Once every record was read the job stops with a draining
/// savepoint; nothing is late, and the counts equal the batch count.
async fn windows_at(p: usize) {
    let broker = Broker::start();
    broker.create_topic("events", PARTITIONS);
    let clock = Arc::new(ManualClock::new(0));
    let env = StreamEnvironment::new().with_parallelism(p).with_clock(clock.clone());
    let source = KafkaSource::<Event>::json(&broker.brokers, ["events"]).start_from(StartFrom::Earliest).build();
    // No timestamp assigner: the Kafka timestamps are the event times.
    let strategy = WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_millis(BOUND_MS))
        .with_idleness(Duration::from_millis(500));
    // Records read so far, watched by the test.
    let (read, mut reads) = tokio::sync::watch::channel(0u64);
    let late_tag = OutputTag::<Event>::new("late");
    let windows = env
        .from_source(source, strategy)
        .map(move |e: Event| {
            read.send_modify(|n| *n += 1);
            e
        })
        .key_by(|e: &Event| e.key)
        .window(TumblingEventTimeWindows::of(Duration::from_millis(WINDOW_MS)))
        .side_output_late_data(&late_tag)
        .count();
    let late = windows.side_output(&late_tag).collect();
    let (tx, mut rx) = tokio::sync::mpsc::channel(100_000);
    windows.sink_channel(tx);
    let job = env.submit();
    let mut counts: BTreeMap<(u64, u64), u64> = BTreeMap::new();
    let mut all = Vec::new();
    let mut newest = 0;
    for k in 0..SLICES {
        clock.advance(200);
        let events = slice(k);
        produce(&broker, "events", &events);
        all.extend(events);
        let until = all.len() as u64;
        let got = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                // Read, and (once the quiet partition is idle) fired.
                let idle = k >= 3;
                if *reads.borrow() >= until && (!idle || newest >= BASE + k * SLICE_MS) {
                    break;
                }
                tokio::select! {
                    w = rx.recv() => {
                        let (key, w, n): (u64, TimeWindow, u64) = w.expect("the job ended");
                        *counts.entry((key, w.start as u64)).or_default() += n;
                        newest = newest.max(w.start as u64);
                    }
                    _ = reads.changed() => {}
                }
            }
        })
        .await;
        let at = format!("p={p}, slice {k}: {} of {until} read, newest window {newest}", *reads.borrow());
        assert!(got.is_ok(), "{at}");
        if k < 3 {
            // The quiet partition holds the watermark at its first seconds.
            assert!(newest < BASE + 10_000, "{at}");
        }
    }
    stop_draining(&job).await;
    while let Some((key, w, n)) = rx.recv().await {
        *counts.entry((key, w.start as u64)).or_default() += n;
    }
    job.wait().await.unwrap();
    let late = late.take();
    assert!(late.is_empty(), "p={p}: {} records late, e.g. {:?}", late.len(), &late[..late.len().min(3)]);
    let want = batch_counts(&all);
    let wrong: Vec<_> = want.iter().filter(|(w, n)| counts.get(w) != Some(n)).take(5).collect();
    assert!(counts == want, "p={p}: {} windows, {} expected; wrong: {wrong:?}", counts.len(), want.len());
}

async fn stop_draining(job: &JobClient) {
    let dir = tempfile::tempdir().unwrap();
    job.stop_with_savepoint(dir.path().join("sp"), true).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_have_their_own_watermarks_at_parallelism_2() {
    windows_at(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_have_their_own_watermarks_at_parallelism_3() {
    windows_at(3).await;
}

/// Reads `topic` at parallelism `p` (restoring `from`) into `seen` until
/// `until` records were read in all, then stops with a savepoint.
async fn read_until(
    broker: &Broker,
    p: usize,
    from: Option<&std::path::Path>,
    until: usize,
    seen: &mut Vec<Event>,
    sp: &std::path::Path,
) {
    let env = StreamEnvironment::new().with_parallelism(p);
    if let Some(from) = from {
        env.restore_from(from);
    }
    let source = KafkaSource::<Event>::json(&broker.brokers, ["events"]).build();
    let (tx, mut rx) = tokio::sync::mpsc::channel(100_000);
    env.from_source(source, WatermarkStrategy::no_watermarks()).uid("kafka").sink_channel(tx);
    let job = env.submit();
    while seen.len() < until {
        seen.push(rx.recv().await.expect("the job ended"));
    }
    let (saved, ()) = tokio::join!(job.stop_with_savepoint(sp, false), async {
        while let Some(e) = rx.recv().await {
            seen.push(e);
        }
    });
    saved.unwrap();
    job.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_savepoint_moves_partitions_and_offsets_to_another_parallelism() {
    let broker = Broker::start();
    let mut all = fill(&broker, "events");
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (dir.path().join("sp-1"), dir.path().join("sp-2"));
    let mut seen = Vec::new();
    read_until(&broker, 2, None, all.len() / 3, &mut seen, &first).await;
    assert!(seen.len() < all.len(), "the savepoint came after every record");
    read_until(&broker, 3, Some(&first), all.len(), &mut seen, &second).await;
    seen.sort();
    all.sort();
    assert_eq!(seen.len(), all.len(), "records lost or doubled");
    assert_eq!(seen, all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_that_do_not_decode_go_to_the_bad_record_policy() {
    let broker = Broker::start();
    broker.create_topic("mixed", 2);
    let good = |i: u64| serde_json::to_vec(&event(0, i)).unwrap();
    let records = (0..100u64).map(|i| (i as i32 % 2, i as i64, if i % 10 == 3 { b"{oops".to_vec() } else { good(i) }));
    broker.produce("mixed", records);
    for policy in [BadRecordPolicy::Skip, BadRecordPolicy::SideOutput, BadRecordPolicy::Fail] {
        let env = StreamEnvironment::new().with_parallelism(2).with_bad_record_policy(policy);
        let source = KafkaSource::<Event>::json(&broker.brokers, ["mixed"]).bounded().build();
        let stream = env.from_source(source, WatermarkStrategy::no_watermarks());
        let bad = stream.bad_records().collect();
        let out = stream.collect();
        let result = env.execute().await;
        match policy {
            BadRecordPolicy::Fail => {
                let e = result.unwrap_err().to_string();
                assert!(e.contains("mixed-1@"), "{e}");
            }
            _ => {
                result.unwrap();
                assert_eq!(out.take().len(), 90);
            }
        }
        if policy == BadRecordPolicy::SideOutput {
            let mut bad: Vec<_> = bad.take().into_iter().map(|r| (r.location.unwrap(), r.raw.unwrap())).collect();
            bad.sort();
            let mut want: Vec<_> =
                (0..10u64).map(|j| (format!("mixed-1@{}", (j * 10 + 3) / 2), "{oops".to_string())).collect();
            want.sort();
            assert_eq!(bad, want);
        }
    }
}

/// The broker goes away while the job runs: the job fails, naming the
/// brokers and saying none was reachable, once the broker timeout passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_goes_away_fails_the_job_with_a_clear_error() {
    let mut broker = Broker::start();
    let all = fill(&broker, "events");
    let env = StreamEnvironment::new().with_parallelism(2);
    let source =
        KafkaSource::<Event>::json(&broker.brokers, ["events"]).with_broker_timeout(Duration::from_secs(2)).build();
    let (tx, mut rx) = tokio::sync::mpsc::channel(100_000);
    env.from_source(source, WatermarkStrategy::no_watermarks()).sink_channel(tx);
    let job = env.submit();
    for _ in 0..all.len() {
        rx.recv().await.expect("the job ended early");
    }
    broker.stop();
    let ended = tokio::time::timeout(Duration::from_secs(60), job.wait()).await;
    let err = ended.expect("the job did not notice within 60 s").unwrap_err().to_string();
    assert!(err.contains(&broker.brokers) && err.contains("no broker reachable"), "{err}");
}

/// With checkpoints, each completed checkpoint's offsets are committed to
/// the source's group: once every record was read and a checkpoint
/// completed after that, the group's offsets are the partitions' ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completed_checkpoints_commit_the_offsets_to_the_group() {
    use dataflow_core::checkpoint::coordinator::CheckpointConfig;
    let broker = Broker::start();
    let all = fill(&broker, "events");
    let ends: BTreeMap<i32, i64> =
        (0..PARTITIONS).map(|p| (p, all.iter().filter(|e| e.partition == p).count() as i64)).collect();
    let dir = tempfile::tempdir().unwrap();
    let env = StreamEnvironment::new().with_parallelism(2);
    let checkpoints = env.enable_checkpointing(CheckpointConfig::every(Duration::from_millis(50)), dir.path());
    let source = KafkaSource::<Event>::json(&broker.brokers, ["events"]).with_group("monitor").build();
    let (tx, mut rx) = tokio::sync::mpsc::channel(100_000);
    env.from_source(source, WatermarkStrategy::no_watermarks()).sink_channel(tx);
    let job = env.submit();
    for _ in 0..all.len() {
        rx.recv().await.expect("the job ended early");
    }
    // Checkpoints that complete from now on hold the ends; the commits are
    // asynchronous, so look until the group has them.
    let mut completed = checkpoints.completed();
    let group = broker.group_offsets("monitor", "events", PARTITIONS);
    let mut seen = group();
    let waited = tokio::time::timeout(Duration::from_secs(60), async {
        while seen != ends {
            completed.changed().await.unwrap();
            seen = group();
        }
    })
    .await;
    assert!(waited.is_ok(), "the group's offsets {seen:?}, the ends {ends:?}");
    let dir2 = tempfile::tempdir().unwrap();
    job.stop_with_savepoint(dir2.path().join("sp"), false).await.unwrap();
    job.wait().await.unwrap();
}
