//! Where a file source's files are: a folder (or one file) on the local
//! disk, or a prefix (or one object) on an object store. Listing finds the
//! files of a folder or prefix (not those of its subfolders), hidden ones
//! (`.name`, `_name`) left out; a last path component with `*`, `?` or
//! `[…]` is a glob pattern over the names of its folder's files
//! (`logs/2026-*.csv`). Opening reads a file from a byte offset.
//! Both block: they run on the blocking pool (an object store's calls go
//! through the object stores' own runtime).

use crate::connectors::store::{Location, block, object_store_of, object_url};
use crate::error::BoxError;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Bytes fetched from an object store in one request.
const OBJECT_CHUNK: u64 = 8 << 20;

/// Opens the object stores that files name, one client per bucket.
pub(super) struct Stores {
    options: Arc<[(String, String)]>,
    open: Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
}

impl Stores {
    pub(super) fn new(options: Arc<[(String, String)]>) -> Self {
        Self { options, open: Mutex::new(HashMap::new()) }
    }

    /// The store and the object that `url` names.
    fn object(&self, url: &url::Url) -> Result<(Arc<dyn ObjectStore>, ObjectPath), BoxError> {
        let bucket = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
        let (store, path) = object_store_of(url, &self.options)?;
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        Ok((open.entry(bucket).or_insert(store).clone(), path))
    }

    /// The files of `path` (itself if a file; those matching its last
    /// component if that is a glob pattern), sorted, hidden ones left out,
    /// with their sizes.
    pub(super) fn list(&self, path: &Path) -> Result<Vec<(PathBuf, u64)>, BoxError> {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if let (true, Some(folder)) = (name.contains(['*', '?', '[']), path.parent()) {
            let pattern = glob::Pattern::new(name).map_err(|e| format!("bad pattern {}: {e}", path.display()))?;
            let mut files = self.list_folder(folder)?;
            files.retain(|(f, _)| f.file_name().and_then(|n| n.to_str()).is_some_and(|n| pattern.matches(n)));
            return Ok(files);
        }
        self.list_folder(path)
    }

    fn list_folder(&self, path: &Path) -> Result<Vec<(PathBuf, u64)>, BoxError> {
        match Location::of(path)? {
            Location::Local(path) => list_local(&path),
            Location::Url(url) => {
                let (store, prefix) = self.object(&url)?;
                let (s, p) = (store.clone(), prefix.clone());
                // One object, or the objects below a prefix.
                if let Ok(meta) = block(async move { s.head(&p).await })? {
                    return Ok(vec![(path.to_path_buf(), meta.size)]);
                }
                let p = prefix.clone();
                let listed = block(async move { store.list_with_delimiter(Some(&p)).await })?
                    .map_err(|e| format!("cannot list {url}: {e}"))?;
                let base = url.as_str().trim_end_matches('/');
                let mut files: Vec<(PathBuf, u64)> = listed
                    .objects
                    .iter()
                    .filter_map(|o| Some((o.location.filename()?, o.size)))
                    .filter(|(name, _)| !hidden(name))
                    .map(|(name, size)| (object_url(base, name), size))
                    .collect();
                files.sort();
                Ok(files)
            }
        }
    }

    /// File `path`'s bytes from `offset` on.
    pub(super) fn open(&self, path: &Path, offset: u64) -> Result<Box<dyn Read + Send>, BoxError> {
        match Location::of(path)? {
            Location::Local(local) => {
                let err = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
                let mut file = std::fs::File::open(&local).map_err(err)?;
                file.seek(SeekFrom::Start(offset)).map_err(err)?;
                Ok(Box::new(file))
            }
            Location::Url(url) => {
                let (store, object) = self.object(&url)?;
                let (s, o) = (store.clone(), object.clone());
                let size = block(async move { s.head(&o).await })?.map_err(|e| format!("cannot read {url}: {e}"))?.size;
                Ok(Box::new(ObjectRead { store, object, url: url.clone(), at: offset, size, buf: Default::default() }))
            }
        }
    }
}

fn hidden(name: &str) -> bool {
    name.starts_with('.') || name.starts_with('_')
}

fn list_local(path: &Path) -> Result<Vec<(PathBuf, u64)>, BoxError> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if meta.is_file() {
        return Ok(vec![(path.to_path_buf(), meta.len())]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(|e| format!("cannot list {}: {e}", path.display()))? {
        let entry = entry.map_err(|e| format!("cannot list {}: {e}", path.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let meta = entry.metadata().map_err(|e| format!("cannot read {}: {e}", entry.path().display()))?;
        if !hidden(&name) && meta.is_file() {
            files.push((entry.path(), meta.len()));
        }
    }
    files.sort();
    Ok(files)
}

/// An object's bytes from an offset on, fetched a range at a time.
struct ObjectRead {
    store: Arc<dyn ObjectStore>,
    object: ObjectPath,
    url: url::Url,
    /// The offset of the first byte not fetched yet.
    at: u64,
    size: u64,
    buf: bytes::Bytes,
}

impl Read for ObjectRead {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.buf.is_empty() {
            if self.at >= self.size {
                return Ok(0);
            }
            let range = self.at..(self.at + OBJECT_CHUNK).min(self.size);
            let (store, object) = (self.store.clone(), self.object.clone());
            let fetched = block(async move { store.get_range(&object, range).await }).map_err(std::io::Error::other)?;
            self.buf = fetched.map_err(|e| std::io::Error::other(format!("{}: {e}", self.url)))?;
            if self.buf.is_empty() {
                return Err(std::io::Error::other(format!("{}: the object ended before its size", self.url)));
            }
            self.at += self.buf.len() as u64;
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf.split_to(n));
        Ok(n)
    }
}
