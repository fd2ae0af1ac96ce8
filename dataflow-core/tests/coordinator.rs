//! The checkpoint coordinator's rules, on processing timestamps (no job,
//! no sleeping): interval, minimum pause, concurrency, timeout,
//! completion only after every task acknowledged and the metadata is
//! written, subsumption, declines and failures.

use dataflow_core::checkpoint::coordinator::{CheckpointConfig, Coordinator, Decision};
use dataflow_core::checkpoint::storage::{CheckpointStorage, LocalStorage, StateFile};
use std::sync::Arc;
use std::time::Duration;

fn setup(config: CheckpointConfig, tasks: usize) -> (tempfile::TempDir, Arc<LocalStorage>, Coordinator) {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(LocalStorage::new(dir.path()));
    let c = Coordinator::new(config, tasks, storage.clone());
    (dir, storage, c)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A file task `task` wrote for checkpoint `id`.
fn file(storage: &LocalStorage, id: u64, task: usize) -> StateFile {
    let dir = storage.checkpoint_dir(id).unwrap();
    let name = format!("task-{task}");
    std::fs::write(dir.join(&name), format!("{id}/{task}")).unwrap();
    StateFile::of(&dir, &name, "op", task as u32).unwrap()
}

fn triggers(d: &[Decision]) -> Vec<u64> {
    d.iter().filter_map(|d| if let Decision::Trigger { id, .. } = d { Some(*id) } else { None }).collect()
}

#[test]
fn complete_only_when_every_task_acknowledged_and_metadata_written() {
    let (_d, storage, mut c) = setup(CheckpointConfig::every(ms(100)), 3);
    assert_eq!(triggers(&c.poll(0)), [1]);
    for task in 0..2 {
        assert_eq!(c.acknowledge(1, task, vec![file(&storage, 1, task)], 10).unwrap(), None);
        assert!(storage.latest().unwrap().is_none(), "complete before every task acknowledged");
    }
    assert_eq!(c.acknowledge(1, 2, vec![file(&storage, 1, 2)], 20).unwrap(), Some(1));
    let latest = storage.latest().unwrap().unwrap();
    assert_eq!(latest.metadata.id, 1);
    assert_eq!(latest.metadata.files.len(), 3);
    // A late or repeated acknowledgement of a finished checkpoint does nothing.
    assert_eq!(c.acknowledge(1, 0, vec![], 30).unwrap(), None);
    assert!(c.acknowledge(1, 3, vec![], 30).is_err(), "task out of range");
}

#[test]
fn interval_min_pause_and_concurrency() {
    let config = CheckpointConfig { min_pause: ms(50), max_concurrent: 2, ..CheckpointConfig::every(ms(100)) };
    let (_d, _storage, mut c) = setup(config, 1);
    assert_eq!(triggers(&c.poll(0)), [1]);
    assert!(triggers(&c.poll(99)).is_empty(), "before the interval");
    assert_eq!(triggers(&c.poll(100)), [2]);
    assert!(triggers(&c.poll(1_000)).is_empty(), "two pending: the maximum");
    assert_eq!(c.next_trigger_time(), None);
    assert_eq!(c.acknowledge(2, 0, vec![], 1_010).unwrap(), Some(2));
    assert_eq!(c.pending(), Vec::<u64>::new(), "checkpoint 1 is subsumed by 2");
    assert_eq!(c.next_trigger_time(), Some(1_060), "min pause after the completion");
    assert!(triggers(&c.poll(1_059)).is_empty());
    assert_eq!(triggers(&c.poll(1_060)), [3]);
}

#[test]
fn timeouts_declines_and_failures_abort_and_clean_up() {
    let config = CheckpointConfig { timeout: ms(500), ..CheckpointConfig::every(ms(100)) };
    let (dir, storage, mut c) = setup(config, 2);
    assert_eq!(triggers(&c.poll(0)), [1]);
    c.acknowledge(1, 0, vec![file(&storage, 1, 0)], 10).unwrap();
    assert!(dir.path().join("chk-1").exists());
    let d = c.poll(500);
    assert!(d.contains(&Decision::Aborted { id: 1 }), "{d:?}");
    assert!(!dir.path().join("chk-1").exists(), "aborted files left behind");
    assert_eq!(triggers(&d), [2], "the next one is triggered");
    assert_eq!(c.acknowledge(1, 1, vec![], 510).unwrap(), None, "aborted: never completes");

    c.acknowledge(2, 0, vec![file(&storage, 2, 0)], 510).unwrap();
    c.decline(2, "snapshot failed");
    assert!(c.pending().is_empty());
    assert!(!dir.path().join("chk-2").exists());

    assert_eq!(triggers(&c.poll(600)), [3]);
    c.abort_all();
    assert!(c.pending().is_empty());
    assert!(storage.latest().unwrap().is_none(), "nothing ever completed");
}

#[test]
fn retention_keeps_the_configured_number() {
    let config = CheckpointConfig { retained: 2, ..CheckpointConfig::every(ms(10)) };
    let (dir, storage, mut c) = setup(config, 1);
    for n in 0..5u64 {
        let id = triggers(&c.poll(n as i64 * 10))[0];
        c.acknowledge(id, 0, vec![file(&storage, id, 0)], n as i64 * 10 + 1).unwrap();
    }
    let mut left: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    left.sort();
    assert_eq!(left, ["chk-4", "chk-5"]);
}

/// Once every source finished, the final checkpoint triggers at once,
/// whatever the interval and the pending ones; no regular one follows it;
/// if it is aborted, another final one is triggered.
#[test]
fn the_final_checkpoint_triggers_at_once_and_again_after_an_abort() {
    let config = CheckpointConfig { timeout: ms(50), ..CheckpointConfig::every(ms(100)) };
    let (_d, storage, mut c) = setup(config, 1);
    c.start(0);
    assert_eq!(triggers(&c.poll(100)), [1]);
    c.request_final();
    assert_eq!(triggers(&c.poll(101)), [2], "at once, beside pending checkpoint 1");
    assert_eq!(c.final_id(), Some(2));
    assert!(triggers(&c.poll(120)).is_empty());
    // Both time out: a new final checkpoint follows.
    let d = c.poll(160);
    assert_eq!(triggers(&d), [3]);
    assert_eq!(c.final_id(), Some(3));
    assert_eq!(c.acknowledge(3, 0, vec![file(&storage, 3, 0)], 170).unwrap(), Some(3));
    assert!(triggers(&c.poll(1_000)).is_empty(), "nothing after the final checkpoint");
    assert_eq!(c.final_id(), Some(3));
}
