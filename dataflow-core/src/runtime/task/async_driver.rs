//! Running an [`AsyncFnOperator`]: at most `CAPACITY` calls in flight,
//! results handed on in input order or in completion order, every call
//! awaited before a control element passes, and calls driven while the task
//! has no input (see `Push::drive_pending`).

use crate::element::Batch;
use crate::element::Control;
use crate::error::Error;
use crate::operator::function::BadRecords;
use crate::operator::{AsyncFnOperator, AsyncOrder, BoxError};
use crate::runtime::push::{Push, PushFuture};
use crate::runtime::task::driver::{Emitter, Hooks, guard, panicked};
use crate::time::Timestamp;
use async_trait::async_trait;
use futures::FutureExt;
use futures::stream::{FuturesOrdered, FuturesUnordered, StreamExt};
use std::future::Future;
use std::pin::Pin;

/// A finished call: its record's position and timestamp, and its outputs,
/// its error, or its panic.
type Done<Out> = (u64, Option<Timestamp>, std::thread::Result<Result<Vec<Out>, BoxError>>);
type Call<Out> = Pin<Box<dyn Future<Output = Done<Out>> + Send>>;

enum InFlight<Out> {
    Ordered(FuturesOrdered<Call<Out>>),
    Unordered(FuturesUnordered<Call<Out>>),
}

impl<Out> InFlight<Out> {
    fn len(&self) -> usize {
        match self {
            InFlight::Ordered(f) => f.len(),
            InFlight::Unordered(f) => f.len(),
        }
    }

    fn push(&mut self, call: Call<Out>) {
        match self {
            InFlight::Ordered(f) => f.push_back(call),
            InFlight::Unordered(f) => f.push(call),
        }
    }

    async fn next(&mut self) -> Option<Done<Out>> {
        match self {
            InFlight::Ordered(f) => f.next().await,
            InFlight::Unordered(f) => f.next().await,
        }
    }
}

/// An [`AsyncFnOperator`] instance in a chain.
pub(crate) struct AsyncDriver<O: AsyncFnOperator> {
    op: O,
    emitter: Emitter<O::Out>,
    in_flight: InFlight<O::Out>,
    bad: BadRecords,
}

impl<O: AsyncFnOperator> AsyncDriver<O> {
    pub(crate) fn new(op: O, emitter: Emitter<O::Out>) -> Self {
        let in_flight = match O::ORDER {
            AsyncOrder::Ordered => InFlight::Ordered(FuturesOrdered::new()),
            AsyncOrder::Unordered => InFlight::Unordered(FuturesUnordered::new()),
        };
        let bad = BadRecords::new(&emitter.info);
        Self { op, emitter, in_flight, bad }
    }

    /// Puts the outputs of a finished call into the collector.
    fn collect(&mut self, (position, ts, result): Done<O::Out>) -> Result<(), Error> {
        let result = result.map_err(|p| panicked(&self.emitter.info, p))?;
        let (bad, out) = (&self.bad, &mut self.emitter.out);
        guard(&self.emitter.info, || match result {
            Ok(values) => {
                values.into_iter().for_each(|v| out.batch.push_with(v, ts));
                Ok(())
            }
            Err(e) => bad.reject(e, position, ts, out),
        })
    }

    /// Waits for one call and collects it; false when none is in flight.
    async fn complete_one(&mut self) -> Result<bool, Error> {
        match self.in_flight.next().await {
            Some(done) => self.collect(done).map(|()| true),
            None => Ok(false),
        }
    }

    /// Collects every call that has already finished, without waiting.
    fn complete_ready(&mut self) -> Result<(), Error> {
        while let Some(Some(done)) = self.in_flight.next().now_or_never() {
            self.collect(done)?;
        }
        Ok(())
    }
}

#[async_trait]
impl<O: AsyncFnOperator> Push<O::In> for AsyncDriver<O> {
    fn push<'a>(&'a mut self, batch: &'a mut Batch<O::In>) -> PushFuture<'a> {
        PushFuture::boxed(self.push_calls(batch))
    }

    async fn control(&mut self, control: Control) -> Result<(), Error> {
        // Everything before a control element leaves before it (so a
        // barrier finds no call in flight: an async function keeps no state).
        while self.complete_one().await? {}
        self.emitter.control_with(control, &mut (), &Hooks::stateless(), |_, _| Ok(())).await
    }

    async fn flush(&mut self) -> Result<(), Error> {
        self.complete_ready()?;
        self.emitter.emit().await?;
        self.emitter.flush().await
    }

    fn has_pending(&self) -> bool {
        self.in_flight.len() > 0 || self.emitter.next.has_pending()
    }

    // Cancel-safe: it only waits for a call and collects results into the
    // emitter's buffer; the task's next flush hands them on.
    async fn drive_pending(&mut self) -> Result<(), Error> {
        if self.in_flight.len() > 0 {
            if let Some(done) = self.in_flight.next().await {
                self.collect(done)?;
            }
            return self.complete_ready();
        }
        self.emitter.next.drive_pending().await
    }

    fn next_wakeup(&self) -> Option<crate::time::Timestamp> {
        self.emitter.next.next_wakeup()
    }

    async fn on_processing_time(&mut self, now: crate::time::Timestamp) -> Result<(), Error> {
        self.emitter.next.on_processing_time(now).await
    }

    fn paused(&self) -> Option<crate::time::Wakeup> {
        self.emitter.next.paused()
    }
}

impl<O: AsyncFnOperator> AsyncDriver<O> {
    /// Starts a call per record, waiting for a free slot when `CAPACITY`
    /// calls are in flight.
    async fn push_calls(&mut self, batch: &mut Batch<O::In>) -> Result<(), Error> {
        self.emitter.counters.add_in(batch.len());
        for record in batch.drain() {
            while self.in_flight.len() >= O::CAPACITY.max(1) {
                self.complete_one().await?;
            }
            let (position, ts) = (self.bad.next_position(), record.timestamp());
            let op = &self.op;
            let call = guard(&self.emitter.info, || Ok(op.start(record.value)))?;
            let call = std::panic::AssertUnwindSafe(call).catch_unwind();
            let call: Call<O::Out> = match O::TIMEOUT {
                None => Box::pin(call.map(move |r| (position, ts, r))),
                Some(limit) => Box::pin(tokio::time::timeout(limit, call).map(move |r| {
                    let r = r.unwrap_or_else(|_| Ok(Err(format!("the call timed out after {limit:?}").into())));
                    (position, ts, r)
                })),
            };
            self.in_flight.push(call);
            self.complete_ready()?;
        }
        self.emitter.emit().await
    }
}
