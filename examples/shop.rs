//! The pipeline of the `reprocess` example ("why savepoints matter"): a
//! purchase history in a file that grows, a replayable source that follows
//! it, a running total of spend per customer, and the three ways version 2
//! of the job can start.
//!
//! ```
//! use dataflow_examples::shop::run;
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let dir = tempfile::tempdir().unwrap();
//! let answers = run(dir.path()).await.unwrap();
//! assert_eq!(answers.from_savepoint, answers.batch); // the savepoint carried the morning
//! assert_ne!(answers.at_position, answers.batch); // starting without it loses it
//! # });
//! ```

use async_trait::async_trait;
use dataflow_core::connectors::{Source, SourceContext, SourceStatus};
use dataflow_core::{BoxError, StreamEnvironment, ValueState, operator};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Purchases in the history (a day).
pub const PURCHASES: u64 = 6_000;
/// Version 1 is stopped after this many (noon).
pub const NOON: u64 = 3_000;
/// Customers.
pub const CUSTOMERS: u64 = 12;
/// Version 2 calls a customer VIP from this total spend on (cents).
pub const VIP_CENTS: u64 = 500_000;

/// Purchase `i` as a line of the history file: `customer,cents`.
/// Customer `k` makes `k + 1` of every 78 purchases (some shop a lot, some
/// rarely), of 0.99 to 49.98 each.
pub fn purchase(i: u64) -> String {
    let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20;
    let mut slot = h % 78;
    let mut customer = 0;
    while slot > customer {
        slot -= customer + 1;
        customer += 1;
    }
    let cents = 99 + (h >> 8) % 4_900;
    format!("c{customer:02},{cents}")
}

/// A running total per customer, in the state kept in savepoints.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Spend {
    /// Cents spent so far.
    pub cents: u64,
}

/// Version 1: the running total per customer.
#[operator(uid = "spend")]
pub fn spend_v1(line: (String, u64), total: &mut ValueState<Spend>) -> (String, u64) {
    let t = total.get_or_insert_with(Spend::default);
    t.cents += line.1;
    (line.0, t.cents)
}

/// Version 2: the same totals (same state, same uid), and it says whether
/// the customer is a VIP now (a changed operator).
#[operator(uid = "spend")]
pub fn spend_v2(line: (String, u64), total: &mut ValueState<Spend>) -> (String, u64, bool) {
    let t = total.get_or_insert_with(Spend::default);
    t.cents += line.1;
    (line.0, t.cents, t.cents >= VIP_CENTS)
}

/// A replayable source over the lines of a file, as Flink's file source
/// in continuous mode: its position is the number of lines read; when
/// `follow`, it looks for new lines every few milliseconds at the end of
/// the file instead of finishing.
pub struct History {
    path: PathBuf,
    next: u64,
    follow: bool,
}

impl History {
    /// Reads `path` from its first line.
    pub fn new(path: &Path, follow: bool) -> Self {
        Self { path: path.to_path_buf(), next: 0, follow }
    }

    /// Reads `path` from line `at` (as if it had been read that far).
    pub fn at(path: &Path, at: u64) -> Self {
        Self { path: path.to_path_buf(), next: at, follow: false }
    }
}

#[async_trait]
impl Source<(String, u64)> for History {
    async fn poll_batch(&mut self, ctx: &mut SourceContext<(String, u64)>) -> Result<SourceStatus, BoxError> {
        let text = std::fs::read_to_string(&self.path)?;
        for line in text.lines().skip(self.next as usize).take(ctx.remaining()) {
            let (customer, cents) = line.split_once(',').ok_or_else(|| format!("line {}: no comma", self.next + 1))?;
            ctx.collect((customer.to_string(), cents.parse()?), None);
            self.next += 1;
        }
        if !ctx.values().is_empty() {
            return Ok(SourceStatus::More);
        }
        if !self.follow {
            return Ok(SourceStatus::Finished);
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        Ok(SourceStatus::More)
    }

    fn position(&self) -> Option<Vec<u8>> {
        Some(self.next.to_be_bytes().to_vec())
    }

    fn seek(&mut self, position: &[u8]) -> Result<(), BoxError> {
        self.next = u64::from_be_bytes(position.try_into()?);
        Ok(())
    }
}

fn append(path: &Path, lines: std::ops::Range<u64>) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    let text: String = lines.map(|i| purchase(i) + "\n").collect();
    f.write_all(text.as_bytes())
}

/// The final total per customer of a run's output (totals only grow).
fn finals(out: Vec<(String, u64)>) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for (c, t) in out {
        let e = m.entry(c).or_default();
        *e = t.max(*e);
    }
    m
}

/// Version 2 over the history, started as `source` says; its final totals.
async fn version_2(source: History, restore: Option<&Path>) -> Result<BTreeMap<String, u64>, BoxError> {
    let env = StreamEnvironment::new().with_parallelism(1);
    if let Some(sp) = restore {
        env.restore_from(sp);
    }
    let source = std::sync::Mutex::new(Some(source));
    let out = env
        .add_source("history", move |_| source.lock().unwrap().take().expect("one subtask"))
        .uid("history")
        .key_by(|p: &(String, u64)| p.0.clone())
        .apply(spend_v2())
        .map(|(customer, cents, _vip): (String, u64, bool)| (customer, cents))
        .collect();
    env.execute().await?;
    Ok(finals(out.take()))
}

/// What [`run`] found.
pub struct Answers {
    /// Version 2 from version 1's savepoint.
    pub from_savepoint: BTreeMap<String, u64>,
    /// Version 2 over the whole history, without state.
    pub batch: BTreeMap<String, u64>,
    /// Version 2 from the savepoint's position, without state.
    pub at_position: BTreeMap<String, u64>,
    /// Where the savepoint is.
    pub savepoint: PathBuf,
    /// How many purchases version 1 had read.
    pub position: u64,
    /// Purchases in the whole history.
    pub purchases: u64,
}

/// The story, in `dir`: the morning's history is written; version 1
/// follows it and, once it has counted every morning purchase, is stopped
/// with a savepoint; the afternoon is written; version 2 runs three ways.
pub async fn run(dir: &Path) -> Result<Answers, BoxError> {
    let history = dir.join("history.csv");
    append(&history, 0..NOON)?;

    // Version 1, live: it follows the file.
    let env = StreamEnvironment::new().with_parallelism(1);
    let counted = Arc::new(AtomicU64::new(0));
    let noon = Arc::new(tokio::sync::Notify::new());
    let (c, n, h) = (counted.clone(), noon.clone(), history.clone());
    let source = std::sync::Mutex::new(Some(History::new(&h, true)));
    env.add_source("history", move |_| source.lock().unwrap().take().expect("one subtask"))
        .uid("history")
        .key_by(|p: &(String, u64)| p.0.clone())
        .apply(spend_v1())
        .for_each(move |_| {
            if c.fetch_add(1, Ordering::SeqCst) + 1 == NOON {
                n.notify_one();
            }
        });
    let job = env.submit();
    noon.notified().await;
    let savepoint = job.stop_with_savepoint(dir.join("savepoint-noon"), false).await?;
    job.wait().await?;

    // The afternoon arrives.
    append(&history, NOON..PURCHASES)?;
    let from_savepoint = version_2(History::new(&history, false), Some(&savepoint)).await?;
    let batch = version_2(History::new(&history, false), None).await?;
    let at_position = version_2(History::at(&history, NOON), None).await?;
    Ok(Answers { from_savepoint, batch, at_position, savepoint, position: NOON, purchases: PURCHASES })
}
