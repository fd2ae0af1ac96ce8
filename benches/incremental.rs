//! What change tracking (incremental checkpoints) costs per state access:
//! a state table with tracking off and on, side by side in one run, in
//! memory (10k, 100k and 1M keys) and on fjall (10k and 200k keys). Each
//! iteration accesses every key once in a scattered order, in batches as
//! the keyed operator does, then takes and writes a delta snapshot (not
//! timed), so tracking has something to forget each time.
//!
//! Run with `cargo bench --bench incremental`; `python3 benches/ratios.py`
//! prints accesses/s.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dataflow_state::table::{FjallStateConfig, StateBackendConfig, StateTable, TableSpec};
use dataflow_state::{KeyGroupRange, StateError, ValueState};
use std::time::{Duration, Instant};

type Table = StateTable<u64, ValueState<u64>>;

/// One access to every key, in a scattered order (as a hash partitioner's output).
fn pass(t: &mut Table, keys: u64) {
    let order = (0..keys).map(|i| ((i * 2_654_435_761) % keys, 1u64));
    t.with_states(order, |_, v, s| {
        *s.get_or_insert_with(|| 0) += v;
        Ok::<_, StateError>(false)
    })
    .expect("access");
}

fn tracking(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let fjall = || StateBackendConfig::Fjall(FjallStateConfig::new(dir.path()));
    let mut g = c.benchmark_group("tracking");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    for (name, backend, keys) in [
        ("memory", StateBackendConfig::InMemory, 10_000u64),
        ("memory", StateBackendConfig::InMemory, 100_000),
        ("memory", StateBackendConfig::InMemory, 1_000_000),
        ("fjall", fjall(), 10_000),
        ("fjall", fjall(), 200_000),
    ] {
        g.throughput(Throughput::Elements(keys));
        for incremental in [false, true] {
            let spec = TableSpec::new("v", 128, KeyGroupRange::new(0, 128)).with_incremental(incremental);
            let mut t = Table::open(&backend, spec, &format!("{name}-{keys}-{incremental}")).expect("a table");
            pass(&mut t, keys); // inserts every key
            let file = dir.path().join("delta");
            let id = BenchmarkId::new(format!("{name}-{keys}"), if incremental { "on" } else { "off" });
            g.bench_function(id, |b| {
                b.iter_custom(|iters| {
                    let mut spent = Duration::ZERO;
                    for _ in 0..iters {
                        let started = Instant::now();
                        pass(&mut t, keys);
                        spent += started.elapsed();
                        t.snapshot_changes(Vec::new()).expect("snapshot").write_to(&file).expect("write");
                    }
                    spent
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, tracking);
criterion_main!(benches);
