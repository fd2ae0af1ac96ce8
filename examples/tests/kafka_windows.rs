//! The `kafka_windows` example's job against a real broker (tansu on a
//! local port): views written to a topic of 4 partitions, counted at
//! parallelism 2; a `read_committed` reader of the output topic sees the
//! counts of a batch computation, each once.

#[path = "../../dataflow-kafka/tests/common/mod.rs"]
mod broker;

use dataflow_examples::kafka::{PageCount, batch_counts, produce, run, sample};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_counts_reach_the_output_topic_once() {
    let broker = broker::Broker::start();
    broker.create_topic("views", 4);
    broker.create_topic("page-counts", 2);
    let views = sample(20_000, 40, 1_700_000_000_000);
    produce(&broker.brokers, "views", &views).unwrap();
    let checkpoints = tempfile::tempdir().unwrap();
    run(&broker.brokers, "views", "page-counts", checkpoints.path(), 2, true).await.unwrap();
    let mut got: Vec<PageCount> =
        broker.read_all("page-counts", 2).iter().map(|(_, _, v)| serde_json::from_slice(v).unwrap()).collect();
    got.sort();
    assert_eq!(got, batch_counts(&views));
}
