//! The driver of a [`Sink`] at the end of a chain: writes batches, and
//! with checkpointing seals the sink's output at each barrier, commits it
//! once the checkpoint completed, and recovers it when the job resumes.

use crate::checkpoint::{Acks, Part};
use crate::connectors::Sink;
use crate::element::Batch;
use crate::element::{Control, Data};
use crate::error::Error;
use crate::operator::OperatorInfo;
use crate::runtime::metrics::OperatorCounters;
use crate::runtime::push::{Push, PushFuture};
use crate::runtime::task::driver::guard_async;
use async_trait::async_trait;
use std::sync::Arc;

/// A [`Sink`] instance at the end of a chain. With checkpointing it seals
/// what the sink wrote at each barrier (its part of the checkpoint),
/// commits once the checkpoint completed, and first recovers from the
/// checkpoint the job resumed from.
pub(crate) struct SinkDriver<T, S> {
    /// `None` once handed to the job's end (see `Acks::commit_at_end`).
    sink: Option<S>,
    info: Arc<OperatorInfo>,
    counters: Arc<OperatorCounters>,
    acks: Option<Acks>,
    /// The latest completed checkpoint, and the latest committed here.
    completed: Option<tokio::sync::watch::Receiver<u64>>,
    committed: u64,
    /// This sink's parts of the restored checkpoint (several after a
    /// rescale), until recovered.
    recover: Option<Vec<Vec<u8>>>,
    /// The restored checkpoint is older than damaged complete ones.
    past_damaged: bool,
    _t: std::marker::PhantomData<fn(T)>,
}

impl<T, S> SinkDriver<T, S> {
    pub(crate) fn new(sink: S, ctx: crate::runtime::task::build_ctx::BuildCtx) -> Result<Self, Error> {
        let recover = if ctx.acks.is_some() { Some(ctx.own_parts()?) } else { None };
        let completed = ctx.acks.as_ref().map(Acks::completed);
        Ok(Self {
            sink: Some(sink),
            info: ctx.info,
            counters: ctx.counters,
            acks: ctx.acks,
            completed,
            committed: 0,
            recover,
            past_damaged: ctx.past_damaged,
            _t: std::marker::PhantomData,
        })
    }
}

/// The sink, unless it was handed to the job's end already.
fn live<'a, S>(sink: &'a mut Option<S>, info: &OperatorInfo) -> Result<&'a mut S, Error> {
    sink.as_mut().ok_or_else(|| Error::Internal(format!("sink {info} used after its end of input")))
}

impl<T: Data, S: Sink<T>> SinkDriver<T, S> {
    /// Recovers (once), then commits what completed checkpoints sealed.
    async fn catch_up(&mut self) -> Result<(), Error> {
        if let Some(parts) = self.recover.take() {
            let sink = live(&mut self.sink, &self.info)?;
            let parts: Vec<Option<Vec<u8>>> = match parts.is_empty() {
                true => vec![None],
                false => parts.into_iter().map(Some).collect(),
            };
            for part in parts {
                match self.past_damaged {
                    true => guard_async(&self.info, sink.recover_past_damaged(part)).await?,
                    false => guard_async(&self.info, sink.recover(part)).await?,
                }
            }
        }
        let completed = self.completed.as_ref().map_or(0, |c| *c.borrow());
        if let Some(sink) = self.sink.as_mut().filter(|_| completed > self.committed) {
            guard_async(&self.info, sink.commit(completed)).await?;
            self.committed = completed;
        }
        Ok(())
    }
}

#[async_trait]
impl<T: Data, S: Sink<T>> Push<T> for SinkDriver<T, S> {
    fn push<'a>(&'a mut self, batch: &'a mut Batch<T>) -> PushFuture<'a> {
        self.counters.add_in(batch.len());
        PushFuture::boxed(async move {
            self.catch_up().await?;
            guard_async(&self.info, live(&mut self.sink, &self.info)?.write_batch(batch)).await?;
            batch.clear();
            Ok(())
        })
    }

    async fn control(&mut self, control: Control) -> Result<(), Error> {
        self.catch_up().await?;
        let info = &self.info;
        if control == Control::EndOfInput {
            let acks = self.acks.as_ref();
            let sealed = match acks {
                Some(_) => guard_async(info, live(&mut self.sink, info)?.pre_commit(u64::MAX)).await?.is_some(),
                None => false,
            };
            if let Some(mut sink) = self.sink.take() {
                match acks.filter(|_| sealed) {
                    // With checkpointing, a transactional sink seals its
                    // last part now and commits it only once the whole job
                    // ended well: a failure elsewhere restarts from a
                    // checkpoint, and what followed it must not be visible.
                    Some(acks) => {
                        let info = info.clone();
                        acks.commit_at_end(Box::pin(async move { guard_async(&info, sink.commit(u64::MAX)).await }));
                    }
                    None => guard_async(info, sink.finish()).await?,
                }
            }
        }
        if let (Control::Barrier(b), Some(acks)) = (control, &self.acks) {
            let started = std::time::Instant::now();
            let part = guard_async(info, live(&mut self.sink, info)?.pre_commit(b.id)).await?;
            acks.acknowledge(info, b, part.map_or(Part::Nothing, Part::Bytes), None, started.elapsed());
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), Error> {
        self.catch_up().await
    }
}
