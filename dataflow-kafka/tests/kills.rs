//! Kafka → keyed event-time windows → Kafka, exactly once, in a child
//! process SIGKILLed at 20+ random moments and restarted from its latest
//! checkpoint each time, then run to its end.
//!
//! The child is this test binary run as `<binary> --exact child_process`
//! with `DATAFLOW_KAFKA_CHILD` set to the brokers and its checkpoint folder.
//!
//! What is checked, against a batch count over the input topic:
//! * every window result reaches the output topic, in exactly one
//!   committable (one transaction's token, carried in a header): no result
//!   is written by two different transactions, so no replay after a kill
//!   doubled anything;
//! * within one token, the copies beyond the first are what a kill in the
//!   middle of a transaction left behind. A broker hides such aborted
//!   transactions from `read_committed` readers; tansu (the broker these
//!   tests start) does not, so the test counts those copies and prints
//!   them instead of failing on them. That each committable is written
//!   once when the broker honours transactions is shown by
//!   `tests/sink.rs`, without kills.

mod common;

use common::Broker;
use dataflow_core::StreamEnvironment;
use dataflow_core::checkpoint::coordinator::CheckpointConfig;
use dataflow_core::time::WatermarkStrategy;
use dataflow_core::window::{TimeWindow, TumblingEventTimeWindows};
use dataflow_kafka::{KafkaSink, KafkaSource, TOKEN_HEADER};
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "DATAFLOW_KAFKA_CHILD";
const PARTITIONS: i32 = 4;
const PER_PARTITION: u64 = 6_000;
const KEYS: u64 = 5;
const WINDOW_MS: i64 = 1_000;
const BASE: i64 = 1_000_000;
const KILLS: usize = 20;

/// (key, event time) of record `i` of partition `p`: 10 ms apart, jittered
/// back by up to 300 ms (the bound is 500 ms).
fn event(p: i32, i: u64) -> (u64, i64) {
    let jitter = ((i * 7 + p as u64 * 3) % 4 * 100) as i64;
    ((i + p as u64) % KEYS, BASE + i as i64 * 10 + 300 - jitter)
}

/// The newest complete checkpoint in `chk` (0: none).
fn newest_complete(chk: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(chk) else { return 0 };
    let ids = entries.filter_map(|e| {
        let e = e.ok()?;
        let id = e.file_name().to_str()?.strip_prefix("chk-")?.parse().ok()?;
        e.path().join("_metadata").exists().then_some(id)
    });
    ids.max().unwrap_or(0)
}

/// The child: the job, resuming from its checkpoint folder if it has one.
#[test]
fn child_process() {
    let Ok(arg) = std::env::var(CHILD_ENV) else { return };
    let (brokers, dir) = arg.split_once('|').unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        // Short batches, so barriers pass the slow map often.
        let env = StreamEnvironment::new().with_parallelism(2).with_batch_size(30);
        env.enable_checkpointing(CheckpointConfig::every(Duration::from_millis(40)), dir);
        let source = KafkaSource::<(u64, i64)>::json(brokers, ["in"]).bounded().with_turn(30).build();
        let strategy = WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_millis(500));
        let mut seen = 0u64;
        env.from_source(source, strategy)
            .uid("in")
            .map(move |e: (u64, i64)| {
                // Slow enough that the kills land while it runs.
                seen += 1;
                if seen.is_multiple_of(3) {
                    std::thread::sleep(Duration::from_millis(1));
                }
                e
            })
            .key_by(|e: &(u64, i64)| e.0)
            .window(TumblingEventTimeWindows::of(Duration::from_millis(WINDOW_MS as u64)))
            .count()
            .map(|(k, w, n): (u64, TimeWindow, u64)| (k, w.start, n))
            .sink("out", KafkaSink::json(brokers, "out").exactly_once("kills"))
            .uid("out");
        env.execute().await.unwrap();
    });
}

#[test]
fn an_exactly_once_job_survives_kills() {
    let broker = Broker::start();
    broker.create_topic("in", PARTITIONS);
    broker.create_topic("out", 2);
    let mut want: BTreeMap<(u64, i64), u64> = BTreeMap::new();
    let mut records = Vec::new();
    for p in 0..PARTITIONS {
        for i in 0..PER_PARTITION {
            let (k, t) = event(p, i);
            *want.entry((k, t / WINDOW_MS * WINDOW_MS)).or_default() += 1;
            records.push((p, t, serde_json::to_vec(&(k, t)).unwrap()));
        }
    }
    broker.produce("in", records);

    let dir = tempfile::tempdir().unwrap();
    let chk = dir.path().join("chk");
    let arg = format!("{}|{}", broker.brokers, chk.display());
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    let mut rng = seed;
    let mut next = move || {
        // xorshift: kill moments that differ from run to run.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let (mut landed, mut runs) = (0, 0);
    loop {
        runs += 1;
        assert!(runs < 200, "seed {seed}: the job did not finish");
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_process", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &arg)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Kill at a random moment once the child ran a while and completed a
        // checkpoint (so every run gets on), or let it finish once enough
        // kills landed.
        let (before, at) = (newest_complete(&chk), Duration::from_millis(150 + next() % 250));
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if landed < KILLS && start.elapsed() >= at && newest_complete(&chk) > before {
                child.kill().unwrap();
                break child.wait().unwrap();
            }
            // The child is another process (its files): no event to wait on.
            std::thread::sleep(Duration::from_millis(1));
        };
        match status.signal() {
            Some(9) => landed += 1,
            _ => {
                assert!(status.success(), "seed {seed}: the job failed: {status}");
                break;
            }
        }
    }
    assert!(landed >= KILLS, "seed {seed}: {landed} kills landed");

    // Results by token: each (key, window) in one token only.
    let out = broker.read_with_header("out", 2, TOKEN_HEADER);
    let mut by_token: BTreeMap<String, Vec<(u64, i64, u64)>> = BTreeMap::new();
    for (_, _, v, token) in out {
        by_token
            .entry(token.expect("a record without its token"))
            .or_default()
            .push(serde_json::from_slice(&v).unwrap());
    }
    let (mut got, mut owner, mut copies) = (BTreeMap::new(), BTreeMap::new(), 0);
    for (token, results) in &by_token {
        let distinct: BTreeSet<_> = results.iter().copied().collect();
        copies += results.len() - distinct.len();
        for (k, w, n) in distinct {
            if let Some(other) = owner.insert((k, w), token.clone()) {
                panic!("seed {seed}: window ({k}, {w}) written by two transactions ({other} and {token})");
            }
            got.insert((k, w), n);
        }
    }
    let checkpoints = newest_complete(&chk);
    eprintln!(
        "seed {seed}: {landed} kills in {runs} runs, {checkpoints} checkpoints; {} transactions; {copies} results again in transactions a kill \
         aborted (visible: the broker does not hide aborted transactions)",
        by_token.len()
    );
    // Results were committed run after run, not all by the last run.
    assert!(by_token.len() >= KILLS, "seed {seed}: only {} transactions", by_token.len());
    let wrong: Vec<_> = want.iter().filter(|(w, n)| got.get(*w) != Some(*n)).take(5).collect();
    assert!(got == want, "seed {seed}: {} windows, {} expected; wrong: {wrong:?}", got.len(), want.len());
}
