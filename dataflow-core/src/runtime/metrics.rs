//! Record counters per operator instance, summed per operator when the job
//! ends.

use std::sync::atomic::{AtomicU64, Ordering};

/// Records in and out of one operator instance (updated once per batch).
#[derive(Debug, Default)]
pub(crate) struct OperatorCounters {
    records_in: AtomicU64,
    records_out: AtomicU64,
    records_skipped: AtomicU64,
}

impl OperatorCounters {
    #[inline]
    pub(crate) fn add_in(&self, n: usize) {
        self.records_in.fetch_add(n as u64, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn add_out(&self, n: usize) {
        self.records_out.fetch_add(n as u64, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn add_skipped(&self, n: u64) {
        self.records_skipped.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> [u64; 3] {
        [
            self.records_in.load(Ordering::Relaxed),
            self.records_out.load(Ordering::Relaxed),
            self.records_skipped.load(Ordering::Relaxed),
        ]
    }
}

/// What one operator did over a job, summed over its subtasks.
///
/// ```
/// use dataflow_core::StreamEnvironment;
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let env = StreamEnvironment::new();
/// env.from_iter(0..10).filter(|x| x % 2 == 0).name("evens").for_each(|_| {});
/// let result = env.execute().await.unwrap();
/// let evens = result.operator("evens").unwrap();
/// assert_eq!((evens.records_in, evens.records_out), (10, 5));
/// # });
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorStats {
    /// The operator's name.
    pub name: String,
    /// The operator's uid, if one was set.
    pub uid: Option<String>,
    /// The operator's parallelism.
    pub parallelism: usize,
    /// Records that entered the operator.
    pub records_in: u64,
    /// Records that the operator emitted.
    pub records_out: u64,
    /// Records dropped by the `Skip` or `SideOutput` bad-record policy.
    pub records_skipped: u64,
}

/// The outcome of a finished job.
///
/// ```
/// use dataflow_core::StreamEnvironment;
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let env = StreamEnvironment::new();
/// env.from_iter(0..3).collect();
/// let result = env.execute().await.unwrap();
/// assert_eq!(result.operators.len(), 2);
/// # });
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobResult {
    /// One entry per operator, in the order they were added.
    pub operators: Vec<OperatorStats>,
}

impl JobResult {
    /// The statistics of the first operator called `name`.
    pub fn operator(&self, name: &str) -> Option<&OperatorStats> {
        self.operators.iter().find(|o| o.name == name)
    }
}
