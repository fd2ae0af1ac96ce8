//! The `reprocess` example's story: version 2 started from version 1's
//! savepoint ends with the same totals as version 2 reprocessing the whole
//! history without state (a batch computation, checked here against a
//! plain fold over the history too), while version 2 started at the
//! savepoint's position without state loses the morning.

use dataflow_examples::shop::{NOON, PURCHASES, purchase, run};
use std::collections::BTreeMap;

fn fold(range: std::ops::Range<u64>) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for i in range {
        let line = purchase(i);
        let (c, cents) = line.split_once(',').unwrap();
        *m.entry(c.to_string()).or_default() += cents.parse::<u64>().unwrap();
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_savepoint_carries_the_morning() {
    let dir = tempfile::tempdir().unwrap();
    let a = run(dir.path()).await.unwrap();
    assert_eq!(a.batch, fold(0..PURCHASES));
    assert_eq!(a.from_savepoint, a.batch);
    assert_eq!(a.at_position, fold(NOON..PURCHASES));
    assert_ne!(a.at_position, a.batch);
    let sp = dataflow_core::checkpoint::savepoint::Savepoint::load(&a.savepoint).unwrap();
    assert!(sp.operators().iter().any(|o| o.uid == "spend" && o.bytes > 0));
}
