//! The runtime's state tables (in memory; fjall with a tiny cache, so
//! states go through the store) against a plain `HashMap` model: random
//! operations, compared after every step, and after snapshots restored
//! into a fresh table of either kind.

use dataflow_state::table::{FjallStateConfig, StateBackendConfig, StateTable, TableSpec};
use dataflow_state::{KeyGroupRange, ListState, StateError};
use proptest::prelude::*;
use std::collections::HashMap;
use std::path::Path;

type State = ListState<u16>;

#[derive(Clone, Debug)]
enum Op {
    /// Appends to the key's list.
    Add(u16, u16),
    /// Empties the key's list (the table drops it).
    Clear(u16),
    /// Snapshots, then restores into a fresh table of kind `.0`.
    SnapshotRestore(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..40u16, any::<u16>()).prop_map(|(k, v)| Op::Add(k, v)),
        2 => (0..40u16).prop_map(Op::Clear),
        1 => (0..3usize).prop_map(Op::SnapshotRestore),
    ]
}

fn backend(kind: usize, dir: &Path) -> StateBackendConfig {
    match kind {
        0 => StateBackendConfig::InMemory,
        1 => StateBackendConfig::Fjall(FjallStateConfig::new(dir)),
        _ => StateBackendConfig::Fjall(FjallStateConfig { cached_keys: 2, ..FjallStateConfig::new(dir) }),
    }
}

fn open(kind: usize, dir: &Path, n: usize) -> StateTable<u16, State> {
    let spec = TableSpec::new("lists", 128, KeyGroupRange::new(0, 128));
    StateTable::open(&backend(kind, dir), spec, &format!("table-{n}")).unwrap()
}

fn check(t: &mut StateTable<u16, State>, model: &HashMap<u16, Vec<u16>>) {
    for k in 0..40u16 {
        let got = t.get(&k).unwrap().map(|s| s.get().to_vec());
        assert_eq!(got, model.get(&k).cloned(), "key {k}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn tables_behave_like_a_hash_map(start in 0..3usize, ops in proptest::collection::vec(op(), 1..120)) {
        let dir = tempfile::tempdir().unwrap();
        let mut opened = 0;
        let mut t = open(start, dir.path(), opened);
        let mut model: HashMap<u16, Vec<u16>> = HashMap::new();
        for op in ops {
            match op {
                Op::Add(k, v) => {
                    t.with_state(&k, |s| { s.add(v); Ok::<_, StateError>(((), false)) }).unwrap();
                    model.entry(k).or_default().push(v);
                }
                Op::Clear(k) => {
                    t.with_state(&k, |s| { s.clear(); Ok::<_, StateError>(((), true)) }).unwrap();
                    model.remove(&k);
                }
                Op::SnapshotRestore(kind) => {
                    let snapshot = t.snapshot(Vec::new()).unwrap();
                    let file = dir.path().join(format!("snap-{opened}"));
                    snapshot.write_to(&file).unwrap();
                    opened += 1;
                    t = open(kind, dir.path(), opened);
                    prop_assert!(t.restore(&[&file]).unwrap().is_empty());
                }
            }
            check(&mut t, &model);
        }
    }
}
