//! Nexmark queries as dataflow jobs, each with the plain batch computation
//! of the same answer that the tests compare it with.
//!
//! * q0, pass-through: every event;
//! * q1, currency conversion: every bid, its price in euros (× 0.908);
//! * q2, selection: the bids on every 123rd auction;
//! * q5, hot items: per 10 s window sliding every 2 s, the auction with the
//!   most bids (ties to the smaller id);
//! * q7, highest bid: per 10 s tumbling window, the highest bid (ties to
//!   the smaller auction, then bidder, then time);
//! * q11, user sessions: per bidder, sessions of bids less than 10 s
//!   apart, and how many bids each had.
//!
//! Windowed queries report one result per window as the final value of a
//! rolling maximum per window; [`final_per_window`] takes it from a run's
//! output.

use super::model::{Bid, Event};
use dataflow_core::window::{EventTimeSessionWindows, SlidingEventTimeWindows, TimeWindow, TumblingEventTimeWindows};
use dataflow_core::{Stream, operator};
use std::collections::BTreeMap;
use std::time::Duration;

/// q5's window size and slide, q7's window size (ms).
pub const Q5_SIZE_MS: i64 = 10_000;
/// q5's slide (ms).
pub const Q5_SLIDE_MS: i64 = 2_000;
/// q7's window size (ms).
pub const Q7_SIZE_MS: i64 = 10_000;
/// q11's session gap (ms).
pub const Q11_GAP_MS: i64 = 10_000;

/// The bids of a stream of events.
#[operator]
pub fn bids(e: Event) -> Option<Bid> {
    match e {
        Event::Bid(b) => Some(b),
        _ => None,
    }
}

/// q0: every event, unchanged.
pub fn q0(events: &Stream<Event>) -> Stream<Event> {
    events.map(|e: Event| e)
}

/// q0 as batch.
pub fn q0_batch(events: &[Event]) -> Vec<Event> {
    events.to_vec()
}

/// q1's conversion of a bid: its price in euro cents.
#[operator]
pub fn to_euros(b: Bid) -> Bid {
    Bid { price: b.price * 908 / 1_000, ..b }
}

/// q1: every bid, in euros.
pub fn q1(events: &Stream<Event>) -> Stream<Bid> {
    events.apply(bids()).apply(to_euros())
}

/// q1 as batch.
pub fn q1_batch(events: &[Event]) -> Vec<Bid> {
    events.iter().filter_map(|e| bids::call(e.clone())).map(to_euros::call).collect()
}

/// q2: (auction, price) of the bids on every 123rd auction.
pub fn q2(events: &Stream<Event>) -> Stream<(u64, u64)> {
    events.apply(bids()).filter(|b: &Bid| b.auction.is_multiple_of(123)).map(|b: Bid| (b.auction, b.price))
}

/// q2 as batch.
pub fn q2_batch(events: &[Event]) -> Vec<(u64, u64)> {
    events
        .iter()
        .filter_map(|e| bids::call(e.clone()))
        .filter(|b| b.auction.is_multiple_of(123))
        .map(|b| (b.auction, b.price))
        .collect()
}

/// q5: per window (its start), (auction, bids) of the hottest auction; a
/// rolling maximum per window, whose last value per window is the answer.
pub fn q5(events: &Stream<Event>) -> Stream<(i64, (u64, u64))> {
    let size = Duration::from_millis(Q5_SIZE_MS as u64);
    let slide = Duration::from_millis(Q5_SLIDE_MS as u64);
    events
        .apply(bids())
        .key_by(|b: &Bid| b.auction)
        .window(SlidingEventTimeWindows::of(size, slide))
        .count()
        .map(|(auction, w, n): (u64, TimeWindow, u64)| (w.start, (auction, n)))
        .key_by(|r: &(i64, (u64, u64))| r.0)
        .reduce(|a: (i64, (u64, u64)), b: (i64, (u64, u64))| if hotter(b.1, a.1) { b } else { a })
}

/// Whether `(auction, bids)` `a` is hotter than `b`: more bids, or as many
/// and a smaller auction id.
fn hotter(a: (u64, u64), b: (u64, u64)) -> bool {
    (a.1, std::cmp::Reverse(a.0)) > (b.1, std::cmp::Reverse(b.0))
}

/// q5 as batch: every window a bid falls in, counted per auction.
pub fn q5_batch(events: &[Event]) -> BTreeMap<i64, (u64, u64)> {
    let mut counts: BTreeMap<(i64, u64), u64> = BTreeMap::new();
    for b in events.iter().filter_map(|e| bids::call(e.clone())) {
        let last_start = b.date_time - b.date_time.rem_euclid(Q5_SLIDE_MS);
        let mut start = last_start;
        while start > b.date_time - Q5_SIZE_MS {
            *counts.entry((start, b.auction)).or_default() += 1;
            start -= Q5_SLIDE_MS;
        }
    }
    let mut best: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
    for ((start, auction), n) in counts {
        let e = best.entry(start).or_insert((auction, n));
        if hotter((auction, n), *e) {
            *e = (auction, n);
        }
    }
    best
}

/// The order of q7's bids: the higher price, then the smaller auction,
/// bidder and time.
fn higher(a: &Bid, b: &Bid) -> bool {
    use std::cmp::Reverse;
    (a.price, Reverse(a.auction), Reverse(a.bidder), Reverse(a.date_time))
        > (b.price, Reverse(b.auction), Reverse(b.bidder), Reverse(b.date_time))
}

/// q7: per tumbling window (its start), the highest bid: the highest per
/// auction and window, then a rolling maximum per window.
pub fn q7(events: &Stream<Event>) -> Stream<(i64, Bid)> {
    events
        .apply(bids())
        .key_by(|b: &Bid| b.auction)
        .window(TumblingEventTimeWindows::of(Duration::from_millis(Q7_SIZE_MS as u64)))
        .reduce_with(
            |a: Bid, b: Bid| if higher(&b, &a) { b } else { a },
            |_: &u64, w: &TimeWindow, b: Bid| (w.start, b),
        )
        .key_by(|r: &(i64, Bid)| r.0)
        .reduce(|a: (i64, Bid), b: (i64, Bid)| if higher(&b.1, &a.1) { b } else { a })
}

/// q7 as batch.
pub fn q7_batch(events: &[Event]) -> BTreeMap<i64, Bid> {
    let mut best: BTreeMap<i64, Bid> = BTreeMap::new();
    for b in events.iter().filter_map(|e| bids::call(e.clone())) {
        let start = b.date_time - b.date_time.rem_euclid(Q7_SIZE_MS);
        match best.get(&start) {
            Some(top) if !higher(&b, top) => {}
            _ => {
                best.insert(start, b);
            }
        }
    }
    best
}

/// q11: per bidder and session, `(bidder, start, end, bids)`.
pub fn q11(events: &Stream<Event>) -> Stream<(u64, i64, i64, u64)> {
    events
        .apply(bids())
        .key_by(|b: &Bid| b.bidder)
        .window(EventTimeSessionWindows::with_gap(Duration::from_millis(Q11_GAP_MS as u64)))
        .count()
        .map(|(bidder, w, n): (u64, TimeWindow, u64)| (bidder, w.start, w.end, n))
}

/// q11 as batch: each bidder's bid times in order, a new session wherever
/// the next bid comes `Q11_GAP_MS` or more after the session's end.
pub fn q11_batch(events: &[Event]) -> Vec<(u64, i64, i64, u64)> {
    let mut times: BTreeMap<u64, Vec<i64>> = BTreeMap::new();
    for b in events.iter().filter_map(|e| bids::call(e.clone())) {
        times.entry(b.bidder).or_default().push(b.date_time);
    }
    let mut sessions = Vec::new();
    for (bidder, mut ts) in times {
        ts.sort_unstable();
        let mut current: Option<(i64, i64, u64)> = None;
        for t in ts {
            current = match current {
                Some((start, end, n)) if t < end => Some((start, end.max(t + Q11_GAP_MS), n + 1)),
                Some((start, end, n)) => {
                    sessions.push((bidder, start, end, n));
                    Some((t, t + Q11_GAP_MS, 1))
                }
                None => Some((t, t + Q11_GAP_MS, 1)),
            };
        }
        sessions.extend(current.map(|(start, end, n)| (bidder, start, end, n)));
    }
    sessions
}

/// The last value per window of a rolling maximum's output.
pub fn final_per_window<T>(out: Vec<(i64, T)>) -> BTreeMap<i64, T> {
    out.into_iter().collect()
}
