//! Task loops: a source task, a one-input task and a two-input task.
//!
//! A task owns a chain of operators (its head is a [`Push`]) and, unless it
//! is a source, an input gate per input. It takes one message at a time,
//! serving priority-lane control elements first, and turns per-channel
//! control elements into task-level ones with [`InputControl`] (watermark
//! minimum, idleness, barriers, end of input). Before it would wait for
//! input it flushes its output buffers, so a quiet input never strands
//! records downstream.

use super::channel::{InputGate, Message, Received};
use super::metrics::OperatorCounters;
use super::push::{Outputs, Push, guard_async};
use crate::checkpoint::CheckpointBarrier;
use crate::connectors::{Source, SourceContext, SourceStatus};
use crate::element::{Control, Data};
use crate::error::Error;
use crate::operator::OperatorInfo;
use crate::time::{Clock, InputWatermarks, Timestamp, Wakeup, Watermark};
use std::sync::Arc;
use std::task::Poll;

/// Task-level view of the control elements arriving on a task's channels.
pub(crate) struct InputControl {
    watermarks: InputWatermarks,
    ended: Vec<bool>,
    live: usize,
    /// The barrier being collected, and which channels delivered it.
    barrier: Option<(CheckpointBarrier, Vec<bool>)>,
}

impl InputControl {
    pub(crate) fn new(channels: usize) -> Self {
        Self { watermarks: InputWatermarks::new(channels), ended: vec![false; channels], live: channels, barrier: None }
    }

    /// Whether every channel has ended.
    pub(crate) fn finished(&self) -> bool {
        self.live == 0
    }

    /// Whether every channel in `range` has ended.
    pub(crate) fn range_finished(&self, range: std::ops::Range<usize>) -> bool {
        self.ended[range].iter().all(|&e| e)
    }

    /// Handles `control` from `channel`, appending what the task must pass on.
    pub(crate) fn on_control(&mut self, channel: usize, control: Control, out: &mut Vec<Control>) {
        match control {
            Control::Watermark(w) => {
                let (wm, status) = self.watermarks.on_watermark(channel, w);
                out.extend(wm.map(Control::Watermark));
                out.extend(status.map(Control::Status));
            }
            Control::Status(s) => {
                let (wm, status) = self.watermarks.on_status(channel, s);
                out.extend(wm.map(Control::Watermark));
                out.extend(status.map(Control::Status));
            }
            Control::EndOfInput => {
                if !std::mem::replace(&mut self.ended[channel], true) {
                    self.live -= 1;
                    let (wm, status) = self.watermarks.on_end_of_input(channel);
                    out.extend(wm.map(Control::Watermark));
                    if self.live > 0 {
                        out.extend(status.map(Control::Status));
                    }
                    // The barrier being collected may now have every live channel.
                    self.release_barrier(out);
                    if self.live == 0 {
                        out.push(Control::EndOfInput);
                    }
                }
            }
            Control::Barrier(b) => {
                // Without alignment: pass a barrier on once every live
                // channel delivered it (at-least-once). A newer barrier
                // replaces an older one still being collected. Aligned and
                // unaligned modes come with checkpoints.
                match &mut self.barrier {
                    Some((cur, _)) if cur.id > b.id => return,
                    Some((cur, seen)) if cur.id == b.id => seen[channel] = true,
                    _ => {
                        let mut seen = vec![false; self.ended.len()];
                        seen[channel] = true;
                        self.barrier = Some((b, seen));
                    }
                }
                self.release_barrier(out);
            }
        }
    }

    /// Passes the barrier on once every channel that has not ended delivered it.
    fn release_barrier(&mut self, out: &mut Vec<Control>) {
        let complete = match &self.barrier {
            Some((_, seen)) => seen.iter().zip(&self.ended).all(|(&s, &e)| s || e),
            None => false,
        };
        if complete && let Some((b, _)) = self.barrier.take() {
            out.push(Control::Barrier(b));
        }
    }
}

/// What a task waits for besides input: the earliest processing time its
/// chain asked for, on the job's clock.
pub(crate) struct Wakeups {
    clock: Arc<dyn Clock>,
}

impl Wakeups {
    pub(crate) fn new(clock: Arc<dyn Clock>) -> Self {
        Self { clock }
    }

    /// The current processing time if `wakeup` is due.
    fn due(&self, wakeup: Option<Timestamp>) -> Option<Timestamp> {
        let t = wakeup?;
        let now = self.clock.now_millis();
        (t <= now).then_some(now)
    }

    /// Calls the chain's processing-time callbacks that are due.
    async fn fire_due<T: Data, P: Push<T> + ?Sized>(&self, head: &mut P) -> Result<(), Error> {
        match self.due(head.next_wakeup()) {
            Some(now) => head.on_processing_time(now).await,
            None => Ok(()),
        }
    }

    /// A future for the chain's next wake-up (pending forever if none).
    fn next(&self, wakeup: Option<Timestamp>) -> Wakeup {
        match wakeup {
            Some(t) => self.clock.wait_until(t),
            None => Box::pin(std::future::pending()),
        }
    }
}

/// Runs a source task: polls the source and pushes its batches into the chain.
pub(crate) async fn run_source<T: Data>(
    mut source: Box<dyn Source<T>>,
    mut head: Outputs<T>,
    info: Arc<OperatorInfo>,
    counters: Arc<OperatorCounters>,
    batch_size: usize,
) -> Result<(), Error> {
    let mut ctx = SourceContext::new(batch_size);
    let wakeups = Wakeups::new(info.clock.clone());
    loop {
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
                Poll::Ready(r) => r?,
                Poll::Pending => {
                    head.flush().await?;
                    loop {
                        let mut wake = wakeups.next(head.next_wakeup());
                        tokio::select! {
                            r = poll.as_mut() => break r?,
                            r = head.drive_pending(), if head.has_pending() => {
                                r?;
                                head.flush().await?;
                            }
                            _ = &mut wake => {
                                wakeups.fire_due(&mut head).await?;
                                head.flush().await?;
                            }
                        }
                    }
                }
            }
        };
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
            return head.control(Control::EndOfInput).await;
        }
        tokio::task::consume_budget().await;
    }
}

async fn next_message<T: Data>(
    gate: &mut InputGate<T>,
    head: &mut Box<dyn Push<T>>,
    task: &str,
    wakeups: &Wakeups,
) -> Result<Received<T>, Error> {
    let disconnected = |_| Error::Disconnected { task: task.to_string() };
    wakeups.fire_due(head.as_mut()).await?;
    if let Some(m) = gate.try_recv().map_err(disconnected)? {
        return Ok(m);
    }
    head.flush().await?;
    loop {
        let mut wake = wakeups.next(head.next_wakeup());
        tokio::select! {
            r = gate.recv() => return r.map_err(disconnected),
            r = head.drive_pending(), if head.has_pending() => {
                r?;
                head.flush().await?;
            }
            _ = &mut wake => {
                wakeups.fire_due(head.as_mut()).await?;
                head.flush().await?;
            }
        }
    }
}

/// Runs a task whose chain head has one input.
pub(crate) async fn run_one_input<T: Data>(
    mut gate: InputGate<T>,
    mut head: Box<dyn Push<T>>,
    task: Arc<str>,
    wakeups: Wakeups,
) -> Result<(), Error> {
    let mut input = InputControl::new(gate.channels());
    let mut controls = Vec::new();
    while !input.finished() {
        match next_message(&mut gate, &mut head, &task, &wakeups).await? {
            Received::Data(_, Message::Records(mut batch)) => head.push(&mut batch).await?,
            Received::Data(ch, Message::Control(c)) | Received::Priority(ch, c) => {
                input.on_control(ch, c, &mut controls);
                for c in controls.drain(..) {
                    head.control(c).await?;
                }
            }
        }
        tokio::task::consume_budget().await;
    }
    Ok(())
}

/// The head of a two-input task: the operator, seen from both inputs.
#[async_trait::async_trait]
pub(crate) trait TwoInputPush<A, B>: Send {
    async fn push1(&mut self, batch: &mut crate::Batch<A>) -> Result<(), Error>;
    async fn push2(&mut self, batch: &mut crate::Batch<B>) -> Result<(), Error>;
    async fn control(&mut self, control: Control) -> Result<(), Error>;
    async fn flush(&mut self) -> Result<(), Error>;
    fn has_pending(&self) -> bool;
    async fn drive_pending(&mut self) -> Result<(), Error>;
    fn next_wakeup(&self) -> Option<Timestamp>;
    async fn on_processing_time(&mut self, now: Timestamp) -> Result<(), Error>;
}

enum Either<A, B> {
    Left(Received<A>),
    Right(Received<B>),
}

/// Runs a task whose head has two inputs. Channels of the second input are
/// numbered after those of the first, so one [`InputControl`] takes the
/// watermark minimum over both inputs.
pub(crate) async fn run_two_input<A: Data, B: Data>(
    mut gate1: InputGate<A>,
    mut gate2: InputGate<B>,
    mut head: Box<dyn TwoInputPush<A, B>>,
    task: Arc<str>,
    wakeups: Wakeups,
) -> Result<(), Error> {
    let (n1, n2) = (gate1.channels(), gate2.channels());
    let mut input = InputControl::new(n1 + n2);
    let mut controls = Vec::new();
    let disconnected = |_| Error::Disconnected { task: task.to_string() };
    let mut prefer_first = true;
    while !input.finished() {
        let (open1, open2) = (!input.range_finished(0..n1), !input.range_finished(n1..n1 + n2));
        // Alternate which input is tried first so neither starves.
        prefer_first = !prefer_first;
        if let Some(now) = wakeups.due(head.next_wakeup()) {
            head.on_processing_time(now).await?;
        }
        let mut ready = None;
        for first in [prefer_first, !prefer_first] {
            ready = match first {
                true if open1 => gate1.try_recv().map_err(disconnected)?.map(Either::Left),
                false if open2 => gate2.try_recv().map_err(disconnected)?.map(Either::Right),
                _ => None,
            };
            if ready.is_some() {
                break;
            }
        }
        let msg = match ready {
            Some(m) => m,
            None => {
                head.flush().await?;
                let mut wake = wakeups.next(head.next_wakeup());
                tokio::select! {
                    _ = &mut wake => continue,
                    r = gate1.recv(), if open1 => Either::Left(r.map_err(disconnected)?),
                    r = gate2.recv(), if open2 => Either::Right(r.map_err(disconnected)?),
                    r = head.drive_pending(), if head.has_pending() => {
                        r?;
                        continue;
                    }
                }
            }
        };
        let control = match msg {
            Either::Left(Received::Data(_, Message::Records(mut b))) => {
                head.push1(&mut b).await?;
                None
            }
            Either::Right(Received::Data(_, Message::Records(mut b))) => {
                head.push2(&mut b).await?;
                None
            }
            Either::Left(Received::Data(ch, Message::Control(c)) | Received::Priority(ch, c)) => Some((ch, c)),
            Either::Right(Received::Data(ch, Message::Control(c)) | Received::Priority(ch, c)) => Some((n1 + ch, c)),
        };
        if let Some((ch, c)) = control {
            input.on_control(ch, c, &mut controls);
            for c in controls.drain(..) {
                head.control(c).await?;
            }
        }
        tokio::task::consume_budget().await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn barrier(id: u64) -> Control {
        Control::Barrier(CheckpointBarrier { id, timestamp: 0 })
    }

    #[test]
    fn a_barrier_passes_once_every_live_channel_delivered_it() {
        let mut input = InputControl::new(3);
        let mut out = Vec::new();
        input.on_control(0, barrier(1), &mut out);
        input.on_control(0, barrier(1), &mut out); // the same channel twice counts once
        input.on_control(1, barrier(1), &mut out);
        assert!(out.is_empty());
        // Channel 2 ends instead: the barrier is complete.
        input.on_control(2, Control::EndOfInput, &mut out);
        assert!(out.contains(&barrier(1)), "{out:?}");
        out.clear();
        // A newer barrier replaces one still being collected; an older one is ignored.
        input.on_control(0, barrier(3), &mut out);
        input.on_control(1, barrier(2), &mut out);
        input.on_control(1, barrier(3), &mut out);
        assert_eq!(out, [barrier(3)]);
    }
}
