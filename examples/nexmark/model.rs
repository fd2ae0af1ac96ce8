//! Nexmark's three kinds of events: people who register, the auctions they
//! open and the bids on them (the fields of the Nexmark specification; the
//! `extra` padding of Beam's generator is left out).

use serde::{Deserialize, Serialize};

/// A person registering with the auction site.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    /// The person's id (from [`FIRST_PERSON_ID`](super::generator::FIRST_PERSON_ID) on).
    pub id: u64,
    /// First and last name.
    pub name: String,
    /// Email address.
    pub email: String,
    /// Credit card number.
    pub credit_card: String,
    /// City.
    pub city: String,
    /// US state.
    pub state: String,
    /// Event time (ms).
    pub date_time: i64,
}

/// An auction opened by a seller.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Auction {
    /// The auction's id (from [`FIRST_AUCTION_ID`](super::generator::FIRST_AUCTION_ID) on).
    pub id: u64,
    /// The item's name.
    pub item_name: String,
    /// Its description.
    pub description: String,
    /// The opening bid (cents).
    pub initial_bid: u64,
    /// The reserve price (cents).
    pub reserve: u64,
    /// Event time (ms).
    pub date_time: i64,
    /// When the auction closes (ms).
    pub expires: i64,
    /// The seller (a person's id).
    pub seller: u64,
    /// The category (from [`FIRST_CATEGORY_ID`](super::generator::FIRST_CATEGORY_ID) on).
    pub category: u64,
}

/// A bid on an auction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bid {
    /// The auction bid on.
    pub auction: u64,
    /// The bidder (a person's id).
    pub bidder: u64,
    /// The price (cents).
    pub price: u64,
    /// Where the bid came from.
    pub channel: String,
    /// The page it was made on.
    pub url: String,
    /// Event time (ms).
    pub date_time: i64,
}

/// One Nexmark event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// A new person.
    Person(Person),
    /// A new auction.
    Auction(Auction),
    /// A bid.
    Bid(Bid),
}

impl Event {
    /// The event's time (ms).
    pub fn date_time(&self) -> i64 {
        match self {
            Event::Person(p) => p.date_time,
            Event::Auction(a) => a.date_time,
            Event::Bid(b) => b.date_time,
        }
    }

    /// The event as one CSV line: its kind, then its fields in order (so
    /// other engines can read the identical input).
    pub fn to_csv(&self) -> String {
        match self {
            Event::Person(p) => format!(
                "person,{},{},{},{},{},{},{}",
                p.id, p.name, p.email, p.credit_card, p.city, p.state, p.date_time
            ),
            Event::Auction(a) => format!(
                "auction,{},{},{},{},{},{},{},{},{}",
                a.id,
                a.item_name,
                a.description,
                a.initial_bid,
                a.reserve,
                a.date_time,
                a.expires,
                a.seller,
                a.category
            ),
            Event::Bid(b) => {
                format!("bid,{},{},{},{},{},{}", b.auction, b.bidder, b.price, b.channel, b.url, b.date_time)
            }
        }
    }
}
