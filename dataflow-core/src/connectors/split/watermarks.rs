//! Watermarks per split inside a source subtask: one generator per split;
//! the subtask's watermark is the minimum over its active splits, idle
//! splits left out and finished ones dropped.

use crate::element::{StreamStatus, Timestamp, Watermark};
use crate::time::{WatermarkGenerator, WatermarkOutput, WatermarkStrategy};
use std::collections::BTreeMap;

struct SplitClock<T> {
    generator: Box<dyn WatermarkGenerator<T>>,
    watermark: Timestamp,
    last_activity: Timestamp,
    idle: bool,
}

/// The watermark bookkeeping of one source subtask's splits.
pub(crate) struct SplitWatermarks<T> {
    strategy: WatermarkStrategy<T>,
    splits: BTreeMap<String, SplitClock<T>>,
    output: WatermarkOutput,
    emitted: Timestamp,
    idle: bool,
}

impl<T: 'static> SplitWatermarks<T> {
    pub(crate) fn new(strategy: WatermarkStrategy<T>) -> Self {
        let output = WatermarkOutput::default();
        Self { strategy, splits: BTreeMap::new(), output, emitted: Timestamp::MIN, idle: false }
    }

    /// Split `id` is read from now on (at processing time `now`).
    pub(crate) fn add(&mut self, id: &str, now: Timestamp) {
        if !self.splits.contains_key(id) {
            let generator = (self.strategy.generator)();
            let clock = SplitClock { generator, watermark: Timestamp::MIN, last_activity: now, idle: false };
            self.splits.insert(id.to_string(), clock);
        }
    }

    /// Split `id` finished: it no longer holds the watermark back.
    pub(crate) fn finish(&mut self, id: &str) {
        self.splits.remove(id);
    }

    /// Stamps the records `values` of split `id`, read at `now`, and hands
    /// each to `emit` with its timestamp (by the strategy's assigner, none
    /// without one); the split's generator sees them and it is active.
    pub(crate) fn stamp_all(
        &mut self,
        id: &str,
        values: Vec<T>,
        timestamps: Vec<Option<Timestamp>>,
        now: Timestamp,
        mut emit: impl FnMut(T, Option<Timestamp>),
    ) {
        let mut split = self.splits.get_mut(id);
        if let (Some(split), false) = (split.as_mut(), values.is_empty()) {
            (split.last_activity, split.idle) = (now, false);
        }
        let own = timestamps.into_iter().chain(std::iter::repeat(None));
        let Some(split) = split else {
            values.into_iter().zip(own).for_each(|(v, ts)| emit(v, ts));
            return;
        };
        // The assigner's timestamp, else the record's own.
        let assigner = self.strategy.assigner.as_ref();
        for (value, own) in values.into_iter().zip(own) {
            let ts = match assigner {
                Some(assign) => Some(assign(&value, own)),
                None => own,
            };
            if let Some(ts) = ts {
                split.generator.on_event(&value, ts, &mut self.output);
            }
            emit(value, ts);
        }
    }

    /// After a read: the generators' periodic watermarks, idleness at
    /// `now`, and what changed: the subtask's watermark if it advanced and
    /// its status if that changed (status first when it becomes active).
    pub(crate) fn update(&mut self, now: Timestamp) -> (Option<Watermark>, Option<StreamStatus>) {
        let timeout = self.strategy.idle_timeout;
        for split in self.splits.values_mut() {
            split.generator.on_periodic_emit(&mut self.output);
            if let Some(w) = self.output.take() {
                split.watermark = split.watermark.max(w.0);
            }
            if let Some(t) = timeout {
                split.idle = now >= split.last_activity.saturating_add(t);
            }
        }
        // A subtask without splits is idle (Flink's reader without splits).
        let idle = self.splits.is_empty() || (timeout.is_some() && self.splits.values().all(|s| s.idle));
        let status = (idle != self.idle).then_some(if idle { StreamStatus::Idle } else { StreamStatus::Active });
        self.idle = idle;
        let min = self.splits.values().filter(|s| !s.idle).map(|s| s.watermark).min();
        let watermark = match min {
            Some(w) if w > self.emitted => {
                self.emitted = w;
                Some(Watermark(w))
            }
            _ => None,
        };
        (watermark, status)
    }

    /// When the next split goes idle (if the strategy has an idle timeout).
    pub(crate) fn next_idle(&self) -> Option<Timestamp> {
        let t = self.strategy.idle_timeout?;
        self.splits.values().filter(|s| !s.idle).map(|s| s.last_activity.saturating_add(t)).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn bounded() -> SplitWatermarks<i64> {
        let s = WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_millis(5))
            .with_timestamp_assigner(|v: &i64, _| *v)
            .with_idleness(Duration::from_millis(100));
        SplitWatermarks::new(s)
    }

    fn stamp(w: &mut SplitWatermarks<i64>, id: &str, v: i64, now: Timestamp) {
        w.stamp_all(id, vec![v], Vec::new(), now, |_, _| {});
    }

    #[test]
    fn the_minimum_over_splits_and_finished_ones_drop_out() {
        let mut w = bounded();
        w.add("dense", 0);
        w.add("sparse", 0);
        stamp(&mut w, "dense", 1_000, 0);
        assert_eq!(w.update(0), (None, None)); // sparse holds it at MIN
        stamp(&mut w, "sparse", 20, 0);
        assert_eq!(w.update(0).0, Some(Watermark(14)));
        w.finish("sparse");
        assert_eq!(w.update(0).0, Some(Watermark(994)));
    }

    #[test]
    fn a_subtask_without_splits_is_idle_until_it_gets_one() {
        let mut w = SplitWatermarks::new(WatermarkStrategy::<i64>::for_monotonous_timestamps());
        assert_eq!(w.update(0), (None, Some(StreamStatus::Idle)));
        w.add("a", 0);
        assert_eq!(w.update(0), (None, Some(StreamStatus::Active)));
        w.finish("a");
        assert_eq!(w.update(0), (None, Some(StreamStatus::Idle)));
    }

    #[test]
    fn an_idle_split_is_left_out_and_all_idle_makes_the_subtask_idle() {
        let mut w = bounded();
        w.add("a", 0);
        w.add("b", 0);
        stamp(&mut w, "a", 500, 0);
        assert_eq!(w.next_idle(), Some(100));
        stamp(&mut w, "a", 600, 150);
        assert_eq!(w.update(150), (Some(Watermark(594)), None)); // b idle
        assert_eq!(w.update(300), (None, Some(StreamStatus::Idle)));
        stamp(&mut w, "b", 50, 301);
        assert_eq!(w.update(301), (None, Some(StreamStatus::Active)));
    }
}
