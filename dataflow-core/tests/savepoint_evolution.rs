//! State evolution through savepoints: a savepoint's keyed state is
//! self-describing (CBOR by field name), so a state type that gained a
//! field with a serde default restores, while an incompatible change is a
//! typed error naming the operator, the state and its type.

use dataflow_core::state::StateError;
use dataflow_core::{Error, StreamEnvironment, ValueState, operator};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

mod common;
use common::{Gate, gate, rt, stop_at_gates};

const KEYS: u64 = 10;
const N: u64 = 1_000;

#[derive(Clone, Default, Serialize, Deserialize)]
struct TotalV1 {
    count: u64,
}

/// V1 plus a field with a serde default.
#[derive(Clone, Default, Serialize, Deserialize)]
struct TotalV2 {
    count: u64,
    #[serde(default)]
    largest: u64,
}

/// A field of another type.
#[derive(Clone, Default, Serialize, Deserialize)]
struct TotalBad {
    count: String,
}

/// A new field without a default.
#[derive(Clone, Default, Serialize, Deserialize)]
struct TotalNoDefault {
    count: u64,
    largest: u64,
}

#[operator]
fn count_v1(x: u64, total: &mut ValueState<TotalV1>) -> (u64, u64) {
    let t = total.get_or_insert_with(TotalV1::default);
    t.count += 1;
    (x % KEYS, t.count)
}

#[operator]
fn count_v2(x: u64, total: &mut ValueState<TotalV2>) -> (u64, u64) {
    let t = total.get_or_insert_with(TotalV2::default);
    t.count += 1;
    t.largest = t.largest.max(x);
    (x % KEYS, t.count)
}

#[operator]
fn count_bad(x: u64, total: &mut ValueState<TotalBad>) -> (u64, u64) {
    let t = total.get_or_insert_with(TotalBad::default);
    t.count.push('.');
    (x % KEYS, t.count.len() as u64)
}

#[operator]
fn count_no_default(x: u64, total: &mut ValueState<TotalNoDefault>) -> (u64, u64) {
    let t = total.get_or_insert_with(TotalNoDefault::default);
    t.count += 1;
    (x % KEYS, t.count)
}

/// Numbers from `N / 2` on are held until the stop.
fn second_half(x: u64) -> bool {
    x >= N / 2
}

fn numbers(env: &StreamEnvironment, g: &Gate) -> dataflow_core::KeyedStream<u64, u64> {
    env.from_splits(2, |s| (0..N).filter(move |x| x % 2 == s as u64))
        .uid("numbers")
        .apply_async(gate(g, |x: &u64| *x))
        .key_by(|x: &u64| x % KEYS)
}

/// Version 1 counts per key and is stopped with a savepoint into `sp` at
/// the middle of its input.
fn version_1(sp: &Path) {
    // Small batches: the source is held near the middle, not after reading all.
    let env = StreamEnvironment::new().with_parallelism(2).with_batch_size(16);
    let g = Gate::holding(second_half);
    numbers(&env, &g).apply(count_v1()).uid("totals").for_each(|_| {});
    stop_at_gates(env, &g, 2, sp, false).unwrap();
}

/// A later version started from the savepoint goes on to the end; returns
/// the final count per key, or the error.
fn later<O>(sp: &Path, op: O) -> Result<BTreeMap<u64, u64>, Error>
where
    O: dataflow_core::operator::KeyedFnOperator<u64, In = u64, Out = (u64, u64)>
        + dataflow_core::operator::FnOperator
        + Clone,
{
    let env = StreamEnvironment::new().with_parallelism(3).with_batch_size(16);
    env.restore_from(sp);
    let out = numbers(&env, &Gate::default()).apply(op).uid("totals").collect();
    rt().block_on(env.execute())?;
    let mut last = BTreeMap::new();
    for (k, n) in out.take() {
        let e = last.entry(k).or_default();
        *e = n.max(*e);
    }
    Ok(last)
}

#[test]
fn a_field_with_a_serde_default_restores() {
    let dir = tempfile::tempdir().unwrap();
    let sp = dir.path().join("sp");
    version_1(&sp);
    let counts = later(&sp, count_v2()).unwrap();
    // Every key saw N/KEYS numbers over both versions: the saved counts
    // went on.
    assert_eq!(counts, (0..KEYS).map(|k| (k, N / KEYS)).collect::<BTreeMap<_, _>>());
}

/// The error names the operator, the state and its type.
fn assert_decode_error(err: Error, name: &str, type_name: &str) {
    let text = err.to_string();
    match &err {
        Error::OperatorFailed { operator, source, .. } => {
            assert_eq!(operator, name, "{text}");
            match source.downcast_ref::<StateError>() {
                Some(StateError::Decode { state, message, .. }) => {
                    assert_eq!(state, name, "{text}");
                    assert!(message.contains("does not fit") && message.contains(type_name), "{text}");
                }
                other => panic!("not a decode error: {other:?} ({text})"),
            }
        }
        other => panic!("not an operator failure: {other}"),
    }
}

#[test]
fn a_field_of_another_type_is_a_typed_error_naming_operator_and_state() {
    let dir = tempfile::tempdir().unwrap();
    let sp = dir.path().join("sp");
    version_1(&sp);
    let err = later(&sp, count_bad()).unwrap_err();
    assert_decode_error(err, "count_bad", "TotalBad");
}

#[test]
fn a_new_field_without_a_default_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let sp = dir.path().join("sp");
    version_1(&sp);
    let err = later(&sp, count_no_default()).unwrap_err();
    assert!(err.to_string().contains("largest"), "{err}");
    assert_decode_error(err, "count_no_default", "TotalNoDefault");
}
