//! The window operator: a [`KeyedFnOperator`] whose per-key state is the
//! key's open windows and whose timers are namespaced by window, the same
//! machinery a user's keyed operator gets.
//!
//! Per element: the assigner names its windows; a window whose end plus the
//! allowed lateness is at or below the watermark is late and skipped; an
//! element all of whose windows are late goes to the late-data side output.
//! Otherwise it is added to each window (merging windows first merge with
//! the key's overlapping ones) and the trigger decides. Each window gets a
//! cleanup timer at its end plus the allowed lateness, when its state is
//! dropped.

use super::trigger::{Trigger, TriggerContext, TriggerResult};
use super::{Window, WindowAssigner, WindowFunction};
use crate::element::{Data, Record};
use crate::operator::{BoxError, FnOperator, KeyedContext, KeyedFnOperator, OperatorInfo, OutputTag};
use crate::time::{TimeDomain, Timer, TimerRequest, Timestamp, Watermark};
use dataflow_state::Key;
use rustc_hash::FxHashMap;
use smallvec::SmallVec;
use std::marker::PhantomData;

/// One open window of a key.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Slot<W, Acc, S> {
    window: W,
    /// `None` once purged (or never filled): a firing emits nothing.
    acc: Option<Acc>,
    trigger: S,
}

/// The open windows of one key (usually one: kept inline, so that the
/// state of a key of a tumbling window fits a cache line). A key
/// with more than 8 open windows (sources far apart, sliding
/// windows, long allowed lateness) gets an index by window, so finding a
/// window costs the same however many are open.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(bound(serialize = "W: serde::Serialize, Acc: serde::Serialize, S: serde::Serialize"))]
#[serde(bound(deserialize = "W: serde::Deserialize<'de>, Acc: serde::Deserialize<'de>, S: serde::Deserialize<'de>"))]
pub struct WindowState<W, Acc, S> {
    slots: SmallVec<[Slot<W, Acc, S>; 1]>,
    /// Each window's slot, once there are more than [`INDEXED`] (rebuilt
    /// after a restore, not stored). Boxed: most keys have none, and the
    /// state of every key stays small, so more keys fit in the cache.
    #[serde(skip)]
    index: Option<Box<FxHashMap<W, usize>>>,
}

/// Open windows of a key up to which a scan finds one (beyond: an index).
const INDEXED: usize = 8;

impl<W, Acc, S> Default for WindowState<W, Acc, S> {
    fn default() -> Self {
        Self { slots: SmallVec::new(), index: None }
    }
}

impl<W: Window, Acc, S> WindowState<W, Acc, S> {
    /// How many windows are open.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no window is open.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    fn find(&mut self, window: &W) -> Option<usize> {
        if self.slots.len() <= INDEXED {
            return self.slots.iter().position(|s| &s.window == window);
        }
        let slots = &self.slots;
        let index = self
            .index
            .get_or_insert_with(|| Box::new(slots.iter().enumerate().map(|(i, s)| (s.window.clone(), i)).collect()));
        index.get(window).copied()
    }

    /// Opens `slot`; returns its index.
    fn push(&mut self, slot: Slot<W, Acc, S>) -> usize {
        let i = self.slots.len();
        if let Some(index) = &mut self.index {
            index.insert(slot.window.clone(), i);
        }
        self.slots.push(slot);
        i
    }

    /// Closes the slot at `i` (the last slot takes its place).
    fn swap_remove(&mut self, i: usize) -> Slot<W, Acc, S> {
        let slot = self.slots.swap_remove(i);
        if let Some(index) = &mut self.index {
            index.remove(&slot.window);
            if let Some(moved) = self.slots.get(i) {
                index.insert(moved.window.clone(), i);
            }
            // (Not at INDEXED itself: a key around it would rebuild often.)
            if self.slots.len() <= INDEXED / 2 {
                self.index = None;
            }
        }
        if self.slots.spilled() && self.slots.len() <= 1 {
            self.slots.shrink_to_fit(); // back inline
        }
        slot
    }
}

/// The operator behind [`WindowedStream`](crate::WindowedStream).
pub struct WindowOperator<K, T, A: WindowAssigner<T>, Tr, F> {
    assigner: A,
    trigger: Tr,
    function: F,
    allowed_lateness: i64,
    late: Option<OutputTag<T>>,
    windows: Vec<A::W>,
    requests: Vec<TimerRequest>,
    _k: PhantomData<fn(K)>,
}

impl<K, T, A: WindowAssigner<T>, Tr: Clone, F: Clone> Clone for WindowOperator<K, T, A, Tr, F> {
    fn clone(&self) -> Self {
        Self {
            assigner: self.assigner.clone(),
            trigger: self.trigger.clone(),
            function: self.function.clone(),
            allowed_lateness: self.allowed_lateness,
            late: self.late.clone(),
            windows: Vec::new(),
            requests: Vec::new(),
            _k: PhantomData,
        }
    }
}

impl<K, T, A: WindowAssigner<T>, Tr, F> WindowOperator<K, T, A, Tr, F> {
    /// Windows from `assigner`, fired by `trigger`, computed by `function`;
    /// windows stay open `allowed_lateness` ms after their end; later
    /// elements go to `late` if given (and are dropped otherwise).
    pub fn new(assigner: A, trigger: Tr, function: F, allowed_lateness: i64, late: Option<OutputTag<T>>) -> Self {
        Self {
            assigner,
            trigger,
            function,
            allowed_lateness: allowed_lateness.max(0),
            late,
            windows: Vec::new(),
            requests: Vec::new(),
            _k: PhantomData,
        }
    }
}

impl<K, T, A: WindowAssigner<T>, Tr, F> FnOperator for WindowOperator<K, T, A, Tr, F> {
    const NAME: &'static str = "window";
}

type Ctx<'a, K, W, O> = KeyedContext<'a, K, W, O>;

impl<K, T, A, Tr, F> WindowOperator<K, T, A, Tr, F>
where
    K: Key,
    T: Data,
    A: WindowAssigner<T>,
    Tr: Trigger<T, A::W>,
    F: WindowFunction<K, T, A::W>,
{
    /// When `window`'s state is dropped (never for a window without end).
    fn cleanup_time(&self, window: &A::W) -> Option<Timestamp> {
        let max = window.max_timestamp();
        let t = if self.assigner.is_event_time() { max.saturating_add(self.allowed_lateness) } else { max };
        (t != Timestamp::MAX).then_some(t)
    }

    fn domain(&self) -> TimeDomain {
        if self.assigner.is_event_time() { TimeDomain::EventTime } else { TimeDomain::ProcessingTime }
    }

    fn is_late(&self, window: &A::W, watermark: Watermark) -> bool {
        self.assigner.is_event_time() && window.max_timestamp().saturating_add(self.allowed_lateness) <= watermark.0
    }

    /// Applies the timer requests the trigger made for `window`, which is
    /// open. Its cleanup timer stays as it is: a request for the same timer
    /// (the default triggers ask for one at the window's end, on every
    /// element) would find it registered already, and deleting it would
    /// leave the window's state behind. The trigger still hears of that
    /// time: the cleanup timer's firing goes to it first.
    #[inline]
    fn apply_requests(&mut self, window: &A::W, ctx: &mut Ctx<'_, K, A::W, F::Out>) {
        if self.requests.is_empty() {
            return;
        }
        if let Some(cleanup) = self.cleanup_time(window) {
            let domain = self.domain();
            self.requests.retain(|r| r.domain != domain || r.timestamp != cleanup);
        }
        self.apply_all_requests(window, ctx);
    }

    /// Applies every timer request for `window` (also one for its cleanup
    /// timer: when the window closes).
    fn apply_all_requests(&mut self, window: &A::W, ctx: &mut Ctx<'_, K, A::W, F::Out>) {
        for r in self.requests.drain(..) {
            match r.delete {
                false => ctx.register_timer(r.domain, window.clone(), r.timestamp),
                true => ctx.delete_timer(r.domain, window.clone(), r.timestamp),
            }
        }
    }

    fn trigger_ctx<'a>(requests: &'a mut Vec<TimerRequest>, ctx: &Ctx<'_, K, A::W, F::Out>) -> TriggerContext<'a> {
        TriggerContext::new(ctx.current_watermark(), ctx.current_processing_time(), requests)
    }

    /// Emits and/or purges `slot` as `result` says.
    fn act(
        &mut self,
        key: &K,
        slot: &mut Slot<A::W, F::Acc, Tr::State>,
        result: TriggerResult,
        ctx: &mut Ctx<'_, K, A::W, F::Out>,
    ) {
        if result.fires()
            && let Some(acc) = &slot.acc
        {
            let out = self.function.emit(key, &slot.window, acc);
            ctx.collect_value(out, Some(slot.window.max_timestamp()));
        }
        if result.purges() {
            slot.acc = None;
        }
    }

    /// A new slot for `window`, with its cleanup timer.
    fn open_slot(&mut self, window: A::W, ctx: &mut Ctx<'_, K, A::W, F::Out>) -> Slot<A::W, F::Acc, Tr::State> {
        if let Some(t) = self.cleanup_time(&window) {
            ctx.register_timer(self.domain(), window.clone(), t);
        }

        Slot { window, acc: None, trigger: Tr::State::default() }
    }

    /// Drops `slot`: its trigger's timers and its cleanup timer. Timers at
    /// or before the current time of their domain have fired already (or
    /// fire in this round and find no window): only later ones are deleted.
    fn close_slot(&mut self, mut slot: Slot<A::W, F::Acc, Tr::State>, ctx: &mut Ctx<'_, K, A::W, F::Out>) {
        let mut tctx = Self::trigger_ctx(&mut self.requests, ctx);
        self.trigger.clear(&slot.window, &mut slot.trigger, &mut tctx);
        if let Some(t) = self.cleanup_time(&slot.window) {
            self.requests.push(TimerRequest { domain: self.domain(), timestamp: t, delete: true });
        }
        let (watermark, now) = (ctx.current_watermark().0, ctx.current_processing_time());
        self.requests.retain(|r| match r.domain {
            TimeDomain::EventTime => r.timestamp > watermark,
            TimeDomain::ProcessingTime => r.timestamp > now,
        });
        self.apply_all_requests(&slot.window, ctx);
    }

    /// Adds `value` to the slot at `i` and lets the trigger decide.
    fn add_to(
        &mut self,
        key: &K,
        state: &mut WindowState<A::W, F::Acc, Tr::State>,
        i: usize,
        value: T,
        ts: Timestamp,
        ctx: &mut Ctx<'_, K, A::W, F::Out>,
    ) {
        let slot = &mut state.slots[i];
        let mut tctx = Self::trigger_ctx(&mut self.requests, ctx);
        let result = self.trigger.on_element(&value, ts, &slot.window, &mut slot.trigger, &mut tctx);

        slot.acc = Some(match slot.acc.take() {
            Some(acc) => self.function.add(acc, value),
            None => self.function.create(value),
        });
        if !self.requests.is_empty() {
            let window = slot.window.clone();
            self.apply_requests(&window, ctx);
        }
        if result != TriggerResult::Continue {
            self.act(key, &mut state.slots[i], result, ctx);
        }
    }

    /// Merges `window` with the key's open windows it overlaps; returns the
    /// index of the resulting slot, or `None` if it is late.
    fn merge_in(
        &mut self,
        state: &mut WindowState<A::W, F::Acc, Tr::State>,
        window: A::W,
        ctx: &mut Ctx<'_, K, A::W, F::Out>,
    ) -> Option<usize> {
        let mut merged = window;
        let mut absorbed = Vec::new();
        // Open windows never overlap each other, but the growing window may
        // reach several of them.
        while let Some((i, cover)) =
            state.slots.iter().enumerate().find_map(|(i, s)| s.window.merge(&merged).map(|c| (i, c)))
        {
            merged = cover;
            absorbed.push(state.swap_remove(i));
        }
        if absorbed.is_empty() {
            if self.is_late(&merged, ctx.current_watermark()) {
                return None;
            }
            let slot = self.open_slot(merged, ctx);
            return Some(state.push(slot));
        }
        // A window that already covers the element keeps its state and
        // timers; the others merge into it.
        let kept = absorbed.iter().position(|s| s.window == merged).map(|p| absorbed.swap_remove(p));
        let (mut slot, mut trigger_states) = match kept {
            Some(slot) if absorbed.is_empty() => return Some(state.push(slot)),
            Some(mut slot) => {
                let own = std::mem::take(&mut slot.trigger);
                (slot, vec![own])
            }
            None => (self.open_slot(merged, ctx), Vec::new()),
        };
        let skip = trigger_states.len();
        let mut old_windows = Vec::with_capacity(absorbed.len());
        for old in absorbed {
            slot.acc = match (slot.acc.take(), old.acc) {
                (Some(a), Some(b)) => Some(self.function.merge(a, b)),
                (a, b) => a.or(b),
            };
            trigger_states.push(old.trigger);
            old_windows.push(old.window);
        }
        let mut tctx = Self::trigger_ctx(&mut self.requests, ctx);
        self.trigger.on_merge(&slot.window, &trigger_states, &mut slot.trigger, &mut tctx);
        let window = slot.window.clone();
        self.apply_requests(&window, ctx);
        for (window, trigger) in old_windows.into_iter().zip(trigger_states.into_iter().skip(skip)) {
            self.close_slot(Slot { window, acc: None, trigger }, ctx);
        }
        Some(state.push(slot))
    }
}

impl<K, T, A, Tr, F> KeyedFnOperator<K> for WindowOperator<K, T, A, Tr, F>
where
    K: Key,
    T: Data,
    A: WindowAssigner<T>,
    Tr: Trigger<T, A::W>,
    F: WindowFunction<K, T, A::W>,
{
    type In = T;
    type Out = F::Out;
    type State = WindowState<A::W, F::Acc, Tr::State>;
    type Namespace = A::W;

    fn open(&mut self, _info: &OperatorInfo) -> Result<(), BoxError> {
        if self.assigner.is_merging() && !self.trigger.can_merge() {
            return Err("a merging window assigner (sessions) needs a trigger that supports merging".into());
        }
        Ok(())
    }

    fn process_keyed(
        &mut self,
        key: &K,
        record: Record<T>,
        state: &mut Self::State,
        ctx: &mut Ctx<'_, K, A::W, F::Out>,
    ) -> Result<(), BoxError> {
        let ts = match (self.assigner.is_event_time(), record.timestamp()) {
            (true, Some(ts)) => ts,
            (true, None) => {
                return Err("an event-time window got a record without a timestamp: \
                            assign timestamps with `assign_timestamps_and_watermarks` before the window"
                    .into());
            }
            (false, _) => ctx.current_processing_time(),
        };
        let mut windows = std::mem::take(&mut self.windows);
        self.assigner.assign(&record.value, ts, &mut windows);
        let n = windows.len();
        let mut value = Some(record.value);
        let mut skipped = true;
        for (j, window) in windows.drain(..).enumerate() {
            let slot = if self.assigner.is_merging() {
                self.merge_in(state, window, ctx)
            } else if self.is_late(&window, ctx.current_watermark()) {
                None
            } else {
                Some(match state.find(&window) {
                    Some(i) => i,
                    None => {
                        let slot = self.open_slot(window, ctx);
                        state.push(slot)
                    }
                })
            };
            if let Some(i) = slot {
                skipped = false;
                let v = if j + 1 == n { value.take() } else { value.clone() };
                if let Some(v) = v {
                    self.add_to(key, state, i, v, ts, ctx);
                }
            }
        }
        self.windows = windows;
        if skipped
            && self.assigner.is_event_time()
            && ts.saturating_add(self.allowed_lateness) <= ctx.current_watermark().0
            && let (Some(tag), Some(v)) = (&self.late, value)
        {
            ctx.output(tag, v, Some(ts));
        }
        Ok(())
    }

    fn on_timer(
        &mut self,
        timer: Timer<K, A::W>,
        state: &mut Self::State,
        ctx: &mut Ctx<'_, K, A::W, F::Out>,
    ) -> Result<(), BoxError> {
        let Some(i) = state.find(&timer.namespace) else {
            return Ok(()); // merged away or already dropped
        };
        let slot = &mut state.slots[i];
        let mut tctx = Self::trigger_ctx(&mut self.requests, ctx);
        let result = match timer.domain {
            TimeDomain::EventTime => {
                self.trigger.on_event_time(timer.timestamp, &slot.window, &mut slot.trigger, &mut tctx)
            }
            TimeDomain::ProcessingTime => {
                self.trigger.on_processing_time(timer.timestamp, &slot.window, &mut slot.trigger, &mut tctx)
            }
        };
        self.apply_requests(&timer.namespace, ctx);
        self.act(&timer.key, &mut state.slots[i], result, ctx);
        if timer.domain == self.domain() && self.cleanup_time(&timer.namespace) == Some(timer.timestamp) {
            let slot = state.swap_remove(i);
            self.close_slot(slot, ctx);
        }
        Ok(())
    }

    fn is_state_empty(&self, state: &Self::State) -> bool {
        state.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::super::probed::{Probed, probes};
    use super::*;

    /// What one record's window-state access costs (finding its window,
    /// opening one, closing one) with `n` windows of its key open, in
    /// window comparisons and hashes.
    fn access_cost(n: i64) -> u64 {
        let mut state: WindowState<Probed, (), ()> = WindowState::default();
        for w in 0..n {
            state.push(Slot { window: Probed(w), acc: None, trigger: () });
        }
        state.find(&Probed(0)); // an index, if any, is built once
        let mut cost = 0;
        for w in [0, n / 2, n - 1] {
            cost = cost.max(probes(|| assert!(state.find(&Probed(w)).is_some())));
        }
        cost = cost.max(probes(|| assert!(state.find(&Probed(n)).is_none())));
        cost.max(probes(|| {
            let i = state.find(&Probed(n - 1)).unwrap();
            let slot = state.swap_remove(i);
            state.push(slot);
        }))
    }

    #[test]
    fn finding_a_window_costs_the_same_however_many_are_open() {
        let costs: Vec<(i64, u64)> = [1, 4, 9, 16, 100, 1_000, 10_000].map(|n| (n, access_cost(n))).to_vec();
        let most = costs.iter().map(|c| c.1).max().unwrap();
        assert!(most <= INDEXED as u64 + 4, "{costs:?}");
        // Past the scan, the cost does not grow at all.
        let indexed: Vec<u64> = costs.iter().filter(|c| c.0 > INDEXED as i64).map(|c| c.1).collect();
        assert!(indexed.windows(2).all(|w| w[0] == w[1]), "{costs:?}");
    }

    #[test]
    fn the_index_follows_windows_opened_and_closed() {
        let mut state: WindowState<Probed, (), ()> = WindowState::default();
        for w in 0..50 {
            state.push(Slot { window: Probed(w), acc: None, trigger: () });
        }
        // Close every other window, from the front (the last moves up).
        for w in (0..50).step_by(2) {
            let i = state.find(&Probed(w)).unwrap();
            state.swap_remove(i);
        }
        for w in 0..50 {
            assert_eq!(state.find(&Probed(w)).map(|i| state.slots[i].window.0), (w % 2 == 1).then_some(w), "{w}");
        }
        while let Some(slot) = state.slots.first().cloned() {
            let i = state.find(&slot.window).unwrap();
            state.swap_remove(i);
        }
        assert!(state.is_empty() && state.index.is_none());
    }
}
