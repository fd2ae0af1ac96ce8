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
//! Where things live (lowest layer first; `docs/architecture.md` draws
//! the layers, and a module imports only from the layers below its own):
//!
//! * `element` and `error`: what travels on a channel (records,
//!   [`Batch`]es, watermarks, checkpoint barriers) and the [`Error`] type;
//! * [`time`]: timestamps, watermarks, watermark strategies, where a task
//!   combines its inputs' watermarks, clocks, timers;
//! * [`operator`](mod@operator): the operator model, keyed state access
//!   and the built-in operators;
//! * [`window`]: window assigners, triggers, window functions and the
//!   window operator;
//! * [`connectors`]: sources and sinks (transactional files for
//!   exactly-once output);
//! * [`graph`]: the logical graph, partitioning and the physical plan
//!   (chaining);
//! * [`checkpoint`]: the checkpoint coordinator, barrier alignment, channel
//!   state, checkpoint storage, savepoints and restart strategies;
//! * `runtime`: the exchange between tasks (bounded channels, input
//!   gates), the task loops, and building and running a job;
//! * [`api`]: the environment and the typed streams.

pub mod api;
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
pub use element::{Batch, Control, Data, Drain as BatchDrain, Record, StreamElement, StreamStatus};
pub use error::{BoxError, Error, Result};
pub use graph::{Partitioning, PhysicalPlan};
pub use operator::{Collector, Operator, OperatorInfo, TwoInputOperator};
pub use runtime::{JobResult, OperatorStats};

/// Keys, key groups, keyed state and state backends, from
/// `dataflow-state`: what a user names (the crate's internals stay there).
pub mod state {
    pub use dataflow_state::key_group;
    /// List, union and broadcast operator state (not yet reachable from
    /// operators; see `docs/state.md`).
    pub use dataflow_state::operator_state;
    pub use dataflow_state::{
        AggregateFunction, AggregatingState, DEFAULT_MAX_PARALLELISM, Key, KeyGroupRange, ListState, MapState, Max,
        Min, Reducer, ReducingState, StateData, StateError, StateValue, Sum, Ttl, ValueState,
    };
    /// The job's state backends and the snapshots of its keyed state.
    pub mod table {
        pub use dataflow_state::table::{
            FjallStateConfig, SnapshotKind, StateBackendConfig, StateSnapshot, TIMERS_ID, state_id,
        };
    }
    /// Snapshot files.
    pub mod backend {
        /// Reading a snapshot file's entries.
        pub mod format {
            pub use dataflow_state::backend::format::{EntrySink, read_file};
        }
    }
}
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
