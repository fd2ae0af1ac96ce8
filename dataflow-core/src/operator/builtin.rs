//! The stateless built-in operators, written against [`Operator`] and
//! [`FnOperator`] like any `#[operator]` function and applied through the
//! same [`Stream::apply`](crate::Stream::apply). `map` and `filter` override
//! `process_batch` with a loop the compiler can tighten.

use super::{BoxError, Collector, Context, FnOperator, Operator, TwoInputOperator};
use crate::element::Batch;
use crate::element::{Data, Record};
use crate::time::Watermark;
use std::marker::PhantomData;

/// Applies a function to every value, keeping timestamps.
///
/// ```
/// use dataflow_core::{operator::Map, Collector, Operator, Record};
/// let mut m = Map::new(|x: i32| x + 1);
/// let mut out = Collector::new();
/// m.process(Record::new(1), &mut out).unwrap();
/// assert_eq!(out.len(), 1);
/// ```
pub struct Map<I, O, F> {
    f: F,
    _t: PhantomData<fn(I) -> O>,
}

impl<I, O, F: Clone> Clone for Map<I, O, F> {
    fn clone(&self) -> Self {
        Self::new(self.f.clone())
    }
}

impl<I, O, F> Map<I, O, F> {
    /// A map with `f`.
    pub fn new(f: F) -> Self {
        Self { f, _t: PhantomData }
    }
}

impl<I: Data, O: Data, F: FnMut(I) -> O + Send + 'static> Operator for Map<I, O, F> {
    type In = I;
    type Out = O;

    #[inline]
    fn process(&mut self, record: Record<I>, out: &mut Collector<O>) -> Result<(), BoxError> {
        out.collect(record.map(&mut self.f));
        Ok(())
    }

    #[inline]
    fn process_batch(&mut self, batch: &mut Batch<I>, out: &mut Collector<O>) -> Result<(), BoxError> {
        batch.map_into(&mut out.batch, &mut self.f);
        Ok(())
    }
}

/// Keeps the values for which a predicate holds.
///
/// ```
/// use dataflow_core::{operator::Filter, Collector, Operator, Record};
/// let mut f = Filter::new(|x: &i32| *x > 0);
/// let mut out = Collector::new();
/// f.process(Record::new(-1), &mut out).unwrap();
/// assert!(out.is_empty());
/// ```
pub struct Filter<T, F> {
    f: F,
    _t: PhantomData<fn(T)>,
}

impl<T, F: Clone> Clone for Filter<T, F> {
    fn clone(&self) -> Self {
        Self::new(self.f.clone())
    }
}

impl<T, F> Filter<T, F> {
    /// A filter with predicate `f`.
    pub fn new(f: F) -> Self {
        Self { f, _t: PhantomData }
    }
}

impl<T: Data, F: FnMut(&T) -> bool + Send + 'static> Operator for Filter<T, F> {
    type In = T;
    type Out = T;

    #[inline]
    fn process(&mut self, record: Record<T>, out: &mut Collector<T>) -> Result<(), BoxError> {
        if (self.f)(&record.value) {
            out.collect(record);
        }
        Ok(())
    }

    #[inline]
    fn process_batch(&mut self, batch: &mut Batch<T>, out: &mut Collector<T>) -> Result<(), BoxError> {
        batch.retain(&mut self.f);
        out.batch.append(batch);
        Ok(())
    }
}

/// Maps every value to any number of values, which keep its timestamp.
///
/// ```
/// use dataflow_core::{operator::FlatMap, Collector, Operator, Record};
/// let mut f = FlatMap::new(|s: String| s.split(' ').map(String::from).collect::<Vec<_>>());
/// let mut out = Collector::new();
/// f.process(Record::new("a b".to_string()), &mut out).unwrap();
/// assert_eq!(out.len(), 2);
/// ```
pub struct FlatMap<I, O, F> {
    f: F,
    _t: PhantomData<fn(I) -> O>,
}

impl<I, O, F: Clone> Clone for FlatMap<I, O, F> {
    fn clone(&self) -> Self {
        Self::new(self.f.clone())
    }
}

impl<I, O, F> FlatMap<I, O, F> {
    /// A flat map with `f`.
    pub fn new(f: F) -> Self {
        Self { f, _t: PhantomData }
    }
}

impl<I, O, F, It> Operator for FlatMap<I, O, F>
where
    I: Data,
    O: Data,
    It: IntoIterator<Item = O>,
    F: FnMut(I) -> It + Send + 'static,
{
    type In = I;
    type Out = O;

    #[inline]
    fn process(&mut self, record: Record<I>, out: &mut Collector<O>) -> Result<(), BoxError> {
        let ts = record.timestamp();
        for v in (self.f)(record.value) {
            out.collect_value(v, ts);
        }
        Ok(())
    }
}

/// Calls a function on every value and passes the record on unchanged.
///
/// ```
/// use dataflow_core::{operator::Inspect, Collector, Operator, Record};
/// let mut seen = 0;
/// let mut i = Inspect::new(|_: &u8| {});
/// let mut out = Collector::new();
/// i.process(Record::new(1u8), &mut out).unwrap();
/// assert_eq!(out.len(), 1);
/// # let _ = &mut seen;
/// ```
pub struct Inspect<T, F> {
    f: F,
    _t: PhantomData<fn(T)>,
}

impl<T, F: Clone> Clone for Inspect<T, F> {
    fn clone(&self) -> Self {
        Self::new(self.f.clone())
    }
}

impl<T, F> Inspect<T, F> {
    /// An inspect with `f`.
    pub fn new(f: F) -> Self {
        Self { f, _t: PhantomData }
    }
}

impl<T: Data, F: FnMut(&T) + Send + 'static> Operator for Inspect<T, F> {
    type In = T;
    type Out = T;

    #[inline]
    fn process(&mut self, record: Record<T>, out: &mut Collector<T>) -> Result<(), BoxError> {
        (self.f)(&record.value);
        out.collect(record);
        Ok(())
    }
}

/// Maps each of two connected inputs to a common output type.
///
/// ```
/// use dataflow_core::{operator::CoMap, Collector, Record, TwoInputOperator};
/// let mut m = CoMap::new(|a: u8| a as u32, |b: u32| b);
/// let mut out = Collector::new();
/// m.process1(Record::new(1u8), &mut out).unwrap();
/// m.process2(Record::new(2u32), &mut out).unwrap();
/// assert_eq!(out.len(), 2);
/// ```
pub struct CoMap<A, B, O, F1, F2> {
    f1: F1,
    f2: F2,
    _t: PhantomData<fn(A, B) -> O>,
}

impl<A, B, O, F1: Clone, F2: Clone> Clone for CoMap<A, B, O, F1, F2> {
    fn clone(&self) -> Self {
        Self::new(self.f1.clone(), self.f2.clone())
    }
}

impl<A, B, O, F1, F2> CoMap<A, B, O, F1, F2> {
    /// A co-map with one function per input.
    pub fn new(f1: F1, f2: F2) -> Self {
        Self { f1, f2, _t: PhantomData }
    }
}

impl<A, B, O, F1, F2> TwoInputOperator for CoMap<A, B, O, F1, F2>
where
    A: Data,
    B: Data,
    O: Data,
    F1: FnMut(A) -> O + Send + 'static,
    F2: FnMut(B) -> O + Send + 'static,
{
    type In1 = A;
    type In2 = B;
    type Out = O;

    fn process1(&mut self, record: Record<A>, out: &mut Collector<O>) -> Result<(), BoxError> {
        out.collect(record.map(&mut self.f1));
        Ok(())
    }

    fn process2(&mut self, record: Record<B>, out: &mut Collector<O>) -> Result<(), BoxError> {
        out.collect(record.map(&mut self.f2));
        Ok(())
    }
}

/// Flat-maps each of two connected inputs to a common output type.
///
/// ```
/// use dataflow_core::{operator::CoFlatMap, Collector, Record, TwoInputOperator};
/// let mut m = CoFlatMap::new(|a: u8| vec![a; 2], |_b: ()| Vec::new());
/// let mut out = Collector::new();
/// m.process1(Record::new(1u8), &mut out).unwrap();
/// assert_eq!(out.len(), 2);
/// ```
pub struct CoFlatMap<A, B, O, F1, F2> {
    f1: F1,
    f2: F2,
    _t: PhantomData<fn(A, B) -> O>,
}

impl<A, B, O, F1: Clone, F2: Clone> Clone for CoFlatMap<A, B, O, F1, F2> {
    fn clone(&self) -> Self {
        Self::new(self.f1.clone(), self.f2.clone())
    }
}

impl<A, B, O, F1, F2> CoFlatMap<A, B, O, F1, F2> {
    /// A co-flat-map with one function per input.
    pub fn new(f1: F1, f2: F2) -> Self {
        Self { f1, f2, _t: PhantomData }
    }
}

impl<A, B, O, F1, F2, I1, I2> TwoInputOperator for CoFlatMap<A, B, O, F1, F2>
where
    A: Data,
    B: Data,
    O: Data,
    I1: IntoIterator<Item = O>,
    I2: IntoIterator<Item = O>,
    F1: FnMut(A) -> I1 + Send + 'static,
    F2: FnMut(B) -> I2 + Send + 'static,
{
    type In1 = A;
    type In2 = B;
    type Out = O;

    fn process1(&mut self, record: Record<A>, out: &mut Collector<O>) -> Result<(), BoxError> {
        let ts = record.timestamp();
        for v in (self.f1)(record.value) {
            out.collect_value(v, ts);
        }
        Ok(())
    }

    fn process2(&mut self, record: Record<B>, out: &mut Collector<O>) -> Result<(), BoxError> {
        let ts = record.timestamp();
        for v in (self.f2)(record.value) {
            out.collect_value(v, ts);
        }
        Ok(())
    }
}

impl<I, O, F> FnOperator for Map<I, O, F> {
    const NAME: &'static str = "map";
}

impl<T, F> FnOperator for Filter<T, F> {
    const NAME: &'static str = "filter";
}

impl<I, O, F> FnOperator for FlatMap<I, O, F> {
    const NAME: &'static str = "flat_map";
}

impl<T, F> FnOperator for Inspect<T, F> {
    const NAME: &'static str = "inspect";
}

/// Calls a function with each value and a [`Context`] to emit through.
///
/// ```
/// use dataflow_core::{operator::{Context, Process}, Collector, Operator, Record};
/// let mut p = Process::new(|x: u8, ctx: &mut Context<u8>| { ctx.emit(x); ctx.emit(x); });
/// let mut out = Collector::new();
/// p.process(Record::new(1), &mut out).unwrap();
/// assert_eq!(out.len(), 2);
/// ```
pub struct Process<I, O, F> {
    f: F,
    ctx: Context<O>,
    _t: PhantomData<fn(I)>,
}

impl<I, O, F: Clone> Clone for Process<I, O, F> {
    fn clone(&self) -> Self {
        Self::new(self.f.clone())
    }
}

impl<I, O, F> Process<I, O, F> {
    /// A process operator calling `f`.
    pub fn new(f: F) -> Self {
        Self { f, ctx: Context::default(), _t: PhantomData }
    }
}

impl<I, O, F> FnOperator for Process<I, O, F> {
    const NAME: &'static str = "process";
}

impl<I: Data, O: Data, F: FnMut(I, &mut Context<O>) + Send + 'static> Operator for Process<I, O, F> {
    type In = I;
    type Out = O;

    #[inline]
    fn process(&mut self, record: Record<I>, out: &mut Collector<O>) -> Result<(), BoxError> {
        self.ctx.__begin(record.timestamp());
        (self.f)(record.value, &mut self.ctx);
        self.ctx.__flush_into(out);
        Ok(())
    }

    fn on_watermark(&mut self, watermark: Watermark, _out: &mut Collector<O>) -> Result<(), BoxError> {
        self.ctx.__set_watermark(watermark);
        Ok(())
    }
}
