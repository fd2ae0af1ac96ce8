//! Asynchronous operators (Flink's async I/O): a call per record that may
//! wait (a lookup in a database, a request to a service), with a bounded
//! number of calls in flight, results in input order or in completion order,
//! and an optional timeout per call.
//!
//! ```
//! use dataflow_core::{operator, StreamEnvironment};
//!
//! /// A lookup that would go to a service.
//! #[operator(capacity = 8, ordered)]
//! async fn name_of(id: u32) -> Option<String> {
//!     tokio::task::yield_now().await;
//!     (id % 2 == 0).then(|| format!("user-{id}"))
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let env = StreamEnvironment::new().with_parallelism(1);
//! let out = env.from_iter(0..5u32).apply_async(name_of()).collect();
//! env.execute().await.unwrap();
//! assert_eq!(out.take(), ["user-0", "user-2", "user-4"]);
//! # });
//! ```

use super::BoxError;
use crate::element::Data;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// The future of one asynchronous call: the outputs of one record, or an
/// error (handled by the job's bad-record policy).
pub type AsyncCall<Out> = Pin<Box<dyn Future<Output = Result<Vec<Out>, BoxError>> + Send + 'static>>;

/// Whether results leave in input order or as they complete.
///
/// ```
/// assert_eq!(dataflow_core::operator::AsyncOrder::default(), dataflow_core::operator::AsyncOrder::Ordered);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AsyncOrder {
    /// In the order of the input records.
    #[default]
    Ordered,
    /// As the calls complete (between two watermarks or other control
    /// elements, which wait for every call before them).
    Unordered,
}

/// An operator that makes one asynchronous call per record.
/// `#[operator]` on an `async fn` implements it; apply it with
/// [`Stream::apply_async`](crate::Stream::apply_async).
pub trait AsyncFnOperator: Send + 'static {
    /// The input type.
    type In: Data;
    /// The output type.
    type Out: Data;
    /// How many calls may be in flight per subtask (Flink's capacity).
    const CAPACITY: usize = 100;
    /// The order results leave in.
    const ORDER: AsyncOrder = AsyncOrder::Ordered;
    /// How long a call may take before it counts as failed.
    const TIMEOUT: Option<Duration> = None;

    /// Starts the call for one record; the future owns what it needs.
    fn start(&self, value: Self::In) -> AsyncCall<Self::Out>;
}
