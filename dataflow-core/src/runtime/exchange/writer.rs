//! The output of a task towards the next one: partition records over the
//! downstream channels, buffer them into batches, and send a batch when it
//! is full, when a control element follows, when the task would otherwise
//! wait for input, or when the oldest buffered record is older than the
//! buffer timeout.

use crate::element::Batch;
use crate::element::{Control, Data};
use crate::error::Error;
use crate::graph::KeyRoute;
use crate::runtime::exchange::channel::{ChannelSender, Message};
use crate::runtime::push::{Push, PushFuture};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How records are spread over the channels of one edge.
pub(crate) enum Route<T> {
    /// Everything to the one channel.
    Forward,
    /// Record by record, round robin.
    Rebalance,
    /// Every record to every channel.
    Broadcast,
    /// By key group.
    Hash { key: Arc<dyn KeyRoute<T>>, max_parallelism: u32 },
}

/// Writes one edge's records into its channels.
pub(crate) struct ChannelWriter<T> {
    senders: Vec<ChannelSender<T>>,
    buffers: Vec<Batch<T>>,
    route: Route<T>,
    targets: Vec<u32>,
    next: usize,
    batch_size: usize,
    timeout: Duration,
    pending_since: Option<Instant>,
    task: Arc<str>,
}

impl<T: Data> ChannelWriter<T> {
    pub(crate) fn new(
        senders: Vec<ChannelSender<T>>,
        route: Route<T>,
        batch_size: usize,
        timeout: Duration,
        task: Arc<str>,
    ) -> Self {
        let buffers = senders.iter().map(|_| Batch::new()).collect();
        Self { senders, buffers, route, targets: Vec::new(), next: 0, batch_size, timeout, pending_since: None, task }
    }

    async fn send(&mut self, channel: usize) -> Result<(), Error> {
        let batch = std::mem::replace(&mut self.buffers[channel], Batch::with_capacity(self.batch_size));
        self.senders[channel]
            .send(Message::Records(batch))
            .await
            .map_err(|_| Error::Disconnected { task: self.task.to_string() })
    }

    async fn send_full(&mut self) -> Result<(), Error> {
        for ch in 0..self.buffers.len() {
            if self.buffers[ch].len() >= self.batch_size {
                self.send(ch).await?;
            }
        }
        if self.buffers.iter().all(Batch::is_empty) {
            self.pending_since = None;
        }
        Ok(())
    }

    fn distribute(&mut self, batch: &mut Batch<T>) {
        let n = self.buffers.len();
        match &self.route {
            Route::Forward => self.buffers[0].append(batch),
            Route::Rebalance => {
                let mut next = self.next;
                for r in batch.drain() {
                    self.buffers[next].push(r);
                    next = if next + 1 == n { 0 } else { next + 1 };
                }
                self.next = next;
            }
            Route::Broadcast => {
                for buf in &mut self.buffers[1..] {
                    buf.extend_from_batch(batch);
                }
                self.buffers[0].append(batch);
            }
            Route::Hash { key, max_parallelism } => {
                key.route(batch.values(), *max_parallelism, n as u32, &mut self.targets);
                for (r, &t) in batch.drain().zip(&self.targets) {
                    self.buffers[t as usize].push(r);
                }
            }
        }
    }
}

#[async_trait]
impl<T: Data> Push<T> for ChannelWriter<T> {
    fn push<'a>(&'a mut self, batch: &'a mut Batch<T>) -> PushFuture<'a> {
        if batch.is_empty() {
            return PushFuture::ready(Ok(()));
        }
        self.distribute(batch);
        let now = Instant::now();
        let expired = now.duration_since(*self.pending_since.get_or_insert(now)) >= self.timeout;
        if expired {
            return PushFuture::boxed(self.flush());
        }
        if self.buffers.iter().all(|b| b.len() < self.batch_size) {
            // Nothing to send yet: no future to allocate.
            return PushFuture::ready(Ok(()));
        }
        PushFuture::boxed(self.send_full())
    }

    async fn control(&mut self, control: Control) -> Result<(), Error> {
        if let Control::Barrier(b) = control
            && b.overtakes()
        {
            // Unaligned: the barrier does not wait for the queued output;
            // what is buffered goes just ahead of its in-band copy.
            for (ch, s) in self.senders.iter().enumerate() {
                let records = std::mem::take(&mut self.buffers[ch]);
                s.send_overtaking(records, control).map_err(|_| Error::Disconnected { task: self.task.to_string() })?;
            }
            self.pending_since = None;
            return Ok(());
        }
        self.flush().await?;
        for s in &self.senders {
            s.send(Message::Control(control)).await.map_err(|_| Error::Disconnected { task: self.task.to_string() })?;
        }
        Ok(())
    }

    async fn writable(&mut self) -> Result<(), Error> {
        for s in &self.senders {
            s.writable().await.map_err(|_| Error::Disconnected { task: self.task.to_string() })?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), Error> {
        for ch in 0..self.buffers.len() {
            if !self.buffers[ch].is_empty() {
                self.send(ch).await?;
            }
        }
        self.pending_since = None;
        Ok(())
    }
}
