//! Nexmark, the auction benchmark that Flink, Beam, Arroyo and RisingWave
//! publish: a generator of people, auctions and bids ([`generator`]), and
//! the queries as dataflow jobs with their batch computations
//! ([`queries`]). `cargo run --release --example nexmark -- --help` runs
//! them.
//!
//! ```
//! use dataflow_examples::nexmark::{generator::NexmarkConfig, queries, source};
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let config = NexmarkConfig::new(5_000);
//! let env = dataflow_core::StreamEnvironment::new().with_parallelism(2);
//! let out = queries::q2(&source(&env, &config, 4)).collect();
//! env.execute().await.unwrap();
//! let events: Vec<_> = dataflow_examples::nexmark::generator::events(&config).collect();
//! let (mut got, mut want) = (out.take(), queries::q2_batch(&events));
//! got.sort();
//! want.sort();
//! assert_eq!(got, want);
//! # });
//! ```

pub mod generator;
pub mod model;
pub mod queries;

use dataflow_core::connectors::SPLIT_TURN;
use dataflow_core::time::WatermarkStrategy;
use dataflow_core::{Stream, StreamEnvironment};
use generator::NexmarkConfig;
use model::Event;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The events of `config` as a replayable source of `splits` splits, with
/// event time and watermarks bounded by the configured disorder (plus the
/// skew of reading the splits in turns).
pub fn source(env: &StreamEnvironment, config: &NexmarkConfig, splits: usize) -> Stream<Event> {
    counted_source(env, config, splits, None)
}

/// The same, counting the events made into `made` (for a progress line).
pub fn counted_source(
    env: &StreamEnvironment,
    config: &NexmarkConfig,
    splits: usize,
    made: Option<Arc<AtomicU64>>,
) -> Stream<Event> {
    let c = config.clone();
    // A subtask reads its splits in turns: the events of one turn run
    // ahead of the other splits' by up to a turn of each split.
    let turns = (SPLIT_TURN * splits) as u64 * 1_000 / config.rate.max(1);
    let bound = Duration::from_millis(config.disorder_ms.max(0) as u64 + turns);
    env.from_splits(splits, move |s| {
        let made = made.clone();
        generator::split(c.clone(), s, splits).inspect(move |_| {
            if let Some(m) = &made {
                m.fetch_add(1, Ordering::Relaxed);
            }
        })
    })
    .uid("nexmark-events")
    .assign_timestamps_and_watermarks(
        WatermarkStrategy::for_bounded_out_of_orderness(bound).with_timestamp_assigner(|e: &Event, _| e.date_time()),
    )
}
