//! Split-based sources: watermarks per split. Eight splits of very
//! different rates at parallelism 2, every record within the 5 s bound of
//! its own split: nothing is late, and the window counts equal a batch
//! count over the same events. (A watermark per source subtask, as
//! `assign_timestamps_and_watermarks` after the source makes, sends most
//! of the sparse splits' records to the late output.)

use dataflow_core::connectors::split::{Split, SplitEnumerator, SplitOutput, SplitReader, SplitSource};
use dataflow_core::operator::OutputTag;
use dataflow_core::time::WatermarkStrategy;
use dataflow_core::window::{TimeWindow, TumblingEventTimeWindows};
use dataflow_core::{BoxError, StreamEnvironment};
use std::collections::BTreeMap;
use std::time::Duration;

const SPLITS: u32 = 8;
const PER_SPLIT: u64 = 1_200;
const KEYS: u64 = 7;
const WINDOW_MS: u64 = 10_000;
const BOUND_MS: u64 = 5_000;

/// (key, event time ms, split)
type Ev = (u64, u64, u32);

/// Record `i` of split `s`: splits 0, 1, 4, 5 are dense (1 s of event
/// time per 100 records), 2, 3, 6, 7 sparse (100 s per 100 records), so
/// each subtask of two reads both kinds; times jitter back by up to 4 s,
/// within the bound.
fn event(s: u32, i: u64) -> Ev {
    let step = if s % 4 < 2 { 10 } else { 1_000 };
    let jitter = (i * 7 + u64::from(s) * 13) % 5 * 1_000;
    ((i + u64::from(s)) % KEYS, (i * step + 4_000).saturating_sub(jitter), s)
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Gen {
    split: u32,
    at: u64,
}

impl Split for Gen {
    fn id(&self) -> String {
        format!("gen-{}", self.split)
    }

    fn owner(&self, parallelism: usize) -> usize {
        self.split as usize % parallelism
    }
}

struct Gens;

#[async_trait::async_trait]
impl SplitEnumerator<Gen> for Gens {
    async fn discover(&mut self) -> Result<Vec<Gen>, BoxError> {
        Ok((0..SPLITS).map(|split| Gen { split, at: 0 }).collect())
    }
}

struct GenReader;

#[async_trait::async_trait]
impl SplitReader<Ev, Gen> for GenReader {
    async fn read(&mut self, g: &mut Gen, max: usize, out: &mut SplitOutput<Ev>) -> Result<bool, BoxError> {
        for _ in 0..max.min((PER_SPLIT - g.at) as usize) {
            out.push(event(g.split, g.at));
            g.at += 1;
        }
        Ok(g.at == PER_SPLIT)
    }
}

/// The same records, each with its event time as its own timestamp (as a
/// Kafka record carries one).
struct StampedReader;

#[async_trait::async_trait]
impl SplitReader<Ev, Gen> for StampedReader {
    async fn read(&mut self, g: &mut Gen, max: usize, out: &mut SplitOutput<Ev>) -> Result<bool, BoxError> {
        for _ in 0..max.min((PER_SPLIT - g.at) as usize) {
            let e = event(g.split, g.at);
            out.push_with_timestamp(e, e.1 as i64);
            g.at += 1;
        }
        Ok(g.at == PER_SPLIT)
    }
}

fn batch_counts() -> BTreeMap<(u64, u64), u64> {
    let mut counts = BTreeMap::new();
    for s in 0..SPLITS {
        for i in 0..PER_SPLIT {
            let (k, t, _) = event(s, i);
            *counts.entry((k, t / WINDOW_MS * WINDOW_MS)).or_default() += 1;
        }
    }
    counts
}

fn bounded() -> WatermarkStrategy<Ev> {
    WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_millis(BOUND_MS))
        .with_timestamp_assigner(|e: &Ev, _| e.1 as i64)
}

/// Runs the generator at p = 2 into keyed tumbling-window counts; `per_split`:
/// the strategy in the source (else after it, one watermark per subtask).
/// Returns the late records and the counts by (key, window start).
async fn window_counts(per_split: bool, stamped: bool) -> (Vec<Ev>, BTreeMap<(u64, u64), u64>) {
    let env = StreamEnvironment::new().with_parallelism(2);
    let source = match stamped {
        true => SplitSource::new("generator", |_| Gens, |_| StampedReader),
        false => SplitSource::new("generator", |_| Gens, |_| GenReader),
    };
    let source = source.with_turn(64);
    let events = match (per_split, stamped) {
        // No assigner: the records' own timestamps.
        (_, true) => {
            env.from_source(source, WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_millis(BOUND_MS)))
        }
        (true, false) => env.from_source(source, bounded()),
        (false, false) => {
            env.from_source(source, WatermarkStrategy::no_watermarks()).assign_timestamps_and_watermarks(bounded())
        }
    };
    let late_tag = OutputTag::<Ev>::new("late");
    let windows = events
        .key_by(|e: &Ev| e.0)
        .window(TumblingEventTimeWindows::of(Duration::from_millis(WINDOW_MS)))
        .side_output_late_data(&late_tag)
        .count();
    let late = windows.side_output(&late_tag).collect();
    let counts = windows.collect();
    env.execute().await.unwrap();
    let counts = counts.take().into_iter().map(|(k, w, n): (u64, TimeWindow, u64)| ((k, w.start as u64), n));
    (late.take(), counts.collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watermarks_per_split_make_nothing_late_whatever_the_rates() {
    let (late, counts) = window_counts(true, false).await;
    assert!(late.is_empty(), "{} records late, e.g. {:?}", late.len(), &late[..late.len().min(5)]);
    assert_eq!(counts, batch_counts());
}

/// A reader that hands out records with their own timestamps and a
/// strategy without an assigner: event time and per-split watermarks come
/// from those timestamps; nothing late, windows as the batch count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_own_timestamps_drive_event_time_without_an_assigner() {
    let (late, counts) = window_counts(true, true).await;
    assert!(late.is_empty(), "{} records late, e.g. {:?}", late.len(), &late[..late.len().min(5)]);
    assert_eq!(counts, batch_counts());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounded_source_reads_every_split_once_at_any_parallelism() {
    for p in [1, 3, 8, 11] {
        let env = StreamEnvironment::new().with_parallelism(p);
        let source = SplitSource::new("generator", |_| Gens, |_| GenReader);
        let out = env.from_source(source, WatermarkStrategy::no_watermarks()).collect();
        env.execute().await.unwrap();
        let mut got = out.take();
        got.sort();
        let mut want: Vec<Ev> = (0..SPLITS).flat_map(|s| (0..PER_SPLIT).map(move |i| event(s, i))).collect();
        want.sort();
        assert_eq!(got, want, "p={p}");
    }
}

/// The same events with one watermark per source subtask (the strategy
/// applied after the source): the dense splits' records fall behind the
/// sparse ones' watermark. This shows the events above do test per-split
/// watermarks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_watermark_per_subtask_makes_records_late() {
    let (late, _) = window_counts(false, false).await;
    assert!(late.len() > 100, "only {} late", late.len());
}
