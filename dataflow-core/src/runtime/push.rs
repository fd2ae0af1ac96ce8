//! The links of a chain: [`Push`] is what every operator instance, sink
//! driver and channel writer implements for its input type, so a task
//! pushes a batch into its chain head and each link pushes its output into
//! the next (a direct call) or into the channels to the next task;
//! [`TwoInputPush`] is the head of a two-input task, and [`SideTarget`] the
//! downstream of one side output.

use crate::element::{Batch, Control};
use crate::error::Error;
use crate::operator::{ErasedBatch, TagKey};
use crate::time::{Timestamp, Wakeup};
use async_trait::async_trait;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

/// A boxed future of a push, for the parts of a chain that really wait.
pub(crate) type BoxPush<'a> = Pin<Box<dyn Future<Output = Result<(), Error>> + Send + 'a>>;

/// What [`Push::push`] returns. A chain of synchronous operators does its
/// work while the push is called and returns `Ready`; only a step that
/// really waits (a channel send, an async operator, a sink) returns a boxed
/// future. So a batch through a chain allocates no future per operator.
pub(crate) enum PushFuture<'a> {
    Ready(Option<Result<(), Error>>),
    Boxed(BoxPush<'a>),
}

impl<'a> PushFuture<'a> {
    pub(crate) fn ready(r: Result<(), Error>) -> Self {
        PushFuture::Ready(Some(r))
    }

    pub(crate) fn boxed(f: impl Future<Output = Result<(), Error>> + Send + 'a) -> Self {
        PushFuture::Boxed(Box::pin(f))
    }
}

impl Future for PushFuture<'_> {
    type Output = Result<(), Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            PushFuture::Ready(r) => Poll::Ready(r.take().unwrap_or(Ok(()))),
            PushFuture::Boxed(f) => f.as_mut().poll(cx),
        }
    }
}

/// Something that takes batches of `T`: an operator instance, a sink, a
/// channel writer, or several of them.
#[async_trait]
pub(crate) trait Push<T>: Send {
    /// Takes the records of `batch`, leaving it empty (its allocation may be
    /// swapped for another). Synchronous work happens in this call; the
    /// returned future finishes what has to wait.
    fn push<'a>(&'a mut self, batch: &'a mut Batch<T>) -> PushFuture<'a>;
    /// Takes a control element.
    async fn control(&mut self, control: Control) -> Result<(), Error>;
    /// Sends whatever is buffered for other tasks now.
    async fn flush(&mut self) -> Result<(), Error>;

    /// Whether asynchronous work (an async operator's calls) is in flight
    /// here or further down the chain.
    fn has_pending(&self) -> bool {
        false
    }

    /// Waits until some of that work completes and buffers its results; the
    /// task flushes afterwards. A task calls it while it has no input, so
    /// async results keep flowing, and drops it when input arrives first:
    /// it must be cancel-safe (lose nothing when dropped while waiting).
    async fn drive_pending(&mut self) -> Result<(), Error> {
        Ok(())
    }

    /// The earliest processing time at which an operator here or further
    /// down the chain wants to be called.
    fn next_wakeup(&self) -> Option<Timestamp> {
        None
    }

    /// Processing time reached `now`: calls the operators that asked for it.
    async fn on_processing_time(&mut self, _now: Timestamp) -> Result<(), Error> {
        Ok(())
    }

    /// Whether an operator here or further down the chain holds the source
    /// back; the future completes when it may have changed its mind.
    fn paused(&self) -> Option<Wakeup> {
        None
    }

    /// Waits until the channels this chain writes to have room (a source
    /// waits here, cancel-safely, so a barrier can be injected while the
    /// output is backpressured).
    async fn writable(&mut self) -> Result<(), Error> {
        Ok(())
    }
}

/// The earlier of two optional times.
pub(crate) fn earliest(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The head of a two-input task: the operator, seen from both inputs.
#[async_trait::async_trait]
pub(crate) trait TwoInputPush<A, B>: Send {
    async fn push1(&mut self, batch: &mut Batch<A>) -> Result<(), Error>;
    async fn push2(&mut self, batch: &mut Batch<B>) -> Result<(), Error>;
    async fn control(&mut self, control: Control) -> Result<(), Error>;
    async fn flush(&mut self) -> Result<(), Error>;
    fn has_pending(&self) -> bool;
    async fn drive_pending(&mut self) -> Result<(), Error>;
    fn next_wakeup(&self) -> Option<Timestamp>;
    async fn on_processing_time(&mut self, now: Timestamp) -> Result<(), Error>;
}

/// The downstream of one side output of an operator instance.
#[async_trait]
pub(crate) trait SideTarget: Send {
    fn key(&self) -> &TagKey;
    /// Takes the records of `batch` (a `Batch` of the tag's type).
    async fn push(&mut self, batch: &mut dyn ErasedBatch) -> Result<(), Error>;
    async fn control(&mut self, control: Control) -> Result<(), Error>;
    async fn flush(&mut self) -> Result<(), Error>;
}
