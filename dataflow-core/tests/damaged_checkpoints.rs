//! A restart must not publish output twice because the newest checkpoint
//! is damaged (issue 17, items 3 and 4). A job runs to its end through
//! transactional files, keeping 4 checkpoints (each with output committed
//! under it); then its newest checkpoint is damaged (bits flipped in a
//! state file, `_metadata` truncated or one bit flipped, a state file
//! deleted) and the job is started again with the same folders, as after
//! a crash:
//!
//! * by default the restart fails, naming the damaged checkpoint, its file
//!   and why, and publishes nothing;
//! * with `allow_fallback_past_damaged_checkpoints` it restores the
//!   previous checkpoint, the file sink removes what was committed after
//!   it, and every record is in the output exactly once;
//! * when every checkpoint is damaged the restart fails either way (no
//!   silent fresh start), naming each;
//! * an incomplete checkpoint (no `_metadata`: the crash came while it was
//!   written) is skipped as before, and a location holding only incomplete
//!   ones starts fresh;
//! * a job started from a savepoint, whose checkpoint taken since is
//!   damaged, is refused by default, and with the fallback allowed
//!   restores the savepoint and removes the output committed after it
//!   (even when an older intact checkpoint is there too).

#[path = "support/phased_job.rs"]
mod phased_job;

mod common;

use common::{Gate, gate, rt, stop_at_gates};
use dataflow_core::checkpoint::coordinator::CheckpointConfig;
use dataflow_core::checkpoint::savepoint::Savepoint;
use dataflow_core::checkpoint::storage::{CheckpointMetadata, CheckpointStorage, LocalStorage};
use dataflow_core::connectors::two_phase::read_committed;
use dataflow_core::{Error, StreamEnvironment};
use phased_job::{CHECKPOINTS, assert_exactly_once, checkpoint_dirs, run_job};
use std::path::Path;
use std::time::Duration;

#[derive(Clone, Copy, Debug)]
enum Damage {
    FlipStateFile,
    TruncateMetadata,
    FlipMetadataBit,
    DeleteStateFile,
}

const DAMAGES: [Damage; 4] =
    [Damage::FlipStateFile, Damage::TruncateMetadata, Damage::FlipMetadataBit, Damage::DeleteStateFile];

/// Damages checkpoint folder `dir`; returns the name of the file at fault.
fn damage(dir: &Path, how: Damage) -> String {
    let mut state: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "_metadata")
        .collect();
    state.sort();
    let name = match how {
        Damage::FlipStateFile | Damage::DeleteStateFile => state.last().expect("a state file").clone(),
        Damage::TruncateMetadata | Damage::FlipMetadataBit => "_metadata".to_string(),
    };
    let path = dir.join(&name);
    let mut bytes = std::fs::read(&path).unwrap();
    match how {
        Damage::FlipStateFile => {
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0x5a;
        }
        Damage::FlipMetadataBit => {
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0x01;
        }
        Damage::TruncateMetadata => bytes.truncate(bytes.len() / 2),
        Damage::DeleteStateFile => {
            std::fs::remove_file(&path).unwrap();
            return name;
        }
    }
    std::fs::write(&path, bytes).unwrap();
    name
}

fn allow(c: CheckpointConfig) -> CheckpointConfig {
    CheckpointConfig { allow_fallback_past_damaged_checkpoints: true, ..c }
}

/// Runs the job to its end; returns the checkpoint folder and the output folder.
fn first_run() -> (tempfile::TempDir, tempfile::TempDir) {
    let (chk, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    run_job(chk.path().to_str().unwrap(), out.path(), |c| c, &[]).unwrap();
    assert_exactly_once(out.path());
    let ids: Vec<u64> = checkpoint_dirs(chk.path()).iter().map(|(id, _)| *id).collect();
    // Four retained: the last periodic ones and the final one.
    assert_eq!(ids, (2..=CHECKPOINTS + 1).rev().collect::<Vec<_>>());
    (chk, out)
}

#[test]
fn a_damaged_newest_checkpoint_fails_the_restart_by_default_and_is_named() {
    for how in DAMAGES {
        let (chk, out) = first_run();
        let (newest, dir) = checkpoint_dirs(chk.path())[0].clone();
        let file = damage(&dir, how);
        let before = dataflow_core::connectors::two_phase::read_committed(out.path()).unwrap();
        let err = run_job(chk.path().to_str().unwrap(), out.path(), |c| c, &[]).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::CheckpointDamaged { fallback: Some(f), .. } if f == newest - 1), "{how:?}: {msg}");
        assert!(msg.contains(&format!("checkpoint {newest}")), "{how:?}: {msg}");
        let named = dir.join(&file).display().to_string();
        assert!(msg.contains(&named), "{how:?}: the message names {named}: {msg}");
        assert!(msg.contains("allow_fallback_past_damaged_checkpoints"), "{how:?}: {msg}");
        // Nothing was published again.
        assert_eq!(dataflow_core::connectors::two_phase::read_committed(out.path()).unwrap(), before, "{how:?}");
    }
}

#[test]
fn falling_back_past_a_damaged_checkpoint_when_allowed_publishes_nothing_twice() {
    for how in DAMAGES {
        let (chk, out) = first_run();
        let (_, dir) = checkpoint_dirs(chk.path())[0].clone();
        damage(&dir, how);
        run_job(chk.path().to_str().unwrap(), out.path(), allow, &[]).unwrap_or_else(|e| panic!("{how:?}: {e}"));
        assert_exactly_once(out.path());
        // And a later restart from what that run left behaves as usual.
        run_job(chk.path().to_str().unwrap(), out.path(), |c| c, &[]).unwrap_or_else(|e| panic!("{how:?}: {e}"));
        assert_exactly_once(out.path());
    }
}

#[test]
fn every_checkpoint_damaged_is_an_error_naming_each_not_a_fresh_start() {
    let (chk, out) = first_run();
    let dirs = checkpoint_dirs(chk.path());
    for ((_, dir), how) in dirs.iter().zip(DAMAGES) {
        damage(dir, how);
    }
    for config in [(|c| c) as fn(CheckpointConfig) -> CheckpointConfig, allow] {
        let err = run_job(chk.path().to_str().unwrap(), out.path(), config, &[]).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::CheckpointDamaged { fallback: None, .. }), "{msg}");
        for (id, dir) in &dirs {
            assert!(msg.contains(&format!("checkpoint {id}: ")), "names checkpoint {id}: {msg}");
            assert!(msg.contains(&dir.display().to_string()), "names {}: {msg}", dir.display());
        }
        assert_exactly_once(out.path());
    }
}

#[test]
fn an_incomplete_newest_checkpoint_is_skipped_without_an_error() {
    let (chk, out) = first_run();
    // The process died while writing checkpoint 6: a part, no metadata.
    let dir = chk.path().join(format!("chk-{}", CHECKPOINTS + 2));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("op0-0"), b"half").unwrap();
    run_job(chk.path().to_str().unwrap(), out.path(), |c| c, &[]).unwrap();
    assert_exactly_once(out.path());
}

#[test]
fn a_location_with_only_incomplete_checkpoints_starts_fresh() {
    let (chk, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let dir = chk.path().join("chk-1");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("op0-0"), b"half").unwrap();
    run_job(chk.path().to_str().unwrap(), out.path(), |c| c, &[]).unwrap();
    assert_exactly_once(out.path());
}

const PER_SPLIT: u64 = 1_000;

/// Two splits of numbers through transactional files into `out`, held at
/// the middle by `g`, checkpointing into `chk` by `config`.
fn split_job(g: &Gate, out: &Path, chk: &Path, config: CheckpointConfig) -> StreamEnvironment {
    let env = StreamEnvironment::new().with_parallelism(2).with_batch_size(64);
    env.enable_checkpointing(config, chk);
    env.from_splits(2, |s| (0..PER_SPLIT).map(move |i| s as u64 * PER_SPLIT + i))
        .uid("events")
        .apply_async(gate(g, |v: &u64| v % PER_SPLIT))
        .map(|v: u64| v.to_string())
        .uid("format")
        .write_transactional_files(out)
        .uid("out");
    env
}

/// Every number of the split job once in the committed output of `out`.
fn assert_split_output_once(out: &Path) {
    let mut lines: Vec<u64> = read_committed(out).unwrap().iter().map(|l| l.parse().unwrap()).collect();
    lines.sort();
    assert_eq!(lines.len() as u64, 2 * PER_SPLIT, "every number once");
    assert_eq!(lines, (0..2 * PER_SPLIT).collect::<Vec<_>>());
}

/// A job resumed from savepoint 11 committed its output under checkpoint
/// 12, which is then damaged; checkpoint 5 of an earlier job is intact
/// beside it. Restoring past checkpoint 12 from the savepoint must remove
/// what was committed under 12 (it did not: the savepoint won the restore
/// and the sinks recovered as usual, publishing the output twice).
#[test]
fn a_savepoint_restored_past_a_damaged_newer_checkpoint_publishes_nothing_twice() {
    let (root, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // No periodic checkpoint: only final ones.
    let config = CheckpointConfig { retained: 4, ..CheckpointConfig::every(Duration::from_secs(3600)) };
    // The first job's checkpoints end at an incomplete checkpoint 10, so
    // its savepoint is 11.
    let first = root.path().join("first");
    std::fs::create_dir_all(first.join("chk-10")).unwrap();
    let g = Gate::holding(|position| position >= PER_SPLIT / 2);
    let job = split_job(&g, out.path(), &first, config.clone());
    let sp = stop_at_gates(job, &g, 2, &root.path().join("sp"), false).unwrap();
    let sp_id = Savepoint::load(&sp).unwrap().metadata.id;
    assert_eq!(sp_id, 11);
    // The resumed job's location holds an intact checkpoint 5 of an
    // earlier job (older than the savepoint: never restored).
    let chk = root.path().join("chk");
    let earlier = LocalStorage::new(&chk);
    earlier.checkpoint_dir(5).unwrap();
    earlier.complete(&CheckpointMetadata { id: 5, timestamp: 0, files: vec![] }).unwrap();
    let resume = |config: CheckpointConfig| {
        let env = split_job(&Gate::default(), out.path(), &chk, config);
        env.restore_from(&sp);
        rt().block_on(env.execute())
    };
    // Resumed from the savepoint, it ends with its final checkpoint (12),
    // under which the rest of the output was committed.
    resume(config.clone()).unwrap();
    assert_split_output_once(out.path());
    let (newest, dir) = checkpoint_dirs(&chk)[0].clone();
    assert_eq!(newest, sp_id + 1);
    damage(&dir, Damage::FlipStateFile);
    let before = read_committed(out.path()).unwrap();
    // By default: refused, naming it; nothing published again.
    let err = resume(config.clone()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::CheckpointDamaged { fallback: Some(f), .. } if f == sp_id), "{msg}");
    assert!(msg.contains(&format!("checkpoint {newest}: ")), "{msg}");
    assert_eq!(read_committed(out.path()).unwrap(), before);
    // Allowed: the savepoint is restored, and the output committed after
    // it is removed before it is written again.
    resume(allow(config)).unwrap();
    assert_split_output_once(out.path());
}
