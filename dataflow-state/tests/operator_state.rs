//! Operator (non-keyed) state: snapshot and restore at the same and at
//! another parallelism, with list (split), union list and broadcast
//! redistribution; damaged files; descriptors that do not match.

use dataflow_state::StateError;
use dataflow_state::operator_state::{BroadcastStateDescriptor, OperatorStateDescriptor, OperatorStateStore};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn list() -> OperatorStateDescriptor<u32> {
    OperatorStateDescriptor::list("offsets")
}

fn union() -> OperatorStateDescriptor<String> {
    OperatorStateDescriptor::union("seen")
}

fn broadcast() -> BroadcastStateDescriptor<String, i64> {
    BroadcastStateDescriptor::new("rules")
}

/// Writes one file per old subtask: `lists[i]` as subtask `i`'s list
/// state, its elements (as strings) as its union state, and `rules` as
/// everyone's broadcast state.
fn write_old(dir: &Path, lists: &[Vec<u32>], rules: &BTreeMap<String, i64>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for (i, elements) in lists.iter().enumerate() {
        let mut store = OperatorStateStore::new();
        store.list_state(&list()).unwrap().extend(elements);
        store.list_state(&union()).unwrap().extend(elements.iter().map(|e| format!("{i}:{e}")));
        store.broadcast_state(&broadcast()).unwrap().extend(rules.clone());
        let file = dir.join(format!("op-{i}"));
        store.snapshot().unwrap().write_to(&file).unwrap();
        files.push(file);
    }
    files
}

fn restore_all(files: &[PathBuf], parallelism: u32) -> Vec<OperatorStateStore> {
    let files: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    (0..parallelism).map(|i| OperatorStateStore::restore(&files, parallelism, i).unwrap()).collect()
}

fn sorted<T: Ord + Clone>(v: &[T]) -> Vec<T> {
    let mut v = v.to_vec();
    v.sort();
    v
}

fn rules() -> BTreeMap<String, i64> {
    BTreeMap::from([("max".to_string(), 10), ("min".to_string(), -3)])
}

#[test]
fn round_trip_at_the_same_parallelism() {
    let dir = tempfile::tempdir().unwrap();
    let lists = vec![vec![1, 2, 3, 4, 5], vec![], vec![6]];
    let files = write_old(dir.path(), &lists, &rules());
    let all_union: Vec<String> =
        lists.iter().enumerate().flat_map(|(i, l)| l.iter().map(move |e| format!("{i}:{e}"))).collect();
    for (i, mut store) in restore_all(&files, 3).into_iter().enumerate() {
        assert_eq!(*store.list_state(&list()).unwrap(), lists[i], "subtask {i} keeps its own elements");
        assert_eq!(*store.list_state(&union()).unwrap(), all_union);
        assert_eq!(*store.broadcast_state(&broadcast()).unwrap(), rules());
    }
}

#[test]
fn restored_states_not_asked_for_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_old(dir.path(), &[vec![7, 8]], &rules());
    let untouched = restore_all(&files, 1).remove(0);
    let again = dir.path().join("again");
    assert_eq!(untouched.snapshot().unwrap().write_to(&again).unwrap(), 2 + 2 + 2);
    let mut store = OperatorStateStore::restore(&[&again], 1, 0).unwrap();
    assert_eq!(*store.list_state(&list()).unwrap(), [7, 8]);
    assert_eq!(*store.broadcast_state(&broadcast()).unwrap(), rules());
}

#[test]
fn a_fresh_start_and_bad_indexes() {
    let mut store = OperatorStateStore::restore(&[], 2, 1).unwrap();
    assert!(store.list_state(&list()).unwrap().is_empty());
    assert!(matches!(
        OperatorStateStore::restore(&[], 2, 2),
        Err(StateError::InvalidSubtask { index: 2, parallelism: 2 })
    ));
    assert!(matches!(OperatorStateStore::restore(&[], 0, 0), Err(StateError::InvalidSubtask { .. })));
}

/// Old subtask lists for a rescale from `old` subtasks.
fn old_lists(old: usize) -> impl Strategy<Value = Vec<Vec<u32>>> {
    prop::collection::vec(prop::collection::vec(any::<u32>(), 0..25), old)
}

fn check_rescale(lists: &[Vec<u32>], rules: &BTreeMap<String, i64>, new: u32) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let files = write_old(dir.path(), lists, rules);
    let old_elements: Vec<u32> = lists.concat();
    let old_union: Vec<String> =
        lists.iter().enumerate().flat_map(|(i, l)| l.iter().map(move |e| format!("{i}:{e}"))).collect();
    let mut chunks = Vec::new();
    for (i, mut store) in restore_all(&files, new).into_iter().enumerate() {
        chunks.push(store.list_state(&list()).unwrap().clone());
        prop_assert_eq!(sorted(store.list_state(&union()).unwrap()), sorted(&old_union), "union at subtask {}", i);
        prop_assert_eq!(&*store.broadcast_state(&broadcast()).unwrap(), rules, "broadcast at subtask {}", i);
    }
    // List state: an exact partition of the old elements, in contiguous
    // chunks of nearly equal size.
    prop_assert_eq!(sorted(&chunks.concat()), sorted(&old_elements));
    prop_assert_eq!(chunks.concat(), old_elements);
    let sizes: Vec<usize> = chunks.iter().map(Vec::len).collect();
    let (min, max) = (sizes.iter().min().copied().unwrap_or(0), sizes.iter().max().copied().unwrap_or(0));
    prop_assert!(max - min <= 1, "chunk sizes {:?}", sizes);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn rescale_2_to_3(lists in old_lists(2), rules in prop::collection::btree_map(".{0,6}", any::<i64>(), 0..5)) {
        check_rescale(&lists, &rules, 3)?;
    }

    #[test]
    fn rescale_3_to_2(lists in old_lists(3), rules in prop::collection::btree_map(".{0,6}", any::<i64>(), 0..5)) {
        check_rescale(&lists, &rules, 2)?;
    }
}

#[test]
fn damaged_files_give_typed_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_old(dir.path(), &[(0..40).collect()], &rules());
    let good = std::fs::read(&files[0]).unwrap();
    let bad = dir.path().join("bad");
    for pos in 0..good.len() {
        for damage in ["flip", "truncate"] {
            let mut bytes = good.clone();
            match damage {
                "flip" => bytes[pos] ^= 0x5a,
                _ => bytes.truncate(pos),
            }
            std::fs::write(&bad, &bytes).unwrap();
            match OperatorStateStore::restore(&[&files[0], &bad], 1, 0) {
                Err(StateError::Corrupt { path, .. }) => assert!(path.ends_with("bad"), "{}", path.display()),
                other => panic!("{damage} at {pos} of {}: {other:?}", good.len()),
            }
        }
    }
    let missing = dir.path().join("missing");
    match OperatorStateStore::restore(&[&missing], 1, 0) {
        Err(StateError::Io { path, source }) => {
            assert_eq!(path, missing);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_keyed_state_file_is_not_operator_state() {
    use dataflow_state::table::{StateBackendConfig, StateTable, TableSpec};
    use dataflow_state::{KeyGroupRange, ValueState};
    let dir = tempfile::tempdir().unwrap();
    let spec = TableSpec::new("count", 128, KeyGroupRange::new(0, 128));
    let mut keyed = StateTable::<u32, ValueState<u32>>::open(&StateBackendConfig::InMemory, spec, "op").unwrap();
    keyed.with_state(&1, |s| Ok::<_, StateError>((s.update(1), false))).unwrap();
    let file = dir.path().join("keyed");
    keyed.snapshot(Vec::new()).unwrap().write_to(&file).unwrap();
    assert!(matches!(
        OperatorStateStore::restore(&[&file], 1, 0),
        Err(StateError::Corrupt { path, reason }) if path.ends_with("keyed") && reason.contains("'count'")
    ));
}

fn names_state(r: Result<impl Sized, StateError>, name: &str) {
    match r {
        Err(StateError::Decode { state, .. }) => assert_eq!(state, name),
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("expected an error for state '{name}'"),
    }
}

#[test]
fn registering_a_name_twice_with_another_kind_or_type_is_an_error() {
    let mut store = OperatorStateStore::new();
    store.list_state(&OperatorStateDescriptor::<u32>::list("a")).unwrap().push(1);
    names_state(store.list_state(&OperatorStateDescriptor::<u32>::union("a")), "a");
    names_state(store.list_state(&OperatorStateDescriptor::<String>::list("a")), "a");
    names_state(store.broadcast_state(&BroadcastStateDescriptor::<u32, u32>::new("a")), "a");
    store.broadcast_state(&BroadcastStateDescriptor::<u32, u32>::new("b")).unwrap();
    names_state(store.broadcast_state(&BroadcastStateDescriptor::<u32, i32>::new("b")), "b");
    names_state(store.list_state(&OperatorStateDescriptor::<u32>::list("b")), "b");
    assert_eq!(*store.list_state(&OperatorStateDescriptor::<u32>::list("a")).unwrap(), [1], "the state is unharmed");
}

#[test]
fn restored_states_check_kind_and_type_when_first_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = OperatorStateStore::new();
    store.list_state(&OperatorStateDescriptor::<u32>::list("a")).unwrap().extend([1_000, 2_000]);
    let file = dir.path().join("op");
    store.snapshot().unwrap().write_to(&file).unwrap();
    let mut restored = OperatorStateStore::restore(&[&file], 1, 0).unwrap();
    names_state(restored.list_state(&OperatorStateDescriptor::<u32>::union("a")), "a");
    // 1 000 is the varint 0xe8 0x07: not a bool.
    names_state(restored.list_state(&OperatorStateDescriptor::<bool>::list("a")), "a");
    assert_eq!(*restored.list_state(&OperatorStateDescriptor::<u32>::list("a")).unwrap(), [1_000, 2_000]);
}

#[test]
fn a_state_of_another_kind_in_another_file_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let mut store = OperatorStateStore::new();
    store.list_state(&OperatorStateDescriptor::<u32>::list("x")).unwrap().push(1);
    store.snapshot().unwrap().write_to(&a).unwrap();
    let mut store = OperatorStateStore::new();
    store.list_state(&OperatorStateDescriptor::<u32>::union("x")).unwrap().push(1);
    store.snapshot().unwrap().write_to(&b).unwrap();
    assert!(matches!(
        OperatorStateStore::restore(&[&a, &b], 2, 0),
        Err(StateError::Corrupt { path, .. }) if path.ends_with("b")
    ));
}
