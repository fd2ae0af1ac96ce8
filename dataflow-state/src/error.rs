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
    /// A state file could not be read or written.
    #[error("state file {file}: {message}")]
    Io {
        /// The file.
        file: String,
        /// What the operating system said.
        message: String,
    },
    /// A state file is damaged: truncated, a checksum mismatch, or not a
    /// state file at all.
    #[error("state file {file} is corrupt: {reason}")]
    Corrupt {
        /// The file.
        file: String,
        /// What is wrong, and where.
        reason: String,
    },
    /// Snapshot files do not form chains: a delta file without the full
    /// file of its chain, or with a file of its chain missing before it,
    /// or two files at one place in a chain.
    #[error("state file {file} does not fit its chain: {reason}")]
    BrokenChain {
        /// The file.
        file: String,
        /// What is missing or twice.
        reason: String,
    },
    /// A stored value could not be decoded as its state's type.
    #[error("state '{state}' in key group {key_group}: cannot decode a value: {message}")]
    Decode {
        /// The state's name.
        state: String,
        /// The key group of the entry.
        key_group: u32,
        /// What the decoder said.
        message: String,
    },
    /// A key whose key group this subtask does not hold reached its state.
    #[error("key group {key_group} is not in this subtask's key groups {start}..{end}")]
    ForeignKeyGroup {
        /// The key's key group.
        key_group: u32,
        /// The first key group held.
        start: u32,
        /// One past the last key group held.
        end: u32,
    },
    /// The storage engine failed.
    #[error("state backend: {0}")]
    Backend(String),
}
