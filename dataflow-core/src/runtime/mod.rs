//! The runtime: how a job graph becomes running tasks, and how records
//! move between them. It is grouped by concern:
//!
//! * [`exchange`]: the exchange between tasks: bounded channels with a
//!   priority lane, one input gate per task input, and the writers that
//!   partition and batch records towards the next task (the in-process
//!   exchange; a network exchange belongs beside it);
//! * [`push`]: the link of a chain ([`Push`](push::Push)): operator
//!   drivers, sink drivers and channel writers all take batches this way;
//! * [`task`]: the task loops (source, one-input, two-input) and the
//!   drivers that run operators, async operators and sinks in a chain;
//! * [`job`]: building the tasks from the graph (the factories the typed
//!   API stores in it) and running them to the end, with restarts;
//! * [`metrics`]: record counters per operator, summed into a
//!   [`JobResult`].
//!
//! Checkpoint mechanics inside a task (barrier alignment, channel state)
//! live in [`checkpoint`](crate::checkpoint); see `docs/runtime.md` and
//! `docs/architecture.md`.

pub(crate) mod exchange;
pub(crate) mod job;
pub(crate) mod metrics;
pub(crate) mod push;
pub(crate) mod task;

pub use metrics::{JobResult, OperatorStats};
