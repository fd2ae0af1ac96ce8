//! Windows against a plain batch computation over the same events:
//! tumbling, sliding and session windows over random keys and timestamps
//! with a bounded disorder, split over 1–4 parallel source partitions, with
//! late data within and beyond the allowed lateness.
//!
//! Every partition first sends its on-time events (disorder below the
//! watermark strategy's bound, so none of them is late), ending with one at
//! the same largest timestamp, so every partition ends this phase at the
//! same watermark `W`. Once the window operators' watermark reached `W`
//! (observed after them), each partition sends its late events and ends.
//! That makes lateness decidable from the events alone: a late event is
//! dropped from a window iff that window's end plus the lateness is at or
//! below `W`, whatever the interleaving of partitions.

use dataflow_core::connectors::{Source, SourceContext, SourceStatus};
use dataflow_core::operator::OutputTag;
use dataflow_core::time::{Watermark, WatermarkStrategy};
use dataflow_core::window::{
    EventTimeSessionWindows, EventTimeTrigger, SlidingEventTimeWindows, TimeWindow, Trigger, TumblingEventTimeWindows,
    WindowAssigner,
};
use dataflow_core::{BoxError, Collector, Operator, Record, StreamEnvironment};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;
use std::time::Duration;

fn rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap())
}

/// An event: key, event time, unique id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
struct Ev {
    key: u8,
    ts: i64,
    id: u32,
}

/// The disorder bound of the watermark strategy; on-time events are at
/// most `BOUND - 1` behind the largest timestamp before them.
const BOUND: i64 = 20;
const SIZE: i64 = 50;
const SLIDE: i64 = 20;
const GAP: i64 = 15;

/// One partition's events: on time, then late.
#[derive(Clone, Debug)]
struct Partition {
    on_time: Vec<Ev>,
    late: Vec<Ev>,
}

/// A source that sends the on-time events, waits until the probe saw the
/// watermark `w`, then sends the late ones.
struct PhasedSource {
    part: Partition,
    sent: usize,
    probe: tokio::sync::watch::Receiver<i64>,
    w: i64,
    waited: bool,
}

#[async_trait::async_trait]
impl Source<Ev> for PhasedSource {
    async fn poll_batch(&mut self, ctx: &mut SourceContext<Ev>) -> Result<SourceStatus, BoxError> {
        if self.sent < self.part.on_time.len() {
            while self.sent < self.part.on_time.len() && !ctx.is_full() {
                ctx.collect(self.part.on_time[self.sent], None);
                self.sent += 1;
            }
            return Ok(SourceStatus::More);
        }
        if !self.waited {
            let w = self.w;
            self.probe.wait_for(|seen| *seen >= w).await?;
            self.waited = true;
        }
        for e in self.part.late.drain(..) {
            ctx.collect(e, None);
        }
        Ok(SourceStatus::Finished)
    }
}

/// Passes records on and publishes the watermark it sees.
#[derive(Clone)]
struct Probe(std::sync::Arc<tokio::sync::watch::Sender<i64>>);

impl Operator for Probe {
    type In = Fired;
    type Out = Fired;
    fn process(&mut self, r: Record<Fired>, out: &mut Collector<Fired>) -> Result<(), BoxError> {
        out.collect(r);
        Ok(())
    }
    fn on_watermark(&mut self, w: Watermark, _out: &mut Collector<Fired>) -> Result<(), BoxError> {
        self.0.send_replace(w.0);
        Ok(())
    }
}

/// A firing: key, window, ids of its elements (sorted).
type Fired = (u8, TimeWindow, Vec<u32>);

/// What the job produced: the last firing per (key, window), every firing,
/// and the ids sent to the late-data output.
struct Outcome {
    last: BTreeMap<(u8, TimeWindow), Vec<u32>>,
    all: Vec<Fired>,
    late: BTreeSet<u32>,
}

fn run<A>(assigner: A, parts: &[Partition], w: i64, lateness: i64, parallelism: usize) -> Outcome
where
    A: WindowAssigner<Ev, W = TimeWindow>,
    A::DefaultTrigger: Trigger<Ev, TimeWindow>,
{
    run_with(assigner, A::DefaultTrigger::default(), parts, w, lateness, parallelism)
}

/// [`run`] with the trigger `trigger`.
fn run_with<A, Tr>(assigner: A, trigger: Tr, parts: &[Partition], w: i64, lateness: i64, parallelism: usize) -> Outcome
where
    A: WindowAssigner<Ev, W = TimeWindow>,
    A::DefaultTrigger: Trigger<Ev, TimeWindow>,
    Tr: Trigger<Ev, TimeWindow>,
{
    let env = StreamEnvironment::new().with_parallelism(parallelism).with_batch_size(5).with_channel_capacity(2);
    let (tx, rx) = tokio::sync::watch::channel(i64::MIN);
    let parts = parts.to_vec();
    let strategy = WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_millis(BOUND as u64))
        .with_timestamp_assigner(|e: &Ev, _| e.ts);
    let late_tag = OutputTag::<Ev>::new("late");
    let n = parts.len();
    let fired = env
        .add_source("events", move |info| PhasedSource {
            part: parts[info.subtask].clone(),
            sent: 0,
            probe: rx.clone(),
            w,
            waited: false,
        })
        .set_parallelism(n)
        .assign_timestamps_and_watermarks(strategy)
        .key_by(|e: &Ev| e.key)
        .window(assigner)
        .trigger(trigger)
        .allowed_lateness(Duration::from_millis(lateness as u64))
        .side_output_late_data(&late_tag)
        .process(|k: &u8, w: &TimeWindow, xs: &[Ev]| {
            let mut ids: Vec<u32> = xs.iter().map(|e| e.id).collect();
            ids.sort();
            (*k, *w, ids)
        });
    let late = fired.side_output(&late_tag).collect();
    let out = fired.transform("probe", Probe(std::sync::Arc::new(tx))).set_parallelism(1).collect();
    rt().block_on(env.execute()).unwrap();
    let all = out.take();
    let mut last = BTreeMap::new();
    for (k, win, ids) in &all {
        last.insert((*k, *win), ids.clone());
    }
    let late_ids: Vec<u32> = late.take().into_iter().map(|e| e.id).collect();
    let late = late_ids.iter().copied().collect::<BTreeSet<_>>();
    assert_eq!(late.len(), late_ids.len(), "an event reached the late output twice");
    Outcome { last, all, late }
}

/// The windows `[start, start + size)` with `start` a multiple of `slide`
/// that contain `ts`, by brute force.
fn fixed_windows(ts: i64, size: i64, slide: i64) -> Vec<TimeWindow> {
    let first = (ts - size).div_euclid(slide) * slide;
    (0..)
        .map(|i| first + i * slide)
        .take_while(|s| *s <= ts)
        .filter(|s| ts < s + size)
        .map(|s| TimeWindow::new(s, s + size))
        .collect()
}

/// The oracle for fixed windows: each event in each of its windows unless
/// it is a late event and that window closed (end - 1 + lateness <= w).
fn oracle_fixed(parts: &[Partition], size: i64, slide: i64, w: i64, lateness: i64) -> Outcome {
    let mut last: BTreeMap<(u8, TimeWindow), Vec<u32>> = BTreeMap::new();
    let mut late = BTreeSet::new();
    for p in parts {
        for e in &p.on_time {
            for win in fixed_windows(e.ts, size, slide) {
                last.entry((e.key, win)).or_default().push(e.id);
            }
        }
        for e in &p.late {
            let open: Vec<_> =
                fixed_windows(e.ts, size, slide).into_iter().filter(|win| win.end - 1 + lateness > w).collect();
            if open.is_empty() {
                late.insert(e.id);
            }
            for win in open {
                last.entry((e.key, win)).or_default().push(e.id);
            }
        }
    }
    last.values_mut().for_each(|v| v.sort());
    Outcome { last, all: Vec::new(), late }
}

/// The oracle for sessions: late events whose own window closed are late
/// (the generator keeps them away from every session, and keeps the others
/// away from sessions already dropped); the sessions are the connected runs
/// of the other events' `[ts, ts + gap)`.
fn oracle_sessions(parts: &[Partition], w: i64, lateness: i64) -> Outcome {
    let mut per_key: BTreeMap<u8, Vec<Ev>> = BTreeMap::new();
    let mut late = BTreeSet::new();
    for p in parts {
        for e in &p.on_time {
            per_key.entry(e.key).or_default().push(*e);
        }
        for e in &p.late {
            if e.ts + GAP - 1 + lateness <= w {
                late.insert(e.id);
            } else {
                per_key.entry(e.key).or_default().push(*e);
            }
        }
    }
    let mut last = BTreeMap::new();
    for (key, mut evs) in per_key {
        evs.sort_by_key(|e| e.ts);
        let mut cur: Option<(TimeWindow, Vec<u32>)> = None;
        for e in evs {
            let win = TimeWindow::new(e.ts, e.ts + GAP);
            cur = match cur {
                Some((c, mut ids)) if c.intersects(&win) => {
                    ids.push(e.id);
                    Some((c.cover(&win), ids))
                }
                other => {
                    if let Some((c, ids)) = other {
                        last.insert((key, c), ids);
                    }
                    Some((win, vec![e.id]))
                }
            };
        }
        if let Some((c, ids)) = cur {
            last.insert((key, c), ids);
        }
    }
    last.values_mut().for_each(|v| v.sort());
    Outcome { last, all: Vec::new(), late }
}

/// Drops firings of session windows that later merged into a larger one.
fn without_merged_away(mut last: BTreeMap<(u8, TimeWindow), Vec<u32>>) -> BTreeMap<(u8, TimeWindow), Vec<u32>> {
    let windows: Vec<(u8, TimeWindow)> = last.keys().copied().collect();
    last.retain(|(k, w), _| {
        !windows.iter().any(|(k2, w2)| k2 == k && w2 != w && w2.start <= w.start && w.end <= w2.end)
    });
    last
}

/// Random partitions: on-time events with increasing base times and a
/// disorder below the bound, closed by an event at `end` on every
/// partition; then late events, some far in the past.
fn partitions(sessions: bool) -> impl Strategy<Value = (Vec<Partition>, i64)> {
    let on_time = prop::collection::vec((0u8..4, 0i64..8, 0..BOUND), 1..40);
    let late = prop::collection::vec((0u8..4, 0i64..120, any::<bool>()), 0..12);
    (prop::collection::vec((on_time, late), 1..=4), 1i64..3).prop_map(move |(raw, lateness_steps)| {
        let lateness = (lateness_steps - 1) * 30; // 0 or 30
        let mut id = 0u32;
        let mut next_id = || {
            id += 1;
            id
        };
        let mut parts: Vec<Partition> = Vec::new();
        let mut end = 0;
        for (on_time, _) in &raw {
            end = end.max(on_time.iter().map(|(_, step, _)| step).sum::<i64>() + 100);
        }
        let w = end - BOUND - 1;
        for (on_time, late) in raw {
            let mut base = 100; // on-time events start at 100 - disorder
            let mut evs = Vec::new();
            for (key, step, disorder) in on_time {
                base += step;
                evs.push(Ev { key, ts: base - disorder, id: next_id() });
            }
            evs.push(Ev { key: 0, ts: end, id: next_id() });
            let late = late
                .into_iter()
                .map(|(key, back, far)| {
                    let ts = match (far, sessions) {
                        // Far in the past: late everywhere, touching nothing.
                        (true, _) => -GAP - 10 - back,
                        // Behind the watermark, within or beyond lateness.
                        (false, false) => w - back,
                        // A session whose own window is still open and that
                        // cannot touch a session already dropped (those end
                        // at or before w + 1 - lateness): between there and
                        // the largest timestamp, `w + BOUND + 1`.
                        (false, true) => w + 2 - lateness + back % (lateness + BOUND - 1),
                    };
                    Ev { key, ts, id: next_id() }
                })
                .collect();
            parts.push(Partition { on_time: evs, late });
        }
        (parts, lateness)
    })
}

fn check(got: Outcome, want: Outcome, merging: bool) -> Result<(), TestCaseError> {
    // Every firing holds a subset of the final contents of its window.
    for (k, win, ids) in &got.all {
        if let Some(fin) = got.last.get(&(*k, *win)) {
            prop_assert!(ids.iter().all(|i| fin.contains(i)), "a firing of {win} has elements the last one lacks");
        }
    }
    let last = if merging { without_merged_away(got.last) } else { got.last };
    prop_assert_eq!(last, want.last);
    prop_assert_eq!(got.late, want.late);
    Ok(())
}

fn watermark_of(parts: &[Partition]) -> i64 {
    parts.iter().flat_map(|p| p.on_time.iter().map(|e| e.ts)).max().unwrap_or(0) - BOUND - 1
}

/// The default event-time trigger under another name: the window
/// operator does not recognise it as the default, so it runs the general
/// operator.
#[derive(Clone, Copy, Default)]
struct General(EventTimeTrigger);

impl Trigger<Ev, TimeWindow> for General {
    type State = bool;

    fn on_element(
        &mut self,
        e: &Ev,
        ts: i64,
        w: &TimeWindow,
        s: &mut bool,
        ctx: &mut TriggerContext<'_>,
    ) -> TriggerResult {
        self.0.on_element(e, ts, w, s, ctx)
    }

    fn on_event_time(&mut self, t: i64, w: &TimeWindow, s: &mut bool, ctx: &mut TriggerContext<'_>) -> TriggerResult {
        Trigger::<Ev, TimeWindow>::on_event_time(&mut self.0, t, w, s, ctx)
    }

    fn clear(&mut self, w: &TimeWindow, s: &mut bool, ctx: &mut TriggerContext<'_>) {
        Trigger::<Ev, TimeWindow>::clear(&mut self.0, w, s, ctx)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn tumbling_windows_match_a_batch_computation((parts, lateness) in partitions(false), p in 1usize..=3) {
        let w = watermark_of(&parts);
        let got = run(TumblingEventTimeWindows::of(Duration::from_millis(SIZE as u64)), &parts, w, lateness, p);
        check(got, oracle_fixed(&parts, SIZE, SIZE, w, lateness), false)?;
    }

    #[test]
    fn sliding_windows_match_a_batch_computation((parts, lateness) in partitions(false), p in 1usize..=3) {
        let w = watermark_of(&parts);
        let assigner =
            SlidingEventTimeWindows::of(Duration::from_millis(SIZE as u64), Duration::from_millis(SLIDE as u64));
        let got = run(assigner, &parts, w, lateness, p);
        check(got, oracle_fixed(&parts, SIZE, SLIDE, w, lateness), false)?;
    }

    /// Windows that do not merge, with the default trigger, keep their
    /// state per key and window and one timer per window; with any other
    /// trigger they run the general window operator (one cleanup timer per
    /// key and window). Forcing the general one with a trigger that behaves
    /// exactly as the default gives the same firings, late ones included.
    #[test]
    fn per_window_timers_fire_as_the_general_operator((parts, lateness) in partitions(false), p in 1usize..=3) {
        let w = watermark_of(&parts);
        let assigner =
            SlidingEventTimeWindows::of(Duration::from_millis(SIZE as u64), Duration::from_millis(SLIDE as u64));
        let panes = run(assigner, &parts, w, lateness, p);
        let general = run_with(assigner, General(EventTimeTrigger), &parts, w, lateness, p);
        // Late events of different partitions arrive in any order, so
        // only how often each window fired is the same, and its last firing.
        let firings = |o: &Outcome| {
            let mut n = BTreeMap::<(u8, TimeWindow), usize>::new();
            o.all.iter().for_each(|(k, w, _)| *n.entry((*k, *w)).or_default() += 1);
            n
        };
        prop_assert_eq!(firings(&panes), firings(&general));
        prop_assert_eq!(&panes.last, &general.last);
        prop_assert_eq!(&panes.late, &general.late);
        check(panes, oracle_fixed(&parts, SIZE, SLIDE, w, lateness), false)?;
    }

    #[test]
    fn session_windows_match_a_batch_computation((parts, lateness) in partitions(true), p in 1usize..=3) {
        let w = watermark_of(&parts);
        let got = run(EventTimeSessionWindows::with_gap(Duration::from_millis(GAP as u64)), &parts, w, lateness, p);
        check(got, oracle_sessions(&parts, w, lateness), true)?;
    }
}

/// Timestamps at the ends of the i64 range give clamped windows, not an
/// overflow (tests build with overflow checks). `i64::MIN` itself means "no
/// timestamp", as in Flink.
#[test]
fn extreme_timestamps_do_not_overflow() {
    let env = StreamEnvironment::new().with_parallelism(1);
    let events = vec![(1u8, i64::MIN + 1), (1, i64::MIN + 3), (2, i64::MAX), (2, i64::MAX - 1), (3, 0)];
    let out = env
        .from_iter(events)
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_millis(5))
                .with_timestamp_assigner(|e: &(u8, i64), _| e.1),
        )
        .key_by(|e: &(u8, i64)| e.0)
        .window(SlidingEventTimeWindows::of(Duration::from_millis(10), Duration::from_millis(5)))
        .count()
        .collect();
    rt().block_on(env.execute()).unwrap();
    let mut per_key = BTreeMap::new();
    for (k, _, n) in out.take() {
        *per_key.entry(k).or_insert(0) += n;
    }
    // Every event is counted in at least one window (the late output is not
    // set: nothing here is late at the window, the first events lead).
    assert!(per_key.get(&1).is_some_and(|n| *n >= 2), "{per_key:?}");
    assert!(per_key.get(&3).is_some_and(|n| *n == 2), "{per_key:?}");
}

/// Global windows fire only by their trigger: a purging count trigger
/// emits each run of three elements of a key once.
#[test]
fn global_windows_with_a_purging_count_trigger() {
    use dataflow_core::window::{CountTrigger, GlobalWindows, PurgingTrigger};
    let env = StreamEnvironment::new().with_parallelism(2);
    let input: Vec<(u8, u32)> = (0..20u32).map(|i| ((i % 2) as u8, i)).collect();
    let out = env
        .from_iter(input.clone())
        .key_by(|e: &(u8, u32)| e.0)
        .window(GlobalWindows)
        .trigger(PurgingTrigger::of(CountTrigger::of(3)))
        .reduce(|a, b| (a.0, a.1 + b.1))
        .collect();
    rt().block_on(env.execute()).unwrap();
    let mut got = out.take();
    got.sort();
    // Per key, in input order (one source subtask), sums of full runs of 3;
    // the last partial run (one element) never fires.
    let mut want = Vec::new();
    for key in 0..2u8 {
        let vals: Vec<u32> = input.iter().filter(|e| e.0 == key).map(|e| e.1).collect();
        want.extend(vals.chunks_exact(3).map(|c| (key, c.iter().sum::<u32>())));
    }
    want.sort();
    assert_eq!(got, want);
}

use dataflow_core::window::{TriggerContext, TriggerResult, Window};

/// Sets a timer at the window's end on one element and deletes it on the
/// next; fires when the window's end comes.
#[derive(Clone)]
struct Flip;

impl Trigger<(u8, i64), TimeWindow> for Flip {
    type State = bool;

    fn on_element(
        &mut self,
        _: &(u8, i64),
        _: i64,
        w: &TimeWindow,
        set: &mut bool,
        ctx: &mut TriggerContext<'_>,
    ) -> TriggerResult {
        match *set {
            true => ctx.delete_event_time_timer(w.max_timestamp()),
            false => ctx.register_event_time_timer(w.max_timestamp()),
        }
        *set = !*set;
        TriggerResult::Continue
    }

    fn on_event_time(&mut self, t: i64, w: &TimeWindow, _: &mut bool, _: &mut TriggerContext<'_>) -> TriggerResult {
        match t == w.max_timestamp() {
            true => TriggerResult::Fire,
            false => TriggerResult::Continue,
        }
    }
}

/// A trigger that deletes its timer at the window's end does not delete
/// the window's cleanup timer (the same timer): the window still closes
/// at its end, and the trigger still hears of that time and fires, so
/// every window, with an odd or an even number of elements, fires once.
#[test]
fn a_trigger_deleting_its_end_timer_leaves_the_cleanup_in_place() {
    let env = StreamEnvironment::new().with_parallelism(2);
    let input: Vec<(u8, i64)> = (0..60i64).map(|i| ((i % 3) as u8, i * 7 % 100)).collect();
    let out = env
        .from_iter(input.clone())
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_millis(100))
                .with_timestamp_assigner(|e: &(u8, i64), _| e.1),
        )
        .key_by(|e: &(u8, i64)| e.0)
        .window(TumblingEventTimeWindows::of(Duration::from_millis(10)))
        .trigger(Flip)
        .count()
        .map(|(k, w, n): (u8, TimeWindow, u64)| (k, w.start, n))
        .collect();
    rt().block_on(env.execute()).unwrap();
    let mut got = out.take();
    got.sort();
    let mut want: BTreeMap<(u8, i64), u64> = BTreeMap::new();
    for (k, ts) in &input {
        *want.entry((*k, ts - ts.rem_euclid(10))).or_default() += 1;
    }
    assert!(want.values().any(|n| n % 2 == 0) && want.values().any(|n| n % 2 == 1));
    assert_eq!(got, want.into_iter().map(|((k, s), n)| (k, s, n)).collect::<Vec<_>>());
}
