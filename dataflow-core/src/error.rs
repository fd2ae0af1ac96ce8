//! The error type of `dataflow-core`.

use crate::operator::BoxError;

/// Why a job could not be built or did not finish.
///
/// ```
/// let e = dataflow_core::Error::OperatorPanicked {
///     operator: "parse".into(), subtask: 2, parallelism: 4, message: "boom".into(),
/// };
/// assert_eq!(e.to_string(), "operator 'parse' (subtask 3/4) panicked: boom");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A user function or operator returned an error.
    #[error("operator '{operator}' (subtask {}/{parallelism}) failed: {source}", .subtask + 1)]
    OperatorFailed {
        /// The operator's name.
        operator: String,
        /// The failing subtask's index (from 0).
        subtask: usize,
        /// The operator's parallelism.
        parallelism: usize,
        /// What the operator returned.
        #[source]
        source: BoxError,
    },
    /// A user function or operator panicked.
    #[error("operator '{operator}' (subtask {}/{parallelism}) panicked: {message}", .subtask + 1)]
    OperatorPanicked {
        /// The operator's name.
        operator: String,
        /// The failing subtask's index (from 0).
        subtask: usize,
        /// The operator's parallelism.
        parallelism: usize,
        /// The panic message.
        message: String,
    },
    /// The job graph cannot run as built.
    #[error("invalid job graph: {0}")]
    InvalidGraph(String),
    /// A task lost one of its channels because the task on the other side
    /// ended or failed. Reported only when no other failure explains it.
    #[error("task '{task}' lost a channel: the task on the other side ended or failed")]
    Disconnected {
        /// The task that saw the channel close.
        task: String,
    },
    /// A task ended without a result (it was cancelled by the runtime).
    #[error("task '{task}' was cancelled")]
    Cancelled {
        /// The cancelled task.
        task: String,
    },
    /// Key-group arithmetic failed (for example parallelism above max parallelism).
    #[error(transparent)]
    State(#[from] dataflow_state::StateError),
    /// A checkpoint file could not be read or written.
    #[error("checkpoint file {file}: {message}")]
    CheckpointIo {
        /// The file.
        file: String,
        /// What the operating system said.
        message: String,
    },
    /// A checkpoint file is damaged (truncated, a checksum mismatch, not a
    /// checkpoint file).
    #[error("checkpoint file {file} is corrupt: {reason}")]
    CheckpointCorrupt {
        /// The file.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// A sink could not write, rename or sync a file.
    #[error("sink: cannot {op} {file}: {message}")]
    SinkIo {
        /// What was being done ("write", "rename", …).
        op: &'static str,
        /// The file (or directory).
        file: String,
        /// What the operating system said.
        message: String,
    },
    /// A sink cannot commit what a checkpoint says it pre-committed: both
    /// its pending and its final file are gone, or the name is not one of
    /// the sink's files (a damaged or foreign checkpoint).
    #[error("sink: cannot commit {file}: {reason}")]
    SinkCommit {
        /// The file.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// A savepoint cannot be taken or restored: a folder that is not
    /// empty, a newer format, operators that do not match the job, a
    /// different max parallelism, or the job ended before it completed.
    #[error("savepoint {path}: {message}")]
    Savepoint {
        /// The savepoint's folder.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A runtime invariant was broken; a bug in dataflow, please report it.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Whether this error is a consequence of another task's failure rather
    /// than a cause.
    pub(crate) fn is_secondary(&self) -> bool {
        matches!(self, Error::Disconnected { .. } | Error::Cancelled { .. })
    }
}

/// The result type of `dataflow-core`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
