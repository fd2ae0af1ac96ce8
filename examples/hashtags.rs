//! Hashtags: why wall time is incorrect.
//!
//! The classic Twitter example of event time. 20 000 tweets, written
//! between 09:00 and 10:00, carry 1 to 3 hashtags each (a few popular
//! ones, many rare ones, and a burst of `#goal` at 09:35). They reach the
//! system up to 30 s after they were written, so they arrive out of order.
//! We count every hashtag per 5-minute tumbling window, twice:
//!
//! * in **event time**, by when each tweet was written (watermarks allow
//!   30 s of disorder);
//! * in **processing time**, by the clock when the tweet reaches the
//!   window operator: "wall time".
//!
//! And we run both as a replay of the recorded stream at two speeds: in
//! real time (1x, the hour takes an hour of processing time) and 60 times
//! faster (the hour takes a minute), as when a job catches up on a backlog
//! or reprocesses yesterday's data. The replay moves a manual clock, so
//! nothing sleeps and the example runs in a moment.
//!
//! Event-time results are the same at both speeds, and they are the right
//! answer: how often each hashtag was used in each 5 minutes. Processing-time
//! results depend on how fast the data happened to flow: at 60x everything
//! lands in one window and the `#goal` burst disappears. Even at 1x they
//! are off, since tweets written just before a window ends arrive after it.
//! (In a live job they would also depend on load and scheduling; the replay
//! here waits for the job to keep up, so they depend on the speed alone.)
//!
//! ```text
//! cargo run --release --example hashtags
//! ```
//!
//! The pipeline lives in `dataflow_examples::twitter`, where the test
//! `tests/hashtags.rs` runs it too.

use dataflow_examples::twitter::{Counts, WINDOW_MS, event_time_counts, hhmm, processing_time_counts, tweets};
use std::collections::{BTreeMap, BTreeSet};

/// How many tweets to replay.
const TWEETS: usize = 20_000;
/// The seed of the tweet generator.
const SEED: u64 = 42;
/// The replay speeds to compare: real time, and an hour a minute.
const SPEEDS: [f64; 2] = [1.0, 60.0];

/// Prints a grid of counts: a row per label, a column per window start.
fn grid(rows: &[(String, BTreeMap<i64, u64>)]) {
    let windows: BTreeSet<i64> = rows.iter().flat_map(|(_, by_window)| by_window.keys().copied()).collect();
    print!("{:<12}", "");
    for w in &windows {
        print!("{:>6}", hhmm(*w));
    }
    println!("{:>7}", "total");
    for (label, by_window) in rows {
        print!("{label:<12}");
        for w in &windows {
            match by_window.get(w) {
                Some(n) => print!("{n:>6}"),
                None => print!("{:>6}", "."),
            }
        }
        println!("{:>7}", by_window.values().sum::<u64>());
    }
}

/// Rows of a tag × window grid, most used tag first, and a total row.
fn by_tag(counts: &Counts) -> Vec<(String, BTreeMap<i64, u64>)> {
    let mut tags: BTreeMap<&str, BTreeMap<i64, u64>> = BTreeMap::new();
    let mut total: BTreeMap<i64, u64> = BTreeMap::new();
    for (tag, start, n) in counts {
        *tags.entry(tag).or_default().entry(*start).or_default() += n;
        *total.entry(*start).or_default() += n;
    }
    let mut rows: Vec<(String, BTreeMap<i64, u64>)> =
        tags.into_iter().map(|(tag, by_window)| (tag.to_string(), by_window)).collect();
    rows.sort_by_key(|(tag, by_window)| (std::cmp::Reverse(by_window.values().sum::<u64>()), tag.clone()));
    rows.push(("all tags".into(), total));
    rows
}

/// A row of the total count per window.
fn totals(label: String, counts: &Counts) -> (String, BTreeMap<i64, u64>) {
    let mut total: BTreeMap<i64, u64> = BTreeMap::new();
    for (_, start, n) in counts {
        *total.entry(*start).or_default() += n;
    }
    (label, total)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into())).init();
    let started = std::time::Instant::now();
    let tweets = tweets(TWEETS, SEED);
    let hashtags: usize = tweets.iter().map(|t| t.tags.len()).sum();
    let disorder = tweets.windows(2).filter(|p| p[1].ts < p[0].ts).count();
    println!(
        "{} tweets with {hashtags} hashtags, written {} to {}, arriving up to 30 s late \
         ({disorder} arrive before an earlier-written one).\n",
        tweets.len(),
        hhmm(tweets.iter().map(|t| t.ts).min().unwrap_or(0)),
        hhmm(tweets.iter().map(|t| t.ts).max().unwrap_or(0)),
    );

    let mut event = Vec::new();
    let mut processing = Vec::new();
    for speed in SPEEDS {
        event.push(event_time_counts(&tweets, speed).await?);
        processing.push(processing_time_counts(&tweets, speed).await?);
    }

    println!(
        "Event time: hashtags per {}-minute window of when the tweets were written (replay at {}x):",
        WINDOW_MS / 60_000,
        SPEEDS[0]
    );
    grid(&by_tag(&event[0]));

    println!(
        "\nProcessing time (wall time): hashtags per {}-minute window of the clock at the window operator\n\
         (event time for reference):",
        WINDOW_MS / 60_000
    );
    let goal = |c: &Counts| c.iter().filter(|e| e.0 == "#goal").cloned().collect::<Counts>();
    let mut rows = vec![totals("event time".into(), &event[0])];
    rows.extend(SPEEDS.iter().zip(&processing).map(|(s, c)| totals(format!("wall {s}x"), c)));
    rows.push(totals("#goal event".into(), &goal(&event[0])));
    rows.extend(SPEEDS.iter().zip(&processing).map(|(s, c)| totals(format!("#goal {s}x"), &goal(c))));
    grid(&rows);

    let event_same = event.windows(2).all(|p| p[0] == p[1]);
    let processing_same = processing.windows(2).all(|p| p[0] == p[1]);
    println!(
        "\nEvent time at {}x and {}x: {} ({} counts).",
        SPEEDS[0],
        SPEEDS[1],
        if event_same { "identical" } else { "DIFFERENT (a bug!)" },
        event[0].len()
    );
    println!(
        "Processing time at {}x and {}x: {}.",
        SPEEDS[0],
        SPEEDS[1],
        if processing_same { "identical (unexpected)" } else { "different: wall time depends on the replay speed" }
    );
    let wrong = event[0].iter().filter(|e| !processing[0].contains(e)).count();
    println!(
        "Even at {}x, wall time gets {wrong} of the {} (tag, window) counts wrong: \
         a tweet written just before a window ends can arrive after it.",
        SPEEDS[0],
        event[0].len()
    );
    println!("\n(4 jobs in {:.2?})", started.elapsed());
    if !event_same {
        return Err("event-time results differ between replay speeds".into());
    }
    Ok(())
}
