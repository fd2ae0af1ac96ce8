//! `Stream<T>`: a typed stream of records and the operators on it.

use super::{ConnectedStreams, KeyedStream, SinkNode, StreamEnvironment};
use crate::connectors::{CallbackSink, ChannelSink, CollectHandle, FileSink, Sink};
use crate::element::Data;
use crate::graph::{Edge, FnKeyRoute, KeyRoute, NodeId, Partitioning, SideEdge};
use crate::operator::TimestampsAndWatermarks;
use crate::operator::{
    AsyncFnOperator, Context, Filter, FlatMap, FnOperator, Inspect, Map, Operator, OperatorInfo, OutputTag, Process,
};
use crate::runtime::job::factory::{self, Factories, TypedOperator};
use crate::time::WatermarkStrategy;
use dataflow_state::Key;
use std::any::Any;
use std::marker::PhantomData;
use std::path::Path;
use std::sync::Arc;

/// One upstream of a stream: the node and how its records will be spread.
#[derive(Clone)]
pub(crate) struct Upstream {
    pub(crate) node: NodeId,
    pub(crate) partitioning: Option<Partitioning>,
    pub(crate) key: Option<Arc<dyn Any + Send + Sync>>,
    pub(crate) side: Option<SideEdge<Factories>>,
}

/// A typed stream of records of type `T`.
///
/// A stream is the output of one operator (or, after [`union`](Self::union),
/// of several). Operators are applied with its methods; `set_parallelism`,
/// `name` and `uid` configure the operator that produced it.
///
/// ```
/// use dataflow_core::StreamEnvironment;
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let env = StreamEnvironment::new().with_parallelism(1);
/// let words = env
///     .from_iter(["a b", "b c"].map(String::from))
///     .flat_map(|line: String| line.split(' ').map(String::from).collect::<Vec<_>>())
///     .filter(|w| w != "c")
///     .collect();
/// env.execute().await.unwrap();
/// assert_eq!(words.take(), ["a", "b", "b"]);
/// # });
/// ```
pub struct Stream<T> {
    pub(crate) env: StreamEnvironment,
    pub(crate) ups: Vec<Upstream>,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for Stream<T> {
    fn clone(&self) -> Self {
        Self { env: self.env.clone(), ups: self.ups.clone(), _t: PhantomData }
    }
}

impl<T> std::fmt::Debug for Stream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let nodes: Vec<_> = self.ups.iter().map(|u| u.node).collect();
        f.debug_struct("Stream").field("nodes", &nodes).finish()
    }
}

impl<T: Data> Stream<T> {
    pub(crate) fn new(env: StreamEnvironment, node: NodeId) -> Self {
        Self { env, ups: vec![Upstream { node, partitioning: None, key: None, side: None }], _t: PhantomData }
    }

    /// Adds edges from every upstream of this stream into `input` of `to`.
    pub(crate) fn connect_to(&self, to: NodeId, input: usize) {
        for u in &self.ups {
            self.env.add_edge(Edge {
                from: u.node,
                to,
                input,
                partitioning: u.partitioning,
                key: u.key.clone(),
                side: u.side.clone(),
            });
        }
    }

    fn repartition(&self, partitioning: Partitioning, key: Option<Arc<dyn Any + Send + Sync>>) -> Self {
        let mut s = self.clone();
        for u in &mut s.ups {
            u.partitioning = Some(partitioning);
            u.key = key.clone();
        }
        s
    }

    fn configure(self, f: impl Fn(&mut crate::graph::Node<Factories>)) -> Self {
        for u in &self.ups {
            self.env.update_node(u.node, &f);
        }
        self
    }

    /// Applies an operator built per subtask by `make`.
    ///
    /// ```
    /// use dataflow_core::{operator::Map, StreamEnvironment};
    /// let env = StreamEnvironment::new();
    /// let doubled = env.from_iter(0..3).transform_with("double", |_info| Map::new(|x: i32| x * 2));
    /// # let _ = doubled;
    /// ```
    pub fn transform_with<O, F>(&self, name: &str, make: F) -> Stream<O::Out>
    where
        O: Operator<In = T>,
        F: Fn(&OperatorInfo) -> O + Send + Sync + 'static,
    {
        let node = TypedOperator::<O, F, factory::SyncOp>::new(make);
        let id = self.env.add_node(name, Factories::one_input(node));
        self.connect_to(id, 0);
        Stream::new(self.env.clone(), id)
    }

    /// Applies an operator; every subtask gets a clone of `op`. See
    /// [`Operator`] for an example.
    pub fn transform<O>(&self, name: &str, op: O) -> Stream<O::Out>
    where
        O: Operator<In = T> + Clone,
    {
        // Cloned under a lock, so an operator need not be `Sync`.
        let op = std::sync::Mutex::new(op);
        self.transform_with(name, move |_| op.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone())
    }

    /// Applies an operator made with `#[operator]` (or any [`FnOperator`]),
    /// configuring the node with the operator's options.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// #[dataflow_core::operator]
    /// fn shout(s: String) -> String { s.to_uppercase() }
    ///
    /// let env = dataflow_core::StreamEnvironment::new().with_parallelism(1);
    /// let out = env.from_iter(vec!["hi".to_string()]).apply(shout()).collect();
    /// env.execute().await.unwrap();
    /// assert_eq!(out.take(), ["HI"]);
    /// # });
    /// ```
    pub fn apply<O>(&self, op: O) -> Stream<O::Out>
    where
        O: Operator<In = T> + FnOperator + Clone,
    {
        self.transform(O::NAME, op).with_options::<O>()
    }

    /// Applies an asynchronous operator (an `#[operator] async fn`): up to
    /// its capacity of calls in flight per subtask, results in input or
    /// completion order. See [`AsyncFnOperator`].
    pub fn apply_async<O>(&self, op: O) -> Stream<O::Out>
    where
        O: AsyncFnOperator<In = T> + FnOperator + Clone,
    {
        let op = std::sync::Mutex::new(op);
        let make = move |_: &OperatorInfo| op.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let node = TypedOperator::<O, _, factory::AsyncOp>::new(make);
        let id = self.env.add_node(O::NAME, Factories::one_input(node));
        self.connect_to(id, 0);
        Stream::new(self.env.clone(), id).with_options::<O>()
    }

    /// The records that the operators producing this stream emitted to the
    /// side output `tag`. See [`OutputTag`].
    pub fn side_output<U: Data>(&self, tag: &OutputTag<U>) -> Stream<U> {
        let side = SideEdge { key: tag.key(), port: Factories::port::<U>() };
        // Sources have side outputs too (their bad input).
        let ups = self
            .ups
            .iter()
            .map(|u| Upstream { node: u.node, partitioning: None, key: None, side: Some(side.clone()) })
            .collect();
        Stream { env: self.env.clone(), ups, _t: PhantomData }
    }

    /// Reports of the records that `#[operator]` functions producing this
    /// stream rejected, under [`BadRecordPolicy::SideOutput`](crate::operator::BadRecordPolicy::SideOutput).
    ///
    /// ```
    /// use dataflow_core::{operator, operator::BadRecordPolicy, StreamEnvironment};
    ///
    /// #[operator]
    /// fn parse(s: String) -> Result<u32, std::num::ParseIntError> { s.parse() }
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let env = StreamEnvironment::new().with_parallelism(1).with_bad_record_policy(BadRecordPolicy::SideOutput);
    /// let numbers = env.from_iter(vec!["1".to_string(), "x".into()]).apply(parse());
    /// let rejected = numbers.bad_records().collect();
    /// let numbers = numbers.collect();
    /// env.execute().await.unwrap();
    /// assert_eq!(numbers.take(), [1]);
    /// assert_eq!(rejected.take()[0].position, 1);
    /// # });
    /// ```
    pub fn bad_records(&self) -> Stream<crate::operator::BadRecordReport> {
        self.side_output(&crate::operator::function::bad_records_tag())
    }

    /// Applies the `uid` and `parallelism` options of an [`FnOperator`].
    pub(crate) fn with_options<O: FnOperator>(self) -> Self {
        let s = match O::UID {
            Some(uid) => self.uid(uid),
            None => self,
        };
        match O::PARALLELISM {
            Some(p) => s.set_parallelism(p),
            None => s,
        }
    }

    /// Gives the stream event timestamps and watermarks by `strategy`
    /// (replacing the watermarks it had). It takes its input's parallelism
    /// unless set, so right after a source it chains to it and the
    /// watermarks are per source subtask.
    ///
    /// ```
    /// use dataflow_core::time::WatermarkStrategy;
    /// use std::time::Duration;
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let env = dataflow_core::StreamEnvironment::new().with_parallelism(1);
    /// let strategy = WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_millis(10))
    ///     .with_timestamp_assigner(|v: &i64, _| *v);
    /// let out = env.from_iter(vec![5i64, 20, 12]).assign_timestamps_and_watermarks(strategy)
    ///     .process(|v, ctx: &mut dataflow_core::operator::Context<(i64, Option<i64>)>| {
    ///         let ts = ctx.timestamp();
    ///         ctx.emit((v, ts))
    ///     })
    ///     .collect();
    /// env.execute().await.unwrap();
    /// assert_eq!(out.take(), [(5, Some(5)), (20, Some(20)), (12, Some(12))]);
    /// # });
    /// ```
    pub fn assign_timestamps_and_watermarks(&self, mut strategy: WatermarkStrategy<T>) -> Stream<T> {
        if let Some(a) = &mut strategy.alignment {
            a.resolved = Some(self.env.alignment_group(&a.group, a.max_drift));
        }
        // Like Flink, it runs at its input's parallelism (unless set), so
        // after a source it chains to it: one generator per source subtask.
        self.transform("timestamps/watermarks", TimestampsAndWatermarks::new(strategy))
            .configure(|n| n.inherit_parallelism = true)
    }

    /// Applies `f` to every value.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let env = dataflow_core::StreamEnvironment::new().with_parallelism(1);
    /// let out = env.from_iter(1..=3).map(|x| x * 10).collect();
    /// env.execute().await.unwrap();
    /// assert_eq!(out.take(), [10, 20, 30]);
    /// # });
    /// ```
    pub fn map<U, F>(&self, f: F) -> Stream<U>
    where
        U: Data,
        F: FnMut(T) -> U + Clone + Send + Sync + 'static,
    {
        self.apply(Map::new(f))
    }

    /// Keeps the values for which `f` holds.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let env = dataflow_core::StreamEnvironment::new().with_parallelism(1);
    /// let out = env.from_iter(1..=6).filter(|x| x % 3 == 0).collect();
    /// env.execute().await.unwrap();
    /// assert_eq!(out.take(), [3, 6]);
    /// # });
    /// ```
    pub fn filter<F>(&self, f: F) -> Stream<T>
    where
        F: FnMut(&T) -> bool + Clone + Send + Sync + 'static,
    {
        self.apply(Filter::new(f))
    }

    /// Maps every value to zero or more values.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let env = dataflow_core::StreamEnvironment::new().with_parallelism(1);
    /// let out = env.from_iter(1..=3).flat_map(|x| vec![x; x]).collect();
    /// env.execute().await.unwrap();
    /// assert_eq!(out.take(), [1, 2, 2, 3, 3, 3]);
    /// # });
    /// ```
    pub fn flat_map<U, I, F>(&self, f: F) -> Stream<U>
    where
        U: Data,
        I: IntoIterator<Item = U>,
        F: FnMut(T) -> I + Clone + Send + Sync + 'static,
    {
        self.apply(FlatMap::new(f))
    }

    /// Calls `f` on every value with a [`Context`] through which it emits
    /// any number of outputs and reads the record's timestamp and the
    /// watermark.
    ///
    /// ```
    /// use dataflow_core::operator::Context;
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let env = dataflow_core::StreamEnvironment::new().with_parallelism(1);
    /// let out = env
    ///     .from_iter(vec![3u32])
    ///     .process(|x: u32, ctx: &mut Context<u32>| (0..x).for_each(|i| ctx.emit(i)))
    ///     .collect();
    /// env.execute().await.unwrap();
    /// assert_eq!(out.take(), [0, 1, 2]);
    /// # });
    /// ```
    pub fn process<U, F>(&self, f: F) -> Stream<U>
    where
        U: Data,
        F: FnMut(T, &mut Context<U>) + Clone + Send + Sync + 'static,
    {
        self.apply(Process::new(f))
    }

    /// Calls `f` on every value and passes it on.
    ///
    /// ```
    /// let env = dataflow_core::StreamEnvironment::new();
    /// let _s = env.from_iter(0..3).inspect(|x| println!("{x}"));
    /// ```
    pub fn inspect<F>(&self, f: F) -> Stream<T>
    where
        F: FnMut(&T) + Clone + Send + Sync + 'static,
    {
        self.apply(Inspect::new(f))
    }

    /// Partitions the stream by the key `f` returns: every record with the
    /// same key goes to the same subtask (by key group).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let env = dataflow_core::StreamEnvironment::new().with_parallelism(2);
    /// let out = env.from_iter(vec![('a', 1), ('b', 2), ('a', 3)])
    ///     .key_by(|(k, _)| *k)
    ///     .reduce(|(k, x), (_, y)| (k, x + y))
    ///     .collect();
    /// env.execute().await.unwrap();
    /// let mut v = out.take();
    /// v.sort();
    /// assert_eq!(v, [('a', 1), ('a', 4), ('b', 2)]);
    /// # });
    /// ```
    pub fn key_by<K, F>(&self, f: F) -> KeyedStream<K, T>
    where
        K: Key,
        F: Fn(&T) -> K + Clone + Send + Sync + 'static,
    {
        let route: Arc<dyn KeyRoute<T>> = Arc::new(FnKeyRoute(f.clone()));
        let stream = self.repartition(Partitioning::Hash, Some(Arc::new(route)));
        KeyedStream::new(stream, f)
    }

    /// The records of this stream and of `other`, in one stream.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let env = dataflow_core::StreamEnvironment::new().with_parallelism(1);
    /// let a = env.from_iter(vec![1, 2]);
    /// let b = env.from_iter(vec![3]);
    /// let out = a.union(&b).map(|x| x * 2).collect();
    /// env.execute().await.unwrap();
    /// let mut v = out.take();
    /// v.sort();
    /// assert_eq!(v, [2, 4, 6]);
    /// # });
    /// ```
    pub fn union(&self, other: &Stream<T>) -> Stream<T> {
        let mut s = self.clone();
        s.ups.extend(other.ups.iter().cloned());
        s
    }

    /// Connects this stream with a stream of another type, for a two-input
    /// operator.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let env = dataflow_core::StreamEnvironment::new().with_parallelism(1);
    /// let nums = env.from_iter(vec![1u32, 2]);
    /// let words = env.from_iter(vec!["x".to_string()]);
    /// let out = nums.connect(&words).map(|n| n.to_string(), |w| w).collect();
    /// env.execute().await.unwrap();
    /// let mut v = out.take();
    /// v.sort();
    /// assert_eq!(v, ["1", "2", "x"]);
    /// # });
    /// ```
    pub fn connect<U: Data>(&self, other: &Stream<U>) -> ConnectedStreams<T, U> {
        ConnectedStreams::new(self.clone(), other.clone())
    }

    /// Sends every record to every subtask of the next operator.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let env = dataflow_core::StreamEnvironment::new().with_parallelism(3);
    /// let out = env.from_iter(vec![7]).broadcast().map(|x| x).collect();
    /// env.execute().await.unwrap();
    /// assert_eq!(out.take(), [7, 7, 7]);
    /// # });
    /// ```
    pub fn broadcast(&self) -> Stream<T> {
        self.repartition(Partitioning::Broadcast, None)
    }

    /// Spreads records round robin over the subtasks of the next operator.
    ///
    /// ```
    /// let env = dataflow_core::StreamEnvironment::new().with_parallelism(2);
    /// env.from_parallel_iter(|_| 0..4).rebalance().map(|x| x).for_each(|_| {});
    /// assert_eq!(env.explain().unwrap().channels(), 4);
    /// ```
    pub fn rebalance(&self) -> Stream<T> {
        self.repartition(Partitioning::Rebalance, None)
    }

    /// Sends subtask `i`'s records to subtask `i` of the next operator
    /// (which must have the same parallelism); chained when possible.
    ///
    /// ```
    /// let env = dataflow_core::StreamEnvironment::new().with_parallelism(2);
    /// env.from_parallel_iter(|_| 0..4).forward().map(|x| x).for_each(|_| {});
    /// assert_eq!(env.explain().unwrap().tasks(), 2);
    /// ```
    pub fn forward(&self) -> Stream<T> {
        self.repartition(Partitioning::Forward, None)
    }

    /// Sets the parallelism of the operator that produced this stream.
    ///
    /// ```
    /// let env = dataflow_core::StreamEnvironment::new().with_parallelism(2);
    /// env.from_parallel_iter(|_| 0..4).map(|x| x).set_parallelism(3).for_each(|_| {});
    /// assert_eq!(env.explain().unwrap().tasks(), 5);
    /// ```
    pub fn set_parallelism(self, parallelism: usize) -> Self {
        self.configure(|n| n.parallelism = Some(parallelism))
    }

    /// Names the operator that produced this stream (in plans, errors and
    /// metrics).
    ///
    /// ```
    /// let env = dataflow_core::StreamEnvironment::new();
    /// env.from_iter(0..4).map(|x| x).name("identity").for_each(|_| {});
    /// assert!(env.explain().unwrap().to_string().contains("identity"));
    /// ```
    pub fn name(self, name: &str) -> Self {
        self.configure(|n| n.name = name.to_string())
    }

    /// Gives the operator that produced this stream a stable id (used by
    /// savepoints to find its state after the job changed).
    ///
    /// ```
    /// let env = dataflow_core::StreamEnvironment::new();
    /// let _s = env.from_iter(0..4).map(|x| x).uid("identity-v1");
    /// ```
    pub fn uid(self, uid: &str) -> Self {
        self.configure(|n| n.uid = Some(uid.to_string()))
    }

    /// Ends the stream in a sink; `make` builds one instance per subtask.
    /// A sink runs at the parallelism of its input unless set otherwise.
    /// See [`Sink`] for an example.
    pub fn sink<S, F>(&self, name: &str, make: F) -> SinkNode
    where
        S: Sink<T>,
        F: Fn(&OperatorInfo) -> S + Send + Sync + 'static,
    {
        let node = factory::TypedSink { make, _t: PhantomData };
        let id = self.env.add_node(name, Factories::one_input(node));
        self.env.update_node(id, |n| n.inherit_parallelism = true);
        self.connect_to(id, 0);
        SinkNode { env: self.env.clone(), node: id }
    }

    /// Collects every value; read them from the handle after the job ran.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let env = dataflow_core::StreamEnvironment::new();
    /// let out = env.from_iter(0..3).collect();
    /// env.execute().await.unwrap();
    /// assert_eq!(out.len(), 3);
    /// # });
    /// ```
    pub fn collect(&self) -> CollectHandle<T> {
        let handle = CollectHandle::default();
        let h = handle.clone();
        self.sink("collect", move |_| h.sink());
        handle
    }

    /// Sends every value into a tokio channel. See [`ChannelSink`].
    pub fn sink_channel(&self, tx: tokio::sync::mpsc::Sender<T>) -> SinkNode {
        self.sink("channel", move |_| ChannelSink::new(tx.clone()))
    }

    /// Calls `f` on every value (each subtask on its own clone of `f`).
    /// See [`CallbackSink`].
    pub fn for_each<F>(&self, f: F) -> SinkNode
    where
        F: FnMut(T) + Clone + Send + Sync + 'static,
    {
        self.sink("for_each", move |_| CallbackSink::new(f.clone()))
    }

    /// Writes every value as a line of the file at `path`, from one subtask.
    /// See [`FileSink`].
    pub fn write_lines(&self, path: impl AsRef<Path>) -> SinkNode
    where
        T: std::fmt::Display,
    {
        let path = path.as_ref().to_path_buf();
        self.sink("write_lines", move |_| FileSink::new(path.clone())).set_parallelism(1)
    }

    /// Writes every value as a line of part files in `dir` (a path, or an
    /// object store's URL such as `s3://bucket/out`), exactly once
    /// with checkpointing: a part becomes visible only when the checkpoint
    /// after it completes (see
    /// [`TransactionalFileSink`](crate::connectors::two_phase::TransactionalFileSink)).
    /// Read what is visible with
    /// [`read_committed`](crate::connectors::two_phase::read_committed).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let dir = tempfile::tempdir().unwrap();
    /// let env = dataflow_core::StreamEnvironment::new().with_parallelism(2);
    /// env.from_iter(0..4).write_transactional_files(dir.path());
    /// env.execute().await.unwrap(); // the end of input commits
    /// let mut lines = dataflow_core::connectors::two_phase::read_committed(dir.path()).unwrap();
    /// lines.sort();
    /// assert_eq!(lines, ["0", "1", "2", "3"]);
    /// # });
    /// ```
    pub fn write_transactional_files(&self, dir: impl AsRef<Path>) -> SinkNode
    where
        T: std::fmt::Display,
    {
        use crate::connectors::two_phase::{TransactionalFileSink, TransactionalSink};
        let dir = dir.as_ref().to_path_buf();
        self.sink("transactional files", move |info| {
            let sink = TransactionalFileSink::new(dir.clone(), info.subtask);
            TransactionalSink::new(sink.with_storage_options(info.storage_options.clone()))
        })
    }

    /// Writes every value exactly once into part files of a folder, in a
    /// format (CSV, JSON Lines, lines; see [`FileOutput`](crate::connectors::file::FileOutput)):
    /// the two-phase file sink of [`Self::write_transactional_files`] with
    /// an encoder, and parts rolled also by size.
    pub fn write_files(&self, output: crate::connectors::file::FileOutput<T>) -> SinkNode {
        use crate::connectors::two_phase::{TransactionalFileSink, TransactionalSink};
        let crate::connectors::file::FileOutput { dir, encoder, max_part_bytes, rollover } = output;
        self.sink("files", move |info| {
            let mut sink = TransactionalFileSink::with_encoder(dir.clone(), info.subtask, encoder.clone())
                .with_storage_options(info.storage_options.clone());
            if let Some(bytes) = max_part_bytes {
                sink = sink.with_max_part_bytes(bytes);
            }
            if let Some(interval) = rollover {
                sink = sink.with_rollover_interval(interval, info.clock.clone());
            }
            TransactionalSink::new(sink)
        })
    }
}
