//! The events of the window benchmark and the answer every contender
//! computes: a keyed tumbling event-time window count.
//!
//! Event `i` has the key of `events::gen_event(i)` (10_000 keys) and the
//! event time `i * MS_PER_EVENT + DISORDER_MS - d(i)` with a pseudo-random
//! `d(i)` in `0..=DISORDER_MS`: a 1-minute window holds 60_000 events, and
//! an event is at most `DISORDER_MS` earlier than any event generated before
//! it. The time is never negative, so timely can use it as a `u64` epoch.
//!
//! Parallel partitions take every `peers`-th event (`stride`), not a
//! contiguous range: they then advance through event time together, as the
//! partitions of a live stream do, and each still has the disorder bound.
//! (With contiguous ranges the second half of the events would wait for the
//! first partition's watermark, and nearly every window of it would stay
//! open until the end of the run.)

use super::events::gen_event;
use dataflow_core::connectors::Sink;
use dataflow_core::window::TimeWindow;
use dataflow_core::{Batch, BoxError};
use std::sync::{Arc, Mutex};

/// Event time between consecutive events.
pub const MS_PER_EVENT: u64 = 1;
/// The window size: 60_000 events per window.
pub const WINDOW_MS: u64 = 60_000;
/// How far (ms) an event may be earlier than the events generated before it;
/// the watermark strategy allows exactly this.
pub const DISORDER_MS: u64 = 2_000;

/// One event of the window benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TimedEvent {
    pub key: u32,
    /// Event time, ms.
    pub ts: u64,
}

/// Deterministic event number `i` (see the module docs).
#[inline]
pub fn gen_timed(i: u64) -> TimedEvent {
    let late = (i.wrapping_mul(0xD1B5_4A32_D192_ED03) >> 40) % (DISORDER_MS + 1);
    TimedEvent { key: gen_event(i).key, ts: i * MS_PER_EVENT + DISORDER_MS - late }
}

/// The event numbers partition/worker `index` of `peers` generates out of `n`.
pub fn stride(index: usize, peers: usize, n: u64) -> std::iter::StepBy<std::ops::Range<u64>> {
    (index as u64..n).step_by(peers)
}

/// The start of the window holding `ts`.
#[inline]
pub fn window_start(ts: u64) -> u64 {
    ts - ts % WINDOW_MS
}

/// What every contender must agree on: the number of (key, window) results,
/// the sum of their counts (= the number of events) and a checksum over
/// `(key, window, count)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WindowTotals {
    pub results: u64,
    pub events: u64,
    pub checksum: u64,
}

impl WindowTotals {
    /// Counts the result `count` of `key` in the window starting at `start` (ms).
    #[inline]
    pub fn add(&mut self, key: u32, start: u64, count: u64) {
        self.results += 1;
        self.events += count;
        let term = (u64::from(key) * 31).wrapping_add(start / WINDOW_MS).wrapping_mul(count);
        self.checksum = self.checksum.wrapping_add(term);
    }

    /// The totals of both.
    pub fn merge(self, other: WindowTotals) -> WindowTotals {
        WindowTotals {
            results: self.results + other.results,
            events: self.events + other.events,
            checksum: self.checksum.wrapping_add(other.checksum),
        }
    }
}

/// Folds `(key, window, count)` results into `WindowTotals` per subtask and
/// merges them into `total` at the end.
pub struct TotalsSink {
    pub acc: WindowTotals,
    pub total: Arc<Mutex<WindowTotals>>,
}

#[async_trait::async_trait]
impl Sink<(u32, TimeWindow, u64)> for TotalsSink {
    async fn write_batch(&mut self, batch: &mut Batch<(u32, TimeWindow, u64)>) -> Result<(), BoxError> {
        for &(key, window, count) in batch.values() {
            self.acc.add(key, window.start as u64, count);
        }
        batch.clear();
        Ok(())
    }

    async fn finish(&mut self) -> Result<(), BoxError> {
        let mut total = self.total.lock().map_err(|_| "poisoned totals")?;
        *total = total.merge(self.acc);
        Ok(())
    }
}
