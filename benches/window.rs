//! Keyed tumbling event-time window count: 10M events, 10_000 keys,
//! 1-minute windows (60_000 events each, 167 windows), event times up to
//! 2 s out of order and a bounded-out-of-orderness watermark of 2 s (see
//! `window_events.rs`). Each contender emits one `(key, window, count)` per
//! key and window when the watermark (timely: the frontier) passes the
//! window's end, and sums them into `WindowTotals`.
//!
//! * `loop`: a hand-written single-threaded loop, the ceiling;
//! * `dataflow/p`: our job at parallelism `p` (`key_by().window().count()`);
//! * `timely/p`: the same job in timely-dataflow with `p` workers.
//!
//! Run with `cargo bench --bench window`; print the ratios afterwards with
//! `python3 benches/ratios.py`.

#[allow(dead_code)] // only some of it is used here
mod events;
mod timely_feed;
mod timely_window;
mod window_events;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dataflow_core::time::WatermarkStrategy;
use dataflow_core::window::TumblingEventTimeWindows;
use events::{environment, runtime};
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use timely_window::timely_window;
use window_events::{DISORDER_MS, TimedEvent, TotalsSink, WINDOW_MS, WindowTotals, gen_timed, stride, window_start};

const N: u64 = 10_000_000;

fn ours_window(rt: &tokio::runtime::Runtime, p: usize, n: u64) -> WindowTotals {
    let env = environment(p);
    let total = Arc::new(Mutex::new(WindowTotals::default()));
    let sink_total = total.clone();
    env.from_parallel_iter(move |info| stride(info.subtask, info.parallelism, n).map(gen_timed))
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_millis(DISORDER_MS))
                .with_timestamp_assigner(|e: &TimedEvent, _| e.ts as i64),
        )
        .key_by(|e: &TimedEvent| e.key)
        .window(TumblingEventTimeWindows::of(Duration::from_millis(WINDOW_MS)))
        .count()
        .sink("totals", move |_| TotalsSink { acc: WindowTotals::default(), total: sink_total.clone() });
    rt.block_on(env.execute()).expect("job");
    *total.lock().expect("totals")
}

/// The single-threaded ceiling: the open windows in start order (at most
/// two at a time here), each a map from key to count, fired in order when
/// the watermark (largest time seen minus the disorder bound, as the
/// strategy computes it) reaches the window's end; maps are reused.
fn loop_window(n: u64) -> WindowTotals {
    let mut totals = WindowTotals::default();
    let mut open: VecDeque<(u64, FxHashMap<u32, u64>)> = VecDeque::new();
    let mut spare: Vec<FxHashMap<u32, u64>> = Vec::new();
    let mut fire = |start: u64, mut counts: FxHashMap<u32, u64>, spare: &mut Vec<FxHashMap<u32, u64>>| {
        for (&key, &count) in &counts {
            totals.add(key, start, count);
        }
        counts.clear();
        spare.push(counts);
    };
    let mut max_ts = 0u64;
    for e in (0..black_box(n)).map(gen_timed) {
        let start = window_start(e.ts);
        let counts = match open.iter().rposition(|(s, _)| *s == start) {
            Some(i) => &mut open[i].1,
            None => {
                // Windows open in start order: an earlier one goes before later ones.
                let at = open.iter().rposition(|(s, _)| *s < start).map_or(0, |i| i + 1);
                open.insert(at, (start, spare.pop().unwrap_or_default()));
                &mut open[at].1
            }
        };
        *counts.entry(e.key).or_insert(0) += 1;
        max_ts = max_ts.max(e.ts);
        let watermark = max_ts.saturating_sub(DISORDER_MS);
        while open.front().is_some_and(|(s, _)| s + WINDOW_MS <= watermark) {
            let (s, counts) = open.pop_front().expect("a window");
            fire(s, counts, &mut spare);
        }
    }
    while let Some((s, counts)) = open.pop_front() {
        fire(s, counts, &mut spare);
    }
    totals
}

pub(crate) fn bench(c: &mut Criterion) {
    let rt = runtime();
    // Every contender must compute the same answer.
    let reference = loop_window(N);
    assert_eq!(reference.events, N);
    eprintln!(
        "window: {} (key, window) results, {} events, checksum {:#x}",
        reference.results, reference.events, reference.checksum
    );
    for p in [1, 2] {
        assert_eq!(ours_window(&rt, p, N), reference, "dataflow/{p}");
        assert_eq!(timely_window(p, N), reference, "timely/{p}");
    }

    let mut g = c.benchmark_group("window");
    g.throughput(Throughput::Elements(N)).sample_size(10);
    g.bench_function("loop", |b| b.iter(|| loop_window(N)));
    for p in [1, 2] {
        g.bench_with_input(BenchmarkId::new("dataflow", p), &p, |b, &p| b.iter(|| ours_window(&rt, p, N)));
        g.bench_with_input(BenchmarkId::new("timely", p), &p, |b, &p| b.iter(|| timely_window(p, N)));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
