//! The pipeline of the `hashtags` example ("why wall time is incorrect"):
//! a deterministic stream of tweets, a replay source that moves a
//! [`ManualClock`] as fast as the replay speed says, and hashtag counts per
//! 5-minute tumbling window in event time and in processing time.
//!
//! ```
//! use dataflow_examples::twitter::{event_time_counts, tweets};
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let tweets = tweets(200, 1);
//! let slow = event_time_counts(&tweets, 1.0).await.unwrap();
//! let fast = event_time_counts(&tweets, 1000.0).await.unwrap();
//! assert_eq!(slow, fast); // event time does not care how fast we replay
//! # });
//! ```

use crate::rng::Rng;
use async_trait::async_trait;
use dataflow_core::connectors::{Source, SourceContext, SourceStatus};
use dataflow_core::time::{Clock, ManualClock, WatermarkStrategy};
use dataflow_core::window::{
    ProcessingTimeTrigger, TimeWindow, Trigger, TumblingEventTimeWindows, TumblingProcessingTimeWindows, WindowAssigner,
};
use dataflow_core::{BoxError, Stream, StreamEnvironment};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The hashtags tweets use, most popular first.
pub const TAGS: [&str; 15] = [
    "#rust",
    "#streaming",
    "#flink",
    "#kafka",
    "#dataflow",
    "#tokio",
    "#async",
    "#cloud",
    "#devops",
    "#wasm",
    "#database",
    "#opensource",
    "#bigdata",
    "#ai",
    "#goal",
];
/// When the tweets start (event time): 2024-01-01 09:00 UTC, in ms.
pub const START_MS: i64 = 1_704_099_600_000;
/// How long the tweets go on (event time): one hour.
pub const SPAN_MS: i64 = 3_600_000;
/// A tweet arrives up to this much (exclusive) after it was written.
pub const MAX_DELAY_MS: i64 = 30_000;
/// The size of the tumbling windows: 5 minutes.
pub const WINDOW_MS: i64 = 300_000;
/// Records per source poll (and per channel batch): the clock moves between batches.
pub const BATCH: usize = 64;

/// One tweet: when it was written (event time), when it reached us, and its hashtags.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tweet {
    /// A sequence number, in event-time order.
    pub id: u64,
    /// When the tweet was written (ms since the epoch): its event time.
    pub ts: i64,
    /// When the tweet reached the system (ms since the epoch), at most
    /// [`MAX_DELAY_MS`] after `ts`.
    pub arrival: i64,
    /// Its 1 to 3 distinct hashtags.
    pub tags: Vec<String>,
}

/// Hashtag counts per window: `(tag, window start in ms, count)`, sorted.
pub type Counts = Vec<(String, i64, u64)>;

/// `n` tweets written over one hour from 09:00 (event time), in the order
/// they arrive: each arrives up to 30 s after it was written, so arrival
/// order is event-time order with bounded disorder. Tag popularity follows
/// a Zipf law (`#rust` most, `#goal` least) except from 09:35 to 09:40,
/// when half the tweets are about a `#goal`. The same `seed` gives the same
/// tweets.
pub fn tweets(n: usize, seed: u64) -> Vec<Tweet> {
    let mut rng = Rng(seed);
    let weights: Vec<f64> = (0..TAGS.len()).map(|i| 1.0 / (i + 1) as f64).collect();
    let total: f64 = weights.iter().sum();
    let pick = |rng: &mut Rng| {
        let mut x = rng.unit() * total;
        weights.iter().position(|w| {
            x -= w;
            x < 0.0
        })
    };
    let mut times: Vec<i64> = (0..n).map(|_| START_MS + rng.below(SPAN_MS as u64) as i64).collect();
    times.sort_unstable();
    let mut out: Vec<Tweet> = times
        .into_iter()
        .enumerate()
        .map(|(id, ts)| {
            let mut tags: Vec<String> = Vec::new();
            let goal_time = (35 * 60_000..40 * 60_000).contains(&(ts - START_MS));
            if goal_time && rng.below(2) == 0 {
                tags.push("#goal".into());
            }
            let want = 1 + rng.below(3) as usize;
            while tags.len() < want {
                let tag = TAGS[pick(&mut rng).unwrap_or(0)];
                if !tags.iter().any(|t| t == tag) {
                    tags.push(tag.into());
                }
            }
            let arrival = ts + rng.below(MAX_DELAY_MS as u64) as i64;
            Tweet { id: id as u64, ts, arrival, tags }
        })
        .collect();
    out.sort_by_key(|t| (t.arrival, t.id));
    out
}

/// `HH:MM` (UTC) of a time in ms since the epoch.
pub fn hhmm(ms: i64) -> String {
    let minutes = ms.div_euclid(60_000).rem_euclid(24 * 60);
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// How far the window operator of a processing-time job has got, in
/// hashtags: how many it assigned to windows, and how many its fired
/// windows counted.
#[derive(Clone)]
struct Progress {
    assigned: Arc<watch::Sender<u64>>,
    fired: Arc<watch::Sender<u64>>,
}

impl Default for Progress {
    fn default() -> Self {
        Self { assigned: Arc::new(watch::Sender::new(0)), fired: Arc::new(watch::Sender::new(0)) }
    }
}

/// Tumbling processing-time windows that report each hashtag they assign.
#[derive(Clone)]
struct ReportingWindows {
    windows: TumblingProcessingTimeWindows,
    progress: Progress,
}

impl WindowAssigner<String> for ReportingWindows {
    type W = TimeWindow;
    type DefaultTrigger = ProcessingTimeTrigger;

    fn assign(&self, value: &String, timestamp: i64, out: &mut Vec<TimeWindow>) {
        self.windows.assign(value, timestamp, out);
        self.progress.assigned.send_modify(|n| *n += 1);
    }

    fn is_event_time(&self) -> bool {
        false
    }
}

/// Replays tweets in arrival order, moving the job's [`ManualClock`] before
/// each tweet so that processing time passes `speed` times as fast as the
/// tweets arrived: at speed 1 the clock reads each tweet's arrival time.
struct Replay {
    tweets: Arc<[Tweet]>,
    next: usize,
    clock: Arc<ManualClock>,
    speed: f64,
    /// For a processing-time job: its progress, and how many hashtags were sent.
    paced: Option<(Progress, u64)>,
}

#[async_trait]
impl Source<Tweet> for Replay {
    async fn poll_batch(&mut self, ctx: &mut SourceContext<Tweet>) -> Result<SourceStatus, BoxError> {
        if let Some((progress, sent)) = &self.paced {
            // A replay in real time leaves the job time to keep up: wait
            // until the window operator has assigned every hashtag sent so
            // far before moving the clock on. Each hashtag then gets the
            // (scaled) arrival time of its batch as its processing time.
            let sent = *sent;
            progress.assigned.subscribe().wait_for(|n| *n >= sent).await?;
        }
        if self.next < self.tweets.len() {
            let first = self.tweets[0].arrival;
            let end = (self.next + BATCH.min(ctx.remaining())).min(self.tweets.len());
            for t in &self.tweets[self.next..end] {
                let due = first + ((t.arrival - first) as f64 / self.speed) as i64;
                self.clock.advance((due - self.clock.now_millis()).max(0));
                if let Some((_, sent)) = &mut self.paced {
                    *sent += t.tags.len() as u64;
                }
                ctx.collect(t.clone(), None);
            }
            self.next = end;
            return Ok(SourceStatus::More);
        }
        // Processing-time windows fire when the clock passes their end,
        // not at the end of input (as in Flink): let a day pass and wait
        // until every window fired, as a job that drains would.
        if let Some((progress, sent)) = &self.paced {
            let sent = *sent;
            self.clock.advance(24 * 3_600_000);
            progress.fired.subscribe().wait_for(|n| *n >= sent).await?;
        }
        Ok(SourceStatus::Finished)
    }
}

/// Counts each hashtag per window of `assigner`: `(tag, window start, count)`.
fn count_tags<A>(tweets: &Stream<Tweet>, assigner: A) -> Stream<(String, i64, u64)>
where
    A: WindowAssigner<String, W = TimeWindow>,
    A::DefaultTrigger: Trigger<String, TimeWindow>,
{
    tweets
        .flat_map(|t: Tweet| t.tags)
        .key_by(|tag: &String| tag.clone())
        .window(assigner)
        .count()
        .map(|(tag, w, n)| (tag, w.start, n))
}

/// Replays `tweets` at `speed` into a job built by `build` on a manual
/// clock starting at the first arrival, and returns the sorted counts.
async fn replay<F>(tweets: &[Tweet], speed: f64, paced: bool, build: F) -> Result<Counts, dataflow_core::Error>
where
    F: FnOnce(&Stream<Tweet>, &Progress) -> Stream<(String, i64, u64)>,
{
    assert!(speed > 0.0, "the replay speed must be positive");
    let tweets: Arc<[Tweet]> = tweets.into();
    let clock = Arc::new(ManualClock::new(tweets.first().map_or(0, |t| t.arrival)));
    let progress = Progress::default();
    let env = StreamEnvironment::new().with_parallelism(2).with_batch_size(BATCH).with_clock(clock.clone());
    let (c, p) = (clock.clone(), progress.clone());
    let source = env
        .add_source("replay", move |_| Replay {
            tweets: tweets.clone(),
            next: 0,
            clock: c.clone(),
            speed,
            paced: paced.then(|| (p.clone(), 0)),
        })
        .set_parallelism(1);
    let counts = build(&source, &progress).collect();
    env.execute().await?;
    let mut counts = counts.take();
    counts.sort();
    Ok(counts)
}

/// Hashtag counts per 5-minute **event-time** window of `tweets` replayed
/// at `speed`: watermarks allow for [`MAX_DELAY_MS`] of disorder, so no
/// tweet is late and the result is the same at every speed.
///
/// Panics if `speed` is not positive.
pub async fn event_time_counts(tweets: &[Tweet], speed: f64) -> Result<Counts, dataflow_core::Error> {
    replay(tweets, speed, false, |source, _| {
        let bound = Duration::from_millis(MAX_DELAY_MS as u64);
        let stamped = source
            .assign_timestamps_and_watermarks(
                WatermarkStrategy::for_bounded_out_of_orderness(bound).with_timestamp_assigner(|t: &Tweet, _| t.ts),
            )
            .set_parallelism(1);
        count_tags(&stamped, TumblingEventTimeWindows::of(Duration::from_millis(WINDOW_MS as u64)))
    })
    .await
}

/// Hashtag counts per 5-minute **processing-time** window (of the replay
/// clock, read when a tweet reaches the window operator) of `tweets`
/// replayed at `speed`: the result depends on the speed. The replay waits
/// for the window operator to take in each batch before it moves the clock
/// on, which takes the scheduling of tasks out of the result (a free-running
/// replay would add that dependence, as a real job has it). Every hashtag is
/// counted exactly once: after the last tweet the clock moves on until all
/// windows fired.
///
/// Panics if `speed` is not positive.
pub async fn processing_time_counts(tweets: &[Tweet], speed: f64) -> Result<Counts, dataflow_core::Error> {
    replay(tweets, speed, true, |source, progress| {
        let windows = TumblingProcessingTimeWindows::of(Duration::from_millis(WINDOW_MS as u64));
        let fired = progress.fired.clone();
        count_tags(source, ReportingWindows { windows, progress: progress.clone() })
            .inspect(move |(_, _, n): &(String, i64, u64)| fired.send_modify(|f| *f += n))
    })
    .await
}
