//! Task loops of tasks with inputs: a one-input task and a two-input task
//! (the source task is in `source_task`).
//!
//! A task owns a chain of operators (its head is a [`Push`]) and, unless it
//! is a source, an input gate per input. It takes one message at a time,
//! serving priority-lane control elements first, and turns per-channel
//! control elements into task-level ones with [`InputControl`] (watermark
//! minimum, idleness, barriers, end of input). Barriers are handled by
//! `runtime::alignment`: in aligned mode a channel's messages after its
//! barrier wait in a [`Stash`] until every live channel has delivered it;
//! in unaligned mode the records in flight are logged as channel state,
//! which a restored task replays before any new input. Before it
//! would wait for input a task flushes its output buffers, so a quiet input
//! never strands records downstream.

use crate::checkpoint::Acks;
use crate::checkpoint::barrier_alignment::{Barriers, Stash};
use crate::checkpoint::channel_state::{self, Replay};
use crate::element::{Control, Data};
use crate::error::Error;
use crate::operator::OperatorInfo;
use crate::runtime::exchange::channel::{InputGate, Message, Received};
use crate::runtime::push::{Push, TwoInputPush};
use crate::time::{Clock, InputWatermarks, Timestamp, Wakeup};
use std::sync::Arc;

/// Task-level view of the control elements arriving on a task's channels.
pub(crate) struct InputControl {
    watermarks: InputWatermarks,
    ended: Vec<bool>,
    live: usize,
    barriers: Barriers,
}

impl InputControl {
    pub(crate) fn new(channels: usize) -> Self {
        Self {
            watermarks: InputWatermarks::new(channels),
            ended: vec![false; channels],
            live: channels,
            barriers: Barriers::new(),
        }
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
                    self.barriers.on_ended(channel, out);
                    if self.live == 0 {
                        out.push(Control::EndOfInput);
                    }
                }
            }
            Control::Barrier(b) => self.barriers.on_barrier(channel, b, false, &self.ended, 0, out),
        }
    }

    /// Handles a control element from `channel`'s priority lane (a
    /// barrier overtaking the channel's queue) at processing time `now`.
    pub(crate) fn on_priority(&mut self, channel: usize, control: Control, now: Timestamp, out: &mut Vec<Control>) {
        if let Control::Barrier(b) = control {
            self.barriers.on_barrier(channel, b, true, &self.ended, now, out);
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
    pub(crate) async fn fire_due<T: Data, P: Push<T> + ?Sized>(&self, head: &mut P) -> Result<(), Error> {
        match self.due(head.next_wakeup()) {
            Some(now) => head.on_processing_time(now).await,
            None => Ok(()),
        }
    }

    /// A future for the chain's next wake-up (pending forever if none).
    pub(crate) fn next(&self, wakeup: Option<Timestamp>) -> Wakeup {
        match wakeup {
            Some(t) => self.clock.wait_until(t),
            None => Box::pin(std::future::pending()),
        }
    }
}

/// What a task loop needs besides its chain and its gates.
pub(crate) struct TaskCtx {
    pub(crate) name: Arc<str>,
    pub(crate) wakeups: Wakeups,
    /// With checkpointing: where the task acknowledges its channel state.
    pub(crate) checkpoint: Option<TaskCheckpoint>,
}

/// A task's part in checkpoints: its channel state.
pub(crate) struct TaskCheckpoint {
    pub(crate) acks: Acks,
    /// The chain head's info (names the channel-state file).
    pub(crate) info: Arc<OperatorInfo>,
    /// The channel state to replay, when the job resumes from a checkpoint.
    pub(crate) restore: Option<std::path::PathBuf>,
}

impl TaskCtx {
    fn disconnected(&self) -> Error {
        Error::Disconnected { task: self.name.to_string() }
    }

    fn now(&self) -> Timestamp {
        self.wakeups.clock.now_millis()
    }

    /// The next wake-up: the chain's, or the alignment deadline.
    fn wake(&self, chain: Option<Timestamp>, input: &InputControl) -> Wakeup {
        let deadline = input.barriers.deadline();
        self.wakeups.next(match (chain, deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    /// The restored channel state, if the task resumes from a checkpoint.
    fn replay(&self) -> Result<Option<Replay>, Error> {
        self.checkpoint.as_ref().and_then(|c| c.restore.as_deref()).map(Replay::open).transpose()
    }

    /// Acknowledges the channel state of a checkpoint that completed here.
    fn acknowledge(&self, input: &mut InputControl) {
        if let Some(done) = input.barriers.take_completed()
            && let Some(c) = &self.checkpoint
        {
            c.acks.acknowledge_channels(&c.info, done.barrier, done.channel_state, done.alignment);
        }
    }

    /// Logs `batch` from `channel` if it is in flight for a checkpoint.
    fn log<T: Data>(
        &self,
        input: &mut InputControl,
        channel: usize,
        batch: &crate::element::Batch<T>,
    ) -> Result<(), Error> {
        match input.barriers.log_for(channel) {
            Some(log) => channel_state::append(log, channel, batch, &self.name),
            None => Ok(()),
        }
    }

    /// Copies into the channel state the records queued ahead of the
    /// in-band barrier on each channel whose barrier overtook its queue
    /// (`copy` appends them to the log; `false`: the barrier was not there).
    fn copy_queued(
        &self,
        input: &mut InputControl,
        out: &mut Vec<Control>,
        mut copy: impl FnMut(&mut Vec<u8>, usize, u64) -> Result<bool, Error>,
    ) -> Result<(), Error> {
        let Some((id, channels)) = input.barriers.take_to_copy() else { return Ok(()) };
        for ch in channels {
            if let Some(log) = input.barriers.log_for(ch)
                && copy(log, ch, id)?
            {
                input.barriers.copied(ch, out);
            }
        }
        Ok(())
    }

    /// The alignment deadline passed: go on unaligned.
    fn on_time(&self, input: &mut InputControl, out: &mut Vec<Control>) {
        if input.barriers.deadline().is_some() {
            input.barriers.on_time(self.now(), out);
        }
    }
}

/// Appends the copied `batches` of `channel` to `log`; `false` if there
/// were none to copy (the barrier was not queued).
fn copy_batches<T: Data>(
    batches: Option<Vec<crate::element::Batch<T>>>,
    log: &mut Vec<u8>,
    channel: usize,
    task: &str,
) -> Result<bool, Error> {
    let Some(batches) = batches else { return Ok(false) };
    batches.iter().try_for_each(|b| channel_state::append(log, channel, b, task))?;
    Ok(true)
}

/// The next message, or `None` when a wake-up (the alignment deadline) is due.
async fn next_message<T: Data>(
    gate: &mut InputGate<T>,
    head: &mut Box<dyn Push<T>>,
    ctx: &TaskCtx,
    input: &InputControl,
) -> Result<Option<Received<T>>, Error> {
    ctx.wakeups.fire_due(head.as_mut()).await?;
    if let Some(m) = gate.try_recv().map_err(|_| ctx.disconnected())? {
        return Ok(Some(m));
    }
    head.flush().await?;
    loop {
        let mut wake = ctx.wake(head.next_wakeup(), input);
        tokio::select! {
            r = gate.recv() => return r.map(Some).map_err(|_| ctx.disconnected()),
            r = head.drive_pending(), if head.has_pending() => {
                r?;
                head.flush().await?;
            }
            _ = &mut wake => {
                ctx.wakeups.fire_due(head.as_mut()).await?;
                head.flush().await?;
                if input.barriers.deadline().is_some() {
                    return Ok(None);
                }
            }
        }
    }
}

/// Runs a task whose chain head has one input.
pub(crate) async fn run_one_input<T: Data>(
    mut gate: InputGate<T>,
    mut head: Box<dyn Push<T>>,
    ctx: TaskCtx,
) -> Result<(), Error> {
    let mut input = InputControl::new(gate.channels());
    let mut stash = Stash::new(gate.channels());
    let mut controls = Vec::new();
    // The restored channel state goes first.
    if let Some(mut replay) = ctx.replay()? {
        while replay.next_channel()?.is_some() {
            head.push(&mut replay.batch::<T>()?).await?;
        }
    }
    while !input.finished() {
        // Past the alignment deadline the snapshot is taken before anything
        // else, and in-flight records are copied before any is processed.
        ctx.on_time(&mut input, &mut controls);
        ctx.copy_queued(&mut input, &mut controls, |log, ch, id| {
            copy_batches(gate.queued_before(ch, id), log, ch, &ctx.name)
        })?;
        for c in controls.drain(..) {
            head.control(c).await?;
        }
        ctx.acknowledge(&mut input);
        let next = match stash.take_ready(&input.barriers) {
            Some(held) => Some(held),
            None => match next_message(&mut gate, &mut head, &ctx, &input).await? {
                Some(Received::Data(ch, m)) => {
                    if stash.holds(&input.barriers, ch) {
                        stash.hold(ch, m);
                        continue;
                    }
                    Some((ch, m))
                }
                // The priority lane is never held back.
                Some(Received::Priority(ch, c)) => {
                    input.on_priority(ch, c, ctx.now(), &mut controls);
                    None
                }
                None => None,
            },
        };
        match next {
            Some((ch, Message::Records(mut batch))) => {
                ctx.log(&mut input, ch, &batch)?;
                head.push(&mut batch).await?;
            }
            Some((ch, Message::Control(c))) => input.on_control(ch, c, &mut controls),
            None => {}
        }
        for c in controls.drain(..) {
            head.control(c).await?;
        }
        ctx.acknowledge(&mut input);
        tokio::task::consume_budget().await;
    }
    Ok(())
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
    ctx: TaskCtx,
) -> Result<(), Error> {
    let (n1, n2) = (gate1.channels(), gate2.channels());
    let mut input = InputControl::new(n1 + n2);
    let mut stash = Stash::new(n1 + n2);
    let mut controls = Vec::new();
    if let Some(mut replay) = ctx.replay()? {
        while let Some(ch) = replay.next_channel()? {
            match ch < n1 {
                true => head.push1(&mut replay.batch::<A>()?).await?,
                false => head.push2(&mut replay.batch::<B>()?).await?,
            }
        }
    }
    let mut prefer_first = true;
    while !input.finished() {
        let (open1, open2) = (!input.range_finished(0..n1), !input.range_finished(n1..n1 + n2));
        // Alternate which input is tried first so neither starves.
        prefer_first = !prefer_first;
        if let Some(now) = ctx.wakeups.due(head.next_wakeup()) {
            head.on_processing_time(now).await?;
        }
        // As in `run_one_input`.
        ctx.on_time(&mut input, &mut controls);
        ctx.copy_queued(&mut input, &mut controls, |log, ch, id| {
            let name = &ctx.name;
            match ch < n1 {
                true => copy_batches(gate1.queued_before(ch, id), log, ch, name),
                false => copy_batches(gate2.queued_before(ch - n1, id), log, ch, name),
            }
        })?;
        for c in controls.drain(..) {
            head.control(c).await?;
        }
        ctx.acknowledge(&mut input);
        let next = match stash.take_ready(&input.barriers) {
            Some(held) => Some(held),
            None => {
                let mut ready = None;
                for first in [prefer_first, !prefer_first] {
                    ready = match first {
                        true if open1 => gate1.try_recv().map_err(|_| ctx.disconnected())?.map(Either::Left),
                        false if open2 => gate2.try_recv().map_err(|_| ctx.disconnected())?.map(Either::Right),
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
                        let mut wake = ctx.wake(head.next_wakeup(), &input);
                        tokio::select! {
                            _ = &mut wake => continue,
                            r = gate1.recv(), if open1 => Either::Left(r.map_err(|_| ctx.disconnected())?),
                            r = gate2.recv(), if open2 => Either::Right(r.map_err(|_| ctx.disconnected())?),
                            r = head.drive_pending(), if head.has_pending() => {
                                r?;
                                continue;
                            }
                        }
                    }
                };
                // Channels of the second input are numbered after the first's.
                let (ch, m) = match msg {
                    Either::Left(Received::Data(ch, m)) => (ch, Either::Left(m)),
                    Either::Right(Received::Data(ch, m)) => (n1 + ch, Either::Right(m)),
                    // The priority lane is never held back.
                    Either::Left(Received::Priority(ch, c)) | Either::Right(Received::Priority(ch, c)) => {
                        let ch = if matches!(msg, Either::Left(_)) { ch } else { n1 + ch };
                        input.on_priority(ch, c, ctx.now(), &mut controls);
                        for c in controls.drain(..) {
                            head.control(c).await?;
                        }
                        ctx.acknowledge(&mut input);
                        continue;
                    }
                };
                if stash.holds(&input.barriers, ch) {
                    stash.hold(ch, m);
                    continue;
                }
                Some((ch, m))
            }
        };
        match next {
            Some((ch, Either::Left(Message::Records(mut b)))) => {
                ctx.log(&mut input, ch, &b)?;
                head.push1(&mut b).await?;
            }
            Some((ch, Either::Right(Message::Records(mut b)))) => {
                ctx.log(&mut input, ch, &b)?;
                head.push2(&mut b).await?;
            }
            Some((ch, Either::Left(Message::Control(c)) | Either::Right(Message::Control(c)))) => {
                input.on_control(ch, c, &mut controls);
            }
            None => {}
        }
        for c in controls.drain(..) {
            head.control(c).await?;
        }
        ctx.acknowledge(&mut input);
        tokio::task::consume_budget().await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::CheckpointBarrier;
    use crate::element::Batch;
    use crate::runtime::exchange::channel::gate;
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
        let ctx = TaskCtx {
            name: "t".into(),
            wakeups: Wakeups::new(Arc::new(crate::time::ManualClock::new(0))),
            checkpoint: None,
        };
        run_one_input(g, Box::new(Log(log.clone())), ctx).await.unwrap();
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
        Control::Barrier(CheckpointBarrier {
            id,
            timestamp: 0,
            mode: crate::checkpoint::CheckpointingMode::Aligned,
            kind: Default::default(),
            incremental: false,
        })
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
