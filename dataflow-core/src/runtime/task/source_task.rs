//! The task loop of a source: polls the source, pushes its batches into
//! the chain, and with checkpoints injects barriers (also while the output
//! is backpressured) and, once finished, waits for the final checkpoint.

use crate::checkpoint::{Acks, BarrierKind, CheckpointBarrier, Part};
use crate::connectors::{Source, SourceContext, SourceStatus};
use crate::element::{Control, Data};
use crate::error::Error;
use crate::operator::OperatorInfo;
use crate::runtime::metrics::OperatorCounters;
use crate::runtime::push::{Push, PushFuture, SideTarget};
use crate::runtime::task::driver::{Outputs, guard_async};
use crate::runtime::task::input_task::Wakeups;
use crate::time::Watermark;
use std::sync::Arc;
use std::task::Poll;
use tokio::sync::watch;

/// The chain a source feeds and its side outputs (a source's bad input):
/// control elements go to both.
pub(crate) struct SourceOutputs<T> {
    head: Outputs<T>,
    sides: Vec<Box<dyn SideTarget>>,
}

impl<T: Data> SourceOutputs<T> {
    pub(crate) fn new(head: Outputs<T>, sides: Vec<Box<dyn SideTarget>>) -> Self {
        Self { head, sides }
    }

    /// Hands on what the source put in its context's side outputs.
    async fn emit_side(&mut self, ctx: &mut SourceContext<T>) -> Result<(), Error> {
        for (key, buf) in ctx.side.buffers.iter_mut().filter(|(_, b)| !b.is_empty()) {
            match self.sides.iter_mut().find(|s| s.key() == key) {
                Some(side) => side.push(buf.as_mut()).await?,
                // Nobody reads this side output.
                None => buf.clear(),
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl<T: Data> Push<T> for SourceOutputs<T> {
    fn push<'a>(&'a mut self, batch: &'a mut crate::element::Batch<T>) -> PushFuture<'a> {
        self.head.push(batch)
    }

    async fn control(&mut self, control: Control) -> Result<(), Error> {
        self.head.control(control).await?;
        for side in &mut self.sides {
            side.control(control).await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), Error> {
        self.head.flush().await?;
        for side in &mut self.sides {
            side.flush().await?;
        }
        Ok(())
    }

    fn has_pending(&self) -> bool {
        self.head.has_pending()
    }

    async fn drive_pending(&mut self) -> Result<(), Error> {
        self.head.drive_pending().await
    }

    fn next_wakeup(&self) -> Option<crate::time::Timestamp> {
        self.head.next_wakeup()
    }

    async fn on_processing_time(&mut self, now: crate::time::Timestamp) -> Result<(), Error> {
        self.head.on_processing_time(now).await
    }

    fn paused(&self) -> Option<crate::time::Wakeup> {
        self.head.paused()
    }

    async fn writable(&mut self) -> Result<(), Error> {
        self.head.writable().await
    }
}

/// Runs a source task: polls the source and pushes its batches into the chain.
pub(crate) async fn run_source<T: Data>(
    mut source: Box<dyn Source<T>>,
    mut head: SourceOutputs<T>,
    info: Arc<OperatorInfo>,
    counters: Arc<OperatorCounters>,
    batch_size: usize,
    acks: Option<Acks>,
) -> Result<(), Error> {
    let mut ctx = SourceContext::new(batch_size);
    let wakeups = Wakeups::new(info.clock.clone());
    let mut barriers = acks.as_ref().map(Acks::barriers);
    let mut injected = Injected::default();
    let completed = acks.as_ref().map(Acks::completed);
    // A waiting poll that loses nothing when dropped makes way for barriers.
    let cancel_safe = source.poll_is_cancel_safe();
    loop {
        if let Some(completed) = &completed {
            injected.notify(source.as_mut(), *completed.borrow());
        }
        if let (Some(acks), Some(barriers)) = (&acks, &mut barriers) {
            let stop = inject_triggered(source.as_mut(), &mut head, &info, acks, barriers, &mut injected).await?;
            if let Some(stop) = stop
                && stopped(&mut head, acks, stop).await?
            {
                return head.control(Control::EndOfInput).await;
            }
            // Under backpressure, wait for room before polling, and meanwhile
            // inject the barriers that come (unaligned ones overtake the
            // queued output).
            tokio::select! {
                r = head.writable() => r?,
                r = barriers.changed() => if r.is_ok() { continue },
            }
        }
        wakeups.fire_due(&mut head).await?;
        // An operator of the chain (watermark alignment) holds the source back.
        while let Some(mut resume) = head.paused() {
            head.flush().await?;
            let mut wake = wakeups.next(head.next_wakeup());
            tokio::select! {
                _ = &mut resume => {}
                r = head.drive_pending(), if head.has_pending() => r?,
                _ = &mut wake => wakeups.fire_due(&mut head).await?,
            }
        }
        let status = {
            let mut poll = std::pin::pin!(guard_async(&info, source.poll_batch(&mut ctx)));
            match futures::poll!(poll.as_mut()) {
                Poll::Ready(r) => Some(r?),
                Poll::Pending => {
                    head.flush().await?;
                    loop {
                        let mut wake = wakeups.next(head.next_wakeup());
                        let barrier = async {
                            match (&mut barriers, cancel_safe) {
                                (Some(b), true) => b.changed().await.is_ok(),
                                _ => std::future::pending().await,
                            }
                        };
                        tokio::select! {
                            r = poll.as_mut() => break Some(r?),
                            r = head.drive_pending(), if head.has_pending() => {
                                r?;
                                head.flush().await?;
                            }
                            _ = &mut wake => {
                                wakeups.fire_due(&mut head).await?;
                                head.flush().await?;
                            }
                            // Drop the waiting poll: the loop injects the barrier.
                            true = barrier => break None,
                        }
                    }
                }
            }
        };
        if ctx.skipped > 0 {
            counters.add_skipped(std::mem::take(&mut ctx.skipped));
        }
        head.emit_side(&mut ctx).await?;
        let Some(status) = status else { continue };
        if !ctx.records.is_empty() {
            counters.add_out(ctx.records.len());
            head.push(&mut ctx.records).await?;
            if ctx.records.capacity() < batch_size {
                ctx.records.reserve(batch_size);
            }
        }
        if let Some(c) = ctx.control.take() {
            head.control(c).await?;
        }
        if status == SourceStatus::Finished {
            head.control(Control::Watermark(Watermark::MAX)).await?;
            if let Some(acks) = &acks {
                let mut at_end = SourceAtEnd { source: source.as_mut(), info: &info, acks, wakeups: &wakeups };
                at_end.wait_for_final_checkpoint(&mut head, &mut injected).await?;
            }
            return head.control(Control::EndOfInput).await;
        }
        tokio::task::consume_budget().await;
    }
}

/// Injects the latest triggered checkpoint's barrier if this source has
/// not yet (also one triggered before the task started): the barrier goes
/// after the records handed out so far, with the source's position as the
/// instance's part. Returns the barrier if it is a savepoint that stops
/// the job (with `drain`, the maximum watermark went just ahead of it).
/// The barriers a source injected: the latest one's id, and the source's
/// positions at those of checkpoints not known to be complete yet.
#[derive(Default)]
struct Injected {
    last: u64,
    positions: std::collections::BTreeMap<u64, Vec<u8>>,
    notified: u64,
}

impl Injected {
    /// Tells the source that checkpoint `completed` (and all before it)
    /// completed, with its position at the newest of those it took part in.
    fn notify<T: Data>(&mut self, source: &mut dyn Source<T>, completed: u64) {
        if completed <= self.notified {
            return;
        }
        self.notified = completed;
        let later = self.positions.split_off(&(completed + 1));
        let done = std::mem::replace(&mut self.positions, later);
        if let Some((id, position)) = done.into_iter().next_back() {
            source.checkpoint_complete(id, &position);
        }
    }
}

async fn inject_triggered<T: Data>(
    source: &mut dyn Source<T>,
    head: &mut SourceOutputs<T>,
    info: &OperatorInfo,
    acks: &Acks,
    barriers: &watch::Receiver<Option<CheckpointBarrier>>,
    injected: &mut Injected,
) -> Result<Option<CheckpointBarrier>, Error> {
    let triggered = (*barriers.borrow()).filter(|b| b.id > injected.last);
    let Some(b) = triggered else { return Ok(None) };
    injected.last = b.id;
    if b.kind == (BarrierKind::Stop { drain: true }) {
        head.control(Control::Watermark(Watermark::MAX)).await?;
    }
    head.control(Control::Barrier(b)).await?;
    // The source was not polled since: its position is the barrier's.
    let started = std::time::Instant::now();
    let position = source.position();
    if let Some(p) = &position {
        injected.positions.insert(b.id, p.clone());
    }
    let part = position.map_or(Part::Nothing, Part::Bytes);
    acks.acknowledge(info, b, part, None, started.elapsed());
    Ok(matches!(b.kind, BarrierKind::Stop { .. }).then_some(b))
}

/// After the barrier of a savepoint that stops the job: waits for the
/// savepoint's outcome. `true`: it completed, the source ends (emitting
/// nothing more); `false`: it was aborted and the source goes on. A
/// draining stop that failed fails the job (event time already reached
/// its end).
async fn stopped<T: Data>(head: &mut SourceOutputs<T>, acks: &Acks, stop: CheckpointBarrier) -> Result<bool, Error> {
    let mut outcome = acks.savepoint_outcome();
    loop {
        let (id, completed) = *outcome.borrow_and_update();
        if id == stop.id {
            return match (completed, stop.kind) {
                (true, _) => Ok(true),
                (false, BarrierKind::Stop { drain: true }) => Err(Error::Savepoint {
                    path: format!("(stop-with-savepoint {id})").into(),
                    message: format!("savepoint {id} of a draining stop failed after event time reached its end"),
                }),
                (false, _) => Ok(false),
            };
        }
        head.flush().await?;
        tokio::select! {
            // A closed watch means the job is ending anyway.
            r = outcome.changed() => if r.is_err() { return Ok(true) },
            r = head.drive_pending(), if head.has_pending() => r?,
        }
    }
}

/// A finished source of a job with checkpoints. It ends only once the
/// final checkpoint, taken after every source finished, completed: that
/// checkpoint holds every source at its end and seals the sinks' last
/// output, so a job restored from it emits nothing twice (Flink's
/// FLIP-147). Meanwhile it still injects the barriers of other checkpoints.
struct SourceAtEnd<'a, T> {
    source: &'a mut dyn Source<T>,
    info: &'a OperatorInfo,
    acks: &'a Acks,
    wakeups: &'a Wakeups,
}

impl<T: Data> SourceAtEnd<'_, T> {
    async fn wait_for_final_checkpoint(
        &mut self,
        head: &mut SourceOutputs<T>,
        injected: &mut Injected,
    ) -> Result<(), Error> {
        let mut finals = self.acks.source_finished();
        let mut all = self.acks.all_sources_finished();
        let mut barriers = self.acks.barriers();
        let mut completed = self.acks.completed();
        loop {
            let stop = inject_triggered(&mut *self.source, head, self.info, self.acks, &barriers, injected).await?;
            if let Some(stop) = stop
                && stopped(head, self.acks, stop).await?
            {
                return Ok(());
            }
            let last = *finals.borrow_and_update();
            // Without checkpointing (savepoints only) there is no final
            // checkpoint: the sources end together.
            let done = match self.acks.checkpointing() {
                true => last != 0 && injected.last >= last && *completed.borrow_and_update() >= last,
                false => *all.borrow_and_update(),
            };
            if done {
                return Ok(());
            }
            head.flush().await?;
            let mut wake = self.wakeups.next(head.next_wakeup());
            // A closed watch means the job is ending anyway.
            tokio::select! {
                r = barriers.changed() => if r.is_err() { return Ok(()) },
                r = completed.changed() => if r.is_err() { return Ok(()) },
                r = finals.changed() => if r.is_err() { return Ok(()) },
                r = all.changed() => if r.is_err() { return Ok(()) },
                r = head.drive_pending(), if head.has_pending() => r?,
                _ = &mut wake => self.wakeups.fire_due(head).await?,
            }
        }
    }
}
