//! Nexmark queries as dataflow jobs, each with the plain batch computation
//! of the same answer that the tests compare it with.
//!
//! * q0, pass-through: every event;
//! * q1, currency conversion: every bid, its price in euros (× 0.908);
//! * q2, selection: the bids on every 123rd auction;
//! * q4, average price per category: each auction's winning bid (the
//!   highest at or above the reserve, by the time it expires), averaged
//!   per category as a running (sum, count);
//! * q5, hot items: per 10 s window sliding every 2 s, the auction with the
//!   most bids (ties to the smaller id);
//! * q7, highest bid: per 10 s tumbling window, the highest bid (ties to
//!   the smaller auction, then bidder, then time);
//! * q3, local item suggestion: the auctions of category 10 opened by
//!   people from Oregon, Idaho or California (an incremental join of
//!   people and auctions on the seller, in keyed state);
//! * q8, monitor new users: the people who opened an auction in the same
//!   10 s tumbling window in which they registered (a windowed join);
//! * q11, user sessions: per bidder, sessions of bids less than 10 s
//!   apart, and how many bids each had;
//! * q12, processing-time windows: per bidder, its bids in each 10 s
//!   tumbling window of processing time (the job's clock when the bid
//!   reaches the window).
//!
//! The joins key the one stream of events by the person the event is
//! about (a person by its id, an auction by its seller), so both sides of
//! a key meet in one keyed state or window.
//!
//! Windowed queries report one result per window as the final value of a
//! rolling maximum per window; [`final_per_window`] takes it from a run's
//! output.

use super::model::{Auction, Bid, Event, Person};
use dataflow_core::operator::Context;
use dataflow_core::window::{
    EventTimeSessionWindows, SlidingEventTimeWindows, TimeWindow, TumblingEventTimeWindows,
    TumblingProcessingTimeWindows,
};
use dataflow_core::{Stream, ValueState, operator};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// q5's window size and slide, q7's window size (ms).
pub const Q5_SIZE_MS: i64 = 10_000;
/// q5's slide (ms).
pub const Q5_SLIDE_MS: i64 = 2_000;
/// q7's window size (ms).
pub const Q7_SIZE_MS: i64 = 10_000;
/// q8's window size (ms).
pub const Q8_SIZE_MS: i64 = 10_000;
/// q11's session gap (ms).
pub const Q11_GAP_MS: i64 = 10_000;
/// q12's window size (processing time, ms).
pub const Q12_SIZE_MS: i64 = 10_000;

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

/// q2's selection: `(auction, price)` of a bid on every 123rd auction, in
/// one pass over the events (no batch of bids in between).
#[operator]
pub fn q2_select(e: Event) -> Option<(u64, u64)> {
    match e {
        Event::Bid(b) if b.auction.is_multiple_of(123) => Some((b.auction, b.price)),
        _ => None,
    }
}

/// q2: (auction, price) of the bids on every 123rd auction.
pub fn q2(events: &Stream<Event>) -> Stream<(u64, u64)> {
    events.apply(q2_select())
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
        // Only the auction goes on: the windows count, the bid itself is
        // not needed (the projection Flink's SQL planner makes).
        .map(|b: Bid| b.auction)
        .key_by(|auction: &u64| *auction)
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

/// The person an event is about, for the joins: a person's id, an
/// auction's seller (bids: none).
fn person_of(e: &Event) -> u64 {
    match e {
        Event::Person(p) => p.id,
        Event::Auction(a) => a.seller,
        Event::Bid(b) => b.bidder,
    }
}

/// Whether q3 wants a person (from Oregon, Idaho or California).
fn q3_person(p: &Person) -> bool {
    matches!(p.state.as_str(), "OR" | "ID" | "CA")
}

/// Whether q3 wants an auction (category 10).
fn q3_auction(a: &Auction) -> bool {
    a.category == 10
}

/// q3's state per person: who they are once known, and their auctions
/// that came first.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Q3State {
    person: Option<(String, String, String)>,
    waiting: Vec<u64>,
}

/// q3's join: `(name, city, state, auction)` for each auction of a wanted
/// person, whichever of the two came first.
#[operator]
pub fn q3_join(e: Event, s: &mut ValueState<Q3State>) -> Vec<(String, String, String, u64)> {
    let state = s.get_or_insert_with(Q3State::default);
    match e {
        Event::Person(p) => {
            let who = (p.name, p.city, p.state);
            let out = state.waiting.drain(..).map(|a| (who.0.clone(), who.1.clone(), who.2.clone(), a)).collect();
            state.person = Some(who);
            out
        }
        Event::Auction(a) => match &state.person {
            Some((name, city, st)) => vec![(name.clone(), city.clone(), st.clone(), a.id)],
            None => {
                state.waiting.push(a.id);
                Vec::new()
            }
        },
        Event::Bid(_) => Vec::new(),
    }
}

/// q3: the auctions of category 10 by people from OR, ID or CA, with the
/// seller's name, city and state.
pub fn q3(events: &Stream<Event>) -> Stream<(String, String, String, u64)> {
    events
        .filter(|e: &Event| match e {
            Event::Person(p) => q3_person(p),
            Event::Auction(a) => q3_auction(a),
            Event::Bid(_) => false,
        })
        .key_by(person_of)
        .apply(q3_join())
}

/// q3 as batch.
pub fn q3_batch(events: &[Event]) -> Vec<(String, String, String, u64)> {
    let people: BTreeMap<u64, &Person> = (events.iter())
        .filter_map(|e| if let Event::Person(p) = e { Some(p) } else { None })
        .filter(|p| q3_person(p))
        .map(|p| (p.id, p))
        .collect();
    (events.iter())
        .filter_map(|e| if let Event::Auction(a) = e { Some(a) } else { None })
        .filter(|a| q3_auction(a))
        .filter_map(|a| people.get(&a.seller).map(|p| (p.name.clone(), p.city.clone(), p.state.clone(), a.id)))
        .collect()
}

/// q8: `(person, name, window start)` for each person who registered and
/// opened an auction in the same 10 s tumbling window.
pub fn q8(events: &Stream<Event>) -> Stream<(u64, String, i64)> {
    events
        .filter(|e: &Event| !matches!(e, Event::Bid(_)))
        .key_by(person_of)
        .window(TumblingEventTimeWindows::of(Duration::from_millis(Q8_SIZE_MS as u64)))
        .process(|id: &u64, w: &TimeWindow, es: &[Event]| {
            let name = es.iter().find_map(|e| if let Event::Person(p) = e { Some(p.name.clone()) } else { None });
            let sold = es.iter().any(|e| matches!(e, Event::Auction(_)));
            (*id, name.filter(|_| sold).unwrap_or_default(), w.start)
        })
        .filter(|r: &(u64, String, i64)| !r.1.is_empty())
}

/// q8 as batch.
pub fn q8_batch(events: &[Event]) -> Vec<(u64, String, i64)> {
    let window = |t: i64| t - t.rem_euclid(Q8_SIZE_MS);
    let mut sellers: std::collections::BTreeSet<(u64, i64)> = Default::default();
    for e in events {
        if let Event::Auction(a) = e {
            sellers.insert((a.seller, window(a.date_time)));
        }
    }
    (events.iter())
        .filter_map(|e| if let Event::Person(p) = e { Some(p) } else { None })
        .filter(|p| sellers.contains(&(p.id, window(p.date_time))))
        .map(|p| (p.id, p.name.clone(), window(p.date_time)))
        .collect()
}

/// The auction an event is about (people: none, they are filtered out).
fn auction_of(e: &Event) -> u64 {
    match e {
        Event::Auction(a) => a.id,
        Event::Bid(b) => b.auction,
        Event::Person(p) => p.id,
    }
}

/// q4's state per auction: the auction once known (category, reserve,
/// expires), the best valid bid so far, and bids that came before it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Q4State {
    auction: Option<(u64, u64, i64)>,
    best: Option<u64>,
    early: Vec<(u64, i64)>,
}

impl Q4State {
    fn offer(&mut self, price: u64, at: i64) {
        match self.auction {
            Some((_, reserve, expires)) if price >= reserve && at <= expires => {
                self.best = self.best.max(Some(price));
            }
            Some(_) => {}
            None => self.early.push((price, at)),
        }
    }
}

/// q4's first stage: collects an auction's bids; when it expires (a timer
/// at its end), emits `(category, winning price)` if a bid won.
#[operator(on_timer = q4_close)]
pub fn q4_winner(e: Event, s: &mut ValueState<Q4State>, ctx: &mut Context<(u64, u64)>) {
    let state = s.get_or_insert_with(Q4State::default);
    match e {
        Event::Auction(a) => {
            state.auction = Some((a.category, a.reserve, a.expires));
            for (price, at) in std::mem::take(&mut state.early) {
                state.offer(price, at);
            }
            ctx.register_event_time_timer(a.expires);
        }
        Event::Bid(b) => {
            if state.auction.is_none() {
                // A bid on an auction not seen (yet, or any more: it
                // closed): forgotten unless the auction comes soon.
                ctx.register_event_time_timer(b.date_time + Q4_EARLY_MS);
            }
            state.offer(b.price, b.date_time)
        }
        Event::Person(_) => {}
    }
}

/// How long (event time, ms) bids on an auction not seen are kept.
pub const Q4_EARLY_MS: i64 = 10_000;

/// The auction closed (its winning bid, if any, is emitted and its state
/// goes), or bids on an auction not seen are forgotten.
fn q4_close(at: i64, s: &mut ValueState<Q4State>, ctx: &mut Context<(u64, u64)>) {
    if s.value().and_then(|st| st.auction).is_some_and(|(_, _, expires)| at < expires) {
        return; // an early bid's timer; the auction is still open
    }
    if let Some(Q4State { auction: Some((category, ..)), best: Some(price), .. }) = s.take() {
        ctx.emit((category, price));
    }
}

/// q4: per category, a running (sum, count) of winning prices; its last
/// value per category is the answer (the average is sum / count).
pub fn q4(events: &Stream<Event>) -> Stream<(u64, (u64, u64))> {
    events
        .filter(|e: &Event| !matches!(e, Event::Person(_)))
        .key_by(auction_of)
        .apply(q4_winner())
        .map(|(category, price): (u64, u64)| (category, (price, 1u64)))
        .key_by(|r: &(u64, (u64, u64))| r.0)
        .reduce(|a: (u64, (u64, u64)), b: (u64, (u64, u64))| (a.0, (a.1.0 + b.1.0, a.1.1 + b.1.1)))
}

/// q4 as batch: per category, the (sum, count) of the winning prices.
pub fn q4_batch(events: &[Event]) -> BTreeMap<u64, (u64, u64)> {
    let mut best: BTreeMap<u64, u64> = BTreeMap::new();
    let auctions: Vec<&Auction> =
        events.iter().filter_map(|e| if let Event::Auction(a) = e { Some(a) } else { None }).collect();
    let terms: BTreeMap<u64, &Auction> = auctions.iter().map(|a| (a.id, *a)).collect();
    for b in events.iter().filter_map(|e| bids::call(e.clone())) {
        if let Some(a) = terms.get(&b.auction).filter(|a| b.price >= a.reserve && b.date_time <= a.expires) {
            let e = best.entry(a.id).or_default();
            *e = (*e).max(b.price);
        }
    }
    let mut per_category: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for (id, price) in best {
        let e = per_category.entry(terms[&id].category).or_default();
        *e = (e.0 + price, e.1 + 1);
    }
    per_category
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

/// q12: per bidder and 10 s window of processing time, `(bidder, start,
/// end, bids)`. A window fires when the job's clock passes its end; like
/// Flink, a job that ends first drops the windows still open (see
/// `docs/nexmark.md`).
pub fn q12(events: &Stream<Event>) -> Stream<(u64, i64, i64, u64)> {
    events
        .apply(bids())
        .key_by(|b: &Bid| b.bidder)
        .window(TumblingProcessingTimeWindows::of(Duration::from_millis(Q12_SIZE_MS as u64)))
        .count()
        .map(|(bidder, w, n): (u64, TimeWindow, u64)| (bidder, w.start, w.end, n))
}

/// q12 as batch, given the processing time at which each event reached the
/// query: per bidder, its bids counted in the 10 s window of that time.
pub fn q12_batch<'a>(arrivals: impl IntoIterator<Item = (i64, &'a Event)>) -> Vec<(u64, i64, i64, u64)> {
    let mut counts: BTreeMap<(u64, i64), u64> = BTreeMap::new();
    for (now, e) in arrivals {
        if let Event::Bid(b) = e {
            *counts.entry((b.bidder, now - now.rem_euclid(Q12_SIZE_MS))).or_default() += 1;
        }
    }
    counts.into_iter().map(|((bidder, start), n)| (bidder, start, start + Q12_SIZE_MS, n)).collect()
}

/// The last value per window of a rolling maximum's output.
pub fn final_per_window<T>(out: Vec<(i64, T)>) -> BTreeMap<i64, T> {
    out.into_iter().collect()
}
