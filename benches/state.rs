//! Keyed state per backend, side by side in one run:
//!
//! * `state`: keyed state operations (value put/get/update, list
//!   append/iterate, map put/get) over 100k keys, on the in-memory and the
//!   fjall backend, through the state tables the keyed operators use
//!   (`StateTable`: typed states in memory, or an fjall store behind a
//!   cache of 65 536 decoded states, so 100k keys in key order mostly
//!   miss it);
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
use dataflow_state::table::{StateTable, TableSpec};
use dataflow_state::{KeyGroupRange, ListState, MapState, StateError, ValueState};
use events::{Event, environment, gen_event, runtime, share};
use std::hint::black_box;
use std::path::Path;
use std::sync::{Arc, Mutex};

const KEYS: u64 = 100_000;

/// A keyed operator's states on the job path: one state table per
/// primitive (as three operators would keep them; a table holds one
/// [`StateValue`](dataflow_state::StateValue) per key, so one table of a
/// tuple would encode the growing list with every value on fjall).
struct Fixture {
    value: StateTable<u64, ValueState<u64>>,
    list: StateTable<u64, ListState<u64>>,
    map: StateTable<u64, MapState<u32, u64>>,
    _dir: tempfile::TempDir,
}

fn fixture(backend: &str) -> Fixture {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = match backend {
        "memory" => StateBackendConfig::InMemory,
        _ => StateBackendConfig::Fjall(FjallStateConfig::new(dir.path())),
    };
    let spec = |name: &str| TableSpec::new(name, 128, KeyGroupRange::new(0, 128));
    Fixture {
        value: StateTable::open(&config, spec("value"), "value").expect("a table"),
        list: StateTable::open(&config, spec("list"), "list").expect("a table"),
        map: StateTable::open(&config, spec("map"), "map").expect("a table"),
        _dir: dir,
    }
}

/// Runs `f` on the state of `key` in `t` (as an operator does: every
/// access hands out the state as `&mut`); the state is never emptied.
fn with<S: dataflow_state::StateValue, R>(t: &mut StateTable<u64, S>, key: u64, f: impl FnOnce(&mut S) -> R) -> R {
    t.with_state(&key, |s| Ok::<_, StateError>((f(s), false))).expect("state access")
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("state");
    g.throughput(Throughput::Elements(KEYS)).sample_size(10);
    for backend in ["memory", "fjall"] {
        let mut f = fixture(backend);
        for k in 0..KEYS {
            with(&mut f.value, k, |s| s.update(k));
            with(&mut f.list, k, |s| s.add(k));
            with(&mut f.map, k, |s| s.put(k as u32, k));
        }
        let id = |op: &str| BenchmarkId::new(op, backend);
        g.bench_function(id("value_put"), |b| {
            b.iter(|| (0..KEYS).for_each(|k| with(&mut f.value, k, |s| s.update(k))))
        });
        // A read: a copy of the state (`get`, which does not renew or
        // write back).
        g.bench_function(id("value_get"), |b| {
            b.iter(|| {
                for k in 0..KEYS {
                    black_box(f.value.get(&k).expect("get"));
                }
            })
        });
        g.bench_function(id("value_update"), |b| {
            b.iter(|| (0..KEYS).for_each(|k| with(&mut f.value, k, |s| *s.get_or_insert_with(|| 0) += k)))
        });
        g.bench_function(id("list_iterate"), |b| {
            b.iter(|| {
                for k in 0..KEYS {
                    black_box(with(&mut f.list, k, |s| s.get().iter().sum::<u64>()));
                }
            })
        });
        g.bench_function(id("map_put"), |b| {
            b.iter(|| (0..KEYS).for_each(|k| with(&mut f.map, k, |s| _ = s.put((k % 7) as u32, k))))
        });
        g.bench_function(id("map_get"), |b| {
            b.iter(|| {
                for k in 0..KEYS {
                    black_box(with(&mut f.map, k, |s| s.get(&(k as u32)).copied()));
                }
            })
        });
        // Last: it grows the lists.
        g.bench_function(id("list_append"), |b| b.iter(|| (0..KEYS).for_each(|k| with(&mut f.list, k, |s| s.add(k)))));
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
