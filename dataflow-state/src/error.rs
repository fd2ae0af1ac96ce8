//! The error type of `dataflow-state`.

/// Everything that can go wrong in `dataflow-state`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StateError {
    /// A parallelism outside `1..=max_parallelism` was asked for.
    #[error("parallelism {parallelism} is not in 1..={max_parallelism} (max parallelism)")]
    InvalidParallelism {
        /// The parallelism asked for.
        parallelism: u32,
        /// The maximum parallelism (number of key groups).
        max_parallelism: u32,
    },
    /// A subtask index at or past the parallelism was asked for.
    #[error("subtask index {index} is out of range for parallelism {parallelism}")]
    InvalidSubtask {
        /// The index asked for.
        index: u32,
        /// The parallelism.
        parallelism: u32,
    },
}
