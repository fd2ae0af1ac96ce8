//! Windows: which windows an element belongs to ([`WindowAssigner`]), when
//! a window emits ([`Trigger`]), what it keeps and emits
//! ([`WindowFunction`]), and the keyed operator that runs them
//! ([`WindowOperator`]). Build them with
//! [`KeyedStream::window`](crate::KeyedStream::window).
//!
//! Semantics follow Flink: windows are `[start, end)`; an event-time window
//! fires when the watermark reaches `end - 1`; with an allowed lateness a
//! window stays open that much longer and a late element re-fires it with
//! the updated result; elements later than that go to the late-data side
//! output. See `docs/time.md`.
//!
//! ```
//! use dataflow_core::time::WatermarkStrategy;
//! use dataflow_core::window::TumblingEventTimeWindows;
//! use dataflow_core::StreamEnvironment;
//! use std::time::Duration;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let env = StreamEnvironment::new().with_parallelism(1);
//! // (word, event time in ms)
//! let events = vec![("a", 1_000), ("b", 2_000), ("a", 9_000), ("a", 12_000)];
//! let counts = env.from_iter(events.into_iter().map(|(w, t)| (w.to_string(), t)))
//!     .assign_timestamps_and_watermarks(WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_secs(1))
//!         .with_timestamp_assigner(|e: &(String, i64), _| e.1))
//!     .key_by(|e: &(String, i64)| e.0.clone())
//!     .window(TumblingEventTimeWindows::of(Duration::from_secs(10)))
//!     .count()
//!     .collect();
//! env.execute().await.unwrap();
//! let mut v: Vec<_> = counts.take().into_iter().map(|(k, w, n)| (k, w.start, n)).collect();
//! v.sort();
//! assert_eq!(v, [("a".to_string(), 0, 2), ("a".to_string(), 10_000, 1), ("b".to_string(), 0, 1)]);
//! # });
//! ```

mod assigner;
mod continuous;
mod function;
mod operator;
mod panes;
#[cfg(test)]
mod probed;
mod trigger;
mod windows;

pub use assigner::{
    EventTimeSessionWindows, GlobalWindows, ProcessingTimeSessionWindows, SlidingEventTimeWindows,
    SlidingProcessingTimeWindows, TumblingEventTimeWindows, TumblingProcessingTimeWindows, WindowAssigner,
};
pub use continuous::{ContinuousEventTimeTrigger, ContinuousProcessingTimeTrigger};
pub use function::{AggregateWindowFunction, ProcessFunction, ReduceFunction, WindowFunction};
pub use operator::{WindowOperator, WindowState};
pub(crate) use panes::PaneWindowOperator;
pub use trigger::{
    CountTrigger, EventTimeTrigger, NeverTrigger, ProcessingTimeTrigger, PurgingTrigger, Trigger, TriggerContext,
    TriggerResult,
};
pub use windows::{GlobalWindow, TimeWindow, Window};
