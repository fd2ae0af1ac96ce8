//! A deterministic Nexmark event generator, after the generator of Beam's
//! and Flink's Nexmark suites.
//!
//! Event `n` is made from `n` and the seed alone, so any subset of events
//! can be made anywhere, in any order: the source reads split `s` of `k` as
//! the events `n ≡ s (mod k)`, and replaying a split from an offset makes
//! the same events again.
//!
//! What follows the specification:
//! * of every 50 events, 1 is a person, 3 are auctions and 46 are bids;
//! * ids count up from 1000 (people, auctions) in event order; a bid goes
//!   to a "hot" auction (one of the latest, id a multiple of 2) with
//!   probability 1/2, else to one of the last 100 auctions (or the next 10
//!   yet to come); a bidder is hot (a multiple of 4, + 1) with probability
//!   3/4, else one of the last 1000 people (or the next 10); a seller
//!   likewise with probability 3/4;
//! * prices are `10^(6u) × 100` cents for uniform `u`, so most are small
//!   and a few are large; categories are 10–14;
//! * event time advances by `1000 / rate` ms per event (10 000 events/s by
//!   default).
//!
//! What differs: names, cities and strings come from short fixed lists;
//! Beam's `extra` padding is left out; an auction lasts 1–20 s; and a
//! configurable bounded disorder moves each event's time back by up to
//! `disorder_ms` (so watermarks with that bound are never passed).

use super::model::{Auction, Bid, Event, Person};
use crate::rng::Rng;

/// The first person id.
pub const FIRST_PERSON_ID: u64 = 1_000;
/// The first auction id.
pub const FIRST_AUCTION_ID: u64 = 1_000;
/// The first category id.
pub const FIRST_CATEGORY_ID: u64 = 10;
const CATEGORIES: u64 = 5;
const PERSON_PROPORTION: u64 = 1;
const AUCTION_PROPORTION: u64 = 3;
const TOTAL_PROPORTION: u64 = 50;
const HOT_AUCTION_RATIO: u64 = 2;
const HOT_BIDDER_RATIO: u64 = 4;
const HOT_SELLER_RATIO: u64 = 4;
const ACTIVE_PEOPLE: u64 = 1_000;
const IN_FLIGHT_AUCTIONS: u64 = 100;
const PERSON_ID_LEAD: u64 = 10;
const AUCTION_ID_LEAD: u64 = 10;

const FIRST_NAMES: [&str; 11] =
    ["Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter"];
const LAST_NAMES: [&str; 9] = ["Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris"];
const CITIES: [&str; 10] =
    ["Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland", "Bend", "Redmond", "Seattle", "Kent", "Cheyenne"];
const STATES: [&str; 6] = ["AZ", "CA", "ID", "OR", "WA", "WY"];
const CHANNELS: [&str; 4] = ["Google", "Facebook", "Baidu", "Apple"];

/// What to generate.
///
/// ```
/// use dataflow_examples::nexmark::generator::{NexmarkConfig, event};
/// let c = NexmarkConfig::new(1_000);
/// assert_eq!(event(&c, 7), event(&c, 7)); // deterministic
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NexmarkConfig {
    /// How many events.
    pub events: u64,
    /// The seed (the same seed makes the same events).
    pub seed: u64,
    /// Events per second of event time.
    pub rate: u64,
    /// How far (ms) an event's time may be moved back: the bound of the
    /// watermarks.
    pub disorder_ms: i64,
    /// The time of event 0 (ms).
    pub base_time: i64,
}

impl NexmarkConfig {
    /// `events` events, seed 0, 10 000 per second, 100 ms of disorder.
    pub fn new(events: u64) -> Self {
        Self { events, seed: 0, rate: 10_000, disorder_ms: 100, base_time: 1_700_000_000_000 }
    }
}

/// The generator of event `n`.
fn rng(seed: u64, n: u64) -> Rng {
    Rng(seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

fn pick<'a>(rng: &mut Rng, from: &[&'a str]) -> &'a str {
    from[rng.below(from.len() as u64) as usize]
}

/// The id (from 0) of the last person made at or before event `n`.
fn last_base0_person(n: u64) -> u64 {
    // The epoch's people come first: past them, the epoch's last one.
    // (With one person per epoch the offset is always 0.)
    #[allow(clippy::unnecessary_min_or_max)]
    let offset = (n % TOTAL_PROPORTION).min(PERSON_PROPORTION - 1);
    n / TOTAL_PROPORTION * PERSON_PROPORTION + offset
}

/// The id (from 0) of the last auction made at or before event `n`.
fn last_base0_auction(n: u64) -> u64 {
    let (mut epoch, mut offset) = (n / TOTAL_PROPORTION, n % TOTAL_PROPORTION);
    if offset < PERSON_PROPORTION {
        // Before this epoch's first auction: the previous epoch's last.
        if epoch == 0 {
            return 0;
        }
        epoch -= 1;
        offset = AUCTION_PROPORTION - 1;
    } else if offset >= PERSON_PROPORTION + AUCTION_PROPORTION {
        offset = AUCTION_PROPORTION - 1;
    } else {
        offset -= PERSON_PROPORTION;
    }
    epoch * AUCTION_PROPORTION + offset
}

/// A recent (or soon to come) person, from 0.
fn next_base0_person(n: u64, rng: &mut Rng) -> u64 {
    let people = last_base0_person(n) + 1;
    let active = people.min(ACTIVE_PEOPLE);
    people - active + rng.below(active + PERSON_ID_LEAD)
}

/// A recent (or soon to come) auction, from 0.
fn next_base0_auction(n: u64, rng: &mut Rng) -> u64 {
    let last = last_base0_auction(n);
    let first = last.saturating_sub(IN_FLIGHT_AUCTIONS);
    first + rng.below(last - first + 1 + AUCTION_ID_LEAD)
}

fn price(rng: &mut Rng) -> u64 {
    (10f64.powf(rng.unit() * 6.0) * 100.0).round() as u64
}

/// Event `n` of `config`.
pub fn event(config: &NexmarkConfig, n: u64) -> Event {
    let mut rng = rng(config.seed, n);
    let jitter = if config.disorder_ms > 0 { rng.below(config.disorder_ms as u64 + 1) as i64 } else { 0 };
    let date_time = config.base_time + (n * 1_000 / config.rate.max(1)) as i64 - jitter;
    let kind = n % TOTAL_PROPORTION;
    if kind < PERSON_PROPORTION {
        let (first, last) = (pick(&mut rng, &FIRST_NAMES), pick(&mut rng, &LAST_NAMES));
        let id = last_base0_person(n) + FIRST_PERSON_ID;
        Event::Person(Person {
            id,
            name: format!("{first} {last}"),
            email: format!("{}@{}.com", first.to_lowercase(), last.to_lowercase()),
            credit_card: format!(
                "{:04} {:04} {:04} {:04}",
                rng.below(10_000),
                rng.below(10_000),
                id % 10_000,
                n % 10_000
            ),
            city: pick(&mut rng, &CITIES).to_string(),
            state: pick(&mut rng, &STATES).to_string(),
            date_time,
        })
    } else if kind < PERSON_PROPORTION + AUCTION_PROPORTION {
        let seller = match rng.below(HOT_SELLER_RATIO) {
            0 => next_base0_person(n, &mut rng),
            _ => last_base0_person(n) / HOT_SELLER_RATIO * HOT_SELLER_RATIO,
        };
        let initial_bid = price(&mut rng);
        let id = last_base0_auction(n) + FIRST_AUCTION_ID;
        Event::Auction(Auction {
            id,
            item_name: format!("item-{}", rng.below(10_000)),
            description: format!("description of item {id}"),
            initial_bid,
            reserve: initial_bid + price(&mut rng),
            date_time,
            expires: date_time + 1_000 * (1 + rng.below(20) as i64),
            seller: seller + FIRST_PERSON_ID,
            category: FIRST_CATEGORY_ID + rng.below(CATEGORIES),
        })
    } else {
        let auction = match rng.below(HOT_AUCTION_RATIO) {
            0 => next_base0_auction(n, &mut rng),
            _ => last_base0_auction(n) / HOT_AUCTION_RATIO * HOT_AUCTION_RATIO,
        };
        let bidder = match rng.below(HOT_BIDDER_RATIO) {
            0 => next_base0_person(n, &mut rng),
            _ => last_base0_person(n) / HOT_BIDDER_RATIO * HOT_BIDDER_RATIO + 1,
        };
        let channel = pick(&mut rng, &CHANNELS);
        Event::Bid(Bid {
            auction: auction + FIRST_AUCTION_ID,
            bidder: bidder + FIRST_PERSON_ID,
            price: price(&mut rng),
            channel: channel.to_string(),
            url: format!("https://www.nexmark.com/{}/item.htm?query=1", channel.to_lowercase()),
            date_time,
        })
    }
}

/// Every event of `config`, in order.
pub fn events(config: &NexmarkConfig) -> impl Iterator<Item = Event> + '_ {
    (0..config.events).map(|n| event(config, n))
}

/// The events of split `split` of `splits`: `n ≡ split (mod splits)`.
pub fn split(config: NexmarkConfig, split: usize, splits: usize) -> impl Iterator<Item = Event> + Send {
    (split as u64..config.events).step_by(splits.max(1)).map(move |n| event(&config, n))
}

/// Writes every event of `config` to `path` as CSV lines ([`Event::to_csv`]).
pub fn write_csv(config: &NexmarkConfig, path: &std::path::Path) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for e in events(config) {
        writeln!(out, "{}", e.to_csv())?;
    }
    out.flush()
}
