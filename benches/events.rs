//! The records and steps shared by every contender of the benchmarks
//! (dataflow, timely-dataflow, the hand-written loop), and the summing sink.

use dataflow_core::connectors::Sink;
use dataflow_core::{Batch, BoxError, StreamEnvironment};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The small record every throughput benchmark moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Event {
    pub id: u64,
    pub key: u32,
    pub value: u32,
}

/// Deterministic event number `i`: 10_000 distinct keys.
#[inline]
pub fn gen_event(i: u64) -> Event {
    Event { id: i, key: ((i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) % 10_000) as u32, value: (i % 1000) as u32 }
}
/// The map step of the stateless chain.
#[inline]
pub fn map_event(e: Event) -> Event {
    Event { value: e.value.wrapping_mul(3).wrapping_add(1), ..e }
}
/// The filter step of the stateless chain (keeps about 3/4).
#[inline]
pub fn keep_event(e: &Event) -> bool {
    !e.key.is_multiple_of(4)
}
/// The range of event numbers that worker/subtask `index` of `peers` generates out of `n`.
pub fn share(index: usize, peers: usize, n: u64) -> std::ops::Range<u64> {
    let (i, p) = (index as u64, peers as u64);
    (i * n / p)..((i + 1) * n / p)
}

/// Sums a `u64` view of every record per subtask; adds it to `total` at the end.
pub struct SumSink<T, F> {
    acc: u64,
    total: Arc<AtomicU64>,
    f: F,
    _t: std::marker::PhantomData<fn(T)>,
}

#[async_trait::async_trait]
impl<T: Send + 'static, F: Fn(&T) -> u64 + Send + 'static> Sink<T> for SumSink<T, F> {
    async fn write_batch(&mut self, batch: &mut Batch<T>) -> Result<(), BoxError> {
        self.acc = self.acc.wrapping_add(batch.values().iter().map(&self.f).fold(0u64, u64::wrapping_add));
        batch.clear();
        Ok(())
    }

    async fn finish(&mut self) -> Result<(), BoxError> {
        self.total.fetch_add(self.acc, Ordering::Relaxed);
        Ok(())
    }
}

pub fn sum_sink<T, F: Fn(&T) -> u64 + Clone>(
    total: Arc<AtomicU64>,
    f: F,
) -> impl Fn(&dataflow_core::OperatorInfo) -> SumSink<T, F> {
    move |_| SumSink { acc: 0, total: total.clone(), f: f.clone(), _t: std::marker::PhantomData }
}

/// The tokio runtime every bench runs jobs on (2 worker threads).
#[allow(dead_code)] // not every bench runs jobs
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().expect("tokio runtime")
}

/// The environment of a run: parallelism `p`, default settings except a
/// batch size from `DATAFLOW_BENCH_BATCH` when set (for tuning).
#[allow(dead_code)]
pub fn environment(p: usize) -> StreamEnvironment {
    let env = StreamEnvironment::new().with_parallelism(p);
    match std::env::var("DATAFLOW_BENCH_BATCH").ok().and_then(|b| b.parse().ok()) {
        Some(batch) => env.with_batch_size(batch),
        None => env,
    }
}
