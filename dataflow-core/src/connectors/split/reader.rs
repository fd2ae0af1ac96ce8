//! The source instance of one subtask of a [`SplitSource`]: discovers and
//! reads its splits through a read future it keeps across polls, stamps
//! records and keeps watermarks per split, and checkpoints its splits'
//! positions.

use super::watermarks::SplitWatermarks;
use super::{BadInput, Split, SplitEnumerator, SplitOutput, SplitReader, SplitSource};
use crate::connectors::source::{Source, SourceContext, SourceStatus};
use crate::element::{Control, Data, Timestamp};
use crate::error::BoxError;
use crate::operator::function::bad_records_tag;
use crate::operator::{BadRecordPolicy, BadRecordReport, OperatorInfo};
use crate::time::{Clock, WatermarkStrategy, millis};
use async_trait::async_trait;
use std::collections::{BTreeSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A subtask's position: the splits it reads (at the position after the
/// last record handed out) and the ids of those it finished.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Position<S> {
    reading: Vec<S>,
    finished: BTreeSet<String>,
}

/// What a read round returned: the reader and enumerator back, and its
/// outcome.
struct Round<T, S> {
    reader: Box<dyn SplitReader<T, S>>,
    enumerator: Box<dyn SplitEnumerator<S>>,
    outcome: Result<Read<T, S>, BoxError>,
}

/// What a read round read: new splits, then pieces in reading order.
struct Read<T, S> {
    discovered: Vec<S>,
    pieces: Vec<Piece<T, S>>,
}

/// Records of one split's turn, and the split's position after them.
struct Piece<T, S> {
    after: S,
    out: SplitOutput<T>,
    finished: bool,
}

type RoundFuture<T, S> = Pin<Box<dyn Future<Output = Round<T, S>> + Send>>;

enum Parts<T, S> {
    /// Idle between rounds.
    Ready(Box<dyn SplitReader<T, S>>, Box<dyn SplitEnumerator<S>>),
    /// A round is under way.
    Reading(RoundFuture<T, S>),
    /// A round finished ahead of the poll that hands it out.
    Done(Box<Round<T, S>>),
    /// A round failed (it returned its error).
    Broken,
}

/// One subtask's instance of a split source.
pub(crate) struct SplitSourceReader<T, S> {
    name: String,
    subtask: usize,
    parallelism: usize,
    policy: BadRecordPolicy,
    clock: Arc<dyn Clock>,
    position: Position<S>,
    parts: Parts<T, S>,
    discovery: Option<i64>,
    next_discovery: Option<Timestamp>,
    turn: usize,
    watermarks: SplitWatermarks<T>,
    controls: VecDeque<Control>,
    /// Records handed out, for bad-record positions.
    handed_out: u64,
    /// Read rounds started (the first split of a round rotates).
    rounds: usize,
    /// Records a read round hands out at most (unless a turn is longer):
    /// the job's batch size, so that barriers pass between batches.
    round: usize,
    /// The positions of the latest completed checkpoint, for the reader's
    /// next round.
    completed: Option<Vec<S>>,
}

impl<T: Data, S: Split> SplitSourceReader<T, S> {
    pub(crate) fn new(source: &SplitSource<T, S>, strategy: WatermarkStrategy<T>, info: &OperatorInfo) -> Self {
        let parts = Parts::Ready((source.reader)(info), (source.enumerator)(info));
        Self {
            name: info.name.clone(),
            subtask: info.subtask,
            parallelism: info.parallelism.max(1),
            policy: info.bad_record_policy,
            clock: info.clock.clone(),
            position: Position { reading: Vec::new(), finished: BTreeSet::new() },
            parts,
            discovery: source.discovery.map(millis),
            next_discovery: Some(Timestamp::MIN),
            turn: source.turn,
            watermarks: SplitWatermarks::new(strategy),
            controls: VecDeque::new(),
            handed_out: 0,
            rounds: 0,
            round: 1024,
            completed: None,
        }
    }

    fn owns(&self, split: &S) -> bool {
        split.owner(self.parallelism) == self.subtask
    }

    /// Takes the positions of `old` subtasks: the splits this one owns.
    fn set(&mut self, old: Vec<Position<S>>) {
        let now = self.clock.now_millis();
        let mut position = Position { reading: Vec::new(), finished: BTreeSet::new() };
        for p in old {
            position.reading.extend(p.reading.into_iter().filter(|s| self.owns(s)));
            position.finished.extend(p.finished);
        }
        for s in &position.reading {
            self.watermarks.add(&s.id(), now);
        }
        self.position = position;
    }

    /// Starts a read round: discovery when due, then turns over the splits.
    fn start_round(&mut self, reader: Box<dyn SplitReader<T, S>>, enumerator: Box<dyn SplitEnumerator<S>>) {
        let now = self.clock.now_millis();
        let discover = self.next_discovery.is_some_and(|t| now >= t);
        if discover {
            self.next_discovery = self.discovery.map(|d| now.saturating_add(d));
        }
        let known: BTreeSet<String> =
            self.position.reading.iter().map(|s| s.id()).chain(self.position.finished.iter().cloned()).collect();
        let (subtask, parallelism, turn, round) = (self.subtask, self.parallelism, self.turn, self.round);
        let first = self.rounds;
        self.rounds = self.rounds.wrapping_add(1);
        let mut splits = self.position.reading.clone();
        let completed = self.completed.take();
        // Nothing to read: wait for the next discovery.
        let wait = match (splits.is_empty() && !discover, self.next_discovery) {
            (true, Some(t)) => Some(self.clock.wait_until(t)),
            _ => None,
        };
        self.parts = Parts::Reading(Box::pin(async move {
            let (mut reader, mut enumerator) = (reader, enumerator);
            if let Some(completed) = completed {
                reader.checkpoint_complete(&completed).await;
            }
            if let Some(wait) = wait {
                wait.await;
            }
            let outcome = async {
                let mut discovered = Vec::new();
                if discover {
                    for s in enumerator.discover().await? {
                        if s.owner(parallelism) == subtask && !known.contains(&s.id()) {
                            discovered.push(s);
                        }
                    }
                    splits.extend(discovered.iter().cloned());
                }
                // A turn of each split, at most a batch in all (so barriers
                // pass between rounds); the first split rotates from round
                // to round.
                let mut pieces = Vec::new();
                let mut budget = round.max(turn);
                let n = splits.len().max(1);
                splits.rotate_left(first % n);
                for mut split in splits {
                    if budget == 0 {
                        break;
                    }
                    let mut out = SplitOutput::with_capacity(budget.min(turn));
                    let finished = reader.read(&mut split, budget.min(turn), &mut out).await?;
                    budget = budget.saturating_sub(out.len());
                    pieces.push(Piece { after: split, out, finished });
                }
                let nothing = pieces.iter().all(|p| p.out.is_empty() && !p.finished);
                if nothing && !pieces.is_empty() && discovered.is_empty() {
                    reader.wait_for_records().await?;
                }
                Ok(Read { discovered, pieces })
            }
            .await;
            Round { reader, enumerator, outcome }
        }));
    }

    /// Hands out what a round read, in order, and updates the positions
    /// and the watermarks.
    fn hand_out(&mut self, read: Read<T, S>, ctx: &mut SourceContext<T>) -> Result<(), BoxError> {
        let now = self.clock.now_millis();
        for s in read.discovered {
            self.watermarks.add(&s.id(), now);
            self.position.reading.push(s);
        }
        for piece in read.pieces {
            let id = piece.after.id();
            self.handed_out += piece.out.records.len() as u64;
            let (records, timestamps) = (piece.out.records, piece.out.timestamps);
            self.watermarks.stamp_all(&id, records, timestamps, now, |v, ts| ctx.collect(v, ts));
            for bad in piece.out.bad {
                self.reject(bad, ctx)?;
            }
            if let Some(at) = self.position.reading.iter_mut().find(|s| s.id() == id) {
                *at = piece.after;
            }
            if piece.finished {
                self.position.reading.retain(|s| s.id() != id);
                self.position.finished.insert(id.clone());
                self.watermarks.finish(&id);
            }
        }
        Ok(())
    }

    /// Bad input, by the job's bad-record policy.
    fn reject(&mut self, bad: BadInput, ctx: &mut SourceContext<T>) -> Result<(), BoxError> {
        let position = self.handed_out;
        self.handed_out += 1;
        match self.policy {
            BadRecordPolicy::Fail => Err(format!("source '{}' read bad input at {bad}", self.name).into()),
            BadRecordPolicy::Skip => {
                ctx.skip();
                Ok(())
            }
            BadRecordPolicy::SideOutput => {
                ctx.skip();
                let report = BadRecordReport {
                    operator: self.name.clone(),
                    subtask: self.subtask,
                    position,
                    timestamp: None,
                    error: format!("{}: {}", bad.location, bad.error),
                    location: Some(bad.location),
                    raw: Some(bad.raw),
                };
                ctx.output(&bad_records_tag(), report, None);
                Ok(())
            }
        }
    }

    /// Queues what the watermarks say changed.
    fn update_watermarks(&mut self) {
        let (watermark, status) = self.watermarks.update(self.clock.now_millis());
        if let Some(crate::element::StreamStatus::Active) = status {
            self.controls.push_back(Control::Status(crate::element::StreamStatus::Active));
        }
        self.controls.extend(watermark.map(Control::Watermark));
        if let Some(crate::element::StreamStatus::Idle) = status {
            self.controls.push_back(Control::Status(crate::element::StreamStatus::Idle));
        }
    }

    /// Starts the next round now, so that reading (on the blocking pool,
    /// for files) overlaps with the processing of what was handed out.
    async fn read_ahead(&mut self) {
        if self.done() {
            return;
        }
        if let Parts::Ready(reader, enumerator) = std::mem::replace(&mut self.parts, Parts::Broken) {
            self.start_round(reader, enumerator);
        }
        if let Parts::Reading(reading) = &mut self.parts
            && let std::task::Poll::Ready(round) = futures::poll!(reading.as_mut())
        {
            self.parts = Parts::Done(Box::new(round));
        }
    }

    /// Whether a bounded source has read everything.
    fn done(&self) -> bool {
        self.discovery.is_none() && self.next_discovery.is_none() && self.position.reading.is_empty()
    }
}

#[async_trait]
impl<T: Data, S: Split> Source<T> for SplitSourceReader<T, S> {
    async fn poll_batch(&mut self, ctx: &mut SourceContext<T>) -> Result<SourceStatus, BoxError> {
        self.round = ctx.batch_size();
        if let Some(c) = self.controls.pop_front() {
            ctx.emit_control(c);
            return Ok(SourceStatus::More);
        }
        if matches!(self.parts, Parts::Ready(..)) && self.done() {
            return Ok(SourceStatus::Finished);
        }
        match std::mem::replace(&mut self.parts, Parts::Broken) {
            Parts::Ready(reader, enumerator) => self.start_round(reader, enumerator),
            other => self.parts = other,
        }
        // Wait for the round, or for the next split to go idle. The round's
        // future stays in `self.parts` while it is awaited, so a dropped
        // poll loses nothing.
        let idle = self.watermarks.next_idle().map(|t| self.clock.wait_until(t));
        if let Parts::Reading(reading) = &mut self.parts {
            let round = match idle {
                Some(idle) => {
                    tokio::select! {
                        r = reading.as_mut() => Some(r),
                        _ = idle => None,
                    }
                }
                None => Some(reading.as_mut().await),
            };
            if let Some(round) = round {
                self.parts = Parts::Done(Box::new(round));
            }
        }
        let round = match std::mem::replace(&mut self.parts, Parts::Broken) {
            Parts::Done(round) => Some(*round),
            Parts::Broken => return Err(format!("source '{}' failed before", self.name).into()),
            other => {
                self.parts = other;
                None
            }
        };
        // Nothing is collected before this point: the poll is cancel-safe.
        if let Some(round) = round {
            self.parts = Parts::Ready(round.reader, round.enumerator);
            if self.discovery.is_none() {
                self.next_discovery = None; // bounded: discovered once
            }
            self.hand_out(round.outcome?, ctx)?;
            self.read_ahead().await;
        }
        self.update_watermarks();
        if let Some(c) = self.controls.pop_front() {
            ctx.emit_control(c);
        }
        Ok(SourceStatus::More)
    }

    fn position(&self) -> Option<Vec<u8>> {
        postcard::to_stdvec(&self.position).ok()
    }

    fn seek(&mut self, position: &[u8]) -> Result<(), BoxError> {
        self.seek_rescaled(&[position.to_vec()])
    }

    fn seek_rescaled(&mut self, positions: &[Vec<u8>]) -> Result<(), BoxError> {
        let old = positions
            .iter()
            .map(|p| postcard::from_bytes(p).map_err(|e| format!("not a split source's position: {e}")))
            .collect::<Result<Vec<Position<S>>, _>>()?;
        self.set(old);
        Ok(())
    }

    fn checkpoint_complete(&mut self, _checkpoint: u64, position: &[u8]) {
        if let Ok(p) = postcard::from_bytes::<Position<S>>(position) {
            self.completed = Some(p.reading);
        }
    }

    fn poll_is_cancel_safe(&self) -> bool {
        true
    }
}
