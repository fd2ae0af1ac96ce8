//! What checkpoints cost, side by side in one run:
//!
//! * `checkpoint_throughput`: the keyed tumbling event-time window count of
//!   `window.rs` (events over 10_000 keys, 1-minute windows, 2 s of
//!   disorder) at parallelism 2 over [`N`] events, per state backend
//!   (`memory`, the default, and `fjall`), without checkpoints (`none`) and
//!   with a checkpoint every 100 ms or every 1 s, unaligned or aligned
//!   (e.g. `fjall/aligned_100ms`). The checkpoints are triggered on the
//!   system clock while the job runs (a run takes over a second, so the
//!   1 s interval does trigger); a checkpointed job also ends with its
//!   final checkpoint (taken once every source finished). Unlike
//!   `window.rs`, the two sources' watermarks are aligned (one may run at
//!   most a window ahead): without that, whichever source the scheduler
//!   favours runs ahead, the window operators keep every window between
//!   the two sources open, and a run's time follows that skew (1.3 s with
//!   3 windows apart, 4.5 s with 28, in any checkpointing mode and without
//!   checkpoints) rather than the checkpoints. Before timing, the bench
//!   prints each contender's checkpoints of one run (when each was
//!   triggered, how long it took to complete); after each contender, how
//!   many its timed runs triggered and completed on average.
//! * `checkpoint_backpressure`: the time from the trigger of a job's first
//!   checkpoint to its completion while the job is fully backpressured:
//!   source (p = 2) → key_by → rolling sum (p = 2) → a sink (p = 1) that
//!   takes [`SLOW_SINK_NS`] per record, so every channel is full. Unaligned
//!   barriers overtake the queued records (which become channel state);
//!   aligned ones wait behind them, so the checkpoint completes only once
//!   the backlog ahead of the barrier went through the slow sink. The
//!   source is bounded ([`BP_N`] records), so an aligned checkpoint does
//!   complete. Measured with `iter_custom`: only trigger → completion is
//!   timed (each run takes about [`BP_N`] × [`SLOW_SINK_NS`] of wall time);
//!   the bench prints how many records went through the sink meanwhile.
//!
//! Every contender's result is checked against the run without checkpoints
//! before it is timed. Run with `cargo bench --bench checkpoint` (about 5
//! minutes; `-- --quick` for a rough look); print the ratios afterwards
//! with `python3 benches/checkpoint_ratios.py`.

#[allow(dead_code)] // only some of it is used here
mod events;
#[allow(dead_code)] // only some of it is used here
mod window_events;

use criterion::{BatchSize, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use dataflow_core::checkpoint::coordinator::CheckpointConfig;
use dataflow_core::checkpoint::{CheckpointHandle, CheckpointingMode};
use dataflow_core::connectors::Sink;
use dataflow_core::time::WatermarkStrategy;
use dataflow_core::window::TumblingEventTimeWindows;
use dataflow_core::{Batch, BoxError, FjallStateConfig, StateBackendConfig, StreamEnvironment};
use events::{Event, environment, gen_event, share};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tempfile::TempDir;
use window_events::{DISORDER_MS, TimedEvent, TotalsSink, WINDOW_MS, WindowTotals, gen_timed, stride};

/// Events of one `checkpoint_throughput` run.
const N: u64 = 30_000_000;
/// How far (event time, ms) one source of the window job may run ahead of
/// the other: one window (see the module docs).
const MAX_DRIFT_MS: u64 = WINDOW_MS;
/// Parallelism of the window job (with 1 the whole job is one chained task,
/// without channels, and the modes would not differ).
const P: usize = 2;

/// Records of one `checkpoint_backpressure` run.
const BP_N: u64 = 300_000;
/// What the slow sink spends per record, ns (it is rate-limited with tokio
/// timers, so it does not block a worker thread).
const SLOW_SINK_NS: u64 = 2_000;
/// The checkpoint interval of the backpressure job: its first checkpoint is
/// triggered this long after the start, well after the channels filled.
const BP_INTERVAL: Duration = Duration::from_millis(200);

/// A tokio runtime like `events::runtime()` (2 workers) with timers: the
/// checkpoint coordinator waits on the system clock.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_time().build().expect("tokio runtime")
}

/// The state backends compared.
#[derive(Clone, Copy, Debug)]
enum Backend {
    Memory,
    Fjall,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Memory => "memory",
            Backend::Fjall => "fjall",
        }
    }
}

/// Checkpoints of a run: none, or a mode and an interval.
#[derive(Clone, Copy, Debug)]
struct Checkpoints(Option<(CheckpointingMode, Duration)>);

impl Checkpoints {
    fn name(self) -> String {
        match self.0 {
            None => "none".into(),
            Some((mode, every)) => {
                let mode = match mode {
                    CheckpointingMode::Unaligned => "unaligned",
                    CheckpointingMode::Aligned => "aligned",
                    m => unreachable!("not compared here: {m:?}"),
                };
                match every.as_millis() {
                    ms if ms % 1000 == 0 => format!("{mode}_{}s", ms / 1000),
                    ms => format!("{mode}_{ms}ms"),
                }
            }
        }
    }
}

/// The temporary directories of one run (state and checkpoints), removed
/// when dropped (outside the timed part).
struct Dirs {
    state: TempDir,
    checkpoints: TempDir,
}

fn dirs() -> Dirs {
    Dirs {
        state: tempfile::tempdir().expect("a temporary directory"),
        checkpoints: tempfile::tempdir().expect("a temporary directory"),
    }
}

/// What a run computed, and its checkpoints: the latest triggered and the
/// latest completed id (ids count from 1, so with none aborted, how many).
#[derive(Debug)]
struct Run<R> {
    result: R,
    triggered: u64,
    completed: u64,
}

/// Puts `env` on `backend` (under `dirs.state`) and, with `checkpoints`,
/// checkpoints it into `dirs.checkpoints` as `config` makes from the mode
/// and interval; returns the checkpoint handle.
fn configure(
    env: &StreamEnvironment,
    backend: Backend,
    checkpoints: Checkpoints,
    dirs: &Dirs,
    config: impl FnOnce(CheckpointingMode, Duration) -> CheckpointConfig,
) -> Option<CheckpointHandle> {
    if let Backend::Fjall = backend {
        env.set_state_backend(StateBackendConfig::Fjall(FjallStateConfig::new(dirs.state.path())));
    }
    checkpoints.0.map(|(mode, every)| env.enable_checkpointing(config(mode, every), dirs.checkpoints.path()))
}

fn ids(handle: &Option<CheckpointHandle>) -> (u64, u64) {
    handle.as_ref().map_or((0, 0), |h| (*h.triggered().borrow(), *h.completed().borrow()))
}

/// The window job of `window.rs` at parallelism [`P`] over `n` events,
/// its sources' watermarks aligned (see the module docs); with `report`,
/// prints when its checkpoints were triggered and how long each took.
fn window_job(
    rt: &tokio::runtime::Runtime,
    n: u64,
    backend: Backend,
    checkpoints: Checkpoints,
    dirs: &Dirs,
    report: bool,
) -> Run<WindowTotals> {
    let env = environment(P);
    let handle = configure(&env, backend, checkpoints, dirs, |mode, every| CheckpointConfig {
        mode,
        ..CheckpointConfig::every(every)
    });
    let total = Arc::new(Mutex::new(WindowTotals::default()));
    let sink_total = total.clone();
    env.from_parallel_iter(move |info| stride(info.subtask, info.parallelism, n).map(gen_timed))
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_millis(DISORDER_MS))
                .with_timestamp_assigner(|e: &TimedEvent, _| e.ts as i64)
                .with_watermark_alignment("window-sources", Duration::from_millis(MAX_DRIFT_MS)),
        )
        .key_by(|e: &TimedEvent| e.key)
        .window(TumblingEventTimeWindows::of(Duration::from_millis(WINDOW_MS)))
        .count()
        .sink("totals", move |_| TotalsSink { acc: WindowTotals::default(), total: sink_total.clone() });
    let timeline = handle.as_ref().filter(|_| report).map(|h| Timeline::follow(rt, h));
    let start = Instant::now();
    rt.block_on(env.execute()).expect("job");
    let took = start.elapsed();
    if let Some(t) = timeline {
        t.report(&format!("{}/{}", backend.name(), checkpoints.name()), start, took);
    }
    let (triggered, completed) = ids(&handle);
    let result = *total.lock().expect("totals");
    Run { result, triggered, completed }
}

/// When a run's checkpoints were triggered and completed, as its
/// [`CheckpointHandle`] tells (followed by a task on the runtime).
struct Timeline {
    task: tokio::task::JoinHandle<()>,
    /// (when, triggered (else completed), id)
    events: Arc<Mutex<Vec<(Instant, bool, u64)>>>,
}

impl Timeline {
    fn follow(rt: &tokio::runtime::Runtime, h: &CheckpointHandle) -> Self {
        let events = Arc::new(Mutex::new(Vec::new()));
        let (mut triggered, mut completed, log) = (h.triggered(), h.completed(), events.clone());
        let task = rt.spawn(async move {
            loop {
                let (is_trigger, id) = tokio::select! {
                    r = triggered.changed() => match r {
                        Ok(()) => (true, *triggered.borrow_and_update()),
                        Err(_) => return,
                    },
                    r = completed.changed() => match r {
                        Ok(()) => (false, *completed.borrow_and_update()),
                        Err(_) => return,
                    },
                };
                log.lock().expect("timeline").push((Instant::now(), is_trigger, id));
            }
        });
        Self { task, events }
    }

    /// Prints the run's time and each checkpoint's trigger → completion.
    fn report(self, name: &str, start: Instant, took: Duration) {
        self.task.abort();
        let events = self.events.lock().expect("timeline");
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let spans: Vec<String> = events
            .iter()
            .filter(|(_, is_trigger, _)| *is_trigger)
            .map(|&(at, _, id)| {
                let done = events.iter().find(|&&(_, is_trigger, c)| !is_trigger && c >= id);
                match done {
                    Some(&(done, _, c)) if c == id => {
                        format!("#{id} at {:.0} ms took {:.1} ms", ms(at - start), ms(done - at))
                    }
                    Some(_) => format!("#{id} at {:.0} ms: subsumed", ms(at - start)),
                    None => format!("#{id} at {:.0} ms: not completed", ms(at - start)),
                }
            })
            .collect();
        eprintln!("  {name}: run {:.0} ms; checkpoints: {}", ms(took), spans.join(", "));
    }
}

/// What the backpressure job emitted, independent of the order in which the
/// source subtasks' records meet: the number of records and the sum over
/// keys of each key's final total (its largest rolling sum).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Finals {
    records: u64,
    checksum: u64,
}

/// The slow sink: rate-limited to one record per [`SLOW_SINK_NS`] (it waits
/// on a tokio timer until its schedule allows the batch, catching up after
/// timer rounding); keeps each key's largest rolling sum.
struct SlowSink {
    due: Instant,
    totals: Vec<u64>,
    records: u64,
    /// Records taken so far, for the bench to read while the job runs.
    seen: Arc<AtomicU64>,
    out: Arc<Mutex<Vec<Finals>>>,
}

#[async_trait::async_trait]
impl Sink<(u32, u64)> for SlowSink {
    async fn write_batch(&mut self, batch: &mut Batch<(u32, u64)>) -> Result<(), BoxError> {
        let len = batch.values().len() as u64;
        self.due = self.due.max(Instant::now()) + Duration::from_nanos(SLOW_SINK_NS * len);
        tokio::time::sleep_until(tokio::time::Instant::from_std(self.due)).await;
        for &(k, s) in batch.values() {
            let t = &mut self.totals[k as usize];
            *t = (*t).max(s);
        }
        self.records += len;
        self.seen.fetch_add(len, Ordering::Relaxed);
        batch.clear();
        Ok(())
    }

    async fn finish(&mut self) -> Result<(), BoxError> {
        let checksum = self.totals.iter().fold(0u64, |a, t| a.wrapping_add(*t));
        self.out.lock().map_err(|_| "poisoned finals")?.push(Finals { records: self.records, checksum });
        Ok(())
    }
}

/// How long the first checkpoint of a backpressure run took from its trigger
/// to its completion, and how many records the sink took meanwhile.
#[derive(Debug, Default, Clone, Copy)]
struct FirstCheckpoint {
    took: Duration,
    records_meanwhile: u64,
    /// The sink had taken records before the trigger (the pipeline ran).
    records_before: u64,
    id: u64,
    completed_id: u64,
}

/// The backpressure job (see the module docs): `n` records; with
/// checkpoints, measures its first one.
fn backpressure_job(
    rt: &tokio::runtime::Runtime,
    n: u64,
    checkpoints: Checkpoints,
    dirs: &Dirs,
) -> Run<(Finals, FirstCheckpoint)> {
    let env = StreamEnvironment::new().with_parallelism(2);
    let handle = configure(&env, Backend::Memory, checkpoints, dirs, |mode, _| CheckpointConfig {
        mode,
        ..CheckpointConfig::every(BP_INTERVAL)
    });
    let seen = Arc::new(AtomicU64::new(0));
    let out = Arc::new(Mutex::new(Vec::new()));
    let (sink_seen, sink_out) = (seen.clone(), out.clone());
    env.from_parallel_iter(move |info| share(info.subtask, info.parallelism, n).map(gen_event))
        .key_by(|e: &Event| e.key)
        .sum(|e: &Event| u64::from(e.value))
        .sink("slow", move |_| SlowSink {
            due: Instant::now(),
            totals: vec![0; 10_000],
            records: 0,
            seen: sink_seen.clone(),
            out: sink_out.clone(),
        })
        .set_parallelism(1);
    let job = rt.spawn(env.execute());
    let first = match &handle {
        None => FirstCheckpoint::default(),
        Some(h) => rt.block_on(async {
            let (mut triggered, mut completed) = (h.triggered(), h.completed());
            let id = *triggered.wait_for(|id| *id > 0).await.expect("a trigger");
            let (start, records_before) = (Instant::now(), seen.load(Ordering::Relaxed));
            let completed_id = *completed.wait_for(|c| *c >= id).await.expect("a completion");
            let took = start.elapsed();
            let records_meanwhile = seen.load(Ordering::Relaxed) - records_before;
            FirstCheckpoint { took, records_meanwhile, records_before, id, completed_id }
        }),
    };
    rt.block_on(job).expect("the job's task").expect("job");
    let (triggered, completed) = ids(&handle);
    let parts = out.lock().expect("finals");
    let finals = parts.iter().fold(Finals { records: 0, checksum: 0 }, |a, f| Finals {
        records: a.records + f.records,
        checksum: a.checksum.wrapping_add(f.checksum),
    });
    Run { result: (finals, first), triggered, completed }
}

fn contenders() -> Vec<Checkpoints> {
    let mut all = vec![Checkpoints(None)];
    for every in [Duration::from_millis(100), Duration::from_secs(1)] {
        for mode in [CheckpointingMode::Unaligned, CheckpointingMode::Aligned] {
            all.push(Checkpoints(Some((mode, every))));
        }
    }
    all
}

pub(crate) fn bench(c: &mut Criterion) {
    let rt = runtime();

    // Every contender must compute what the run without checkpoints does.
    let reference = window_job(&rt, N, Backend::Memory, Checkpoints(None), &dirs(), false).result;
    assert_eq!(reference.events, N);
    eprintln!(
        "checkpoint_throughput: {} (key, window) results, {} events, checksum {:#x}",
        reference.results, reference.events, reference.checksum
    );
    for backend in [Backend::Memory, Backend::Fjall] {
        for cp in contenders() {
            let run = window_job(&rt, N, backend, cp, &dirs(), true);
            assert_eq!(run.result, reference, "{}/{}", backend.name(), cp.name());
        }
    }

    let mut g = c.benchmark_group("checkpoint_throughput");
    g.throughput(Throughput::Elements(N)).sample_size(10);
    for backend in [Backend::Memory, Backend::Fjall] {
        for cp in contenders() {
            let id = BenchmarkId::new(backend.name(), cp.name());
            // Runs and the sums of their latest triggered / completed ids.
            let counts = Cell::new((0u64, 0u64, 0u64));
            g.bench_function(id, |b| {
                b.iter_batched(
                    dirs,
                    |d| {
                        let run = window_job(&rt, N, backend, cp, &d, false);
                        let (r, t, c) = counts.get();
                        counts.set((r + 1, t + run.triggered, c + run.completed));
                        (run.result, d)
                    },
                    BatchSize::PerIteration,
                )
            });
            let (runs, triggered, completed) = counts.get();
            if runs > 0 && cp.0.is_some() {
                eprintln!(
                    "  {}/{}: per run on average {:.1} checkpoints triggered, {:.1} completed ({runs} runs, the final checkpoint included)",
                    backend.name(),
                    cp.name(),
                    triggered as f64 / runs as f64,
                    completed as f64 / runs as f64,
                );
            }
        }
    }
    g.finish();

    // The backpressure job: same output with and without checkpoints, and
    // the first checkpoint is triggered while the sink is busy.
    let bp_modes = [CheckpointingMode::Unaligned, CheckpointingMode::Aligned];
    let bp_reference = backpressure_job(&rt, BP_N, Checkpoints(None), &dirs()).result.0;
    assert_eq!(bp_reference.records, BP_N);
    for mode in bp_modes {
        let cp = Checkpoints(Some((mode, BP_INTERVAL)));
        let run = backpressure_job(&rt, BP_N, cp, &dirs());
        let (finals, first) = run.result;
        assert_eq!(finals, bp_reference, "backpressure/{}", cp.name());
        assert!(first.records_before > 0 && first.records_before < BP_N, "{first:?}: not under backpressure");
    }

    let mut g = c.benchmark_group("checkpoint_backpressure");
    // Only trigger → completion is timed; a run takes far longer than that,
    // so sample each run once, 10 of them.
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_millis(10));
    for mode in bp_modes {
        let cp = Checkpoints(Some((mode, BP_INTERVAL)));
        let firsts = std::cell::RefCell::new(Vec::new());
        g.bench_function(cp.name(), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let d = dirs();
                    let run = backpressure_job(&rt, BP_N, cp, &d);
                    let first = run.result.1;
                    total += first.took;
                    firsts.borrow_mut().push(first);
                }
                total
            })
        });
        let firsts = firsts.into_inner();
        if !firsts.is_empty() {
            let n = firsts.len() as f64;
            let mean_ms = firsts.iter().map(|f| f.took.as_secs_f64()).sum::<f64>() / n * 1e3;
            let meanwhile = firsts.iter().map(|f| f.records_meanwhile as f64).sum::<f64>() / n;
            let before = firsts.iter().map(|f| f.records_before as f64).sum::<f64>() / n;
            let other = firsts.iter().filter(|f| f.completed_id != f.id).count();
            eprintln!(
                "  {}: first checkpoint trigger → completion {mean_ms:.1} ms on average; the sink took {before:.0} records before the trigger and {meanwhile:.0} meanwhile (at {SLOW_SINK_NS} ns each); {other} of {} runs completed a later checkpoint first",
                cp.name(),
                firsts.len()
            );
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
