//! What the source and the sink share: the client configuration, a client
//! context that notices when no broker is reachable, and running the
//! client's blocking calls off the async workers.

use crate::KafkaConnectorError;
use dataflow_core::BoxError;
use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;
use rdkafka::producer::ProducerContext;
use rdkafka::types::RDKafkaErrorCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the client waits for an answer to a metadata or offset query.
pub(crate) const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// The bootstrap servers and client properties of a source or sink.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) brokers: String,
    pub(crate) properties: Vec<(String, String)>,
    /// How long no broker may be reachable before the job fails.
    pub(crate) broker_timeout: Duration,
}

impl Config {
    pub(crate) fn new(brokers: &str) -> Self {
        Self { brokers: brokers.to_string(), properties: Vec::new(), broker_timeout: Duration::from_secs(30) }
    }

    /// A client configuration: the bootstrap servers, then `defaults`, then
    /// the user's properties (which win).
    pub(crate) fn client(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers);
        for (k, v) in defaults {
            c.set(*k, *v);
        }
        for (k, v) in &self.properties {
            c.set(k, v);
        }
        c
    }

    /// A client error, with what was being done.
    pub(crate) fn error(&self, what: impl Into<String>, source: KafkaError) -> BoxError {
        Box::new(KafkaConnectorError::Client { brokers: self.brokers.clone(), what: what.into(), source })
    }
}

/// A client context that remembers since when no broker is reachable
/// (librdkafka itself retries forever).
#[derive(Clone, Default)]
pub(crate) struct Health {
    down: Arc<Mutex<Option<(Instant, String)>>>,
    /// A producer's first record the brokers did not take.
    failure: Arc<Mutex<Option<String>>>,
}

impl Health {
    /// Since when, and why, if no broker is reachable.
    pub(crate) fn down_since(&self) -> Option<(Instant, String)> {
        self.down.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A broker answered.
    pub(crate) fn up(&self) {
        *self.down.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Fails if a record the producer sent was not delivered.
    pub(crate) fn take_failure(&self, config: &Config, topic: &str) -> Result<(), BoxError> {
        match self.failure.lock().unwrap_or_else(|e| e.into_inner()).take() {
            Some(reason) => Err(Box::new(KafkaConnectorError::Write {
                brokers: config.brokers.clone(),
                topic: topic.to_string(),
                reason,
            })),
            None => Ok(()),
        }
    }

    /// Fails once no broker was reachable for longer than the timeout.
    pub(crate) fn check(&self, config: &Config) -> Result<(), BoxError> {
        match self.down_since() {
            Some((since, reason)) if since.elapsed() > config.broker_timeout => {
                Err(Box::new(KafkaConnectorError::BrokersDown {
                    brokers: config.brokers.clone(),
                    after: config.broker_timeout,
                    reason,
                }))
            }
            _ => Ok(()),
        }
    }
}

impl ClientContext for Health {
    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            let mut down = self.down.lock().unwrap_or_else(|e| e.into_inner());
            if down.is_none() {
                *down = Some((Instant::now(), reason.to_string()));
            }
        }
        tracing::warn!("Kafka client: {error}: {reason}");
    }
}

impl ConsumerContext for Health {}

impl ProducerContext for Health {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &rdkafka::message::DeliveryResult<'_>, _: Self::DeliveryOpaque) {
        if let Err((e, _)) = result {
            let mut failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
            failure.get_or_insert_with(|| e.to_string());
        }
    }
}

/// Runs a blocking client call on tokio's blocking pool.
pub(crate) async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> Result<R, BoxError> + Send + 'static,
) -> Result<R, BoxError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(format!("a Kafka call was cancelled: {e}").into()),
    }
}
