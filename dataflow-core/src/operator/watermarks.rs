//! The operator that applies a [`WatermarkStrategy`] to a stream (Flink's
//! timestamps-and-watermarks operator), added by
//! [`Stream::assign_timestamps_and_watermarks`](crate::Stream::assign_timestamps_and_watermarks).
//! The strategy itself, the generators and watermark alignment are in
//! [`time`](crate::time).

use super::{Collector, Operator, OperatorInfo};
use crate::element::{Batch, Data, Record, StreamStatus, Timestamp, Watermark};
use crate::error::BoxError;
use crate::time::strategy::Assigner;
use crate::time::{AlignmentGroup, Clock, Wakeup, WatermarkGenerator, WatermarkOutput, WatermarkStrategy};
use std::sync::Arc;

/// The operator that applies a [`WatermarkStrategy`]: assigns timestamps,
/// feeds the generator and emits its watermarks after every batch. It
/// replaces the watermarks of its input (only the final `Watermark::MAX`
/// passes), as Flink's timestamp/watermark operator does. With idleness it
/// marks its output idle after the timeout without records; with alignment
/// it reports to its group and holds its source back when ahead.
pub struct TimestampsAndWatermarks<T> {
    strategy: WatermarkStrategy<T>,
    generator: Option<Box<dyn WatermarkGenerator<T>>>,
    output: WatermarkOutput,
    last: Watermark,
    clock: Option<Arc<dyn Clock>>,
    last_activity: Timestamp,
    idle: bool,
    member: Option<(Arc<AlignmentGroup>, usize)>,
}

impl<T> Clone for TimestampsAndWatermarks<T> {
    fn clone(&self) -> Self {
        Self::new(self.strategy.clone())
    }
}

impl<T> TimestampsAndWatermarks<T> {
    /// The operator for `strategy`.
    pub fn new(strategy: WatermarkStrategy<T>) -> Self {
        Self {
            strategy,
            generator: None,
            output: WatermarkOutput::default(),
            last: Watermark::MIN,
            clock: None,
            last_activity: Timestamp::MIN,
            idle: false,
            member: None,
        }
    }

    fn report(&self) {
        if let Some((group, id)) = &self.member {
            group.report(*id, self.last.0, !self.idle);
        }
    }
}

/// A record's timestamp (the assigner's, else the one it has), shown to
/// the watermark generator.
fn stamp<T: 'static>(
    assigner: &Option<Assigner<T>>,
    generator: &mut Option<Box<dyn WatermarkGenerator<T>>>,
    output: &mut WatermarkOutput,
    value: &T,
    previous: Option<Timestamp>,
) -> Option<Timestamp> {
    let ts = match assigner {
        Some(assign) => Some(assign(value, previous)),
        None => previous,
    };
    if let (Some(ts), Some(g)) = (ts, generator.as_mut()) {
        g.on_event(value, ts, output);
    }
    ts
}

impl<T: Data> Operator for TimestampsAndWatermarks<T> {
    type In = T;
    type Out = T;

    fn open(&mut self, info: &OperatorInfo) -> Result<(), BoxError> {
        self.generator = Some((self.strategy.generator)());
        self.clock = Some(info.clock.clone());
        self.last_activity = info.clock.now_millis();
        if let Some(group) = self.strategy.alignment.as_ref().and_then(|a| a.resolved.clone()) {
            let id = group.join();
            self.member = Some((group, id));
        }
        Ok(())
    }

    fn process(&mut self, record: Record<T>, out: &mut Collector<T>) -> Result<(), BoxError> {
        let ts =
            stamp(&self.strategy.assigner, &mut self.generator, &mut self.output, &record.value, record.timestamp());
        out.collect_value(record.value, ts);
        Ok(())
    }

    fn process_batch(&mut self, batch: &mut Batch<T>, out: &mut Collector<T>) -> Result<(), BoxError> {
        let any = !batch.is_empty();
        // Timestamps are set in place and the batch moves on whole: its
        // values are not copied.
        let (assigner, generator, output) = (&self.strategy.assigner, &mut self.generator, &mut self.output);
        batch.restamp(|value, previous| stamp(assigner, generator, output, value, previous));
        out.batch_mut().append(batch);
        if let Some(g) = self.generator.as_mut() {
            g.on_periodic_emit(&mut self.output);
        }
        if let Some(w) = self.output.take().filter(|w| *w > self.last) {
            self.last = w;
            out.emit_watermark(w);
        }
        if any && self.strategy.idle_timeout.is_some() {
            self.last_activity = self.clock.as_ref().map_or(Timestamp::MIN, |c| c.now_millis());
            if std::mem::replace(&mut self.idle, false) {
                out.emit_status(StreamStatus::Active);
            }
        }
        self.report();
        Ok(())
    }

    fn finish(&mut self, _out: &mut Collector<T>) -> Result<(), BoxError> {
        self.idle = true; // a finished source no longer holds its group back
        self.report();
        Ok(())
    }

    fn next_processing_time(&self) -> Option<Timestamp> {
        match (self.idle, self.strategy.idle_timeout) {
            (false, Some(t)) => Some(self.last_activity.saturating_add(t)),
            _ => None,
        }
    }

    fn on_processing_time(&mut self, now: Timestamp, out: &mut Collector<T>) -> Result<(), BoxError> {
        if let Some(t) = self.strategy.idle_timeout
            && !self.idle
            && now >= self.last_activity.saturating_add(t)
        {
            self.idle = true;
            out.emit_status(StreamStatus::Idle);
            self.report();
        }
        Ok(())
    }

    fn source_paused(&self) -> Option<Wakeup> {
        let (group, id) = self.member.as_ref()?;
        group.pause(*id)
    }

    fn forwards_watermarks(&self) -> bool {
        false
    }
}
