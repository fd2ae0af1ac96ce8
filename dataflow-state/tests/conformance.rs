//! One conformance suite for every state backend: the same tests run
//! against each (`backend_suite!` below), including a property test that
//! compares a backend with a plain ordered map after every operation and
//! after a snapshot and restore, and tests with damaged snapshot files.

use dataflow_state::backend::{FjallBackend, FjallConfig, MemoryBackend, StateBackend, StateKey, format};
use dataflow_state::store::{KeyedStateStore, StateDescriptor, StateId, Ttl, TtlUpdate};
use dataflow_state::{KeyGroupRange, StateError};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

const ALL: KeyGroupRange = KeyGroupRange { start: 0, end: 128 };

fn k(kg: u16, state: u16, key: &[u8], user: &[u8]) -> StateKey {
    StateKey::new(kg, state, key, user)
}

fn scan(b: &dyn StateBackend, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    b.scan_prefix(prefix, &mut |k, v| {
        out.push((k.to_vec(), v.to_vec()));
        true
    })
    .unwrap();
    out
}

fn put_get_delete(b: &mut dyn StateBackend) {
    let key = k(5, 1, b"alice", b"");
    assert_eq!(b.get(&key).unwrap(), None);
    b.put(&key, b"1").unwrap();
    b.put(&key, b"2").unwrap();
    assert_eq!(b.get(&key).unwrap().as_deref(), Some(&b"2"[..]));
    assert_eq!(b.get(&k(5, 2, b"alice", b"")).unwrap(), None, "states are separate");
    assert_eq!(b.get(&k(6, 1, b"alice", b"")).unwrap(), None, "key groups are separate");
    b.delete(&key).unwrap();
    b.delete(&key).unwrap(); // deleting what is not there is fine
    assert_eq!(b.get(&key).unwrap(), None);
}

fn scans_are_ordered_and_bounded(b: &mut dyn StateBackend) {
    for (kg, st, key, user) in [
        (3u16, 1u16, &b"k"[..], &b"c"[..]),
        (3, 1, b"k", b"a"),
        (3, 1, b"k", b"b"),
        (3, 1, b"l", b"a"),
        (3, 2, b"k", b"a"),
        (2, 1, b"k", b"z"),
        (4, 1, b"k", b""),
    ] {
        b.put(&k(kg, st, key, user), user).unwrap();
    }
    let prefix = k(3, 1, b"k", b"");
    let got: Vec<Vec<u8>> = scan(b, prefix.as_bytes()).into_iter().map(|(_, v)| v).collect();
    assert_eq!(got, [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
    let whole_group = scan(b, &3u16.to_be_bytes());
    assert_eq!(whole_group.len(), 5);
    assert!(whole_group.windows(2).all(|w| w[0].0 < w[1].0), "key order");
    // Stopping early.
    let mut n = 0;
    b.scan_prefix(&3u16.to_be_bytes(), &mut |_, _| {
        n += 1;
        n < 2
    })
    .unwrap();
    assert_eq!(n, 2);
    b.delete_prefix(prefix.as_bytes()).unwrap();
    assert!(scan(b, prefix.as_bytes()).is_empty());
    assert_eq!(scan(b, &3u16.to_be_bytes()).len(), 2);
}

fn snapshots_are_isolated_and_round_trip(b: &mut dyn StateBackend, fresh: &mut dyn StateBackend, dir: &Path) {
    for i in 0..200u32 {
        b.put(&k((i % 128) as u16, 1, &i.to_be_bytes(), b""), &i.to_le_bytes()).unwrap();
    }
    let snap = b.snapshot(ALL).unwrap();
    // Changes after the synchronous part are not in the snapshot.
    b.put(&k(0, 1, &0u32.to_be_bytes(), b""), b"changed").unwrap();
    b.put(&k(9, 9, b"new", b""), b"new").unwrap();
    b.delete(&k(1, 1, &1u32.to_be_bytes(), b"")).unwrap();
    let file = dir.join("snap");
    assert_eq!(snap.write_to(&file, &[]).unwrap(), 200);
    fresh.restore(&[&file], ALL).unwrap();
    for i in 0..200u32 {
        let got = fresh.get(&k((i % 128) as u16, 1, &i.to_be_bytes(), b"")).unwrap();
        assert_eq!(got, Some(i.to_le_bytes().to_vec()), "entry {i}");
    }
    assert_eq!(fresh.get(&k(9, 9, b"new", b"")).unwrap(), None);
}

fn restores_a_key_group_subset_from_several_files(
    a: &mut dyn StateBackend,
    b: &mut dyn StateBackend,
    target: &mut dyn StateBackend,
    dir: &Path,
) {
    // Two subtasks of parallelism 2 own key groups 0..64 and 64..128.
    let (low, high) = (KeyGroupRange::new(0, 64), KeyGroupRange::new(64, 128));
    for kg in 0..128u16 {
        let owner: &mut dyn StateBackend = if kg < 64 { &mut *a } else { &mut *b };
        owner.put(&k(kg, 1, b"key", b""), &kg.to_be_bytes()).unwrap();
    }
    let (fa, fb) = (dir.join("a.snap"), dir.join("b.snap"));
    a.snapshot(low).unwrap().write_to(&fa, &[]).unwrap();
    b.snapshot(high).unwrap().write_to(&fb, &[]).unwrap();
    // Subtask 1 of 3 (key groups 43..86) takes its part of both files.
    let mine = KeyGroupRange::for_operator(128, 3, 1).unwrap();
    target.restore(&[&fa, &fb], mine).unwrap();
    for kg in 0..128u16 {
        let got = target.get(&k(kg, 1, b"key", b"")).unwrap();
        let want = mine.contains(u32::from(kg)).then(|| kg.to_be_bytes().to_vec());
        assert_eq!(got, want, "key group {kg}");
    }
}

/// The asynchronous part of a snapshot runs while the backend keeps
/// taking writes; the snapshot holds the state of its synchronous part.
fn processing_continues_during_the_asynchronous_part(
    b: &mut (dyn StateBackend + 'static),
    restored: &mut dyn StateBackend,
    dir: &Path,
) {
    for i in 0..50_000u32 {
        b.put(&k((i % 128) as u16, 1, &i.to_be_bytes(), b""), &[7; 32]).unwrap();
    }
    let snap = b.snapshot(ALL).unwrap(); // the synchronous part
    let file = dir.join("async");
    let writing = std::thread::spawn(move || snap.write_to(&file, &[]));
    let mut during = 0u64;
    while !writing.is_finished() {
        let i = 1_000_000 + during as u32;
        b.put(&k((i % 128) as u16, 1, &i.to_be_bytes(), b""), &[1; 32]).unwrap();
        during += 1;
    }
    assert_eq!(writing.join().unwrap().unwrap(), 50_000);
    assert!(during > 0, "no operation ran while the snapshot was written");
    restored.restore(&[&dir.join("async")], ALL).unwrap();
    assert_eq!(scan(restored, &[]).len(), 50_000, "{during} writes during the snapshot leaked into it");
}

/// Flipped bytes or a truncation anywhere: a typed error naming the file
/// (or, if the flip hit a value byte the checksums cover, still an error),
/// never a panic and never silently different data.
fn damaged_files_give_typed_errors(b: &mut dyn StateBackend, fresh: &mut dyn StateBackend, dir: &Path) {
    for i in 0..300u32 {
        b.put(&k((i % 128) as u16, 1, &i.to_be_bytes(), b""), &i.to_le_bytes()).unwrap();
    }
    let file = dir.join("good");
    b.snapshot(ALL).unwrap().write_to(&file, &[]).unwrap();
    let good = std::fs::read(&file).unwrap();
    let bad = dir.join("bad");
    let step = (good.len() / 97).max(1);
    for pos in (0..good.len()).step_by(step).chain([good.len() - 1]) {
        for damage in ["flip", "truncate"] {
            let mut bytes = good.clone();
            match damage {
                "flip" => bytes[pos] ^= 0x5a,
                _ => bytes.truncate(pos),
            }
            std::fs::write(&bad, &bytes).unwrap();
            match fresh.restore(&[&bad], ALL) {
                Err(StateError::Corrupt { file, .. }) => assert!(file.ends_with("bad"), "{file}"),
                other => panic!("{damage} at {pos} of {}: {other:?}", good.len()),
            }
        }
    }
    // A file that does not exist is an I/O error naming it.
    let missing = dir.join("missing");
    assert!(matches!(fresh.restore(&[&missing], ALL), Err(StateError::Io { file, .. }) if file.ends_with("missing")));
}

/// Every typed primitive on top of the backend, per key.
fn typed_primitives(b: Box<dyn StateBackend>) {
    let mut st = KeyedStateStore::new(b, 128);
    let value = st.register(&StateDescriptor::<String>::new("value"));
    let sum = st.register(&StateDescriptor::<u64>::new("sum"));
    let list = st.register(&StateDescriptor::<(u32, String)>::new("list"));
    let map = st.register(&StateDescriptor::<(u32, i64)>::new("map"));
    let again = st.register(&StateDescriptor::<String>::new("value"));
    st.set_current_key(&0u32);
    st.set_value(&again, &"same state".to_string()).unwrap();
    assert_eq!(st.value(&value).unwrap().as_deref(), Some("same state"), "one name, one state");
    for key in 0..50u32 {
        st.set_current_key(&key);
        st.set_value(&value, &format!("v{key}")).unwrap();
        for i in 0..=key % 5 {
            st.update(&sum, u64::from(i), |acc, v| acc.unwrap_or(0) + v).unwrap();
            st.list_add(&list, &(i, format!("e{i}"))).unwrap();
        }
        for uk in [30u32, 2, 1_000, 7] {
            st.map_put(&map, &uk, &(i64::from(uk) * i64::from(key))).unwrap();
        }
        st.map_remove(&map, &2).unwrap();
    }
    for key in 0..50u32 {
        st.set_current_key(&key);
        assert_eq!(st.value(&value).unwrap(), Some(format!("v{key}")));
        let n = u64::from(key % 5);
        assert_eq!(st.value(&sum).unwrap(), Some(n * (n + 1) / 2));
        let want: Vec<(u32, String)> = (0..=key % 5).map(|i| (i, format!("e{i}"))).collect();
        assert_eq!(st.list(&list).unwrap(), want);
        let entries = st.map_entries(&map).unwrap();
        let k = i64::from(key);
        assert_eq!(entries, [(7, 7 * k), (30, 30 * k), (1_000, 1_000 * k)], "numeric order of the map keys");
        assert_eq!(st.map_get(&map, &30).unwrap(), Some(30 * k));
        assert_eq!(st.map_get(&map, &2).unwrap(), None);
    }
    st.set_current_key(&3u32);
    st.clear(&list).unwrap();
    assert!(st.list(&list).unwrap().is_empty());
    st.set_current_key(&4u32);
    assert_eq!(st.list(&list).unwrap().len(), 5, "clearing one key leaves the others");
}

/// Expired values are never returned; reading renews them only with
/// `OnReadAndWrite`.
fn ttl(b: Box<dyn StateBackend>) {
    let mut st = KeyedStateStore::new(b, 128);
    let write = st.register(&StateDescriptor::<u32>::new("w").with_ttl(Ttl::new(Duration::from_millis(100))));
    let read = st.register(
        &StateDescriptor::<u32>::new("r")
            .with_ttl(Ttl::new(Duration::from_millis(100)).with_update(TtlUpdate::OnReadAndWrite)),
    );
    let list = st.register(&StateDescriptor::<u32>::new("l").with_ttl(Ttl::new(Duration::from_millis(100))));
    st.set_current_key(&"k".to_string());
    st.set_now(1_000);
    st.set_value(&write, &1).unwrap();
    st.set_value(&read, &2).unwrap();
    st.list_add(&list, &1).unwrap();
    st.set_now(1_060);
    st.list_add(&list, &2).unwrap();
    assert_eq!(st.value(&write).unwrap(), Some(1));
    assert_eq!(st.value(&read).unwrap(), Some(2)); // renewed to 1 160
    st.set_now(1_100);
    assert_eq!(st.value(&write).unwrap(), None, "expired at 1 100");
    assert_eq!(st.value(&read).unwrap(), Some(2));
    assert_eq!(st.list(&list).unwrap(), [2], "the first element expired, the second not");
    st.set_now(1_200);
    assert_eq!(st.value(&read).unwrap(), None);
    assert!(st.list(&list).unwrap().is_empty());
}

/// Entries of TTL states that have expired at snapshot time are left out
/// of the snapshot file; live TTL entries and entries without a TTL
/// survive a restore, and lists stay consistent.
fn snapshots_leave_out_expired_values(b: Box<dyn StateBackend>, fresh: Box<dyn StateBackend>, dir: &Path) {
    fn states(st: &mut KeyedStateStore) -> ([StateId<u32>; 4], StateId<(u32, u32)>) {
        let ttl = |ms| Ttl::new(Duration::from_millis(ms));
        let values = [
            st.register(&StateDescriptor::<u32>::new("plain")),
            st.register(&StateDescriptor::<u32>::new("short").with_ttl(ttl(100))),
            st.register(&StateDescriptor::<u32>::new("long").with_ttl(ttl(1_000))),
            st.register(&StateDescriptor::<u32>::new("list").with_ttl(ttl(100))),
        ];
        (values, st.register(&StateDescriptor::new("map").with_ttl(ttl(100))))
    }
    let count = |file: &Path| {
        let mut n = 0;
        format::read_file(file, ALL, &mut |_, _| {
            n += 1;
            Ok(())
        })
        .unwrap();
        n
    };
    let mut st = KeyedStateStore::new(b, 128);
    let ([plain, short, long, list], map) = states(&mut st);
    for key in 0..20u32 {
        st.set_current_key(&key);
        st.set_now(1_000); // entries written now expire at 1 100 ("long": 2 000)
        st.set_value(&plain, &key).unwrap();
        st.set_value(&short, &key).unwrap();
        st.set_value(&long, &key).unwrap();
        st.list_add(&list, &0).unwrap();
        st.list_add(&list, &1).unwrap();
        st.map_put(&map, &1, &key).unwrap();
        st.set_now(1_050); // and these at 1 150
        st.map_put(&map, &2, &key).unwrap();
        if key < 10 {
            st.list_add(&list, &2).unwrap();
        }
    }
    let (before, after) = (dir.join("before"), dir.join("after"));
    st.snapshot(ALL).unwrap().write_to(&before, &st.infos()).unwrap();
    // Per key: plain, short, long, two map entries, a list length and its
    // elements (3 for keys 0..10, 2 for 10..20).
    assert_eq!(count(&before), 20 * 6 + 10 * 3 + 10 * 2);
    st.set_now(1_120);
    st.snapshot(ALL).unwrap().write_to(&after, &st.infos()).unwrap();
    // Left: plain, long, map entry 2, and for keys 0..10 the list length
    // and element 2 (keys 10..20: the whole list expired).
    assert_eq!(count(&after), 20 * 3 + 10 * 2);
    st.set_current_key(&3u32);
    assert_eq!(st.value(&plain).unwrap(), Some(3), "the backend keeps what the snapshot left out");

    let mut r = KeyedStateStore::new(fresh, 128);
    let ([plain, short, long, list], map) = states(&mut r);
    r.restore(&[&after], ALL).unwrap();
    r.set_now(1_120);
    for key in 0..20u32 {
        r.set_current_key(&key);
        assert_eq!(r.value(&plain).unwrap(), Some(key));
        assert_eq!(r.value(&short).unwrap(), None);
        assert_eq!(r.value(&long).unwrap(), Some(key));
        assert_eq!(r.map_entries(&map).unwrap(), [(2, key)]);
        let want: &[u32] = if key < 10 { &[2] } else { &[] };
        assert_eq!(r.list(&list).unwrap(), want, "key {key}");
        r.list_add(&list, &9).unwrap();
        let want: &[u32] = if key < 10 { &[2, 9] } else { &[9] };
        assert_eq!(r.list(&list).unwrap(), want, "key {key} after an append");
    }
}

/// A value written as one type and read as another is a typed error
/// naming the state and key group.
fn decode_errors_name_the_state(b: Box<dyn StateBackend>) {
    let mut st = KeyedStateStore::new(b, 128);
    let as_string = st.register(&StateDescriptor::<String>::new("name"));
    st.set_current_key(&9u64);
    st.set_value(&as_string, &"\u{fffd}not a number at all, too long for a u8".to_string()).unwrap();
    let file = tempfile::NamedTempFile::new().unwrap();
    st.snapshot(ALL).unwrap().write_to(file.path(), &st.infos()).unwrap();
    let mut wrong = KeyedStateStore::new(Box::new(MemoryBackend::new()), 128);
    let as_bool = wrong.register(&StateDescriptor::<Vec<bool>>::new("name"));
    wrong.restore(&[file.path()], ALL).unwrap();
    wrong.set_current_key(&9u64);
    match wrong.value(&as_bool) {
        Err(StateError::Decode { state, key_group, .. }) => {
            assert_eq!(state, "name");
            assert_eq!(key_group, dataflow_state::key_group::assign_to_key_group(&9u64, 128));
        }
        other => panic!("{other:?}"),
    }
}

/// An operation of the property test.
#[derive(Clone, Debug)]
enum Op {
    Put(u16, u8, u8, Vec<u8>),
    Delete(u16, u8, u8),
    DeletePrefix(u16, u8),
    SnapshotRestore,
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        6 => (0u16..8, 0u8..3, 0u8..6, prop::collection::vec(any::<u8>(), 0..6)).prop_map(|(g, s, u, v)| Op::Put(g, s, u, v)),
        3 => (0u16..8, 0u8..3, 0u8..6).prop_map(|(g, s, u)| Op::Delete(g, s, u)),
        1 => (0u16..8, 0u8..3).prop_map(|(g, s)| Op::DeletePrefix(g, s)),
        1 => Just(Op::SnapshotRestore),
    ];
    prop::collection::vec(op, 1..60)
}

/// Applies `ops` to a backend and to a `BTreeMap`, comparing after every
/// step; a snapshot/restore replaces the backend by a fresh one restored
/// from the snapshot file.
fn matches_a_model(
    mut make: impl FnMut(&Path) -> Box<dyn StateBackend>,
    ops: &[Op],
    dir: &Path,
) -> Result<(), TestCaseError> {
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut backend = make(&dir.join("b0"));
    for (n, op) in ops.iter().enumerate() {
        match op {
            Op::Put(g, s, u, v) => {
                let key = k(*g, u16::from(*s), b"key", &[*u]);
                backend.put(&key, v).unwrap();
                model.insert(key.as_bytes().to_vec(), v.clone());
            }
            Op::Delete(g, s, u) => {
                let key = k(*g, u16::from(*s), b"key", &[*u]);
                backend.delete(&key).unwrap();
                model.remove(key.as_bytes());
            }
            Op::DeletePrefix(g, s) => {
                let prefix = k(*g, u16::from(*s), b"key", b"");
                backend.delete_prefix(prefix.as_bytes()).unwrap();
                model.retain(|k, _| !k.starts_with(prefix.as_bytes()));
            }
            Op::SnapshotRestore => {
                let file = dir.join(format!("snap{n}"));
                backend.snapshot(ALL).unwrap().write_to(&file, &[]).unwrap();
                backend = make(&dir.join(format!("b{}", n + 1)));
                backend.restore(&[&file], ALL).unwrap();
            }
        }
        let all: BTreeMap<Vec<u8>, Vec<u8>> = scan(backend.as_ref(), &[]).into_iter().collect();
        prop_assert_eq!(&all, &model, "after step {} ({:?})", n, op);
    }
    Ok(())
}

/// The whole suite for one backend, made by `$make(&Path)`.
macro_rules! backend_suite {
    ($name:ident, $make:expr) => {
        mod $name {
            use super::*;

            fn make(dir: &Path) -> Box<dyn StateBackend> {
                std::fs::create_dir_all(dir).unwrap();
                Box::new(($make)(dir))
            }

            fn tmp() -> tempfile::TempDir {
                tempfile::tempdir().unwrap()
            }

            #[test]
            fn put_get_delete() {
                let d = tmp();
                super::put_get_delete(make(&d.path().join("b")).as_mut());
            }

            #[test]
            fn scans_are_ordered_and_bounded() {
                let d = tmp();
                super::scans_are_ordered_and_bounded(make(&d.path().join("b")).as_mut());
            }

            #[test]
            fn snapshots_are_isolated_and_round_trip() {
                let d = tmp();
                let (mut a, mut b) = (make(&d.path().join("a")), make(&d.path().join("b")));
                super::snapshots_are_isolated_and_round_trip(a.as_mut(), b.as_mut(), d.path());
                // And across backends: into the in-memory one.
                let mut m = MemoryBackend::new();
                m.restore(&[&d.path().join("snap")], ALL).unwrap();
                assert_eq!(scan(&m, &[]).len(), 200);
            }

            #[test]
            fn restores_a_key_group_subset_from_several_files() {
                let d = tmp();
                let (mut a, mut b, mut t) =
                    (make(&d.path().join("a")), make(&d.path().join("b")), make(&d.path().join("t")));
                super::restores_a_key_group_subset_from_several_files(a.as_mut(), b.as_mut(), t.as_mut(), d.path());
            }

            #[test]
            fn processing_continues_during_the_asynchronous_part() {
                let d = tmp();
                let (mut a, mut r) = (make(&d.path().join("a")), make(&d.path().join("r")));
                super::processing_continues_during_the_asynchronous_part(a.as_mut(), r.as_mut(), d.path());
            }

            #[test]
            fn damaged_files_give_typed_errors() {
                let d = tmp();
                let (mut a, mut r) = (make(&d.path().join("a")), make(&d.path().join("r")));
                super::damaged_files_give_typed_errors(a.as_mut(), r.as_mut(), d.path());
            }

            #[test]
            fn typed_primitives() {
                let d = tmp();
                super::typed_primitives(make(&d.path().join("b")));
            }

            #[test]
            fn ttl() {
                let d = tmp();
                super::ttl(make(&d.path().join("b")));
            }

            #[test]
            fn snapshots_leave_out_expired_values() {
                let d = tmp();
                let (a, r) = (make(&d.path().join("a")), make(&d.path().join("r")));
                super::snapshots_leave_out_expired_values(a, r, d.path());
            }

            #[test]
            fn decode_errors_name_the_state() {
                let d = tmp();
                super::decode_errors_name_the_state(make(&d.path().join("b")));
            }

            proptest! {
                #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]
                #[test]
                fn matches_a_model(ops in ops()) {
                    let d = tmp();
                    super::matches_a_model(make, &ops, d.path())?;
                }
            }
        }
    };
}

backend_suite!(memory, |_dir: &Path| MemoryBackend::new());
backend_suite!(fjall, |dir: &Path| FjallBackend::open(FjallConfig::new(dir)).unwrap());
