//! The connector's errors.

use std::time::Duration;

/// What went wrong talking to Kafka.
///
/// ```
/// let e = dataflow_kafka::KafkaConnectorError::BrokersDown {
///     brokers: "localhost:9092".into(),
///     after: std::time::Duration::from_secs(30),
///     reason: "connection refused".into(),
/// };
/// assert!(e.to_string().contains("localhost:9092"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KafkaConnectorError {
    /// A call to the client failed.
    #[error("Kafka at {brokers}: {what}: {source}")]
    Client {
        /// The bootstrap servers.
        brokers: String,
        /// What was being done.
        what: String,
        /// The client's error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// No broker could be reached for longer than the connector waits.
    #[error("Kafka at {brokers}: no broker reachable for {after:?} ({reason})")]
    BrokersDown {
        /// The bootstrap servers.
        brokers: String,
        /// How long the connector waited.
        after: Duration,
        /// The client's last word on it.
        reason: String,
    },
    /// A topic the source reads does not exist.
    #[error("Kafka at {brokers}: topic '{topic}' does not exist")]
    NoSuchTopic {
        /// The bootstrap servers.
        brokers: String,
        /// The topic.
        topic: String,
    },
    /// A record could not be written.
    #[error("Kafka at {brokers}: writing to topic '{topic}': {reason}")]
    Write {
        /// The bootstrap servers.
        brokers: String,
        /// The topic.
        topic: String,
        /// Why.
        reason: String,
    },
}
