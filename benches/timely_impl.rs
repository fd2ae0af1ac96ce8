//! timely-dataflow (crate `timely` 0.32) baselines for the throughput benchmarks.
//!
//! Every function runs `workers` timely worker threads inside this process
//! (`timely::execute(Config::process(workers), ..)`). Each worker generates its
//! `share(index, peers, n)` of the events and feeds them through an
//! `InputHandle` in batches of `BATCH` records (`send_batch`), advancing the
//! input epoch after every batch and stepping the worker; a `ProbeHandle`
//! bounds how many epochs may be in flight. After its last batch a worker
//! closes its input and steps until its dataflow has completed, and then
//! returns its partial result, which the caller collects with
//! `WorkerGuards::join`.
//!
//! timely's `Exchange` pact requires serde-serializable records even within one
//! process, and `Event` deliberately has no serde derives, so the keyed baseline
//! moves each event as the plain tuple `(id, key, value)` (same 16 bytes).

// A bench that includes this module via `mod timely_impl;` may use only some of it.
#![allow(dead_code)]

use std::cell::Cell;
use std::rc::Rc;

use rustc_hash::FxHashMap;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::vec::{Filter, Map};
use timely::dataflow::operators::{Input, Probe};
use timely::dataflow::{InputHandle, ProbeHandle};
use timely::worker::Worker;

use super::events::{Event, gen_event, keep_event, map_event, share};

/// Records per input batch; one epoch (timestamp) per batch.
const BATCH: u64 = 8192;
/// How many epochs a worker may run ahead of its probe before it waits.
const MAX_LAG: u64 = 8;

/// An input handle feeding `Vec<D>` containers at `u64` epochs.
type VecInput<D> = InputHandle<u64, CapacityContainerBuilder<Vec<D>>>;

/// An `Event` as a serde-serializable tuple `(id, key, value)`, for exchange pacts.
type EventTuple = (u64, u32, u32);

/// Feeds this worker's share of the `n` events (built by `make` from the event
/// number) into `input` in batches of `BATCH`, one epoch per batch, then closes the
/// input and steps the worker until all of its dataflows have completed (so every
/// record has reached the sink).
fn feed_and_drain<D: Clone + 'static>(
    worker: &mut Worker,
    mut input: VecInput<D>,
    probe: &ProbeHandle<u64>,
    n: u64,
    make: impl Fn(u64) -> D,
) {
    let range = share(worker.index(), worker.peers(), n);
    let mut start = range.start;
    let mut epoch = 0u64;
    while start < range.end {
        let end = range.end.min(start + BATCH);
        let mut batch: Vec<D> = (start..end).map(&make).collect();
        input.send_batch(&mut batch);
        epoch += 1;
        input.advance_to(epoch);
        worker.step();
        let bound = epoch.saturating_sub(MAX_LAG);
        worker.step_while(|| probe.less_than(&bound));
        start = end;
    }
    drop(input);
    while worker.step() {}
}

/// Stateless chain in timely: input -> map(map_event) -> filter(keep_event) -> sink
/// summing `value as u64` per worker; returns the sum over all workers.
pub fn timely_chain(workers: usize, n: u64) -> u64 {
    let guards = timely::execute(timely::Config::process(workers), move |worker| {
        let mut input = VecInput::<Event>::new();
        let probe = ProbeHandle::new();
        let sum = Rc::new(Cell::new(0u64));
        let sink_sum = Rc::clone(&sum);
        worker.dataflow::<u64, _, _>(|scope| {
            scope
                .input_from(&mut input)
                .map_in_place(|e| *e = map_event(*e))
                .filter(keep_event)
                .probe_with(&probe)
                .sink(Pipeline, "SumSink", move |(input, _frontier)| {
                    let mut acc = sink_sum.get();
                    input.for_each(|_time, data| {
                        acc += data.iter().map(|e| e.value as u64).sum::<u64>();
                    });
                    sink_sum.set(acc);
                });
        });
        feed_and_drain(worker, input, &probe, n, gen_event);
        sum.get()
    })
    .expect("timely execute failed");
    guards.join().into_iter().map(|r| r.expect("timely worker panicked")).sum()
}

/// Keyed rolling sum in timely: input -> exchange by key -> per-key running total
/// (`FxHashMap<u32, u64>` per worker, emits `(key, new_total)` per record) -> sink
/// counting records and wrapping-summing totals; returns the record count over all workers.
pub fn timely_keyed(workers: usize, n: u64) -> u64 {
    let guards = timely::execute(timely::Config::process(workers), move |worker| {
        let mut input = VecInput::<EventTuple>::new();
        let probe = ProbeHandle::new();
        let stats = Rc::new(Cell::new((0u64, 0u64)));
        let sink_stats = Rc::clone(&stats);
        worker.dataflow::<u64, _, _>(|scope| {
            scope
                .input_from(&mut input)
                .unary::<CapacityContainerBuilder<Vec<(u32, u64)>>, _, _, _>(
                    Exchange::new(|&(_id, key, _value): &EventTuple| key as u64),
                    "RollingSum",
                    |_capability, _info| {
                        let mut totals: FxHashMap<u32, u64> = FxHashMap::default();
                        move |input, output| {
                            input.for_each_stamp(|time, data| {
                                let mut session = output.session(&time);
                                for batch in data {
                                    for (_id, key, value) in batch.drain(..) {
                                        let total = totals.entry(key).or_insert(0);
                                        *total += value as u64;
                                        session.give((key, *total));
                                    }
                                }
                            });
                        }
                    },
                )
                .probe_with(&probe)
                .sink(Pipeline, "CountSink", move |(input, _frontier)| {
                    let (mut count, mut checksum) = sink_stats.get();
                    input.for_each(|_time, data| {
                        count += data.len() as u64;
                        for &(_key, total) in data.iter() {
                            checksum = checksum.wrapping_add(total);
                        }
                    });
                    sink_stats.set((count, checksum));
                });
        });
        feed_and_drain(worker, input, &probe, n, |i| {
            let e = gen_event(i);
            (e.id, e.key, e.value)
        });
        let (count, checksum) = stats.get();
        std::hint::black_box(checksum);
        count
    })
    .expect("timely execute failed");
    guards.join().into_iter().map(|r| r.expect("timely worker panicked")).sum()
}
