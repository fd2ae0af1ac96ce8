//! Window functions: what a window keeps and what it emits when it fires.
//! Incremental ones (reduce, aggregate) keep one accumulator per window;
//! the full one (process) keeps every element and sees them all at once.
//! Each takes a final step that sees the key and the window, so a window
//! can emit `(key, window, result)` without keeping its elements.

use super::Window;
use crate::element::Data;
use dataflow_state::{AggregateFunction, StateData};
use std::marker::PhantomData;

/// What a window keeps and emits (the three kinds below implement it).
///
/// ```
/// use dataflow_core::window::{ReduceFunction, TimeWindow, WindowFunction};
/// let mut f = ReduceFunction::new(|a: u32, b: u32| a + b, |_k: &&str, _w: &TimeWindow, r: u32| r);
/// let acc = f.create(1);
/// let acc = f.add(acc, 2);
/// assert_eq!(f.emit(&"k", &TimeWindow::new(0, 10), &acc), 3);
/// ```
pub trait WindowFunction<K, T, W: Window>: Clone + Send + Sync + 'static {
    /// What a window keeps.
    type Acc: StateData;
    /// What a firing emits.
    type Out: Data;

    /// The contents of a window after its first element.
    fn create(&mut self, value: T) -> Self::Acc;
    /// Adds an element.
    fn add(&mut self, acc: Self::Acc, value: T) -> Self::Acc;
    /// Combines the contents of two windows that merge.
    fn merge(&mut self, a: Self::Acc, b: Self::Acc) -> Self::Acc;
    /// The result of a firing.
    fn emit(&mut self, key: &K, window: &W, acc: &Self::Acc) -> Self::Out;
}

/// Incremental: combines elements pairwise as they arrive (`reduce`), then
/// `finish` turns the reduced value into the output.
#[derive(Clone)]
pub struct ReduceFunction<T, F, P> {
    reduce: F,
    finish: P,
    _t: PhantomData<fn(T)>,
}

impl<T, F, P> ReduceFunction<T, F, P> {
    /// Reduces with `reduce`, emits `finish(key, window, reduced)`.
    pub fn new(reduce: F, finish: P) -> Self {
        Self { reduce, finish, _t: PhantomData }
    }
}

impl<K, T, W, F, P, O> WindowFunction<K, T, W> for ReduceFunction<T, F, P>
where
    W: Window,
    T: StateData,
    O: Data,
    F: FnMut(T, T) -> T + Clone + Send + Sync + 'static,
    P: FnMut(&K, &W, T) -> O + Clone + Send + Sync + 'static,
{
    type Acc = T;
    type Out = O;

    fn create(&mut self, value: T) -> T {
        value
    }

    #[inline]
    fn add(&mut self, acc: T, value: T) -> T {
        (self.reduce)(acc, value)
    }

    fn merge(&mut self, a: T, b: T) -> T {
        (self.reduce)(a, b)
    }

    fn emit(&mut self, key: &K, window: &W, acc: &T) -> O {
        (self.finish)(key, window, acc.clone())
    }
}

/// Incremental: folds elements into an accumulator with an
/// [`AggregateFunction`], then `finish` turns its result into the output.
pub struct AggregateWindowFunction<A, P> {
    finish: P,
    _a: PhantomData<fn(A)>,
}

impl<A, P: Clone> Clone for AggregateWindowFunction<A, P> {
    fn clone(&self) -> Self {
        Self { finish: self.finish.clone(), _a: PhantomData }
    }
}

impl<A, P> AggregateWindowFunction<A, P> {
    /// Aggregates with `A`, emits `finish(key, window, result)`.
    ///
    /// ```
    /// use dataflow_core::window::{AggregateWindowFunction, TimeWindow, WindowFunction};
    /// use dataflow_core::AggregateFunction;
    /// struct Count;
    /// impl AggregateFunction for Count {
    ///     type In = char;
    ///     type Acc = u64;
    ///     type Out = u64;
    ///     fn create() -> u64 { 0 }
    ///     fn add(acc: &mut u64, _: char) { *acc += 1 }
    ///     fn merge(a: u64, b: u64) -> u64 { a + b }
    ///     fn result(acc: &u64) -> u64 { *acc }
    /// }
    /// let mut f = AggregateWindowFunction::<Count, _>::new(|k: &u8, _: &TimeWindow, n: u64| (*k, n));
    /// let acc = f.create('a');
    /// let acc = f.add(acc, 'b');
    /// assert_eq!(f.emit(&7, &TimeWindow::new(0, 1), &acc), (7, 2));
    /// ```
    pub fn new(finish: P) -> Self {
        Self { finish, _a: PhantomData }
    }
}

impl<K, T, W, A, P, O> WindowFunction<K, T, W> for AggregateWindowFunction<A, P>
where
    W: Window,
    A: AggregateFunction<In = T> + 'static,
    A::Acc: StateData,
    O: Data,
    P: FnMut(&K, &W, A::Out) -> O + Clone + Send + Sync + 'static,
{
    type Acc = A::Acc;
    type Out = O;

    fn create(&mut self, value: T) -> A::Acc {
        let mut acc = A::create();
        A::add(&mut acc, value);
        acc
    }

    #[inline]
    fn add(&mut self, mut acc: A::Acc, value: T) -> A::Acc {
        A::add(&mut acc, value);
        acc
    }

    fn merge(&mut self, a: A::Acc, b: A::Acc) -> A::Acc {
        A::merge(a, b)
    }

    fn emit(&mut self, key: &K, window: &W, acc: &A::Acc) -> O {
        (self.finish)(key, window, A::result(acc))
    }
}

/// Full: keeps every element of the window and hands them all to `f` when
/// it fires (Flink's `ProcessWindowFunction`).
///
/// ```
/// use dataflow_core::window::{ProcessFunction, TimeWindow, WindowFunction};
/// let mut f = ProcessFunction::new(|_k: &u8, w: &TimeWindow, xs: &[i32]| (w.start, xs.iter().max().copied()));
/// let acc = f.create(3);
/// let acc = f.add(acc, 9);
/// assert_eq!(f.emit(&0, &TimeWindow::new(0, 5), &acc), (0, Some(9)));
/// ```
#[derive(Clone)]
pub struct ProcessFunction<T, P> {
    f: P,
    _t: PhantomData<fn(T)>,
}

impl<T, P> ProcessFunction<T, P> {
    /// Emits `f(key, window, elements)`.
    pub fn new(f: P) -> Self {
        Self { f, _t: PhantomData }
    }
}

impl<K, T, W, P, O> WindowFunction<K, T, W> for ProcessFunction<T, P>
where
    W: Window,
    T: StateData,
    O: Data,
    P: FnMut(&K, &W, &[T]) -> O + Clone + Send + Sync + 'static,
{
    type Acc = Vec<T>;
    type Out = O;

    fn create(&mut self, value: T) -> Vec<T> {
        vec![value]
    }

    #[inline]
    fn add(&mut self, mut acc: Vec<T>, value: T) -> Vec<T> {
        acc.push(value);
        acc
    }

    fn merge(&mut self, mut a: Vec<T>, mut b: Vec<T>) -> Vec<T> {
        a.append(&mut b);
        a
    }

    fn emit(&mut self, key: &K, window: &W, acc: &Vec<T>) -> O {
        (self.f)(key, window, acc)
    }
}
