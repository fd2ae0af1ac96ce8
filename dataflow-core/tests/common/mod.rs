//! Shared by the savepoint tests: a gate that holds every source subtask
//! mid-stream until a stop-with-savepoint was triggered, so the savepoint
//! is taken there (waiting on events, never on time).

#![allow(dead_code)]

pub mod s3;

use dataflow_core::{Data, Error, JobResult, StreamEnvironment, operator};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{Notify, watch};

/// Holds each subtask at its first record whose position `hold` accepts,
/// until released; [`Gate::default`] holds nothing.
#[derive(Clone, Default)]
pub struct Gate {
    hold: Option<fn(u64) -> bool>,
    reached: Arc<AtomicUsize>,
    arrived: Arc<Notify>,
    open: Option<(Arc<watch::Sender<bool>>, watch::Receiver<bool>)>,
}

impl Gate {
    pub fn holding(hold: fn(u64) -> bool) -> Self {
        let (tx, rx) = watch::channel(false);
        Self { hold: Some(hold), open: Some((Arc::new(tx), rx)), ..Self::default() }
    }

    /// Waits until `subtasks` subtasks are held.
    async fn held(&self, subtasks: usize) {
        while self.reached.load(Ordering::SeqCst) < subtasks {
            self.arrived.notified().await;
        }
    }
}

/// The gate operator over records whose position (what `hold` looks at) is
/// `pos(record)`: `stream.apply_async(gate(&g, pos))`.
#[operator(capacity = 1, uid = "gate")]
pub async fn gate<T: Data>(#[config] g: &Gate, #[config] pos: fn(&T) -> u64, x: T) -> T {
    if let (Some((_, open)), Some(hold)) = (&g.open, g.hold)
        && hold(pos(&x))
        && !*open.borrow()
    {
        g.reached.fetch_add(1, Ordering::SeqCst);
        g.arrived.notify_one();
        let _ = open.clone().wait_for(|o| *o).await;
    }
    x
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Submits the job of `env`, waits until `subtasks` gates hold, stops the
/// job with a savepoint into `sp` (releasing the gates once it was
/// triggered) and returns once the job ended.
pub fn stop_at_gates(
    env: StreamEnvironment,
    g: &Gate,
    subtasks: usize,
    sp: &Path,
    drain: bool,
) -> Result<PathBuf, Error> {
    let (path, job) = stop_at_gates_outcome(env, g, subtasks, sp, drain);
    let path = path?;
    job?;
    Ok(path)
}

/// The same, returning the stop's outcome and the job's (a stop that
/// failed leaves the job running: the gates open all the same).
pub fn stop_at_gates_outcome(
    env: StreamEnvironment,
    g: &Gate,
    subtasks: usize,
    sp: &Path,
    drain: bool,
) -> (Result<PathBuf, Error>, Result<JobResult, Error>) {
    let (open, g) = (g.open.clone().expect("a holding gate").0, g.clone());
    rt().block_on(async move {
        let job = env.submit();
        g.held(subtasks).await;
        // Let the held records go once the savepoint was triggered (its
        // barrier follows them); a request refused at once ends here.
        let path = {
            let stop = job.stop_with_savepoint(sp, drain);
            tokio::pin!(stop);
            let mut triggered = job.savepoint_triggered();
            tokio::select! {
                r = &mut stop => r,
                _ = triggered.wait_for(|id| *id > 0) => {
                    let _ = open.send(true);
                    (&mut stop).await
                }
            }
        };
        let _ = open.send(true);
        (path, job.wait().await)
    })
}

/// Waits until `subtasks` gates hold, then takes a savepoint into `sp`
/// while the job goes on (the gates open once it was triggered); returns
/// once the job ended.
pub fn savepoint_at_gates(env: StreamEnvironment, g: &Gate, subtasks: usize, sp: &Path) -> Result<PathBuf, Error> {
    let (open, g) = (g.open.clone().expect("a holding gate").0, g.clone());
    rt().block_on(async move {
        let job = env.submit();
        g.held(subtasks).await;
        let mut triggered = job.savepoint_triggered();
        let release = async {
            if triggered.wait_for(|id| *id > 0).await.is_ok() {
                let _ = open.send(true);
            }
        };
        let (taken, ()) = tokio::join!(job.savepoint(sp), release);
        let taken = taken?;
        job.wait().await?;
        Ok(taken)
    })
}
