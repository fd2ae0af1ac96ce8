//! timely-dataflow (crate `timely` 0.32) baselines of Nexmark q0, q1, q2
//! and q5 over the events of `examples/nexmark`, for `benches/nexmark.rs`.
//!
//! Every function runs `workers` timely worker threads inside this process
//! (`timely::execute(Config::process(workers), ..)`). Worker `i` of `k`
//! makes the events `n ≡ i (mod k)` of the configuration with
//! `generator::event` (the same events our source reads, split the same
//! way) and sends them as `Event`s through an `InputHandle` in batches of
//! `timely_feed::BATCH`. The input epoch is event time (ms): after each batch the worker
//! advances it to its watermark, the largest event time it has sent minus
//! `config.disorder_ms`. That bound holds for a worker's increasing-`n`
//! sequence: event `n` is at `base + ⌊n·1000/rate⌋ − jitter` with
//! `jitter ∈ [0, disorder_ms]`, so for `m > n` event `m` is at or after
//! `base + ⌊n·1000/rate⌋ − disorder_ms`, which is at or after event `n`'s
//! time less `disorder_ms`. So every record travels at a time at or below
//! its own event time, and once an operator's input frontier reaches a
//! window's end no record of the window can still arrive (the frontier is
//! the min over workers, as our watermark is the min over splits). A
//! `ProbeHandle` at the end of the dataflow bounds how many batches a
//! worker may run ahead (`timely_feed::MAX_LAG`). After its last batch a worker closes
//! its input and steps until its dataflow is done; the caller joins the
//! workers' partial results.
//!
//! * q0: input → a sink counting records (a pass-through: nothing to do).
//! * q1: input → `flat_map` to the bids in euros (`queries::bids` and
//!   `queries::to_euros`) → counting sink.
//! * q2: input → `flat_map` to `(auction, price)` of the bids on every
//!   123rd auction (`queries::q2_select`, the function our q2 applies) →
//!   counting sink.
//!
//! These are stateless and use the `Pipeline` pact: no exchange. q5 (hot
//! items, windows of `Q5_SIZE_MS` sliding by `Q5_SLIDE_MS`) takes each
//! bid as `(auction, event time)`, then:
//! 1. exchanges by (a hash of) the auction, counts bids per (window start,
//!    auction) for each window a bid falls in (`queries::q5_batch`'s
//!    window math), and when the input frontier reaches a window's end
//!    emits `(start, auction, count)` for its auctions and drops them;
//! 2. exchanges by window start and keeps per window the hottest
//!    `(auction, count)` (more bids, ties to the smaller auction), emitted
//!    as `(start, (auction, count))` when the frontier reaches the
//!    window's end;
//! 3. a sink collects the results into a `BTreeMap` per worker; the caller
//!    merges them.
//!
//! A windowed stage holds one capability while it has open windows: taken
//! at the least time of the records that opened them and moved up to its
//! input frontier once the windows that frontier closes are emitted. It
//! stays below the end of every open window, so the next stage's frontier
//! cannot pass a window before that window's results reach it.
//!
//! Differences from our q5: both move only the auction (and its time)
//! through the exchange; ours reports a rolling maximum per window (an
//! update per window and auction, through a second keyed stage), timely
//! one result per window.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use super::timely_feed::feed_in_event_time;
use dataflow_examples::nexmark::generator::{self, NexmarkConfig};
use dataflow_examples::nexmark::model::Event;
use dataflow_examples::nexmark::queries::{Q5_SIZE_MS, Q5_SLIDE_MS, bids, q2_select, to_euros};
use rustc_hash::FxHashMap;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::InputCapability;
use timely::dataflow::operators::generic::{Operator, OutputBuilderSession};
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::{Capability, Input, Probe};
use timely::dataflow::{InputHandle, ProbeHandle};
use timely::progress::frontier::MutableAntichain;
use timely::worker::Worker;

/// The input: events at event-time epochs (ms).
type EventInput = InputHandle<i64, CapacityContainerBuilder<Vec<Event>>>;
/// A bid as q5 moves it: `(auction, event time)`.
type Timed = (u64, i64);
/// A window's count of one auction: `(window start, auction, bids)`.
type Counted = (i64, u64, u64);
/// A window's hottest auction: `(window start, (auction, bids))`.
type Hottest = (i64, (u64, u64));

/// Spreads a key over the workers (timely's exchange takes the low bits,
/// and q5's auctions and window starts are mostly even).
fn spread(key: u64) -> u64 {
    key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32
}

/// Whether `(auction, bids)` `a` is hotter than `b`: more bids, or as many
/// and a smaller auction id (`queries::hotter`, which is private).
fn hotter(a: (u64, u64), b: (u64, u64)) -> bool {
    (a.1, std::cmp::Reverse(a.0)) > (b.1, std::cmp::Reverse(b.0))
}

/// Feeds this worker's events (`n ≡ index mod peers`) into `input`, the
/// epoch following the worker's watermark (its largest event time less
/// the configured disorder), then steps until its dataflows are done.
fn feed_and_drain(worker: &mut Worker, input: EventInput, probe: &ProbeHandle<i64>, config: &NexmarkConfig) {
    let disorder = config.disorder_ms.max(0);
    let events = (worker.index() as u64..config.events).step_by(worker.peers()).map(|n| generator::event(config, n));
    feed_in_event_time(worker, input, probe, events, Event::date_time, |max| max.saturating_sub(disorder));
}

/// Runs a stateless query: `query` maps each event to its results, a sink
/// counts them; the number of results over all workers.
fn stateless<R, I, F>(workers: usize, config: &NexmarkConfig, query: F) -> u64
where
    R: 'static,
    I: IntoIterator<Item = R>,
    F: Fn(Event) -> I + Copy + Send + Sync + 'static,
{
    let config = config.clone();
    let guards = timely::execute(timely::Config::process(workers), move |worker| {
        let mut input = EventInput::new();
        let probe = ProbeHandle::new();
        let count = Rc::new(RefCell::new(0u64));
        let sink_count = Rc::clone(&count);
        worker.dataflow::<i64, _, _>(|scope| {
            scope.input_from(&mut input).flat_map(query).probe_with(&probe).sink(
                Pipeline,
                "CountSink",
                move |(input, _frontier)| {
                    let mut n = sink_count.borrow_mut();
                    input.for_each(|_time, data| *n += data.len() as u64);
                },
            );
        });
        feed_and_drain(worker, input, &probe, &config);
        count.take()
    })
    .expect("timely execute failed");
    guards.join().into_iter().map(|r| r.expect("timely worker panicked")).sum()
}

/// q0 in timely with `workers` workers: the number of results (every event).
pub fn q0(workers: usize, config: &NexmarkConfig) -> u64 {
    stateless(workers, config, Some)
}

/// q1 in timely with `workers` workers: the number of results (the bids,
/// in euros).
pub fn q1(workers: usize, config: &NexmarkConfig) -> u64 {
    stateless(workers, config, |e| bids::call(e).map(to_euros::call))
}

/// q2 in timely with `workers` workers: the number of results (`(auction,
/// price)` of the bids on every 123rd auction).
pub fn q2(workers: usize, config: &NexmarkConfig) -> u64 {
    stateless(workers, config, q2_select::call)
}

/// A windowed stage's capability: held at the least time of the records
/// that opened its windows, moved up to the input frontier `bound` once no
/// window is left open below it, dropped when none is open.
struct Held(Option<Capability<i64>>);

impl Held {
    /// Takes a capability at `time` if none is held below it.
    fn note(&mut self, cap: &InputCapability<i64>) {
        if let Some(&t) = cap.least()
            && self.0.as_ref().is_none_or(|h| t < *h.time())
        {
            self.0 = cap.retain_least(0);
        }
    }

    /// After emitting: drops the capability if nothing is open, else moves
    /// it up to `bound` (`None`: the input is done).
    fn settle(&mut self, open: bool, bound: Option<i64>) {
        match bound {
            Some(t) if open => {
                if let Some(cap) = self.0.as_mut().filter(|c| *c.time() < t) {
                    cap.downgrade(&t);
                }
            }
            _ => self.0 = None,
        }
    }
}

/// The windows closed by the input frontier `bound` (`None`: all of them):
/// pops and yields each whose end `start + Q5_SIZE_MS` is at or below it.
fn closed<V>(open: &mut BTreeMap<i64, V>, bound: Option<i64>, mut emit: impl FnMut(i64, V)) {
    while let Some(entry) = open.first_entry() {
        let start = *entry.key();
        if bound.is_some_and(|t| t < start + Q5_SIZE_MS) {
            break;
        }
        emit(start, entry.remove());
    }
}

/// The least time a record may still come at; `None` once the input is done.
fn bound_of(frontier: &MutableAntichain<i64>) -> Option<i64> {
    frontier.frontier().as_option().copied()
}

/// Gives `data` at the held capability.
fn give_all<D: 'static>(
    output: &mut OutputBuilderSession<'_, i64, CapacityContainerBuilder<Vec<D>>>,
    held: &Held,
    data: impl IntoIterator<Item = D>,
) {
    let cap = held.0.as_ref().expect("a capability while windows are open");
    output.session(cap).give_iterator(data.into_iter());
}

/// q5 (hot items) in timely with `workers` workers: per window start, the
/// auction with the most bids and their number.
pub fn q5(workers: usize, config: &NexmarkConfig) -> BTreeMap<i64, (u64, u64)> {
    let config = config.clone();
    let guards = timely::execute(timely::Config::process(workers), move |worker| {
        let mut input = EventInput::new();
        let probe = ProbeHandle::new();
        let results = Rc::new(RefCell::new(BTreeMap::new()));
        let sink_results = Rc::clone(&results);
        worker.dataflow::<i64, _, _>(|scope| {
            scope
                .input_from(&mut input)
                .flat_map(|e| bids::call(e).map(|b| (b.auction, b.date_time)))
                .unary_frontier::<CapacityContainerBuilder<Vec<Counted>>, _, _, _>(
                    Exchange::new(|&(auction, _): &Timed| spread(auction)),
                    "WindowCount",
                    |_capability, _info| {
                        let mut open: BTreeMap<i64, FxHashMap<u64, u64>> = BTreeMap::new();
                        let mut held = Held(None);
                        move |(input, frontier), output| {
                            input.for_each_stamp(|cap, data| {
                                held.note(&cap);
                                for batch in data {
                                    for (auction, t) in batch.drain(..) {
                                        let mut start = t - t.rem_euclid(Q5_SLIDE_MS);
                                        while start > t - Q5_SIZE_MS {
                                            *open.entry(start).or_default().entry(auction).or_insert(0) += 1;
                                            start -= Q5_SLIDE_MS;
                                        }
                                    }
                                }
                            });
                            let bound = bound_of(frontier);
                            closed(&mut open, bound, |start, counts| {
                                give_all(output, &held, counts.into_iter().map(|(a, n)| (start, a, n)));
                            });
                            held.settle(!open.is_empty(), bound);
                        }
                    },
                )
                .unary_frontier::<CapacityContainerBuilder<Vec<Hottest>>, _, _, _>(
                    Exchange::new(|&(start, _, _): &Counted| spread((start / Q5_SLIDE_MS) as u64)),
                    "Hottest",
                    |_capability, _info| {
                        let mut open: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
                        let mut held = Held(None);
                        move |(input, frontier), output| {
                            input.for_each_stamp(|cap, data| {
                                held.note(&cap);
                                for batch in data {
                                    for (start, auction, n) in batch.drain(..) {
                                        let best = open.entry(start).or_insert((auction, n));
                                        if hotter((auction, n), *best) {
                                            *best = (auction, n);
                                        }
                                    }
                                }
                            });
                            let bound = bound_of(frontier);
                            closed(&mut open, bound, |start, best| give_all(output, &held, [(start, best)]));
                            held.settle(!open.is_empty(), bound);
                        }
                    },
                )
                .probe_with(&probe)
                .sink(Pipeline, "Collect", move |(input, _frontier)| {
                    let mut map = sink_results.borrow_mut();
                    input.for_each(|_time, data| map.extend(data.drain(..)));
                });
        });
        feed_and_drain(worker, input, &probe, &config);
        results.take()
    })
    .expect("timely execute failed");
    let mut all = BTreeMap::new();
    for r in guards.join() {
        all.extend(r.expect("timely worker panicked"));
    }
    all
}
