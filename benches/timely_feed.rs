//! Feeding a timely-dataflow worker's input in event time, shared by the
//! timely baselines of the window and Nexmark benchmarks.

use std::collections::VecDeque;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::{InputHandle, ProbeHandle};
use timely::progress::Timestamp;
use timely::worker::Worker;

/// Records per input batch.
pub const BATCH: usize = 8192;
/// How many batches a worker may run ahead of its probe before it waits.
pub const MAX_LAG: usize = 8;

/// Sends `records` into `input` in batches of [`BATCH`]. After each batch
/// the input's epoch follows the worker's watermark: `watermark` of the
/// largest `time_of` sent so far (when that is ahead of the epoch), so no
/// later record of the worker is earlier than the epoch. The worker runs
/// at most [`MAX_LAG`] batches ahead of `probe`. Then it closes the input
/// and steps until its dataflows are done.
pub fn feed_in_event_time<D: Clone + 'static, T: Timestamp + Copy>(
    worker: &mut Worker,
    mut input: InputHandle<T, CapacityContainerBuilder<Vec<D>>>,
    probe: &ProbeHandle<T>,
    records: impl Iterator<Item = D>,
    time_of: impl Fn(&D) -> T,
    watermark: impl Fn(T) -> T,
) {
    let mut records = records.peekable();
    let mut max_ts = T::minimum();
    let mut recent = VecDeque::with_capacity(MAX_LAG + 1);
    let mut batch: Vec<D> = Vec::with_capacity(BATCH);
    while records.peek().is_some() {
        batch.extend(records.by_ref().take(BATCH).inspect(|r| max_ts = max_ts.max(time_of(r))));
        input.send_batch(&mut batch);
        batch.clear();
        let epoch = watermark(max_ts);
        if epoch > *input.time() {
            input.advance_to(epoch);
        }
        worker.step();
        recent.push_back(*input.time());
        if recent.len() > MAX_LAG {
            let bound = recent.pop_front().unwrap_or_else(T::minimum);
            worker.step_while(|| probe.less_than(&bound));
        }
    }
    drop(input);
    while worker.step() {}
}
