//! [`from_splits`](crate::StreamEnvironment::from_splits): a replayable,
//! rescalable source made of numbered splits, each read from an iterator —
//! one case of the [split framework](super::split).
//!
//! Split `s` of `n` belongs to subtask `s % p` of `p`; its position is how
//! many records it handed out. A subtask reads its splits in turns of
//! [`SPLIT_TURN`] records, so their event times advance together.
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

use super::split::{Split, SplitEnumerator, SplitOutput, SplitReader, SplitSource};
use crate::error::BoxError;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Arc;

/// How many records a subtask takes from one of its splits before the next.
pub const SPLIT_TURN: usize = 16;

/// Split `index` of [`from_splits`](crate::StreamEnvironment::from_splits),
/// `offset` records in.
///
/// ```
/// use dataflow_core::connectors::split::Split;
/// let s = dataflow_core::connectors::IterSplit { index: 5, offset: 0 };
/// assert_eq!(s.owner(2), 1);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IterSplit {
    /// The split's number.
    pub index: u32,
    /// Records handed out.
    pub offset: u64,
}

impl Split for IterSplit {
    fn id(&self) -> String {
        self.index.to_string()
    }

    fn owner(&self, parallelism: usize) -> usize {
        self.index as usize % parallelism.max(1)
    }
}

struct IterSplits(u32);

#[async_trait]
impl SplitEnumerator<IterSplit> for IterSplits {
    async fn discover(&mut self) -> Result<Vec<IterSplit>, BoxError> {
        Ok((0..self.0).map(|index| IterSplit { index, offset: 0 }).collect())
    }
}

struct IterReader<I: IntoIterator, F> {
    make: Arc<F>,
    open: HashMap<u32, I::IntoIter>,
}

#[async_trait]
impl<I, F> SplitReader<I::Item, IterSplit> for IterReader<I, F>
where
    I: IntoIterator + 'static,
    I::IntoIter: Send + 'static,
    I::Item: Send + 'static,
    F: Fn(usize) -> I + Send + Sync + 'static,
{
    async fn read(
        &mut self,
        split: &mut IterSplit,
        max: usize,
        out: &mut SplitOutput<I::Item>,
    ) -> Result<bool, BoxError> {
        let make = &self.make;
        let iter = self.open.entry(split.index).or_insert_with(|| {
            let mut it = make(split.index as usize).into_iter();
            // Skip what was handed out before a restore.
            if split.offset > 0 {
                let _ = it.nth(split.offset as usize - 1);
            }
            it
        });
        for _ in 0..max {
            match iter.next() {
                Some(v) => {
                    out.push(v);
                    split.offset += 1;
                }
                None => {
                    self.open.remove(&split.index);
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }
}

/// The split source of `from_splits(splits, make)`.
pub(crate) fn iter_splits<I, F>(splits: usize, make: F) -> SplitSource<I::Item, IterSplit>
where
    I: IntoIterator + 'static,
    I::IntoIter: Send + 'static,
    I::Item: Send + 'static,
    F: Fn(usize) -> I + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let n = u32::try_from(splits).unwrap_or(u32::MAX);
    SplitSource::new(
        "splits",
        move |_| IterSplits(n),
        move |_| IterReader::<I, F> { make: make.clone(), open: HashMap::new() },
    )
    .with_turn(SPLIT_TURN)
}
