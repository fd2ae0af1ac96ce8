//! Side outputs: extra typed outputs of an operator, picked out of its
//! stream by tag with [`Stream::side_output`](crate::Stream::side_output).
//!
//! ```
//! use dataflow_core::{operator::{Context, OutputTag}, StreamEnvironment};
//!
//! let odd = OutputTag::<String>::new("odd");
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let env = StreamEnvironment::new().with_parallelism(1);
//! let tag = odd.clone();
//! let evens = env.from_iter(0..6u32).process(move |x, ctx: &mut Context<u32>| {
//!     if x % 2 == 0 { ctx.emit(x) } else { ctx.output(&tag, format!("odd {x}")) }
//! });
//! let odds = evens.side_output(&odd).collect();
//! let evens = evens.collect();
//! env.execute().await.unwrap();
//! assert_eq!(evens.take(), [0, 2, 4]);
//! assert_eq!(odds.take(), ["odd 1", "odd 3", "odd 5"]);
//! # });
//! ```

use crate::element::Batch;
use crate::element::Data;
use crate::time::Timestamp;
use std::any::{Any, TypeId};
use std::marker::PhantomData;
use std::sync::Arc;

/// Names a side output of values of type `T`. Two tags are the same side
/// output when their names and types are equal.
///
/// ```
/// let tag = dataflow_core::operator::OutputTag::<u8>::new("late");
/// assert_eq!(tag.name(), "late");
/// ```
#[derive(Debug)]
pub struct OutputTag<T> {
    name: Arc<str>,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for OutputTag<T> {
    fn clone(&self) -> Self {
        Self { name: self.name.clone(), _t: PhantomData }
    }
}

impl<T: 'static> OutputTag<T> {
    /// A tag called `name`.
    pub fn new(name: &str) -> Self {
        Self { name: name.into(), _t: PhantomData }
    }

    /// The tag's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn key(&self) -> TagKey {
        TagKey { name: self.name.clone(), type_id: TypeId::of::<T>() }
    }
}

/// A tag's identity without its type parameter.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct TagKey {
    pub(crate) name: Arc<str>,
    pub(crate) type_id: TypeId,
}

/// A `Batch<U>` whose `U` is known only to the tag that made it.
pub(crate) trait ErasedBatch: Send {
    fn as_any_mut(&mut self) -> &mut dyn Any;
    /// Moves every record into `other`, a batch of the same type.
    fn append_into(&mut self, other: &mut dyn ErasedBatch);
    fn is_empty(&self) -> bool;
    fn clear(&mut self);
    /// An empty batch of the same type.
    fn new_empty(&self) -> Box<dyn ErasedBatch>;
}

impl<U: Data> ErasedBatch for Batch<U> {
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn append_into(&mut self, other: &mut dyn ErasedBatch) {
        if let Some(other) = other.as_any_mut().downcast_mut::<Batch<U>>() {
            other.append(self);
        }
    }

    fn is_empty(&self) -> bool {
        Batch::is_empty(self)
    }

    fn clear(&mut self) {
        Batch::clear(self)
    }

    fn new_empty(&self) -> Box<dyn ErasedBatch> {
        Box::new(Batch::<U>::new())
    }
}

/// The side-output records an operator emitted and not yet handed on, one
/// type-erased `Batch<U>` per tag.
#[derive(Default)]
pub(crate) struct SideBuffers {
    pub(crate) buffers: Vec<(TagKey, Box<dyn ErasedBatch>)>,
}

impl std::fmt::Debug for SideBuffers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.buffers.iter().map(|(k, _)| &k.name)).finish()
    }
}

impl SideBuffers {
    /// Appends a value to the buffer of `tag`.
    pub(crate) fn push<U: Data>(&mut self, tag: &OutputTag<U>, value: U, timestamp: Option<Timestamp>) {
        let key = tag.key();
        let i = match self.buffers.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                self.buffers.push((key, Box::new(Batch::<U>::new())));
                self.buffers.len() - 1
            }
        };
        // The key includes the type, so the buffer is a `Batch<U>`.
        if let Some(batch) = self.buffers[i].1.as_any_mut().downcast_mut::<Batch<U>>() {
            batch.push_with(value, timestamp);
        }
    }

    /// Moves every record into `other`, keeping both sides' buffers.
    pub(crate) fn move_into(&mut self, other: &mut SideBuffers) {
        for (key, buf) in self.buffers.iter_mut().filter(|(_, b)| !b.is_empty()) {
            let i = match other.buffers.iter().position(|(k, _)| k == key) {
                Some(i) => i,
                None => {
                    other.buffers.push((key.clone(), buf.new_empty()));
                    other.buffers.len() - 1
                }
            };
            buf.append_into(other.buffers[i].1.as_mut());
        }
    }
}
