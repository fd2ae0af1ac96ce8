//! Checkpoints on an object store (S3 and what speaks its protocol, Google
//! Cloud Storage, Azure Blob Storage), through the `object_store` crate,
//! and the choice of storage by the location's form ([`open_storage`]).
//!
//! ```text
//! s3://bucket/prefix/chk-<id>/<files the tasks wrote>
//! s3://bucket/prefix/chk-<id>/_metadata      uploaded last: the commit point
//! ```
//!
//! An object store has no rename, and a reader sees an object whole or not
//! at all. So the tasks write their parts as usual, into a local staging
//! folder; when every task acknowledged, [`CheckpointStorage::complete`]
//! uploads the checkpoint's files (multipart when large) and then
//! `_metadata`, last: a checkpoint whose `_metadata` object exists is
//! complete, one without is incomplete (the process died while it was
//! uploaded). On restore, [`CheckpointStorage::find`] downloads the
//! metadata and every file it lists into a local cache folder, checking
//! each one's length and CRC32C, and the job restores from there (the
//! state readers read local files). Retention and the rules about
//! incomplete and damaged checkpoints are those of
//! [`LocalStorage`].
//!
//! The store is configured from the environment (`AWS_ENDPOINT`,
//! `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_ALLOW_HTTP`, … as
//! `object_store`'s `from_env` builders read them; `GOOGLE_*`, `AZURE_*`)
//! and from options (`StreamEnvironment::set_storage_options`), which win.
//! The storage's methods block: a job calls them on blocking threads
//! (`spawn_blocking`), never on its async workers nor under the
//! coordinator's lock. The object store's I/O runs on a small runtime of
//! its own, so they can be called from any thread that is not a runtime's
//! worker. Parts are staged, and checkpoints downloaded, in a local folder
//! of the storage's own (`$TMPDIR/dataflow-checkpoints-<pid>-<n>`),
//! removed when the storage is dropped.

use super::savepoint::Savepoint;
use super::storage::{CheckpointMetadata, CheckpointStorage, Folders, Found, LocalStorage, METADATA, StateFile};
use super::storage::{check, discard_in, encode_metadata, find_in, retain_in, shared_file};
use crate::connectors::local_folder::LocalFolder;
use crate::connectors::store::{Location, block, object_store_of, object_url, upload, upload_file};
use crate::error::Error;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The storage of checkpoint location `location`: a URL with a scheme
/// (`s3://bucket/prefix`, `s3a://`, `gs://`, `az://`, `abfs://`) is an
/// object store, `file:///path` and a plain path the local file system.
///
/// ```
/// use dataflow_core::checkpoint::object_storage::open_storage;
/// let dir = tempfile::tempdir().unwrap();
/// assert!(open_storage(dir.path(), &[]).unwrap().latest().unwrap().is_none());
/// assert!(open_storage(std::path::Path::new("ftp://host/x"), &[]).is_err());
/// ```
pub fn open_storage(location: &Path, options: &[(String, String)]) -> Result<Arc<dyn CheckpointStorage>, Error> {
    match Location::of(location)? {
        Location::Local(path) => Ok(Arc::new(LocalStorage::new(path))),
        Location::Url(url) => Ok(Arc::new(ObjectStorage::new(&url, options)?)),
    }
}

/// Every object under `prefix`.
fn list(
    store: &Arc<dyn ObjectStore>,
    prefix: &ObjectPath,
) -> Result<Result<Vec<ObjectPath>, object_store::Error>, Error> {
    let (store, prefix) = (store.clone(), prefix.clone());
    block(async move { store.list(Some(&prefix)).map_ok(|m| m.location).try_collect().await })
}

fn get(store: &Arc<dyn ObjectStore>, object: &ObjectPath) -> Result<Result<Vec<u8>, object_store::Error>, Error> {
    let (store, object) = (store.clone(), object.clone());
    block(async move { Ok(store.get(&object).await?.bytes().await?.to_vec()) })
}

/// `object`'s path below `prefix`.
fn rel(prefix: &ObjectPath, object: &ObjectPath) -> String {
    let (p, o) = (prefix.as_ref(), object.as_ref());
    o.strip_prefix(p).map_or(o, |r| r.trim_start_matches('/')).to_string()
}

fn io_at(path: PathBuf) -> impl FnOnce(object_store::Error) -> Error {
    move |e| Error::CheckpointIo { path, source: e.into() }
}

/// The savepoint at `location`: a folder, or a URL whose objects are
/// downloaded into a local folder first (errors name the objects), which
/// lasts as long as the returned [`LocalFolder`].
pub(crate) fn load_savepoint(
    location: &Path,
    options: &[(String, String)],
) -> Result<(Savepoint, Option<LocalFolder>), Error> {
    let url = match Location::of(location)? {
        Location::Local(path) => return Ok((Savepoint::load(path)?, None)),
        Location::Url(url) => url,
    };
    let (store, prefix) = object_store_of(&url, options)?;
    let local = LocalFolder::new("savepoint");
    let at = |p: &ObjectPath| object_url(url.as_str(), &rel(&prefix, p));
    let download = || -> Result<Savepoint, Error> {
        for object in list(&store, &prefix)?.map_err(io_at(at(&prefix)))? {
            let bytes = get(&store, &object)?.map_err(io_at(at(&object)))?;
            let file = local.path().join(rel(&prefix, &object));
            if let Some(dir) = file.parent() {
                std::fs::create_dir_all(dir).map_err(Error::checkpoint_io(dir))?;
            }
            std::fs::write(&file, bytes).map_err(Error::checkpoint_io(&file))?;
        }
        Savepoint::load(local.path())
    };
    let named = |p: PathBuf| match p.strip_prefix(local.path()) {
        Ok(rest) => object_url(url.as_str(), &rest.to_string_lossy()),
        Err(_) => p,
    };
    match download() {
        Ok(savepoint) => Ok((savepoint, Some(local))),
        Err(Error::Savepoint { path, message }) => Err(Error::Savepoint { path: named(path), message }),
        Err(Error::CheckpointCorrupt { path, reason }) => Err(Error::CheckpointCorrupt { path: named(path), reason }),
        Err(Error::CheckpointIo { path, source }) => Err(Error::CheckpointIo { path: named(path), source }),
        Err(e) => Err(e),
    }
}

/// Checkpoints on an object store (see the [module docs](self)).
#[derive(Debug)]
pub struct ObjectStorage {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    /// The location as given, for messages.
    url: String,
    /// Where parts are staged before their upload, and checkpoints are
    /// downloaded to restore from: this storage's own.
    local: LocalFolder,
}

impl ObjectStorage {
    /// Checkpoints under `url` (`s3://bucket/prefix`, `gs://…`, `az://…`),
    /// its store configured from the environment, then `options`. Parts
    /// are staged, and restored checkpoints downloaded, in a folder of the
    /// system's temporary directory of its own, removed when it is dropped.
    pub fn new(url: &url::Url, options: &[(String, String)]) -> Result<Self, Error> {
        let (store, prefix) = object_store_of(url, options)?;
        let url = url.as_str().trim_end_matches('/').to_string();
        Ok(Self { store, prefix, url, local: LocalFolder::new("checkpoints") })
    }

    fn object(&self, id: u64, name: &str) -> ObjectPath {
        match shared_file(name) {
            Some((other, file)) => self.object(other, &file),
            None => self.prefix.clone().join(format!("chk-{id}")).join(name),
        }
    }

    fn staging(&self, id: u64) -> PathBuf {
        self.local.path().join("staging").join(format!("chk-{id}"))
    }

    fn put(&self, id: u64, name: &str, bytes: Vec<u8>) -> Result<(), Error> {
        upload(&self.store, self.object(id, name), bytes)?.map_err(io_at(self.at(id, name)))
    }
}

impl Folders for ObjectStorage {
    fn location(&self) -> String {
        self.url.clone()
    }

    fn list(&self) -> Result<Vec<(u64, Vec<String>)>, Error> {
        let objects = list(&self.store, &self.prefix)?.map_err(io_at(PathBuf::from(&self.url)))?;
        let mut ids: BTreeMap<u64, Vec<String>> = BTreeMap::new();
        for object in objects {
            let rel = rel(&self.prefix, &object);
            let Some((folder, name)) = rel.split_once('/') else { continue };
            if let Some(id) = folder.strip_prefix("chk-").and_then(|n| n.parse().ok()) {
                ids.entry(id).or_default().push(name.to_string());
            }
        }
        Ok(ids.into_iter().rev().collect())
    }

    fn at(&self, id: u64, name: &str) -> PathBuf {
        match shared_file(name) {
            Some((other, file)) => self.at(other, &file),
            None => object_url(&self.url, &format!("chk-{id}/{name}")),
        }
    }

    fn read(&self, id: u64, name: &str) -> Result<Vec<u8>, Error> {
        get(&self.store, &self.object(id, name))?.map_err(io_at(self.at(id, name)))
    }

    /// Downloads the files into the restore folder, checking each.
    fn fetch(&self, id: u64, files: &[StateFile]) -> Result<PathBuf, Error> {
        let dir = self.local.path().join("restore").join(format!("chk-{id}"));
        // Made first: shared files are named through it (`../chk-<n>/…`).
        std::fs::create_dir_all(&dir).map_err(Error::checkpoint_io(&dir))?;
        for f in files {
            let bytes = self.read(id, &f.name)?;
            check(&self.at(id, &f.name), &bytes, f)?;
            let file = dir.join(&f.name);
            if let Some(parent) = file.parent() {
                std::fs::create_dir_all(parent).map_err(Error::checkpoint_io(parent))?;
            }
            std::fs::write(&file, &bytes).map_err(Error::checkpoint_io(&file))?;
        }
        Ok(dir)
    }

    fn delete(&self, id: u64, name: &str) -> Result<(), Error> {
        let (store, object) = (self.store.clone(), self.object(id, name));
        match block(async move { store.delete(&object).await })? {
            Err(object_store::Error::NotFound { .. }) | Ok(()) => Ok(()),
            Err(e) => Err(io_at(self.at(id, name))(e)),
        }
    }

    fn delete_folder(&self, id: u64, _emptied: bool) -> Result<(), Error> {
        // An object store has no folders; what may be left is the staging one.
        let _ = std::fs::remove_dir_all(self.staging(id));
        Ok(())
    }
}

impl CheckpointStorage for ObjectStorage {
    fn checkpoint_dir(&self, id: u64) -> Result<PathBuf, Error> {
        let dir = self.staging(id);
        std::fs::create_dir_all(&dir).map_err(Error::checkpoint_io(&dir))?;
        Ok(dir)
    }

    fn complete(&self, metadata: &CheckpointMetadata) -> Result<(), Error> {
        let id = metadata.id;
        let dir = self.staging(id);
        // A file of an earlier checkpoint (`../chk-<n>/…`) was uploaded with it.
        for f in metadata.files.iter().filter(|f| shared_file(&f.name).is_none()) {
            let path = dir.join(&f.name);
            upload_file(&self.store, self.object(id, &f.name), &path)?.map_err(io_at(self.at(id, &f.name)))?;
        }
        self.put(id, METADATA, encode_metadata(metadata)?)?;
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }

    fn find(&self) -> Result<Found, Error> {
        find_in(self)
    }

    fn discard(&self, id: u64) -> Result<(), Error> {
        discard_in(self, id)
    }

    fn next_id(&self) -> Result<u64, Error> {
        Ok(self.list()?.first().map_or(1, |(id, _)| id + 1))
    }

    fn retain(&self, keep: usize) -> Result<(), Error> {
        retain_in(self, keep)
    }
}
