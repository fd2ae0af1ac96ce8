//! The runtime: tasks, channels, input gates, and running a job.
//!
//! * `channel`: bounded channels with a priority lane, one gate per task input;
//! * `writer`: partitioning and batching towards the next task;
//! * `push`: how batches move along a chain of operators;
//! * `task`: the loops of source, one-input and two-input tasks;
//! * `factory` and `job`: turning the graph into running tasks.

pub(crate) mod alignment;
pub(crate) mod async_driver;
pub(crate) mod channel;
pub(crate) mod channel_state;
pub(crate) mod factory;
pub(crate) mod guard;
pub(crate) mod job;
pub(crate) mod metrics;
pub(crate) mod push;
pub(crate) mod sink_driver;
pub(crate) mod source_task;
pub(crate) mod task;
pub(crate) mod writer;

pub use metrics::{JobResult, OperatorStats};
