//! Reading a subtask's partitions: one consumer per subtask, a queue per
//! partition (so each split is read on its own turn), and a wake-up when
//! any queue gets records.

use super::{Decode, KafkaRecordRef, KafkaSplit, location};
use crate::client::{Config, Health, QUERY_TIMEOUT, blocking};
use async_trait::async_trait;
use dataflow_core::BoxError;
use dataflow_core::OperatorInfo;
use dataflow_core::connectors::split::{BadInput, Split, SplitOutput, SplitReader};
use rdkafka::consumer::base_consumer::PartitionQueue;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How long a reader whose partitions had nothing waits for records before
/// the source looks at discovery and idleness again.
const WAIT: Duration = Duration::from_millis(100);

/// What a reader needs to know.
pub(super) struct Settings<T> {
    pub(super) config: Config,
    pub(super) group: String,
    pub(super) bounded: bool,
    pub(super) decode: Decode<T>,
}

impl<T> Clone for Settings<T> {
    fn clone(&self) -> Self {
        Self {
            config: self.config.clone(),
            group: self.group.clone(),
            bounded: self.bounded,
            decode: self.decode.clone(),
        }
    }
}

/// A subtask's reader of its partitions.
pub(super) struct Reader<T> {
    settings: Settings<T>,
    health: Health,
    consumer: Option<Arc<BaseConsumer<Health>>>,
    /// By split id: the partitions being read.
    queues: HashMap<String, PartitionQueue<Health>>,
    records: Arc<Notify>,
}

impl<T> Reader<T> {
    pub(super) fn new(settings: Settings<T>, _info: &OperatorInfo) -> Self {
        let (health, records) = (Health::default(), Arc::new(Notify::new()));
        Self { settings, health, consumer: None, queues: HashMap::new(), records }
    }

    fn consumer(&mut self) -> Result<Arc<BaseConsumer<Health>>, BoxError> {
        if let Some(c) = &self.consumer {
            return Ok(c.clone());
        }
        let config = &self.settings.config;
        let eof = if self.settings.bounded { "true" } else { "false" };
        let defaults = [
            ("group.id", self.settings.group.as_str()),
            ("enable.auto.commit", "false"),
            ("enable.partition.eof", eof),
            ("isolation.level", "read_committed"),
        ];
        let consumer: BaseConsumer<Health> = config
            .client(&defaults)
            .create_with_context(self.health.clone())
            .map_err(|e| config.error("creating a consumer", e))?;
        let consumer = Arc::new(consumer);
        self.consumer = Some(consumer.clone());
        Ok(consumer)
    }

    /// Starts reading `split` at its offset: its own queue, which wakes the
    /// reader when records arrive.
    fn assign(&mut self, split: &KafkaSplit) -> Result<(), BoxError> {
        let consumer = self.consumer()?;
        let config = &self.settings.config;
        let (topic, partition) = (split.topic.as_str(), split.partition);
        let mut queue = consumer
            .split_partition_queue(topic, partition)
            .ok_or_else(|| format!("Kafka at {}: no queue for {}", config.brokers, split.id()))?;
        let records = self.records.clone();
        queue.set_nonempty_callback(move || records.notify_one());
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition, Offset::Offset(split.offset))
            .map_err(|e| config.error("building an assignment", e))?;
        consumer.incremental_assign(&tpl).map_err(|e| config.error(format!("assigning {}", split.id()), e))?;
        self.queues.insert(split.id(), queue);
        Ok(())
    }

    /// Stops reading a finished split.
    fn unassign(&mut self, split: &KafkaSplit) -> Result<(), BoxError> {
        self.queues.remove(&split.id());
        if let Some(consumer) = &self.consumer {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition(&split.topic, split.partition);
            let config = &self.settings.config;
            consumer.incremental_unassign(&tpl).map_err(|e| config.error(format!("unassigning {}", split.id()), e))?;
        }
        Ok(())
    }
}

#[async_trait]
impl<T: Send + 'static> SplitReader<T, KafkaSplit> for Reader<T> {
    async fn read(&mut self, split: &mut KafkaSplit, max: usize, out: &mut SplitOutput<T>) -> Result<bool, BoxError> {
        if !self.queues.contains_key(&split.id()) {
            self.assign(split)?;
        }
        // Events (errors, a lost broker) are served by the main queue.
        if let Some(consumer) = &self.consumer
            && let Some(Err(e)) = consumer.poll(Duration::ZERO)
        {
            tracing::warn!("Kafka consumer: {e}");
        }
        let queue = &self.queues[&split.id()];
        let mut finished = false;
        while out.len() < max {
            match queue.poll(Duration::ZERO) {
                None => break,
                Some(Ok(m)) => {
                    let record = KafkaRecordRef {
                        topic: m.topic(),
                        partition: m.partition(),
                        offset: m.offset(),
                        timestamp: m.timestamp().to_millis(),
                        key: m.key(),
                        value: m.payload(),
                    };
                    match ((self.settings.decode)(&record), record.timestamp) {
                        (Ok(v), Some(ts)) => out.push_with_timestamp(v, ts),
                        (Ok(v), None) => out.push(v),
                        (Err(error), _) => out.bad(BadInput {
                            location: location(m.topic(), m.partition(), m.offset()),
                            raw: String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
                            error,
                        }),
                    }
                    split.offset = m.offset() + 1;
                    self.health.up();
                }
                Some(Err(KafkaError::PartitionEOF(_))) => {
                    finished = self.settings.bounded;
                    break;
                }
                Some(Err(e)) => return Err(self.settings.config.error(format!("reading {}", split.id()), e)),
            }
        }
        if finished {
            self.unassign(split)?;
        }
        Ok(finished)
    }

    /// Commits the checkpoint's offsets to the group (for monitoring: the
    /// job restores from its own checkpoints).
    async fn checkpoint_complete(&mut self, splits: &[KafkaSplit]) {
        let Some(consumer) = &self.consumer else { return };
        let mut offsets = TopicPartitionList::new();
        for s in splits {
            if let Err(e) = offsets.add_partition_offset(&s.topic, s.partition, Offset::Offset(s.offset)) {
                tracing::warn!("committing the offset of {}: {e}", s.id());
            }
        }
        if let Err(e) = consumer.commit(&offsets, CommitMode::Async) {
            tracing::warn!("committing offsets to group '{}': {e}", self.settings.group);
        }
    }

    async fn wait_for_records(&mut self) -> Result<(), BoxError> {
        let _ = tokio::time::timeout(WAIT, self.records.notified()).await;
        if self.health.down_since().is_some() {
            // Still unreachable? A metadata query tells.
            if let Some(consumer) = self.consumer.clone() {
                let answered =
                    blocking(move || Ok(consumer.fetch_metadata(None, QUERY_TIMEOUT.min(WAIT * 10)).is_ok()));
                if answered.await? {
                    self.health.up();
                }
            }
        }
        self.health.check(&self.settings.config)
    }
}
