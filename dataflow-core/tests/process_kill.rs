//! Process-level crash test: a child process running a checkpointed job is
//! killed with SIGKILL (`std::process::Child::kill`) at random moments, and
//! started again with the same checkpoint and output directories; after the
//! last, undisturbed run the committed output equals a batch computation of
//! the same events: every line exactly once, nothing else.
//!
//! The test binary re-executes itself as the child: the parent runs
//! `<this binary> --exact child_process --nocapture` with
//! `DATAFLOW_KILL_CHILD` naming the directories; without that variable
//! `child_process` returns at once (so it passes trivially in a normal run).
//!
//! The kills: some after a random delay (a few right after the start, so
//! while the job restores), some the moment a new `chk-<id>` folder or a
//! `chk-<id>/_metadata.tmp` file appears (the coordinator writes the
//! metadata there after the last acknowledgement and renames it to
//! `_metadata`, see `checkpoint/storage.rs`), some once a given share of
//! the output is committed, one near the end (once nearly all records are
//! committed, at the next `_metadata.tmp`: most likely the final
//! checkpoint's) and one the moment every record is committed (the job may
//! not have exited yet). Watching the file system is best effort: the
//! parent polls it in a loop and may see a short-lived file late or not at
//! all, and the child may be a little further on when the signal arrives.
//! Every round prints what it aimed at and whether the child was still
//! running when killed.
//!
//! Both exactly-once modes are tested: unaligned checkpoints (the default,
//! where a barrier overtakes the records in flight and they become channel
//! state) and aligned ones; and a job reading the same records from JSON
//! Lines files (the file source, a watermark per file), its checkpoints
//! at a `file://` URL, killed at 23 points.
//!
//! The seed is taken from `DATAFLOW_KILL_SEED` when set, otherwise from the
//! clock; it is printed at the start and in every failure message (the
//! timing of a run cannot be replayed exactly, only the plan).

use dataflow_core::checkpoint::CheckpointingMode;
use dataflow_core::checkpoint::coordinator::CheckpointConfig;
use dataflow_core::connectors::file::{FileSource, Format};
use dataflow_core::connectors::split::SplitSource;
use dataflow_core::connectors::two_phase::read_committed;
use dataflow_core::connectors::{Source, SourceContext, SourceStatus};
use dataflow_core::time::WatermarkStrategy;
use dataflow_core::window::{TimeWindow, TumblingEventTimeWindows};
use dataflow_core::{BoxError, StreamEnvironment};
use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use wait_timeout::ChildExt;

mod common;

/// Records per source subtask.
const N: u64 = 8_000;
/// Source parallelism (and the job's).
const P: u64 = 2;
const KEYS: u64 = 37;
/// Event-time window size (a record's event time is its value, in ms).
const WINDOW_MS: u64 = 400;
/// Records a source emits between two short sleeps (the sleeps stretch a
/// run to about three seconds, so that kills land in the middle of it).
const BATCH: u64 = 20;
const SLEEP: Duration = Duration::from_millis(4);
/// How long the undisturbed last run may take before the test gives up.
const LAST_RUN_LIMIT: Duration = Duration::from_secs(60);

const CHILD_ENV: &str = "DATAFLOW_KILL_CHILD";
/// `aligned` for aligned checkpoints; unaligned (the default) otherwise.
const MODE_ENV: &str = "DATAFLOW_KILL_MODE";
const CHILD_TEST: &str = "child_process";
/// The S3 server's endpoint, in the S3 mode.
const S3_ENV: &str = "DATAFLOW_KILL_S3";

/// A small deterministic generator (the seed decides the plan).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// Subtask `i` emits `i*N .. (i+1)*N` in order, `BATCH` at a time with a
/// short sleep after each; its position is the next record.
struct Numbers {
    next: u64,
    end: u64,
}

#[async_trait::async_trait]
impl Source<u64> for Numbers {
    async fn poll_batch(&mut self, ctx: &mut SourceContext<u64>) -> Result<SourceStatus, BoxError> {
        let stop = (self.next + BATCH).min(self.end);
        while self.next < stop {
            ctx.collect(self.next, None);
            self.next += 1;
        }
        tokio::time::sleep(SLEEP).await;
        Ok(if self.next == self.end { SourceStatus::Finished } else { SourceStatus::More })
    }

    fn position(&self) -> Option<Vec<u8>> {
        Some(self.next.to_be_bytes().to_vec())
    }

    fn seek(&mut self, position: &[u8]) -> Result<(), BoxError> {
        self.next = u64::from_be_bytes(position.try_into()?);
        Ok(())
    }
}

/// The directories one run of the child uses.
struct Dirs {
    chk: PathBuf,
    records: PathBuf,
    sums: PathBuf,
    windows: PathBuf,
    done: PathBuf,
    /// The input files of the file mode.
    input: PathBuf,
}

impl Dirs {
    fn under(root: &Path) -> Self {
        Dirs {
            chk: root.join("chk"),
            records: root.join("records"),
            sums: root.join("sums"),
            windows: root.join("windows"),
            done: root.join("done"),
            input: root.join("input"),
        }
    }
}

/// The job the child runs: every record as it is, a keyed running sum of
/// `record + 1` per key (each input gives one `key sum` line), and
/// event-time tumbling window counts per key, all three through
/// transactional files; checkpoints every 20 ms on the system clock.
fn job(dirs: &Dirs) {
    let mode = std::env::var(MODE_ENV).unwrap_or_default();
    let files = mode.starts_with("files");
    // The file modes read a batch at a time between barriers, so that the
    // paced map below holds a barrier back for one short sleep only.
    let batch = if files { BATCH as usize } else { 1024 };
    let env = StreamEnvironment::new().with_parallelism(P as usize).with_batch_size(batch);
    let mut config = CheckpointConfig::every(Duration::from_millis(20));
    if mode == "aligned" {
        config.mode = CheckpointingMode::Aligned;
    }
    // The file modes keep their checkpoints at a file:// URL or on S3.
    let chk = match std::env::var(S3_ENV) {
        Ok(endpoint) => {
            env.set_storage_options(common::s3::options(&endpoint));
            "s3://checkpoints/kill".to_string()
        }
        Err(_) if files => format!("file://{}", dirs.chk.display()),
        Err(_) => dirs.chk.display().to_string(),
    };
    env.enable_checkpointing(config, chk);
    // Event time is a record's value: monotonous per source subtask, or
    // per file with a watermark per file.
    let (records, timed) = if files {
        let strategy = WatermarkStrategy::for_monotonous_timestamps().with_timestamp_assigner(|j: &u64, _| *j as i64);
        let source = SplitSource::from(FileSource::new(&dirs.input, Format::<u64>::json_lines())).with_turn(batch);
        // Paced like `Numbers`, so that kills land while the job runs.
        let records = env.from_source(source, strategy).uid("files").map(|j: u64| {
            if j.is_multiple_of(BATCH) {
                std::thread::sleep(SLEEP);
            }
            j
        });
        (records.clone(), records)
    } else {
        let records = env.add_source("numbers", |info| {
            let i = info.subtask as u64;
            Numbers { next: i * N, end: (i + 1) * N }
        });
        let strategy = WatermarkStrategy::for_monotonous_timestamps().with_timestamp_assigner(|j: &u64, _| *j as i64);
        (records.clone(), records.assign_timestamps_and_watermarks(strategy))
    };
    records.map(|j: u64| j.to_string()).write_transactional_files(&dirs.records);
    records
        .map(|j: u64| (j % KEYS, j + 1))
        .key_by(|e: &(u64, u64)| e.0)
        .reduce(|a: (u64, u64), b: (u64, u64)| (a.0, a.1 + b.1))
        .map(|(k, s): (u64, u64)| format!("{k} {s}"))
        .write_transactional_files(&dirs.sums);
    timed
        .key_by(|j: &u64| j % KEYS)
        .window(TumblingEventTimeWindows::of(Duration::from_millis(WINDOW_MS)))
        .count()
        .map(|(k, w, n): (u64, TimeWindow, u64)| format!("{k} {} {n}", w.start))
        .write_transactional_files(&dirs.windows);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(env.execute()).expect("the job failed");
    std::fs::write(&dirs.done, "done\n").unwrap();
}

/// The input of the file mode: the same records as `Numbers` makes, in
/// 4 files per source subtask's range, one JSON number per line.
fn write_input(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let per_file = N / 4;
    for f in 0..P * 4 {
        let lines: String = (f * per_file..(f + 1) * per_file).map(|j| format!("{j}\n")).collect();
        std::fs::write(dir.join(format!("part-{f}.jsonl")), lines).unwrap();
    }
}

/// Child mode: runs the job when the parent asked for it, else nothing.
#[test]
fn child_process() {
    if let Some(root) = std::env::var_os(CHILD_ENV) {
        job(&Dirs::under(Path::new(&root)));
    }
}

fn spawn(root: &Path, run: usize, mode: &str, s3: Option<&str>) -> Child {
    let log = |what: &str| std::fs::File::create(root.join(format!("run-{run}.{what}"))).unwrap();
    let mut command = Command::new(std::env::current_exe().unwrap());
    if let Some(endpoint) = s3 {
        command.env(S3_ENV, endpoint);
    }
    command
        .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, root)
        .env(MODE_ENV, mode)
        .stdin(Stdio::null())
        .stdout(log("stdout"))
        .stderr(log("stderr"))
        .spawn()
        .unwrap()
}

/// The ids of the `chk-<id>` folders, highest first.
fn checkpoint_ids(chk: &Path) -> Vec<u64> {
    let mut ids: Vec<u64> = match std::fs::read_dir(chk) {
        Ok(entries) => {
            entries.filter_map(|e| e.ok()?.file_name().to_str()?.strip_prefix("chk-")?.parse().ok()).collect()
        }
        Err(_) => Vec::new(),
    };
    ids.sort_unstable_by(|a, b| b.cmp(a));
    ids
}

/// Whether one of the two newest checkpoint folders holds `_metadata.tmp`
/// (its last acknowledgement came, the metadata is not renamed yet).
fn metadata_in_progress(chk: &Path) -> bool {
    checkpoint_ids(chk).iter().take(2).any(|id| chk.join(format!("chk-{id}")).join("_metadata.tmp").exists())
}

/// Committed lines in `dir` (none while it does not exist).
fn committed(dir: &Path) -> Vec<String> {
    if dir.exists() { read_committed(dir).unwrap() } else { Vec::new() }
}

/// When a round kills its child.
#[derive(Debug, Clone, Copy)]
enum Moment {
    /// After this long.
    After(Duration),
    /// When the `n`-th checkpoint folder newer than those at the start appears.
    NewCheckpoint(u64),
    /// At the `n`-th sighting of a `_metadata.tmp`.
    Metadata(u64),
    /// Once at least this many records are committed.
    Committed(u64),
    /// Once at least this many records are committed, at the next sighting
    /// of a `_metadata.tmp`.
    MetadataAfter(u64),
}

/// Waits until `moment` (or until the child exits on its own) and kills
/// the child; returns whether it was still running, and a description.
fn kill_at(child: &mut Child, dirs: &Dirs, moment: Moment) -> (bool, String) {
    let start = Instant::now();
    let known = checkpoint_ids(&dirs.chk).first().copied().unwrap_or(0);
    let mut sightings = 0;
    let mut was_in_progress = false;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (false, format!("exited on its own ({status}) after {:?}", start.elapsed()));
        }
        let now = match moment {
            Moment::After(d) => start.elapsed() >= d,
            // Ids only grow (older folders are deleted as newer ones complete).
            Moment::NewCheckpoint(n) => checkpoint_ids(&dirs.chk).first().is_some_and(|id| *id >= known + n),
            Moment::Metadata(n) | Moment::MetadataAfter(n) => {
                let ready = match moment {
                    Moment::MetadataAfter(_) => committed(&dirs.records).len() as u64 >= n,
                    _ => true,
                };
                // A new sighting: the file is there and was not at the last look.
                let seen = ready && metadata_in_progress(&dirs.chk);
                if seen && !was_in_progress {
                    sightings += 1;
                }
                was_in_progress = seen;
                match moment {
                    Moment::Metadata(n) => sightings >= n,
                    _ => sightings >= 1,
                }
            }
            Moment::Committed(n) => committed(&dirs.records).len() as u64 >= n,
        };
        if now {
            let _ = child.kill();
            let status = child.wait().unwrap();
            let killed = status.signal() == Some(9);
            let ids = checkpoint_ids(&dirs.chk);
            let in_progress = metadata_in_progress(&dirs.chk);
            return (
                killed,
                format!(
                    "{} after {:?} ({status}); newest checkpoint folder {:?}, _metadata.tmp left: {in_progress}",
                    if killed { "killed" } else { "had exited" },
                    start.elapsed(),
                    ids.first()
                ),
            );
        }
        // The moments are in another process (its files, its clock): there
        // is no event to wait on, so this polls, as briefly as it can.
        match moment {
            Moment::After(_) => std::thread::sleep(Duration::from_millis(1)),
            // Best effort: poll the checkpoint directory as often as we can.
            Moment::NewCheckpoint(_) | Moment::Metadata(_) => std::thread::yield_now(),
            _ => std::thread::sleep(Duration::from_micros(200)),
        }
    }
}

/// What the job must commit, computed by plain batch code.
fn oracle() -> (Vec<String>, BTreeMap<u64, Vec<u64>>, Vec<String>) {
    let total = P * N;
    let mut records: Vec<String> = (0..total).map(|j| j.to_string()).collect();
    records.sort();
    // Per key, the values `j + 1` its records add to the running sum.
    let mut values: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    let mut windows: BTreeMap<(u64, u64), u64> = BTreeMap::new();
    for j in 0..total {
        values.entry(j % KEYS).or_default().push(j + 1);
        *windows.entry((j % KEYS, j / WINDOW_MS * WINDOW_MS)).or_default() += 1;
    }
    for v in values.values_mut() {
        v.sort_unstable();
    }
    let mut windows: Vec<String> = windows.iter().map(|((k, w), n)| format!("{k} {w} {n}")).collect();
    windows.sort();
    (records, values, windows)
}

/// Differences between two sorted line lists: (extra, missing), a few each.
fn diff(got: &[String], expected: &[String]) -> String {
    let (mut extra, mut missing) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < got.len() || j < expected.len() {
        if j == expected.len() || (i < got.len() && got[i] < expected[j]) {
            extra.push(got[i].clone());
            i += 1;
        } else if i == got.len() || got[i] > expected[j] {
            missing.push(expected[j].clone());
            j += 1;
        } else {
            i += 1;
            j += 1;
        }
    }
    format!(
        "{} lines, {} expected: {} extra (first {:?}), {} missing (first {:?})",
        got.len(),
        expected.len(),
        extra.len(),
        &extra[..extra.len().min(8)],
        missing.len(),
        &missing[..missing.len().min(8)]
    )
}

/// Kills the child at the planned moments, runs it once more to its end,
/// and compares the committed output with the oracle.
fn kill_and_restart(mode: &str) {
    // One parent at a time: the plan's timing assumes the machine is not
    // also running the other mode's children.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let seed = std::env::var("DATAFLOW_KILL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    eprintln!("process_kill {mode}: seed {seed} (set DATAFLOW_KILL_SEED={seed} to reuse the plan)");
    let mut rng = Lcg(seed);
    rng.below(1_000);
    let total = P * N;
    let ms = |lo: u64, hi: u64, rng: &mut Lcg| Duration::from_millis(lo + rng.below(hi - lo));
    let share = |lo: u64, hi: u64, rng: &mut Lcg| total * (lo + rng.below(hi - lo)) / 100;
    // An undisturbed run takes about three seconds; the rounds before the
    // last three take at most about a second of its work together, so those three
    // find a job still running.
    let mut plan = vec![
        // Very early: before the first checkpoint, or while restoring.
        Moment::After(ms(0, 150, &mut rng)),
        Moment::NewCheckpoint(1 + rng.below(3)),
        Moment::Metadata(1 + rng.below(4)),
        Moment::After(ms(0, 60, &mut rng)),
        Moment::After(ms(100, 500, &mut rng)),
        Moment::Metadata(1 + rng.below(6)),
        Moment::Committed(share(40, 80, &mut rng)),
        // Near the end: the last checkpoints before the sources end, or
        // the final one (taken once they all ended).
        Moment::MetadataAfter(share(85, 97, &mut rng)),
        // Once everything is committed, before the process exits if we are quick.
        Moment::Committed(total),
    ];
    // On S3 the parent cannot watch the checkpoints: kills after a delay
    // and at a share of the output only.
    let moto = (mode == "files-s3").then(common::s3::Moto::start);
    if let Some(moto) = &moto {
        moto.create_bucket("checkpoints");
        plan = (0..21)
            .map(|i| match i % 2 {
                0 => Moment::After(ms(0, 400, &mut rng)),
                _ => Moment::Committed(share(i * 4, i * 4 + 5, &mut rng)),
            })
            .chain([Moment::Committed(total)])
            .collect();
    }
    let s3 = moto.as_ref().map(|m| m.endpoint.as_str());
    if mode == "files" {
        // 20 and more kills: more of every kind before the last two.
        let more: Vec<Moment> = (0..14)
            .map(|i| match rng.below(4) {
                0 => Moment::After(ms(0, 300, &mut rng)),
                1 => Moment::NewCheckpoint(1 + rng.below(3)),
                2 => Moment::Metadata(1 + rng.below(4)),
                _ => Moment::Committed(share(5 + i * 5, 10 + i * 5, &mut rng)),
            })
            .collect();
        plan.splice(plan.len() - 2..plan.len() - 2, more);
    }

    let root = tempfile::tempdir().unwrap();
    let dirs = Dirs::under(root.path());
    if mode.starts_with("files") {
        write_input(&dirs.input);
    }
    let logs = |run: usize| {
        let read =
            |what: &str| std::fs::read_to_string(root.path().join(format!("run-{run}.{what}"))).unwrap_or_default();
        format!("--- run {run} stdout:\n{}\n--- run {run} stderr:\n{}", read("stdout"), read("stderr"))
    };
    let started = Instant::now();
    let mut landed = 0;
    let mut report = Vec::new();
    for (run, moment) in plan.iter().enumerate() {
        let _ = std::fs::remove_file(&dirs.done);
        let mut child = spawn(root.path(), run, mode, s3);
        let (killed, what) = kill_at(&mut child, &dirs, *moment);
        let line = format!("run {run}: {moment:?}: {what}; {} records committed", committed(&dirs.records).len());
        eprintln!("process_kill {mode}: {line}");
        report.push(line);
        if killed {
            landed += 1;
        } else {
            // It ended before the kill: it must have ended well.
            assert!(
                dirs.done.exists(),
                "{mode}, seed {seed}: run {run} ended without finishing its job\n{}",
                logs(run)
            );
        }
    }
    // The last run, undisturbed. (When every record is committed already,
    // an earlier run got past its final checkpoint's commit: this run
    // resumes from that final checkpoint and must publish nothing new.)
    let last = plan.len();
    report.push(format!("before the last run: {} of {total} records committed", committed(&dirs.records).len()));
    let _ = std::fs::remove_file(&dirs.done);
    let mut child = spawn(root.path(), last, mode, s3);
    // Waits for the child's exit (SIGCHLD), with a limit as a safety net.
    let Some(status) = child.wait_timeout(LAST_RUN_LIMIT).unwrap() else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{mode}, seed {seed}: the last run did not end\n{}\n{}", report.join("\n"), logs(last));
    };
    assert!(
        status.success() && dirs.done.exists(),
        "{mode}, seed {seed}: the last run failed ({status})\n{}",
        logs(last)
    );
    eprintln!(
        "process_kill {mode}: {landed} of {} kills hit a running job; {:?} in all",
        plan.len(),
        started.elapsed()
    );
    let context = format!("{mode}, seed {seed}, kills:\n{}", report.join("\n"));
    // The test is pointless unless most kills interrupted a running job.
    assert!(landed >= plan.len() / 2, "{context}\nonly {landed} kills hit a running job");

    let (records, values, windows) = oracle();
    let mut got = committed(&dirs.records);
    got.sort();
    assert!(got == records, "{context}\nrecords: {}", diff(&got, &records));

    let mut got = committed(&dirs.windows);
    got.sort();
    assert!(got == windows, "{context}\nwindow counts: {}", diff(&got, &windows));

    // Running sums: per key, sorted, each step adds one of the key's values,
    // and every value exactly once (the sums are distinct, values > 0).
    let mut sums: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for line in committed(&dirs.sums) {
        let (k, s) = line.split_once(' ').unwrap();
        sums.entry(k.parse().unwrap()).or_default().push(s.parse().unwrap());
    }
    for (k, expected) in &values {
        let mut s = sums.remove(k).unwrap_or_default();
        s.sort_unstable();
        let mut steps: Vec<u64> = s.iter().scan(0, |prev, x| Some(x - std::mem::replace(prev, *x))).collect();
        steps.sort_unstable();
        if steps != *expected {
            let lines = |v: &[u64]| {
                let mut l: Vec<String> = v.iter().map(u64::to_string).collect();
                l.sort();
                l
            };
            panic!(
                "{context}\nkey {k}: the running sums' steps are not its values once each: {}",
                diff(&lines(&steps), &lines(expected))
            );
        }
    }
    assert!(sums.is_empty(), "{context}\nsums for unknown keys: {:?}", sums.keys().collect::<Vec<_>>());
}

#[test]
fn unaligned_checkpoints_survive_kills() {
    kill_and_restart("unaligned");
}

#[test]
fn aligned_checkpoints_survive_kills() {
    kill_and_restart("aligned");
}

/// File source (a watermark per file) → windows → file sinks, checkpoints
/// at a `file://` URL, killed at 23 points.
#[test]
fn a_file_job_survives_kills() {
    kill_and_restart("files");
}

/// The same with its checkpoints on a local S3 server (moto), killed at 22
/// points.
#[test]
fn a_file_job_checkpointing_to_s3_survives_kills() {
    kill_and_restart("files-s3");
}
