//! Bounded channels between tasks, gathered per receiving task into an
//! input gate.
//!
//! Each (upstream subtask → downstream subtask) pair has its own channel
//! with a capacity counted in messages (a message is a batch of records or
//! one control element). A full channel blocks only its own sender: that is
//! backpressure, and it reaches the sources because every task awaits its
//! sends. All channels of a receiving task share one lock and one wake-up,
//! so the task waits on one thing however many inputs it has.
//!
//! Besides the data queue, every channel has a priority lane that ignores
//! the capacity: a checkpoint barrier sent there overtakes the records
//! queued ahead of it (unaligned checkpoints), and the receiver always
//! serves that lane first.

use crate::element::Batch;
use crate::element::Control;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::Notify;

/// What one channel operation moves.
#[derive(Debug)]
pub(crate) enum Message<T> {
    /// A batch of records.
    Records(Batch<T>),
    /// One control element.
    Control(Control),
}

struct State<T> {
    queues: Vec<VecDeque<Message<T>>>,
    priority: VecDeque<(usize, Control)>,
    senders: Vec<usize>,
    receiver_alive: bool,
    next: usize,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    capacity: usize,
    receiver_wake: Notify,
    sender_wake: Vec<Notify>,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panic while holding this lock cannot leave the queues half
        // changed (every critical section is a single push or pop).
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The channel was closed by the other side (its task ended or failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Disconnected;

/// Creates an input gate with `channels` channels of `capacity` messages
/// each, and one sender per channel.
pub(crate) fn gate<T>(channels: usize, capacity: usize) -> (Vec<ChannelSender<T>>, InputGate<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queues: (0..channels).map(|_| VecDeque::with_capacity(capacity)).collect(),
            priority: VecDeque::new(),
            senders: vec![1; channels],
            receiver_alive: true,
            next: 0,
        }),
        capacity: capacity.max(1),
        receiver_wake: Notify::new(),
        sender_wake: (0..channels).map(|_| Notify::new()).collect(),
    });
    let senders = (0..channels).map(|channel| ChannelSender { shared: shared.clone(), channel }).collect();
    (senders, InputGate { shared, channels })
}

/// The sending end of one channel of a gate.
pub(crate) struct ChannelSender<T> {
    shared: Arc<Shared<T>>,
    channel: usize,
}

impl<T> ChannelSender<T> {
    /// Sends a message, waiting while the channel is full.
    pub(crate) async fn send(&self, msg: Message<T>) -> Result<(), Disconnected> {
        let mut msg = Some(msg);
        loop {
            {
                let mut st = self.shared.lock();
                if !st.receiver_alive {
                    return Err(Disconnected);
                }
                let q = &mut st.queues[self.channel];
                if q.len() < self.shared.capacity {
                    q.push_back(msg.take().expect("message is sent once"));
                    drop(st);
                    self.shared.receiver_wake.notify_one();
                    return Ok(());
                }
            }
            // `notify_one` stores a permit when nobody waits yet, so a slot
            // freed between the check above and this await is not missed.
            self.shared.sender_wake[self.channel].notified().await;
        }
    }

    /// Waits until the channel has room for a message (cancel-safe: it
    /// only waits).
    pub(crate) async fn writable(&self) -> Result<(), Disconnected> {
        loop {
            {
                let st = self.shared.lock();
                if !st.receiver_alive {
                    return Err(Disconnected);
                }
                if st.queues[self.channel].len() < self.shared.capacity {
                    return Ok(());
                }
            }
            self.shared.sender_wake[self.channel].notified().await;
        }
    }

    /// Sends an overtaking barrier without waiting: `records` (what the
    /// sender still buffered) and the barrier go at the end of the data
    /// queue whatever its capacity, and a copy of the barrier goes on the
    /// priority lane, which the receiver serves first (unaligned
    /// checkpoints: the in-band copy marks where the barrier stands).
    pub(crate) fn send_overtaking(&self, records: Batch<T>, barrier: Control) -> Result<(), Disconnected> {
        let mut st = self.shared.lock();
        if !st.receiver_alive {
            return Err(Disconnected);
        }
        if !records.is_empty() {
            st.queues[self.channel].push_back(Message::Records(records));
        }
        st.queues[self.channel].push_back(Message::Control(barrier));
        st.priority.push_back((self.channel, barrier));
        drop(st);
        self.shared.receiver_wake.notify_one();
        Ok(())
    }
}

impl<T> Drop for ChannelSender<T> {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.senders[self.channel] -= 1;
        drop(st);
        self.shared.receiver_wake.notify_one();
    }
}

/// The receiving end: all input channels of one task.
pub(crate) struct InputGate<T> {
    shared: Arc<Shared<T>>,
    channels: usize,
}

/// What the gate delivers.
pub(crate) enum Received<T> {
    /// A message from the data queue of `channel`.
    Data(usize, Message<T>),
    /// A control element from the priority lane of `channel`.
    Priority(usize, Control),
}

impl<T> InputGate<T> {
    /// The number of input channels.
    pub(crate) fn channels(&self) -> usize {
        self.channels
    }

    /// Takes the next message if one is ready: the priority lane first,
    /// then the channels in turn. `Err` means every sender is gone and
    /// nothing is left.
    pub(crate) fn try_recv(&mut self) -> Result<Option<Received<T>>, Disconnected> {
        let mut st = self.shared.lock();
        if let Some((ch, c)) = st.priority.pop_front() {
            return Ok(Some(Received::Priority(ch, c)));
        }
        let n = self.channels;
        for i in 0..n {
            let ch = (st.next + i) % n;
            let before = st.queues[ch].len();
            if let Some(msg) = st.queues[ch].pop_front() {
                st.next = (ch + 1) % n;
                drop(st);
                if before >= self.shared.capacity {
                    self.shared.sender_wake[ch].notify_one();
                }
                return Ok(Some(Received::Data(ch, msg)));
            }
        }
        if st.senders.iter().all(|&s| s == 0) {
            return Err(Disconnected);
        }
        Ok(None)
    }

    /// Clones the records queued on `channel` ahead of the in-band copy of
    /// barrier `id` (unaligned checkpoints: they are in flight). `None` if
    /// that barrier is not queued there.
    pub(crate) fn queued_before(&self, channel: usize, id: u64) -> Option<Vec<Batch<T>>>
    where
        T: Clone,
    {
        let st = self.shared.lock();
        let mut records = Vec::new();
        for m in &st.queues[channel] {
            match m {
                Message::Records(b) => records.push(b.clone()),
                Message::Control(Control::Barrier(b)) if b.id == id => return Some(records),
                Message::Control(_) => {}
            }
        }
        None
    }

    /// Waits for the next message.
    pub(crate) async fn recv(&mut self) -> Result<Received<T>, Disconnected> {
        loop {
            if let Some(r) = self.try_recv()? {
                return Ok(r);
            }
            self.shared.receiver_wake.notified().await;
        }
    }
}

impl<T> Drop for InputGate<T> {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.receiver_alive = false;
        st.queues.iter_mut().for_each(VecDeque::clear);
        drop(st);
        for w in &self.shared.sender_wake {
            w.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(n: u32) -> Message<u32> {
        Message::Records(Batch::from((0..n).collect::<Vec<_>>()))
    }

    #[tokio::test]
    async fn full_channel_blocks_only_its_sender() {
        let (senders, mut g) = gate::<u32>(2, 1);
        senders[0].send(batch(1)).await.unwrap();
        // Channel 0 is full: a second send must wait.
        let mut blocked = Box::pin(senders[0].send(batch(1)));
        assert!(futures::poll!(blocked.as_mut()).is_pending());
        // Channel 1 is independent.
        senders[1].send(batch(1)).await.unwrap();
        assert!(matches!(g.try_recv(), Ok(Some(Received::Data(0, _)))));
        assert!(futures::poll!(blocked.as_mut()).is_ready());
    }

    #[tokio::test]
    async fn priority_lane_overtakes_queued_data() {
        let (senders, mut g) = gate::<u32>(1, 1);
        senders[0].send(batch(2)).await.unwrap();
        let b = Control::Barrier(crate::checkpoint::CheckpointBarrier {
            id: 1,
            timestamp: 0,
            mode: crate::checkpoint::CheckpointingMode::Unaligned,
            kind: Default::default(),
            incremental: false,
        });
        // Not blocked by the capacity of 1: the buffered batch and the
        // in-band barrier go behind the queued batch.
        senders[0].send_overtaking(Batch::from(vec![9]), b).unwrap();
        assert!(matches!(g.recv().await, Ok(Received::Priority(0, c)) if c == b));
        assert!(matches!(g.recv().await, Ok(Received::Data(0, Message::Records(r))) if r.values() == [0, 1]));
        assert!(matches!(g.recv().await, Ok(Received::Data(0, Message::Records(r))) if r.values() == [9]));
        assert!(matches!(g.recv().await, Ok(Received::Data(0, Message::Control(c))) if c == b));
    }

    #[tokio::test]
    async fn dropping_either_side_disconnects() {
        let (senders, mut g) = gate::<u32>(1, 1);
        drop(senders);
        assert_eq!(g.recv().await.err(), Some(Disconnected));
        let (senders, g) = gate::<u32>(1, 1);
        drop(g);
        assert_eq!(senders[0].send(batch(1)).await, Err(Disconnected));
    }
}
