//! A job for the storage tests: numbers from two source subtasks through
//! transactional files, checkpointed at set positions (on a manual clock,
//! waiting on the checkpoints' events, never on time), ending with a final
//! checkpoint; and what its committed output must be.

#![allow(dead_code)]

use dataflow_core::checkpoint::CheckpointHandle;
use dataflow_core::checkpoint::coordinator::CheckpointConfig;
use dataflow_core::checkpoint::restart::RestartStrategy;
use dataflow_core::connectors::two_phase::read_committed;
use dataflow_core::connectors::{Source, SourceContext, SourceStatus};
use dataflow_core::time::ManualClock;
use dataflow_core::{BoxError, Error, JobResult, StreamEnvironment};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Records per subtask between two checkpoints.
pub const M: u64 = 500;
/// Checkpoints taken before the final one.
pub const CHECKPOINTS: u64 = 4;
/// Records per subtask.
pub const N: u64 = (CHECKPOINTS + 1) * M;

/// Subtask `i` emits `i*N .. (i+1)*N`. At each pause (every `M` records)
/// both subtasks meet, subtask 0 moves the clock one interval on, and both
/// wait until a checkpoint was triggered (its barrier follows the pause);
/// at the next pause, and before finishing, they wait until it completed.
struct Phased {
    next: u64,
    end: u64,
    pauses: Vec<u64>,
    /// The checkpoint triggered at the latest pause, to wait for.
    pending: u64,
    subtask: usize,
    meet: Arc<tokio::sync::Barrier>,
    clock: Arc<ManualClock>,
    handle: CheckpointHandle,
    /// Subtask 0 fails once at this pause (a position), after both met.
    fail_at: Option<u64>,
    failed: Arc<AtomicBool>,
}

#[async_trait::async_trait]
impl Source<u64> for Phased {
    async fn poll_batch(&mut self, ctx: &mut SourceContext<u64>) -> Result<SourceStatus, BoxError> {
        let at_pause = self.pauses.first() == Some(&self.next);
        if (at_pause || self.next == self.end) && self.pending > 0 {
            let pending = std::mem::take(&mut self.pending);
            self.handle.completed().wait_for(|id| *id >= pending).await?;
        }
        if at_pause {
            self.pauses.remove(0);
            // Read before meeting: nothing is triggered until both met.
            let before = *self.handle.triggered().borrow();
            self.meet.wait().await;
            if self.fail_at == Some(self.next) && !self.failed.swap(true, Ordering::SeqCst) {
                return Err("injected failure".into());
            }
            if self.subtask == 0 {
                self.clock.advance(100);
            }
            let id = *self.handle.triggered().wait_for(|id| *id > before).await?;
            self.pending = id;
            return Ok(SourceStatus::More);
        }
        let stop = self.pauses.first().copied().unwrap_or(self.end);
        while self.next < stop && !ctx.is_full() {
            ctx.collect(self.next, None);
            self.next += 1;
        }
        // Finished only once the last pause's checkpoint completed (at the
        // next poll): the final checkpoint, triggered as soon as both
        // finished, would otherwise subsume it when it is still pending.
        Ok(if self.next == self.end && self.pending == 0 { SourceStatus::Finished } else { SourceStatus::More })
    }

    fn position(&self) -> Option<Vec<u8>> {
        Some(self.next.to_be_bytes().to_vec())
    }

    fn seek(&mut self, position: &[u8]) -> Result<(), BoxError> {
        self.next = u64::from_be_bytes(position.try_into()?);
        self.pauses.retain(|p| *p > self.next);
        Ok(())
    }
}

/// Runs the job once (a new environment, as a new process would) with
/// checkpoints in `checkpoints` (a path or a URL) and output in `out`.
/// `config` adjusts the checkpoint config (4 retained by default).
pub fn run_job(
    checkpoints: &str,
    out: &Path,
    config: impl FnOnce(CheckpointConfig) -> CheckpointConfig,
    storage_options: &[(&str, &str)],
) -> Result<JobResult, Error> {
    run_job_failing(checkpoints, out, config, storage_options, None)
}

/// [`run_job`], where subtask 0 fails once at pause `fail_at` (1-based:
/// after checkpoint `fail_at - 1` completed), and the job restarts in
/// process from its latest checkpoint.
pub fn run_job_failing(
    checkpoints: &str,
    out: &Path,
    config: impl FnOnce(CheckpointConfig) -> CheckpointConfig,
    storage_options: &[(&str, &str)],
    fail_at: Option<u64>,
) -> Result<JobResult, Error> {
    let failed = Arc::new(AtomicBool::new(false));
    let did_fail = failed.clone();
    let clock = Arc::new(ManualClock::new(0));
    let env = StreamEnvironment::new().with_parallelism(2).with_clock(clock.clone());
    let config = config(CheckpointConfig { retained: 4, ..CheckpointConfig::every(Duration::from_millis(100)) });
    let handle = env.enable_checkpointing(config, checkpoints);
    if !storage_options.is_empty() {
        env.set_storage_options(storage_options.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    }
    if fail_at.is_some() {
        env.set_restart_strategy(RestartStrategy::fixed_delay(1, Duration::ZERO));
    }
    let meet = Arc::new(tokio::sync::Barrier::new(2));
    env.add_source("numbers", move |info| {
        let i = info.subtask as u64;
        Phased {
            next: i * N,
            end: (i + 1) * N,
            pauses: (1..=CHECKPOINTS).map(|k| i * N + k * M).collect(),
            pending: 0,
            subtask: info.subtask,
            meet: meet.clone(),
            clock: clock.clone(),
            handle: handle.clone(),
            fail_at: fail_at.filter(|_| i == 0).map(|k| k * M),
            failed: failed.clone(),
        }
    })
    .uid("numbers")
    .write_transactional_files(out);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let result = rt.block_on(env.execute());
    assert!(fail_at.is_none() || did_fail.load(Ordering::SeqCst), "the injected failure did not happen");
    result
}

/// Every record `0..2N` exactly once in the committed output of `out`, or
/// what is missing and what is there twice.
pub fn assert_exactly_once(out: &Path) {
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    for l in read_committed(out).unwrap() {
        *seen.entry(l.parse().unwrap()).or_default() += 1;
    }
    let missing: Vec<u64> = (0..2 * N).filter(|j| !seen.contains_key(j)).collect();
    let twice: Vec<u64> = seen.iter().filter(|(_, n)| **n > 1).map(|(j, _)| *j).collect();
    assert!(
        missing.is_empty() && twice.is_empty() && seen.len() as u64 == 2 * N,
        "{} missing (first {:?}), {} more than once (first {:?})",
        missing.len(),
        &missing[..missing.len().min(5)],
        twice.len(),
        &twice[..twice.len().min(5)]
    );
}

/// The checkpoint folders under `dir`, newest first.
pub fn checkpoint_dirs(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut dirs: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            let id = e.file_name().to_str()?.strip_prefix("chk-")?.parse().ok()?;
            Some((id, e.path()))
        })
        .collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.0));
    dirs
}
