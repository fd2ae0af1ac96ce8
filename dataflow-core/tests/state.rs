//! Keyed state and timers of running operators on every backend: snapshot
//! → restore round trips (also from one backend to another), restoring a
//! key-group subset (rescaling), processing during the asynchronous part of
//! a snapshot, and whole jobs on each backend against a batch computation.

use dataflow_core::operator::{FnOperator, KeyedContext, KeyedFnOperator, KeyedOperatorHarness};
use dataflow_core::state::key_group::{assign_to_key_group, operator_index_for_key_group};
use dataflow_core::time::{TimeDomain, Timer, WatermarkStrategy};
use dataflow_core::window::TumblingEventTimeWindows;
use dataflow_core::{
    BoxError, FjallStateConfig, ListState, MapState, Record, StateBackendConfig, StreamEnvironment, ValueState,
};
use std::collections::BTreeMap;
use std::path::Path;

/// An event: key, value, event time.
type Ev = (u32, u64, i64);

/// Per key: sums values, keeps them in a list and counts them by parity in
/// a map; the first record registers an event-time timer 10 after it and a
/// processing-time timer at 1000. A timer emits the key's summary and
/// clears its state.
#[derive(Clone)]
struct Summary;

/// `(key, sum, count, evens, timer domain, timer time)`.
type Out = (u32, u64, usize, u64, TimeDomain, i64);

impl FnOperator for Summary {
    const NAME: &'static str = "summary";
}

impl KeyedFnOperator<u32> for Summary {
    type In = Ev;
    type Out = Out;
    type State = (ValueState<u64>, ListState<u64>, MapState<bool, u64>);
    type Namespace = ();

    fn process_keyed(
        &mut self,
        _key: &u32,
        r: Record<Ev>,
        (sum, list, parity): &mut Self::State,
        ctx: &mut KeyedContext<'_, u32, (), Out>,
    ) -> Result<(), BoxError> {
        let (_, v, ts) = r.value;
        if sum.value().is_none() {
            ctx.register_event_time_timer(ts + 10);
            ctx.register_processing_time_timer(1000);
        }
        *sum.get_or_insert_with(|| 0) += v;
        list.add(v);
        *parity.entry(v % 2 == 0).or_insert(0) += 1;
        Ok(())
    }

    fn on_timer(
        &mut self,
        t: Timer<u32, ()>,
        (sum, list, parity): &mut Self::State,
        ctx: &mut KeyedContext<'_, u32, (), Out>,
    ) -> Result<(), BoxError> {
        if let Some(s) = sum.take() {
            let evens = parity.get(&true).copied().unwrap_or(0);
            ctx.collect_value((t.key, s, list.len(), evens, t.domain, t.timestamp), None);
        }
        list.clear();
        parity.clear();
        Ok(())
    }

    fn is_state_empty(&self, (sum, list, parity): &Self::State) -> bool {
        sum.value().is_none() && list.is_empty() && parity.is_empty()
    }
}

fn events(n: u64, keys: u32) -> Vec<Ev> {
    (0..n).map(|i| ((i * 7919 % u64::from(keys)) as u32, i % 13, (i % 97) as i64)).collect()
}

/// What `Summary` emits for `events` when every timer fires at the end
/// (event time first): one summary per key, computed in one batch pass.
fn oracle(events: &[Ev]) -> Vec<Out> {
    let mut per_key: BTreeMap<u32, (u64, usize, u64, i64)> = BTreeMap::new();
    for &(k, v, ts) in events {
        let e = per_key.entry(k).or_insert((0, 0, 0, ts + 10));
        e.0 += v;
        e.1 += 1;
        e.2 += u64::from(v % 2 == 0);
    }
    per_key.into_iter().map(|(k, (s, c, ev, t))| (k, s, c, ev, TimeDomain::EventTime, t)).collect()
}

fn harness(backend: &StateBackendConfig, p: usize, i: usize) -> KeyedOperatorHarness<Summary, u32> {
    KeyedOperatorHarness::subtask(Summary, |e: &Ev| e.0, backend.clone(), p, i).unwrap()
}

/// Fires every timer (event time, then processing time) and returns the
/// output, sorted.
fn fire_all(h: &mut KeyedOperatorHarness<Summary, u32>) -> Vec<Out> {
    h.watermark(i64::MAX).unwrap();
    h.set_processing_time(i64::MAX).unwrap();
    let mut out = h.take_output();
    out.sort();
    out
}

fn backends(dir: &Path) -> Vec<(&'static str, StateBackendConfig)> {
    let small = FjallStateConfig { cached_keys: 4, ..FjallStateConfig::new(dir.join("small")) };
    vec![
        ("memory", StateBackendConfig::InMemory),
        ("fjall", StateBackendConfig::Fjall(FjallStateConfig::new(dir.join("fjall")))),
        ("fjall, 4 cached keys", StateBackendConfig::Fjall(small)),
    ]
}

/// Snapshot after half the events, restore on every backend, process the
/// rest on both: the same output as never stopping, and as the batch
/// oracle. Timers (event and processing time) come back with the state.
#[test]
fn snapshot_restore_round_trip_on_every_pair_of_backends() {
    let dir = tempfile::tempdir().unwrap();
    let evs = events(5_000, 300);
    let (first, second) = evs.split_at(2_500);
    for (from_name, from) in backends(dir.path()) {
        let mut a = harness(&from, 1, 0);
        first.iter().for_each(|e| a.process(*e, Some(e.2)).unwrap());
        let file = dir.path().join(format!("snap-{from_name}"));
        a.snapshot().unwrap().write_to(&file).unwrap();
        second.iter().for_each(|e| a.process(*e, Some(e.2)).unwrap());
        let uninterrupted = fire_all(&mut a);
        assert_eq!(uninterrupted, oracle(&evs), "{from_name}");
        for (to_name, to) in backends(&dir.path().join(format!("to-{from_name}"))) {
            let mut b = harness(&to, 1, 0);
            b.restore(&[&file]).unwrap();
            second.iter().for_each(|e| b.process(*e, Some(e.2)).unwrap());
            assert_eq!(fire_all(&mut b), uninterrupted, "{from_name} -> {to_name}");
        }
    }
}

/// Processing-time timers restore too, and fire on the restored clock.
#[test]
fn processing_time_timers_come_back() {
    let dir = tempfile::tempdir().unwrap();
    for (name, backend) in backends(dir.path()) {
        let mut a = harness(&backend, 1, 0);
        a.process((7, 5, 0), Some(0)).unwrap();
        let file = dir.path().join(format!("pt-{name}"));
        a.snapshot().unwrap().write_to(&file).unwrap();
        let mut b = harness(&backend, 1, 0);
        b.restore(&[&file]).unwrap();
        b.set_processing_time(999).unwrap();
        assert!(b.take_output().is_empty(), "{name}");
        b.set_processing_time(1000).unwrap();
        assert_eq!(b.take_output(), [(7, 5, 1, 0, TimeDomain::ProcessingTime, 1000)], "{name}");
    }
}

/// A snapshot of one subtask restored at parallelism 3: each new subtask
/// takes exactly the keys of its key groups, and together they produce
/// what the one subtask would have. A key of another subtask's key group is
/// a typed error.
#[test]
fn restoring_a_key_group_subset_rescales() {
    let dir = tempfile::tempdir().unwrap();
    let evs = events(3_000, 500);
    for (name, backend) in backends(dir.path()) {
        let mut a = harness(&backend, 1, 0);
        evs.iter().for_each(|e| a.process(*e, Some(e.2)).unwrap());
        let file = dir.path().join(format!("subset-{name}"));
        a.snapshot().unwrap().write_to(&file).unwrap();
        let mut all = Vec::new();
        for i in 0..3 {
            let mut b = harness(&backend, 3, i);
            b.restore(&[&file]).unwrap();
            let out = fire_all(&mut b);
            for o in &out {
                assert_eq!(operator_index_for_key_group(128, 3, assign_to_key_group(&o.0, 128)), i, "{name}");
            }
            all.extend(out);
            let foreign = (0..).find(|k: &u32| operator_index_for_key_group(128, 3, assign_to_key_group(k, 128)) != i);
            let err = b.process((foreign.unwrap(), 1, 0), None).unwrap_err();
            assert!(err.to_string().contains("key group"), "{err}");
        }
        all.sort();
        assert_eq!(all, oracle(&evs), "{name}");
    }
}

/// The synchronous part returns at once; records are processed while the
/// asynchronous part writes, and none of them leak into the snapshot.
#[test]
fn processing_continues_while_a_snapshot_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let evs = events(40_000, 20_000);
    for (name, backend) in backends(dir.path()) {
        let mut a = harness(&backend, 1, 0);
        evs.iter().for_each(|e| a.process(*e, Some(e.2)).unwrap());
        let snapshot = a.snapshot().unwrap();
        let file = dir.path().join(format!("async-{name}"));
        let target = file.clone();
        let writing = std::thread::spawn(move || snapshot.write_to(&target));
        let mut during = 0u64;
        while !writing.is_finished() {
            a.process((during as u32 % 20_000, 1_000, 0), Some(0)).unwrap();
            during += 1;
        }
        writing.join().unwrap().unwrap();
        assert!(during > 0, "{name}: nothing was processed during the write");
        let mut b = harness(&backend, 1, 0);
        b.restore(&[&file]).unwrap();
        assert_eq!(fire_all(&mut b), oracle(&evs), "{name}: {during} records processed during the write");
    }
}

/// Per-key tumbling-window counts of a whole job, on every backend (with a
/// four-key cache, most state goes through the fjall store), against a
/// batch count.
#[test]
fn jobs_give_the_same_answer_on_every_backend() {
    let dir = tempfile::tempdir().unwrap();
    let evs = events(20_000, 1_000);
    let mut expected: BTreeMap<(u32, i64), u64> = BTreeMap::new();
    for &(k, _, ts) in &evs {
        *expected.entry((k, ts - ts % 10)).or_default() += 1;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    for (name, backend) in backends(dir.path()) {
        let env = StreamEnvironment::new().with_parallelism(2);
        env.set_state_backend(backend);
        let out = env
            .from_iter(evs.clone())
            .assign_timestamps_and_watermarks(
                WatermarkStrategy::for_bounded_out_of_orderness(std::time::Duration::from_millis(100))
                    .with_timestamp_assigner(|e: &Ev, _| e.2),
            )
            .key_by(|e: &Ev| e.0)
            .window(TumblingEventTimeWindows::of(std::time::Duration::from_millis(10)))
            .count()
            .collect();
        rt.block_on(env.execute()).unwrap();
        let got: BTreeMap<(u32, i64), u64> = out.take().into_iter().map(|(k, w, n)| ((k, w.start), n)).collect();
        assert_eq!(got, expected, "{name}");
    }
    // The jobs removed their working stores.
    for sub in ["fjall", "small"] {
        let left = std::fs::read_dir(dir.path().join(sub)).map(|d| d.count()).unwrap_or(0);
        assert_eq!(left, 0, "{sub}");
    }
}

/// State TTL in processing time: a key's state expires `ttl` after its
/// last access; an expired state is never handed out, and snapshots leave
/// it out.
#[test]
fn state_expires_after_its_time_to_live() {
    use dataflow_core::operator::KeyedReduce;
    use dataflow_core::state::Ttl;
    let dir = tempfile::tempdir().unwrap();
    let ttl = Ttl::new(std::time::Duration::from_millis(100));
    let sum = || KeyedReduce::new(|a: (u32, u64), b: (u32, u64)| (a.0, a.1 + b.1));
    for (name, backend) in backends(dir.path()) {
        let mut h = KeyedOperatorHarness::with_state_ttl(sum(), |e: &(u32, u64)| e.0, backend.clone(), ttl).unwrap();
        h.process((1, 5), None).unwrap(); // key 1 until 100
        h.process((2, 7), None).unwrap(); // key 2 until 100
        h.set_processing_time(60).unwrap();
        h.process((1, 5), None).unwrap(); // key 1 renewed until 160
        h.set_processing_time(100).unwrap();
        let file = dir.path().join(format!("ttl-{name}"));
        h.snapshot().unwrap().write_to(&file).unwrap();
        h.process((2, 1), None).unwrap(); // expired at 100: starts over
        h.set_processing_time(159).unwrap();
        h.process((1, 1), None).unwrap(); // still alive
        assert_eq!(h.take_output(), [(1, 5), (2, 7), (1, 10), (2, 1), (1, 11)], "{name}");

        // The snapshot holds key 1 alone.
        let mut entries = 0;
        let all = dataflow_core::KeyGroupRange::new(0, 128);
        dataflow_core::state::backend::format::read_file(&file, all, &mut |_, _| {
            entries += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(entries, 1, "{name}");

        let mut r = KeyedOperatorHarness::with_state_ttl(sum(), |e: &(u32, u64)| e.0, backend, ttl).unwrap();
        r.restore(&[&file]).unwrap();
        r.set_processing_time(100).unwrap();
        r.process((2, 1), None).unwrap(); // not in the snapshot
        r.process((1, 1), None).unwrap(); // in it, until 160
        r.set_processing_time(500).unwrap();
        r.process((1, 1), None).unwrap(); // expired
        assert_eq!(r.take_output(), [(2, 1), (1, 11), (1, 1)], "{name}");
    }
}

/// A stateless operator on a keyed stream keeps no per-key entries, only
/// its timers (which its snapshots hold).
#[test]
fn stateless_keyed_operators_keep_only_their_timers() {
    #[derive(Clone)]
    struct Remind;
    impl FnOperator for Remind {
        const NAME: &'static str = "remind";
    }
    impl KeyedFnOperator<u32> for Remind {
        type In = u32;
        type Out = u32;
        type State = ();
        type Namespace = ();
        fn process_keyed(
            &mut self,
            k: &u32,
            _: Record<u32>,
            _: &mut (),
            ctx: &mut KeyedContext<'_, u32, (), u32>,
        ) -> Result<(), BoxError> {
            ctx.register_event_time_timer(i64::from(*k));
            Ok(())
        }
        fn on_timer(
            &mut self,
            t: Timer<u32, ()>,
            _: &mut (),
            ctx: &mut KeyedContext<'_, u32, (), u32>,
        ) -> Result<(), BoxError> {
            ctx.collect_value(t.key, None);
            Ok(())
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let mut h = KeyedOperatorHarness::new(Remind, |k: &u32| *k, StateBackendConfig::InMemory).unwrap();
    (0..1_000).for_each(|k| h.process(k, None).unwrap());
    let file = dir.path().join("remind");
    h.snapshot().unwrap().write_to(&file).unwrap();
    let mut ids = BTreeMap::new();
    let all = dataflow_core::KeyGroupRange::new(0, 128);
    dataflow_core::state::backend::format::read_file(&file, all, &mut |k, _| {
        *ids.entry(dataflow_core::state::table::state_id(k)).or_insert(0) += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(ids, BTreeMap::from([(dataflow_core::state::table::TIMERS_ID, 1_000)]));
    let mut r = KeyedOperatorHarness::new(Remind, |k: &u32| *k, StateBackendConfig::InMemory).unwrap();
    r.restore(&[&file]).unwrap();
    r.watermark(499).unwrap();
    assert_eq!(r.take_output().len(), 500);
}
