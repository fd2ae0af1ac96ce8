//! # dataflow
//!
//! Embeddable, stateful stream processing with the semantics Apache Flink
//! made the reference, as a library: build a typed graph of operators and
//! run it inside your own tokio program.
//!
//! ```
//! use dataflow_core::StreamEnvironment;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let env = StreamEnvironment::new().with_parallelism(2);
//! let counts = env
//!     .from_iter(vec![String::from("to be or not to be")])
//!     .flat_map(|line: String| line.split(' ').map(String::from).collect::<Vec<_>>())
//!     .key_by(|word| word.clone())
//!     .count()
//!     .collect();
//! env.execute().await?;
//! let mut final_counts: Vec<_> = counts.take();
//! final_counts.sort();
//! assert_eq!(final_counts.last(), Some(&("to".to_string(), 2)));
//! # Ok::<(), dataflow_core::Error>(())
//! # }).unwrap();
//! ```
//!
//! Where things live:
//!
//! * [`api`]: the environment and the typed streams;
//! * [`operator`](mod@operator): the operator model and the built-in operators;
//! * [`graph`]: the logical graph and the physical plan (chaining);
//! * `runtime`: tasks, bounded channels, input gates;
//! * [`time`]: timestamps, watermarks, watermark strategies, clocks, timers;
//! * [`window`]: window assigners, triggers, window functions and the window operator;
//! * [`checkpoint`]: barriers (and, later, the coordinator and savepoints);
//! * [`connectors`]: sources and sinks.

pub mod api;
mod batch;
pub mod checkpoint;
pub mod connectors;
mod element;
mod error;
pub mod graph;
pub mod operator;
mod runtime;
pub mod time;
pub mod window;

pub use api::{ConnectedStreams, JobClient, KeyedStream, SinkNode, Stream, StreamEnvironment, WindowedStream};
pub use batch::{Batch, Drain as BatchDrain};
pub use element::{Control, Data, Record, StreamElement, StreamStatus};
pub use error::{Error, Result};
pub use graph::{Partitioning, PhysicalPlan};
pub use operator::{BoxError, Collector, Operator, OperatorInfo, TwoInputOperator};
pub use runtime::{JobResult, OperatorStats};

/// Keys, key groups and (later) keyed state, from `dataflow-state`.
pub use dataflow_state as state;
pub use dataflow_state::table::{FjallStateConfig, StateBackendConfig};
pub use dataflow_state::{
    AggregateFunction, AggregatingState, Key, KeyGroupRange, ListState, MapState, Reducer, ReducingState, StateData,
    StateValue, ValueState,
};

/// Turns a function into an operator; see [`operator::function`] and
/// `docs/operators.md`.
pub use dataflow_macros::operator;

/// The README's example, compiled and run as a doctest.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
