//! Windows that do not merge, fired by the plain end-of-window trigger (the
//! default of every tumbling and sliding window): state kept per key *and*
//! window, and one timer per window instead of one per key and window.
//!
//! Each (key, window) pair — a *pane* — is one entry of the operator's
//! state table, looked up by both, so what a record costs does not depend
//! on how many windows its key has open. Every window also keeps the list
//! of keys that have a pane in it, in the order the panes opened: that
//! list is the window's timer. When the watermark (the clock, for
//! processing-time windows) passes the window's end, the panes fire in
//! that order; when it passes the end plus the allowed lateness, they are
//! dropped. This is what the general [`WindowOperator`](super::WindowOperator)
//! does with a cleanup timer and a trigger timer per pane, for a fraction
//! of the work: registering a pane's timer is a push onto a list.
//!
//! Snapshots hold the panes in the table and the lists as timers (one per
//! pane, in the keyed timer format), so they restore with their key groups
//! at any parallelism.

use super::{Window, WindowAssigner, WindowFunction};
use crate::element::{Batch, CheckpointBarrier, Data, Record};
use crate::operator::KeyBatch;
use crate::operator::{BoxError, Collector, Operator, OperatorInfo, OutputTag, keyed_table};
use crate::time::{Clock, TimeDomain, Timer, Timestamp, Watermark, entries_of};
use dataflow_state::table::{StateSnapshot, StateTable};
use dataflow_state::{Key, Ttl};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// A key's pane of one window: the key of the operator's state table. Its
/// key group is its key's, so it lives with the rest of the key's state.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct Pane<K, W> {
    key: K,
    window: W,
}

impl<K: Key, W: Window> Key for Pane<K, W> {
    fn write_canonical(&self, out: &mut Vec<u8>) {
        self.key.write_canonical(out);
        // The window in postcard, as in timer entries. A window type whose
        // `Serialize` fails gets its debug form instead (still one form per
        // window).
        match postcard::to_extend(&self.window, Vec::new()) {
            Ok(bytes) => out.extend_from_slice(&bytes),
            Err(_) => out.extend_from_slice(format!("\u{0}{:?}", self.window).as_bytes()),
        }
    }

    #[inline]
    fn stable_hash(&self) -> u64 {
        self.key.stable_hash()
    }
}

/// The panes of an operator: each (key, window)'s accumulator.
type PaneTable<K, W, Acc> = StateTable<Pane<K, W>, Option<Acc>>;

/// The panes of one window. Whether it has fired follows from where it
/// waits: past its end (event-time windows with allowed lateness stay
/// after firing, until their cleanup time).
struct WindowPanes<K, W> {
    window: W,
    keys: Vec<K>,
}

/// The operator behind the [`WindowedStream`](crate::WindowedStream)s whose
/// windows do not merge and whose trigger is the default one.
pub(crate) struct PaneWindowOperator<K: Key, T, A: WindowAssigner<T>, F: WindowFunction<K, T, A::W>> {
    assigner: A,
    function: F,
    allowed_lateness: i64,
    late: Option<OutputTag<T>>,
    keys: Arc<dyn KeyBatch<T, K>>,
    ttl: Option<Ttl>,
    table: Option<PaneTable<K, A::W, F::Acc>>,
    /// The open windows by the time they next act (fire, or be dropped
    /// once fired), each with its panes' keys. Usually one or two.
    timers: BTreeMap<Timestamp, Vec<WindowPanes<K, A::W>>>,
    watermark: Watermark,
    processing_time: Timestamp,
    clock: Option<Arc<dyn Clock>>,
    max_parallelism: u32,
    scratch: Vec<K>,
    windows: Vec<A::W>,
    /// Spare key lists, reused by windows that open.
    spare: Vec<Vec<K>>,
}

impl<K, T, A, F> PaneWindowOperator<K, T, A, F>
where
    K: Key,
    T: Data,
    A: WindowAssigner<T>,
    F: WindowFunction<K, T, A::W>,
{
    /// The panes of `assigner`'s windows, computed by `function`, kept
    /// `allowed_lateness` ms after their end (event time); later elements
    /// go to `late` if given.
    pub(crate) fn new(
        assigner: A,
        function: F,
        allowed_lateness: i64,
        late: Option<OutputTag<T>>,
        keys: Arc<dyn KeyBatch<T, K>>,
        ttl: Option<Ttl>,
    ) -> Self {
        Self {
            assigner,
            function,
            allowed_lateness: allowed_lateness.max(0),
            late,
            keys,
            ttl,
            table: None,
            timers: BTreeMap::new(),
            watermark: Watermark::MIN,
            processing_time: Timestamp::MIN,
            clock: None,
            max_parallelism: 0,
            scratch: Vec::new(),
            windows: Vec::new(),
            spare: Vec::new(),
        }
    }

    fn event_time(&self) -> bool {
        self.assigner.is_event_time()
    }

    /// When `window`'s panes are dropped.
    fn cleanup_time(&self, window: &A::W) -> Timestamp {
        let max = window.max_timestamp();
        if self.event_time() { max.saturating_add(self.allowed_lateness) } else { max }
    }

    /// Whether the watermark passed `window`'s end (only in event time:
    /// processing-time windows fire and close at once).
    fn has_fired(&self, window: &A::W) -> bool {
        self.event_time() && window.max_timestamp() <= self.watermark.0
    }

    /// The list of keys of `window` (opened if new, as fired or not).
    fn panes_of(&mut self, window: &A::W) -> &mut Vec<K> {
        let fired = self.has_fired(window);
        let at = if fired { self.cleanup_time(window) } else { window.max_timestamp() };
        let bucket = self.timers.entry(at).or_default();
        let i = match bucket.iter().position(|p| &p.window == window) {
            Some(i) => i,
            None => {
                let keys = self.spare.pop().unwrap_or_default();
                bucket.push(WindowPanes { window: window.clone(), keys });
                bucket.len() - 1
            }
        };
        &mut bucket[i].keys
    }

    /// Adds a record of `key` to its windows; emits a pane that fires on it
    /// (a late element within the allowed lateness).
    fn add(&mut self, key: K, record: Record<T>, out: &mut Collector<F::Out>) -> Result<(), BoxError> {
        let ts = match (self.event_time(), record.timestamp()) {
            (true, Some(ts)) => ts,
            (true, None) => {
                return Err("an event-time window got a record without a timestamp: \
                            assign timestamps with `assign_timestamps_and_watermarks` before the window"
                    .into());
            }
            (false, _) => self.processing_time,
        };
        let mut windows = std::mem::take(&mut self.windows);
        self.assigner.assign(&record.value, ts, &mut windows);
        let watermark = self.watermark.0;
        let event_time = self.event_time();
        // Only windows still open take the element.
        windows.retain(|w| !event_time || w.max_timestamp().saturating_add(self.allowed_lateness) > watermark);
        let skipped = windows.is_empty();
        let (mut value, mut key) = (Some(record.value), Some(key));
        let n = windows.len();
        for (j, window) in windows.drain(..).enumerate() {
            let last = j + 1 == n;
            let (v, k) = match last {
                true => (value.take(), key.take()),
                false => (value.clone(), key.clone()),
            };
            let (Some(v), Some(k)) = (v, k) else { continue };
            let pane = Pane { key: k, window };
            let fires = event_time && pane.window.max_timestamp() <= watermark;
            let function = &mut self.function;
            let Some(table) = &mut self.table else {
                return Err("window state used before the operator was opened".into());
            };
            let opened = table.with_state(&pane, |acc| {
                let opened = acc.is_none();
                let next = match acc.take() {
                    Some(a) => function.add(a, v),
                    None => function.create(v),
                };
                if fires {
                    let result = function.emit(&pane.key, &pane.window, &next);
                    out.collect_value(result, Some(pane.window.max_timestamp()));
                }
                *acc = Some(next);
                Ok::<_, BoxError>((opened, false))
            })?;
            if opened {
                let Pane { key, window } = pane;
                self.panes_of(&window).push(key);
            }
        }
        self.windows = windows;
        if skipped
            && event_time
            && ts.saturating_add(self.allowed_lateness) <= watermark
            && let (Some(tag), Some(v)) = (&self.late, value)
        {
            out.output(tag, v, Some(ts));
        }
        Ok(())
    }

    /// Fires and drops the windows due at `now` (the watermark, or the
    /// clock for processing-time windows), in time order, each window's
    /// panes in the order they opened.
    fn fire(&mut self, now: Timestamp, out: &mut Collector<F::Out>) -> Result<(), BoxError> {
        while let Some(entry) = self.timers.first_entry() {
            if *entry.key() > now {
                break;
            }
            let at = *entry.key();
            for WindowPanes { window, mut keys } in entry.remove() {
                let fired = at > window.max_timestamp();
                let cleanup = self.cleanup_time(&window);
                let drop = cleanup <= now;
                let Some(table) = &mut self.table else {
                    return Err("window fired before the operator was opened".into());
                };
                let function = &mut self.function;
                if let Some(first) = keys.first().cloned() {
                    // One pane, its key swapped in for each lookup.
                    let mut pane = Pane { key: first, window };
                    for key in &mut keys {
                        std::mem::swap(&mut pane.key, key);
                        let result = table.with_state(&pane, |acc| {
                            if !fired && let Some(acc) = acc.as_ref() {
                                let result = function.emit(&pane.key, &pane.window, acc);
                                out.collect_value(result, Some(pane.window.max_timestamp()));
                            }
                            Ok::<_, BoxError>(((), drop || acc.is_none()))
                        });
                        std::mem::swap(&mut pane.key, key);
                        result?;
                    }
                    if !drop {
                        let panes = WindowPanes { window: pane.window, keys };
                        self.timers.entry(cleanup).or_default().push(panes);
                        continue;
                    }
                }
                keys.clear();
                self.spare.push(keys);
            }
        }
        Ok(())
    }

    fn tick(&mut self) {
        if let Some(clock) = &self.clock {
            self.set_processing_time(clock.now_millis());
        }
    }

    fn set_processing_time(&mut self, now: Timestamp) {
        self.processing_time = now;
        if let Some(table) = &mut self.table {
            table.set_now(now);
        }
    }
}

impl<K, T, A, F> Operator for PaneWindowOperator<K, T, A, F>
where
    K: Key,
    T: Data,
    A: WindowAssigner<T>,
    F: WindowFunction<K, T, A::W>,
{
    type In = T;
    type Out = F::Out;

    fn open(&mut self, info: &OperatorInfo) -> Result<(), BoxError> {
        self.clock = Some(info.clock.clone());
        self.max_parallelism = info.max_parallelism;
        self.table = Some(keyed_table::open(info, &info.state_backend, self.ttl)?);
        self.tick();
        Ok(())
    }

    fn process(&mut self, record: Record<T>, out: &mut Collector<F::Out>) -> Result<(), BoxError> {
        self.keys.keys(std::slice::from_ref(&record.value), &mut self.scratch);
        match self.scratch.pop() {
            Some(key) => self.add(key, record, out),
            None => Err("the key function gave no key".into()),
        }
    }

    fn process_batch(&mut self, batch: &mut Batch<T>, out: &mut Collector<F::Out>) -> Result<(), BoxError> {
        self.tick();
        let mut keys = std::mem::take(&mut self.scratch);
        self.keys.keys(batch.values(), &mut keys);
        let result = keys.drain(..).zip(batch.drain()).try_for_each(|(key, record)| self.add(key, record, out));
        self.scratch = keys;
        result
    }

    fn on_watermark(&mut self, watermark: Watermark, out: &mut Collector<F::Out>) -> Result<(), BoxError> {
        self.tick();
        self.watermark = watermark;
        if self.event_time() { self.fire(watermark.0, out) } else { Ok(()) }
    }

    fn snapshot(&mut self, barrier: &CheckpointBarrier) -> Result<Option<StateSnapshot>, BoxError> {
        let domain = if self.event_time() { TimeDomain::EventTime } else { TimeDomain::ProcessingTime };
        let timers = self.timers.iter().flat_map(|(&timestamp, bucket)| {
            bucket
                .iter()
                .flat_map(move |p| p.keys.iter().map(move |key| Timer { key, namespace: &p.window, timestamp, domain }))
        });
        let timers = entries_of(timers, self.max_parallelism)?;
        let Some(table) = &mut self.table else { return Ok(None) };
        Ok(Some(keyed_table::snapshot(table, barrier, timers)?))
    }

    fn restore(&mut self, files: &[&Path]) -> Result<(), BoxError> {
        let Some(table) = &mut self.table else { return Err("restore before the operator was opened".into()) };
        let timers: Vec<Timer<K, A::W>> = keyed_table::restore(table, files)?;
        for t in timers {
            let bucket = self.timers.entry(t.timestamp).or_default();
            match bucket.iter_mut().find(|p| p.window == t.namespace) {
                Some(panes) => panes.keys.push(t.key),
                None => bucket.push(WindowPanes { window: t.namespace, keys: vec![t.key] }),
            }
        }
        Ok(())
    }

    fn next_processing_time(&self) -> Option<Timestamp> {
        match self.event_time() {
            true => None,
            false => self.timers.keys().next().copied(),
        }
    }

    fn on_processing_time(&mut self, now: Timestamp, out: &mut Collector<F::Out>) -> Result<(), BoxError> {
        self.set_processing_time(now);
        if self.event_time() { Ok(()) } else { self.fire(now, out) }
    }
}

#[cfg(test)]
mod tests {
    use super::super::probed::{Probed, probes};
    use super::*;
    use crate::operator::{BadRecordPolicy, KeyFn};
    use crate::time::ManualClock;
    use dataflow_state::table::StateBackendConfig;

    #[derive(Clone)]
    struct PerTimestamp;

    impl WindowAssigner<(u32, i64)> for PerTimestamp {
        type W = Probed;
        type DefaultTrigger = super::super::EventTimeTrigger;
        fn assign(&self, _: &(u32, i64), ts: Timestamp, out: &mut Vec<Probed>) {
            out.push(Probed(ts));
        }
        fn is_event_time(&self) -> bool {
            true
        }
    }

    #[derive(Clone)]
    struct Count;

    impl WindowFunction<u32, (u32, i64), Probed> for Count {
        type Acc = u64;
        type Out = u64;
        fn create(&mut self, _: (u32, i64)) -> u64 {
            1
        }
        fn add(&mut self, acc: u64, _: (u32, i64)) -> u64 {
            acc + 1
        }
        fn merge(&mut self, a: u64, b: u64) -> u64 {
            a + b
        }
        fn emit(&mut self, _: &u32, _: &Probed, acc: &u64) -> u64 {
            *acc
        }
    }

    /// What adding one record of a key costs, in window comparisons and
    /// hashes, with `n` windows of that key open: into an open window and
    /// into a new one.
    fn access_cost(n: i64) -> u64 {
        let keys: Arc<dyn KeyBatch<(u32, i64), u32>> = Arc::new(KeyFn(|e: &(u32, i64)| e.0));
        let mut op = PaneWindowOperator::new(PerTimestamp, Count, 0, None, keys, None);
        let info = OperatorInfo {
            name: "panes".into(),
            subtask: 0,
            parallelism: 1,
            max_parallelism: 128,
            bad_record_policy: BadRecordPolicy::Fail,
            clock: Arc::new(ManualClock::new(0)),
            state_backend: StateBackendConfig::InMemory,
            operator_index: 0,
            incremental_checkpoints: false,
            storage_options: Arc::from([]),
        };
        op.open(&info).unwrap();
        let mut out = Collector::new();
        let mut add = |ts: i64| probes(|| op.process(Record::with_timestamp((7, ts), ts), &mut out).unwrap());
        for ts in 0..n {
            add(ts);
        }
        add(n / 2).max(add(n))
    }

    #[test]
    fn adding_to_a_window_costs_the_same_however_many_the_key_has_open() {
        let costs: Vec<(i64, u64)> = [1, 10, 100, 1_000, 10_000].map(|n| (n, access_cost(n))).to_vec();
        // A lookup by (key, window): a hash and a comparison, and for a new
        // window its list of keys (one comparison); a scan of the key's
        // windows would make thousands.
        assert!(costs.iter().all(|c| c.1 <= 4), "{costs:?}");
    }
}
