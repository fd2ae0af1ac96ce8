//! A replayable, rescalable source made of splits: numbered parts of the
//! input (the files of a folder, the partitions of a topic, the shards of a
//! generator), each read in order from an offset.
//!
//! Split `s` of `n` belongs to subtask `s % p` of `p`. The source's position
//! (its part of a checkpoint) lists, for each split it owns, how many
//! records it handed out and whether the split is done. Restored at the
//! same parallelism, each subtask takes back its own position; restored at
//! another one ([`Source::seek_rescaled`], from a savepoint), every subtask
//! sees every old subtask's position and keeps the splits it owns now, so
//! splits and their offsets follow the new parallelism (the way Flink's
//! sources keep their splits as union list state).
//!
//! A subtask reads its splits in turns of [`SPLIT_TURN`] records, so their
//! event times advance together.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let env = dataflow_core::StreamEnvironment::new().with_parallelism(2);
//! let out = env.from_splits(3, |split| (0..4u64).map(move |i| split as u64 * 100 + i)).collect();
//! env.execute().await.unwrap();
//! let mut v = out.take();
//! v.sort();
//! assert_eq!(v, [0, 1, 2, 3, 100, 101, 102, 103, 200, 201, 202, 203]);
//! # });
//! ```

use super::source::{Source, SourceContext, SourceStatus};
use crate::element::Data;
use crate::operator::{BoxError, OperatorInfo};
use async_trait::async_trait;
use std::sync::Arc;

/// How many records a subtask takes from one of its splits before the next.
pub const SPLIT_TURN: usize = 16;

/// How far one split was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct SplitPosition {
    split: u32,
    offset: u64,
    done: bool,
}

struct Split<It> {
    at: SplitPosition,
    iter: Option<It>,
}

/// The source [`from_splits`](crate::StreamEnvironment::from_splits) builds
/// for each subtask.
pub struct SplitSource<I: IntoIterator, F> {
    make: Arc<F>,
    splits: Vec<Split<I::IntoIter>>,
    splits_total: u32,
    subtask: u32,
    parallelism: u32,
    turn: usize,
}

impl<I, F> SplitSource<I, F>
where
    I: IntoIterator,
    F: Fn(usize) -> I,
{
    /// The instance of subtask `info.subtask` over `splits` splits, each
    /// read from the iterator `make(split)` returns.
    pub(crate) fn new(make: Arc<F>, splits: usize, info: &OperatorInfo) -> Self {
        let (subtask, parallelism) = (info.subtask as u32, info.parallelism.max(1) as u32);
        let mut s = Self { make, splits: Vec::new(), splits_total: splits as u32, subtask, parallelism, turn: 0 };
        s.set(Vec::new());
        s
    }

    fn owns(&self, split: u32) -> bool {
        split % self.parallelism == self.subtask
    }

    /// Takes `positions` (of owned splits): splits past the count are
    /// dropped, owned splits no position lists start from the beginning.
    fn set(&mut self, mut positions: Vec<SplitPosition>) {
        positions.retain(|p| p.split < self.splits_total);
        for split in (0..self.splits_total).filter(|s| self.owns(*s)) {
            if !positions.iter().any(|p| p.split == split) {
                positions.push(SplitPosition { split, offset: 0, done: false });
            }
        }
        self.splits = positions.into_iter().map(|at| Split { at, iter: None }).collect();
        self.splits.sort_by_key(|s| s.at.split);
        self.turn = 0;
    }
}

fn decode(position: &[u8]) -> Result<Vec<SplitPosition>, BoxError> {
    postcard::from_bytes(position).map_err(|e| format!("not a split source's position: {e}").into())
}

#[async_trait]
impl<I, F> Source<I::Item> for SplitSource<I, F>
where
    I: IntoIterator + 'static,
    I::IntoIter: Send + 'static,
    I::Item: Data,
    F: Fn(usize) -> I + Send + Sync + 'static,
{
    async fn poll_batch(&mut self, ctx: &mut SourceContext<I::Item>) -> Result<SourceStatus, BoxError> {
        // Turns of a few records each, so the splits' event times advance
        // together within a batch.
        while !ctx.is_full() && self.splits.iter().any(|s| !s.at.done) {
            let n = self.turn % self.splits.len();
            self.turn = self.turn.wrapping_add(1);
            let split = &mut self.splits[n];
            if split.at.done {
                continue;
            }
            let make = &self.make;
            let iter = split.iter.get_or_insert_with(|| {
                let mut it = make(split.at.split as usize).into_iter();
                // Skip what was handed out before the restore.
                if split.at.offset > 0 {
                    let _ = it.nth(split.at.offset as usize - 1);
                }
                it
            });
            for _ in 0..ctx.remaining().min(SPLIT_TURN) {
                match iter.next() {
                    Some(v) => {
                        ctx.collect(v, None);
                        split.at.offset += 1;
                    }
                    None => {
                        split.at.done = true;
                        split.iter = None;
                        break;
                    }
                }
            }
        }
        Ok(if self.splits.iter().all(|s| s.at.done) { SourceStatus::Finished } else { SourceStatus::More })
    }

    fn position(&self) -> Option<Vec<u8>> {
        let at: Vec<SplitPosition> = self.splits.iter().map(|s| s.at).collect();
        postcard::to_stdvec(&at).ok()
    }

    fn seek(&mut self, position: &[u8]) -> Result<(), BoxError> {
        let at = decode(position)?;
        if let Some(foreign) = at.iter().find(|p| !self.owns(p.split) && p.split < self.splits_total) {
            return Err(format!(
                "split {} is not subtask {}'s of {} (restored at another parallelism without seek_rescaled)",
                foreign.split, self.subtask, self.parallelism
            )
            .into());
        }
        self.set(at);
        Ok(())
    }

    fn seek_rescaled(&mut self, positions: &[Vec<u8>]) -> Result<(), BoxError> {
        let mut at = Vec::new();
        for p in positions {
            at.extend(decode(p)?.into_iter().filter(|p| self.owns(p.split)));
        }
        self.set(at);
        Ok(())
    }
}
