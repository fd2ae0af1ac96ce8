//! One conformance suite for the state tables on every backend: the same
//! tests run on the in-memory (heap) tables and on fjall (with its default
//! cache and with a cache of two keys, so that nearly every access goes to
//! the store), through the public API the job path uses. Snapshots move
//! between backends: each test restores into every backend.
//!
//! (A property test comparing tables with a `HashMap` over random
//! operations, snapshots and restores: `table.rs`; incremental snapshots:
//! the crate's unit tests in `src/table/tests.rs`.)

use dataflow_state::backend::format;
use dataflow_state::key_group::assign_to_key_group;
use dataflow_state::table::{FjallStateConfig, StateBackendConfig, StateTable, TableSpec};
use dataflow_state::{
    AggregateFunction, AggregatingState, KeyGroupRange, ListState, MapState, Max, ReducingState, StateError, Sum, Ttl,
    ValueState,
};
use std::path::Path;
use std::time::Duration;

const MAXP: u32 = 128;
const ALL: KeyGroupRange = KeyGroupRange { start: 0, end: MAXP };

/// The backends: in memory, fjall, fjall with a cache of two keys.
const KINDS: [&str; 3] = ["memory", "fjall", "fjall-2-keys"];

fn backend(kind: &str, dir: &Path) -> StateBackendConfig {
    match kind {
        "memory" => StateBackendConfig::InMemory,
        "fjall" => StateBackendConfig::Fjall(FjallStateConfig::new(dir)),
        _ => StateBackendConfig::Fjall(FjallStateConfig { cached_keys: 2, ..FjallStateConfig::new(dir) }),
    }
}

/// A table named `name` of the key groups `range` (the store's directory
/// under `dir`, named after `name` too).
fn open<S: dataflow_state::StateValue>(kind: &str, dir: &Path, name: &str, range: KeyGroupRange) -> StateTable<u64, S> {
    StateTable::open(&backend(kind, dir), TableSpec::new("s", MAXP, range), name).unwrap()
}

fn set(t: &mut StateTable<u64, ValueState<u64>>, k: u64, v: u64) {
    t.with_state(&k, |s| Ok::<_, StateError>((s.update(v), false))).unwrap();
}

fn drop_state(t: &mut StateTable<u64, ValueState<u64>>, k: u64) {
    t.with_state(&k, |s| Ok::<_, StateError>((s.clear(), true))).unwrap();
}

fn value(t: &mut StateTable<u64, ValueState<u64>>, k: u64) -> Option<u64> {
    t.get(&k).unwrap().and_then(|s| s.value().copied())
}

/// How many state entries a snapshot file holds.
fn entries(file: &Path) -> usize {
    let mut n = 0;
    format::read_file(file, ALL, &mut |_, _| {
        n += 1;
        Ok(())
    })
    .unwrap();
    n
}

/// An average: the aggregating state of the suite.
struct Avg;

impl AggregateFunction for Avg {
    type In = u32;
    type Acc = (u64, u64);
    type Out = u64;
    fn create() -> (u64, u64) {
        (0, 0)
    }
    fn add(acc: &mut (u64, u64), value: u32) {
        *acc = (acc.0 + u64::from(value), acc.1 + 1);
    }
    fn merge(a: (u64, u64), b: (u64, u64)) -> (u64, u64) {
        (a.0 + b.0, a.1 + b.1)
    }
    fn result(acc: &(u64, u64)) -> u64 {
        acc.0 / acc.1.max(1)
    }
}

/// Every primitive in one state.
type All = (
    ValueState<String>,
    ListState<(u32, String)>,
    MapState<u32, i64>,
    ReducingState<u64, Sum>,
    ReducingState<i32, Max>,
    AggregatingState<Avg>,
);

/// Checks the state of `key` as [`typed_primitives_round_trip`] wrote it.
fn check_all(key: u64, s: &All) {
    let n = (key % 5) as u32;
    assert_eq!(s.0.value().map(String::as_str), Some(format!("v{key}").as_str()), "key {key}");
    let want: Vec<(u32, String)> = (0..=n).map(|i| (i, format!("e{i}"))).collect();
    assert_eq!(s.1.get(), want, "key {key}");
    let k = key as i64;
    let mut map: Vec<(u32, i64)> = s.2.iter().map(|(a, b)| (*a, *b)).collect();
    map.sort_unstable();
    assert_eq!(map, [(7, 7 * k), (30, 30 * k), (1_000, 1_000 * k)], "key {key}");
    assert_eq!(s.3.get(), Some(&u64::from(n * (n + 1) / 2)), "key {key}");
    assert_eq!(s.4.get(), Some(&(n as i32)), "key {key}");
    assert_eq!(s.5.get(), Some(u64::from(n) / 2), "key {key}");
}

/// Every primitive, per key, through a snapshot and a restore into every
/// backend.
#[test]
fn typed_primitives_round_trip() {
    for kind in KINDS {
        let dir = tempfile::tempdir().unwrap();
        let mut t = open::<All>(kind, dir.path(), "a", ALL);
        for key in 0..50u64 {
            t.with_state(&key, |s| {
                s.0.update(format!("v{key}"));
                for i in 0..=(key % 5) as u32 {
                    s.1.add((i, format!("e{i}")));
                    s.3.add(u64::from(i));
                    s.4.add(i as i32);
                    s.5.add(i);
                }
                for uk in [30u32, 2, 1_000, 7] {
                    s.2.put(uk, i64::from(uk) * key as i64);
                }
                s.2.remove(&2);
                Ok::<_, StateError>(((), false))
            })
            .unwrap();
        }
        for key in 0..50u64 {
            check_all(key, &t.get(&key).unwrap().unwrap());
        }
        assert!(t.get(&50).unwrap().is_none(), "{kind}: a key never accessed has no state");
        let file = dir.path().join("snap");
        assert_eq!(t.snapshot(Vec::new()).unwrap().write_to(&file).unwrap(), 50, "{kind}");
        for into in KINDS {
            let mut u = open::<All>(into, dir.path(), &format!("r-{into}"), ALL);
            u.restore(&[&file]).unwrap();
            for key in 0..50u64 {
                check_all(key, &u.get(&key).unwrap().unwrap());
            }
        }
    }
}

/// Changes after the synchronous part of a snapshot are not in it, also
/// when they happen while its asynchronous part runs on another thread.
#[test]
fn snapshots_are_isolated_and_processing_goes_on() {
    for kind in KINDS {
        let dir = tempfile::tempdir().unwrap();
        let mut t = open::<ValueState<u64>>(kind, dir.path(), "a", ALL);
        for k in 0..20_000 {
            set(&mut t, k, k);
        }
        let snap = t.snapshot(Vec::new()).unwrap(); // the synchronous part
        set(&mut t, 0, 999);
        drop_state(&mut t, 1);
        set(&mut t, 1_000_000, 1);
        let file = dir.path().join("snap");
        let writing = {
            let file = file.clone();
            std::thread::spawn(move || snap.write_to(&file))
        };
        let mut during = 0u64;
        while !writing.is_finished() || during == 0 {
            set(&mut t, 2_000_000 + during, during);
            set(&mut t, during % 20_000, 7); // overwrite what is being written
            during += 1;
        }
        assert_eq!(writing.join().unwrap().unwrap(), 20_000, "{kind}");
        assert_eq!(value(&mut t, 0), Some(7), "{kind}: the table went on");
        for into in KINDS {
            let mut u = open::<ValueState<u64>>(into, dir.path(), &format!("r-{into}"), ALL);
            u.restore(&[&file]).unwrap();
            for k in 0..20_000 {
                assert_eq!(value(&mut u, k), Some(k), "{kind} into {into}: key {k}");
            }
            assert_eq!(value(&mut u, 1_000_000), None, "{kind} into {into}");
            assert_eq!(value(&mut u, 2_000_000), None, "{kind} into {into}: written during the snapshot");
        }
    }
}

/// Two subtasks' files (key groups 0..64 and 64..128) restore into
/// subtask 1 of 3, which takes its key groups out of both and nothing else.
#[test]
fn restores_a_key_group_subset_from_several_files() {
    for kind in KINDS {
        let dir = tempfile::tempdir().unwrap();
        let mut files = Vec::new();
        for (i, range) in [KeyGroupRange::new(0, 64), KeyGroupRange::new(64, 128)].into_iter().enumerate() {
            let mut t = open::<ValueState<u64>>(kind, dir.path(), &format!("old-{i}"), range);
            for k in (0..2_000).filter(|k| range.contains(assign_to_key_group(k, MAXP))) {
                set(&mut t, k, k + 1);
            }
            let file = dir.path().join(format!("old-{i}.snap"));
            t.snapshot(Vec::new()).unwrap().write_to(&file).unwrap();
            files.push(file);
        }
        let refs: Vec<&Path> = files.iter().map(|f| f.as_path()).collect();
        let mine = KeyGroupRange::for_operator(MAXP, 3, 1).unwrap();
        for into in KINDS {
            let mut u = open::<ValueState<u64>>(into, dir.path(), &format!("new-{into}"), mine);
            u.restore(&refs).unwrap();
            for k in 0..2_000 {
                let held = mine.contains(assign_to_key_group(&k, MAXP));
                match u.get(&k) {
                    // In memory, a key of another subtask reads as absent;
                    // on fjall it is refused.
                    Ok(s) => {
                        let want = held.then_some(k + 1);
                        assert_eq!(s.and_then(|s| s.value().copied()), want, "{kind} into {into}: key {k}");
                    }
                    Err(StateError::ForeignKeyGroup { .. }) if !held => {}
                    Err(e) => panic!("{kind} into {into}: key {k}: {e}"),
                }
            }
            // A key of another subtask is refused, not kept.
            let foreign = (0..).find(|k| !mine.contains(assign_to_key_group(k, MAXP))).unwrap();
            let r = u.with_state(&foreign, |s| Ok::<_, StateError>((s.update(1), false)));
            assert!(matches!(r, Err(StateError::ForeignKeyGroup { .. })), "{kind} into {into}: {r:?}");
        }
    }
}

/// Flipped bytes or a truncation anywhere in a file: a typed error naming
/// it, never a panic and never silently different data; a missing file
/// is an I/O error naming it, with its cause.
#[test]
fn damaged_files_give_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = open::<ValueState<u64>>("memory", dir.path(), "a", ALL);
    for k in 0..300 {
        set(&mut t, k, k);
    }
    let file = dir.path().join("good");
    t.snapshot(Vec::new()).unwrap().write_to(&file).unwrap();
    let good = std::fs::read(&file).unwrap();
    let bad = dir.path().join("bad");
    for kind in KINDS {
        let step = (good.len() / 61).max(1);
        for pos in (0..good.len()).step_by(step).chain([good.len() - 1]) {
            for damage in ["flip", "truncate"] {
                let mut bytes = good.clone();
                match damage {
                    "flip" => bytes[pos] ^= 0x5a,
                    _ => bytes.truncate(pos),
                }
                std::fs::write(&bad, &bytes).unwrap();
                let mut u = open::<ValueState<u64>>(kind, dir.path(), "r", ALL);
                match u.restore(&[&bad]) {
                    Err(StateError::Corrupt { path, .. }) => assert_eq!(path, bad),
                    other => panic!("{kind}: {damage} at {pos} of {}: {other:?}", good.len()),
                }
            }
        }
        let missing = dir.path().join("missing");
        let mut u = open::<ValueState<u64>>(kind, dir.path(), "r", ALL);
        match u.restore(&[&missing]) {
            Err(StateError::Io { path, source }) => {
                assert_eq!(path, missing, "{kind}");
                assert_eq!(source.kind(), std::io::ErrorKind::NotFound, "{kind}");
            }
            other => panic!("{kind}: {other:?}"),
        }
    }
}

/// With a time to live: an expired state is never handed out (the key
/// starts empty), every access renews it, and a snapshot leaves expired
/// states out, so a restore does not bring them back.
#[test]
fn expired_states_are_gone() {
    for kind in KINDS {
        let dir = tempfile::tempdir().unwrap();
        let ttl = Some(Ttl::new(Duration::from_millis(100)));
        let spec = TableSpec { ttl, ..TableSpec::new("ttl", MAXP, ALL) };
        let mut t = StateTable::<u64, ValueState<u64>>::open(&backend(kind, dir.path()), spec.clone(), "a").unwrap();
        t.set_now(1_000);
        for k in 0..20 {
            set(&mut t, k, k); // expires at 1 100
        }
        t.set_now(1_060);
        for k in 0..10 {
            set(&mut t, k, k + 100); // renewed: expires at 1 160
        }
        assert_eq!(value(&mut t, 15), Some(15), "{kind}");
        t.set_now(1_100);
        assert_eq!(value(&mut t, 15), None, "{kind}: expired at 1 100");
        assert_eq!(value(&mut t, 5), Some(105), "{kind}: renewed");
        // An expired state is not handed to the function either.
        let seen = t.with_state(&16, |s| Ok::<_, StateError>((s.value().copied(), true))).unwrap();
        assert_eq!(seen, None, "{kind}");
        let file = dir.path().join("snap");
        t.snapshot(Vec::new()).unwrap().write_to(&file).unwrap();
        assert_eq!(entries(&file), 10, "{kind}: only the renewed states");
        for into in KINDS {
            let spec = spec.clone();
            let mut u = StateTable::<u64, ValueState<u64>>::open(&backend(into, dir.path()), spec, "r").unwrap();
            u.restore(&[&file]).unwrap();
            u.set_now(1_100);
            assert_eq!((0..20).filter_map(|k| value(&mut u, k)).count(), 10, "{kind} into {into}");
            u.set_now(1_160);
            assert_eq!(value(&mut u, 5), None, "{kind} into {into}: the expiry is restored");
        }
    }
}

/// A value written as one type and read as another is a typed error
/// naming the state and the key group (at the restore in memory, which
/// decodes every entry; at the first read on fjall, which decodes lazily).
#[test]
fn decode_errors_name_the_state() {
    for kind in KINDS {
        let dir = tempfile::tempdir().unwrap();
        let mut t = open::<ValueState<String>>(kind, dir.path(), "a", ALL);
        t.with_state(&9, |s| {
            s.update("\u{fffd}not a list of booleans, and long".to_string());
            Ok::<_, StateError>(((), false))
        })
        .unwrap();
        let file = dir.path().join("snap");
        t.snapshot(Vec::new()).unwrap().write_to(&file).unwrap();
        for into in KINDS {
            let mut wrong = open::<ValueState<Vec<bool>>>(into, dir.path(), &format!("w-{into}"), ALL);
            match wrong.restore(&[&file]).and_then(|_| wrong.get(&9)) {
                Err(StateError::Decode { state, key_group, .. }) => {
                    assert_eq!(state, "s", "{kind} into {into}");
                    assert_eq!(key_group, assign_to_key_group(&9u64, MAXP), "{kind} into {into}");
                }
                other => panic!("{kind} into {into}: {other:?}"),
            }
        }
    }
}
