//! Handing batches from one operator to the next.
//!
//! Inside a task, every operator instance is a [`Push`] for its input type:
//! the task pushes a batch into the chain head, which processes it and
//! pushes its output into the next operator (a direct call) or into a
//! [`ChannelWriter`](crate::runtime::exchange::writer::ChannelWriter) that fills the channels to
//! the next task. Control elements take the same path, so each operator sees
//! a watermark or the end of input after the records that came before it.

use crate::checkpoint::{Acks, CheckpointBarrier, Part};
use crate::element::Batch;
use crate::element::{Control, Data};
use crate::error::Error;
use crate::operator::{BoxError, Collector, ErasedBatch, Operator, OperatorInfo, TagKey, TwoInputOperator};
use crate::runtime::metrics::OperatorCounters;
use crate::runtime::push::{Push, PushFuture, SideTarget, earliest};
pub(crate) use crate::runtime::task::guard::{guard, guard_async, panic_message, panicked};
use crate::time::{Timestamp, Wakeup, Watermark};
use async_trait::async_trait;
use dataflow_state::operator_state::{OperatorSnapshot, OperatorStateStore};
use dataflow_state::table::StateSnapshot;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The downstream targets of one operator instance; a batch goes to every
/// target (cloned for all but the last).
pub(crate) struct Outputs<T> {
    targets: Vec<Box<dyn Push<T>>>,
}

impl<T: Data> Outputs<T> {
    pub(crate) fn new(targets: Vec<Box<dyn Push<T>>>) -> Self {
        Self { targets }
    }

    // Inherent methods, called directly by the operator that owns these
    // outputs: no boxed future per batch on the way.
    pub(crate) fn push<'a>(&'a mut self, batch: &'a mut Batch<T>) -> PushFuture<'a> {
        match self.targets.len() {
            0 => {
                batch.clear();
                PushFuture::ready(Ok(()))
            }
            1 => self.targets[0].push(batch),
            _ => PushFuture::boxed(async move {
                if let Some((last, rest)) = self.targets.split_last_mut() {
                    for t in rest {
                        t.push(&mut batch.clone()).await?;
                    }
                    last.push(batch).await?;
                }
                Ok(())
            }),
        }
    }

    pub(crate) async fn control(&mut self, control: Control) -> Result<(), Error> {
        for t in &mut self.targets {
            t.control(control).await?;
        }
        Ok(())
    }

    pub(crate) async fn flush(&mut self) -> Result<(), Error> {
        for t in &mut self.targets {
            t.flush().await?;
        }
        Ok(())
    }

    pub(crate) fn has_pending(&self) -> bool {
        self.targets.iter().any(|t| t.has_pending())
    }

    pub(crate) async fn drive_pending(&mut self) -> Result<(), Error> {
        match self.targets.iter_mut().find(|t| t.has_pending()) {
            Some(t) => t.drive_pending().await,
            None => Ok(()),
        }
    }

    pub(crate) fn next_wakeup(&self) -> Option<Timestamp> {
        self.targets.iter().fold(None, |acc, t| earliest(acc, t.next_wakeup()))
    }

    pub(crate) fn paused(&self) -> Option<Wakeup> {
        self.targets.iter().find_map(|t| t.paused())
    }

    pub(crate) async fn writable(&mut self) -> Result<(), Error> {
        for t in &mut self.targets {
            t.writable().await?;
        }
        Ok(())
    }

    pub(crate) async fn on_processing_time(&mut self, now: Timestamp) -> Result<(), Error> {
        for t in &mut self.targets {
            if t.next_wakeup().is_some_and(|w| w <= now) {
                t.on_processing_time(now).await?;
            }
        }
        Ok(())
    }
}

/// The fan-out seen as one target (task loops treat a source's outputs
/// like any chain head).
#[async_trait]
impl<T: Data> Push<T> for Outputs<T> {
    fn push<'a>(&'a mut self, batch: &'a mut Batch<T>) -> PushFuture<'a> {
        Outputs::push(self, batch)
    }

    async fn control(&mut self, control: Control) -> Result<(), Error> {
        Outputs::control(self, control).await
    }

    async fn flush(&mut self) -> Result<(), Error> {
        Outputs::flush(self).await
    }

    fn has_pending(&self) -> bool {
        Outputs::has_pending(self)
    }

    async fn drive_pending(&mut self) -> Result<(), Error> {
        Outputs::drive_pending(self).await
    }

    fn next_wakeup(&self) -> Option<Timestamp> {
        Outputs::next_wakeup(self)
    }

    async fn on_processing_time(&mut self, now: Timestamp) -> Result<(), Error> {
        Outputs::on_processing_time(self, now).await
    }

    fn paused(&self) -> Option<Wakeup> {
        Outputs::paused(self)
    }

    async fn writable(&mut self) -> Result<(), Error> {
        Outputs::writable(self).await
    }
}

/// The [`SideTarget`] of a tag of type `U`.
pub(crate) struct SideOutputs<U> {
    pub(crate) key: TagKey,
    pub(crate) outputs: Outputs<U>,
}

#[async_trait]
impl<U: Data> SideTarget for SideOutputs<U> {
    fn key(&self) -> &TagKey {
        &self.key
    }

    async fn push(&mut self, batch: &mut dyn ErasedBatch) -> Result<(), Error> {
        match batch.as_any_mut().downcast_mut::<Batch<U>>() {
            Some(b) => self.outputs.push(b).await,
            None => Err(Error::Internal(format!("side output '{}' of the wrong type", self.key.name))),
        }
    }

    async fn control(&mut self, control: Control) -> Result<(), Error> {
        self.outputs.control(control).await
    }

    async fn flush(&mut self) -> Result<(), Error> {
        self.outputs.flush().await
    }
}

/// A snapshot taken on a barrier, not yet acknowledged.
#[must_use]
pub(crate) struct Taken(Option<(CheckpointBarrier, Part, Option<OperatorSnapshot>, std::time::Duration)>);

impl Taken {
    /// Acknowledges the snapshot through `emitter`.
    pub(crate) fn acknowledge<T: Data>(self, emitter: &Emitter<T>) {
        if let (Some((b, part, operator_state, synchronous)), Some(acks)) = (self.0, &emitter.acks) {
            acks.acknowledge(&emitter.info, b, part, operator_state, synchronous);
        }
    }
}

/// The hooks of an operator, one- or two-input, that open it and take
/// part in checkpoints.
pub(crate) struct Hooks<O> {
    open: fn(&mut O, &OperatorInfo) -> Result<(), BoxError>,
    snapshot: fn(&mut O, &CheckpointBarrier) -> Result<Option<StateSnapshot>, BoxError>,
    restore: fn(&mut O, &[&Path]) -> Result<(), BoxError>,
    operator_state: fn(&mut O) -> Option<&mut OperatorStateStore>,
}

impl<O: Operator> Hooks<O> {
    fn one_input() -> Self {
        Self { open: O::open, snapshot: O::snapshot, restore: O::restore, operator_state: O::operator_state }
    }
}

impl Hooks<()> {
    /// The hooks of an operator without state (an async function).
    pub(crate) fn stateless() -> Self {
        Self { open: |_, _| Ok(()), snapshot: |_, _| Ok(None), restore: |_, _| Ok(()), operator_state: |_| None }
    }
}

impl<O: TwoInputOperator> Hooks<O> {
    fn two_input() -> Self {
        Self { open: O::open, snapshot: O::snapshot, restore: O::restore, operator_state: O::operator_state }
    }
}

/// The output side shared by every operator driver: the collector the
/// operator fills, where it goes, and who to blame for a failure.
pub(crate) struct Emitter<T: Data> {
    pub(crate) out: Collector<T>,
    pub(crate) next: Outputs<T>,
    pub(crate) info: Arc<OperatorInfo>,
    pub(crate) counters: Arc<OperatorCounters>,
    sides: Vec<Box<dyn SideTarget>>,
    acks: Option<Acks>,
    restore: Vec<PathBuf>,
    operator_state: Vec<PathBuf>,
}

impl<T: Data> Emitter<T> {
    pub(crate) fn new(next: Outputs<T>, ctx: crate::runtime::task::build_ctx::BuildCtx) -> Self {
        let (info, counters, sides, acks, restore) = (ctx.info, ctx.counters, ctx.sides, ctx.acks, ctx.restore);
        let operator_state = ctx.operator_state;
        Self { out: Collector::new(), next, info, counters, sides, acks, restore, operator_state }
    }

    /// Opens `op`, restoring its operator state (its share of the files
    /// it was built with) before `open` and its keyed state after.
    fn open<O>(&self, op: &mut O, hooks: &Hooks<O>) -> Result<(), Error> {
        fn as_paths(files: &[PathBuf]) -> Vec<&Path> {
            files.iter().map(|p| p.as_path()).collect()
        }
        let (info, p, i) = (&self.info, self.info.parallelism as u32, self.info.subtask as u32);
        if !self.operator_state.is_empty() {
            let files = as_paths(&self.operator_state);
            guard(info, || {
                if let Some(store) = (hooks.operator_state)(op) {
                    *store = OperatorStateStore::restore(&files, p, i)?;
                }
                Ok(())
            })?;
        }
        guard(info, || (hooks.open)(op, info))?;
        match self.restore.is_empty() {
            true => Ok(()),
            false => guard(info, || (hooks.restore)(op, &as_paths(&self.restore))),
        }
    }

    /// On a barrier: takes the synchronous part of the operator's snapshot
    /// (its [`Operator::snapshot`], then its operator state), to acknowledge
    /// with [`Taken::acknowledge`] once the barrier was passed on (the
    /// barrier travels first; the write goes on off the task).
    fn checkpoint<O>(&self, control: Control, op: &mut O, hooks: &Hooks<O>) -> Result<Taken, Error> {
        let Control::Barrier(b) = control else { return Ok(Taken(None)) };
        let started = std::time::Instant::now();
        let part = guard(&self.info, || (hooks.snapshot)(op, &b))?.map_or(Part::Nothing, Part::State);
        let operator_state = guard(&self.info, || Ok((hooks.operator_state)(op).map(|s| s.snapshot()).transpose()?))?;
        Ok(Taken(Some((b, part, operator_state, started.elapsed()))))
    }

    /// A control element for operator `op`: on a barrier its snapshot
    /// first, then `hook` (its reaction to the element), then the element
    /// goes on; the snapshot is acknowledged once it has.
    pub(crate) async fn control_with<O: Send>(
        &mut self,
        control: Control,
        op: &mut O,
        hooks: &Hooks<O>,
        hook: impl FnOnce(&mut O, &mut Collector<T>) -> Result<(), BoxError> + Send,
    ) -> Result<(), Error> {
        let taken = self.checkpoint(control, op, hooks)?;
        self.control(control, |out| hook(op, out)).await?;
        taken.acknowledge(self);
        Ok(())
    }

    /// Runs user code on `records` input records and hands on what it emitted.
    async fn process(
        &mut self,
        records: usize,
        f: impl FnOnce(&mut Collector<T>) -> Result<(), BoxError>,
    ) -> Result<(), Error> {
        self.counters.add_in(records);
        let out = &mut self.out;
        guard(&self.info, || f(out))?;
        self.emit().await
    }

    /// Runs the operator's hook for `control`, hands on what it emitted,
    /// then passes `control` on.
    pub(crate) async fn control(
        &mut self,
        control: Control,
        hook: impl FnOnce(&mut Collector<T>) -> Result<(), BoxError>,
    ) -> Result<(), Error> {
        let out = &mut self.out;
        guard(&self.info, || hook(out))?;
        self.emit().await?;
        self.next.control(control).await?;
        for side in &mut self.sides {
            side.control(control).await?;
        }
        Ok(())
    }

    /// Sends buffered output of every downstream (main and side) now.
    pub(crate) async fn flush(&mut self) -> Result<(), Error> {
        self.next.flush().await?;
        for side in &mut self.sides {
            side.flush().await?;
        }
        Ok(())
    }

    /// [`Self::emit`] without a boxed future when there are no side outputs
    /// to hand on.
    fn emit_now(&mut self) -> PushFuture<'_> {
        if self.out.watermark.is_some()
            || self.out.status.is_some()
            || self.out.side.buffers.iter().any(|(_, b)| !b.is_empty())
        {
            return PushFuture::boxed(self.emit());
        }
        if self.out.skipped > 0 {
            self.counters.add_skipped(std::mem::take(&mut self.out.skipped));
        }
        if self.out.batch.is_empty() {
            return PushFuture::ready(Ok(()));
        }
        self.counters.add_out(self.out.batch.len());
        self.next.push(&mut self.out.batch)
    }

    /// Runs synchronous user code on `records` input records, then hands
    /// on what it emitted.
    fn process_now(
        &mut self,
        records: usize,
        f: impl FnOnce(&mut Collector<T>) -> Result<(), BoxError>,
    ) -> PushFuture<'_> {
        self.counters.add_in(records);
        let out = &mut self.out;
        if let Err(e) = guard(&self.info, || f(out)) {
            return PushFuture::ready(Err(e));
        }
        self.emit_now()
    }

    pub(crate) async fn emit(&mut self) -> Result<(), Error> {
        if self.out.skipped > 0 {
            self.counters.add_skipped(std::mem::take(&mut self.out.skipped));
        }
        if !self.out.batch.is_empty() {
            self.counters.add_out(self.out.batch.len());
            self.next.push(&mut self.out.batch).await?;
        }
        for (key, buf) in self.out.side.buffers.iter_mut().filter(|(_, b)| !b.is_empty()) {
            match self.sides.iter_mut().find(|s| s.key() == key) {
                Some(side) => side.push(buf.as_mut()).await?,
                // Nobody reads this side output.
                None => buf.clear(),
            }
        }
        let status = self.out.status.take().map(Control::Status);
        for control in self.out.watermark.take().map(Control::Watermark).into_iter().chain(status) {
            self.next.control(control).await?;
            for side in &mut self.sides {
                side.control(control).await?;
            }
        }
        Ok(())
    }
}

/// Calls the hook of an operator (one- or two-input) that a control
/// element asks for.
macro_rules! operator_hook {
    ($op:expr, $control:expr, $out:expr) => {
        match $control {
            Control::Watermark(w) => $op.on_watermark(w, $out),
            // Snapshots are taken before, by `Emitter::checkpoint`.
            Control::Barrier(_) => Ok(()),
            Control::EndOfInput => $op.finish($out),
            Control::Status(_) => Ok(()),
        }
    };
}

/// An [`Operator`] instance in a chain.
pub(crate) struct OperatorDriver<O: Operator> {
    op: O,
    emitter: Emitter<O::Out>,
}

impl<O: Operator> OperatorDriver<O> {
    pub(crate) fn open(mut op: O, emitter: Emitter<O::Out>) -> Result<Self, Error> {
        emitter.open(&mut op, &Hooks::one_input())?;
        Ok(Self { op, emitter })
    }
}

#[async_trait]
impl<O: Operator> Push<O::In> for OperatorDriver<O> {
    fn push<'a>(&'a mut self, batch: &'a mut Batch<O::In>) -> PushFuture<'a> {
        let op = &mut self.op;
        self.emitter.process_now(batch.len(), |out| op.process_batch(batch, out))
    }

    async fn control(&mut self, control: Control) -> Result<(), Error> {
        let op = &mut self.op;
        if let Control::Watermark(w) = control
            && w != Watermark::MAX
            && !op.forwards_watermarks()
        {
            // The operator makes its own watermarks: this one stops here.
            return self.emitter.process(0, |out| op.on_watermark(w, out)).await;
        }
        self.emitter.control_with(control, op, &Hooks::one_input(), |op, out| operator_hook!(op, control, out)).await
    }

    async fn flush(&mut self) -> Result<(), Error> {
        self.emitter.flush().await
    }

    fn has_pending(&self) -> bool {
        self.emitter.next.has_pending()
    }

    async fn drive_pending(&mut self) -> Result<(), Error> {
        self.emitter.next.drive_pending().await
    }

    fn next_wakeup(&self) -> Option<Timestamp> {
        earliest(self.op.next_processing_time(), self.emitter.next.next_wakeup())
    }

    fn paused(&self) -> Option<Wakeup> {
        self.op.source_paused().or_else(|| self.emitter.next.paused())
    }

    async fn writable(&mut self) -> Result<(), Error> {
        self.emitter.next.writable().await
    }

    async fn on_processing_time(&mut self, now: Timestamp) -> Result<(), Error> {
        let op = &mut self.op;
        if op.next_processing_time().is_some_and(|t| t <= now) {
            self.emitter.process(0, |out| op.on_processing_time(now, out)).await?;
        }
        self.emitter.next.on_processing_time(now).await
    }
}

/// A [`TwoInputOperator`](TwoInputOperator) instance at the head of
/// a two-input task.
pub(crate) struct TwoInputDriver<O: TwoInputOperator> {
    op: O,
    emitter: Emitter<O::Out>,
}

impl<O: TwoInputOperator> TwoInputDriver<O> {
    pub(crate) fn open(mut op: O, emitter: Emitter<O::Out>) -> Result<Self, Error> {
        emitter.open(&mut op, &Hooks::two_input())?;
        Ok(Self { op, emitter })
    }
}

#[async_trait]
impl<O: TwoInputOperator> crate::runtime::push::TwoInputPush<O::In1, O::In2> for TwoInputDriver<O> {
    async fn push1(&mut self, batch: &mut Batch<O::In1>) -> Result<(), Error> {
        let op = &mut self.op;
        self.emitter.process(batch.len(), |out| batch.drain().try_for_each(|r| op.process1(r, out))).await
    }

    async fn push2(&mut self, batch: &mut Batch<O::In2>) -> Result<(), Error> {
        let op = &mut self.op;
        self.emitter.process(batch.len(), |out| batch.drain().try_for_each(|r| op.process2(r, out))).await
    }

    async fn control(&mut self, control: Control) -> Result<(), Error> {
        let op = &mut self.op;
        self.emitter.control_with(control, op, &Hooks::two_input(), |op, out| operator_hook!(op, control, out)).await
    }

    async fn flush(&mut self) -> Result<(), Error> {
        self.emitter.flush().await
    }

    fn has_pending(&self) -> bool {
        self.emitter.next.has_pending()
    }

    async fn drive_pending(&mut self) -> Result<(), Error> {
        self.emitter.next.drive_pending().await
    }

    fn next_wakeup(&self) -> Option<Timestamp> {
        self.emitter.next.next_wakeup()
    }

    async fn on_processing_time(&mut self, now: Timestamp) -> Result<(), Error> {
        self.emitter.next.on_processing_time(now).await
    }
}
