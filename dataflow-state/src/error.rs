//! The error type of `dataflow-state`.

use std::path::PathBuf;

/// Everything that can go wrong in `dataflow-state`.
///
/// A failure of the operating system or of the storage engine keeps its
/// cause as its [`source`](std::error::Error::source), so a caller can match
/// on the [`std::io::ErrorKind`] or walk the chain.
///
/// ```
/// use dataflow_state::StateError;
/// use dataflow_state::table::{StateBackendConfig, StateTable, TableSpec};
/// use dataflow_state::{KeyGroupRange, ValueState};
///
/// let spec = TableSpec::new("t", 128, KeyGroupRange::new(0, 128));
/// let mut t = StateTable::<u32, ValueState<u8>>::open(&StateBackendConfig::InMemory, spec, "op").unwrap();
/// let missing = std::path::Path::new("/nonexistent/snapshot");
/// match t.restore(&[missing]) {
///     Err(StateError::Io { path, source }) => {
///         assert_eq!(path, missing);
///         assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
///     }
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
    /// A state file or directory could not be read or written.
    #[error("cannot read or write state file {}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A state file is damaged: truncated, a checksum mismatch, or not a
    /// state file at all.
    #[error("state file {} is corrupt: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        reason: String,
    },
    /// Snapshot files do not form chains: a delta file without the full
    /// file of its chain, or with a file of its chain missing before it,
    /// or two files at one place in a chain.
    #[error("state file {} does not fit its chain: {reason}", path.display())]
    BrokenChain {
        /// The file.
        path: PathBuf,
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
    /// The storage engine (fjall) failed.
    #[error("fjall store {}: {operation} failed", path.display())]
    Backend {
        /// The store's directory.
        path: PathBuf,
        /// What was being done (`"open"`, `"get"`, `"put"`, …).
        operation: &'static str,
        /// What fjall said.
        #[source]
        source: fjall::Error,
    },
    /// An entry too large for the storage engine: a key's canonical bytes
    /// (with the entry's header) or an encoded state past its limit.
    #[error("fjall store {}: a {what} of {len} bytes (at most {max})", path.display())]
    TooLarge {
        /// The store's directory.
        path: PathBuf,
        /// `"key"` or `"value"`.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The most the store takes.
        max: usize,
    },
}

impl StateError {
    /// An I/O error on `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }

    /// A damaged file.
    pub(crate) fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Self::Corrupt { path: path.into(), reason: reason.into() }
    }

    /// A file that does not fit its chain.
    pub(crate) fn broken_chain(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Self::BrokenChain { path: path.into(), reason: reason.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn errors_cross_threads_and_keep_their_causes() {
        fn send_sync<T: Send + Sync + 'static>() {}
        send_sync::<StateError>();
        let e = StateError::io("/x/y", std::io::Error::from(std::io::ErrorKind::PermissionDenied));
        assert_eq!(e.to_string(), "cannot read or write state file /x/y");
        let source = e.source().and_then(|s| s.downcast_ref::<std::io::Error>()).map(|s| s.kind());
        assert_eq!(source, Some(std::io::ErrorKind::PermissionDenied));
        assert!(StateError::corrupt("/f", "bad").source().is_none());
    }
}
