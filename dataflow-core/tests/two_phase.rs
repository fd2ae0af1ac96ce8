//! Two-phase-commit sinks: `TransactionalFileSink` publishes exactly the
//! data before the last completed checkpoint, across crashes and recoveries.

use dataflow_core::connectors::two_phase::{
    FileCommittable, TransactionalFileSink, TwoPhaseCommitSink, read_committed,
};
use dataflow_core::{Batch, BoxError};
use proptest::prelude::*;
use std::path::Path;

type R = Result<(), BoxError>;

async fn write(sink: &mut TransactionalFileSink<String>, values: &[&str]) -> R {
    let mut batch = Batch::from(values.iter().map(|v| v.to_string()).collect::<Vec<_>>());
    sink.write_batch(&mut batch).await?;
    assert!(batch.is_empty());
    Ok(())
}

/// Every file name in `dir`, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    names
}

#[tokio::test]
async fn output_is_visible_only_after_commit() -> R {
    let dir = tempfile::tempdir()?;
    let mut sink = TransactionalFileSink::new(dir.path(), 0);
    write(&mut sink, &["a", "b"]).await?;
    assert_eq!(files(dir.path()), [".part-0-0.inprogress"]);
    assert!(read_committed(dir.path())?.is_empty());
    let committables = sink.pre_commit(1).await?;
    assert_eq!(files(dir.path()), [".part-0-0.pending"]);
    assert!(read_committed(dir.path())?.is_empty());
    write(&mut sink, &["c"]).await?;
    sink.commit(committables).await?;
    assert_eq!(read_committed(dir.path())?, ["a", "b"]);
    assert_eq!(files(dir.path()), [".part-0-1.inprogress", "part-0-0"]);
    sink.finish().await?;
    assert_eq!(read_committed(dir.path())?, ["a", "b", "c"]);
    assert_eq!(files(dir.path()), ["part-0-0", "part-0-1"]);
    Ok(())
}

#[tokio::test]
async fn crash_then_recover_publishes_exactly_the_completed_checkpoint() -> R {
    let dir = tempfile::tempdir()?;
    let mut sink = TransactionalFileSink::new(dir.path(), 0);
    write(&mut sink, &["1", "2"]).await?;
    let checkpoint_1 = sink.pre_commit(1).await?; // completes, but the notice is lost
    write(&mut sink, &["3"]).await?;
    let _checkpoint_2 = sink.pre_commit(2).await?; // never completes
    write(&mut sink, &["4"]).await?;
    drop(sink); // crash
    assert_eq!(files(dir.path()), [".part-0-0.pending", ".part-0-1.pending", ".part-0-2.inprogress"]);

    // The checkpoint went through storage, so through serde.
    let stored = postcard::to_allocvec(&checkpoint_1)?;
    let mut sink = TransactionalFileSink::new(dir.path(), 0);
    sink.recover(postcard::from_bytes(&stored)?).await?;
    assert_eq!(read_committed(dir.path())?, ["1", "2"]);
    assert_eq!(files(dir.path()), ["part-0-0"]);
    // Replay after checkpoint 1; numbering goes on after every name seen.
    write(&mut sink, &["3", "4"]).await?;
    assert_eq!(files(dir.path()), [".part-0-3.inprogress", "part-0-0"]);
    let checkpoint_3 = sink.pre_commit(3).await?;
    sink.commit(checkpoint_3).await?;
    assert_eq!(read_committed(dir.path())?, ["1", "2", "3", "4"]);
    Ok(())
}

#[tokio::test]
async fn commit_twice_is_idempotent() -> R {
    let dir = tempfile::tempdir()?;
    let mut sink = TransactionalFileSink::new(dir.path(), 0);
    write(&mut sink, &["x"]).await?;
    let committables = sink.pre_commit(1).await?;
    sink.commit(committables.clone()).await?;
    sink.commit(committables.clone()).await?;
    // A new sink, which never pre-committed them, may commit them too.
    TransactionalFileSink::<String>::new(dir.path(), 0).commit(committables).await?;
    assert_eq!(read_committed(dir.path())?, ["x"]);
    assert_eq!(files(dir.path()), ["part-0-0"]);
    Ok(())
}

#[tokio::test]
async fn recovering_twice_from_the_same_checkpoint_works() -> R {
    let dir = tempfile::tempdir()?;
    let mut sink = TransactionalFileSink::new(dir.path(), 0);
    write(&mut sink, &["a"]).await?;
    let checkpoint_1 = sink.pre_commit(1).await?;
    write(&mut sink, &["b"]).await?;
    drop(sink);
    let mut sink = TransactionalFileSink::new(dir.path(), 0);
    sink.recover(checkpoint_1.clone()).await?;
    write(&mut sink, &["b"]).await?; // replayed, then a second crash before the next checkpoint
    drop(sink);
    let mut sink = TransactionalFileSink::new(dir.path(), 0);
    sink.recover(checkpoint_1.clone()).await?;
    assert_eq!(files(dir.path()), ["part-0-0"]);
    sink.recover(checkpoint_1).await?; // and again on the same sink
    write(&mut sink, &["b"]).await?;
    sink.finish().await?;
    assert_eq!(read_committed(dir.path())?, ["a", "b"]);
    Ok(())
}

#[tokio::test]
async fn a_late_or_lost_notice_is_covered_by_the_next_checkpoint() -> R {
    let dir = tempfile::tempdir()?;
    let mut sink = TransactionalFileSink::new(dir.path(), 0);
    write(&mut sink, &["a"]).await?;
    let checkpoint_1 = sink.pre_commit(1).await?;
    write(&mut sink, &["b"]).await?;
    let checkpoint_2 = sink.pre_commit(2).await?;
    assert_eq!(checkpoint_2.len(), 2, "checkpoint 2 carries checkpoint 1's uncommitted part");
    assert_eq!(checkpoint_2[0], checkpoint_1[0]);
    sink.commit(checkpoint_2).await?;
    sink.commit(checkpoint_1).await?; // arrives late: a no-op
    assert_eq!(read_committed(dir.path())?, ["a", "b"]);
    assert!(sink.pre_commit(3).await?.is_empty(), "nothing left uncommitted");
    Ok(())
}

#[tokio::test]
async fn subtasks_sharing_a_directory_do_not_touch_each_other() -> R {
    let dir = tempfile::tempdir()?;
    let mut s1 = TransactionalFileSink::new(dir.path(), 1);
    let mut s11 = TransactionalFileSink::new(dir.path(), 11);
    write(&mut s1, &["one"]).await?;
    write(&mut s11, &["eleven"]).await?;
    let c11 = s11.pre_commit(1).await?;
    write(&mut s11, &["eleven again"]).await?;
    let c1 = s1.pre_commit(1).await?;
    s1.commit(c1.clone()).await?;
    // Subtask 1 crashes and recovers; subtask 11's pending and in-progress files stay.
    drop(s1);
    let mut s1 = TransactionalFileSink::new(dir.path(), 1);
    s1.recover(c1).await?;
    assert_eq!(files(dir.path()), [".part-11-0.pending", ".part-11-1.inprogress", "part-1-0"]);
    write(&mut s1, &["one again"]).await?;
    s11.commit(c11).await?;
    s1.finish().await?;
    s11.finish().await?;
    assert_eq!(files(dir.path()), ["part-1-0", "part-1-1", "part-11-0", "part-11-1"]);
    assert_eq!(read_committed(dir.path())?, ["one", "one again", "eleven", "eleven again"]);
    Ok(())
}

#[tokio::test]
async fn an_empty_part_yields_no_committable() -> R {
    let dir = tempfile::tempdir()?;
    let mut sink = TransactionalFileSink::new(dir.path(), 0);
    assert!(sink.pre_commit(1).await?.is_empty());
    write(&mut sink, &[]).await?;
    assert!(sink.pre_commit(2).await?.is_empty());
    assert!(files(dir.path()).is_empty(), "an empty batch opens no file");
    write(&mut sink, &["v"]).await?;
    let committables = sink.pre_commit(3).await?;
    assert_eq!(committables.len(), 1);
    sink.commit(committables).await?;
    assert!(sink.pre_commit(4).await?.is_empty());
    sink.finish().await?;
    assert_eq!(files(dir.path()), ["part-0-0"]);
    Ok(())
}

#[tokio::test]
async fn a_committable_whose_files_are_both_gone_is_an_error_naming_the_file() -> R {
    let dir = tempfile::tempdir()?;
    let mut sink = TransactionalFileSink::<String>::new(dir.path(), 0);
    let lost = FileCommittable { pending: ".part-0-7.pending".into(), file: "part-0-7".into() };
    let err = sink.commit(vec![lost.clone()]).await.unwrap_err();
    assert!(err.to_string().contains("part-0-7"), "{err}");
    assert!(matches!(err.downcast_ref::<dataflow_core::Error>(), Some(dataflow_core::Error::SinkCommit { .. })));
    let err = sink.recover(vec![lost]).await.unwrap_err();
    assert!(err.to_string().contains(".part-0-7.pending"), "{err}");
    Ok(())
}

#[tokio::test]
async fn a_committable_naming_a_path_outside_the_directory_is_refused() -> R {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join(".part-0-0.pending"), "x\n")?;
    let mut sink = TransactionalFileSink::<String>::new(dir.path(), 0);
    for (pending, file) in [("../.p", "part-0-0"), (".part-0-0.pending", "../part-0-0"), ("part-0-0", "part-0-0")] {
        let c = FileCommittable { pending: pending.into(), file: file.into() };
        let err = sink.commit(vec![c]).await.unwrap_err();
        assert!(
            matches!(err.downcast_ref::<dataflow_core::Error>(), Some(dataflow_core::Error::SinkCommit { .. })),
            "{err}"
        );
    }
    assert_eq!(files(dir.path()), [".part-0-0.pending"]);
    Ok(())
}

#[tokio::test]
async fn io_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, "").unwrap();
    let mut sink = TransactionalFileSink::new(&not_a_dir, 0);
    let err = write(&mut sink, &["a"]).await.unwrap_err();
    assert!(err.to_string().contains(&*not_a_dir.to_string_lossy()), "{err}");
    assert!(read_committed(dir.path().join("missing")).unwrap_err().to_string().contains("missing"));
}

/// One step of a job with two sink subtasks sharing a directory.
#[derive(Clone, Debug)]
enum Op {
    /// Subtask `subtask` receives the next `n` records of its source.
    Write { subtask: usize, n: u64 },
    /// A barrier reaches both subtasks.
    Barrier,
    /// One of the checkpoints in flight completes (subsuming older ones);
    /// the notice reaches each subtask or is lost.
    Complete { which: usize, notify: [bool; 2] },
    /// Both subtasks fail and restore from the last completed checkpoint.
    Crash,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..2usize, 0..4u64).prop_map(|(subtask, n)| Op::Write { subtask, n }),
        2 => Just(Op::Barrier),
        2 => (any::<usize>(), any::<[bool; 2]>()).prop_map(|(which, notify)| Op::Complete { which, notify }),
        1 => Just(Op::Crash),
    ]
}

/// A checkpoint: each subtask's source offset and stored sink state.
#[derive(Clone)]
struct Checkpoint {
    id: u64,
    offsets: [u64; 2],
    stored: [Vec<u8>; 2],
}

fn expected(committed: [u64; 2]) -> Vec<String> {
    (0..2).flat_map(|s| (0..committed[s]).map(move |k| format!("{s}:{k}"))).collect()
}

async fn run(ops: Vec<Op>) -> R {
    let dir = tempfile::tempdir()?;
    let new_sinks = || [0, 1].map(|s| TransactionalFileSink::new(dir.path(), s));
    let mut sinks = new_sinks();
    let mut offsets = [0u64; 2]; // next record of each source
    let mut committed = [0u64; 2]; // what readers should see: each source up to here
    let mut in_flight: Vec<Checkpoint> = Vec::new();
    let mut last_complete: Option<Checkpoint> = None;
    let mut next_id = 1;
    for op in ops {
        match op.clone() {
            Op::Write { subtask: s, n } => {
                let mut batch: Batch<String> =
                    (offsets[s]..offsets[s] + n).map(|k| format!("{s}:{k}")).collect::<Vec<_>>().into();
                sinks[s].write_batch(&mut batch).await?;
                offsets[s] += n;
            }
            Op::Barrier => {
                let mut stored = [Vec::new(), Vec::new()];
                for s in 0..2 {
                    let committables = sinks[s].pre_commit(next_id).await?;
                    stored[s] = postcard::to_allocvec(&committables)?;
                }
                in_flight.push(Checkpoint { id: next_id, offsets, stored });
                next_id += 1;
            }
            Op::Complete { which, notify } => {
                if in_flight.is_empty() {
                    continue;
                }
                let done = in_flight[which % in_flight.len()].clone();
                in_flight.retain(|c| c.id > done.id);
                for s in (0..2).filter(|&s| notify[s]) {
                    let committables: Vec<FileCommittable> = postcard::from_bytes(&done.stored[s])?;
                    sinks[s].commit(committables).await?;
                    committed[s] = done.offsets[s];
                }
                last_complete = Some(done);
            }
            Op::Crash => {
                sinks = new_sinks(); // the old ones are dropped without a word
                in_flight.clear();
                for s in 0..2 {
                    let (committables, offset) = match &last_complete {
                        Some(c) => (postcard::from_bytes(&c.stored[s])?, c.offsets[s]),
                        None => (Vec::new(), 0),
                    };
                    sinks[s].recover(committables).await?;
                    (offsets[s], committed[s]) = (offset, offset); // the source replays from here
                }
            }
        }
        assert_eq!(read_committed(dir.path())?, expected(committed), "after {op:?}");
    }
    for sink in &mut sinks {
        sink.finish().await?;
    }
    assert_eq!(read_committed(dir.path())?, expected(offsets), "after finish");
    let hidden: Vec<String> = files(dir.path()).into_iter().filter(|f| f.starts_with('.')).collect();
    assert!(hidden.is_empty(), "left over: {hidden:?}");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn writes_checkpoints_and_crashes_neither_lose_nor_duplicate(ops in prop::collection::vec(op(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(run(ops)).unwrap();
    }
}

/// Rolling by time: a part is sealed by the first write that finds it
/// `interval` old on the clock; the next write opens a new part; both are
/// published by the next checkpoint's commit, in order.
#[tokio::test]
async fn a_part_is_rolled_once_it_is_as_old_as_the_rollover_interval() -> Result<(), BoxError> {
    use dataflow_core::time::ManualClock;
    let dir = tempfile::tempdir()?;
    let clock = std::sync::Arc::new(ManualClock::new(0));
    let interval = std::time::Duration::from_millis(1_000);
    let mut sink = TransactionalFileSink::<u64>::new(dir.path(), 0).with_rollover_interval(interval, clock.clone());
    let write = async |v: u64, sink: &mut TransactionalFileSink<u64>| sink.write_batch(&mut Batch::from(vec![v])).await;
    write(1, &mut sink).await?; // opens part 0 at 0
    clock.advance(999);
    write(2, &mut sink).await?; // 999 ms old: kept
    clock.advance(1);
    write(3, &mut sink).await?; // 1000 ms old: sealed after this write
    write(4, &mut sink).await?; // part 1
    let committables = sink.pre_commit(1).await?;
    let files: Vec<&str> = committables.iter().map(|c| c.file.as_str()).collect();
    assert_eq!(files, ["part-0-0", "part-0-1"]);
    sink.commit(committables).await?;
    assert_eq!(std::fs::read_to_string(dir.path().join("part-0-0"))?, "1\n2\n3\n");
    assert_eq!(std::fs::read_to_string(dir.path().join("part-0-1"))?, "4\n");
    Ok(())
}
