//! Finding a Kafka source's partitions and where each starts.

use super::{KafkaSplit, StartFrom};
use crate::KafkaConnectorError;
use crate::client::{Config, Health, QUERY_TIMEOUT, blocking};
use async_trait::async_trait;
use dataflow_core::BoxError;
use dataflow_core::OperatorInfo;
use dataflow_core::connectors::split::{Split, SplitEnumerator};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeSet;
use std::sync::Arc;

/// What an enumerator needs to know.
#[derive(Clone)]
pub(super) struct Settings {
    pub(super) config: Config,
    pub(super) topics: Vec<String>,
    pub(super) start: StartFrom,
    pub(super) group: String,
    /// Where partitions found after the first discovery start.
    pub(super) later: StartFrom,
}

/// One subtask's enumerator: it resolves start offsets for the partitions
/// its subtask owns only.
pub(super) struct Enumerator {
    settings: Settings,
    subtask: usize,
    parallelism: usize,
    client: Option<Arc<BaseConsumer<Health>>>,
    known: BTreeSet<String>,
}

impl Enumerator {
    pub(super) fn new(settings: Settings, info: &OperatorInfo) -> Self {
        let parallelism = info.parallelism.max(1);
        Self { settings, subtask: info.subtask, parallelism, client: None, known: BTreeSet::new() }
    }

    fn client(&mut self) -> Result<Arc<BaseConsumer<Health>>, BoxError> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let config = &self.settings.config;
        let defaults = [("group.id", self.settings.group.as_str()), ("enable.auto.commit", "false")];
        let client: BaseConsumer<Health> = config
            .client(&defaults)
            .create_with_context(Health::default())
            .map_err(|e| config.error("creating a client", e))?;
        let client = Arc::new(client);
        self.client = Some(client.clone());
        Ok(client)
    }
}

#[async_trait]
impl SplitEnumerator<KafkaSplit> for Enumerator {
    async fn discover(&mut self) -> Result<Vec<KafkaSplit>, BoxError> {
        let client = self.client()?;
        let first = self.known.is_empty();
        let start = if first { self.settings.start.clone() } else { self.settings.later.clone() };
        let (settings, known) = (self.settings.clone(), self.known.clone());
        let (subtask, parallelism) = (self.subtask, self.parallelism);
        let found = blocking(move || {
            let mut new = Vec::new();
            for topic in &settings.topics {
                for partition in partitions(&client, &settings.config, topic)? {
                    let split = KafkaSplit { topic: topic.clone(), partition, offset: 0 };
                    if !known.contains(&split.id()) && split.owner(parallelism) == subtask {
                        new.push(split);
                    }
                }
            }
            for split in &mut new {
                split.offset = resolve(&client, &settings.config, split, &start)?;
            }
            Ok(new)
        })
        .await?;
        self.known.extend(found.iter().map(Split::id));
        Ok(found)
    }
}

/// The partitions of `topic`.
fn partitions(client: &BaseConsumer<Health>, config: &Config, topic: &str) -> Result<Vec<i32>, BoxError> {
    let metadata = client
        .fetch_metadata(Some(topic), QUERY_TIMEOUT)
        .map_err(|e| config.error(format!("reading the metadata of topic '{topic}'"), e))?;
    let found = metadata.topics().iter().find(|t| t.name() == topic);
    match found {
        Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
            Ok(t.partitions().iter().map(|p| p.id()).collect())
        }
        _ => Err(Box::new(KafkaConnectorError::NoSuchTopic { brokers: config.brokers.clone(), topic: topic.into() })),
    }
}

/// The concrete offset `split` starts at.
fn resolve(
    client: &BaseConsumer<Health>,
    config: &Config,
    split: &KafkaSplit,
    start: &StartFrom,
) -> Result<i64, BoxError> {
    let (topic, partition) = (split.topic.as_str(), split.partition);
    let watermarks = || {
        client
            .fetch_watermarks(topic, partition, QUERY_TIMEOUT)
            .map_err(|e| config.error(format!("reading the offsets of {topic}-{partition}"), e))
    };
    match start {
        StartFrom::Earliest => Ok(watermarks()?.0),
        StartFrom::Latest => Ok(watermarks()?.1),
        StartFrom::Timestamp(t) => {
            let mut query = TopicPartitionList::new();
            query
                .add_partition_offset(topic, partition, Offset::Offset(*t))
                .map_err(|e| config.error("building an offset query", e))?;
            let found = client
                .offsets_for_times(query, QUERY_TIMEOUT)
                .map_err(|e| config.error(format!("finding offsets by time in {topic}-{partition}"), e))?;
            match found.find_partition(topic, partition).map(|p| p.offset()) {
                Some(Offset::Offset(o)) => Ok(o),
                _ => Ok(watermarks()?.1),
            }
        }
        StartFrom::Committed { otherwise } => {
            let mut query = TopicPartitionList::new();
            query.add_partition(topic, partition);
            let found = client
                .committed_offsets(query, QUERY_TIMEOUT)
                .map_err(|e| config.error(format!("reading the committed offset of {topic}-{partition}"), e))?;
            match found.find_partition(topic, partition).map(|p| p.offset()) {
                Some(Offset::Offset(o)) if o >= 0 => Ok(o),
                _ => resolve(client, config, split, otherwise),
            }
        }
    }
}
