//! The `orders` example's pipeline, small: files arrive while the job runs,
//! it crashes once and restarts from a checkpoint, takes a savepoint and
//! stops with one; the committed windows, late orders and bad lines equal
//! a batch computation over the files written (each straggler once: in its
//! window, or late).

use dataflow_examples::orders::{Plan, check, run};
use std::time::Duration;

#[test]
fn the_orders_job_is_exactly_once_through_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let plan = Plan { files: 10, per_file: 1_000, every: Duration::from_millis(30), crash_at: Some(2_500) };
    let summary = tokio::runtime::Runtime::new().unwrap().block_on(run(dir.path(), &plan, |_| {})).unwrap();
    assert_eq!(summary.restarts, 1, "the injected crash happened");
    let c = check(&summary).unwrap();
    assert!(c.exactly_once(), "{c:?}");
    assert!(c.windows > 40 && c.late.1 > 0 && c.bad.1 > 0, "{c:?}");
    assert_eq!(c.bad.0, c.bad.1);
    assert!(summary.savepoint.join("_metadata").exists() && summary.final_savepoint.join("_metadata").exists());
}
