//! Tasks: the loops that run a chain of operator instances, and the
//! drivers that hand batches along it.
//!
//! * [`source_task`]: a source subtask's loop (polling, barriers, stop);
//! * [`input_task`]: the loops of one- and two-input tasks: take a message
//!   from the input gate, combine per-channel control elements (watermarks,
//!   idleness, barriers, end of input) and push into the chain head;
//! * [`driver`]: the drivers of (one- and two-input) operator instances:
//!   each is a [`Push`](crate::runtime::push::Push) that runs its operator
//!   and pushes the output into the next link or a channel writer;
//!   [`async_driver`] and [`sink_driver`] drive async operators and sinks;
//! * [`build_ctx`]: what an instance is built with;
//! * [`guard`]: user code runs behind a panic guard that turns a panic into
//!   an error naming the operator.

pub(crate) mod async_driver;
pub(crate) mod build_ctx;
pub(crate) mod driver;
pub(crate) mod guard;
pub(crate) mod input_task;
pub(crate) mod sink_driver;
pub(crate) mod source_task;
