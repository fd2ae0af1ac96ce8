//! Timers of keyed operators: time order, deduplication, deletion,
//! processing time on a manual clock, per key at parallelism > 1, and
//! through `#[operator(on_timer = ..)]`.

use dataflow_core::operator::{FnOperator, KeyedContext, KeyedFnOperator};
use dataflow_core::state::key_group::{assign_to_key_group, operator_index_for_key_group};
use dataflow_core::time::{ManualClock, TimeDomain, Timer, Timestamp, WatermarkStrategy};
use dataflow_core::{BoxError, OperatorInfo, Record, StreamEnvironment, ValueState, operator};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What a record asks the operator to do with its key's timers.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
enum Cmd {
    Register(TimeDomain, Timestamp),
    Delete(TimeDomain, Timestamp),
}

/// Registers and deletes timers as told; emits `(key, domain, time,
/// subtask, records seen by the key, processing time)` when one fires.
#[derive(Clone, Default)]
struct Timers {
    subtask: usize,
}

type Fired = (u32, TimeDomain, Timestamp, usize, u64, Timestamp);

impl FnOperator for Timers {
    const NAME: &'static str = "timers";
}

impl KeyedFnOperator<u32> for Timers {
    type In = (u32, Cmd);
    type Out = Fired;
    type State = ValueState<u64>;
    type Namespace = ();

    fn open(&mut self, info: &OperatorInfo) -> Result<(), BoxError> {
        self.subtask = info.subtask;
        Ok(())
    }

    fn process_keyed(
        &mut self,
        _key: &u32,
        r: Record<(u32, Cmd)>,
        seen: &mut ValueState<u64>,
        ctx: &mut KeyedContext<'_, u32, (), Fired>,
    ) -> Result<(), BoxError> {
        *seen.get_or_insert_with(|| 0) += 1;
        match r.value.1 {
            Cmd::Register(d, t) => ctx.register_timer(d, (), t),
            Cmd::Delete(d, t) => ctx.delete_timer(d, (), t),
        }
        Ok(())
    }

    fn on_timer(
        &mut self,
        timer: Timer<u32, ()>,
        seen: &mut ValueState<u64>,
        ctx: &mut KeyedContext<'_, u32, (), Fired>,
    ) -> Result<(), BoxError> {
        let n = seen.value().copied().unwrap_or(0);
        let now = ctx.current_processing_time();
        ctx.collect_value((timer.key, timer.domain, timer.timestamp, self.subtask, n, now), Some(timer.timestamp));
        Ok(())
    }
}

use Cmd::*;
use TimeDomain::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_timers_fire_in_time_order_once_and_not_when_deleted() {
    let env = StreamEnvironment::new().with_parallelism(1);
    let cmds = vec![
        (1, Register(EventTime, 30)),
        (1, Register(EventTime, 10)),
        (2, Register(EventTime, 15)),
        (1, Register(EventTime, 20)),
        (1, Register(EventTime, 10)), // a duplicate
        (2, Register(EventTime, 15)), // a duplicate
        (1, Register(EventTime, 40)),
        (1, Delete(EventTime, 20)),
        (2, Delete(EventTime, 99)), // never registered
    ];
    let out = env.from_iter(cmds).key_by(|c: &(u32, Cmd)| c.0).apply(Timers::default()).collect();
    env.execute().await.unwrap();
    // All fire at the end of input (the maximum watermark), in time order.
    let fired: Vec<(u32, Timestamp)> = out.take().into_iter().map(|f| (f.0, f.2)).collect();
    assert_eq!(fired, [(1, 10), (2, 15), (1, 30), (1, 40)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_timers_fire_as_the_watermark_passes_them() {
    // Batches of one: a watermark (timestamp - 1) follows every record.
    let env = StreamEnvironment::new().with_parallelism(1).with_batch_size(1);
    let input: Vec<(u32, Cmd, Timestamp)> = vec![
        (1, Register(EventTime, 5), 0),
        (2, Register(EventTime, 3), 1),
        (3, Register(EventTime, 100), 4), // watermark 3: fires key 2's timer
        (4, Register(EventTime, 7), 6),   // watermark 5: fires key 1's
        (5, Register(EventTime, 8), 9),   // watermark 8: fires 7 and 8
    ];
    let out = env
        .from_iter(input)
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_monotonous_timestamps().with_timestamp_assigner(|r: &(u32, Cmd, i64), _| r.2),
        )
        .map(|(k, c, _)| (k, c))
        .key_by(|c: &(u32, Cmd)| c.0)
        .apply(Timers::default())
        .collect();
    env.execute().await.unwrap();
    let fired: Vec<(u32, Timestamp)> = out.take().into_iter().map(|f| (f.0, f.2)).collect();
    assert_eq!(fired, [(2, 3), (1, 5), (4, 7), (5, 8), (3, 100)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processing_timers_follow_the_manual_clock() {
    let clock = Arc::new(ManualClock::new(1_000));
    let env = StreamEnvironment::new().with_parallelism(1).with_clock(clock.clone());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<(u32, Cmd)>();
    let (out_tx, mut out) = tokio::sync::mpsc::channel(16);
    env.from_stream(tokio_stream(rx)).key_by(|c: &(u32, Cmd)| c.0).apply(Timers::default()).sink_channel(out_tx);
    let job = tokio::spawn(env.execute());

    tx.send((7, Register(ProcessingTime, 1_100))).unwrap();
    tx.send((8, Register(ProcessingTime, 1_200))).unwrap();
    tx.send((8, Register(ProcessingTime, 1_150))).unwrap();
    tx.send((8, Delete(ProcessingTime, 1_150))).unwrap();
    // The registrations are processed before this marker, whose own timer
    // fires at once: the clock already passed 1 000.
    tx.send((9, Register(ProcessingTime, 1_000))).unwrap();
    assert_eq!(out.recv().await.unwrap().0, 9);

    clock.advance(50); // 1 050: nothing due
    clock.advance(60); // 1 110: key 7's timer
    let f = out.recv().await.unwrap();
    assert_eq!((f.0, f.1, f.2, f.5), (7, ProcessingTime, 1_100, 1_110), "fired at the wrong time");
    clock.set(1_300); // key 8's timer at 1 200 (1 150 was deleted)
    let f = out.recv().await.unwrap();
    assert_eq!((f.0, f.2, f.5), (8, 1_200, 1_300));
    drop(tx);
    job.await.unwrap().unwrap();
    assert!(out.recv().await.is_none(), "a deleted or duplicate timer fired");
}

/// An unbounded channel as a `futures::Stream`.
fn tokio_stream<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<T>,
) -> impl futures::Stream<Item = T> + Send + Unpin + 'static {
    Box::pin(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timers_are_per_key_on_the_subtask_that_owns_the_key() {
    for p in [2, 3] {
        let env = StreamEnvironment::new().with_parallelism(p).with_batch_size(8);
        let mut cmds = Vec::new();
        for i in 0..600u32 {
            let key = i % 50;
            cmds.push((key, Register(EventTime, i64::from(key % 7))));
        }
        let out = env.from_iter(cmds.clone()).key_by(|c: &(u32, Cmd)| c.0).apply(Timers::default()).collect();
        env.execute().await.unwrap();

        let mut want: BTreeMap<u32, (Timestamp, u64)> = BTreeMap::new();
        for (k, c) in &cmds {
            if let Register(_, t) = c {
                let e = want.entry(*k).or_insert((*t, 0));
                e.1 += 1;
            }
        }
        let mut got = BTreeMap::new();
        for (key, _, t, subtask, seen, _) in out.take() {
            let owner = operator_index_for_key_group(128, p as u32, assign_to_key_group(&key, 128)) as usize;
            assert_eq!(subtask, owner, "key {key} fired on subtask {subtask} of {p}");
            assert!(got.insert(key, (t, seen)).is_none(), "key {key}'s timer fired twice");
        }
        assert_eq!(got, want);
    }
}

/// Counts a key's records and reports the count 10 ms (event time) after
/// the key's first record.
#[operator(on_timer = report)]
fn count_then_report(word: (String, i64), count: &mut ValueState<u64>, ctx: &mut operator::Context<(u64, i64)>) {
    if count.value().is_none() {
        ctx.register_event_time_timer(word.1 + 10);
    }
    *count.get_or_insert_with(|| 0) += 1;
}

fn report(at: Timestamp, count: &mut ValueState<u64>, ctx: &mut operator::Context<(u64, i64)>) {
    ctx.emit((count.take().unwrap_or(0), at));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_functions_set_timers_through_their_context() {
    let env = StreamEnvironment::new().with_parallelism(2).with_batch_size(1);
    let words: Vec<(String, i64)> =
        vec![("a".into(), 0), ("b".into(), 2), ("a".into(), 5), ("a".into(), 12), ("b".into(), 30), ("a".into(), 31)];
    let out = env
        .from_iter(words)
        .set_parallelism(1)
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_monotonous_timestamps().with_timestamp_assigner(|w: &(String, i64), _| w.1),
        )
        .key_by(|w: &(String, i64)| w.0.clone())
        .apply(count_then_report())
        .collect();
    env.execute().await.unwrap();
    let mut got = out.take();
    got.sort_by_key(|x| x.1);
    // a: 0, 5, 12 → timer 10 fires at watermark 11 (after 12 was counted)
    // with 3; b: 2, 30 → timer 12 fires at watermark 29 with 2; a: 31 →
    // timer 41 fires at the end with 1.
    assert_eq!(got, [(3, 10), (2, 12), (1, 41)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timers_outside_a_keyed_stream_are_an_error() {
    #[operator]
    fn sets_a_timer(x: u8, ctx: &mut operator::Context<u8>) {
        ctx.register_event_time_timer(i64::from(x));
        ctx.emit(x);
    }
    let env = StreamEnvironment::new().with_parallelism(1);
    let _ = env.from_iter(vec![1u8]).apply(sets_a_timer()).collect();
    let err = env.execute().await.unwrap_err();
    assert!(format!("{err:?}").contains("keyed stream"), "{err:?}");
}
