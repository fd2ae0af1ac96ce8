//! `WindowedStream`: a keyed stream cut into windows, with the trigger,
//! allowed lateness and late-data output to use, ended by a window function.

use super::{KeyedStream, Stream};
use crate::element::Data;
use crate::operator::OutputTag;
use crate::time::TimeDomain;
use crate::window::{
    AggregateWindowFunction, PaneWindowOperator, ProcessFunction, ReduceFunction, Trigger, WindowAssigner,
    WindowFunction, WindowOperator,
};
use dataflow_state::{AggregateFunction, Key, StateData};
use std::marker::PhantomData;
use std::time::Duration;

/// A keyed stream cut into windows by the assigner `A`, fired by the
/// trigger `Tr` (the assigner's default unless [`WindowedStream::trigger`]
/// set one). End it with a window function: [`reduce`](Self::reduce),
/// [`aggregate`](Self::aggregate), [`process`](Self::process) or
/// [`count`](Self::count).
///
/// ```
/// use dataflow_core::time::WatermarkStrategy;
/// use dataflow_core::window::SlidingEventTimeWindows;
/// use dataflow_core::StreamEnvironment;
/// use std::time::Duration;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let env = StreamEnvironment::new().with_parallelism(1);
/// let sums = env.from_iter(vec![(1u8, 1i64), (1, 4), (1, 7)])
///     .assign_timestamps_and_watermarks(WatermarkStrategy::for_monotonous_timestamps()
///         .with_timestamp_assigner(|e: &(u8, i64), _| e.1))
///     .key_by(|e: &(u8, i64)| e.0)
///     .window(SlidingEventTimeWindows::of(Duration::from_millis(6), Duration::from_millis(3)))
///     .reduce_with(|a, b| (a.0, a.1 + b.1), |_key, w, sum| (w.start, sum.1))
///     .collect();
/// env.execute().await.unwrap();
/// let mut v = sums.take();
/// v.sort();
/// assert_eq!(v, [(-3, 1), (0, 5), (3, 11), (6, 7)]);
/// # });
/// ```
pub struct WindowedStream<K, T, A, Tr> {
    keyed: KeyedStream<K, T>,
    assigner: A,
    trigger: Tr,
    allowed_lateness: i64,
    late: Option<OutputTag<T>>,
}

impl<K: Key, T: Data> KeyedStream<K, T> {
    /// Cuts the stream into windows of `assigner`: tumbling, sliding or
    /// session windows in event or processing time, or global windows.
    pub fn window<A>(&self, assigner: A) -> WindowedStream<K, T, A, A::DefaultTrigger>
    where
        A: WindowAssigner<T>,
        A::DefaultTrigger: Trigger<T, A::W>,
    {
        WindowedStream {
            keyed: self.clone(),
            assigner,
            trigger: A::DefaultTrigger::default(),
            allowed_lateness: 0,
            late: None,
        }
    }
}

/// Counts elements (for [`WindowedStream::count`]).
struct Count<T>(PhantomData<fn(T)>);

impl<T> AggregateFunction for Count<T> {
    type In = T;
    type Acc = u64;
    type Out = u64;
    fn create() -> u64 {
        0
    }
    #[inline]
    fn add(acc: &mut u64, _: T) {
        *acc += 1;
    }
    fn merge(a: u64, b: u64) -> u64 {
        a + b
    }
    fn result(acc: &u64) -> u64 {
        *acc
    }
}

impl<K, T, A, Tr> WindowedStream<K, T, A, Tr>
where
    K: Key,
    T: Data,
    A: WindowAssigner<T>,
    Tr: Trigger<T, A::W>,
{
    /// Fires windows by `trigger` instead of the assigner's default.
    ///
    /// ```
    /// use dataflow_core::window::{CountTrigger, GlobalWindows};
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let env = dataflow_core::StreamEnvironment::new().with_parallelism(1);
    /// let out = env.from_iter(1..=6u32)
    ///     .key_by(|_| 0u8)
    ///     .window(GlobalWindows)
    ///     .trigger(CountTrigger::of(3))
    ///     .reduce(|a, b| a + b)
    ///     .collect();
    /// env.execute().await.unwrap();
    /// assert_eq!(out.take(), [6, 21]); // the window keeps its contents: 1+2+3, then 1+…+6
    /// # });
    /// ```
    pub fn trigger<Tr2: Trigger<T, A::W>>(self, trigger: Tr2) -> WindowedStream<K, T, A, Tr2> {
        WindowedStream {
            keyed: self.keyed,
            assigner: self.assigner,
            trigger,
            allowed_lateness: self.allowed_lateness,
            late: self.late,
        }
    }

    /// Keeps event-time windows open `lateness` after their end: a late
    /// element within it re-fires its window with the updated result.
    pub fn allowed_lateness(self, lateness: Duration) -> Self {
        Self { allowed_lateness: crate::time::millis(lateness), ..self }
    }

    /// Sends elements later than the allowed lateness to the side output
    /// `tag` (read it with [`Stream::side_output`]) instead of dropping them.
    pub fn side_output_late_data(self, tag: &OutputTag<T>) -> Self {
        Self { late: Some(tag.clone()), ..self }
    }

    /// Ends the windows with any [`WindowFunction`].
    ///
    /// Windows that do not merge, with the default trigger, keep their
    /// state per key and window and one timer per window
    /// (`window/panes.rs`, `docs/time.md`); others run the general
    /// [`WindowOperator`]. Both give the same results.
    pub fn apply_function<F: WindowFunction<K, T, A::W>>(&self, function: F) -> Stream<F::Out> {
        let domain = if self.assigner.is_event_time() { TimeDomain::EventTime } else { TimeDomain::ProcessingTime };
        if !self.assigner.is_merging() && self.trigger.end_of_window() == Some(domain) {
            let (assigner, lateness, late) = (self.assigner.clone(), self.allowed_lateness, self.late.clone());
            return self.keyed.transform_keyed("window", move |keys, ttl| {
                PaneWindowOperator::new(assigner.clone(), function.clone(), lateness, late.clone(), keys, ttl)
            });
        }
        let op = WindowOperator::new(
            self.assigner.clone(),
            self.trigger.clone(),
            function,
            self.allowed_lateness,
            self.late.clone(),
        );
        self.keyed.apply(op)
    }

    /// Reduces each window's elements pairwise as they arrive and emits the
    /// result when it fires.
    pub fn reduce<F>(&self, f: F) -> Stream<T>
    where
        T: StateData,
        F: FnMut(T, T) -> T + Clone + Send + Sync + 'static,
    {
        self.apply_function(ReduceFunction::new(f, |_: &K, _: &A::W, r: T| r))
    }

    /// Reduces incrementally, then emits `finish(key, window, reduced)`.
    pub fn reduce_with<F, P, O>(&self, f: F, finish: P) -> Stream<O>
    where
        T: StateData,
        O: Data,
        F: FnMut(T, T) -> T + Clone + Send + Sync + 'static,
        P: FnMut(&K, &A::W, T) -> O + Clone + Send + Sync + 'static,
    {
        self.apply_function(ReduceFunction::new(f, finish))
    }

    /// Aggregates each window with `Ag` and emits its result.
    pub fn aggregate<Ag>(&self, _aggregate: Ag) -> Stream<Ag::Out>
    where
        Ag: AggregateFunction<In = T> + 'static,
        Ag::Acc: StateData,
        Ag::Out: Data,
    {
        self.apply_function(AggregateWindowFunction::<Ag, _>::new(|_: &K, _: &A::W, r: Ag::Out| r))
    }

    /// Aggregates incrementally, then emits `finish(key, window, result)`.
    pub fn aggregate_with<Ag, P, O>(&self, _aggregate: Ag, finish: P) -> Stream<O>
    where
        Ag: AggregateFunction<In = T> + 'static,
        Ag::Acc: StateData,
        O: Data,
        P: FnMut(&K, &A::W, Ag::Out) -> O + Clone + Send + Sync + 'static,
    {
        self.apply_function(AggregateWindowFunction::<Ag, _>::new(finish))
    }

    /// Keeps every element and emits `f(key, window, elements)` when the
    /// window fires (Flink's `ProcessWindowFunction`).
    pub fn process<P, O>(&self, f: P) -> Stream<O>
    where
        T: StateData,
        O: Data,
        P: FnMut(&K, &A::W, &[T]) -> O + Clone + Send + Sync + 'static,
    {
        self.apply_function(ProcessFunction::new(f))
    }

    /// Emits `(key, window, number of elements)` for each firing.
    pub fn count(&self) -> Stream<(K, A::W, u64)> {
        self.aggregate_with(Count::<T>(PhantomData), |k: &K, w: &A::W, n| (k.clone(), w.clone(), n))
    }
}
