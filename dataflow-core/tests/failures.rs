//! A failing user function fails the job with an error naming the
//! operator and subtask, quickly, and cancels every other task.

use dataflow_core::operator::Map;
use dataflow_core::{Error, StreamEnvironment};
use std::time::Duration;

/// The job must end well within this; it is a safety net, not a wait.
const BOUND: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panic_in_one_subtask_fails_the_job_naming_it() {
    let env = StreamEnvironment::new().with_parallelism(4);
    // Endless sources: the job can only end by failing and cancelling them.
    env.from_parallel_iter(|_| 0u64..)
        .transform_with("explode", |info| {
            let subtask = info.subtask;
            Map::new(move |x: u64| {
                if subtask == 2 && x == 5_000 {
                    panic!("record {x} is cursed");
                }
                x
            })
        })
        .key_by(|x| x % 16)
        .count()
        .for_each(|_| {});
    let err = tokio::time::timeout(BOUND, env.execute()).await.expect("the job did not end").unwrap_err();
    match &err {
        Error::OperatorPanicked { operator, subtask, parallelism, message } => {
            assert_eq!((operator.as_str(), *subtask, *parallelism), ("explode", 2, 4));
            assert!(message.contains("record 5000 is cursed"), "{message}");
        }
        other => panic!("expected a panic error, got {other:?}"),
    }
    assert_eq!(err.to_string(), "operator 'explode' (subtask 3/4) panicked: record 5000 is cursed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_from_an_operator_fails_the_job() {
    #[derive(Clone)]
    struct Reject;
    impl dataflow_core::Operator for Reject {
        type In = u64;
        type Out = u64;
        fn process(
            &mut self,
            r: dataflow_core::Record<u64>,
            out: &mut dataflow_core::Collector<u64>,
        ) -> Result<(), dataflow_core::BoxError> {
            if r.value == 777 {
                return Err(format!("cannot handle {}", r.value).into());
            }
            out.collect(r);
            Ok(())
        }
    }
    let env = StreamEnvironment::new().with_parallelism(2);
    env.from_parallel_iter(|_| 0u64..).rebalance().transform("reject", Reject).for_each(|_| {});
    let err = tokio::time::timeout(BOUND, env.execute()).await.expect("the job did not end").unwrap_err();
    assert!(matches!(&err, Error::OperatorFailed { operator, .. } if operator == "reject"), "{err:?}");
    assert!(err.to_string().contains("cannot handle 777"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_sink_fails_the_job() {
    let env = StreamEnvironment::new().with_parallelism(2);
    let dir = tempfile::tempdir().unwrap();
    // A directory cannot be opened as a file.
    env.from_parallel_iter(|_| 0u64..).write_lines(dir.path());
    let err = tokio::time::timeout(BOUND, env.execute()).await.expect("the job did not end").unwrap_err();
    assert!(matches!(&err, Error::OperatorFailed { operator, .. } if operator == "write_lines"), "{err:?}");
    assert!(err.to_string().contains(&dir.path().display().to_string()), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_job_future_cancels_its_tasks() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let seen = Arc::new(AtomicU64::new(0));
    let s = seen.clone();
    let env = StreamEnvironment::new().with_parallelism(2);
    env.from_parallel_iter(|_| 0u64..).for_each(move |_| {
        s.fetch_add(1, Ordering::Relaxed);
    });
    let mut job = Box::pin(env.execute());
    // Let it run until it has made progress, then drop it.
    while seen.load(Ordering::Relaxed) < 10_000 {
        assert!(futures::poll!(job.as_mut()).is_pending());
        tokio::task::yield_now().await;
    }
    drop(job);
    // Once every task is gone, the counter's other owners are dropped too.
    while Arc::strong_count(&seen) > 1 {
        tokio::task::yield_now().await;
    }
}
