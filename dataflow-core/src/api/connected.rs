//! `ConnectedStreams<A, B>`: two streams of possibly different types that
//! feed one two-input operator.

use super::Stream;
use crate::element::Data;
use crate::operator::{CoFlatMap, CoMap, OperatorInfo, TwoInputOperator};
use crate::runtime::job::factory::{Factories, TypedTwoInput};
use std::marker::PhantomData;

/// Two streams connected for a two-input operator. The operator's
/// watermark is the minimum of both inputs'.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let env = dataflow_core::StreamEnvironment::new().with_parallelism(2);
/// let rules = env.from_iter(vec![10u64]).broadcast();
/// let values = env.from_parallel_iter(|_| vec![1u64]);
/// let out = values.connect(&rules).flat_map(|v| vec![v], |_rule| Vec::new()).collect();
/// env.execute().await.unwrap();
/// assert_eq!(out.take(), [1, 1]);
/// # });
/// ```
pub struct ConnectedStreams<A, B> {
    first: Stream<A>,
    second: Stream<B>,
}

impl<A, B> std::fmt::Debug for ConnectedStreams<A, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectedStreams").field("first", &self.first).field("second", &self.second).finish()
    }
}

impl<A: Data, B: Data> ConnectedStreams<A, B> {
    pub(crate) fn new(first: Stream<A>, second: Stream<B>) -> Self {
        Self { first, second }
    }

    /// Applies a two-input operator built per subtask by `make`.
    ///
    /// ```
    /// use dataflow_core::operator::CoMap;
    /// let env = dataflow_core::StreamEnvironment::new();
    /// let a = env.from_iter(vec![1u8]);
    /// let b = env.from_iter(vec![2u16]);
    /// let _s = a.connect(&b).transform_with("widen", |_| CoMap::new(|x: u8| x as u32, |y: u16| y as u32));
    /// ```
    pub fn transform_with<O, F>(&self, name: &str, make: F) -> Stream<O::Out>
    where
        O: TwoInputOperator<In1 = A, In2 = B>,
        F: Fn(&OperatorInfo) -> O + Send + Sync + 'static,
    {
        let env = self.first.env.clone();
        let id = env.add_node(name, Factories::two_input(TypedTwoInput { make, _t: PhantomData }));
        self.first.connect_to(id, 0);
        self.second.connect_to(id, 1);
        Stream::new(env, id)
    }

    /// Applies a two-input operator; every subtask gets a clone of `op`.
    /// See [`TwoInputOperator`] for an example.
    pub fn transform<O>(&self, name: &str, op: O) -> Stream<O::Out>
    where
        O: TwoInputOperator<In1 = A, In2 = B> + Clone,
    {
        let op = std::sync::Mutex::new(op);
        self.transform_with(name, move |_| op.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone())
    }

    /// Maps each input with its own function to a common type.
    ///
    /// ```
    /// let env = dataflow_core::StreamEnvironment::new();
    /// let a = env.from_iter(vec![1u8]);
    /// let b = env.from_iter(vec![String::from("two")]);
    /// let _s = a.connect(&b).map(|x| x.to_string(), |s| s.to_string());
    /// ```
    pub fn map<O, F1, F2>(&self, f1: F1, f2: F2) -> Stream<O>
    where
        O: Data,
        F1: FnMut(A) -> O + Clone + Send + Sync + 'static,
        F2: FnMut(B) -> O + Clone + Send + Sync + 'static,
    {
        self.transform("co_map", CoMap::new(f1, f2))
    }

    /// Flat-maps each input with its own function to a common type.
    ///
    /// ```
    /// let env = dataflow_core::StreamEnvironment::new();
    /// let a = env.from_iter(vec![1u8]);
    /// let b = env.from_iter(vec![2u8]);
    /// let _s = a.connect(&b).flat_map(|x| vec![x], |y| vec![y, y]);
    /// ```
    pub fn flat_map<O, I1, I2, F1, F2>(&self, f1: F1, f2: F2) -> Stream<O>
    where
        O: Data,
        I1: IntoIterator<Item = O>,
        I2: IntoIterator<Item = O>,
        F1: FnMut(A) -> I1 + Clone + Send + Sync + 'static,
        F2: FnMut(B) -> I2 + Clone + Send + Sync + 'static,
    {
        self.transform("co_flat_map", CoFlatMap::new(f1, f2))
    }
}
