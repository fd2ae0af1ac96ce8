//! Building a job's tasks from the graph and running them to the end.
//!
//! The builder creates one input gate per (node, input, subtask), then
//! instantiates operators from the sinks back to the sources so that every
//! operator can be handed its downstream: the next operator of its chain or
//! a channel writer. Each chain head becomes a tokio task. The job ends when
//! every task has ended; the first failure cancels every other task.

use crate::checkpoint::object_storage::{load_savepoint, open_storage};
use crate::checkpoint::restart::{RestartDecision, wait_to_restart};
use crate::checkpoint::savepoint::{Savepoint, SavepointOperator};
use crate::checkpoint::storage::{CheckpointStorage, CompleteCheckpoint, Restore, RestorePoint, StateFile};
use crate::checkpoint::{CHANNELS, CheckpointSetup, Hub, HubSetup, OPERATOR_STATE};
use crate::connectors::local_folder::LocalFolder;
use crate::error::Error;
use crate::graph::{NodeKind, Partitioning, PhysicalPlan, SideEdge, resolve};
use crate::operator::OperatorInfo;
use crate::runtime::job::factory::{AnyBox, Port, TaskFuture, WriterSpec};
use crate::runtime::job::factory::{Factories, JobGraph};
use crate::runtime::metrics::{JobResult, OperatorCounters, OperatorStats};
use crate::runtime::task::build_ctx::BuildCtx;
use crate::runtime::task::input_task::{TaskCheckpoint, TaskCtx, Wakeups};
use dataflow_state::table::StateBackendConfig;
use futures::stream::{FuturesUnordered, StreamExt};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tracing::Instrument;

/// The runtime settings a job is built with.
#[derive(Clone, Debug)]
pub(crate) struct JobConfig {
    pub(crate) parallelism: usize,
    pub(crate) max_parallelism: u32,
    pub(crate) batch_size: usize,
    pub(crate) channel_capacity: usize,
    pub(crate) buffer_timeout: Duration,
    pub(crate) bad_record_policy: crate::operator::BadRecordPolicy,
    pub(crate) clock: std::sync::Arc<dyn crate::time::Clock>,
    pub(crate) state_backend: dataflow_state::table::StateBackendConfig,
    pub(crate) checkpointing: Option<crate::checkpoint::CheckpointSetup>,
    pub(crate) restart: crate::checkpoint::restart::RestartStrategy,
    /// Where savepoint requests come from (a job started with `submit`).
    pub(crate) savepoints: Option<crate::checkpoint::SavepointRequests>,
    /// The savepoint the job starts from (when no checkpoint is newer).
    pub(crate) restore_from: Option<RestoreSettings>,
    /// Options of the object store of checkpoints or a savepoint given as a URL.
    pub(crate) storage_options: Vec<(String, String)>,
}

/// `env.restore_from(..)`: the savepoint a job starts from.
#[derive(Clone, Debug)]
pub(crate) struct RestoreSettings {
    pub(crate) path: std::path::PathBuf,
    pub(crate) allow_non_restored_state: bool,
}

/// The state id of node `u`: its uid, or one generated from its index and
/// name (which changes when the graph does).
fn state_ids(graph: &JobGraph) -> Result<Vec<String>, Error> {
    let ids: Vec<String> = (graph.nodes.iter().enumerate())
        .map(|(u, n)| n.uid.clone().unwrap_or_else(|| format!("{u}:{}", n.name)))
        .collect();
    for (u, id) in ids.iter().enumerate() {
        if ids[..u].contains(id) {
            return Err(Error::InvalidGraph(format!("two operators have the uid '{id}' (uids must be unique)")));
        }
    }
    Ok(ids)
}

/// What a run restores from, as found in its storage.
struct Restored {
    storage: Option<Arc<dyn CheckpointStorage>>,
    point: RestorePoint,
    /// The savepoint the job was told to start from, if it could be read.
    savepoint: Option<Savepoint>,
    /// The highest checkpoint id in the storage (0: none).
    highest_id: u64,
    /// A savepoint downloaded from an object store: its local copy.
    download: Option<LocalFolder>,
}

/// Finds what a run restores from (blocking I/O: on a blocking thread):
/// the latest complete checkpoint or the savepoint the job was told to
/// start from, by `Found::restore_point` (not past damaged checkpoints
/// unless allowed; a checkpoint taken since the savepoint wins).
fn find_restore_point(
    setup: Option<&CheckpointSetup>,
    restore_from: Option<&RestoreSettings>,
    options: &[(String, String)],
) -> Result<Restored, Error> {
    let storage = setup.map(|setup| open_storage(&setup.dir, options)).transpose()?;
    let found = storage.as_ref().map(|s| s.find()).transpose()?.unwrap_or_default();
    let highest_id = found.highest_id;
    let allow_fallback = setup.is_some_and(|s| s.config.allow_fallback_past_damaged_checkpoints);
    let (savepoint, download, unreadable) = match restore_from.map(|r| load_savepoint(&r.path, options)) {
        None => (None, None, None),
        Some(Ok((savepoint, download))) => (Some(savepoint), download, None),
        Some(Err(e)) => (None, None, Some(e)),
    };
    let point = found.restore_point(allow_fallback, savepoint.as_ref().map(|sp| sp.metadata.id))?;
    match (unreadable, &point.restore) {
        (Some(e), Restore::Fresh | Restore::Savepoint) => return Err(e),
        // A restarted job no longer needs its savepoint (it may be gone).
        (Some(e), Restore::Checkpoint(cp)) => {
            tracing::warn!(error = %e, checkpoint = cp.metadata.id, "the savepoint cannot be read: resuming from the latest checkpoint");
        }
        (None, _) => {}
    }
    Ok(Restored { storage, point, savepoint, highest_id, download })
}

/// What `restored` gives the operators: the checkpoint (or the savepoint
/// as one) and the savepoint (checked against the job).
fn restored_state(
    graph: &JobGraph,
    cfg: &JobConfig,
    ids: &[String],
    restore: Restore,
    savepoint: Option<Savepoint>,
) -> Result<(Option<CompleteCheckpoint>, Option<Savepoint>), Error> {
    match (restore, &cfg.restore_from, savepoint) {
        (Restore::Checkpoint(cp), _, _) => {
            tracing::info!(checkpoint = cp.metadata.id, skipped = ?cp.skipped, "restoring from a checkpoint");
            Ok((Some(cp), None))
        }
        (Restore::Savepoint, Some(r), Some(sp)) => {
            sp.check_operators(ids, cfg.max_parallelism, r.allow_non_restored_state)?;
            let fresh: Vec<&str> = (0..graph.nodes.len())
                .filter(|&u| sp.parallelism_of(&ids[u]).is_none())
                .map(|u| ids[u].as_str())
                .collect();
            if !fresh.is_empty() {
                tracing::info!(operators = ?fresh, "operators the savepoint does not know start empty");
            }
            tracing::info!(savepoint = %r.path.display(), "restoring from a savepoint");
            Ok((Some(sp.as_checkpoint()), Some(sp)))
        }
        _ => Ok((None, None)),
    }
}

fn in_port(kind: &NodeKind<Factories>, input: usize) -> Option<&dyn Port> {
    match kind {
        NodeKind::Source(_) => None,
        NodeKind::OneInput(f) => (input == 0).then(|| f.in_port()),
        NodeKind::TwoInput(f) => f.in_ports().get(input).copied(),
    }
}

fn out_port(kind: &NodeKind<Factories>) -> &dyn Port {
    match kind {
        NodeKind::Source(f) => f.port(),
        NodeKind::OneInput(f) => f.out_port(),
        NodeKind::TwoInput(f) => f.out_port(),
    }
}

fn missing(what: &str) -> Error {
    Error::Internal(format!("missing {what} while building the job"))
}

struct Built {
    plan: PhysicalPlan,
    tasks: Vec<(Arc<str>, TaskFuture)>,
    counters: Vec<Vec<Arc<OperatorCounters>>>,
    hub: Option<Arc<Hub>>,
}

fn build(graph: &JobGraph, cfg: &JobConfig, restored: Restored) -> Result<Built, Error> {
    let (plan, res) = resolve(graph, cfg.parallelism, cfg.max_parallelism)?;
    let p = &res.parallelism;
    let instances: usize = p.iter().sum();
    // Acknowledgement slots: one per operator instance, then one per task
    // with inputs (its channel state), numbered by its head.
    let has_inputs = |u: usize| res.is_head[u] && !matches!(graph.nodes[u].kind, NodeKind::Source(_));
    let channel_slot: Vec<usize> = (0..graph.nodes.len())
        .scan(instances, |next, u| {
            let first = *next;
            *next += if has_inputs(u) { p[u] } else { 0 };
            Some(first)
        })
        .collect();
    let slots = instances + (0..graph.nodes.len()).filter(|&u| has_inputs(u)).map(|u| p[u]).sum::<usize>();
    let sources: usize =
        (0..graph.nodes.len()).filter(|&u| matches!(graph.nodes[u].kind, NodeKind::Source(_))).map(|u| p[u]).sum();
    let ids = state_ids(graph)?;
    // A job resumes from its latest complete checkpoint, or starts from a savepoint.
    let Restored { storage, point: RestorePoint { restore, past_damaged }, savepoint, highest_id, download: _ } =
        restored;
    let (latest, savepoint) = restored_state(graph, cfg, &ids, restore, savepoint)?;
    let hub = (cfg.checkpointing.is_some() || cfg.savepoints.is_some()).then(|| {
        let operators = (graph.nodes.iter().enumerate())
            .map(|(u, node)| SavepointOperator {
                uid: ids[u].clone(),
                name: node.name.clone(),
                generated_uid: node.uid.is_none(),
                parallelism: p[u] as u32,
            })
            .collect();
        let parts = HubSetup {
            setup: cfg.checkpointing.clone().unwrap_or_else(CheckpointSetup::savepoints_only),
            storage,
            slots,
            sources,
            restored_id: latest.as_ref().map_or(0, |cp| cp.metadata.id),
            highest_id,
            savepoints: cfg.savepoints.clone(),
            max_parallelism: cfg.max_parallelism,
            operators,
            storage_options: cfg.storage_options.clone(),
        };
        Hub::new(parts, cfg.clock.clone())
    });
    // Checkpoints written before files were listed by uid named every
    // operator by index and name; a checkpoint (never a savepoint) still
    // finds them.
    let legacy = |u: usize, suffix: &str| format!("{u}:{}{suffix}", graph.nodes[u].name);
    let files_of = |u: usize, suffix: &str, subtask: Option<&dyn Fn(u32) -> bool>| -> Vec<std::path::PathBuf> {
        let Some(cp) = &latest else { return Vec::new() };
        let (operator, old) = (format!("{}{suffix}", ids[u]), legacy(u, suffix));
        let named = |f: &str| f == operator || (savepoint.is_none() && f == old);
        let mut files: Vec<&StateFile> = (cp.metadata.files.iter())
            .filter(|f| named(&f.operator) && subtask.is_none_or(|keep| keep(f.subtask)))
            .collect();
        files.sort_by_key(|f| f.subtask);
        files.into_iter().map(|f| cp.dir.join(&f.name)).collect()
    };
    // A savepoint restored at another parallelism (a checkpoint never is).
    let rescaled =
        |u: usize| savepoint.as_ref().and_then(|sp| sp.parallelism_of(&ids[u])).is_some_and(|q| q as usize != p[u]);
    let n = graph.nodes.len();
    // senders[edge][upstream subtask][downstream subtask]
    let mut senders: Vec<Vec<Vec<Option<AnyBox>>>> =
        graph.edges.iter().map(|e| (0..p[e.from]).map(|_| (0..p[e.to]).map(|_| None).collect()).collect()).collect();
    let mut gates: HashMap<(usize, usize, usize), AnyBox> = HashMap::new();
    for (v, node) in graph.nodes.iter().enumerate() {
        for input in 0..2 {
            // (A side-output edge carries the tag's type, which is the
            // downstream input's type: the typed API guarantees it.)
            let incoming: Vec<usize> = (0..graph.edges.len())
                .filter(|&e| graph.edges[e].to == v && graph.edges[e].input == input && !res.chained[e])
                .collect();
            if incoming.is_empty() {
                continue;
            }
            let port = in_port(&node.kind, input).ok_or_else(|| missing("an input port"))?;
            // `j` indexes the downstream subtask in several tables at once.
            #[allow(clippy::needless_range_loop)]
            for j in 0..p[v] {
                let forward = |e: usize| res.partitioning[e] == Partitioning::Forward;
                let channels = incoming.iter().map(|&e| if forward(e) { 1 } else { p[graph.edges[e].from] }).sum();
                let (s, g) = port.gate(channels, cfg.channel_capacity);
                let mut s = s.into_iter();
                for &e in &incoming {
                    let ups: Vec<usize> = if forward(e) { vec![j] } else { (0..p[graph.edges[e].from]).collect() };
                    for i in ups {
                        senders[e][i][j] = Some(s.next().ok_or_else(|| missing("a sender"))?);
                    }
                }
                gates.insert((v, input, j), g);
            }
        }
    }
    let counters: Vec<Vec<Arc<OperatorCounters>>> =
        (0..n).map(|v| (0..p[v]).map(|_| Arc::default()).collect()).collect();
    let chain_name: HashMap<usize, String> =
        plan.chains.iter().flat_map(|c| c.nodes.iter().map(move |&id| (id, c.operators.join(" -> ")))).collect();
    let mut pushes: HashMap<(usize, usize), AnyBox> = HashMap::new();
    let mut tasks = Vec::new();
    for u in (0..n).rev() {
        let node = &graph.nodes[u];
        for i in 0..p[u] {
            let chain = chain_name.get(&u).ok_or_else(|| missing("a chain"))?;
            let task: Arc<str> = format!("{chain} ({}/{})", i + 1, p[u]).into();
            let mut targets = Vec::new();
            let mut sides: Vec<(SideEdge<Factories>, Vec<AnyBox>)> = Vec::new();
            for (e, edge) in graph.edges.iter().enumerate().filter(|(_, e)| e.from == u) {
                let target = if res.chained[e] {
                    pushes.remove(&(edge.to, i)).ok_or_else(|| missing("a chained operator"))?
                } else {
                    let chans = senders[e][i].iter_mut().filter_map(Option::take).collect();
                    let spec = WriterSpec {
                        partitioning: res.partitioning[e],
                        key: edge.key.clone(),
                        max_parallelism: cfg.max_parallelism,
                        batch_size: cfg.batch_size,
                        timeout: cfg.buffer_timeout,
                        task: task.clone(),
                    };
                    match &edge.side {
                        Some(side) => side.port.writer(spec, chans)?,
                        None => out_port(&node.kind).writer(spec, chans)?,
                    }
                };
                match &edge.side {
                    None => targets.push(target),
                    Some(side) => match sides.iter_mut().find(|(s, _)| s.key == side.key) {
                        Some((_, ts)) => ts.push(target),
                        None => sides.push((side.clone(), vec![target])),
                    },
                }
            }
            let sides =
                sides.into_iter().map(|(s, ts)| s.port.side_target(s.key, ts)).collect::<Result<Vec<_>, _>>()?;
            let outputs = out_port(&node.kind).outputs(targets)?;
            let info = OperatorInfo {
                name: node.name.clone(),
                subtask: i,
                parallelism: p[u],
                max_parallelism: cfg.max_parallelism,
                bad_record_policy: cfg.bad_record_policy,
                clock: cfg.clock.clone(),
                state_backend: cfg.state_backend.clone(),
                operator_index: u,
                incremental_checkpoints: cfg.checkpointing.as_ref().is_some_and(|c| c.config.incremental == Some(true)),
                storage_options: cfg.storage_options.clone().into(),
            };
            // Every operator instance has an acknowledgement slot.
            let acks = hub.as_ref().map(|h| h.acks(p[..u].iter().sum::<usize>() + i, &ids[u]));
            let rescaled = rescaled(u);
            // Its own parts (a source's position, a sink's committables):
            // rescaled, those of the old subtasks that map to it.
            let own = files_of(u, "", Some(&|s| if rescaled { s as usize % p[u] == i } else { s as usize == i }));
            let task_ctx = TaskCtx {
                name: task.clone(),
                wakeups: Wakeups::new(cfg.clock.clone()),
                checkpoint: hub.as_ref().filter(|_| has_inputs(u)).map(|h| TaskCheckpoint {
                    acks: h.acks(channel_slot[u] + i, &ids[u]),
                    // The task's own channel state, to replay before new input.
                    restore: files_of(u, CHANNELS, Some(&|s| s as usize == i)).pop(),
                    info: Arc::new(info.clone()),
                }),
            };
            let ctx = BuildCtx {
                info: Arc::new(info),
                counters: counters[u][i].clone(),
                batch_size: cfg.batch_size,
                sides,
                acks,
                restore: files_of(u, "", None),
                own,
                past_damaged,
                rescaled,
                operator_state: files_of(u, OPERATOR_STATE, None),
            };
            let mut gate = |input| gates.remove(&(u, input, i)).ok_or_else(|| missing("an input gate"));
            match &node.kind {
                NodeKind::Source(f) => tasks.push((task, f.task(ctx, outputs)?)),
                NodeKind::OneInput(f) => {
                    let push = f.instantiate(ctx, outputs)?;
                    if res.is_head[u] {
                        tasks.push((task, f.task(push, gate(0)?, task_ctx)?));
                    } else {
                        pushes.insert((u, i), push);
                    }
                }
                NodeKind::TwoInput(f) => {
                    let gates = [gate(0)?, gate(1)?];
                    tasks.push((task, f.task(ctx, outputs, gates, task_ctx)?));
                }
            }
        }
    }
    Ok(Built { plan, tasks, counters, hub })
}

/// Aborts every task when dropped, so a dropped or failed job leaves
/// nothing running.
struct AbortAll(Vec<tokio::task::AbortHandle>);

impl Drop for AbortAll {
    fn drop(&mut self) {
        self.0.iter().for_each(tokio::task::AbortHandle::abort);
    }
}

/// A directory of its own for a job's on-disk state stores (under the
/// fjall backend's directory), removed when the job ends: the stores are
/// working copies; snapshots are what lasts.
struct JobStateDir(Option<std::path::PathBuf>);

impl JobStateDir {
    fn new(backend: &mut StateBackendConfig) -> Self {
        static JOBS: AtomicU64 = AtomicU64::new(0);
        match backend {
            StateBackendConfig::InMemory => Self(None),
            StateBackendConfig::Fjall(c) => {
                let n = JOBS.fetch_add(1, Ordering::Relaxed);
                c.dir = c.dir.join(format!("job-{}-{n}", std::process::id()));
                Self(Some(c.dir.clone()))
            }
        }
    }
}

impl Drop for JobStateDir {
    fn drop(&mut self) {
        if let Some(dir) = &self.0 {
            // Best effort: the stores are closed by now (their tasks ended).
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Runs the job to the end; after a failure, restarts it from its latest
/// complete checkpoint as long as the restart strategy allows (only with
/// checkpointing: without one there is nothing to restart from).
pub(crate) async fn run(graph: JobGraph, cfg: JobConfig) -> Result<JobResult, Error> {
    let mut tracker = cfg.restart.tracker();
    loop {
        let err = match run_once(&graph, cfg.clone()).await {
            Ok(result) => return Ok(result),
            Err(
                e @ (Error::InvalidGraph(_)
                | Error::Savepoint { .. }
                | Error::CheckpointDamaged { .. }
                | Error::StorageUrl { .. }),
            ) => {
                return Err(e);
            }
            Err(e) if cfg.checkpointing.is_none() => return Err(e),
            // Stopped with a savepoint: a failure after it (a last commit)
            // must not run the job on from an older checkpoint.
            Err(e) if cfg.savepoints.as_ref().is_some_and(|s| s.stopped.load(Ordering::SeqCst)) => return Err(e),
            Err(e) => e,
        };
        match tracker.on_failure(cfg.clock.now_millis()) {
            RestartDecision::RestartAt(at) => {
                tracing::warn!(error = %err, restart_at = at, attempts = tracker.attempts(), "job failed: restarting from the latest checkpoint");
                wait_to_restart(cfg.clock.as_ref(), at).await;
            }
            RestartDecision::GiveUp { attempts } => {
                tracing::error!(error = %err, attempts, "job failed: no restart left");
                return Err(err);
            }
        }
    }
}

/// Builds the job and runs it to the end, once.
async fn run_once(graph: &JobGraph, mut cfg: JobConfig) -> Result<JobResult, Error> {
    let _state_dir = JobStateDir::new(&mut cfg.state_backend);
    // Storage I/O (listing, downloads) off the async workers.
    let (setup, restore_from, options) =
        (cfg.checkpointing.clone(), cfg.restore_from.clone(), cfg.storage_options.clone());
    let mut restored =
        tokio::task::spawn_blocking(move || find_restore_point(setup.as_ref(), restore_from.as_ref(), &options))
            .await
            .map_err(|e| Error::Internal(format!("finding the restore point: {e}")))??;
    // A downloaded savepoint lasts as long as the run.
    let _download = restored.download.take();
    let Built { plan, tasks, counters, hub } = build(graph, &cfg, restored)?;
    let _coordinator = AbortAll(hub.iter().map(|h| tokio::spawn(h.clone().run()).abort_handle()).collect());
    tracing::info!(tasks = plan.tasks(), channels = plan.channels(), "job started");
    let mut running = FuturesUnordered::new();
    let mut aborts = AbortAll(Vec::new());
    for (name, fut) in tasks {
        let span = tracing::info_span!("task", name = %name);
        let handle = tokio::spawn(
            async move {
                tracing::debug!("task started");
                let r = fut.await;
                match &r {
                    Ok(()) => tracing::debug!("task finished"),
                    Err(e) => tracing::debug!(error = %e, "task failed"),
                }
                r
            }
            .instrument(span),
        );
        aborts.0.push(handle.abort_handle());
        running.push(async move { (name, handle.await) });
    }
    let mut first_secondary = None;
    let mut failure = None;
    while let Some((name, joined)) = running.next().await {
        let err = match joined {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => e,
            Err(j) if j.is_panic() => Error::Internal(format!(
                "task '{name}' panicked: {}",
                crate::runtime::task::driver::panic_message(j.into_panic())
            )),
            Err(_) => Error::Cancelled { task: name.to_string() },
        };
        if failure.is_none() && first_secondary.is_none() {
            // The first failure: cancel everything, then keep collecting to
            // find the cause among the tasks that already ended.
            aborts.0.iter().for_each(tokio::task::AbortHandle::abort);
        }
        if err.is_secondary() {
            first_secondary.get_or_insert(err);
        } else {
            failure.get_or_insert(err);
        }
    }
    if let Some(hub) = &hub {
        // The snapshots still being written complete (or decline) their
        // checkpoints before the job reports its end.
        hub.settle().await;
    }
    if let Some(e) = failure.or(first_secondary) {
        tracing::error!(error = %e, "job failed");
        return Err(e);
    }
    if let Some(hub) = &hub {
        hub.commit_at_end().await?;
    }
    tracing::info!("job finished");
    let operators = graph
        .nodes
        .iter()
        .zip(&counters)
        .map(|(node, cs)| {
            let [records_in, records_out, records_skipped] =
                cs.iter().map(|c| c.get()).fold([0; 3], |acc, c| [acc[0] + c[0], acc[1] + c[1], acc[2] + c[2]]);
            OperatorStats {
                name: node.name.clone(),
                uid: node.uid.clone(),
                parallelism: cs.len(),
                records_in,
                records_out,
                records_skipped,
            }
        })
        .collect();
    Ok(JobResult { operators })
}
