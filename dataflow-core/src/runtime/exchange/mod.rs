//! The exchange between tasks: how a batch written by one task reaches the
//! next.
//!
//! * [`channel`]: bounded channels with a priority lane for overtaking
//!   barriers, gathered per receiving task into an [`InputGate`]; a full
//!   channel blocks its sender (backpressure);
//! * [`writer`]: a task's output towards one edge: partitioning (forward,
//!   rebalance, broadcast, by key group) and batching into the channels.
//!
//! Tasks in one process use these in-process channels; a network
//! exchange would implement the same sender and gate ends.

pub(crate) mod channel;
pub(crate) mod writer;
