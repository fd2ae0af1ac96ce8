//! Nexmark queries (`examples/nexmark`) at parallelism 1 and 2 over
//! [`EVENTS`] generated events (8 splits), events/s, side by side in one
//! run: `nexmark/<query>/p<n>`, and timely-dataflow's q0, q1, q2 and q5
//! ([`timely_nexmark`]) with 1 and 2 workers over the same events:
//! `nexmark/<query>/timely<n>`. A job at parallelism p runs on a tokio
//! runtime of p worker threads, as timely's p workers are p threads.
//!
//! Each run's result is checked before it is timed ([`Check`]): against
//! the query's batch computation where the result is a set (q0–q3, q8,
//! q11), against the other runs of the query where it is a rolling
//! aggregate (q4, q5, q7, whose update counts are fixed by the input);
//! q12's depend on the clock (processing-time windows), and are not
//! checked here (`examples/tests/nexmark_q12.rs` checks them on a manual
//! clock).
//! timely's q0–q2 result counts are checked against the batch
//! computations, its q5 windows against `queries::q5_batch` exactly.
//!
//! Run with `cargo bench --bench nexmark` (a criterion filter, a regex,
//! picks some: `cargo bench --bench nexmark -- 'q0/|q5/'`). After the
//! benchmarks, [`nexmark_report`] prints a table of M events/s and the
//! ratios ours/timely, and writes `<target>/nexmark/results.csv` and
//! `<target>/nexmark/throughput.svg`; `python3 benches/ratios.py` prints
//! the same numbers.

mod nexmark_report;
mod timely_feed;
mod timely_nexmark;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use dataflow_core::{Data, Stream, StreamEnvironment};
use dataflow_examples::nexmark::generator::{self, NexmarkConfig};
use dataflow_examples::nexmark::model::Event;
use dataflow_examples::nexmark::{queries, source};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const EVENTS: u64 = 1_000_000;

type Query = fn(&Stream<Event>, &Arc<AtomicU64>);
/// q5's result: per window start, the hottest `(auction, bids)`.
type HotItems = BTreeMap<i64, (u64, u64)>;

/// What a query's number of results is checked against.
enum Check {
    /// The batch computation's number of results.
    Batch(usize),
    /// The query's other runs (a rolling aggregate: its number of updates
    /// is fixed by the input).
    Runs,
    /// Nothing: the results depend on the clock (processing time, q12).
    Unchecked,
}

/// A timely-dataflow baseline of a query, run with a number of workers.
enum Baseline {
    /// A stateless query: its number of results, checked against the
    /// query's [`Check::Batch`].
    Count(fn(usize, &NexmarkConfig) -> u64),
    /// q5: its result per window, checked to be the batch computation (the
    /// second field).
    Windows(fn(usize, &NexmarkConfig) -> HotItems, HotItems),
}

impl Baseline {
    /// Runs the baseline once with `workers` workers, checking its result.
    fn run_checked(&self, name: &str, workers: usize, check: &Check) {
        let config = NexmarkConfig::new(EVENTS);
        match (self, check) {
            (Baseline::Count(f), Check::Batch(e)) => assert_eq!(
                f(workers, &config),
                *e as u64,
                "timely {name} with {workers} workers: results differ from the batch computation"
            ),
            (Baseline::Count(f), _) => {
                f(workers, &config);
            }
            (Baseline::Windows(f, want), _) => assert_eq!(
                &f(workers, &config),
                want,
                "timely {name} with {workers} workers: windows differ from the batch computation"
            ),
        }
    }

    /// Runs the baseline once with `workers` workers.
    fn run(&self, workers: usize) {
        let config = NexmarkConfig::new(EVENTS);
        match self {
            Baseline::Count(f) => {
                std::hint::black_box(f(workers, &config));
            }
            Baseline::Windows(f, _) => {
                std::hint::black_box(f(workers, &config));
            }
        }
    }
}

/// Counts a query's results.
fn counted<T: Data>(s: Stream<T>, n: &Arc<AtomicU64>) {
    let n = n.clone();
    s.for_each(move |_| {
        n.fetch_add(1, Ordering::Relaxed);
    });
}

/// The queries, in the order of the run and the report: name, the job,
/// its check (computed over `events`), and its timely baseline if any. A
/// new query is one line here.
fn queries(events: &[Event]) -> Vec<(&'static str, Query, Check, Option<Baseline>)> {
    use Baseline::{Count, Windows};
    use Check::{Batch, Runs, Unchecked};
    use timely_nexmark as t;
    vec![
        ("q0", |s, n| counted(queries::q0(s), n), Batch(queries::q0_batch(events).len()), Some(Count(t::q0))),
        ("q1", |s, n| counted(queries::q1(s), n), Batch(queries::q1_batch(events).len()), Some(Count(t::q1))),
        ("q2", |s, n| counted(queries::q2(s), n), Batch(queries::q2_batch(events).len()), Some(Count(t::q2))),
        ("q3", |s, n| counted(queries::q3(s), n), Batch(queries::q3_batch(events).len()), None),
        ("q4", |s, n| counted(queries::q4(s), n), Runs, None),
        ("q5", |s, n| counted(queries::q5(s), n), Runs, Some(Windows(t::q5, queries::q5_batch(events)))),
        ("q7", |s, n| counted(queries::q7(s), n), Runs, None),
        ("q8", |s, n| counted(queries::q8(s), n), Batch(queries::q8_batch(events).len()), None),
        ("q11", |s, n| counted(queries::q11(s), n), Batch(queries::q11_batch(events).len()), None),
        ("q12", |s, n| counted(queries::q12(s), n), Unchecked, None),
    ]
}

/// Runs `query` once at parallelism `p`; its number of results.
fn run(rt: &tokio::runtime::Runtime, query: Query, p: usize) -> u64 {
    let env = StreamEnvironment::new().with_parallelism(p);
    let n = Arc::new(AtomicU64::new(0));
    query(&source(&env, &NexmarkConfig::new(EVENTS), 8), &n);
    rt.block_on(env.execute()).expect("the query runs");
    n.load(Ordering::Relaxed)
}

pub(crate) fn nexmark(c: &mut Criterion) {
    // A job at parallelism p runs on p worker threads, as timely's p
    // workers are p threads: p = 1 is one core.
    let runtimes: Vec<tokio::runtime::Runtime> = (1..=2)
        .map(|threads| {
            tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build().expect("a runtime")
        })
        .collect();
    let mut g = c.benchmark_group("nexmark");
    g.sample_size(10).measurement_time(Duration::from_secs(5)).throughput(Throughput::Elements(EVENTS));
    let all = queries(&generator::events(&NexmarkConfig::new(EVENTS)).collect::<Vec<_>>());
    let mut results: HashMap<&str, u64> = HashMap::new();
    let mut baselines = Vec::new();
    for (name, query, check, baseline) in all {
        for p in [1usize, 2] {
            let rt = &runtimes[p - 1];
            let got = run(rt, query, p);
            match check {
                Check::Batch(e) => {
                    assert_eq!(got, e as u64, "{name} at p={p}: results differ from the batch computation")
                }
                Check::Runs => {
                    assert_eq!(*results.entry(name).or_insert(got), got, "{name} at p={p}: results differ between runs")
                }
                Check::Unchecked => {}
            }
            g.bench_function(BenchmarkId::new(name, format!("p{p}")), |b| b.iter(|| run(rt, query, p)));
        }
        baselines.extend(baseline.map(|b| (name, b, check)));
    }
    // timely's runs come after all of ours: run in between, its worker
    // threads (new ones each run) slowed the next queries of ours by up to
    // a third (q2 at p = 1: 3.8 M events/s after timely's q1, 5.4 alone).
    for (name, baseline, check) in baselines {
        for workers in [1usize, 2] {
            baseline.run_checked(name, workers, &check);
            g.bench_function(BenchmarkId::new(name, format!("timely{workers}")), |b| b.iter(|| baseline.run(workers)));
        }
    }
    g.finish();
}

criterion_group!(benches, nexmark);

/// `criterion_main!(benches)`, then the report of the run (only when
/// benchmarking: not in `--test`, `--list` or `--profile-time` mode).
fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    if nexmark_report::benchmarking(std::env::args()) {
        let names: Vec<&str> = queries(&[]).into_iter().map(|q| q.0).collect();
        nexmark_report::report(&names, EVENTS);
    }
}
