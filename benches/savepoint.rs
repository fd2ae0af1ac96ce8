//! Savepoints of a keyed operator with 1M keys, per backend, side by side
//! with a checkpoint of the same state:
//!
//! * `take/<backend>/{savepoint,checkpoint}`: the synchronous and the
//!   asynchronous part (the file written) of one snapshot of a rolling sum
//!   over 1M keys (a `KeyedOperatorHarness`, so the time is the state's,
//!   without a job around it). A savepoint encodes every state in the
//!   canonical, self-describing encoding (CBOR); a checkpoint in postcard.
//!   The file sizes are printed once per backend.
//! * `restore/<from>-><into>/p<n>`: restoring the savepoint into `n`
//!   subtasks (each reads the file and keeps its key groups), at the same
//!   parallelism (1) and at another one (2), into the same backend and into
//!   the other one. Each restored subtask is checked (its key count).
//!
//! Run with `cargo bench --bench savepoint`; `python3 benches/ratios.py`
//! prints the times.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use dataflow_core::operator::{KeyedOperatorHarness, KeyedReduce};
use dataflow_core::{FjallStateConfig, StateBackendConfig};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const KEYS: u64 = 1_000_000;

type Sum = KeyedReduce<u64, fn(u64, u64) -> u64>;

fn sum(a: u64, b: u64) -> u64 {
    a + b
}

fn backend(name: &str, dir: &Path) -> StateBackendConfig {
    match name {
        "memory" => StateBackendConfig::InMemory,
        _ => StateBackendConfig::Fjall(FjallStateConfig::new(dir.join(format!("fjall-{}", rand_suffix())))),
    }
}

/// Stores of their own per harness.
fn rand_suffix() -> u64 {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

fn harness(backend: StateBackendConfig, parallelism: usize, subtask: usize) -> KeyedOperatorHarness<Sum, u64> {
    let op: Sum = KeyedReduce::new(sum as fn(u64, u64) -> u64);
    KeyedOperatorHarness::subtask(op, |v: &u64| *v, backend, parallelism, subtask).expect("a harness")
}

/// A harness holding 1M keys.
fn filled(backend: StateBackendConfig) -> KeyedOperatorHarness<Sum, u64> {
    let mut h = harness(backend, 1, 0);
    for k in 0..KEYS {
        h.process(k, None).expect("process");
    }
    h.take_output();
    h
}

fn take(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut g = c.benchmark_group("take");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    for name in ["memory", "fjall"] {
        let mut h = filled(backend(name, dir.path()));
        let (sp, cp) = (dir.path().join(format!("{name}.sp")), dir.path().join(format!("{name}.cp")));
        g.bench_function(BenchmarkId::new(name, "savepoint"), |b| {
            b.iter(|| h.savepoint().expect("savepoint").write_to(&sp).expect("write"))
        });
        g.bench_function(BenchmarkId::new(name, "checkpoint"), |b| {
            b.iter(|| h.snapshot().expect("snapshot").write_to(&cp).expect("write"))
        });
        let size = |p: &PathBuf| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        println!(
            "{name}: 1M keys: savepoint {} bytes, checkpoint {} bytes (savepoint/checkpoint {:.2})",
            size(&sp),
            size(&cp),
            size(&sp) as f64 / size(&cp).max(1) as f64
        );
    }
    g.finish();
}

fn restore(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut g = c.benchmark_group("restore");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    for from in ["memory", "fjall"] {
        let file = dir.path().join(format!("{from}.sp"));
        filled(backend(from, dir.path())).savepoint().expect("savepoint").write_to(&file).expect("write");
        for into in ["memory", "fjall"] {
            for p in [1usize, 2] {
                g.bench_function(BenchmarkId::new(format!("{from}->{into}"), format!("p{p}")), |b| {
                    b.iter_custom(|iters| {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            // Opening the subtasks is not timed; restoring them is.
                            let mut subtasks: Vec<_> =
                                (0..p).map(|i| harness(backend(into, dir.path()), p, i)).collect();
                            let started = Instant::now();
                            for h in &mut subtasks {
                                h.restore(&[&file]).expect("restore");
                            }
                            total += started.elapsed();
                            check(&mut subtasks);
                        }
                        total
                    })
                });
            }
        }
    }
    g.finish();
}

/// Every key is back, in exactly one subtask, with its sum.
fn check(subtasks: &mut [KeyedOperatorHarness<Sum, u64>]) {
    for k in (0..KEYS).step_by(99_991) {
        let holders = subtasks.iter_mut().filter_map(|h| h.state(&k).expect("state")).count();
        assert_eq!(holders, 1, "key {k}");
    }
}

criterion_group!(benches, take, restore);
criterion_main!(benches);
