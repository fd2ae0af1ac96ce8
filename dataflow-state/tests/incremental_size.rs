//! The size of an incremental snapshot: after a full snapshot of a state
//! table, 1% of its keys change (half updated, half deleted); the delta
//! holds only those and is at most 5% of the full file, and the two
//! restore to the right state. (How much change tracking costs per access
//! is measured by `cargo bench --bench incremental`.)

use dataflow_state::table::{FjallStateConfig, StateBackendConfig, StateTable, TableSpec};
use dataflow_state::{KeyGroupRange, StateError, ValueState};

/// With `n` keys, a full snapshot and then 1% of the keys changed (half
/// updated, half deleted): the delta's bytes over the full file's.
fn delta_ratio(backend: &StateBackendConfig, n: u64) -> (u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let spec = TableSpec::new("values", 128, KeyGroupRange::new(0, 128)).with_incremental(true);
    let mut t = StateTable::<u64, ValueState<u64>>::open(backend, spec, "t").unwrap();
    let put = |t: &mut StateTable<u64, ValueState<u64>>, k: u64, v: Option<u64>| {
        t.with_state(&k, |s| {
            match v {
                Some(v) => s.update(v),
                None => s.clear(),
            }
            Ok::<_, StateError>(((), v.is_none()))
        })
        .unwrap()
    };
    t.with_states((0..n).map(|k| (k, k)), |_, v, s| {
        s.update(v);
        Ok::<_, StateError>(false)
    })
    .unwrap();
    let (full, delta) = (dir.path().join("full"), dir.path().join("delta"));
    let started = std::time::Instant::now();
    assert_eq!(t.snapshot(Vec::new()).unwrap().write_to(&full).unwrap(), n);
    let full_took = started.elapsed();
    let changed = n / 100;
    for i in 0..changed {
        let k = i * 100 + 7; // spread over the key space
        put(&mut t, k, (i % 2 == 0).then_some(k + 1));
    }
    let started = std::time::Instant::now();
    assert_eq!(t.snapshot_changes(Vec::new()).unwrap().write_to(&delta).unwrap(), changed);
    eprintln!("  snapshot and write: full {full_took:?}, delta {:?}", started.elapsed());
    // And it restores.
    let mut u = StateTable::<u64, ValueState<u64>>::open(
        &StateBackendConfig::InMemory,
        TableSpec::new("values", 128, KeyGroupRange::new(0, 128)),
        "u",
    )
    .unwrap();
    u.restore(&[&full, &delta]).unwrap();
    for k in [7, 107, 207, 8, n - 1] {
        let want = match (k % 100, (k / 100) % 2) {
            (7, 0) => Some(k + 1),
            (7, _) => None,
            _ => Some(k),
        };
        assert_eq!(u.get(&k).unwrap().and_then(|s| s.value().copied()), want, "key {k}");
    }
    (std::fs::metadata(&full).unwrap().len(), std::fs::metadata(&delta).unwrap().len())
}

fn assert_small_delta(name: &str, backend: &StateBackendConfig, n: u64) {
    let (full, delta) = delta_ratio(backend, n);
    let ratio = delta as f64 / full as f64;
    eprintln!("{name}, {n} keys: full {full} bytes, delta {delta} bytes, ratio {ratio:.4}");
    assert!(ratio <= 0.05, "{name}: {delta} / {full}");
}

/// 1M keys in memory, 1% of them changed after a full snapshot (half
/// updated, half deleted): the delta is at most 5% of the full file.
#[test]
fn a_delta_of_one_percent_is_small_in_memory() {
    assert_small_delta("memory", &StateBackendConfig::InMemory, 1_000_000);
}

/// The same on fjall, with 200k keys (1M take about 10 s in a debug build).
#[test]
fn a_delta_of_one_percent_is_small_on_fjall() {
    let dir = tempfile::tempdir().unwrap();
    assert_small_delta("fjall", &StateBackendConfig::Fjall(FjallStateConfig::new(dir.path())), 200_000);
}
