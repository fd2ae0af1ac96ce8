//! The Kafka source: topic partitions are the splits of a split-based
//! source ([`dataflow_core::connectors::split`]).
//!
//! Every subtask finds the topics' partitions itself and reads those the
//! framework assigns to it ([`KafkaSplit::owner`]: partitions of a topic go
//! round the subtasks in turn). A partition found for the first time starts
//! at a concrete offset resolved then ([`StartFrom`]), so a checkpoint never
//! holds "latest" and a restore reads exactly what follows the offsets it
//! holds. Records go out with their Kafka timestamps: without a timestamp
//! assigner these are the event times, and each partition has its own
//! watermark generator.

mod enumerator;
mod reader;

use crate::client::Config;
use dataflow_core::connectors::split::{Split, SplitSource};
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;

/// Where a partition seen for the first time starts.
///
/// ```
/// use dataflow_kafka::StartFrom;
/// let from = StartFrom::Committed { otherwise: Box::new(StartFrom::Earliest) };
/// assert_ne!(from, StartFrom::Latest);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartFrom {
    /// The partition's first offset still kept.
    Earliest,
    /// The partition's end: only what is written from now on.
    Latest,
    /// The first record whose timestamp is at or after this one (epoch
    /// milliseconds); the end if there is none.
    Timestamp(i64),
    /// The group's committed offset (the source's `group.id`), else
    /// `otherwise`.
    Committed {
        /// Where a partition without a committed offset starts.
        otherwise: Box<StartFrom>,
    },
}

/// A topic partition and the offset of the next record to read.
///
/// ```
/// use dataflow_core::connectors::split::Split;
/// let p = dataflow_kafka::KafkaSplit { topic: "clicks".into(), partition: 3, offset: 42 };
/// assert_eq!(p.id(), "clicks-3");
/// assert!(p.owner(2) < 2);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KafkaSplit {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset of the next record to read.
    pub offset: i64,
}

impl Split for KafkaSplit {
    fn id(&self) -> String {
        format!("{}-{}", self.topic, self.partition)
    }

    /// A topic's partitions go round the subtasks in turn, from a subtask
    /// chosen by the topic's name (as Flink's Kafka source assigns them).
    fn owner(&self, parallelism: usize) -> usize {
        let start = crc32c::crc32c(self.topic.as_bytes()) as usize;
        start.wrapping_add(self.partition.max(0) as usize) % parallelism.max(1)
    }
}

/// A record as Kafka holds it, for [`KafkaSource::raw`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KafkaRecord {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
    /// Its timestamp (epoch milliseconds), if it has one.
    pub timestamp: Option<i64>,
    /// Its key.
    pub key: Option<Vec<u8>>,
    /// Its value.
    pub value: Option<Vec<u8>>,
}

/// How a record becomes a value: the error is the reason it could not.
pub(crate) type Decode<T> = Arc<dyn Fn(&KafkaRecordRef<'_>) -> Result<T, String> + Send + Sync>;

/// A record as the reader sees it, before it is decoded.
pub struct KafkaRecordRef<'a> {
    /// The topic.
    pub topic: &'a str,
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
    /// Its timestamp (epoch milliseconds), if it has one.
    pub timestamp: Option<i64>,
    /// Its key.
    pub key: Option<&'a [u8]>,
    /// Its value.
    pub value: Option<&'a [u8]>,
}

/// A Kafka source, built into a [`SplitSource`] for
/// [`StreamEnvironment::from_source`](dataflow_core::StreamEnvironment::from_source).
///
/// ```
/// use dataflow_kafka::{KafkaSource, StartFrom};
/// use std::time::Duration;
/// let source = KafkaSource::<serde_json::Value>::json("localhost:9092", ["clicks", "views"])
///     .start_from(StartFrom::Timestamp(1_700_000_000_000))
///     .with_group("my-job")
///     .with_partition_discovery(Duration::from_secs(60))
///     .build();
/// ```
pub struct KafkaSource<T> {
    config: Config,
    topics: Vec<String>,
    start: StartFrom,
    group: Option<String>,
    discovery: Option<Duration>,
    bounded: bool,
    turn: Option<usize>,
    decode: Decode<T>,
}

impl<T: DeserializeOwned + Send + 'static> KafkaSource<T> {
    /// Reads `topics` at `brokers`, each value decoded from JSON.
    pub fn json<S: Into<String>>(brokers: &str, topics: impl IntoIterator<Item = S>) -> Self {
        Self::new(brokers, topics, |r| match r.value {
            Some(v) => serde_json::from_slice(v).map_err(|e| e.to_string()),
            None => Err("the record has no value".to_string()),
        })
    }
}

impl KafkaSource<KafkaRecord> {
    /// Reads `topics` at `brokers`, handing out each record's bytes.
    pub fn raw<S: Into<String>>(brokers: &str, topics: impl IntoIterator<Item = S>) -> Self {
        Self::new(brokers, topics, |r| {
            Ok(KafkaRecord {
                topic: r.topic.to_string(),
                partition: r.partition,
                offset: r.offset,
                timestamp: r.timestamp,
                key: r.key.map(<[u8]>::to_vec),
                value: r.value.map(<[u8]>::to_vec),
            })
        })
    }
}

impl<T: Send + 'static> KafkaSource<T> {
    /// Reads `topics` at `brokers`, each record decoded by `decode` (its
    /// error is why a record is bad).
    pub fn new<S: Into<String>>(
        brokers: &str,
        topics: impl IntoIterator<Item = S>,
        decode: impl Fn(&KafkaRecordRef<'_>) -> Result<T, String> + Send + Sync + 'static,
    ) -> Self {
        Self {
            config: Config::new(brokers),
            topics: topics.into_iter().map(Into::into).collect(),
            start: StartFrom::Earliest,
            group: None,
            discovery: Some(Duration::from_secs(60)),
            bounded: false,
            turn: None,
            decode: Arc::new(decode),
        }
    }

    /// Where partitions seen for the first time start (default: earliest).
    pub fn start_from(self, start: StartFrom) -> Self {
        Self { start, ..self }
    }

    /// The consumer group (`group.id`): whose committed offsets
    /// [`StartFrom::Committed`] reads. Partitions are assigned by the job,
    /// not by the group.
    pub fn with_group(self, group: &str) -> Self {
        Self { group: Some(group.to_string()), ..self }
    }

    /// Looks for new partitions every `interval` (default: every minute);
    /// `None`: only when the job starts.
    pub fn with_partition_discovery(self, interval: impl Into<Option<Duration>>) -> Self {
        Self { discovery: interval.into(), ..self }
    }

    /// Ends each partition where the reader finds its end, and the source
    /// once every partition ended (a bounded read of what is there).
    pub fn bounded(self) -> Self {
        Self { bounded: true, ..self }
    }

    /// Reads at most `records` records of a partition before the next
    /// partition's turn (default 1024; see
    /// [`SplitSource::with_turn`]).
    pub fn with_turn(self, records: usize) -> Self {
        Self { turn: Some(records), ..self }
    }

    /// A client property (librdkafka's names), e.g. `security.protocol`.
    pub fn with_property(mut self, key: &str, value: &str) -> Self {
        self.config.properties.push((key.to_string(), value.to_string()));
        self
    }

    /// How long no broker may be reachable before the job fails (default
    /// 30 s); its restart strategy then applies.
    pub fn with_broker_timeout(mut self, timeout: Duration) -> Self {
        self.config.broker_timeout = timeout;
        self
    }

    /// The split source to hand to `from_source`.
    pub fn build(self) -> SplitSource<T, KafkaSplit> {
        let group = self.group.clone().unwrap_or_else(|| "dataflow".to_string());
        let enumerate = enumerator::Settings {
            config: self.config.clone(),
            topics: self.topics.clone(),
            start: self.start.clone(),
            group: group.clone(),
            // Partitions found later start at their beginning (Flink's
            // discovered partitions start at the earliest offset).
            later: StartFrom::Earliest,
        };
        let read = reader::Settings { config: self.config, group, bounded: self.bounded, decode: self.decode };
        let name = format!("kafka {}", self.topics.join(","));
        let source = SplitSource::new(
            &name,
            move |info| enumerator::Enumerator::new(enumerate.clone(), info),
            move |info| reader::Reader::new(read.clone(), info),
        );
        let source = match self.turn {
            Some(t) => source.with_turn(t),
            None => source,
        };
        match (self.bounded, self.discovery) {
            (false, Some(d)) => source.continuous(d),
            // Unbounded without discovery: the partitions found at the start,
            // followed for ever (the reader never finishes them).
            (false, None) => source.continuous(Duration::from_secs(u32::MAX as u64)),
            (true, _) => source,
        }
    }
}

/// A bad record's location.
pub(crate) fn location(topic: &str, partition: i32, offset: i64) -> String {
    format!("{topic}-{partition}@{offset}")
}
