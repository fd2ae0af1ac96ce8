//! Kafka for dataflow: a [`KafkaSource`] whose splits are topic partitions
//! and a [`KafkaSink`] that writes at least once or exactly once.
//!
//! * **Source.** Built on dataflow's split framework
//!   ([`dataflow_core::connectors::split`]): each partition is a split,
//!   assigned to a subtask by the framework (no consumer-group rebalancing),
//!   so a checkpoint holds every partition's next offset and a restore or a
//!   rescale puts them back exactly. Partitions start from the earliest or
//!   latest offset, a timestamp, or the group's committed offsets; new
//!   partitions are found on an interval. Each partition has its own
//!   watermark, from the records' Kafka timestamps unless the watermark
//!   strategy assigns them, and a quiet partition goes idle by the
//!   strategy's idle timeout. A record that does not decode goes to the
//!   job's bad-record policy with its topic, partition and offset.
//! * **Sink.** At least once: every record the job wrote is acknowledged
//!   by the brokers before a checkpoint completes. Exactly once: records
//!   are written in Kafka transactions that commit only after the
//!   checkpoint that covers them completed (readers use
//!   `isolation.level=read_committed`); see [`KafkaSink::exactly_once`].
//!
//! ```no_run
//! use dataflow_core::{StreamEnvironment, time::WatermarkStrategy};
//! use dataflow_kafka::{KafkaSink, KafkaSource, StartFrom};
//! use std::time::Duration;
//!
//! #[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
//! struct Click { user: String, page: String }
//!
//! # async fn run() -> Result<(), dataflow_core::Error> {
//! let env = StreamEnvironment::new().with_parallelism(2);
//! let source = KafkaSource::<Click>::json("localhost:9092", ["clicks"]).start_from(StartFrom::Earliest);
//! let strategy = WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_secs(5));
//! env.from_source(source.build(), strategy)
//!     .filter(|c: &Click| c.page != "/health")
//!     .sink("to kafka", KafkaSink::json("localhost:9092", "pages").at_least_once());
//! env.execute().await?;
//! # Ok(())
//! # }
//! ```

mod client;
mod error;
pub mod sink;
pub mod source;

pub use error::KafkaConnectorError;

pub use sink::{KafkaSink, OutRecord, TOKEN_HEADER};
pub use source::{KafkaRecord, KafkaSource, KafkaSplit, StartFrom};
