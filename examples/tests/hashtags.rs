//! The `hashtags` example's pipeline: event-time counts do not depend on
//! the replay speed and equal a plain batch computation; processing-time
//! counts do depend on it.

use dataflow_examples::twitter::{
    Counts, MAX_DELAY_MS, Tweet, WINDOW_MS, event_time_counts, processing_time_counts, tweets,
};
use std::collections::BTreeMap;

/// The counts computed without a stream: group by (tag, window start).
fn batch_counts(tweets: &[Tweet]) -> Counts {
    let mut counts: BTreeMap<(String, i64), u64> = BTreeMap::new();
    for t in tweets {
        for tag in &t.tags {
            *counts.entry((tag.clone(), t.ts - t.ts.rem_euclid(WINDOW_MS))).or_default() += 1;
        }
    }
    counts.into_iter().map(|((tag, start), n)| (tag, start, n)).collect()
}

fn total(counts: &Counts) -> u64 {
    counts.iter().map(|c| c.2).sum()
}

#[test]
fn tweets_are_deterministic_and_boundedly_out_of_order() {
    let a = tweets(2_000, 3);
    assert_eq!(a, tweets(2_000, 3));
    assert_ne!(a, tweets(2_000, 4));
    assert!(a.iter().all(|t| (1..=3).contains(&t.tags.len()) && (0..MAX_DELAY_MS).contains(&(t.arrival - t.ts))));
    assert!(a.windows(2).all(|p| p[0].arrival <= p[1].arrival), "in arrival order");
    assert!(a.windows(2).any(|p| p[1].ts < p[0].ts), "out of order in event time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_time_counts_do_not_depend_on_the_replay_speed() {
    let tweets = tweets(20_000, 42);
    let slow = event_time_counts(&tweets, 1.0).await.unwrap();
    let fast = event_time_counts(&tweets, 1000.0).await.unwrap();
    assert_eq!(slow, fast);
    assert_eq!(slow, batch_counts(&tweets));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processing_time_counts_depend_on_the_replay_speed() {
    let tweets = tweets(20_000, 42);
    let hashtags: u64 = tweets.iter().map(|t| t.tags.len() as u64).sum();
    let slow = processing_time_counts(&tweets, 1.0).await.unwrap();
    let fast = processing_time_counts(&tweets, 1000.0).await.unwrap();
    assert_ne!(slow, fast);
    // Every window fired, whatever the timing: each hashtag counted once.
    assert_eq!(total(&slow), hashtags);
    assert_eq!(total(&fast), hashtags);
}
