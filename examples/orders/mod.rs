//! The orders pipeline of `cargo run --release --example orders`: JSON Lines
//! files arriving in a folder → per-category, one-minute event-time windows
//! of order count and revenue, late orders and bad lines aside, all written
//! exactly once, with checkpoints, an injected crash, a savepoint mid-run
//! and a stop with a savepoint at the end. `tests/orders.rs` runs it small.

use dataflow_core::checkpoint::coordinator::CheckpointConfig;
use dataflow_core::checkpoint::restart::RestartStrategy;
use dataflow_core::connectors::file::{FileSource, Format};
use dataflow_core::operator::{BadRecordPolicy, OutputTag};
use dataflow_core::time::WatermarkStrategy;
use dataflow_core::window::{TimeWindow, TumblingEventTimeWindows};
use dataflow_core::{BoxError, StreamEnvironment};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// An order, as a line of JSON.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Order {
    /// Unique, in the order written.
    pub id: u64,
    /// What was bought.
    pub category: String,
    /// Price in cents.
    pub cents: u64,
    /// When it was placed (event time, ms).
    pub time: i64,
}

/// One window's result: orders and revenue of a category in a minute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowTotal {
    /// The window's start (ms).
    pub start: i64,
    /// The category.
    pub category: String,
    /// Orders in it.
    pub orders: u64,
    /// Revenue in cents.
    pub cents: u64,
}

impl std::fmt::Display for WindowTotal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {} {}", self.start, self.category, self.orders, self.cents)
    }
}

impl std::str::FromStr for WindowTotal {
    type Err = BoxError;
    fn from_str(s: &str) -> Result<Self, BoxError> {
        let f: Vec<&str> = s.split(' ').collect();
        let [start, category, orders, cents] = f[..] else { return Err(format!("not a window total: {s}").into()) };
        Ok(Self { start: start.parse()?, category: category.into(), orders: orders.parse()?, cents: cents.parse()? })
    }
}

const CATEGORIES: [&str; 6] = ["books", "games", "garden", "kitchen", "music", "toys"];
const MINUTE: i64 = 60_000;
/// How far orders within a file are out of order.
const BOUND_MS: i64 = 5_000;

/// How the run goes: files of orders, one written every `every`, and the
/// order whose processing crashes once.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Files to write.
    pub files: usize,
    /// Lines per file.
    pub per_file: u64,
    /// Time between two files.
    pub every: Duration,
    /// The order at which the job crashes once (none: no crash).
    pub crash_at: Option<u64>,
}

/// What the generator wrote: the good orders, the late ones, bad lines.
#[derive(Clone, Debug, Default)]
pub struct Written {
    /// Orders in time within their file (each file is one minute).
    pub orders: Vec<Order>,
    /// Stragglers: orders far behind (an old minute, at the end of a later
    /// file). Whether one is late depends on when it arrives: after its
    /// window fired it goes to the late output, before that into its window.
    pub stragglers: Vec<Order>,
    /// Lines that are not orders.
    pub bad: usize,
}

/// Where a run stands, for a progress line.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// Files written so far.
    pub files_written: usize,
    /// Checkpoints completed.
    pub checkpoints: u64,
    /// Restarts after the injected crash.
    pub restarts: u64,
}

/// The outcome of a run.
#[derive(Debug)]
pub struct Summary {
    /// What was written, for the batch computation.
    pub written: Written,
    /// Orders read (good ones).
    pub orders: usize,
    /// The committed window results, late orders and bad-line reports.
    pub windows_dir: PathBuf,
    /// See `windows_dir`.
    pub late_dir: PathBuf,
    /// See `windows_dir`.
    pub bad_dir: PathBuf,
    /// The savepoint taken mid-run.
    pub savepoint: PathBuf,
    /// The savepoint the job stopped with.
    pub final_savepoint: PathBuf,
    /// Checkpoints completed.
    pub checkpoints: u64,
    /// Restarts (1 with the injected crash).
    pub restarts: u64,
    /// How long the job ran.
    pub elapsed: Duration,
}

/// File `k` holds minute `k`: its orders in time order up to `BOUND_MS`
/// of jitter; every 499th line is broken; from file 6 on its last two
/// lines are orders of minute 0, far too late.
fn write_file(dir: &Path, k: usize, plan: &Plan, written: &mut Written) -> std::io::Result<()> {
    let mut text = String::new();
    let first = k as u64 * plan.per_file;
    for i in 0..plan.per_file {
        let id = first + i;
        if id % 499 == 7 {
            text.push_str("{\"id\": oops}\n");
            written.bad += 1;
            continue;
        }
        let jitter = ((id * 7919) % BOUND_MS as u64) as i64;
        let time = (k as i64 * MINUTE + i as i64 * MINUTE / plan.per_file as i64 - jitter)
            .max(k as i64 * MINUTE - BOUND_MS + 1);
        let order = Order { id, category: CATEGORIES[(id % 6) as usize].into(), cents: 100 + id * 37 % 9_900, time };
        let late = k >= 6 && i + 2 >= plan.per_file;
        let order = if late { Order { time: (id % 50) as i64 * 1_000, ..order } } else { order };
        text.push_str(&serde_json::to_string(&order).map_err(std::io::Error::other)?);
        text.push('\n');
        if late { written.stragglers.push(order) } else { written.orders.push(order) }
    }
    // Written aside and renamed in: the source never sees half a file.
    let (tmp, path) = (dir.join(format!(".orders-{k:04}.jsonl")), dir.join(format!("orders-{k:04}.jsonl")));
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, path)
}

/// What a batch computation over `written` expects, given the orders the
/// job declared late (`late`): per (minute, category) the orders and
/// revenue of every order but those.
pub fn expected(written: &Written, late: &BTreeSet<u64>) -> BTreeMap<(i64, String), (u64, u64)> {
    let mut windows: BTreeMap<(i64, String), (u64, u64)> = BTreeMap::new();
    for o in written.orders.iter().chain(written.stragglers.iter().filter(|o| !late.contains(&o.id))) {
        let w = windows.entry((o.time.div_euclid(MINUTE) * MINUTE, o.category.clone())).or_default();
        (w.0, w.1) = (w.0 + 1, w.1 + o.cents);
    }
    windows
}

/// Runs the job on folder `root/in` while files arrive, with one crash;
/// takes a savepoint halfway and stops with one once every file was read.
pub async fn run(root: &Path, plan: &Plan, mut progress: impl FnMut(&Progress)) -> Result<Summary, BoxError> {
    let (input, out, chk) = (root.join("in"), root.join("out"), root.join("checkpoints"));
    std::fs::create_dir_all(&input)?;
    let env = StreamEnvironment::new().with_parallelism(2).with_bad_record_policy(BadRecordPolicy::SideOutput);
    let checkpoints = env.enable_checkpointing(CheckpointConfig::every(Duration::from_millis(200)), &chk);
    env.set_restart_strategy(RestartStrategy::fixed_delay(3, Duration::ZERO));

    let strategy = WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_millis(BOUND_MS as u64))
        .with_timestamp_assigner(|o: &Order, _| o.time);
    let source = FileSource::new(&input, Format::<Order>::json_lines()).continuous(Duration::from_millis(20));
    let orders = env.from_source(source.into(), strategy).uid("orders");
    orders
        .bad_records()
        .map(|r| serde_json::to_string(&r).unwrap_or_default())
        .uid("bad-json")
        .write_transactional_files(out.join("bad"))
        .uid("bad-out");

    // The injected crash: once, at one order (a replay goes through).
    let crashed = Arc::new(AtomicBool::new(false));
    let (c, crash_at) = (crashed.clone(), plan.crash_at);
    let seen = Arc::new(AtomicU64::new(0));
    let s = seen.clone();
    let checked = orders
        .map(move |o: Order| {
            if Some(o.id) == crash_at && !c.swap(true, Ordering::SeqCst) {
                panic!("injected crash at order {}", o.id);
            }
            s.fetch_max(o.id, Ordering::Relaxed); // replays after the crash do not count twice

            o
        })
        .uid("crash-once");
    let late = OutputTag::<Order>::new("late orders");
    let windows = checked
        .key_by(|o: &Order| o.category.clone())
        .window(TumblingEventTimeWindows::of(Duration::from_secs(60)))
        .side_output_late_data(&late)
        .process(|category: &String, w: &TimeWindow, orders: &[Order]| {
            let cents = orders.iter().map(|o| o.cents).sum();
            WindowTotal { start: w.start, category: category.clone(), orders: orders.len() as u64, cents }.to_string()
        })
        .uid("windows");
    windows.write_transactional_files(out.join("windows")).uid("windows-out");
    windows
        .side_output(&late)
        .map(|o: Order| serde_json::to_string(&o).unwrap_or_default())
        .uid("late-json")
        .write_transactional_files(out.join("late"))
        .uid("late-out");

    // Write the files while the job runs, a savepoint halfway; stop with
    // one once every file was read.
    let job = env.submit();
    let started = Instant::now();
    let now = |files_written| Progress {
        files_written,
        checkpoints: *checkpoints.completed().borrow(),
        restarts: u64::from(crashed.load(Ordering::SeqCst)),
    };
    let mut written = Written::default();
    let mut savepoint = None;
    for k in 0..plan.files {
        write_file(&input, k, plan, &mut written)?;
        if k == plan.files / 2 {
            // A savepoint fails if the job fails meanwhile (as in Flink):
            // then it is taken again once the job runs.
            for attempt in 1.. {
                match job.savepoint(root.join(format!("savepoint-mid-{attempt}"))).await {
                    Ok(path) => {
                        savepoint = Some(path);
                        break;
                    }
                    // Once more when the restarted job completed a checkpoint.
                    Err(e) if attempt < 5 => {
                        tracing::warn!(error = %e, "savepoint failed; once more after the next checkpoint");
                        let mut completed = checkpoints.completed();
                        completed.borrow_and_update();
                        let _ = tokio::time::timeout(Duration::from_secs(30), completed.changed()).await;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        progress(&now(k + 1));
        tokio::time::sleep(plan.every).await;
    }
    // The last file's last good order marks the end of the input.
    let last = written.orders.last().map_or(0, |o| o.id);
    let mut completed = checkpoints.completed();
    while seen.load(Ordering::Relaxed) < last {
        let _ = tokio::time::timeout(Duration::from_millis(100), completed.changed()).await;
        progress(&now(plan.files));
    }
    let final_savepoint = job.stop_with_savepoint(root.join("savepoint-end"), true).await?;
    job.wait().await?;
    Ok(Summary {
        orders: written.orders.len(),
        written,
        windows_dir: out.join("windows"),
        late_dir: out.join("late"),
        bad_dir: out.join("bad"),
        savepoint: savepoint.ok_or("no savepoint was taken")?,
        final_savepoint,
        checkpoints: *checkpoints.completed().borrow(),
        restarts: u64::from(crashed.load(Ordering::SeqCst)),
        elapsed: started.elapsed(),
    })
}

/// The committed output compared with the batch computation.
#[derive(Debug, PartialEq, Eq)]
pub struct Check {
    /// Window results committed.
    pub windows: usize,
    /// Expected windows missing from the output.
    pub lost: usize,
    /// Windows that fired more than once. After a restart the watermark
    /// starts over (as in Flink, watermarks are not checkpointed), so a
    /// straggler that arrives before it catches up opens its window
    /// again, and the window fires a second, partial result; a window's
    /// results add up to its totals.
    pub refired: usize,
    /// Windows with another count or revenue, or not expected at all.
    pub wrong: usize,
    /// Orders set aside as late, and how many stragglers there are.
    pub late: (usize, usize),
    /// Late orders that are not stragglers, or set aside twice.
    pub late_wrong: usize,
    /// Bad lines set aside, and how many were written.
    pub bad: (usize, usize),
}

impl Check {
    /// Whether the output is exactly the batch computation's.
    pub fn exactly_once(&self) -> bool {
        let aside = self.late_wrong == 0 && self.bad.0 == self.bad.1;
        self.lost == 0 && self.wrong == 0 && aside
    }
}

/// Reads what the run committed and compares it with [`expected`]: every
/// order counted once, in its window or (a straggler) as late.
pub fn check(summary: &Summary) -> Result<Check, BoxError> {
    let committed = |dir: &Path| dataflow_core::connectors::two_phase::read_committed(dir);
    let windows: Vec<WindowTotal> =
        committed(&summary.windows_dir)?.iter().map(|l| l.parse()).collect::<Result<_, _>>()?;
    let late: Vec<Order> =
        committed(&summary.late_dir)?.iter().map(|l| serde_json::from_str(l)).collect::<Result<_, _>>()?;
    let late_ids: BTreeSet<u64> = late.iter().map(|o| o.id).collect();
    let stragglers: BTreeSet<u64> = summary.written.stragglers.iter().map(|o| o.id).collect();
    let want = expected(&summary.written, &late_ids);
    // A window that fired more than once: its results add up (an order
    // counted twice shows as a wrong total).
    let mut got: BTreeMap<(i64, String), (u64, u64)> = BTreeMap::new();
    for w in &windows {
        let total = got.entry((w.start, w.category.clone())).or_default();
        (total.0, total.1) = (total.0 + w.orders, total.1 + w.cents);
    }
    Ok(Check {
        windows: windows.len(),
        lost: want.keys().filter(|k| !got.contains_key(*k)).count(),
        refired: windows.len() - got.len(),
        wrong: want.iter().filter(|(k, v)| got.get(*k).is_some_and(|g| g != *v)).count()
            + got.keys().filter(|k| !want.contains_key(*k)).count(),
        late: (late.len(), stragglers.len()),
        late_wrong: late_ids.difference(&stragglers).count() + (late.len() - late_ids.len()),
        bad: (committed(&summary.bad_dir)?.len(), summary.written.bad),
    })
}
