//! Operator state (list, union, broadcast) through savepoints: a job at
//! parallelism 2 counts records per split in list state, its per-subtask
//! totals in union state and a setting in broadcast state; it is stopped
//! with a savepoint mid-stream and resumed at parallelism 1, 2 and 3.
//! The restored shares are compared with what a batch count says:
//! every split's count restored exactly once, plus what the resumed job
//! counted, equals the split's length.

use dataflow_core::state::operator_state::{BroadcastStateDescriptor, OperatorStateDescriptor, OperatorStateStore};
use dataflow_core::{BoxError, Collector, Operator, OperatorInfo, Record, StreamEnvironment};
use std::collections::BTreeMap;
use std::path::Path;

mod common;
use common::{Gate, gate, rt, stop_at_gates};

const SPLITS: usize = 4;
const PER_SPLIT: u64 = 1_000;
const OLD_P: usize = 2;

/// What one subtask of the resumed job saw: (subtask, restored list
/// entries (split, count), restored union entries (old subtask, total),
/// restored broadcast setting, what it counted itself per split).
type Report = (u32, Vec<(u64, u64)>, Vec<(u32, u64)>, Option<u64>, Vec<(u64, u64)>);

fn per_split() -> OperatorStateDescriptor<(u64, u64)> {
    OperatorStateDescriptor::list("per-split")
}

fn totals() -> OperatorStateDescriptor<(u32, u64)> {
    OperatorStateDescriptor::union("totals")
}

fn settings() -> BroadcastStateDescriptor<String, u64> {
    BroadcastStateDescriptor::new("settings")
}

/// Counts records per split (a record is `split * PER_SPLIT + i`); keeps
/// its counts in fields and moves them into the store on every snapshot.
struct Tally {
    store: OperatorStateStore,
    subtask: u32,
    parallelism: u64,
    restored: Vec<(u64, u64)>,
    union: Vec<(u32, u64)>,
    setting: Option<u64>,
    live: BTreeMap<u64, u64>,
}

impl Tally {
    fn new() -> Self {
        Self {
            store: OperatorStateStore::new(),
            subtask: 0,
            parallelism: 0,
            restored: Vec::new(),
            union: Vec::new(),
            setting: None,
            live: BTreeMap::new(),
        }
    }
}

impl Operator for Tally {
    type In = u64;
    type Out = Report;

    fn open(&mut self, info: &OperatorInfo) -> Result<(), BoxError> {
        // Restored before `open`.
        (self.subtask, self.parallelism) = (info.subtask as u32, info.parallelism as u64);
        self.restored = self.store.list_state(&per_split())?.clone();
        self.union = self.store.list_state(&totals())?.clone();
        self.setting = self.store.broadcast_state(&settings())?.get("parallelism").copied();
        Ok(())
    }

    fn process(&mut self, r: Record<u64>, _out: &mut Collector<Report>) -> Result<(), BoxError> {
        *self.live.entry(r.value / PER_SPLIT).or_default() += 1;
        Ok(())
    }

    fn snapshot(
        &mut self,
        _b: &dataflow_core::checkpoint::CheckpointBarrier,
    ) -> Result<Option<dataflow_core::state::table::StateSnapshot>, BoxError> {
        let mut counts: BTreeMap<u64, u64> = self.restored.iter().copied().collect();
        for (split, n) in &self.live {
            *counts.entry(*split).or_default() += n;
        }
        let total = counts.values().sum();
        *self.store.list_state(&per_split())? = counts.into_iter().collect();
        *self.store.list_state(&totals())? = vec![(self.subtask, total)];
        self.store.broadcast_state(&settings())?.insert("parallelism".into(), self.parallelism);
        Ok(None)
    }

    fn finish(&mut self, out: &mut Collector<Report>) -> Result<(), BoxError> {
        let live = self.live.iter().map(|(s, n)| (*s, *n)).collect();
        out.collect_value((self.subtask, self.restored.clone(), self.union.clone(), self.setting, live), None);
        Ok(())
    }

    fn operator_state(&mut self) -> Option<&mut OperatorStateStore> {
        Some(&mut self.store)
    }
}

/// Records past the middle of a split are held until the stop.
fn past_middle(i: u64) -> bool {
    i % PER_SPLIT >= PER_SPLIT / 2
}

fn build(
    p: usize,
    restore: Option<&Path>,
    g: &Gate,
) -> (StreamEnvironment, dataflow_core::connectors::CollectHandle<Report>) {
    let env = StreamEnvironment::new().with_parallelism(p).with_batch_size(16);
    if let Some(sp) = restore {
        env.restore_from(sp);
    }
    let records = env.from_splits(SPLITS, |s| (0..PER_SPLIT).map(move |i| s as u64 * PER_SPLIT + i)).uid("splits");
    let records = records.apply_async(gate(g, |x: &u64| *x));
    let reports = records.transform_with("tally", |_| Tally::new()).uid("tally").collect();
    (env, reports)
}

fn stop_and_resume(p: usize) {
    let dir = tempfile::tempdir().unwrap();
    let g = Gate::holding(past_middle);
    let (env, _) = build(OLD_P, None, &g);
    let sp = stop_at_gates(env, &g, OLD_P, &dir.path().join("sp"), false).unwrap();

    let (env, reports) = build(p, Some(&sp), &Gate::default());
    rt().block_on(env.execute()).unwrap();
    let mut reports = reports.take();
    reports.sort_by_key(|r| r.0);
    assert_eq!(reports.iter().map(|r| r.0).collect::<Vec<_>>(), (0..p as u32).collect::<Vec<_>>());

    // List state: every split's count restored to exactly one subtask,
    // evenly spread; with the restored count, each split is whole.
    let mut restored: BTreeMap<u64, u64> = BTreeMap::new();
    for (_, list, ..) in &reports {
        for (split, n) in list {
            assert!(restored.insert(*split, *n).is_none(), "split {split} restored twice: {reports:?}");
        }
    }
    assert_eq!(restored.len(), SPLITS, "{reports:?}");
    let sizes: Vec<usize> = reports.iter().map(|r| r.1.len()).collect();
    assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1, "uneven: {sizes:?}");
    if p == OLD_P {
        // At the same parallelism every subtask gets its own entries back.
        for (subtask, list, ..) in &reports {
            assert!(list.iter().all(|(s, _)| *s as usize % OLD_P == *subtask as usize), "{reports:?}");
        }
    }
    let mut counted = restored.clone();
    for (.., live) in &reports {
        for (split, n) in live {
            *counted.entry(*split).or_default() += n;
        }
    }
    let expected: BTreeMap<u64, u64> = (0..SPLITS as u64).map(|s| (s, PER_SPLIT)).collect();
    assert_eq!(counted, expected, "restored {restored:?}, reports {reports:?}");
    // Nothing counted twice: the savepoint was taken mid-stream.
    assert!(restored.values().all(|n| *n > 0 && *n < PER_SPLIT), "{restored:?}");

    // Union state: every subtask sees every old subtask's total.
    let before: u64 = restored.values().sum();
    for (_, _, union, setting, _) in &reports {
        let mut union = union.clone();
        union.sort();
        assert_eq!(union.iter().map(|u| u.0).collect::<Vec<_>>(), [0, 1], "{reports:?}");
        assert_eq!(union.iter().map(|u| u.1).sum::<u64>(), before);
        // Broadcast state: a copy in every subtask.
        assert_eq!(*setting, Some(OLD_P as u64));
    }
}

#[test]
fn a_savepoint_at_p2_restores_operator_state_at_p1() {
    stop_and_resume(1);
}

#[test]
fn a_savepoint_at_p2_restores_operator_state_at_p2() {
    stop_and_resume(2);
}

#[test]
fn a_savepoint_at_p2_restores_operator_state_at_p3() {
    stop_and_resume(3);
}

#[test]
fn a_damaged_operator_state_file_fails_the_restore_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let g = Gate::holding(past_middle);
    let (env, _) = build(OLD_P, None, &g);
    let sp = stop_at_gates(env, &g, OLD_P, &dir.path().join("sp"), false).unwrap();
    let file = std::fs::read_dir(&sp)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().ends_with("-os"))
        .expect("an operator-state file in the savepoint");
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    std::fs::write(&file, bytes).unwrap();
    let (env, _) = build(1, Some(&sp), &Gate::default());
    let err = rt().block_on(env.execute()).unwrap_err().to_string();
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    assert!(err.contains(&name), "{err}");
}
