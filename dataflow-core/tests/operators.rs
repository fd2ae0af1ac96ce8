//! `#[operator]` functions: every return kind, configuration, generics,
//! the context, attribute options and the bad-record policies, each checked
//! against a plain computation of the same answer.

use dataflow_core::operator::{BadRecordPolicy, Context, FnOperator};
use dataflow_core::{Error, Record, StreamElement, StreamEnvironment, operator};

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

#[operator]
fn square(x: i64) -> i64 {
    x * x
}

#[operator]
fn even(x: i64) -> Option<i64> {
    (x % 2 == 0).then_some(x)
}

#[operator]
fn repeat(x: i64) -> Vec<i64> {
    vec![x; (x.rem_euclid(3)) as usize]
}

#[operator]
fn digits(x: i64) -> impl IntoIterator<Item = char> {
    x.to_string().chars().collect::<Vec<_>>()
}

#[operator(name = "at least", uid = "at-least-v1", parallelism = 3)]
fn at_least(#[config] min: i64, x: i64) -> Option<i64> {
    (x >= min).then_some(x)
}

#[derive(Clone)]
struct Limits {
    low: i64,
    high: i64,
}

/// Borrowed configuration: the constructor takes `&Limits` and keeps a copy.
#[operator]
fn clamp(#[config] limits: &Limits, x: i64) -> i64 {
    x.clamp(limits.low, limits.high)
}

#[operator]
fn id<T: Clone>(x: T) -> T {
    x
}

/// Emits each value twice through the context, with the record's timestamp
/// and the watermark it has seen.
#[operator]
fn twice(x: i64, ctx: &mut Context<(i64, Option<i64>)>) {
    let ts = ctx.timestamp();
    ctx.emit((x, ts));
    ctx.emit((x, ts));
}

#[operator]
fn parse(s: String) -> Result<i64, std::num::ParseIntError> {
    s.trim().parse()
}

fn run<T: dataflow_core::Data + Ord>(
    env: &StreamEnvironment,
    out: dataflow_core::connectors::CollectHandle<T>,
) -> Vec<T> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    rt.block_on(env.execute()).unwrap();
    sorted(out.take())
}

const INPUT: [i64; 9] = [-4, -1, 0, 3, 7, 8, 10, 11, 25];

#[test]
fn every_return_kind_matches_a_plain_computation() {
    let env = StreamEnvironment::new().with_parallelism(2);
    let src = env.from_iter(INPUT.to_vec());
    let squares = src.apply(square()).collect();
    let evens = src.apply(even()).collect();
    let repeats = src.apply(repeat()).collect();
    let chars = src.apply(digits()).collect();
    let clamped = src.apply(clamp(&Limits { low: 0, high: 9 })).collect();
    let ids = src.apply(id()).collect();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    rt.block_on(env.execute()).unwrap();
    assert_eq!(sorted(squares.take()), sorted(INPUT.iter().map(|x| x * x).collect()));
    assert_eq!(sorted(evens.take()), sorted(INPUT.iter().copied().filter(|x| x % 2 == 0).collect()));
    let rep: Vec<i64> = INPUT.iter().flat_map(|&x| vec![x; x.rem_euclid(3) as usize]).collect();
    assert_eq!(sorted(repeats.take()), sorted(rep));
    assert_eq!(
        sorted(chars.take()),
        sorted(INPUT.iter().flat_map(|x| x.to_string().chars().collect::<Vec<_>>()).collect())
    );
    assert_eq!(sorted(clamped.take()), sorted(INPUT.iter().map(|x| x.clamp(&0, &9)).copied().collect()));
    assert_eq!(sorted(ids.take()), sorted(INPUT.to_vec()));
    // The function stays callable as written.
    assert_eq!(square::call(7), 49);
    assert_eq!(at_least::call(3, 2), None);
}

#[test]
fn options_configure_the_node() {
    assert_eq!(<at_least as FnOperator>::NAME, "at least");
    let env = StreamEnvironment::new().with_parallelism(2);
    let out = env.from_iter(INPUT.to_vec()).apply(at_least(5)).collect();
    let plan = env.explain().unwrap();
    let chain = plan.chains.iter().find(|c| c.operators[0] == "at least").unwrap();
    assert_eq!(chain.parallelism, 3);
    assert_eq!(run(&env, out), sorted(INPUT.iter().copied().filter(|&x| x >= 5).collect()));
}

#[test]
fn context_emits_many_with_the_record_timestamp() {
    let env = StreamEnvironment::new().with_parallelism(1);
    let elements = vec![
        StreamElement::Record(Record::with_timestamp(1, 100)),
        StreamElement::Record(Record::new(2)),
        StreamElement::Record(Record::with_timestamp(3, 300)),
    ];
    let out = env.from_elements(elements).apply(twice()).collect();
    let expected = vec![(1, Some(100)), (1, Some(100)), (2, None), (2, None), (3, Some(300)), (3, Some(300))];
    assert_eq!(run(&env, out), expected);
}

fn lines() -> Vec<String> {
    ["1", "2", "x", "4", " 5 ", "six"].iter().map(|s| s.to_string()).collect()
}

#[test]
fn bad_record_fail_names_operator_subtask_and_position() {
    let env = StreamEnvironment::new().with_parallelism(1);
    env.from_iter(lines()).apply(parse()).for_each(|_| {});
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    let err = rt.block_on(env.execute()).unwrap_err();
    assert!(matches!(&err, Error::OperatorFailed { operator, subtask: 0, .. } if operator == "parse"), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("bad record at input position 2"), "{msg}");
    assert!(msg.contains("invalid digit"), "{msg}");
}

#[test]
fn bad_record_skip_drops_and_counts() {
    let env = StreamEnvironment::new().with_parallelism(1).with_bad_record_policy(BadRecordPolicy::Skip);
    let out = env.from_iter(lines()).apply(parse()).collect();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    let result = rt.block_on(env.execute()).unwrap();
    let good: Vec<i64> = lines().iter().filter_map(|s| s.trim().parse().ok()).collect();
    assert_eq!(sorted(out.take()), sorted(good.clone()));
    let stats = result.operator("parse").unwrap();
    assert_eq!(stats.records_skipped, (lines().len() - good.len()) as u64);
    assert_eq!(stats.records_out, good.len() as u64);
}

/// Per-key state of every kind, at parallelism 3, against a plain
/// per-key computation.
#[operator]
fn session_stats(
    word: String,
    count: &mut dataflow_core::ValueState<u64>,
    lengths: &mut dataflow_core::ListState<usize>,
    letters: &mut dataflow_core::MapState<char, u64>,
) -> (String, u64, usize, u64) {
    let n = count.get_or_insert_with(|| 0);
    *n += 1;
    lengths.add(word.len());
    for c in word.chars() {
        *letters.entry(c).or_insert(0) += 1;
    }
    (word, *n, lengths.len(), letters.iter().map(|(_, v)| v).sum())
}

#[test]
fn keyed_state_parameters_keep_state_per_key() {
    let words: Vec<String> = ["ab", "b", "ab", "ccc", "b", "ab", "dd", "ccc"].iter().map(|s| s.to_string()).collect();
    let env = StreamEnvironment::new().with_parallelism(3);
    let out = env
        .from_iter(words.clone())
        .key_by(|w: &String| w.chars().next().unwrap_or(' '))
        .apply(session_stats())
        .collect();
    // Per first letter: how many words so far, and how many letters so far.
    let mut oracle = Vec::new();
    let mut seen: std::collections::HashMap<char, (u64, u64)> = Default::default();
    for w in &words {
        let e = seen.entry(w.chars().next().unwrap()).or_default();
        e.0 += 1;
        e.1 += w.len() as u64;
        oracle.push((w.clone(), e.0, e.0 as usize, e.1));
    }
    assert_eq!(run(&env, out), sorted(oracle));
}

#[test]
fn stateless_operators_apply_to_keyed_streams_too() {
    let env = StreamEnvironment::new().with_parallelism(2);
    let out = env.from_iter(INPUT.to_vec()).key_by(|x| x % 3).apply(square()).collect();
    assert_eq!(run(&env, out), sorted(INPUT.iter().map(|x| x * x).collect()));
}

#[test]
fn bad_record_side_output_reports_every_rejected_record() {
    let env = StreamEnvironment::new().with_parallelism(2).with_bad_record_policy(BadRecordPolicy::SideOutput);
    let parsed = env.from_iter(lines()).rebalance().apply(parse());
    let reports = parsed.bad_records().map(|r| (r.operator, r.error)).set_parallelism(1).collect();
    let good = parsed.collect();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    let result = rt.block_on(env.execute()).unwrap();
    let oracle_good: Vec<i64> = lines().iter().filter_map(|s| s.trim().parse().ok()).collect();
    let oracle_bad: Vec<(String, String)> = lines()
        .iter()
        .filter_map(|s| s.trim().parse::<i64>().err().map(|e| ("parse".to_string(), e.to_string())))
        .collect();
    assert_eq!(sorted(good.take()), sorted(oracle_good));
    assert_eq!(sorted(reports.take()), sorted(oracle_bad.clone()));
    assert_eq!(result.operator("parse").unwrap().records_skipped, oracle_bad.len() as u64);
}

/// A side output read by an operator of another parallelism, through channels.
#[test]
fn side_outputs_cross_tasks() {
    use dataflow_core::operator::OutputTag;
    let small = OutputTag::<i64>::new("small");
    let env = StreamEnvironment::new().with_parallelism(2);
    let tag = small.clone();
    let big = env.from_parallel_iter(|i| (0..200i64).skip(i.subtask).step_by(i.parallelism)).process(
        move |x, ctx: &mut Context<i64>| {
            if x < 50 { ctx.output(&tag, x) } else { ctx.emit(x) }
        },
    );
    let small_out = big.side_output(&small).map(|x| x * 10).set_parallelism(3).collect();
    let big_out = big.collect();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    rt.block_on(env.execute()).unwrap();
    assert_eq!(sorted(small_out.take()), (0..50).map(|x| x * 10).collect::<Vec<_>>());
    assert_eq!(sorted(big_out.take()), (50..200).collect::<Vec<_>>());
}

struct Mean;

impl dataflow_core::AggregateFunction for Mean {
    type In = i64;
    type Acc = (i64, i64);
    type Out = i64;
    fn create() -> (i64, i64) {
        (0, 0)
    }
    fn add(acc: &mut (i64, i64), v: i64) {
        acc.0 += v;
        acc.1 += 1;
    }
    fn merge(a: (i64, i64), b: (i64, i64)) -> (i64, i64) {
        (a.0 + b.0, a.1 + b.1)
    }
    fn result(acc: &(i64, i64)) -> i64 {
        acc.0 / acc.1
    }
}

/// Reducing and aggregating state: running max and running (integer) mean per key.
#[operator]
fn running(
    x: i64,
    max: &mut dataflow_core::ReducingState<i64, dataflow_core::state::Max>,
    mean: &mut dataflow_core::AggregatingState<Mean>,
) -> (i64, i64, i64) {
    max.add(x);
    mean.add(x);
    (x.rem_euclid(3), max.get().copied().unwrap_or_default(), mean.get().unwrap_or_default())
}

#[test]
fn reducing_and_aggregating_state_parameters() {
    let env = StreamEnvironment::new().with_parallelism(1);
    let out = env.from_iter(INPUT.to_vec()).key_by(|x| x.rem_euclid(3)).apply(running()).collect();
    let mut oracle = Vec::new();
    let mut per_key: std::collections::HashMap<i64, Vec<i64>> = Default::default();
    for &x in &INPUT {
        let seen = per_key.entry(x.rem_euclid(3)).or_default();
        seen.push(x);
        let max = *seen.iter().max().unwrap();
        let mean = seen.iter().sum::<i64>() / seen.len() as i64;
        oracle.push((x.rem_euclid(3), max, mean));
    }
    assert_eq!(run(&env, out), sorted(oracle));
}

/// Config edge cases: `&str` configuration, a config named like generated
/// locals, a multi-line where clause with a trailing comma.
#[operator]
fn prefix(#[config] p: &str, s: String) -> String {
    format!("{p}{s}")
}

#[operator]
fn pair_with<T>(#[config] value: i64, x: T) -> (T, i64)
where
    T: Clone + Send + 'static,
{
    (x, value)
}

#[operator(capacity = 3)]
async fn async_offset(#[config] value: i64, x: i64) -> i64 {
    x + value
}

#[test]
fn config_edge_cases() {
    let env = StreamEnvironment::new().with_parallelism(1);
    let src = env.from_iter(vec![1i64, 2]);
    let prefixed = src.map(|x| x.to_string()).apply(prefix("n=")).collect();
    let paired = src.apply(pair_with(7)).collect();
    let offset = src.apply_async(async_offset(100)).collect();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(env.execute()).unwrap();
    assert_eq!(prefixed.take(), ["n=1", "n=2"]);
    assert_eq!(paired.take(), [(1, 7), (2, 7)]);
    assert_eq!(offset.take(), [101, 102]);
}

/// The bad-record side output of a union that includes a source directly.
#[test]
fn bad_records_of_a_union_with_a_source() {
    let env = StreamEnvironment::new().with_parallelism(1).with_bad_record_policy(BadRecordPolicy::SideOutput);
    let parsed = env.from_iter(lines()).apply(parse());
    let all = parsed.union(&env.from_iter(vec![100i64]));
    let bad = all.bad_records().collect();
    let good = all.collect();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    rt.block_on(env.execute()).unwrap();
    assert_eq!(bad.take().len(), 2);
    assert_eq!(good.take().len(), 5);
}
