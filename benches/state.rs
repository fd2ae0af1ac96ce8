//! Keyed state per backend, side by side in one run:
//!
//! * `state`: keyed state operations (value put/get/update, list
//!   append/iterate, map put/get) over 100k keys, on the in-memory and the
//!   fjall backend (through `KeyedStateStore`);
//! * `keyed_pipeline`: the keyed job of `throughput.rs` (source → key_by →
//!   rolling sum per key over 10k keys → sink) over 2M records
//!   ([`PIPELINE_N`]), at parallelism 1 and 2, checked against a plain loop
//!   (record count and every key's final sum), with the job's state backend
//!   in memory (`memory/p`), on fjall with the default config, where all
//!   10k keys fit in the cache of decoded states (`fjall/p`), and on fjall
//!   with a cache of 1 000 keys per subtask (`fjall_small_cache/p`), where
//!   most accesses miss the cache and go to the LSM store (about 100 times
//!   slower: its iterations take seconds, so its 10 samples take about a
//!   minute; the others' iterations take about 50 ms).
//!
//! Run with `cargo bench --bench state`; `python3 benches/ratios.py`
//! prints ops/s (records/s) and the ratios fjall/in-memory.

#[allow(dead_code)] // only some of it is used here
mod events;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dataflow_core::connectors::Sink;
use dataflow_core::{Batch, BoxError, FjallStateConfig, StateBackendConfig, StreamEnvironment};
use dataflow_state::backend::{FjallBackend, FjallConfig, MemoryBackend, StateBackend};
use dataflow_state::store::{KeyedStateStore, StateDescriptor, StateId};
use events::{Event, environment, gen_event, runtime, share};
use std::hint::black_box;
use std::path::Path;
use std::sync::{Arc, Mutex};

const KEYS: u64 = 100_000;

struct Fixture {
    store: KeyedStateStore,
    value: StateId<u64>,
    list: StateId<u64>,
    map: StateId<(u32, u64)>,
    _dir: Option<tempfile::TempDir>,
}

fn fixture(backend: &str) -> Fixture {
    let (b, dir): (Box<dyn StateBackend>, _) = match backend {
        "memory" => (Box::new(MemoryBackend::new()), None),
        _ => {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let b = FjallBackend::open(FjallConfig::new(dir.path().join("fjall"))).expect("fjall");
            (Box::new(b), Some(dir))
        }
    };
    let mut store = KeyedStateStore::new(b, 128);
    let value = store.register(&StateDescriptor::new("value"));
    let list = store.register(&StateDescriptor::new("list"));
    let map = store.register(&StateDescriptor::new("map"));
    Fixture { store, value, list, map, _dir: dir }
}

fn each_key(f: &mut Fixture, mut op: impl FnMut(&mut Fixture, u64)) {
    for k in 0..KEYS {
        f.store.set_current_key(&k);
        op(f, k);
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("state");
    g.throughput(Throughput::Elements(KEYS)).sample_size(10);
    for backend in ["memory", "fjall"] {
        let mut f = fixture(backend);
        each_key(&mut f, |f, k| {
            let (v, l, m) = (f.value, f.list, f.map);
            f.store.set_value(&v, &k).unwrap();
            f.store.list_add(&l, &k).unwrap();
            f.store.map_put(&m, &(k as u32), &k).unwrap();
        });
        let id = |op: &str| BenchmarkId::new(op, backend);
        g.bench_function(id("value_put"), |b| {
            b.iter(|| each_key(&mut f, |f, k| f.store.set_value(&f.value.clone(), &k).unwrap()))
        });
        g.bench_function(id("value_get"), |b| {
            b.iter(|| {
                each_key(&mut f, |f, _| {
                    black_box(f.store.value(&f.value.clone()).unwrap());
                })
            })
        });
        g.bench_function(id("value_update"), |b| {
            b.iter(|| each_key(&mut f, |f, k| f.store.update(&f.value.clone(), k, |a, v| a.unwrap_or(0) + v).unwrap()))
        });
        g.bench_function(id("list_iterate"), |b| {
            b.iter(|| {
                each_key(&mut f, |f, _| {
                    black_box(f.store.list(&f.list.clone()).unwrap());
                })
            })
        });
        g.bench_function(id("map_put"), |b| {
            b.iter(|| each_key(&mut f, |f, k| f.store.map_put(&f.map.clone(), &((k % 7) as u32), &k).unwrap()))
        });
        g.bench_function(id("map_get"), |b| {
            b.iter(|| {
                each_key(&mut f, |f, k| {
                    black_box(f.store.map_get(&f.map.clone(), &(k as u32)).unwrap());
                })
            })
        });
        // Last: it grows the lists.
        g.bench_function(id("list_append"), |b| {
            b.iter(|| each_key(&mut f, |f, k| f.store.list_add(&f.list.clone(), &k).unwrap()))
        });
    }
    g.finish();
}

/// The records of one `keyed_pipeline` run.
const PIPELINE_N: u64 = 2_000_000;
/// The keys of `gen_event`.
const KEYS_IN_EVENTS: usize = 10_000;

/// The job's state backend in a `keyed_pipeline` run, by name, under `dir`.
fn backend(name: &str, dir: &Path) -> StateBackendConfig {
    match name {
        "memory" => StateBackendConfig::InMemory,
        "fjall" => StateBackendConfig::Fjall(FjallStateConfig::new(dir)),
        "fjall_small_cache" => {
            StateBackendConfig::Fjall(FjallStateConfig { cached_keys: 1_000, ..FjallStateConfig::new(dir) })
        }
        _ => unreachable!("unknown backend {name}"),
    }
}

/// What a `keyed_pipeline` run emitted, independent of the order in which
/// the subtasks' records meet: the number of records, and each key's final
/// total (its largest rolling sum: the values are not negative).
#[derive(Debug, PartialEq, Eq)]
struct Finals {
    count: u64,
    totals: Vec<u64>,
}

impl Finals {
    fn new() -> Self {
        Self { count: 0, totals: vec![0; KEYS_IN_EVENTS] }
    }

    fn merge(&mut self, other: &Self) {
        self.count += other.count;
        self.totals.iter_mut().zip(&other.totals).for_each(|(a, b)| *a = (*a).max(*b));
    }
}

/// Keeps each key's largest rolling sum per subtask; merges into `out` at
/// the end.
struct FinalsSink {
    finals: Finals,
    out: Arc<Mutex<Finals>>,
}

#[async_trait::async_trait]
impl Sink<(u32, u64)> for FinalsSink {
    async fn write_batch(&mut self, batch: &mut Batch<(u32, u64)>) -> Result<(), BoxError> {
        self.finals.count += batch.values().len() as u64;
        for &(k, s) in batch.values() {
            let t = &mut self.finals.totals[k as usize];
            *t = (*t).max(s);
        }
        batch.clear();
        Ok(())
    }

    async fn finish(&mut self) -> Result<(), BoxError> {
        self.out.lock().expect("finals").merge(&self.finals);
        Ok(())
    }
}

/// The keyed job of `throughput.rs` on the backend `backend_name` (for
/// fjall under a fresh temporary directory, which the job must leave
/// empty: it removes its stores).
fn keyed_job(rt: &tokio::runtime::Runtime, p: usize, n: u64, backend_name: &str) -> Finals {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let env = environment(p);
    env.set_state_backend(backend(backend_name, dir.path()));
    let out = Arc::new(Mutex::new(Finals::new()));
    let sink_out = out.clone();
    source(&env, n).key_by(|e: &Event| e.key).sum(|e: &Event| u64::from(e.value)).sink(
        "finals",
        move |_: &dataflow_core::OperatorInfo| FinalsSink { finals: Finals::new(), out: sink_out.clone() },
    );
    rt.block_on(env.execute()).expect("job");
    let left = std::fs::read_dir(dir.path()).expect("the temporary directory").count();
    assert_eq!(left, 0, "the job left its state stores behind");
    std::mem::replace(&mut *out.lock().expect("finals"), Finals::new())
}

fn source(env: &StreamEnvironment, n: u64) -> dataflow_core::Stream<Event> {
    env.from_parallel_iter(move |info| share(info.subtask, info.parallelism, n).map(gen_event))
}

/// The reference, computed by a plain loop.
fn keyed_reference(n: u64) -> Finals {
    let mut finals = Finals::new();
    for e in (0..n).map(gen_event) {
        finals.count += 1;
        finals.totals[e.key as usize] += u64::from(e.value);
    }
    finals
}

fn keyed_pipeline(c: &mut Criterion) {
    let rt = runtime();
    let expected = keyed_reference(PIPELINE_N);
    let mut g = c.benchmark_group("keyed_pipeline");
    g.throughput(Throughput::Elements(PIPELINE_N)).sample_size(10);
    for p in [1, 2] {
        for name in ["memory", "fjall", "fjall_small_cache"] {
            g.bench_with_input(BenchmarkId::new(name, p), &p, |b, &p| {
                b.iter(|| assert!(keyed_job(&rt, p, PIPELINE_N, name) == expected, "{name}/{p}: wrong totals"))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench, keyed_pipeline);
criterion_main!(benches);
