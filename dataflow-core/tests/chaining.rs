//! Chaining: forward edges between operators of equal parallelism run in
//! one task; changing one parallelism splits the chain.

use dataflow_core::{Partitioning, StreamEnvironment};

fn job(
    env: &StreamEnvironment,
    map_parallelism: Option<usize>,
) -> dataflow_core::connectors::CollectHandle<(u64, u64)> {
    let mapped = env.from_parallel_iter(|i| (0..1000u64).skip(i.subtask).step_by(i.parallelism)).map(|x| x * 3);
    let mapped = match map_parallelism {
        Some(p) => mapped.set_parallelism(p),
        None => mapped,
    };
    mapped.filter(|x| x % 2 == 0).key_by(|x| x % 10).reduce(|a, b| a.max(b)).map(|m| (m % 10, m)).collect()
}

fn expected_max() -> Vec<(u64, u64)> {
    let mut best = std::collections::BTreeMap::new();
    for x in (0..1000u64).map(|x| x * 3).filter(|x| x % 2 == 0) {
        let e = best.entry(x % 10).or_insert(0);
        *e = x.max(*e);
    }
    best.into_iter().collect()
}

fn final_max(out: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    let mut best = std::collections::BTreeMap::new();
    for (k, m) in out {
        let e = best.entry(k).or_insert(0);
        *e = m.max(*e);
    }
    best.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equal_parallelism_chains_forward_edges() {
    let env = StreamEnvironment::new().with_parallelism(2);
    let out = job(&env, None);
    let plan = env.explain().unwrap();
    println!("{plan}");
    let chains: Vec<Vec<&str>> = plan.chains.iter().map(|c| c.operators.iter().map(String::as_str).collect()).collect();
    assert_eq!(chains, [vec!["parallel source", "map", "filter"], vec!["reduce", "map", "collect"]]);
    assert!(plan.chains.iter().all(|c| c.parallelism == 2));
    assert_eq!(plan.tasks(), 4);
    assert_eq!(plan.edges.len(), 1);
    assert_eq!(plan.edges[0].partitioning, Partitioning::Hash);
    assert_eq!(plan.channels(), 4);
    env.execute().await.unwrap();
    assert_eq!(final_max(out.take()), expected_max());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_one_parallelism_splits_the_chain() {
    let env = StreamEnvironment::new().with_parallelism(2);
    let out = job(&env, Some(3));
    let plan = env.explain().unwrap();
    println!("{plan}");
    let chains: Vec<(Vec<&str>, usize)> =
        plan.chains.iter().map(|c| (c.operators.iter().map(String::as_str).collect(), c.parallelism)).collect();
    // The map alone runs at 3; the filter keeps the default parallelism (2),
    // so the one chain of four operators becomes three chains around it.
    assert_eq!(
        chains,
        [(vec!["parallel source"], 2), (vec!["map"], 3), (vec!["filter"], 2), (vec!["reduce", "map", "collect"], 2),]
    );
    assert_eq!(plan.tasks(), 9);
    let edges: Vec<(Partitioning, usize)> = plan.edges.iter().map(|e| (e.partitioning, e.channels)).collect();
    assert_eq!(edges, [(Partitioning::Rebalance, 6), (Partitioning::Rebalance, 6), (Partitioning::Hash, 4)]);
    assert_eq!(plan.channels(), 16);
    env.execute().await.unwrap();
    assert_eq!(final_max(out.take()), expected_max());
}

#[test]
fn forward_between_unequal_parallelism_is_an_error() {
    let env = StreamEnvironment::new().with_parallelism(2);
    env.from_parallel_iter(|_| 0..3).forward().map(|x| x).set_parallelism(3).for_each(|_| {});
    let err = env.explain().unwrap_err().to_string();
    assert!(err.contains("forward edge"), "{err}");
}
