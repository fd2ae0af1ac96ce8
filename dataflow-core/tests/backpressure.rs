//! A slow sink throttles the sources: the records emitted by the sources
//! but not yet consumed by the sink stay under a bound that follows from the
//! batch size, the channel capacity and the number of channels. Counted,
//! not timed.

use dataflow_core::connectors::Sink;
use dataflow_core::{Batch, BoxError, StreamEnvironment};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

const BATCH: u64 = 16;
const CAPACITY: u64 = 2;
const PARALLELISM: u64 = 2;
const RECORDS_PER_SOURCE: u64 = 20_000;

struct SlowSink {
    emitted: Arc<AtomicU64>,
    consumed: Arc<AtomicU64>,
    max_in_flight: Arc<AtomicU64>,
}

#[async_trait::async_trait]
impl Sink<u64> for SlowSink {
    async fn write_batch(&mut self, batch: &mut Batch<u64>) -> Result<(), BoxError> {
        for _ in batch.drain_values() {
            // A slow consumer: give the sources every chance to run ahead.
            tokio::task::yield_now().await;
            let in_flight = self.emitted.load(Ordering::SeqCst) - self.consumed.load(Ordering::SeqCst);
            self.max_in_flight.fetch_max(in_flight, Ordering::SeqCst);
            self.consumed.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_sink_bounds_records_in_flight() {
    let emitted = Arc::new(AtomicU64::new(0));
    let consumed = Arc::new(AtomicU64::new(0));
    let max_in_flight = Arc::new(AtomicU64::new(0));
    let env = StreamEnvironment::new()
        .with_parallelism(PARALLELISM as usize)
        .with_batch_size(BATCH as usize)
        .with_channel_capacity(CAPACITY as usize);
    let e = emitted.clone();
    let (c, m) = (consumed.clone(), max_in_flight.clone());
    env.from_parallel_iter(move |_| {
        let e = e.clone();
        (0..RECORDS_PER_SOURCE).inspect(move |_| {
            e.fetch_add(1, Ordering::SeqCst);
        })
    })
    .key_by(|x| x % 97)
    .transform_with("pass", |_| dataflow_core::operator::Map::new(|x: u64| x))
    .sink("slow", move |_| SlowSink { emitted: e2(&emitted), consumed: c.clone(), max_in_flight: m.clone() });
    let plan = env.explain().unwrap();
    let channels = plan.channels() as u64;
    assert_eq!(channels, PARALLELISM * PARALLELISM);

    env.execute().await.unwrap();
    assert_eq!(consumed.load(Ordering::SeqCst), PARALLELISM * RECORDS_PER_SOURCE);

    // Where an emitted, unconsumed record can be (a message holds < 2 × BATCH
    // records, because a writer buffer below BATCH takes up to one more batch
    // before it is sent):
    // - in a source task: the batch being filled, plus its writer's buffers;
    let per_source = BATCH + PARALLELISM * 2 * BATCH;
    // - in the channels: CAPACITY messages each;
    let in_channels = channels * CAPACITY * 2 * BATCH;
    // - in a sink task: the message it is working through.
    let per_sink = 2 * BATCH;
    let bound = PARALLELISM * per_source + in_channels + PARALLELISM * per_sink;
    let max = max_in_flight.load(Ordering::SeqCst);
    assert!(max <= bound, "{max} records in flight, bound {bound}");
    // The sources really ran ahead of the sink, so the bound was exercised.
    assert!(max >= BATCH, "only {max} records in flight: the sink was never behind");
    assert!(bound * 20 < PARALLELISM * RECORDS_PER_SOURCE, "the input must dwarf the bound");
}

fn e2(emitted: &Arc<AtomicU64>) -> Arc<AtomicU64> {
    emitted.clone()
}
