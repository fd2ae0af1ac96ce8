//! The Kafka sink against a real broker (tansu, on a local port).
//!
//! * Exactly once, driven by hand through the sink's checkpoint hooks: a
//!   committable written before a crash (its completion notice lost) is
//!   not written again on recovery; one sealed but not written is written
//!   once; a `read_committed` reader sees every record once.
//! * At least once: a job's every record reaches the topic.

mod common;

use common::Broker;
use dataflow_core::connectors::Sink;
use dataflow_core::operator::BadRecordPolicy;
use dataflow_core::time::SystemClock;
use dataflow_core::{Batch, OperatorInfo, StreamEnvironment};
use dataflow_kafka::KafkaSink;
use std::sync::Arc;

fn info(subtask: usize) -> OperatorInfo {
    OperatorInfo {
        name: "kafka sink".into(),
        subtask,
        parallelism: 1,
        max_parallelism: 128,
        bad_record_policy: BadRecordPolicy::Fail,
        clock: Arc::new(SystemClock),
        state_backend: Default::default(),
        operator_index: 0,
        incremental_checkpoints: false,
        storage_options: Arc::from([]),
    }
}

fn values(broker: &Broker, topic: &str) -> Vec<u64> {
    let mut v: Vec<u64> =
        broker.read_all(topic, 1).iter().map(|(_, _, v)| serde_json::from_slice(v).unwrap()).collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_recovery_writes_each_committable_once() {
    let broker = Broker::start();
    broker.create_topic("out", 1);
    let make = KafkaSink::<u64>::json(&broker.brokers, "out").exactly_once("recovery");

    // Checkpoint 1 seals 1..=3; it completes and the sink writes them, then
    // the process dies before the job learned of it.
    let mut first = make(&info(0));
    first.recover(None).await.unwrap();
    first.write_batch(&mut Batch::from(vec![1, 2, 3])).await.unwrap();
    let part_1 = first.pre_commit(1).await.unwrap();
    assert_eq!(values(&broker, "out"), Vec::<u64>::new(), "visible before its checkpoint completed");
    first.commit(1).await.unwrap();
    drop(first);
    assert_eq!(values(&broker, "out"), [1, 2, 3]);

    // Restored from checkpoint 1: its committable was written, so nothing
    // is written again. Checkpoint 2 seals 4 and 5; the process dies before
    // the commit.
    let mut second = make(&info(0));
    second.recover(part_1.clone()).await.unwrap();
    assert_eq!(values(&broker, "out"), [1, 2, 3], "written again on recovery");
    second.write_batch(&mut Batch::from(vec![4, 5])).await.unwrap();
    let part_2 = second.pre_commit(2).await.unwrap();
    drop(second);

    // Restored from checkpoint 2: 4 and 5 are written, once, even when the
    // recovery itself is repeated.
    for _ in 0..2 {
        let mut third = make(&info(0));
        third.recover(part_2.clone()).await.unwrap();
        assert_eq!(values(&broker, "out"), [1, 2, 3, 4, 5]);
    }

    // The end of input writes what is left.
    let mut last = make(&info(0));
    last.recover(part_2).await.unwrap();
    last.write_batch(&mut Batch::from(vec![6])).await.unwrap();
    last.finish().await.unwrap();
    assert_eq!(values(&broker, "out"), [1, 2, 3, 4, 5, 6]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_least_once_writes_every_record_of_a_job() {
    let broker = Broker::start();
    broker.create_topic("out", 1);
    let env = StreamEnvironment::new().with_parallelism(2);
    env.from_iter(0..5_000u64).sink("to kafka", KafkaSink::json(&broker.brokers, "out").at_least_once());
    env.execute().await.unwrap();
    assert_eq!(values(&broker, "out"), (0..5_000).collect::<Vec<_>>());
}

/// Exactly once across a savepoint and a rescale: a job at parallelism 2
/// stops with a savepoint partway; restored at 3 it reads to the end. The
/// output topic holds every input record once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_output_survives_a_savepoint_and_a_rescale() {
    use dataflow_core::time::WatermarkStrategy;
    use dataflow_kafka::KafkaSource;
    let broker = Broker::start();
    broker.create_topic("in", 4);
    broker.create_topic("out", 1);
    let n = 4_000u64;
    broker.produce("in", (0..n).map(|i| ((i % 4) as i32, 1_000_000 + i as i64, serde_json::to_vec(&i).unwrap())));
    let dir = tempfile::tempdir().unwrap();
    let job = |p: usize, restore: bool, bounded: bool| {
        let env = StreamEnvironment::new().with_parallelism(p);
        if restore {
            env.restore_from(dir.path().join("sp"));
        }
        let source = KafkaSource::<u64>::json(&broker.brokers, ["in"]);
        let source = if bounded { source.bounded() } else { source };
        let (tx, rx) = tokio::sync::mpsc::channel::<u64>(100_000);
        let stream = env.from_source(source.build(), WatermarkStrategy::no_watermarks()).uid("in");
        stream.sink_channel(tx);
        stream.sink("out", KafkaSink::json(&broker.brokers, "out").exactly_once("rescale")).uid("out");
        (env, rx)
    };
    let (env, mut rx) = job(2, false, false);
    let running = env.submit();
    for _ in 0..n / 3 {
        rx.recv().await.unwrap();
    }
    running.stop_with_savepoint(dir.path().join("sp"), false).await.unwrap();
    running.wait().await.unwrap();
    let (env, _rx) = job(3, true, true);
    env.execute().await.unwrap();
    assert_eq!(values(&broker, "out"), (0..n).collect::<Vec<_>>());
}
