//! A stop-with-savepoint that fails: every part of the savepoint fails to
//! be written (its folder cannot be made), so the savepoint is declined
//! and aborted. Without draining, the job goes on and ends as if nothing
//! happened (its sums equal a batch count); a draining stop fails the job
//! (event time already reached its end).

use dataflow_core::{Error, StreamEnvironment};
use std::collections::BTreeMap;
use std::path::Path;

mod common;
use common::{Gate, gate};

const SPLITS: usize = 4;
const PER_SPLIT: u64 = 3_000;
const KEYS: u64 = 11;

fn past_middle(i: u64) -> bool {
    i >= PER_SPLIT / 2
}

/// (key, index in its split)
fn index(e: &(u64, u64)) -> u64 {
    e.1
}

/// Submits the job, asks for a stop with a savepoint into `sp` once both
/// subtasks are held, and returns the stop's outcome and the job's.
fn stop_into(sp: &Path, drain: bool) -> (Result<std::path::PathBuf, Error>, Result<BTreeMap<u64, u64>, Error>) {
    let g = Gate::holding(past_middle);
    let env = StreamEnvironment::new().with_parallelism(2).with_batch_size(32);
    let sums = env
        .from_splits(SPLITS, |s| (0..PER_SPLIT).map(move |i| ((s as u64 * PER_SPLIT + i) % KEYS, i)))
        .uid("events")
        .apply_async(gate(&g, index))
        .key_by(|e: &(u64, u64)| e.0)
        .sum(|_| 1u64)
        .uid("sums")
        .collect();
    let (stop, job) = common::stop_at_gates_outcome(env, &g, 2, sp, drain);
    let job = job.map(|_| {
        let mut last = BTreeMap::new();
        for (k, n) in sums.take() {
            let e = last.entry(k).or_default();
            *e = n.max(*e);
        }
        last
    });
    (stop, job)
}

/// A savepoint folder that cannot be made: its parent is a file.
fn unwritable(dir: &Path) -> std::path::PathBuf {
    std::fs::write(dir.join("a-file"), b"x").unwrap();
    dir.join("a-file").join("sp")
}

#[test]
fn a_failed_stop_without_drain_lets_the_job_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let (stop, job) = stop_into(&unwritable(dir.path()), false);
    let err = stop.unwrap_err().to_string();
    assert!(err.contains("aborted"), "{err}");
    let mut expected = BTreeMap::new();
    for s in 0..SPLITS as u64 {
        for i in 0..PER_SPLIT {
            *expected.entry((s * PER_SPLIT + i) % KEYS).or_default() += 1;
        }
    }
    assert_eq!(job.unwrap(), expected, "the job did not go on to count everything once");
}

#[test]
fn a_failed_draining_stop_fails_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let (stop, job) = stop_into(&unwritable(dir.path()), true);
    assert!(stop.is_err());
    let err = job.unwrap_err();
    assert!(matches!(err, Error::Savepoint { .. }) && err.to_string().contains("draining"), "{err}");
}

/// A savepoint into a URL of no supported store is refused at once,
/// naming the URL; no local folder named after the URL is made, and the
/// job goes on. (Into `s3://…`: `tests/object_storage.rs`.)
#[test]
fn a_savepoint_into_an_unsupported_url_is_refused() {
    let (stop, job) = stop_into(Path::new("ftp://host/savepoints/sp-1"), false);
    let err = stop.unwrap_err();
    assert!(matches!(err, Error::StorageUrl { .. }) && err.to_string().contains("ftp://host"), "{err}");
    assert!(!Path::new("ftp:").exists(), "a local folder named after the URL was made");
    job.unwrap();
}
