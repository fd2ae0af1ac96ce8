//! Where checkpoints and savepoints are: a local path (given plain or as a
//! `file://` URL) or an object-store URL, and the local working folders
//! of a storage on an object store.

use crate::error::Error;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A checkpoint or savepoint location, by its form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Location {
    /// The local file system: a plain path, or a `file:///…` URL.
    Local(PathBuf),
    /// An object store (`s3://…`, `gs://…`, `az://…`; checked when opened).
    Url(url::Url),
}

impl Location {
    /// The location `location` names.
    pub(crate) fn of(location: &Path) -> Result<Self, Error> {
        match url_of(location)? {
            None => Ok(Self::Local(location.to_path_buf())),
            Some(url) if url.scheme() == "file" => {
                url.to_file_path().map(Self::Local).map_err(|()| url_err(&url, "not a local path"))
            }
            Some(url) => Ok(Self::Url(url)),
        }
    }
}

/// The URL `location` is, if it is one (`scheme://…`); a plain path is not.
fn url_of(location: &Path) -> Result<Option<url::Url>, Error> {
    let Some(s) = location.to_str().filter(|s| s.contains("://")) else { return Ok(None) };
    let scheme = s.split("://").next().unwrap_or_default();
    if scheme.len() < 2 || !scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) {
        return Ok(None);
    }
    url::Url::parse(s).map(Some).map_err(|e| Error::StorageUrl { url: s.to_string(), reason: e.to_string() })
}

/// The [`Error::StorageUrl`] of `url`.
pub(crate) fn url_err(url: &url::Url, reason: impl Into<String>) -> Error {
    Error::StorageUrl { url: url.to_string(), reason: reason.into() }
}

/// How messages name the object at `rel` below `url` (`rel` empty: `url`).
pub(crate) fn object_url(url: &str, rel: &str) -> PathBuf {
    let base = url.trim_end_matches('/');
    match rel.trim_start_matches('/') {
        "" => PathBuf::from(base),
        rel => PathBuf::from(format!("{base}/{rel}")),
    }
}

/// A local working folder of this process's own (staging, downloads),
/// in the system's temporary directory, removed when dropped.
#[derive(Debug)]
pub(crate) struct LocalFolder(PathBuf);

impl LocalFolder {
    /// A new folder `dataflow-<what>-<pid>-<n>` (made when first written).
    pub(crate) fn new(what: &str) -> Self {
        static SWEPT: std::sync::Once = std::sync::Once::new();
        SWEPT.call_once(sweep_dead);
        static FOLDERS: AtomicU64 = AtomicU64::new(0);
        let n = FOLDERS.fetch_add(1, Ordering::Relaxed);
        Self(std::env::temp_dir().join(format!("dataflow-{what}-{}-{n}", std::process::id())))
    }

    /// Its path.
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

/// Removes the working folders of processes that are gone (killed
/// before they could remove their own). Linux only (it asks `/proc`).
fn sweep_dead() {
    if !cfg!(target_os = "linux") {
        return;
    }
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name.strip_prefix("dataflow-").and_then(|rest| rest.rsplit('-').nth(1)?.parse::<u32>().ok());
        if let Some(pid) = pid
            && pid != std::process::id()
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl Drop for LocalFolder {
    fn drop(&mut self) {
        // Best effort: a working copy, nothing lasting.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod sweep_tests {
    use super::*;

    #[test]
    fn folders_of_dead_processes_are_swept_and_live_ones_kept() {
        let dead = std::env::temp_dir().join("dataflow-test-999999999-0"); // above any pid_max
        let own = LocalFolder::new("test");
        std::fs::create_dir_all(&dead).unwrap();
        std::fs::create_dir_all(own.path()).unwrap();
        sweep_dead();
        assert_eq!(dead.exists(), !cfg!(target_os = "linux"));
        assert!(own.path().exists());
    }
}
