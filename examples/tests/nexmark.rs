//! Every Nexmark query (q0, q1, q2, q3, q4, q5, q7, q8, q11; q12 is in `nexmark_q12.rs`), run over a fixed small generated
//! input at parallelism 1 and 2 (4 splits), equals a plain batch
//! computation of the same query over the same events; and the generator
//! keeps the specification's proportions and is deterministic.

use dataflow_core::StreamEnvironment;
use dataflow_examples::nexmark::generator::{self, NexmarkConfig};
use dataflow_examples::nexmark::model::Event;
use dataflow_examples::nexmark::queries::{self, final_per_window};
use dataflow_examples::nexmark::source;

fn config() -> NexmarkConfig {
    // 1 000 events a second: 40 s of event time, several windows.
    NexmarkConfig { seed: 7, rate: 1_000, ..NexmarkConfig::new(40_000) }
}

fn events() -> Vec<Event> {
    generator::events(&config()).collect()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Runs `query` at parallelism `p` and returns its output.
fn run<T: dataflow_core::Data>(
    p: usize,
    query: impl Fn(&dataflow_core::Stream<Event>) -> dataflow_core::Stream<T>,
) -> Vec<T> {
    let env = StreamEnvironment::new().with_parallelism(p);
    let out = query(&source(&env, &config(), 4)).collect();
    rt().block_on(env.execute()).unwrap();
    out.take()
}

#[test]
fn the_generator_follows_the_proportions_and_is_deterministic() {
    let e = events();
    assert_eq!(e, events());
    let persons = e.iter().filter(|e| matches!(e, Event::Person(_))).count();
    let auctions = e.iter().filter(|e| matches!(e, Event::Auction(_))).count();
    assert_eq!((persons, auctions, e.len() - persons - auctions), (800, 2_400, 36_800));
    // Every bid goes to an auction and a bidder that exist or come soon.
    let last_auction =
        e.iter().filter_map(|e| if let Event::Auction(a) = e { Some(a.id) } else { None }).max().unwrap();
    assert!(e.iter().all(|e| !matches!(e, Event::Bid(b) if b.auction > last_auction + 10)));
    // Hot auctions: half the bids go to even (latest) auctions.
    let bids: Vec<_> = e.iter().filter_map(|e| if let Event::Bid(b) = e { Some(b) } else { None }).collect();
    let even = bids.iter().filter(|b| b.auction % 2 == 0).count() as f64 / bids.len() as f64;
    assert!((0.65..0.85).contains(&even), "{even}");
    // Disorder is bounded by the configured 100 ms.
    let mut newest = i64::MIN;
    for e in &e {
        assert!(e.date_time() >= newest.saturating_sub(config().disorder_ms));
        newest = newest.max(e.date_time());
    }
    assert_ne!(generator::events(&NexmarkConfig { seed: 8, ..config() }).collect::<Vec<_>>(), e);
}

#[test]
fn q0_passes_every_event() {
    for p in [1, 2] {
        let mut got = run(p, queries::q0);
        got.sort_by_key(|e| format!("{e:?}"));
        let mut want = queries::q0_batch(&events());
        want.sort_by_key(|e| format!("{e:?}"));
        assert_eq!(got, want, "p={p}");
    }
}

#[test]
fn q1_converts_every_bid() {
    for p in [1, 2] {
        let key = |b: &dataflow_examples::nexmark::model::Bid| (b.date_time, b.auction, b.bidder, b.price);
        let mut got = run(p, queries::q1);
        got.sort_by_key(key);
        let mut want = queries::q1_batch(&events());
        want.sort_by_key(key);
        assert_eq!(got, want, "p={p}");
    }
}

#[test]
fn q2_selects_the_same_bids() {
    for p in [1, 2] {
        let mut got = run(p, queries::q2);
        got.sort();
        let mut want = queries::q2_batch(&events());
        want.sort();
        assert!(!want.is_empty());
        assert_eq!(got, want, "p={p}");
    }
}

#[test]
fn q5_finds_the_hot_items() {
    for p in [1, 2] {
        let got = final_per_window(run(p, queries::q5));
        let want = queries::q5_batch(&events());
        assert!(want.len() > 2, "windows: {}", want.len());
        assert_eq!(got, want, "p={p}");
    }
}

#[test]
fn q7_finds_the_highest_bids() {
    for p in [1, 2] {
        let got = final_per_window(run(p, queries::q7));
        let want = queries::q7_batch(&events());
        assert!(want.len() > 2, "windows: {}", want.len());
        assert_eq!(got, want, "p={p}");
    }
}

#[test]
fn q11_finds_the_sessions() {
    let mut want = queries::q11_batch(&events());
    want.sort();
    assert!(want.iter().any(|s| s.3 > 1) && want.len() > 100, "{} sessions", want.len());
    for p in [1, 2] {
        let mut got = run(p, queries::q11);
        got.sort();
        assert_eq!(got, want, "p={p}");
    }
}

#[test]
fn q3_joins_people_and_their_auctions() {
    let mut want = queries::q3_batch(&events());
    want.sort();
    assert!(want.len() > 10, "{} matches", want.len());
    for p in [1, 2] {
        let mut got = run(p, queries::q3);
        got.sort();
        assert_eq!(got, want, "p={p}");
    }
}

#[test]
fn q8_finds_new_users_who_sell() {
    let mut want = queries::q8_batch(&events());
    want.sort();
    assert!(want.len() > 10, "{} new sellers", want.len());
    for p in [1, 2] {
        let mut got = run(p, queries::q8);
        got.sort();
        assert_eq!(got, want, "p={p}");
    }
}

#[test]
fn q4_averages_the_winning_prices_per_category() {
    let want = queries::q4_batch(&events());
    assert!(want.len() == 5 && want.values().all(|(_, n)| *n > 10), "{want:?}");
    for p in [1, 2] {
        // The running (sum, count) per category: its last value.
        let got: std::collections::BTreeMap<u64, (u64, u64)> = run(p, queries::q4).into_iter().collect();
        assert_eq!(got, want, "p={p}");
    }
}
