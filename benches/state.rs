//! Keyed state operations per backend, side by side in one run: value
//! put/get/update, list append/iterate, map put/get, over 100k keys, on the
//! in-memory and the fjall backend (through `KeyedStateStore`).
//!
//! Run with `cargo bench --bench state`; `python3 benches/ratios.py`
//! prints ops/s and the ratio fjall/in-memory.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dataflow_state::backend::{FjallBackend, FjallConfig, MemoryBackend, StateBackend};
use dataflow_state::store::{KeyedStateStore, StateDescriptor, StateId};
use std::hint::black_box;

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

criterion_group!(benches, bench);
criterion_main!(benches);
