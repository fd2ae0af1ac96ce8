//! q12 (bids per bidder in 10 s windows of processing time) against its
//! batch computation. Processing time is the job's clock, so the test owns
//! a [`ManualClock`]: it feeds the events in chunks, each at its own clock
//! time, and moves the clock only once every event of a chunk has reached
//! the windows. It knows that from the watermark: after each chunk it sends
//! a marker (a person, which q12 drops) whose event time is the chunk's
//! number + 1, and a probe after the windows reports the watermarks that
//! pass it. The batch computation counts each bid in the window of the
//! clock time its chunk was sent at.

use dataflow_core::time::{ManualClock, Watermark, WatermarkStrategy};
use dataflow_core::{BoxError, Collector, Data, Operator, Record, StreamEnvironment};
use dataflow_examples::nexmark::generator::{self, NexmarkConfig};
use dataflow_examples::nexmark::model::Event;
use dataflow_examples::nexmark::queries;
use std::sync::Arc;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

/// Events per chunk, and the clock's step between chunks (ms): a 10 s
/// window holds two or three chunks.
const CHUNK: usize = 2_000;
const STEP_MS: i64 = 4_000;

/// Passes records on and reports every watermark that reaches it.
#[derive(Clone)]
struct Probe<T> {
    watermarks: UnboundedSender<i64>,
    _t: std::marker::PhantomData<fn(T)>,
}

impl<T: Data> Operator for Probe<T> {
    type In = T;
    type Out = T;

    fn process(&mut self, record: Record<T>, out: &mut Collector<T>) -> Result<(), BoxError> {
        out.collect(record);
        Ok(())
    }

    fn on_watermark(&mut self, watermark: Watermark, _out: &mut Collector<T>) -> Result<(), BoxError> {
        let _ = self.watermarks.send(watermark.0);
        Ok(())
    }
}

/// An unbounded channel as a `futures::Stream`.
fn receiver_stream<T: Send + 'static>(
    mut rx: UnboundedReceiver<T>,
) -> impl futures::Stream<Item = T> + Send + Unpin + 'static {
    Box::pin(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}

/// Waits until the probe has seen a watermark of at least `at`.
async fn wait_for_watermark(watermarks: &mut UnboundedReceiver<i64>, at: i64) {
    while watermarks.recv().await.expect("the job runs until its input ends") < at {}
}

/// Runs q12 at parallelism `p` over `events`, chunk `k` at clock time
/// `start + k * STEP_MS`; its output.
async fn run(p: usize, events: &[Event], start: i64) -> Vec<(u64, i64, i64, u64)> {
    let clock = Arc::new(ManualClock::new(start));
    let env = StreamEnvironment::new().with_parallelism(p).with_clock(clock.clone());
    let (tx, rx) = unbounded_channel::<(i64, Event)>();
    let (wm_tx, mut watermarks) = unbounded_channel();
    let input = env
        .from_stream(receiver_stream(rx))
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_monotonous_timestamps().with_timestamp_assigner(|r: &(i64, Event), _| r.0),
        )
        .map(|r: (i64, Event)| r.1);
    let out = queries::q12(&input)
        .transform("probe", Probe { watermarks: wm_tx, _t: std::marker::PhantomData })
        .set_parallelism(1)
        .collect();
    let job = tokio::spawn(env.execute());

    let marker = events.iter().find(|e| matches!(e, Event::Person(_))).expect("a person").clone();
    let chunks = events.chunks(CHUNK).count() as i64;
    for (k, chunk) in events.chunks(CHUNK).enumerate() {
        let k = k as i64;
        clock.set(start + k * STEP_MS);
        for e in chunk {
            tx.send((k, e.clone())).unwrap();
        }
        // The marker lifts the watermark to k (its time - 1) only behind
        // the whole chunk.
        tx.send((k + 1, marker.clone())).unwrap();
        wait_for_watermark(&mut watermarks, k).await;
    }
    // Past the end of the last window: every window fires before the end
    // of input reaches it (a task fires due timers before it takes the
    // next message, here the last marker's watermark).
    clock.set(start + chunks * STEP_MS + queries::Q12_SIZE_MS);
    tx.send((chunks + 1, marker)).unwrap();
    wait_for_watermark(&mut watermarks, chunks).await;
    drop(tx);
    job.await.unwrap().unwrap();
    out.take()
}

#[test]
fn q12_counts_bids_per_bidder_in_processing_time_windows() {
    let config = NexmarkConfig { seed: 7, rate: 1_000, ..NexmarkConfig::new(40_000) };
    let events: Vec<Event> = generator::events(&config).collect();
    // Not aligned to the windows: chunks straddle window ends.
    let start = 1_700_000_003_000;
    let arrivals = events.iter().enumerate().map(|(i, e)| (start + (i / CHUNK) as i64 * STEP_MS, e));
    let mut want = queries::q12_batch(arrivals);
    want.sort();
    let windows: std::collections::BTreeSet<i64> = want.iter().map(|r| r.1).collect();
    assert!(windows.len() >= 8 && want.iter().any(|r| r.3 > 1), "{} windows", windows.len());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    for p in [1, 2] {
        let mut got = rt.block_on(run(p, &events, start));
        got.sort();
        assert_eq!(got, want, "p={p}");
    }
}
