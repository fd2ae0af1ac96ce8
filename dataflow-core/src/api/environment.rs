//! The stream environment: configuration, sources, and running the job.

use super::Stream;
use crate::checkpoint::coordinator::CheckpointConfig;
use crate::checkpoint::restart::RestartStrategy;
use crate::checkpoint::{CheckpointHandle, CheckpointSetup};
use crate::connectors::split::{Split, SplitSource, SplitSourceReader};
use crate::connectors::{ElementSource, IterSource, Source, StreamSource};
use crate::element::{Data, StreamElement};
use crate::error::Error;
use crate::graph::{Edge, NodeId, NodeKind, PhysicalPlan};
use crate::operator::{BadRecordPolicy, OperatorInfo};
use crate::runtime::JobResult;
use crate::runtime::job::factory::{Factories, JobGraph, SourceMaker, TypedSource};
use crate::runtime::job::{self, JobConfig};
use crate::time::{Clock, SystemClock, WatermarkStrategy};
use dataflow_state::DEFAULT_MAX_PARALLELISM;
use dataflow_state::table::StateBackendConfig;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

struct Inner {
    graph: JobGraph,
    config: JobConfig,
    executed: bool,
    alignment_groups: std::collections::HashMap<String, Arc<crate::time::AlignmentGroup>>,
}

/// Where a job is defined and run: holds the graph being built and the
/// settings (parallelism, max parallelism, batching, clock).
///
/// Cloning gives another handle to the same job.
///
/// ```
/// use dataflow_core::StreamEnvironment;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let env = StreamEnvironment::new().with_parallelism(2);
/// let out = env
///     .from_parallel_iter(|info| {
///         let (p, i) = (info.parallelism as u64, info.subtask as u64);
///         (0..100u64).filter(move |x| x % p == i)
///     })
///     .map(|x| x * 2)
///     .collect();
/// let result = env.execute().await.unwrap();
/// assert_eq!(out.take().into_iter().sum::<u64>(), 9900);
/// assert_eq!(result.operator("map").unwrap().records_in, 100);
/// # });
/// ```
#[derive(Clone)]
pub struct StreamEnvironment {
    inner: Arc<Mutex<Inner>>,
}

impl Default for StreamEnvironment {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for StreamEnvironment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("StreamEnvironment")
            .field("config", &inner.config)
            .field("operators", &inner.graph.nodes.len())
            .finish()
    }
}

impl StreamEnvironment {
    /// An environment with parallelism = the number of cores, max
    /// parallelism 128, batches of 1024 records, channels of 8 batches, a
    /// 5 ms buffer timeout and the system clock.
    ///
    /// ```
    /// let env = dataflow_core::StreamEnvironment::new();
    /// assert!(env.parallelism() >= 1);
    /// assert_eq!(env.max_parallelism(), 128);
    /// ```
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let config = JobConfig {
            parallelism: cores,
            max_parallelism: DEFAULT_MAX_PARALLELISM,
            batch_size: 1024,
            channel_capacity: 8,
            buffer_timeout: Duration::from_millis(5),
            bad_record_policy: BadRecordPolicy::Fail,
            clock: Arc::new(SystemClock),
            state_backend: StateBackendConfig::InMemory,
            checkpointing: None,
            restart: RestartStrategy::NoRestart,
            savepoints: None,
            restore_from: None,
            storage_options: Vec::new(),
        };
        let inner = Inner { graph: JobGraph::default(), config, executed: false, alignment_groups: Default::default() };
        Self { inner: Arc::new(Mutex::new(inner)) }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets the default parallelism of operators.
    ///
    /// ```
    /// assert_eq!(dataflow_core::StreamEnvironment::new().with_parallelism(3).parallelism(), 3);
    /// ```
    pub fn with_parallelism(self, parallelism: usize) -> Self {
        self.lock().config.parallelism = parallelism;
        self
    }

    /// Sets the maximum parallelism: the number of key groups.
    ///
    /// ```
    /// assert_eq!(dataflow_core::StreamEnvironment::new().with_max_parallelism(64).max_parallelism(), 64);
    /// ```
    pub fn with_max_parallelism(self, max_parallelism: u32) -> Self {
        self.lock().config.max_parallelism = max_parallelism;
        self
    }

    /// Sets how many records a batch holds at most.
    ///
    /// ```
    /// let env = dataflow_core::StreamEnvironment::new().with_batch_size(256);
    /// ```
    pub fn with_batch_size(self, records: usize) -> Self {
        self.lock().config.batch_size = records.max(1);
        self
    }

    /// Sets how many messages (batches or control elements) a channel holds
    /// before its sender waits.
    ///
    /// ```
    /// let env = dataflow_core::StreamEnvironment::new().with_channel_capacity(2);
    /// ```
    pub fn with_channel_capacity(self, messages: usize) -> Self {
        self.lock().config.channel_capacity = messages.max(1);
        self
    }

    /// Sets how long a record may wait in an output buffer of a busy task
    /// before the buffer is sent. (A task that runs out of input sends its
    /// buffers at once.)
    ///
    /// ```
    /// let env = dataflow_core::StreamEnvironment::new().with_buffer_timeout(std::time::Duration::from_millis(1));
    /// ```
    pub fn with_buffer_timeout(self, timeout: Duration) -> Self {
        self.lock().config.buffer_timeout = timeout;
        self
    }

    /// Sets the clock that processing time comes from.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use dataflow_core::{time::{Clock, ManualClock}, StreamEnvironment};
    /// let env = StreamEnvironment::new().with_clock(Arc::new(ManualClock::new(42)));
    /// assert_eq!(env.clock().now_millis(), 42);
    /// ```
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Self {
        self.lock().config.clock = clock;
        self
    }

    /// Chooses where keyed state lives: in memory (the default) or in an
    /// fjall store per operator subtask on local disk, for state larger
    /// than memory. See `docs/state.md`.
    ///
    /// ```
    /// use dataflow_core::{FjallStateConfig, StateBackendConfig, StreamEnvironment};
    /// let env = StreamEnvironment::new();
    /// assert_eq!(env.state_backend(), StateBackendConfig::InMemory);
    /// env.set_state_backend(StateBackendConfig::Fjall(FjallStateConfig::new(std::env::temp_dir().join("job-state"))));
    /// assert_ne!(env.state_backend(), StateBackendConfig::InMemory);
    /// ```
    pub fn set_state_backend(&self, backend: StateBackendConfig) {
        self.lock().config.state_backend = backend;
    }

    /// Checkpoints jobs of this environment into `dir` as `config` says;
    /// the handle follows the checkpoints triggered and completed. A job
    /// started with a `dir` that holds complete checkpoints resumes from
    /// the latest (if a newer complete one is damaged, the job fails
    /// unless `config.allow_fallback_past_damaged_checkpoints`). `dir` is a
    /// path, or an object-store URL (`s3://bucket/prefix`, `gs://…`,
    /// `az://…`; see [`Self::set_storage_options`]). See
    /// `docs/checkpoints.md`.
    pub fn enable_checkpointing(
        &self,
        config: CheckpointConfig,
        dir: impl Into<std::path::PathBuf>,
    ) -> CheckpointHandle {
        let (triggered, triggered_rx) = tokio::sync::watch::channel(0);
        let (completed, completed_rx) = tokio::sync::watch::channel(0);
        let history = crate::checkpoint::stats::History::default();
        self.lock().config.checkpointing = Some(CheckpointSetup {
            config,
            dir: dir.into(),
            triggered: Arc::new(triggered),
            completed: Arc::new(completed),
            history: history.clone(),
        });
        CheckpointHandle { triggered: triggered_rx, completed: completed_rx, history }
    }

    /// Sets how a job with checkpointing restarts after a failure: from its
    /// latest complete checkpoint, as `strategy` allows. The default is
    /// not to restart (Flink restarts with a fixed delay by default).
    ///
    /// ```
    /// use dataflow_core::checkpoint::restart::RestartStrategy;
    /// let env = dataflow_core::StreamEnvironment::new();
    /// env.set_restart_strategy(RestartStrategy::fixed_delay(3, std::time::Duration::from_secs(1)));
    /// ```
    pub fn set_restart_strategy(&self, strategy: RestartStrategy) {
        self.lock().config.restart = strategy;
    }

    /// Starts the job from the savepoint in `path` (unless the checkpoint
    /// directory holds a newer complete checkpoint: a restarted job resumes
    /// from that). Operators are matched by uid; state of an operator the
    /// job no longer has is an error unless
    /// [`Self::allow_non_restored_state`]; new operators start empty. The
    /// job may have another parallelism and another state backend than the
    /// one the savepoint was taken of. `path` may be a URL (`s3://…`,
    /// `gs://…`, `az://…`; see [`Self::set_storage_options`]): the
    /// savepoint is downloaded first. See `docs/savepoints.md`.
    ///
    /// ```
    /// let env = dataflow_core::StreamEnvironment::new();
    /// env.restore_from("/var/lib/myjob/savepoints/sp-1");
    /// ```
    pub fn restore_from(&self, path: impl Into<std::path::PathBuf>) {
        let allow = self.lock().config.restore_from.as_ref().is_some_and(|r| r.allow_non_restored_state);
        let settings = job::RestoreSettings { path: path.into(), allow_non_restored_state: allow };
        self.lock().config.restore_from = Some(settings);
    }

    /// Options of the object store that checkpoints or a savepoint given
    /// as a URL (`s3://bucket/prefix`, `gs://…`, `az://…`) live in, as
    /// `object_store` names them (`aws_endpoint`, `aws_region`,
    /// `aws_access_key_id`, `aws_secret_access_key`, `aws_allow_http`, …).
    /// They override what the environment sets (`AWS_ENDPOINT`,
    /// `AWS_REGION`, …). Plain paths ignore them. See `docs/checkpoints.md`.
    ///
    /// ```
    /// let env = dataflow_core::StreamEnvironment::new();
    /// env.set_storage_options([("aws_endpoint", "http://localhost:9000"), ("aws_allow_http", "true")]);
    /// ```
    pub fn set_storage_options<K: Into<String>, V: Into<String>>(&self, options: impl IntoIterator<Item = (K, V)>) {
        self.lock().config.storage_options = options.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
    }

    /// Whether a job restored from a savepoint may drop the state of
    /// operators it no longer has (default: no, that is an error naming
    /// them). Call after [`Self::restore_from`].
    ///
    /// ```
    /// let env = dataflow_core::StreamEnvironment::new();
    /// env.restore_from("/var/lib/myjob/savepoints/sp-1");
    /// env.allow_non_restored_state(true);
    /// ```
    pub fn allow_non_restored_state(&self, allow: bool) {
        if let Some(r) = self.lock().config.restore_from.as_mut() {
            r.allow_non_restored_state = allow;
        }
    }

    /// The state backend jobs of this environment use.
    pub fn state_backend(&self) -> StateBackendConfig {
        self.lock().config.state_backend.clone()
    }

    /// Sets what happens to a record whose `#[operator]` function returns
    /// an `Err` (default: fail the job). See [`BadRecordPolicy`].
    pub fn with_bad_record_policy(self, policy: BadRecordPolicy) -> Self {
        self.lock().config.bad_record_policy = policy;
        self
    }

    /// The bad-record policy.
    pub fn bad_record_policy(&self) -> BadRecordPolicy {
        self.lock().config.bad_record_policy
    }

    /// The default parallelism.
    pub fn parallelism(&self) -> usize {
        self.lock().config.parallelism
    }

    /// The maximum parallelism.
    pub fn max_parallelism(&self) -> u32 {
        self.lock().config.max_parallelism
    }

    /// The clock.
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.lock().config.clock.clone()
    }

    /// The job's watermark alignment group `name` (made on first use with
    /// `max_drift`).
    pub(crate) fn alignment_group(&self, name: &str, max_drift: i64) -> Arc<crate::time::AlignmentGroup> {
        let mut inner = self.lock();
        inner
            .alignment_groups
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(crate::time::AlignmentGroup::new(name, max_drift)))
            .clone()
    }

    pub(crate) fn add_node(&self, name: &str, kind: NodeKind<Factories>) -> NodeId {
        self.lock().graph.add_node(name.to_string(), kind)
    }

    pub(crate) fn add_edge(&self, edge: Edge<Factories>) {
        self.lock().graph.edges.push(edge);
    }

    pub(crate) fn update_node(&self, id: NodeId, f: impl FnOnce(&mut crate::graph::Node<Factories>)) {
        if let Some(n) = self.lock().graph.nodes.get_mut(id) {
            f(n);
        }
    }

    fn source<T: Data>(&self, name: &str, make: SourceMaker<T>, non_parallel: bool) -> Stream<T> {
        let id = self.add_node(name, Factories::source(TypedSource { make }));
        self.update_node(id, |n| n.non_parallel = non_parallel);
        Stream::new(self.clone(), id)
    }

    fn single<T: Data>(&self, name: &str, source: Box<dyn Source<T>>) -> Stream<T> {
        let slot = Mutex::new(Some(source));
        let make: SourceMaker<T> = Box::new(move |_| {
            slot.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
                .ok_or_else(|| "a non-parallel source can be instantiated only once".into())
        });
        self.source(name, make, true)
    }

    /// A non-parallel source over the values of an iterator.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let env = dataflow_core::StreamEnvironment::new();
    /// let out = env.from_iter(["a", "b"].map(String::from)).collect();
    /// env.execute().await.unwrap();
    /// assert_eq!(out.take(), ["a", "b"]);
    /// # });
    /// ```
    pub fn from_iter<I>(&self, iter: I) -> Stream<I::Item>
    where
        I: IntoIterator,
        I::IntoIter: Send + 'static,
        I::Item: Data,
    {
        self.single("source", Box::new(IterSource::new(iter.into_iter())))
    }

    /// A non-parallel source over scripted stream elements: records with
    /// timestamps, watermarks, idleness.
    ///
    /// ```
    /// use dataflow_core::{Record, StreamElement, time::Watermark};
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let env = dataflow_core::StreamEnvironment::new();
    /// let out = env.from_elements(vec![
    ///     StreamElement::Record(Record::with_timestamp(1, 100)),
    ///     StreamElement::Watermark(Watermark(100)),
    /// ]).collect();
    /// env.execute().await.unwrap();
    /// assert_eq!(out.take(), [1]);
    /// # });
    /// ```
    pub fn from_elements<T, I>(&self, elements: I) -> Stream<T>
    where
        T: Data,
        I: IntoIterator<Item = StreamElement<T>>,
        I::IntoIter: Send + 'static,
    {
        self.single("source", Box::new(ElementSource::new(elements.into_iter())))
    }

    /// A non-parallel source over an async stream.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let env = dataflow_core::StreamEnvironment::new();
    /// let out = env.from_stream(futures::stream::iter(0..3)).collect();
    /// env.execute().await.unwrap();
    /// assert_eq!(out.take(), [0, 1, 2]);
    /// # });
    /// ```
    pub fn from_stream<S>(&self, stream: S) -> Stream<S::Item>
    where
        S: futures::Stream + Send + Unpin + 'static,
        S::Item: Data,
    {
        self.single("source", Box::new(StreamSource::new(stream)))
    }

    /// A parallel source: every subtask reads the iterator `make` returns
    /// for it.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let env = dataflow_core::StreamEnvironment::new().with_parallelism(2);
    /// let out = env.from_parallel_iter(|info| vec![info.subtask]).collect();
    /// env.execute().await.unwrap();
    /// let mut v = out.take();
    /// v.sort();
    /// assert_eq!(v, [0, 1]);
    /// # });
    /// ```
    pub fn from_parallel_iter<I, F>(&self, make: F) -> Stream<I::Item>
    where
        I: IntoIterator,
        I::IntoIter: Send + 'static,
        I::Item: Data,
        F: Fn(&OperatorInfo) -> I + Send + Sync + 'static,
    {
        let make: SourceMaker<I::Item> = Box::new(move |info| Ok(Box::new(IterSource::new(make(info).into_iter()))));
        self.source("parallel source", make, false)
    }

    /// A replayable parallel source of `splits` splits: split `s` is read
    /// from the iterator `make(s)` by subtask `s % parallelism`. Its
    /// position is each split's offset, so a job restored from a savepoint
    /// at another parallelism hands the splits and their offsets to their
    /// new subtasks (see [`split`](crate::connectors::split)).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let env = dataflow_core::StreamEnvironment::new().with_parallelism(2);
    /// let out = env.from_splits(4, |s| vec![s]).collect();
    /// env.execute().await.unwrap();
    /// let mut v = out.take();
    /// v.sort();
    /// assert_eq!(v, [0, 1, 2, 3]);
    /// # });
    /// ```
    pub fn from_splits<I, F>(&self, splits: usize, make: F) -> Stream<I::Item>
    where
        I: IntoIterator + 'static,
        I::IntoIter: Send + 'static,
        I::Item: Data,
        F: Fn(usize) -> I + Send + Sync + 'static,
    {
        self.from_source(crate::connectors::iter_splits(splits, make), WatermarkStrategy::no_watermarks())
    }

    /// A split-based source (see [`split`](crate::connectors::split)) with
    /// watermarks per split by `strategy`: records get their timestamps from
    /// its assigner, each split has its own watermark generator, and the
    /// source's watermark is the minimum over its active splits (Flink's
    /// `fromSource`). Watermark alignment is not applied here. See the
    /// [`split`](crate::connectors::split) module for an example.
    pub fn from_source<T: Data, S: Split>(
        &self,
        source: SplitSource<T, S>,
        strategy: WatermarkStrategy<T>,
    ) -> Stream<T> {
        let name = source.name.clone();
        let make: SourceMaker<T> =
            Box::new(move |info| Ok(Box::new(SplitSourceReader::new(&source, strategy.clone(), info))));
        self.source(&name, make, false)
    }

    /// A parallel source of your own: `make` builds the instance of each
    /// subtask. See [`Source`] for an example.
    pub fn add_source<T, S, F>(&self, name: &str, make: F) -> Stream<T>
    where
        T: Data,
        S: Source<T>,
        F: Fn(&OperatorInfo) -> S + Send + Sync + 'static,
    {
        let make: SourceMaker<T> = Box::new(move |info| Ok(Box::new(make(info))));
        self.source(name, make, false)
    }

    /// The physical plan the job would run with: chains, tasks, channels.
    ///
    /// ```
    /// let env = dataflow_core::StreamEnvironment::new().with_parallelism(2);
    /// env.from_iter(0..10).map(|x| x + 1).for_each(|_| {});
    /// let plan = env.explain().unwrap();
    /// assert_eq!(plan.tasks(), 3); // source ×1, map -> for_each ×2
    /// ```
    pub fn explain(&self) -> Result<PhysicalPlan, Error> {
        let inner = self.lock();
        let (plan, _) = crate::graph::resolve(&inner.graph, inner.config.parallelism, inner.config.max_parallelism)?;
        Ok(plan)
    }

    /// Runs the job on the current tokio runtime until every source is
    /// exhausted and everything downstream has finished. Returns the
    /// per-operator record counts, or the first failure (which cancels every
    /// task). A job runs once: the graph is taken when
    /// this is called and the returned future owns everything it needs, so
    /// it can be spawned. Dropping the future cancels the job.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let env = dataflow_core::StreamEnvironment::new();
    /// env.from_iter(0..10).for_each(|_| {});
    /// assert!(env.execute().await.is_ok());
    /// assert!(env.execute().await.is_err()); // already ran
    /// # });
    /// ```
    pub fn execute(&self) -> impl std::future::Future<Output = Result<JobResult, Error>> + Send + 'static {
        self.run_job(None)
    }

    /// Starts the job on the current tokio runtime and returns its
    /// [`JobClient`](crate::api::JobClient): take savepoints of it, stop it with
    /// a savepoint, wait for its result. (Like [`Self::execute`], a job
    /// runs once.)
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let env = dataflow_core::StreamEnvironment::new();
    /// env.from_iter(0..10).for_each(|_| {});
    /// let job = env.submit();
    /// assert!(job.wait().await.is_ok());
    /// # });
    /// ```
    pub fn submit(&self) -> crate::api::JobClient {
        let (requests, receiver) = tokio::sync::mpsc::unbounded_channel();
        let (triggered, triggered_rx) = tokio::sync::watch::channel(0);
        // The job alone holds the receiving end: once it ended, requests
        // (and those still queued) fail instead of waiting.
        let savepoints = crate::checkpoint::SavepointRequests {
            requests: Arc::new(tokio::sync::Mutex::new(receiver)),
            triggered: Arc::new(triggered),
            stopped: Arc::default(),
        };
        crate::api::JobClient {
            requests,
            handle: tokio::spawn(self.run_job(Some(savepoints))),
            triggered: triggered_rx,
        }
    }

    fn run_job(
        &self,
        savepoints: Option<crate::checkpoint::SavepointRequests>,
    ) -> impl std::future::Future<Output = Result<JobResult, Error>> + Send + 'static {
        let taken = {
            let mut inner = self.lock();
            if std::mem::replace(&mut inner.executed, true) {
                Err(Error::InvalidGraph("this environment's job was already executed".into()))
            } else {
                let mut config = JobConfig { savepoints, ..inner.config.clone() };
                // Whether checkpoints are incremental follows the backend
                // unless configured: settled here, for every part of the job.
                if let Some(setup) = &mut config.checkpointing {
                    setup.config.incremental = Some(setup.config.is_incremental(&config.state_backend));
                }
                Ok((std::mem::take(&mut inner.graph), config))
            }
        };
        async move {
            let (graph, config) = taken?;
            if graph.nodes.is_empty() {
                return Err(Error::InvalidGraph("the job has no operators".into()));
            }
            job::run(graph, config).await
        }
    }
}
