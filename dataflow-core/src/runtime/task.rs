//! Task loops: a source task, a one-input task and a two-input task.
//!
//! A task owns a chain of operators (its head is a [`Push`]) and, unless it
//! is a source, an input gate per input. It takes one message at a time,
//! serving priority-lane control elements first, and turns per-channel
//! control elements into task-level ones with [`InputControl`] (watermark
//! minimum, idleness, barriers, end of input). Barriers are aligned: once a
//! channel delivered the barrier being collected, its later messages wait
//! in a [`Stash`] until every live channel has delivered it, so nothing
//! after a barrier is processed before the snapshot it triggers. Before it
//! would wait for input a task flushes its output buffers, so a quiet input
//! never strands records downstream.

use super::channel::{InputGate, Message, Received};
use super::metrics::OperatorCounters;
use super::push::{Outputs, Push, guard_async};
use crate::checkpoint::{Acks, CheckpointBarrier, Part};
use crate::connectors::{Source, SourceContext, SourceStatus};
use crate::element::{Control, Data};
use crate::error::Error;
use crate::operator::OperatorInfo;
use crate::time::{Clock, InputWatermarks, Timestamp, Wakeup, Watermark};
use std::collections::VecDeque;
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
                // Pass a barrier on once every live channel delivered it;
                // meanwhile the channels that did are blocked (see
                // `blocks`). A newer barrier replaces an older one still
                // being collected. Unaligned mode comes with checkpoints.
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

    /// Whether `channel` delivered the barrier being collected, so its
    /// messages must wait until the barrier passes (alignment).
    pub(crate) fn blocks(&self, channel: usize) -> bool {
        self.barrier.as_ref().is_some_and(|(_, seen)| seen[channel])
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

/// The messages of blocked channels (see [`InputControl::blocks`]), in
/// order per channel, until their channel is unblocked.
pub(crate) struct Stash<M> {
    queues: Vec<VecDeque<M>>,
    held: usize,
}

impl<M> Stash<M> {
    pub(crate) fn new(channels: usize) -> Self {
        Self { queues: (0..channels).map(|_| VecDeque::new()).collect(), held: 0 }
    }

    /// Holds `message` of `channel` back. A channel with held messages
    /// keeps its order: its next messages are held too until those are
    /// taken.
    pub(crate) fn hold(&mut self, channel: usize, message: M) {
        self.queues[channel].push_back(message);
        self.held += 1;
    }

    /// Whether messages of `channel` must be held (blocked, or behind held
    /// ones).
    pub(crate) fn holds(&self, input: &InputControl, channel: usize) -> bool {
        input.blocks(channel) || !self.queues[channel].is_empty()
    }

    /// The first held message of a channel that is no longer blocked.
    pub(crate) fn take_ready(&mut self, input: &InputControl) -> Option<(usize, M)> {
        if self.held == 0 {
            return None;
        }
        let ch = (0..self.queues.len()).find(|&ch| !input.blocks(ch) && !self.queues[ch].is_empty())?;
        self.held -= 1;
        self.queues[ch].pop_front().map(|m| (ch, m))
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
    acks: Option<Acks>,
) -> Result<(), Error> {
    let mut ctx = SourceContext::new(batch_size);
    let wakeups = Wakeups::new(info.clock.clone());
    let barriers = acks.as_ref().map(Acks::barriers);
    let mut injected = 0;
    loop {
        // A triggered checkpoint (also one triggered before this task
        // started): the barrier goes after the records handed out so far,
        // with the source's position as this instance's part.
        let triggered = barriers.as_ref().and_then(|rx| *rx.borrow()).filter(|b| b.id > injected);
        if let (Some(b), Some(acks)) = (triggered, &acks) {
            injected = b.id;
            let part = source.position().map_or(Part::Nothing, Part::Bytes);
            acks.acknowledge(&info, b, part);
            head.control(Control::Barrier(b)).await?;
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
    let mut stash = Stash::new(gate.channels());
    let mut controls = Vec::new();
    while !input.finished() {
        let (ch, message) = match stash.take_ready(&input) {
            Some(held) => held,
            None => match next_message(&mut gate, &mut head, &task, &wakeups).await? {
                Received::Data(ch, m) => {
                    if stash.holds(&input, ch) {
                        stash.hold(ch, m);
                        continue;
                    }
                    (ch, m)
                }
                // The priority lane is never held back.
                Received::Priority(ch, c) => (ch, Message::Control(c)),
            },
        };
        match message {
            Message::Records(mut batch) => head.push(&mut batch).await?,
            Message::Control(c) => {
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
    Left(A),
    Right(B),
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
    let mut stash = Stash::new(n1 + n2);
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
        let (ch, message) = match stash.take_ready(&input) {
            Some(held) => held,
            None => {
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
                // Channels of the second input are numbered after the first's.
                let (ch, held, priority) = match msg {
                    Either::Left(Received::Data(ch, m)) => (ch, Either::Left(m), false),
                    Either::Left(Received::Priority(ch, c)) => (ch, Either::Left(Message::Control(c)), true),
                    Either::Right(Received::Data(ch, m)) => (n1 + ch, Either::Right(m), false),
                    Either::Right(Received::Priority(ch, c)) => (n1 + ch, Either::Right(Message::Control(c)), true),
                };
                if !priority && stash.holds(&input, ch) {
                    stash.hold(ch, held);
                    continue;
                }
                (ch, held)
            }
        };
        let control = match message {
            Either::Left(Message::Records(mut b)) => {
                head.push1(&mut b).await?;
                None
            }
            Either::Right(Message::Records(mut b)) => {
                head.push2(&mut b).await?;
                None
            }
            Either::Left(Message::Control(c)) | Either::Right(Message::Control(c)) => Some(c),
        };
        if let Some(c) = control {
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
    use crate::batch::Batch;
    use crate::runtime::channel::gate;
    use crate::runtime::push::PushFuture;
    use std::sync::Mutex;

    /// A chain head that logs what reaches it.
    struct Log(Arc<Mutex<Vec<String>>>);

    #[async_trait::async_trait]
    impl Push<u32> for Log {
        fn push<'a>(&'a mut self, batch: &'a mut Batch<u32>) -> PushFuture<'a> {
            let mut log = self.0.lock().unwrap();
            log.extend(batch.drain_values().map(|v| format!("r{v}")));
            PushFuture::ready(Ok(()))
        }
        async fn control(&mut self, control: Control) -> Result<(), Error> {
            if let Control::Barrier(b) = control {
                self.0.lock().unwrap().push(format!("B{}", b.id));
            }
            Ok(())
        }
        async fn flush(&mut self) -> Result<(), Error> {
            Ok(())
        }
    }

    fn records(v: &[u32]) -> Message<u32> {
        let mut b = Batch::new();
        v.iter().for_each(|v| b.push_with(*v, None));
        Message::Records(b)
    }

    /// Aligned barriers: what a channel sends after its barrier is not
    /// processed until every channel delivered the barrier; per channel,
    /// the order is kept.
    #[tokio::test]
    async fn records_after_a_barrier_wait_for_the_other_channels() {
        let (senders, g) = gate::<u32>(2, 16);
        let script: [(usize, Message<u32>); 9] = [
            (0, records(&[1])),
            (0, Message::Control(barrier(1))),
            (0, records(&[2])),
            (1, records(&[3])),
            (0, Message::Control(barrier(2))),
            (1, records(&[4])),
            (1, Message::Control(barrier(1))),
            (1, records(&[5])),
            (1, Message::Control(barrier(2))),
        ];
        for (ch, m) in script {
            senders[ch].send(m).await.unwrap();
        }
        for s in &senders {
            s.send(Message::Control(Control::EndOfInput)).await.unwrap();
        }
        let log = Arc::new(Mutex::new(Vec::new()));
        let wakeups = Wakeups::new(Arc::new(crate::time::ManualClock::new(0)));
        run_one_input(g, Box::new(Log(log.clone())), "t".into(), wakeups).await.unwrap();
        let log = log.lock().unwrap().clone();
        // Before barrier 1: r1 (channel 0) and r3, r4 (channel 1); r2 and
        // barrier 2's side of channel 0 wait; r5 comes after barrier 1, and
        // barrier 2 passes once channel 1 delivers it.
        let at = |x: &str| log.iter().position(|l| l == x).unwrap_or_else(|| panic!("{x} missing: {log:?}"));
        for before in ["r1", "r3", "r4"] {
            assert!(at(before) < at("B1"), "{log:?}");
        }
        for after in ["r2", "r5"] {
            assert!(at("B1") < at(after) && at(after) < at("B2"), "{log:?}");
        }
        assert_eq!(log.len(), 7, "{log:?}");
    }

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
