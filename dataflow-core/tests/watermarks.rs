//! Watermark strategies: the watermarks a downstream operator sees, for
//! bounded out-of-orderness, monotonous timestamps and a punctuated
//! generator; input watermarks are replaced; parallel instances combine by
//! minimum.

use dataflow_core::time::{Timestamp, Watermark, WatermarkGenerator, WatermarkOutput, WatermarkStrategy};
use dataflow_core::{BoxError, Collector, Operator, Record, StreamElement, StreamEnvironment};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Passes records on and records every watermark it is told about.
#[derive(Clone)]
struct Watch(Arc<Mutex<Vec<Timestamp>>>);

impl Operator for Watch {
    type In = i64;
    type Out = i64;
    fn process(&mut self, r: Record<i64>, out: &mut Collector<i64>) -> Result<(), BoxError> {
        out.collect(r);
        Ok(())
    }
    fn on_watermark(&mut self, w: Watermark, _out: &mut Collector<i64>) -> Result<(), BoxError> {
        self.0.lock().unwrap().push(w.0);
        Ok(())
    }
}

fn watermarks_seen(
    env: &StreamEnvironment,
    input: dataflow_core::Stream<i64>,
    strategy: WatermarkStrategy<i64>,
) -> Vec<Timestamp> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    input
        .assign_timestamps_and_watermarks(strategy)
        .transform("watch", Watch(seen.clone()))
        .set_parallelism(1)
        .for_each(|_| {});
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    rt.block_on(env.execute()).unwrap();
    seen.lock().unwrap().clone()
}

#[test]
fn bounded_out_of_orderness_emits_max_timestamp_minus_bound_after_each_batch() {
    // Batches of one record, so a watermark follows every record.
    let env = StreamEnvironment::new().with_parallelism(1).with_batch_size(1);
    let strategy =
        WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_millis(10)).with_timestamp_assigner(|v, _| *v);
    let seen = watermarks_seen(&env, env.from_iter(vec![10i64, 30, 20, 50, 45]), strategy);
    // max so far - 10 - 1, only when it advances, then the end of input.
    assert_eq!(seen, [-1, 19, 39, i64::MAX]);
}

#[test]
fn monotonous_timestamps_follow_the_largest_timestamp() {
    let env = StreamEnvironment::new().with_parallelism(1).with_batch_size(2);
    let strategy = WatermarkStrategy::for_monotonous_timestamps().with_timestamp_assigner(|v, _| *v);
    let seen = watermarks_seen(&env, env.from_iter(vec![1i64, 2, 3, 4, 5]), strategy);
    assert_eq!(seen, [1, 3, 4, i64::MAX]);
}

#[test]
fn input_watermarks_are_replaced_and_existing_timestamps_kept() {
    let env = StreamEnvironment::new().with_parallelism(1);
    let elements = vec![
        StreamElement::Record(Record::with_timestamp(7, 100)),
        StreamElement::Watermark(Watermark(1_000)),
        StreamElement::Record(Record::with_timestamp(8, 200)),
    ];
    // No assigner: the records keep their timestamps.
    let strategy = WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_millis(50));
    let seen = watermarks_seen(&env, env.from_elements(elements), strategy);
    assert!(!seen.contains(&1_000), "the input's watermark must not pass: {seen:?}");
    assert_eq!(seen.last(), Some(&i64::MAX));
    assert_eq!(&seen[..seen.len() - 1], &[49, 149]);
}

/// A watermark at every negative value (a "punctuation").
struct Punctuated;

impl WatermarkGenerator<i64> for Punctuated {
    fn on_event(&mut self, event: &i64, ts: Timestamp, out: &mut WatermarkOutput) {
        if *event < 0 {
            out.emit(Watermark(ts));
        }
    }
    fn on_periodic_emit(&mut self, _out: &mut WatermarkOutput) {}
}

#[test]
fn a_punctuated_generator_emits_at_its_marks() {
    let env = StreamEnvironment::new().with_parallelism(1).with_batch_size(1);
    let strategy = WatermarkStrategy::for_generator(|| Punctuated).with_timestamp_assigner(|v: &i64, _| v.abs());
    let seen = watermarks_seen(&env, env.from_iter(vec![3i64, -5, 8, 9, -12, 4]), strategy);
    assert_eq!(seen, [5, 12, i64::MAX]);
}

#[test]
fn parallel_instances_give_an_advancing_watermark_from_their_own() {
    // Subtask 0 sees 0..100, subtask 1 sees 1000..1100 (batches of 10). The
    // combined watermark only advances, only takes values one of them
    // generated, and ends at the maximum. (Which values appear depends on
    // how the two interleave; the minimum rule itself is unit-tested in
    // `time::input_watermarks`.)
    let env = StreamEnvironment::new().with_parallelism(2).with_batch_size(10);
    let input = env.from_parallel_iter(|i| {
        let offset = 1000 * i.subtask as i64;
        (0..100i64).map(move |t| t + offset)
    });
    let strategy = WatermarkStrategy::for_monotonous_timestamps().with_timestamp_assigner(|v, _| *v);
    let seen = watermarks_seen(&env, input, strategy);
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "watermarks must only advance: {seen:?}");
    let generated: Vec<i64> = (0..10).flat_map(|b| [b * 10 + 9 - 1, 1000 + b * 10 + 9 - 1]).collect();
    let (last, rest) = seen.split_last().unwrap();
    assert_eq!(*last, i64::MAX);
    assert!(rest.iter().all(|w| generated.contains(w)), "{seen:?}");
}
