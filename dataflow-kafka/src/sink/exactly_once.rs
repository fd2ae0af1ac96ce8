//! Exactly-once output to Kafka: what a checkpoint covers is written in one
//! Kafka transaction once the checkpoint completed.
//!
//! A subtask keeps the records it is given until the next barrier; at the
//! barrier they become a [`KafkaCommittable`], stored in the checkpoint
//! with a random token. When the checkpoint completes, the subtask writes
//! them in a transaction of its transactional id (`prefix-subtask`) and, in
//! the same transaction, commits the token as the offset of the consumer
//! group named like the transactional id (on partition 0 of the output
//! topic). The group's offset so says, atomically with the records, which
//! committable was written last. Each record carries the token in its
//! [`TOKEN_HEADER`] header.
//!
//! After a failure the job restores the latest complete checkpoint; its
//! committables that the group's offset shows as written are skipped, the
//! others are written now. Creating the producer of a transactional id
//! aborts the transaction a killed process left open. So a record reaches
//! `read_committed` readers once, whenever the process died.
//!
//! Where this differs from Flink's `KafkaSink`: Flink writes records into
//! the open transaction as they come and, after a failure, resumes the
//! pre-committed transaction by setting its producer id and epoch by
//! reflection, which librdkafka cannot do. Here records wait in the sink
//! (and in the checkpoint, so a checkpoint grows with the output between
//! two checkpoints) and reach the brokers at the commit.

use super::{Encode, OutRecord, producer, send};
use crate::client::{Config, Health, QUERY_TIMEOUT, blocking};
use async_trait::async_trait;
use dataflow_core::connectors::two_phase::TwoPhaseCommitSink;
use dataflow_core::{Batch, BoxError};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::Duration;

/// The header each record carries with its committable's token.
pub const TOKEN_HEADER: &str = "dataflow.txn";

/// How long a transaction's calls wait for the brokers.
const TXN_TIMEOUT: Duration = Duration::from_secs(60);

/// What one subtask wrote between two barriers, to be written in one
/// transaction of `transactional_id` once the checkpoint completes.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KafkaCommittable {
    /// The transactional id that writes it.
    pub transactional_id: String,
    /// Marks it as written: committed as the group's offset with it.
    pub token: i64,
    /// The records.
    pub records: Vec<OutRecord>,
}

/// A transactional producer and the group whose offset marks what it wrote.
struct Writer {
    producer: Arc<BaseProducer<Health>>,
    group: Arc<BaseConsumer<Health>>,
}

/// The exactly-once Kafka sink of one subtask (run by dataflow's
/// [`TransactionalSink`](dataflow_core::connectors::two_phase::TransactionalSink)).
pub struct ExactlyOnceSink<T> {
    config: Config,
    topic: String,
    encode: Encode<T>,
    transactional_id: String,
    /// Records since the last barrier.
    buffer: Vec<OutRecord>,
    /// Sealed at a barrier, not written yet.
    sealed: Vec<KafkaCommittable>,
    writers: HashMap<String, Writer>,
    tokens: RandomState,
    sealed_count: u64,
}

impl<T> ExactlyOnceSink<T> {
    pub(crate) fn new(config: Config, topic: &str, encode: Encode<T>, transactional_id: String) -> Self {
        Self {
            config,
            topic: topic.to_string(),
            encode,
            transactional_id,
            buffer: Vec::new(),
            sealed: Vec::new(),
            writers: HashMap::new(),
            tokens: RandomState::new(),
            sealed_count: 0,
        }
    }

    /// The writer of transactional id `id`; making it fences any earlier
    /// producer of that id and aborts its open transaction.
    async fn writer(&mut self, id: &str) -> Result<&Writer, BoxError> {
        if !self.writers.contains_key(id) {
            let config = self.config.clone();
            let name = id.to_string();
            let writer = blocking(move || {
                let producer = producer(&config, &[("transactional.id", &name)])?;
                producer
                    .init_transactions(TXN_TIMEOUT)
                    .map_err(|e| config.error(format!("starting transactional id '{name}'"), e))?;
                let group: BaseConsumer<Health> = config
                    .client(&[("group.id", &name), ("enable.auto.commit", "false")])
                    .create_with_context(Health::default())
                    .map_err(|e| config.error("creating a group client", e))?;
                Ok(Writer { producer, group: Arc::new(group) })
            })
            .await?;
            self.writers.insert(id.to_string(), writer);
        }
        Ok(&self.writers[id])
    }

    /// The token the group of `id` holds: the last committable written.
    async fn written(&mut self, id: &str) -> Result<Option<i64>, BoxError> {
        let (config, topic) = (self.config.clone(), self.topic.clone());
        let group = self.writer(id).await?.group.clone();
        blocking(move || {
            let mut query = TopicPartitionList::new();
            query.add_partition(&topic, 0);
            let found = group
                .committed_offsets(query, QUERY_TIMEOUT)
                .map_err(|e| config.error("reading what the last transaction wrote", e))?;
            Ok(match found.find_partition(&topic, 0).map(|p| p.offset()) {
                Some(Offset::Offset(o)) => Some(o),
                _ => None,
            })
        })
        .await
    }

    /// Writes `c` in one transaction with its token.
    async fn write(&mut self, c: &KafkaCommittable) -> Result<(), BoxError> {
        let (config, topic) = (self.config.clone(), self.topic.clone());
        let writer = self.writer(&c.transactional_id).await?;
        let (producer, group) = (writer.producer.clone(), writer.group.clone());
        let what = format!("a transaction of '{}'", c.transactional_id);
        producer.begin_transaction().map_err(|e| config.error(format!("beginning {what}"), e))?;
        let token = c.token.to_string();
        let headers = OwnedHeaders::new().insert(Header { key: TOKEN_HEADER, value: Some(&token) });
        for r in &c.records {
            send(&producer, &config, &topic, r, Some(&headers)).await?;
        }
        let token = c.token;
        blocking(move || {
            let mut offsets = TopicPartitionList::new();
            offsets
                .add_partition_offset(&topic, 0, Offset::Offset(token))
                .map_err(|e| config.error("building the token's offset", e))?;
            let meta = group.group_metadata().ok_or_else(|| format!("no group metadata for {what}"))?;
            producer
                .send_offsets_to_transaction(&offsets, &meta, TXN_TIMEOUT)
                .map_err(|e| config.error(format!("marking {what}"), e))?;
            producer.commit_transaction(TXN_TIMEOUT).map_err(|e| config.error(format!("committing {what}"), e))?;
            producer.context().take_failure(&config, &topic)
        })
        .await
    }

    fn token(&mut self) -> i64 {
        self.sealed_count += 1;
        (self.tokens.hash_one((&self.transactional_id, self.sealed_count)) >> 1) as i64
    }
}

#[async_trait]
impl<T: Send + 'static> TwoPhaseCommitSink<T> for ExactlyOnceSink<T> {
    type Committable = KafkaCommittable;

    async fn write_batch(&mut self, batch: &mut Batch<T>) -> Result<(), BoxError> {
        for v in batch.drain_values() {
            let record = (self.encode)(&v).map_err(|e| format!("encoding a record for '{}': {e}", self.topic))?;
            self.buffer.push(record);
        }
        Ok(())
    }

    async fn pre_commit(&mut self, _checkpoint: u64) -> Result<Vec<KafkaCommittable>, BoxError> {
        if !self.buffer.is_empty() {
            let records = std::mem::take(&mut self.buffer);
            let (transactional_id, token) = (self.transactional_id.clone(), self.token());
            self.sealed.push(KafkaCommittable { transactional_id, token, records });
        }
        Ok(self.sealed.clone())
    }

    async fn commit(&mut self, committables: Vec<KafkaCommittable>) -> Result<(), BoxError> {
        for c in committables {
            // Sealed here and not written yet (a repeated notice finds it gone).
            if let Some(i) = self.sealed.iter().position(|s| s.token == c.token) {
                self.write(&c).await?;
                self.sealed.remove(i);
            }
        }
        Ok(())
    }

    async fn recover(&mut self, committables: Vec<KafkaCommittable>) -> Result<(), BoxError> {
        // Per transactional id, in order: those up to the token its group
        // holds were written before the failure.
        let mut ids: Vec<&str> = Vec::new();
        for c in &committables {
            if !ids.contains(&c.transactional_id.as_str()) {
                ids.push(&c.transactional_id);
            }
        }
        let ids: Vec<String> = ids.into_iter().map(String::from).collect();
        for id in ids {
            let mine: Vec<&KafkaCommittable> = committables.iter().filter(|c| c.transactional_id == id).collect();
            let written = self.written(&id).await?;
            let done = written.and_then(|t| mine.iter().position(|c| c.token == t)).map_or(0, |i| i + 1);
            for c in &mine[done..] {
                self.write(c).await?;
            }
        }
        // A fresh start, or none of ours: the writer of our own id fences
        // (and aborts) what an earlier process left open.
        let own = self.transactional_id.clone();
        self.writer(&own).await?;
        Ok(())
    }
}
