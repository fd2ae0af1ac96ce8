//! The Kafka sink: at least once (every record acknowledged by the brokers
//! before a checkpoint completes) or exactly once (Kafka transactions
//! committed when the checkpoint completes, see [`exactly_once`]).

pub mod exactly_once;

use crate::client::{Config, Health, blocking};
use async_trait::async_trait;
use dataflow_core::connectors::Sink;
use dataflow_core::connectors::two_phase::TransactionalSink;
use dataflow_core::{Batch, BoxError, OperatorInfo};
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

pub use exactly_once::{ExactlyOnceSink, KafkaCommittable, TOKEN_HEADER};

/// How long a flush waits for the brokers' acknowledgements.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);

/// A record to write: its key, value and partition (`None`: by the key's
/// hash, or spread when it has no key).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OutRecord {
    /// The key.
    pub key: Option<Vec<u8>>,
    /// The value.
    pub value: Vec<u8>,
    /// The partition.
    pub partition: Option<i32>,
}

type Encode<T> = Arc<dyn Fn(&T) -> Result<OutRecord, String> + Send + Sync>;

/// A Kafka sink's settings; [`at_least_once`](Self::at_least_once) and
/// [`exactly_once`](Self::exactly_once) make the sink for
/// [`Stream::sink`](dataflow_core::Stream::sink).
///
/// ```
/// use dataflow_kafka::KafkaSink;
/// #[derive(serde::Serialize)]
/// struct Count { page: String, n: u64 }
/// let sink = KafkaSink::<Count>::json("localhost:9092", "counts").with_key(|c| c.page.clone().into_bytes());
/// let make = sink.exactly_once("page-counts");
/// ```
pub struct KafkaSink<T> {
    config: Config,
    topic: String,
    encode: Encode<T>,
}

impl<T: Serialize + Send + 'static> KafkaSink<T> {
    /// Writes to `topic` at `brokers`, each value as JSON, without a key.
    pub fn json(brokers: &str, topic: &str) -> Self {
        Self::new(brokers, topic, |v| {
            let value = serde_json::to_vec(v).map_err(|e| e.to_string())?;
            Ok(OutRecord { key: None, value, partition: None })
        })
    }
}

impl<T: Send + 'static> KafkaSink<T> {
    /// Writes to `topic` at `brokers`, each value encoded by `encode`.
    pub fn new(
        brokers: &str,
        topic: &str,
        encode: impl Fn(&T) -> Result<OutRecord, String> + Send + Sync + 'static,
    ) -> Self {
        Self { config: Config::new(brokers), topic: topic.to_string(), encode: Arc::new(encode) }
    }

    /// Gives each record the key `key` (the partition is then chosen by
    /// the key's hash).
    pub fn with_key(self, key: impl Fn(&T) -> Vec<u8> + Send + Sync + 'static) -> Self {
        let encode = self.encode.clone();
        Self { encode: Arc::new(move |v| Ok(OutRecord { key: Some(key(v)), ..encode(v)? })), ..self }
    }

    /// Writes each record to the partition `partition` chooses.
    pub fn with_partition(self, partition: impl Fn(&T) -> i32 + Send + Sync + 'static) -> Self {
        let encode = self.encode.clone();
        Self { encode: Arc::new(move |v| Ok(OutRecord { partition: Some(partition(v)), ..encode(v)? })), ..self }
    }

    /// A client property (librdkafka's names).
    pub fn with_property(mut self, key: &str, value: &str) -> Self {
        self.config.properties.push((key.to_string(), value.to_string()));
        self
    }

    /// At least once: records are sent as they come; a checkpoint completes
    /// only once the brokers acknowledged every record before its barrier.
    /// After a failure, what followed the restored checkpoint is written
    /// again.
    pub fn at_least_once(self) -> impl Fn(&OperatorInfo) -> AtLeastOnceSink<T> + Send + Sync + 'static {
        move |_| AtLeastOnceSink {
            config: self.config.clone(),
            topic: self.topic.clone(),
            encode: self.encode.clone(),
            producer: None,
        }
    }

    /// Exactly once, in Kafka transactions whose ids start with
    /// `transactional_prefix` (unique per job and sink): see
    /// [`exactly_once`](mod@exactly_once).
    pub fn exactly_once(
        self,
        transactional_prefix: &str,
    ) -> impl Fn(&OperatorInfo) -> TransactionalSink<T, ExactlyOnceSink<T>> + Send + Sync + 'static {
        let prefix = transactional_prefix.to_string();
        move |info| {
            let id = format!("{prefix}-{}", info.subtask);
            TransactionalSink::new(ExactlyOnceSink::new(self.config.clone(), &self.topic, self.encode.clone(), id))
        }
    }
}

/// The at-least-once Kafka sink of one subtask.
pub struct AtLeastOnceSink<T> {
    config: Config,
    topic: String,
    encode: Encode<T>,
    producer: Option<Arc<BaseProducer<Health>>>,
}

impl<T> AtLeastOnceSink<T> {
    fn producer(&mut self) -> Result<Arc<BaseProducer<Health>>, BoxError> {
        if let Some(p) = &self.producer {
            return Ok(p.clone());
        }
        let p = producer(&self.config, &[])?;
        self.producer = Some(p.clone());
        Ok(p)
    }

    /// Waits until the brokers acknowledged everything sent.
    async fn flush(&mut self) -> Result<(), BoxError> {
        let Some(producer) = self.producer.clone() else { return Ok(()) };
        let (config, topic) = (self.config.clone(), self.topic.clone());
        blocking(move || {
            producer.flush(FLUSH_TIMEOUT).map_err(|e| config.error(format!("flushing records to '{topic}'"), e))?;
            producer.context().take_failure(&config, &topic)
        })
        .await
    }
}

#[async_trait]
impl<T: Send + 'static> Sink<T> for AtLeastOnceSink<T> {
    async fn write_batch(&mut self, batch: &mut Batch<T>) -> Result<(), BoxError> {
        let producer = self.producer()?;
        for v in batch.drain_values() {
            let record = (self.encode)(&v).map_err(|e| format!("encoding a record for '{}': {e}", self.topic))?;
            send(&producer, &self.config, &self.topic, &record, None).await?;
        }
        producer.poll(Duration::ZERO);
        producer.context().take_failure(&self.config, &self.topic)
    }

    async fn pre_commit(&mut self, _checkpoint: u64) -> Result<Option<Vec<u8>>, BoxError> {
        self.flush().await?;
        Ok(None)
    }

    async fn finish(&mut self) -> Result<(), BoxError> {
        self.flush().await
    }
}

/// A producer with the connector's defaults and `extra` properties.
pub(crate) fn producer(config: &Config, extra: &[(&str, &str)]) -> Result<Arc<BaseProducer<Health>>, BoxError> {
    let mut defaults = vec![("message.timeout.ms", "30000"), ("linger.ms", "5")];
    defaults.extend_from_slice(extra);
    let producer: BaseProducer<Health> = config
        .client(&defaults)
        .create_with_context(Health::default())
        .map_err(|e| config.error("creating a producer", e))?;
    Ok(Arc::new(producer))
}

/// Sends `record` (with `headers`), waiting while the producer's queue is
/// full.
pub(crate) async fn send(
    producer: &BaseProducer<Health>,
    config: &Config,
    topic: &str,
    record: &OutRecord,
    headers: Option<&OwnedHeaders>,
) -> Result<(), BoxError> {
    loop {
        let mut r = BaseRecord::<[u8], [u8]>::to(topic).payload(&record.value[..]);
        if let Some(h) = headers {
            r = r.headers(h.clone());
        }
        if let Some(k) = &record.key {
            r = r.key(&k[..]);
        }
        if let Some(p) = record.partition {
            r = r.partition(p);
        }
        match producer.send(r) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                producer.poll(Duration::ZERO);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err((e, _)) => return Err(config.error(format!("sending a record to '{topic}'"), e)),
        }
    }
}
