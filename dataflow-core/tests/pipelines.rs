//! Random inputs through keyed and multi-input pipelines at parallelism
//! 1..=4, compared with a plain single-threaded computation of the same
//! answer.

use dataflow_core::StreamEnvironment;
use dataflow_core::operator::Map;
use dataflow_core::state::key_group::{assign_to_key_group, operator_index_for_key_group};
use proptest::prelude::*;
use std::collections::HashMap;
use std::sync::OnceLock;

fn rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap())
}

fn env(p: usize) -> StreamEnvironment {
    // Small batches and channels so that even small inputs cross several
    // batches and fill channels.
    StreamEnvironment::new().with_parallelism(p).with_max_parallelism(128).with_batch_size(7).with_channel_capacity(2)
}

/// Splits `input` over the subtasks of a parallel source.
fn share<T: Clone>(input: &[T], subtask: usize, parallelism: usize) -> Vec<T> {
    input.iter().skip(subtask).step_by(parallelism).cloned().collect()
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

const PARALLELISMS: [usize; 4] = [1, 2, 3, 4];

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// map → key_by → reduce: per key, the rolling sums must be the prefix
    /// sums of that key's values in some order, ending at the key's total;
    /// every key is reduced by the subtask that owns its key group.
    #[test]
    fn map_key_by_reduce(input in prop::collection::vec((0u16..40, 0u32..1000), 0..300)) {
        for p in PARALLELISMS {
            let env = env(p);
            let data = input.clone();
            let out = env
                .from_parallel_iter(move |info| share(&data, info.subtask, info.parallelism))
                .map(|(k, v)| (k, u64::from(v) * 2 + 1, 1u64))
                .key_by(|r: &(u16, u64, u64)| r.0)
                .reduce(|a, b| (a.0, a.1 + b.1, a.2 + b.2))
                .transform_with("tag", |info| {
                    let s = info.subtask;
                    Map::new(move |r: (u16, u64, u64)| (r, s))
                })
                .collect();
            rt().block_on(env.execute()).unwrap();

            let mut oracle: HashMap<u16, Vec<u64>> = HashMap::new();
            for &(k, v) in &input {
                oracle.entry(k).or_default().push(u64::from(v) * 2 + 1);
            }
            let mut got: HashMap<u16, Vec<(u64, u64)>> = HashMap::new();
            for ((k, sum, count), subtask) in out.take() {
                let owner = operator_index_for_key_group(128, p as u32, assign_to_key_group(&k, 128));
                prop_assert_eq!(subtask, owner, "key {} reduced by the wrong subtask", k);
                got.entry(k).or_default().push((count, sum));
            }
            prop_assert_eq!(got.len(), oracle.len());
            for (k, values) in oracle {
                let mut outs = got.remove(&k).unwrap_or_default();
                outs.sort();
                let counts: Vec<u64> = outs.iter().map(|o| o.0).collect();
                prop_assert_eq!(counts, (1..=values.len() as u64).collect::<Vec<_>>());
                let mut prev = 0;
                let diffs: Vec<u64> = outs.iter().map(|&(_, s)| { let d = s - prev; prev = s; d }).collect();
                prop_assert_eq!(sorted(diffs), sorted(values));
            }
        }
    }

    /// key_by → count: the rolling counts per key are exactly 1..=n.
    #[test]
    fn key_by_count(input in prop::collection::vec("[a-e]{1,3}", 0..200)) {
        for p in PARALLELISMS {
            let env = env(p);
            let out = env.from_iter(input.clone()).key_by(|w: &String| w.clone()).count().collect();
            rt().block_on(env.execute()).unwrap();
            let mut n: HashMap<String, u64> = HashMap::new();
            let mut oracle = Vec::new();
            for w in &input {
                let c = n.entry(w.clone()).or_default();
                *c += 1;
                oracle.push((w.clone(), *c));
            }
            prop_assert_eq!(sorted(out.take()), sorted(oracle));
        }
    }

    /// union of two parallel sources, then a map.
    #[test]
    fn union(a in prop::collection::vec(any::<i32>(), 0..200), b in prop::collection::vec(any::<i32>(), 0..200)) {
        for p in PARALLELISMS {
            let env = env(p);
            let (da, db) = (a.clone(), b.clone());
            let sa = env.from_parallel_iter(move |i| share(&da, i.subtask, i.parallelism));
            let sb = env.from_iter(db);
            let out = sa.union(&sb).map(|x| i64::from(x) - 7).collect();
            rt().block_on(env.execute()).unwrap();
            let oracle: Vec<i64> = a.iter().chain(&b).map(|&x| i64::from(x) - 7).collect();
            prop_assert_eq!(sorted(out.take()), sorted(oracle));
        }
    }

    /// connect: two inputs of different types into one co-flat-map.
    #[test]
    fn connect(nums in prop::collection::vec(0u32..100, 0..200), words in prop::collection::vec("[a-z]{0,4}", 0..100)) {
        for p in PARALLELISMS {
            let env = env(p);
            let dn = nums.clone();
            let n = env.from_parallel_iter(move |i| share(&dn, i.subtask, i.parallelism));
            let w = env.from_iter(words.clone());
            let out = n
                .connect(&w)
                .flat_map(|x: u32| vec![format!("n{x}"); (x % 3) as usize], |s: String| vec![format!("w{s}")])
                .collect();
            rt().block_on(env.execute()).unwrap();
            let mut oracle: Vec<String> = nums.iter().flat_map(|&x| vec![format!("n{x}"); (x % 3) as usize]).collect();
            oracle.extend(words.iter().map(|s| format!("w{s}")));
            prop_assert_eq!(sorted(out.take()), sorted(oracle));
        }
    }

    /// broadcast: every rule reaches every subtask of the connected operator.
    #[test]
    fn broadcast(data in prop::collection::vec(0u64..1000, 0..200), rules in prop::collection::vec(0u64..10, 0..5)) {
        for p in PARALLELISMS {
            let env = env(p);
            let dd = data.clone();
            let d = env.from_parallel_iter(move |i| share(&dd, i.subtask, i.parallelism));
            let r = env.from_iter(rules.clone()).broadcast();
            let out = d.connect(&r).map(|x| (0u8, x), |rule| (1u8, rule)).collect();
            rt().block_on(env.execute()).unwrap();
            let mut oracle: Vec<(u8, u64)> = data.iter().map(|&x| (0, x)).collect();
            for _ in 0..p {
                oracle.extend(rules.iter().map(|&r| (1, r)));
            }
            prop_assert_eq!(sorted(out.take()), sorted(oracle));
        }
    }

    /// rebalance from a single source to a wider map, then a filter.
    #[test]
    fn rebalance(data in prop::collection::vec(any::<u16>(), 0..300)) {
        for p in PARALLELISMS {
            let env = env(p);
            let out = env
                .from_iter(data.clone())
                .rebalance()
                .map(|x| u32::from(x) * 3)
                .filter(|x| x % 2 == 0)
                .collect();
            rt().block_on(env.execute()).unwrap();
            let oracle: Vec<u32> = data.iter().map(|&x| u32::from(x) * 3).filter(|x| x % 2 == 0).collect();
            prop_assert_eq!(sorted(out.take()), sorted(oracle));
        }
    }
}

/// With parallelism 1 end to end, order is preserved exactly.
#[test]
fn single_subtask_preserves_order() {
    let env = env(1);
    let out = env.from_iter(0..1000u32).map(|x| x * 2).filter(|x| x % 3 != 0).collect();
    rt().block_on(env.execute()).unwrap();
    let oracle: Vec<u32> = (0..1000).map(|x| x * 2).filter(|x| x % 3 != 0).collect();
    assert_eq!(out.take(), oracle);
}
