//! Barrier handling in a task with input channels: when the snapshot for
//! checkpoint `n` is taken, which channels are blocked meanwhile, and which
//! in-flight records become channel state.
//!
//! Every barrier travels in-band, at its place among each channel's
//! records; the place is what decides whether a record belongs before or
//! after the checkpoint. By the barrier's [`CheckpointingMode`]:
//!
//! - *aligned*: a channel that delivered its in-band barrier is blocked
//!   until every live channel has; then the snapshot is taken and the
//!   barrier passes on. Nothing is in flight, so the channel state is empty.
//! - *unaligned*: the barrier's copy on the priority lane, which overtook
//!   the queued records, takes the snapshot at once. The records queued on
//!   a channel ahead of its in-band barrier were sent before the checkpoint
//!   but will be processed after the snapshot: they are in flight, and the
//!   task copies them into the channel state as soon as that channel's
//!   priority copy arrived (they stay queued and are processed as usual).
//!   Until then, a channel's records are logged as the task takes them. So
//!   the checkpoint completes at this task once every live channel's
//!   barrier overtook its queue, however long the backlog behind it.
//! - *aligned with a timeout*: aligned, until the timeout (counted from the
//!   first copy of the barrier to arrive) passes; then as unaligned, with
//!   the blocked channels released.
//! - *at-least-once*: like aligned without blocking, so records after a
//!   barrier may be in the snapshot and be processed again after a restore.
//!
//! A newer barrier abandons an older checkpoint still in progress here
//! (its channel state is never acknowledged; the coordinator aborts it).

use crate::checkpoint::{CheckpointBarrier, CheckpointingMode};
use crate::element::Control;
use crate::time::Timestamp;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The checkpoint whose barrier this task is collecting.
struct Pending {
    barrier: CheckpointBarrier,
    /// Channels whose in-flight records are all in the log (their in-band
    /// barrier arrived or their queue was copied), or that ended.
    seen: Vec<bool>,
    /// Channels whose priority copy arrived and whose queue is to be copied.
    to_copy: Vec<bool>,
    /// Whether the snapshot was taken (the barrier passed on).
    taken: bool,
    /// Aligned with a timeout: when to stop waiting and go unaligned.
    deadline: Option<Timestamp>,
    /// Encoded in-flight records (see `channel_state`).
    log: Vec<u8>,
    /// When the first copy of the barrier arrived, and how long the task
    /// aligned (until the snapshot was taken): a metric.
    arrived: Instant,
    alignment: Duration,
}

/// A checkpoint this task finished: its channel state is complete.
pub(crate) struct Completed {
    pub(crate) barrier: CheckpointBarrier,
    /// The encoded channel state (empty when nothing was in flight).
    pub(crate) channel_state: Vec<u8>,
    /// How long the task aligned.
    pub(crate) alignment: Duration,
}

/// The barriers of one task's input channels.
pub(crate) struct Barriers {
    pending: Option<Pending>,
    /// The newest checkpoint seen: barriers of older ones are stale.
    newest: u64,
    completed: Option<Completed>,
}

impl Barriers {
    pub(crate) fn new() -> Self {
        Self { pending: None, newest: 0, completed: None }
    }

    /// Handles barrier `b` from `channel`: its in-band copy, or with
    /// `priority` the copy that overtook the channel's queue. `ended` says
    /// which channels ended. What must pass on goes to `out`.
    pub(crate) fn on_barrier(
        &mut self,
        channel: usize,
        b: CheckpointBarrier,
        priority: bool,
        ended: &[bool],
        now: Timestamp,
        out: &mut Vec<Control>,
    ) {
        if b.id < self.newest {
            return;
        }
        if b.id > self.newest {
            self.newest = b.id;
            self.pending = Some(Pending {
                barrier: b,
                seen: ended.to_vec(),
                to_copy: vec![false; ended.len()],
                taken: false,
                deadline: None,
                log: Vec::new(),
                arrived: Instant::now(),
                alignment: Duration::ZERO,
            });
        }
        // `None` here: this checkpoint already completed at this task.
        let Some(p) = &mut self.pending else { return };
        if !priority {
            p.seen[channel] = true;
        } else {
            p.to_copy[channel] = !p.seen[channel];
            match b.mode {
                CheckpointingMode::Unaligned => take(p, out),
                CheckpointingMode::AlignedWithTimeout(d) => {
                    let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
                    p.deadline.get_or_insert(now.saturating_add(ms));
                }
                CheckpointingMode::Aligned | CheckpointingMode::AtLeastOnce => {}
            }
        }
        self.advance(out);
    }

    /// Channel `channel` ended: it no longer holds the barrier back.
    pub(crate) fn on_ended(&mut self, channel: usize, out: &mut Vec<Control>) {
        if let Some(p) = &mut self.pending {
            p.seen[channel] = true;
            self.advance(out);
        }
    }

    /// Aligned with a timeout: once the deadline passed, takes the
    /// snapshot now and goes on unaligned.
    pub(crate) fn on_time(&mut self, now: Timestamp, out: &mut Vec<Control>) {
        if let Some(p) = &mut self.pending
            && p.deadline.is_some_and(|d| d <= now)
        {
            p.deadline = None;
            take(p, out);
        }
    }

    /// When [`on_time`](Self::on_time) has something to do.
    pub(crate) fn deadline(&self) -> Option<Timestamp> {
        self.pending.as_ref().and_then(|p| if p.taken { None } else { p.deadline })
    }

    /// Whether `channel`'s messages must wait (aligned, after its barrier).
    pub(crate) fn blocks(&self, channel: usize) -> bool {
        self.pending
            .as_ref()
            .is_some_and(|p| p.seen[channel] && !p.taken && p.barrier.mode != CheckpointingMode::AtLeastOnce)
    }

    /// Where to log the records `channel` delivers now, if they are in
    /// flight (sent before the checkpoint, processed after its snapshot).
    pub(crate) fn log_for(&mut self, channel: usize) -> Option<&mut Vec<u8>> {
        self.pending.as_mut().filter(|p| p.taken && !p.seen[channel]).map(|p| &mut p.log)
    }

    /// The channels whose queued records to copy into the channel state
    /// now (the snapshot was taken and their priority copy arrived), with
    /// the checkpoint's id; each is handed out once. Report each copy with
    /// [`copied`](Self::copied).
    pub(crate) fn take_to_copy(&mut self) -> Option<(u64, Vec<usize>)> {
        let p = self.pending.as_mut().filter(|p| p.taken)?;
        let channels: Vec<usize> = (0..p.to_copy.len()).filter(|&c| std::mem::take(&mut p.to_copy[c])).collect();
        (!channels.is_empty()).then_some((p.barrier.id, channels))
    }

    /// The records queued ahead of `channel`'s in-band barrier are in the
    /// log (appended through [`log_for`](Self::log_for)).
    pub(crate) fn copied(&mut self, channel: usize, out: &mut Vec<Control>) {
        if let Some(p) = &mut self.pending {
            p.seen[channel] = true;
            self.advance(out);
        }
    }

    /// The checkpoint that completed at this task, once.
    pub(crate) fn take_completed(&mut self) -> Option<Completed> {
        self.completed.take()
    }

    fn advance(&mut self, out: &mut Vec<Control>) {
        let Some(p) = &mut self.pending else { return };
        if !p.seen.iter().all(|&s| s) {
            return;
        }
        take(p, out);
        if let Some(p) = self.pending.take() {
            self.completed = Some(Completed { barrier: p.barrier, channel_state: p.log, alignment: p.alignment });
        }
    }
}

/// Takes the snapshot: the barrier passes on to the chain (once).
fn take(p: &mut Pending, out: &mut Vec<Control>) {
    if !std::mem::replace(&mut p.taken, true) {
        p.alignment = p.arrived.elapsed();
        out.push(Control::Barrier(p.barrier));
    }
}

/// The messages of blocked channels (see [`Barriers::blocks`]), in
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
    pub(crate) fn holds(&self, barriers: &Barriers, channel: usize) -> bool {
        barriers.blocks(channel) || !self.queues[channel].is_empty()
    }

    /// The first held message of a channel that is no longer blocked.
    pub(crate) fn take_ready(&mut self, barriers: &Barriers) -> Option<(usize, M)> {
        if self.held == 0 {
            return None;
        }
        let ch = (0..self.queues.len()).find(|&ch| !barriers.blocks(ch) && !self.queues[ch].is_empty())?;
        self.held -= 1;
        self.queues[ch].pop_front().map(|m| (ch, m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn b(id: u64, mode: CheckpointingMode) -> CheckpointBarrier {
        CheckpointBarrier { id, timestamp: 0, mode, incremental: false, kind: Default::default() }
    }

    #[test]
    fn unaligned_takes_the_first_priority_barrier_and_logs_until_each_in_band_one() {
        let mut x = Barriers::new();
        let mut out = Vec::new();
        let ended = [false, false];
        x.on_barrier(0, b(1, CheckpointingMode::Unaligned), true, &ended, 0, &mut out);
        assert_eq!(out, [Control::Barrier(b(1, CheckpointingMode::Unaligned))]);
        assert!(!x.blocks(0) && !x.blocks(1));
        // Both channels still deliver in-flight records.
        x.log_for(0).unwrap().push(7);
        x.on_barrier(0, b(1, CheckpointingMode::Unaligned), false, &ended, 0, &mut out);
        assert!(x.log_for(0).is_none());
        x.log_for(1).unwrap().push(8);
        x.on_barrier(1, b(1, CheckpointingMode::Unaligned), true, &ended, 0, &mut out);
        assert_eq!(out.len(), 1, "taken once");
        x.on_barrier(1, b(1, CheckpointingMode::Unaligned), false, &ended, 0, &mut out);
        let done = x.take_completed().unwrap();
        assert_eq!((done.barrier.id, done.channel_state), (1, vec![7, 8]));
        assert!(x.log_for(1).is_none() && x.take_completed().is_none());
    }

    #[test]
    fn queues_are_copied_once_the_priority_copy_arrived() {
        let mut x = Barriers::new();
        let mut out = Vec::new();
        let ended = [false, false];
        let mode = CheckpointingMode::Unaligned;
        x.on_barrier(1, b(1, mode), true, &ended, 0, &mut out);
        assert_eq!(x.take_to_copy(), Some((1, vec![1])));
        assert_eq!(x.take_to_copy(), None, "handed out once");
        x.log_for(1).unwrap().push(1);
        x.copied(1, &mut out);
        // Channel 1's later records (the copied ones, processed now) are not logged again.
        assert!(x.log_for(1).is_none());
        x.on_barrier(0, b(1, mode), true, &ended, 0, &mut out);
        assert_eq!(x.take_to_copy(), Some((1, vec![0])));
        x.copied(0, &mut out);
        assert_eq!(x.take_completed().unwrap().channel_state, vec![1]);
        // The in-band copies, arriving later, change nothing.
        x.on_barrier(1, b(1, mode), false, &ended, 0, &mut out);
        assert!(x.take_completed().is_none() && !x.blocks(1));
    }

    #[test]
    fn aligned_blocks_until_every_live_channel_delivered() {
        let mut x = Barriers::new();
        let mut out = Vec::new();
        let mode = CheckpointingMode::Aligned;
        x.on_barrier(1, b(1, mode), false, &[false, false, true], 0, &mut out);
        assert!(out.is_empty() && x.blocks(1) && !x.blocks(0));
        assert!(x.log_for(0).is_none());
        x.on_barrier(0, b(1, mode), false, &[false, false, true], 0, &mut out);
        assert_eq!(out, [Control::Barrier(b(1, mode))]);
        assert!(x.take_completed().unwrap().channel_state.is_empty());
    }

    #[test]
    fn at_least_once_never_blocks() {
        let mut x = Barriers::new();
        let mut out = Vec::new();
        x.on_barrier(0, b(1, CheckpointingMode::AtLeastOnce), false, &[false, false], 0, &mut out);
        assert!(!x.blocks(0) && out.is_empty());
        x.on_ended(1, &mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn alignment_timeout_switches_to_unaligned() {
        let mode = CheckpointingMode::AlignedWithTimeout(Duration::from_millis(50));
        let mut x = Barriers::new();
        let mut out = Vec::new();
        let ended = [false, false];
        x.on_barrier(0, b(1, mode), true, &ended, 100, &mut out);
        x.on_barrier(0, b(1, mode), false, &ended, 100, &mut out);
        assert!(x.blocks(0) && out.is_empty());
        assert_eq!(x.deadline(), Some(150));
        x.on_time(149, &mut out);
        assert!(out.is_empty());
        x.on_time(150, &mut out);
        assert_eq!(out.len(), 1);
        assert!(!x.blocks(0) && x.log_for(1).is_some() && x.deadline().is_none());
    }

    #[test]
    fn a_newer_barrier_abandons_an_older_checkpoint() {
        let mut x = Barriers::new();
        let mut out = Vec::new();
        let ended = [false, false];
        let mode = CheckpointingMode::Unaligned;
        x.on_barrier(0, b(1, mode), true, &ended, 0, &mut out);
        x.on_barrier(0, b(2, mode), true, &ended, 0, &mut out);
        for ch in 0..2 {
            x.on_barrier(ch, b(1, mode), false, &ended, 0, &mut out); // stale
        }
        assert!(x.take_completed().is_none());
        for ch in 0..2 {
            x.on_barrier(ch, b(2, mode), false, &ended, 0, &mut out);
        }
        assert_eq!(x.take_completed().unwrap().barrier.id, 2);
        assert_eq!(out.len(), 2);
    }
}
