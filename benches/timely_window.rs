//! timely-dataflow (crate `timely` 0.32) baseline of the window benchmark:
//! a keyed tumbling event-time window count driven by timely's frontier.
//!
//! Each of `workers` worker threads feeds its `stride` of the events through
//! an `InputHandle` as `(key, ts)` tuples (timely's `Exchange` pact needs
//! serde-serializable records), in batches of `timely_feed::BATCH`. The input epoch is
//! event time: after each batch the worker advances it to its watermark,
//! the largest event time it has sent minus `DISORDER_MS`. No later event of
//! the worker is earlier than that, so every record travels at a time at or
//! below its own event time, and once the operator's input frontier reaches
//! a window's end no record of the window can still arrive — the frontier
//! is the min over workers, as our watermark is the min over partitions.
//!
//! The window operator exchanges by key and keeps a `FxHashMap<key, count>`
//! per open window (a `BTreeMap` by window start). When the input frontier
//! reaches a window's end it emits `(key, window start, count)` for the
//! window's keys, under one capability it holds at its input frontier. A
//! sink folds the results into `WindowTotals` per worker; the caller sums
//! the workers' totals.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;

use rustc_hash::FxHashMap;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::{Capability, Input, Probe};
use timely::dataflow::{InputHandle, ProbeHandle};

use super::timely_feed::feed_in_event_time;
use super::window_events::{DISORDER_MS, WINDOW_MS, WindowTotals, gen_timed, stride, window_start};

/// An event as sent: `(key, event time)`.
type Timed = (u32, u64);
/// A result: `(key, window start, count)`.
type Counted = (u32, u64, u64);

/// The window count in timely with `workers` workers over `n` events;
/// returns the totals over all workers.
pub fn timely_window(workers: usize, n: u64) -> WindowTotals {
    let guards = timely::execute(timely::Config::process(workers), move |worker| {
        let mut input = InputHandle::<u64, CapacityContainerBuilder<Vec<Timed>>>::new();
        let probe = ProbeHandle::new();
        let totals = Rc::new(Cell::new(WindowTotals::default()));
        let sink_totals = Rc::clone(&totals);
        worker.dataflow::<u64, _, _>(|scope| {
            scope
                .input_from(&mut input)
                .unary_frontier::<CapacityContainerBuilder<Vec<Counted>>, _, _, _>(
                    Exchange::new(|&(key, _ts): &Timed| u64::from(key)),
                    "WindowCount",
                    |_capability, _info| {
                        let mut open: BTreeMap<u64, FxHashMap<u32, u64>> = BTreeMap::new();
                        // Held at (or below) the input frontier while windows are open.
                        let mut held: Option<Capability<u64>> = None;
                        move |(input, frontier), output| {
                            input.for_each_stamp(|cap, data| {
                                if held.is_none() {
                                    held = cap.retain_least(0);
                                }
                                for batch in data {
                                    for (key, ts) in batch.drain(..) {
                                        *open.entry(window_start(ts)).or_default().entry(key).or_insert(0) += 1;
                                    }
                                }
                            });
                            // The least time a record may still come at; `None` once the input is done.
                            let bound = frontier.frontier().as_option().copied();
                            while let Some(entry) = open.first_entry() {
                                let start = *entry.key();
                                if bound.is_some_and(|t| t < start + WINDOW_MS) {
                                    break;
                                }
                                let counts = entry.remove();
                                let cap = held.as_ref().expect("a capability while windows are open");
                                output
                                    .session(cap)
                                    .give_iterator(counts.into_iter().map(|(key, count)| (key, start, count)));
                            }
                            match bound {
                                _ if open.is_empty() => held = None,
                                Some(t) => {
                                    if let Some(cap) = held.as_mut().filter(|c| *c.time() < t) {
                                        cap.downgrade(&t);
                                    }
                                }
                                None => held = None,
                            }
                        }
                    },
                )
                .probe_with(&probe)
                .sink(Pipeline, "TotalsSink", move |(input, _frontier)| {
                    let mut acc = sink_totals.get();
                    input.for_each(|_time, data| {
                        for &(key, start, count) in data.iter() {
                            acc.add(key, start, count);
                        }
                    });
                    sink_totals.set(acc);
                });
        });

        // Feed this worker's events, the epoch following its watermark.
        let events = stride(worker.index(), worker.peers(), n).map(gen_timed).map(|e| (e.key, e.ts));
        feed_in_event_time(worker, input, &probe, events, |r: &Timed| r.1, |max| max.saturating_sub(DISORDER_MS));
        totals.get()
    })
    .expect("timely execute failed");
    guards
        .join()
        .into_iter()
        .map(|r| r.expect("timely worker panicked"))
        .fold(WindowTotals::default(), WindowTotals::merge)
}
