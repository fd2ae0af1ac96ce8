//! Local working folders of this process's own (staging for uploads,
//! downloads), in the system's temporary directory, and the sweep of those
//! a killed process left behind.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

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
