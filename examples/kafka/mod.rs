//! Page views from a Kafka topic → per-page counts in one-minute event-time
//! windows → another topic, exactly once (the `kafka_windows` example).
//!
//! The input is JSON page views (`{"user":..,"page":..,"time":..}`) whose
//! Kafka timestamps are their event times; each subtask of the source
//! reads its partitions with a watermark per partition (5 s out of order
//! allowed, a quiet partition idle after 10 s). The output is one JSON
//! record per page and window, keyed by page, written in Kafka
//! transactions that commit when a checkpoint completes: read it with
//! `isolation.level=read_committed`.

use dataflow_core::checkpoint::coordinator::CheckpointConfig;
use dataflow_core::time::WatermarkStrategy;
use dataflow_core::window::{TimeWindow, TumblingEventTimeWindows};
use dataflow_core::{JobResult, StreamEnvironment};
use dataflow_kafka::{KafkaSink, KafkaSource, StartFrom};
use rdkafka::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use std::path::Path;
use std::time::Duration;

/// A page view.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct View {
    /// Who.
    pub user: u64,
    /// Which page.
    pub page: String,
    /// When (epoch milliseconds).
    pub time: i64,
}

/// A page's views in one window.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct PageCount {
    /// The page.
    pub page: String,
    /// The window's start (epoch milliseconds).
    pub window_start: i64,
    /// Views in it.
    pub views: u64,
}

/// The window length.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Counts the views of topic `input` at `brokers` per page and minute into
/// topic `output`, checkpointing into `checkpoints` every second. `bounded`:
/// stop at the end of what the topic holds (else follow it).
pub async fn run(
    brokers: &str,
    input: &str,
    output: &str,
    checkpoints: &Path,
    parallelism: usize,
    bounded: bool,
) -> Result<JobResult, dataflow_core::Error> {
    let env = StreamEnvironment::new().with_parallelism(parallelism);
    env.enable_checkpointing(CheckpointConfig::every(Duration::from_secs(1)), checkpoints);
    let source = KafkaSource::<View>::json(brokers, [input]).start_from(StartFrom::Earliest);
    let source = if bounded { source.bounded() } else { source };
    let strategy =
        WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_secs(5)).with_idleness(Duration::from_secs(10));
    let sink = KafkaSink::<PageCount>::json(brokers, output).with_key(|c| c.page.clone().into_bytes());
    env.from_source(source.build(), strategy)
        .uid("views")
        .key_by(|v: &View| v.page.clone())
        .window(TumblingEventTimeWindows::of(WINDOW))
        .count()
        .map(|(page, w, views): (String, TimeWindow, u64)| PageCount { page, window_start: w.start, views })
        .sink("page counts", sink.exactly_once(&format!("page-counts-{output}")))
        .uid("page-counts");
    env.execute().await
}

/// `n` sample views over `pages` pages, 100 ms of event time apart from
/// `start`, up to 3 s out of order.
pub fn sample(n: u64, pages: u64, start: i64) -> Vec<View> {
    (0..n)
        .map(|i| {
            let jitter = (i * 7919 % 4) as i64 * 1_000;
            View {
                user: i * 31 % 1_000,
                page: format!("/page/{}", i * 13 % pages),
                time: start + i as i64 * 100 - jitter,
            }
        })
        .collect()
}

/// Writes `views` to `topic` (partitions by user), each with its event
/// time as the Kafka timestamp.
pub fn produce(brokers: &str, topic: &str, views: &[View]) -> Result<(), rdkafka::error::KafkaError> {
    let producer: BaseProducer = ClientConfig::new().set("bootstrap.servers", brokers).create()?;
    for v in views {
        let (key, value) = (v.user.to_string(), serde_json::to_vec(v).expect("a view is JSON"));
        let mut record = BaseRecord::to(topic).key(&key).payload(&value).timestamp(v.time);
        while let Err((e, r)) = producer.send(record) {
            if e != rdkafka::error::KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull) {
                return Err(e);
            }
            producer.poll(Duration::from_millis(10));
            record = r;
        }
    }
    producer.flush(Duration::from_secs(30))
}

/// The counts a batch computation gives for `views`.
pub fn batch_counts(views: &[View]) -> Vec<PageCount> {
    let window = WINDOW.as_millis() as i64;
    let mut counts = std::collections::BTreeMap::new();
    for v in views {
        *counts.entry((v.page.clone(), v.time.div_euclid(window) * window)).or_insert(0) += 1;
    }
    let mut out: Vec<PageCount> =
        counts.into_iter().map(|((page, window_start), views)| PageCount { page, window_start, views }).collect();
    out.sort();
    out
}
