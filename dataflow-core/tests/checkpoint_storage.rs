//! Checkpoint storage: only complete, intact checkpoints are found; a
//! damaged or missing file of the newest one (any byte flipped, any
//! truncation) makes it fall back to the previous complete one, naming the
//! file; retention keeps the newest N.

use dataflow_core::StateBackendConfig;
use dataflow_core::checkpoint::storage::{CheckpointMetadata, CheckpointStorage, LocalStorage, StateFile};
use dataflow_core::operator::{KeyedOperatorHarness, KeyedReduce};
use std::path::Path;

/// Writes checkpoint `id`: a keyed operator's state snapshot (records
/// `0..id * 10`) and a small second file, then completes it.
fn checkpoint(storage: &LocalStorage, id: u64) -> CheckpointMetadata {
    let dir = storage.checkpoint_dir(id).unwrap();
    let mut h = KeyedOperatorHarness::new(
        KeyedReduce::new(|a: u64, b: u64| a + b),
        |v: &u64| v % 7,
        StateBackendConfig::InMemory,
    )
    .unwrap();
    (0..id * 10).for_each(|v| h.process(v, None).unwrap());
    h.snapshot().unwrap().write_to(&dir.join("reduce-0")).unwrap();
    std::fs::write(dir.join("offsets-0"), id.to_be_bytes()).unwrap();
    let files = vec![
        StateFile::of(&dir, "reduce-0", "reduce", 0).unwrap(),
        StateFile::of(&dir, "offsets-0", "source", 0).unwrap(),
    ];
    let metadata = CheckpointMetadata { id, timestamp: id as i64 * 1000, files };
    storage.complete(&metadata).unwrap();
    metadata
}

fn files_of(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[test]
fn the_newest_complete_checkpoint_is_found() {
    let root = tempfile::tempdir().unwrap();
    let storage = LocalStorage::new(root.path());
    assert!(storage.latest().unwrap().is_none());
    checkpoint(&storage, 1);
    let second = checkpoint(&storage, 2);
    // Checkpoint 3 was being written when the process died: files, no
    // metadata (also none renamed into place).
    let dir = storage.checkpoint_dir(3).unwrap();
    std::fs::write(dir.join("reduce-0"), b"partial").unwrap();
    std::fs::write(dir.join("_metadata.tmp"), b"half").unwrap();
    let found = storage.latest().unwrap().unwrap();
    assert_eq!(found.metadata, second);
    assert_eq!(found.skipped.len(), 1);
    assert!(found.skipped[0].contains("checkpoint 3 is incomplete"), "{:?}", found.skipped);
}

/// Every file of the newest checkpoint, every kind of damage, at many
/// positions: the previous checkpoint is used, and the reason names the
/// damaged file.
#[test]
fn damage_anywhere_falls_back_to_the_previous_checkpoint() {
    let root = tempfile::tempdir().unwrap();
    let storage = LocalStorage::new(root.path());
    let first = checkpoint(&storage, 1);
    checkpoint(&storage, 2);
    let dir = root.path().join("chk-2");
    for name in files_of(&dir) {
        let path = dir.join(&name);
        let good = std::fs::read(&path).unwrap();
        let step = (good.len() / 40).max(1);
        for pos in (0..good.len()).step_by(step).chain([good.len() - 1]) {
            for damage in ["flip", "truncate", "remove"] {
                let mut bytes = good.clone();
                match damage {
                    "flip" => bytes[pos] ^= 0x21,
                    "truncate" => bytes.truncate(pos),
                    _ => {}
                }
                if damage == "remove" {
                    std::fs::remove_file(&path).unwrap();
                } else {
                    std::fs::write(&path, &bytes).unwrap();
                }
                let found = storage.latest().unwrap().unwrap();
                assert_eq!(found.metadata, first, "{damage} of {name} at {pos}");
                assert!(found.skipped[0].contains(&name), "{damage} of {name}: {:?}", found.skipped);
            }
            std::fs::write(&path, &good).unwrap();
        }
        assert_eq!(storage.latest().unwrap().unwrap().metadata.id, 2, "{name} restored");
    }
}

#[test]
fn retention_keeps_the_newest_complete_checkpoints() {
    let root = tempfile::tempdir().unwrap();
    let storage = LocalStorage::new(root.path());
    for id in 1..=5 {
        checkpoint(&storage, id);
    }
    storage.checkpoint_dir(6).unwrap(); // in progress
    storage.retain(2).unwrap();
    assert_eq!(files_of(root.path()), ["chk-4", "chk-5", "chk-6"]);
    storage.discard(6).unwrap();
    storage.discard(6).unwrap(); // already gone: fine
    assert_eq!(storage.latest().unwrap().unwrap().metadata.id, 5);
}

/// A later checkpoint may list a file of an earlier one's folder (how
/// incremental checkpoints share files). Retention then removes the
/// earlier checkpoint (its `_metadata` and what nobody needs) but keeps
/// the shared file for as long as a kept checkpoint lists it (the bug of
/// Arroyo's issue #802 is deleting it), and damage to it is caught.
#[test]
fn retention_keeps_files_that_kept_checkpoints_share() {
    use dataflow_core::checkpoint::storage::shared_name;
    let root = tempfile::tempdir().unwrap();
    let storage = LocalStorage::new(root.path());
    checkpoint(&storage, 1);
    // Checkpoint 2: its own offsets, and checkpoint 1's state file.
    let dir2 = storage.checkpoint_dir(2).unwrap();
    std::fs::write(dir2.join("offsets-0"), 2u64.to_be_bytes()).unwrap();
    let shared = shared_name(1, "reduce-0");
    let files = vec![
        StateFile::of(&dir2, &shared, "reduce", 0).unwrap(),
        StateFile::of(&dir2, "offsets-0", "source", 0).unwrap(),
    ];
    storage.complete(&CheckpointMetadata { id: 2, timestamp: 2000, files }).unwrap();

    storage.retain(1).unwrap();
    assert_eq!(files_of(&root.path().join("chk-1")), ["reduce-0"], "only the shared file stays");
    let latest = storage.latest().unwrap().unwrap();
    assert_eq!(latest.metadata.id, 2);
    // Restore reads it through the later checkpoint's folder.
    let mut h = KeyedOperatorHarness::new(
        KeyedReduce::new(|a: u64, b: u64| a + b),
        |v: &u64| v % 7,
        StateBackendConfig::InMemory,
    )
    .unwrap();
    h.restore(&[latest.dir.join(&shared).as_path()]).unwrap();

    // Damage to the shared file makes checkpoint 2 unusable, naming the file.
    let path = root.path().join("chk-1").join("reduce-0");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[5] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let found = storage.latest().unwrap();
    assert!(found.is_none());
    bytes[5] ^= 1;
    std::fs::write(&path, &bytes).unwrap();

    // Once no kept checkpoint lists it, it goes too.
    checkpoint(&storage, 3);
    storage.retain(1).unwrap();
    assert!(!root.path().join("chk-1").exists() && !root.path().join("chk-2").exists());
    assert_eq!(storage.latest().unwrap().unwrap().metadata.id, 3);
}
