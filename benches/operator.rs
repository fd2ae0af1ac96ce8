//! The cost of `#[operator]`: the same map written as an `#[operator]`
//! function and as a closure, on a 10M-record chain (source → map → filter
//! → sink, parallelism 1), side by side in one run.

mod events;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dataflow_core::{StreamEnvironment, operator};
use events::{Event, gen_event, keep_event, map_event, share, sum_sink};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

const N: u64 = 10_000_000;

/// The map step, as an operator function.
#[operator]
fn scale(e: Event) -> Event {
    map_event(e)
}

fn run(rt: &tokio::runtime::Runtime, with_macro: bool) -> u64 {
    let env = StreamEnvironment::new().with_parallelism(1);
    let src = env.from_parallel_iter(|info| share(info.subtask, info.parallelism, N).map(gen_event));
    let mapped = if with_macro { src.apply(scale()) } else { src.map(map_event) };
    let total = Arc::new(AtomicU64::new(0));
    mapped.filter(keep_event).sink("sum", sum_sink(total.clone(), |e: &Event| u64::from(e.value)));
    rt.block_on(env.execute()).expect("job");
    total.load(Ordering::Relaxed)
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().expect("runtime");
    assert_eq!(run(&rt, true), run(&rt, false));
    let mut g = c.benchmark_group("operator");
    g.throughput(Throughput::Elements(N)).sample_size(10);
    g.bench_function("closure", |b| b.iter(|| run(&rt, false)));
    g.bench_function("macro", |b| b.iter(|| run(&rt, true)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
