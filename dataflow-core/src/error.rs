//! The error type of `dataflow-core`.

use std::path::{Path, PathBuf};

/// The error an operator, a source or a sink returns: any error type of
/// the user's.
///
/// ```
/// let e: dataflow_core::BoxError = "no such file".into();
/// assert_eq!(e.to_string(), "no such file");
/// ```
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

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
    /// A checkpoint or savepoint file (or folder) could not be read or
    /// written.
    #[error("checkpoint file {}: {source}", .path.display())]
    CheckpointIo {
        /// The file or folder.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A checkpoint file is damaged (truncated, a checksum mismatch, not a
    /// checkpoint file).
    #[error("checkpoint file {} is corrupt: {reason}", .path.display())]
    CheckpointCorrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A job cannot restore because complete checkpoints are damaged
    /// (metadata or a listed file damaged or missing): falling back past
    /// them to an older one would publish again what sinks committed under
    /// them, and a fresh start would publish everything again. Falling back
    /// is allowed with
    /// `CheckpointConfig::allow_fallback_past_damaged_checkpoints`; a
    /// location whose checkpoints are all damaged is always this error.
    #[error("{}", damaged_message(.location, *.fallback, .damaged))]
    CheckpointDamaged {
        /// Where the checkpoints are.
        location: String,
        /// The newest intact checkpoint, older than the damaged ones (none:
        /// every checkpoint there is damaged).
        fallback: Option<u64>,
        /// Each damaged checkpoint, newest first, and why (naming the file).
        damaged: Vec<DamagedCheckpoint>,
    },
    /// A checkpoint or savepoint location given as a URL cannot be used:
    /// not a URL, an unsupported scheme, a bad option.
    #[error("storage location {url}: {reason}")]
    StorageUrl {
        /// The location as given.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// A sink could not write, rename or sync a file.
    #[error("sink: cannot {op} {}: {source}", .path.display())]
    SinkIo {
        /// What was being done ("write", "rename", …).
        op: &'static str,
        /// The file (or directory).
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A sink cannot commit what a checkpoint says it pre-committed: both
    /// its pending and its final file are gone, or the name is not one of
    /// the sink's files (a damaged or foreign checkpoint).
    #[error("sink: cannot commit {}: {reason}", .path.display())]
    SinkCommit {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A savepoint cannot be taken or restored: a folder that is not
    /// empty, a newer format, operators that do not match the job, a
    /// different max parallelism, or the job ended before it completed.
    #[error("savepoint {}: {message}", .path.display())]
    Savepoint {
        /// The savepoint's folder.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A runtime invariant was broken; a bug in dataflow, please report it.
    #[error("internal error: {0}")]
    Internal(String),
}

/// A complete checkpoint that cannot be restored because its metadata or a
/// file it lists is damaged or missing (in [`Error::CheckpointDamaged`],
/// and in what `CheckpointStorage::find` found).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DamagedCheckpoint {
    /// Its id.
    pub id: u64,
    /// Why: the error, naming the file at fault.
    pub reason: String,
}

impl std::fmt::Display for DamagedCheckpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "checkpoint {}: {}", self.id, self.reason)
    }
}

fn damaged_message(location: &str, fallback: Option<u64>, damaged: &[DamagedCheckpoint]) -> String {
    let list = damaged.iter().map(DamagedCheckpoint::to_string).collect::<Vec<_>>().join("; ");
    match fallback {
        Some(id) => format!(
            "checkpoints in {location} are damaged ({list}): restoring the older checkpoint {id} would publish again \
             what sinks committed under them; repair or remove them, or allow \
             CheckpointConfig::allow_fallback_past_damaged_checkpoints (transactional file sinks then remove \
             the output committed after checkpoint {id})"
        ),
        None => format!(
            "no usable checkpoint in {location}: every complete checkpoint is damaged ({list}); starting fresh would \
             publish everything again: repair them, or remove them (and the output) to start fresh"
        ),
    }
}

impl Error {
    /// The [`Error::CheckpointIo`] of an I/O error on `path`, for
    /// `map_err`.
    pub(crate) fn checkpoint_io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
        move |source| Error::CheckpointIo { path: path.to_path_buf(), source }
    }

    /// Whether this error is a consequence of another task's failure rather
    /// than a cause.
    pub(crate) fn is_secondary(&self) -> bool {
        matches!(self, Error::Disconnected { .. } | Error::Cancelled { .. })
    }
}

/// The result type of `dataflow-core`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
