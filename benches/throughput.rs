//! Throughput of dataflow against timely-dataflow and a hand-written loop,
//! side by side in one run, over 10M small records:
//!
//! * `chain`: source → map → filter → sink (sum of a field);
//! * `keyed`: source → key_by → rolling sum per key (10k keys) → sink (count).
//!
//! Each at parallelism (timely: workers) 1 and 2. The loop is single-threaded
//! and is the ceiling. Run with `cargo bench --bench throughput`; print the
//! ratios afterwards with `python3 benches/ratios.py`.

mod events;
mod timely_impl;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dataflow_core::StreamEnvironment;
use events::{Event, environment, gen_event, keep_event, map_event, runtime, share, sum_sink};
use rustc_hash::FxHashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use timely_impl::{timely_chain, timely_keyed};

const N: u64 = 10_000_000;

fn source(env: &StreamEnvironment, n: u64) -> dataflow_core::Stream<Event> {
    env.from_parallel_iter(move |info| share(info.subtask, info.parallelism, n).map(gen_event))
}

fn ours_chain(rt: &tokio::runtime::Runtime, p: usize, n: u64) -> u64 {
    let env = environment(p);
    let total = Arc::new(AtomicU64::new(0));
    source(&env, n)
        .map(map_event)
        .filter(keep_event)
        .sink("sum", sum_sink(total.clone(), |e: &Event| u64::from(e.value)));
    rt.block_on(env.execute()).expect("job");
    total.load(Ordering::Relaxed)
}

fn ours_keyed(rt: &tokio::runtime::Runtime, p: usize, n: u64) -> u64 {
    let env = environment(p);
    let count = Arc::new(AtomicU64::new(0));
    source(&env, n)
        .key_by(|e: &Event| e.key)
        .sum(|e: &Event| u64::from(e.value))
        .sink("count", sum_sink(count.clone(), |_: &(u32, u64)| 1));
    rt.block_on(env.execute()).expect("job");
    count.load(Ordering::Relaxed)
}

fn loop_chain(n: u64) -> u64 {
    (0..black_box(n)).map(gen_event).map(map_event).filter(keep_event).map(|e| u64::from(e.value)).sum()
}

fn loop_keyed(n: u64) -> u64 {
    let mut totals: FxHashMap<u32, u64> = FxHashMap::default();
    let (mut count, mut checksum) = (0u64, 0u64);
    for e in (0..black_box(n)).map(gen_event) {
        let t = totals.entry(e.key).or_insert(0);
        *t += u64::from(e.value);
        count += 1;
        checksum = checksum.wrapping_add(*t);
    }
    black_box(checksum);
    count
}

pub(crate) fn bench(c: &mut Criterion) {
    let rt = runtime();
    // Every contender must compute the same answer.
    let (chain_ref, keyed_ref) = (loop_chain(N), loop_keyed(N));
    for p in [1, 2] {
        assert_eq!(ours_chain(&rt, p, N), chain_ref);
        assert_eq!(timely_chain(p, N), chain_ref);
        assert_eq!(ours_keyed(&rt, p, N), keyed_ref);
        assert_eq!(timely_keyed(p, N), keyed_ref);
    }

    let mut g = c.benchmark_group("chain");
    g.throughput(Throughput::Elements(N)).sample_size(10);
    g.bench_function("loop", |b| b.iter(|| loop_chain(N)));
    for p in [1, 2] {
        g.bench_with_input(BenchmarkId::new("dataflow", p), &p, |b, &p| b.iter(|| ours_chain(&rt, p, N)));
        g.bench_with_input(BenchmarkId::new("timely", p), &p, |b, &p| b.iter(|| timely_chain(p, N)));
    }
    g.finish();

    let mut g = c.benchmark_group("keyed");
    g.throughput(Throughput::Elements(N)).sample_size(10);
    g.bench_function("loop", |b| b.iter(|| loop_keyed(N)));
    for p in [1, 2] {
        g.bench_with_input(BenchmarkId::new("dataflow", p), &p, |b, &p| b.iter(|| ours_keyed(&rt, p, N)));
        g.bench_with_input(BenchmarkId::new("timely", p), &p, |b, &p| b.iter(|| timely_keyed(p, N)));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
