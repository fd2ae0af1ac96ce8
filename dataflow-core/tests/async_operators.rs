//! Asynchronous `#[operator]` functions: bounded concurrency, ordered and
//! unordered results, completeness, timeouts. Calls finish after a number
//! of yields that varies per record, so completion order differs from input
//! order; nothing sleeps.

use dataflow_core::operator::{AsyncFnOperator, AsyncOrder};
use dataflow_core::{Error, StreamEnvironment, operator};
use std::sync::atomic::{AtomicUsize, Ordering};

static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
static MAX_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
static UNORDERED_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
static UNORDERED_MAX: AtomicUsize = AtomicUsize::new(0);

/// A "lookup" that takes longer for some keys than for others.
async fn slow_lookup(id: u64, now: &AtomicUsize, max: &AtomicUsize) -> String {
    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
    max.fetch_max(n, Ordering::SeqCst);
    for _ in 0..(id * 7919 % 13) {
        tokio::task::yield_now().await;
    }
    now.fetch_sub(1, Ordering::SeqCst);
    format!("user-{id}")
}

#[operator(capacity = 4, ordered)]
async fn lookup_ordered(id: u64) -> String {
    slow_lookup(id, &IN_FLIGHT, &MAX_IN_FLIGHT).await
}

#[operator(capacity = 4, unordered)]
async fn lookup_unordered(id: u64) -> String {
    slow_lookup(id, &UNORDERED_IN_FLIGHT, &UNORDERED_MAX).await
}

#[operator(timeout_ms = 20)]
async fn never_answers(id: u64) -> u64 {
    if id == 3 {
        std::future::pending::<()>().await;
    }
    id
}

#[operator(capacity = 2)]
async fn checked(id: u64) -> Result<u64, String> {
    tokio::task::yield_now().await;
    if id % 5 == 4 { Err(format!("id {id} is not allowed")) } else { Ok(id) }
}

const N: u64 = 500;

fn expected() -> Vec<String> {
    (0..N).map(|id| format!("user-{id}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_keeps_input_order_with_capacity_four() {
    assert_eq!(<lookup_ordered as AsyncFnOperator>::CAPACITY, 4);
    assert_eq!(<lookup_ordered as AsyncFnOperator>::ORDER, AsyncOrder::Ordered);
    let env = StreamEnvironment::new().with_parallelism(1).with_batch_size(16);
    let out = env.from_iter(0..N).apply_async(lookup_ordered()).collect();
    env.execute().await.unwrap();
    assert_eq!(out.take(), expected(), "ordered mode must keep the input order");
    let max = MAX_IN_FLIGHT.load(Ordering::SeqCst);
    assert!(max <= 4, "{max} calls were in flight, capacity is 4");
    assert!(max >= 2, "calls never overlapped ({max})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unordered_is_complete_and_bounded() {
    assert_eq!(<lookup_unordered as AsyncFnOperator>::ORDER, AsyncOrder::Unordered);
    let env = StreamEnvironment::new().with_parallelism(1).with_batch_size(16);
    let out = env.from_iter(0..N).apply_async(lookup_unordered()).collect();
    env.execute().await.unwrap();
    let got = out.take();
    assert_ne!(got, expected(), "with uneven call times, completion order differs from input order");
    let mut sorted = got.clone();
    sorted.sort();
    let mut want = expected();
    want.sort();
    assert_eq!(sorted, want, "every record gives exactly one result");
    let max = UNORDERED_MAX.load(Ordering::SeqCst);
    assert!((2..=4).contains(&max), "{max} calls in flight, capacity is 4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_past_its_timeout_fails_the_job() {
    let env = StreamEnvironment::new().with_parallelism(1);
    env.from_iter(0..10u64).apply_async(never_answers()).for_each(|_| {});
    let err = env.execute().await.unwrap_err();
    assert!(matches!(&err, Error::OperatorFailed { operator, .. } if operator == "never_answers"), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("position 3") && msg.contains("timed out"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_errors_follow_the_bad_record_policy() {
    let env = StreamEnvironment::new()
        .with_parallelism(1)
        .with_bad_record_policy(dataflow_core::operator::BadRecordPolicy::Skip);
    let out = env.from_iter(0..20u64).apply_async(checked()).collect();
    let result = env.execute().await.unwrap();
    let want: Vec<u64> = (0..20).filter(|id| id % 5 != 4).collect();
    assert_eq!(out.take(), want);
    assert_eq!(result.operator("checked").unwrap().records_skipped, 4);
}

#[operator]
async fn explodes(id: u64) -> u64 {
    tokio::task::yield_now().await;
    if id == 7 {
        panic!("call for {id} blew up");
    }
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_call_fails_the_job_naming_the_operator() {
    let env = StreamEnvironment::new().with_parallelism(1);
    env.from_iter(0..20u64).apply_async(explodes()).for_each(|_| {});
    let err = env.execute().await.unwrap_err();
    assert!(matches!(&err, Error::OperatorPanicked { operator, .. } if operator == "explodes"), "{err:?}");
    assert!(err.to_string().contains("call for 7 blew up"), "{err}");
}
