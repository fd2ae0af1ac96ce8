//! Savepoints of a keyed, windowed job: stopped with a savepoint at
//! parallelism 2 and resumed at other parallelisms, on the other backend,
//! with operators added, removed or renamed; stopped with and without
//! draining. The committed output of both runs together is compared with a
//! batch computation over the same events: nothing lost, nothing twice.
//!
//! The job: 8 splits of events (key, time) whose times advance together;
//! a gate in each source subtask holds it at the middle of its input until
//! the test has asked for the stop, so the savepoint is taken mid-stream
//! (waiting on events, never on time).

use dataflow_core::checkpoint::coordinator::CheckpointConfig;
use dataflow_core::checkpoint::savepoint::Savepoint;
use dataflow_core::connectors::two_phase::read_committed;
use dataflow_core::time::WatermarkStrategy;
use dataflow_core::window::{TimeWindow, TumblingEventTimeWindows};
use dataflow_core::{Error, FjallStateConfig, StateBackendConfig, StreamEnvironment};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod common;
use common::{Gate, gate, rt, savepoint_at_gates, stop_at_gates};

const SPLITS: usize = 8;
const PER_SPLIT: u64 = 2_000;
const KEYS: u64 = 23;
const STEP_MS: u64 = 10;
const WINDOW_MS: u64 = 1_000;
const MAX_PARALLELISM: u32 = 8;

/// (key, event time, id)
type Ev = (u64, u64, u64);

fn event(split: usize, i: u64) -> Ev {
    let id = split as u64 * PER_SPLIT + i;
    ((id * 7 + i * 13) % KEYS, i * STEP_MS, id)
}

fn events() -> impl Iterator<Item = Ev> {
    (0..SPLITS).flat_map(|s| (0..PER_SPLIT).map(move |i| event(s, i)))
}

/// How a run of the job is set up.
struct Run<'a> {
    p: usize,
    fjall: Option<&'a Path>,
    restore: Option<&'a Path>,
    allow_non_restored: bool,
    window_uid: &'a str,
    /// An extra keyed operator (counting records per key) under this uid.
    extra: Option<&'a str>,
    gate: Gate,
    out: &'a Path,
    ids: &'a Path,
    /// Checkpointing into this folder (an interval that never passes in
    /// the test: only the final checkpoint is taken).
    checkpoints: Option<&'a Path>,
}

impl<'a> Run<'a> {
    fn new(p: usize, out: &'a Path, ids: &'a Path) -> Self {
        Self {
            p,
            fjall: None,
            restore: None,
            allow_non_restored: false,
            window_uid: "window-count",
            extra: None,
            gate: Gate::default(),
            out,
            ids,
            checkpoints: None,
        }
    }

    /// Builds the job; returns the environment and the extra operator's
    /// per-key counts (if any).
    fn build(&self) -> (StreamEnvironment, Option<dataflow_core::connectors::CollectHandle<(u64, u64)>>) {
        let env = StreamEnvironment::new().with_parallelism(self.p).with_max_parallelism(MAX_PARALLELISM);
        let env = env.with_batch_size(64);
        if let Some(dir) = self.fjall {
            env.set_state_backend(StateBackendConfig::Fjall(FjallStateConfig::new(dir)));
        }
        if let Some(dir) = self.checkpoints {
            env.enable_checkpointing(CheckpointConfig::every(Duration::from_secs(3_600)), dir);
        }
        if let Some(sp) = self.restore {
            env.restore_from(sp);
            env.allow_non_restored_state(self.allow_non_restored);
        }
        let events = env.from_splits(SPLITS, |s| (0..PER_SPLIT).map(move |i| event(s, i))).uid("events");
        let events = events.apply_async(gate(&self.gate, time_of));
        events.map(|e: Ev| e.2.to_string()).uid("ids").write_transactional_files(self.ids).uid("ids-out");
        let extra = self.extra.map(|uid| events.key_by(|e: &Ev| e.0).count().uid(uid).collect());
        events
            .assign_timestamps_and_watermarks(
                WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_millis(2_000))
                    .with_timestamp_assigner(|e: &Ev, _| e.1 as i64),
            )
            .uid("timestamps")
            .key_by(|e: &Ev| e.0)
            .window(TumblingEventTimeWindows::of(Duration::from_millis(WINDOW_MS)))
            .count()
            .uid(self.window_uid)
            .map(|(k, w, n): (u64, TimeWindow, u64)| format!("{k} {} {n}", w.start))
            .uid("format")
            .write_transactional_files(self.out)
            .uid("out");
        (env, extra)
    }
}

/// Records past the middle of a split are held until the stop.
fn past_middle(time: u64) -> bool {
    time >= PER_SPLIT / 2 * STEP_MS
}

fn time_of(e: &Ev) -> u64 {
    e.1
}

/// Runs `run` until every source subtask reached its gate, stops it with a
/// savepoint into `sp` and returns once the job ended.
fn run_and_stop(mut run: Run<'_>, sp: &Path, drain: bool) -> Result<PathBuf, Error> {
    run.gate = Gate::holding(past_middle);
    let (env, _) = run.build();
    stop_at_gates(env, &run.gate, run.p, sp, drain)
}

fn run_to_end(run: Run<'_>) -> Result<Option<BTreeMap<u64, u64>>, Error> {
    let (env, extra) = run.build();
    rt().block_on(env.execute())?;
    Ok(extra.map(|h| {
        let mut last = BTreeMap::new();
        for (k, n) in h.take() {
            let e = last.entry(k).or_default();
            *e = n.max(*e);
        }
        last
    }))
}

/// The batch count per (key, window) of every event.
fn oracle() -> BTreeMap<(u64, u64), u64> {
    let mut m = BTreeMap::new();
    for (k, t, _) in events() {
        *m.entry((k, t / WINDOW_MS * WINDOW_MS)).or_default() += 1;
    }
    m
}

/// The committed window counts, summed per (key, window), and how many
/// lines they came in.
fn committed_counts(out: &Path) -> (BTreeMap<(u64, u64), u64>, usize) {
    let lines = read_committed(out).unwrap();
    let mut m = BTreeMap::new();
    for l in &lines {
        let v: Vec<u64> = l.split(' ').map(|x| x.parse().unwrap()).collect();
        *m.entry((v[0], v[1])).or_default() += v[2];
    }
    (m, lines.len())
}

/// Every event id committed exactly once.
fn assert_ids_once(ids: &Path) {
    let mut seen = vec![0u32; SPLITS * PER_SPLIT as usize];
    for l in read_committed(ids).unwrap() {
        seen[l.parse::<usize>().unwrap()] += 1;
    }
    let lost = seen.iter().filter(|n| **n == 0).count();
    let twice = seen.iter().filter(|n| **n > 1).count();
    assert_eq!((lost, twice), (0, 0), "records lost / committed more than once");
}

struct Dirs {
    out: tempfile::TempDir,
    ids: tempfile::TempDir,
    sp: PathBuf,
    _sp_root: tempfile::TempDir,
}

fn dirs() -> Dirs {
    let sp_root = tempfile::tempdir().unwrap();
    Dirs {
        out: tempfile::tempdir().unwrap(),
        ids: tempfile::tempdir().unwrap(),
        sp: sp_root.path().join("sp"),
        _sp_root: sp_root,
    }
}

/// Stops at p = 2 without draining, resumes at `p2` (fjall in the second
/// run if `fjall2`; fjall in the first if `fjall1`), and checks that the
/// committed windows equal the batch count line for line.
fn stop_and_resume(p2: usize, fjall1: bool, fjall2: bool) {
    let d = dirs();
    let state = tempfile::tempdir().unwrap();
    let mut first = Run::new(2, d.out.path(), d.ids.path());
    first.fjall = fjall1.then_some(state.path());
    run_and_stop(first, &d.sp, false).unwrap();
    let sp = Savepoint::load(&d.sp).unwrap();
    assert_eq!(sp.parallelism_of("window-count"), Some(2));
    let (before, _) = committed_counts(d.out.path());
    assert!(before.len() < oracle().len(), "the stop came after every window fired");

    let mut second = Run::new(p2, d.out.path(), d.ids.path());
    second.restore = Some(&d.sp);
    second.fjall = fjall2.then_some(state.path());
    run_to_end(second).unwrap();
    let (got, lines) = committed_counts(d.out.path());
    assert_eq!(got, oracle(), "p 2 -> {p2}: window counts differ from the batch count");
    assert_eq!(lines, oracle().len(), "p 2 -> {p2}: a window fired twice");
    assert_ids_once(d.ids.path());
}

#[test]
fn a_savepoint_at_p2_resumes_at_p1() {
    stop_and_resume(1, false, false);
}

#[test]
fn a_savepoint_at_p2_resumes_at_p2() {
    stop_and_resume(2, false, false);
}

#[test]
fn a_savepoint_at_p2_resumes_at_p3() {
    stop_and_resume(3, false, false);
}

#[test]
fn a_savepoint_at_p2_resumes_at_p4() {
    stop_and_resume(4, false, false);
}

#[test]
fn a_savepoint_at_p2_resumes_at_max_parallelism() {
    stop_and_resume(MAX_PARALLELISM as usize, false, false);
}

#[test]
fn a_memory_savepoint_resumes_on_fjall() {
    stop_and_resume(2, false, true);
}

#[test]
fn a_fjall_savepoint_resumes_in_memory_at_p3() {
    stop_and_resume(3, true, false);
}

#[test]
fn a_draining_stop_fires_every_window_and_the_resumed_job_counts_the_rest() {
    let d = dirs();
    run_and_stop(Run::new(2, d.out.path(), d.ids.path()), &d.sp, true).unwrap();
    // Drained: every window that had a record before the stop fired, so
    // the first run's output covers windows up to the end of event time
    // reached, with partial counts for the windows the stop cut.
    let (first, _) = committed_counts(d.out.path());
    let reached = first.keys().map(|(_, w)| *w).max().unwrap();
    assert!(reached >= PER_SPLIT / 2 * STEP_MS - WINDOW_MS, "the drain fired too little: {reached}");
    let mut second = Run::new(2, d.out.path(), d.ids.path());
    second.restore = Some(&d.sp);
    run_to_end(second).unwrap();
    // Together: every event counted once (a window cut by the stop is
    // reported in two parts).
    let (got, _) = committed_counts(d.out.path());
    assert_eq!(got, oracle(), "records lost or counted twice across a draining stop");
    assert_ids_once(d.ids.path());
}

#[test]
fn an_added_operator_starts_empty() {
    let d = dirs();
    run_and_stop(Run::new(2, d.out.path(), d.ids.path()), &d.sp, false).unwrap();
    let mut second = Run::new(2, d.out.path(), d.ids.path());
    second.restore = Some(&d.sp);
    second.extra = Some("new-counter");
    let counts = run_to_end(second).unwrap().unwrap();
    // It counted only the second run's records: the ids it committed.
    let total: u64 = counts.values().sum();
    let (got, _) = committed_counts(d.out.path());
    assert_eq!(got, oracle());
    let first_run_ids = read_committed(d.ids.path()).unwrap().len() as u64 - total;
    assert!(total > 0 && first_run_ids > 0, "the added operator counted {total}");
    assert_ids_once(d.ids.path());
}

#[test]
fn a_removed_operator_is_an_error_unless_allowed() {
    let d = dirs();
    let mut first = Run::new(2, d.out.path(), d.ids.path());
    first.extra = Some("old-counter");
    run_and_stop(first, &d.sp, false).unwrap();

    let mut second = Run::new(2, d.out.path(), d.ids.path());
    second.restore = Some(&d.sp);
    let err = run_to_end(second).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Savepoint { .. }), "{msg}");
    assert!(msg.contains("'old-counter'") && msg.contains("allow non-restored state"), "{msg}");

    let mut third = Run::new(2, d.out.path(), d.ids.path());
    third.restore = Some(&d.sp);
    third.allow_non_restored = true;
    run_to_end(third).unwrap();
    assert_eq!(committed_counts(d.out.path()).0, oracle());
    assert_ids_once(d.ids.path());
}

#[test]
fn a_renamed_uid_is_reported_with_both_names() {
    let d = dirs();
    run_and_stop(Run::new(2, d.out.path(), d.ids.path()), &d.sp, false).unwrap();
    let mut second = Run::new(2, d.out.path(), d.ids.path());
    second.restore = Some(&d.sp);
    second.window_uid = "window-count-v2";
    let msg = run_to_end(second).unwrap_err().to_string();
    assert!(msg.contains("'window-count'") && msg.contains("'window-count-v2'"), "{msg}");
}

#[test]
fn the_inspection_api_lists_operators_and_sizes() {
    let d = dirs();
    run_and_stop(Run::new(2, d.out.path(), d.ids.path()), &d.sp, false).unwrap();
    let sp = Savepoint::load(&d.sp).unwrap();
    let ops = sp.operators();
    let window = ops.iter().find(|o| o.uid == "window-count").unwrap();
    assert_eq!((window.parallelism, window.key_groups, window.files.len()), (2, MAX_PARALLELISM, 2));
    assert!(window.bytes > 0 && !window.generated_uid);
    let source = ops.iter().find(|o| o.uid == "events").unwrap();
    assert_eq!(source.files.len(), 2, "one position per source subtask");
    assert_eq!(sp.bytes(), ops.iter().map(|o| o.bytes).sum::<u64>());
}

#[test]
fn a_savepoint_of_a_newer_format_or_another_max_parallelism_is_refused() {
    let d = dirs();
    run_and_stop(Run::new(2, d.out.path(), d.ids.path()), &d.sp, false).unwrap();
    // Another max parallelism: key groups cannot be mapped.
    let env = StreamEnvironment::new().with_max_parallelism(16);
    env.restore_from(&d.sp);
    env.from_splits(1, |_| 0..3u64).uid("events").for_each(|_| {});
    let msg = rt().block_on(env.execute()).unwrap_err().to_string();
    assert!(msg.contains("max parallelism 8") && msg.contains("16"), "{msg}");
    // A newer format version: the version field follows the 8-byte magic.
    let meta = d.sp.join("_metadata");
    let mut bytes = std::fs::read(&meta).unwrap();
    bytes[9] += 1;
    let n = bytes.len();
    let crc = crc32c::crc32c(&bytes[..n - 4]);
    bytes[n - 4..].copy_from_slice(&crc.to_be_bytes());
    std::fs::write(&meta, bytes).unwrap();
    let msg = Savepoint::load(&d.sp).unwrap_err().to_string();
    assert!(msg.contains("format version 2 is newer"), "{msg}");
}

#[test]
fn a_savepoint_needs_an_empty_folder() {
    let d = dirs();
    std::fs::create_dir_all(&d.sp).unwrap();
    std::fs::write(d.sp.join("something"), b"x").unwrap();
    let err = run_and_stop(Run::new(2, d.out.path(), d.ids.path()), &d.sp, false);
    // The stop fails before anything is triggered; the gate is never
    // released, so the job is dropped with the runtime.
    let msg = err.unwrap_err().to_string();
    assert!(msg.contains("not empty"), "{msg}");
}

/// A savepoint of a job without checkpointing, which goes on after it;
/// resumed from it, a job with a rolling sum counts the records after the
/// savepoint's positions on top of the saved sums.
#[test]
fn a_savepoint_while_the_job_goes_on() {
    let sp_root = tempfile::tempdir().unwrap();
    let sp = sp_root.path().join("sp");
    let g = Gate::holding(past_middle);
    let env = StreamEnvironment::new().with_parallelism(2).with_max_parallelism(MAX_PARALLELISM).with_batch_size(64);
    let sums = env
        .from_splits(SPLITS, |s| (0..PER_SPLIT).map(move |i| event(s, i)))
        .uid("events")
        .apply_async(gate(&g, time_of))
        .key_by(|e: &Ev| e.0)
        .sum(|_| 1u64)
        .uid("sums")
        .collect();
    let at_savepoint = savepoint_at_gates(env, &g, 2, &sp).unwrap();
    // The first run went on to the end.
    let mut last: BTreeMap<u64, u64> = BTreeMap::new();
    for (k, n) in sums.take() {
        let e = last.entry(k).or_default();
        *e = n.max(*e);
    }
    assert_eq!(last.values().sum::<u64>(), SPLITS as u64 * PER_SPLIT);

    // Resumed at p = 3 with no gate: each key's final sum counts every
    // event once (saved part + replayed part).
    let env = StreamEnvironment::new().with_parallelism(3).with_max_parallelism(MAX_PARALLELISM).with_batch_size(64);
    env.restore_from(&at_savepoint);
    let sums = env
        .from_splits(SPLITS, |s| (0..PER_SPLIT).map(move |i| event(s, i)))
        .uid("events")
        .apply_async(gate(&Gate::default(), time_of))
        .key_by(|e: &Ev| e.0)
        .sum(|_| 1u64)
        .uid("sums")
        .collect();
    let result = rt().block_on(env.execute()).unwrap();
    let replayed = result.operator("splits").unwrap().records_out;
    assert!(replayed < SPLITS as u64 * PER_SPLIT, "the source started over");
    let mut resumed: BTreeMap<u64, u64> = BTreeMap::new();
    for (k, n) in sums.take() {
        let e = resumed.entry(k).or_default();
        *e = n.max(*e);
    }
    let mut expected: BTreeMap<u64, u64> = BTreeMap::new();
    for (k, _, _) in events() {
        *expected.entry(k).or_default() += 1;
    }
    assert_eq!(resumed, expected);
}

/// A job started from a savepoint that checkpoints and is started again
/// with the same checkpoint folder (a restart) resumes from its newer
/// checkpoint, not from the savepoint: here the first resumed run ended,
/// so the second one publishes nothing more.
#[test]
fn a_newer_checkpoint_wins_over_the_savepoint() {
    let d = dirs();
    let chk = tempfile::tempdir().unwrap();
    run_and_stop(Run::new(2, d.out.path(), d.ids.path()), &d.sp, false).unwrap();
    for _ in 0..2 {
        let mut resumed = Run::new(3, d.out.path(), d.ids.path());
        resumed.restore = Some(&d.sp);
        resumed.checkpoints = Some(chk.path());
        run_to_end(resumed).unwrap();
    }
    let (got, lines) = committed_counts(d.out.path());
    assert_eq!((got, lines), (oracle(), oracle().len()), "the second run replayed the savepoint's tail");
    // A restarted job no longer needs the savepoint: removed, the job
    // still resumes from its checkpoint.
    std::fs::remove_dir_all(&d.sp).unwrap();
    let mut again = Run::new(3, d.out.path(), d.ids.path());
    again.restore = Some(&d.sp);
    again.checkpoints = Some(chk.path());
    run_to_end(again).unwrap();
    assert_eq!(committed_counts(d.out.path()).1, oracle().len());
    assert_ids_once(d.ids.path());
}

/// A checkpoint that is not newer than the savepoint (taken before it, or
/// by another job) does not replace it: the job starts from the savepoint.
#[test]
fn an_older_checkpoint_does_not_replace_the_savepoint() {
    let d = dirs();
    let chk = tempfile::tempdir().unwrap();
    // Another run of the job, to its end, leaves checkpoint 1 in `chk`.
    let (other_out, other_ids) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut other = Run::new(2, other_out.path(), other_ids.path());
    other.checkpoints = Some(chk.path());
    run_to_end(other).unwrap();
    // Savepoint 1 of a job without checkpoints.
    run_and_stop(Run::new(2, d.out.path(), d.ids.path()), &d.sp, false).unwrap();
    let mut resumed = Run::new(2, d.out.path(), d.ids.path());
    resumed.restore = Some(&d.sp);
    resumed.checkpoints = Some(chk.path());
    run_to_end(resumed).unwrap();
    assert_eq!(committed_counts(d.out.path()).0, oracle(), "restored from the other run's checkpoint");
    assert_ids_once(d.ids.path());
}
