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
//! The object store's I/O runs on a small runtime of its own, so the
//! storage's blocking methods can be called from the hub's blocking threads
//! and from the job's async tasks alike.

use super::savepoint::Savepoint;
use super::storage::{CheckpointMetadata, CheckpointStorage, Found, LocalStorage, METADATA};
use super::storage::{decode_metadata, encode_metadata, shared_file};
use crate::error::Error;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, ObjectStoreScheme, PutPayload, WriteMultipart};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// Files from this size on are uploaded in parts.
const MULTIPART_FROM: usize = 16 << 20;

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
    match url_of(location)? {
        None => Ok(Arc::new(LocalStorage::new(location))),
        Some(url) if url.scheme() == "file" => {
            let path = url.to_file_path().map_err(|()| url_err(&url, "not a local path"))?;
            Ok(Arc::new(LocalStorage::new(path)))
        }
        Some(url) => Ok(Arc::new(ObjectStorage::new(&url, options)?)),
    }
}

/// The URL `location` is, if it is one (`scheme://…`); a plain path is not.
pub(crate) fn url_of(location: &Path) -> Result<Option<url::Url>, Error> {
    let Some(s) = location.to_str().filter(|s| s.contains("://")) else { return Ok(None) };
    let scheme = s.split("://").next().unwrap_or_default();
    if scheme.len() < 2 || !scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) {
        return Ok(None);
    }
    url::Url::parse(s).map(Some).map_err(|e| Error::StorageUrl { url: s.to_string(), reason: e.to_string() })
}

fn url_err(url: &url::Url, reason: impl Into<String>) -> Error {
    Error::StorageUrl { url: url.to_string(), reason: reason.into() }
}

/// The object store of `url` (its bucket or container) and the path in it,
/// configured from the environment and then `options`.
pub(crate) fn object_store_of(
    url: &url::Url,
    options: &[(String, String)],
) -> Result<(Arc<dyn ObjectStore>, ObjectPath), Error> {
    use object_store::{aws, azure, gcp};
    let (scheme, path) = ObjectStoreScheme::parse(url).map_err(|e| url_err(url, e.to_string()))?;
    let bad_option = |k: &str, e: object_store::Error| url_err(url, format!("option {k}: {e}"));
    let store: Arc<dyn ObjectStore> = match scheme {
        ObjectStoreScheme::AmazonS3 => {
            let mut b = aws::AmazonS3Builder::from_env().with_url(url.as_str());
            for (k, v) in options {
                b = b.with_config(k.to_ascii_lowercase().parse().map_err(|e| bad_option(k, e))?, v);
            }
            Arc::new(b.build().map_err(|e| url_err(url, e.to_string()))?)
        }
        ObjectStoreScheme::GoogleCloudStorage => {
            let mut b = gcp::GoogleCloudStorageBuilder::from_env().with_url(url.as_str());
            for (k, v) in options {
                b = b.with_config(k.to_ascii_lowercase().parse().map_err(|e| bad_option(k, e))?, v);
            }
            Arc::new(b.build().map_err(|e| url_err(url, e.to_string()))?)
        }
        ObjectStoreScheme::MicrosoftAzure => {
            let mut b = azure::MicrosoftAzureBuilder::from_env().with_url(url.as_str());
            for (k, v) in options {
                b = b.with_config(k.to_ascii_lowercase().parse().map_err(|e| bad_option(k, e))?, v);
            }
            Arc::new(b.build().map_err(|e| url_err(url, e.to_string()))?)
        }
        other => return Err(url_err(url, format!("{other:?} is not a supported checkpoint store"))),
    };
    let path = ObjectPath::parse(path.as_ref()).map_err(|e| url_err(url, e.to_string()))?;
    Ok((store, path))
}

/// The runtime the object stores' I/O runs on (made on first use).
fn runtime() -> Result<&'static tokio::runtime::Runtime, Error> {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("dataflow-object-store")
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the object store's runtime: {e}")))?;
    Ok(RUNTIME.get_or_init(|| rt))
}

/// Runs `f` on the object store's runtime and waits for it (from a
/// blocking thread or an async task alike).
pub(crate) fn block<T: Send + 'static>(f: impl Future<Output = T> + Send + 'static) -> Result<T, Error> {
    let task = runtime()?.spawn(f);
    futures::executor::block_on(task).map_err(|e| Error::Internal(format!("object store task: {e}")))
}

/// Downloads every object under `prefix` of `url`'s store into `local`
/// (emptied first), keeping their paths below the prefix.
fn download_all(url: &url::Url, options: &[(String, String)], local: &Path) -> Result<(), Error> {
    let (store, prefix) = object_store_of(url, options)?;
    let _ = std::fs::remove_dir_all(local);
    let at = |p: &ObjectPath| PathBuf::from(format!("{}/{}", url.as_str().trim_end_matches('/'), rel(&prefix, p)));
    let objects: Vec<ObjectPath> = block({
        let (store, prefix) = (store.clone(), prefix.clone());
        async move { store.list(Some(&prefix)).map_ok(|m| m.location).try_collect().await }
    })?
    .map_err(|e| Error::CheckpointIo { path: at(&prefix), source: e.into() })?;
    for object in objects {
        let bytes = get(&store, &object).map_err(|e| Error::CheckpointIo { path: at(&object), source: e })?;
        let file = local.join(rel(&prefix, &object));
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir).map_err(Error::checkpoint_io(dir))?;
        }
        std::fs::write(&file, bytes).map_err(Error::checkpoint_io(&file))?;
    }
    Ok(())
}

/// The savepoint at `location`: a folder, or a URL whose objects are
/// downloaded into a local cache folder first (errors name the objects).
pub(crate) fn load_savepoint(location: &Path, options: &[(String, String)]) -> Result<Savepoint, Error> {
    let Some(url) = url_of(location)? else { return Savepoint::load(location) };
    if url.scheme() == "file" {
        return Savepoint::load(url.to_file_path().map_err(|()| url_err(&url, "not a local path"))?);
    }
    let name = format!("dataflow-savepoint-{:08x}", crc32c::crc32c(url.as_str().as_bytes()));
    let local = std::env::temp_dir().join(name);
    let loaded = download_all(&url, options, &local).and_then(|()| Savepoint::load(&local));
    let base = url.as_str().trim_end_matches('/');
    let named = |p: PathBuf| match p.strip_prefix(&local) {
        Ok(rest) if rest.as_os_str().is_empty() => PathBuf::from(base),
        Ok(rest) => PathBuf::from(format!("{base}/{}", rest.display())),
        Err(_) => p,
    };
    loaded.map_err(|e| match e {
        Error::Savepoint { path, message } => Error::Savepoint { path: named(path), message },
        Error::CheckpointCorrupt { path, reason } => Error::CheckpointCorrupt { path: named(path), reason },
        Error::CheckpointIo { path, source } => Error::CheckpointIo { path: named(path), source },
        e => e,
    })
}

/// `object`'s path below `prefix`.
fn rel(prefix: &ObjectPath, object: &ObjectPath) -> String {
    let (p, o) = (prefix.as_ref(), object.as_ref());
    o.strip_prefix(p).map_or(o, |r| r.trim_start_matches('/')).to_string()
}

fn get(store: &Arc<dyn ObjectStore>, object: &ObjectPath) -> Result<Vec<u8>, std::io::Error> {
    let (store, object) = (store.clone(), object.clone());
    let got = block(async move { store.get(&object).await?.bytes().await }).map_err(std::io::Error::other)?;
    Ok(got?.to_vec())
}

/// Checkpoints on an object store (see the [module docs](self)).
#[derive(Debug)]
pub struct ObjectStorage {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    /// The location as given, for messages.
    url: String,
    /// Where parts are staged before their upload, and checkpoints are
    /// downloaded to restore from.
    local: PathBuf,
}

impl ObjectStorage {
    /// Checkpoints under `url` (`s3://bucket/prefix`, `gs://…`, `az://…`),
    /// its store configured from the environment, then `options`. Parts
    /// are staged, and restored checkpoints cached, in a folder of the
    /// system's temporary directory named after the URL.
    pub fn new(url: &url::Url, options: &[(String, String)]) -> Result<Self, Error> {
        let (store, prefix) = object_store_of(url, options)?;
        let name = format!("dataflow-checkpoints-{:08x}", crc32c::crc32c(url.as_str().as_bytes()));
        let local = std::env::temp_dir().join(name);
        Ok(Self { store, prefix, url: url.as_str().trim_end_matches('/').to_string(), local })
    }

    fn object(&self, id: u64, name: &str) -> ObjectPath {
        match shared_file(name) {
            Some((other, file)) => self.object(other, &file),
            None => self.prefix.clone().join(format!("chk-{id}")).join(name),
        }
    }

    /// How messages name object `name` of checkpoint `id`.
    fn at(&self, id: u64, name: &str) -> PathBuf {
        match shared_file(name) {
            Some((other, file)) => self.at(other, &file),
            None => PathBuf::from(format!("{}/chk-{id}/{name}", self.url)),
        }
    }

    fn staging(&self, id: u64) -> PathBuf {
        self.local.join("staging").join(format!("chk-{id}"))
    }

    fn io(&self, id: u64, name: &str, e: object_store::Error) -> Error {
        Error::CheckpointIo { path: self.at(id, name), source: e.into() }
    }

    /// Every object of every checkpoint, by id: the names in its folder.
    fn listing(&self) -> Result<BTreeMap<u64, Vec<String>>, Error> {
        let (store, prefix) = (self.store.clone(), self.prefix.clone());
        let objects: Vec<ObjectPath> =
            block(async move { store.list(Some(&prefix)).map_ok(|m| m.location).try_collect().await })?
                .map_err(|e| Error::CheckpointIo { path: PathBuf::from(&self.url), source: e.into() })?;
        let mut ids: BTreeMap<u64, Vec<String>> = BTreeMap::new();
        for object in objects {
            let rel = rel(&self.prefix, &object);
            let Some((folder, name)) = rel.split_once('/') else { continue };
            if let Some(id) = folder.strip_prefix("chk-").and_then(|n| n.parse().ok()) {
                ids.entry(id).or_default().push(name.to_string());
            }
        }
        Ok(ids)
    }

    fn put(&self, id: u64, name: &str, bytes: Vec<u8>) -> Result<(), Error> {
        let (store, object) = (self.store.clone(), self.object(id, name));
        block(async move {
            if bytes.len() < MULTIPART_FROM {
                return store.put(&object, PutPayload::from(bytes)).await.map(drop);
            }
            let mut upload = WriteMultipart::new(store.put_multipart(&object).await?);
            upload.write(&bytes);
            upload.finish().await.map(drop)
        })?
        .map_err(|e| self.io(id, name, e))
    }

    fn delete(&self, id: u64, name: &str) -> Result<(), Error> {
        let (store, object) = (self.store.clone(), self.object(id, name));
        match block(async move { store.delete(&object).await })? {
            Err(object_store::Error::NotFound { .. }) | Ok(()) => Ok(()),
            Err(e) => Err(self.io(id, name, e)),
        }
    }

    /// The metadata of checkpoint `id`, if its object is whole.
    fn metadata(&self, id: u64) -> Result<CheckpointMetadata, Error> {
        let bytes = get(&self.store, &self.object(id, METADATA))
            .map_err(|e| Error::CheckpointIo { path: self.at(id, METADATA), source: e })?;
        let corrupt = |reason| Error::CheckpointCorrupt { path: self.at(id, METADATA), reason };
        let metadata = decode_metadata(&bytes).map_err(corrupt)?;
        if metadata.id != id {
            return Err(corrupt(format!("it describes checkpoint {}", metadata.id)));
        }
        Ok(metadata)
    }

    /// Downloads checkpoint `id` into the restore cache, checking every
    /// file; returns its metadata and folder there.
    fn download(&self, id: u64) -> Result<(CheckpointMetadata, PathBuf), Error> {
        let metadata = self.metadata(id)?;
        let cache = self.local.join("restore");
        let dir = cache.join(format!("chk-{id}"));
        // Made first: shared files are named through it (`../chk-<n>/…`).
        std::fs::create_dir_all(&dir).map_err(Error::checkpoint_io(&dir))?;
        for f in &metadata.files {
            let bytes = get(&self.store, &self.object(id, &f.name))
                .map_err(|e| Error::CheckpointIo { path: self.at(id, &f.name), source: e })?;
            let corrupt = |reason: String| Error::CheckpointCorrupt { path: self.at(id, &f.name), reason };
            if bytes.len() as u64 != f.len {
                return Err(corrupt(format!("{} bytes, {} expected", bytes.len(), f.len)));
            }
            if crc32c::crc32c(&bytes) != f.crc32c {
                return Err(corrupt("checksum mismatch".into()));
            }
            let file = dir.join(&f.name);
            if let Some(parent) = file.parent() {
                std::fs::create_dir_all(parent).map_err(Error::checkpoint_io(parent))?;
            }
            std::fs::write(&file, &bytes).map_err(Error::checkpoint_io(&file))?;
        }
        Ok((metadata, dir))
    }

    /// The files of other checkpoints that the complete checkpoints from
    /// `from` on list (incremental checkpoints share them).
    fn referenced(&self, ids: &BTreeMap<u64, Vec<String>>, from: u64) -> HashSet<(u64, String)> {
        let complete = ids.iter().filter(|(id, names)| **id >= from && names.iter().any(|n| n == METADATA));
        (complete.filter_map(|(id, _)| self.metadata(*id).ok()))
            .flat_map(|m| m.files.into_iter().filter_map(|f| shared_file(&f.name)))
            .collect()
    }

    /// Removes checkpoint `id` but the files in `referenced`: `_metadata`
    /// first (it is no longer a checkpoint), then the rest.
    fn remove(&self, id: u64, names: &[String], referenced: &HashSet<(u64, String)>) -> Result<(), Error> {
        let _ = std::fs::remove_dir_all(self.staging(id));
        if names.iter().any(|n| n == METADATA) {
            self.delete(id, METADATA)?;
        }
        for name in names.iter().filter(|n| *n != METADATA) {
            if !referenced.contains(&(id, name.clone())) {
                self.delete(id, name)?;
            }
        }
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
            self.put(id, &f.name, std::fs::read(&path).map_err(Error::checkpoint_io(&path))?)?;
        }
        self.put(id, METADATA, encode_metadata(metadata)?)?;
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }

    fn find(&self) -> Result<Found, Error> {
        let mut found = Found { location: self.url.clone(), ..Found::default() };
        let _ = std::fs::remove_dir_all(self.local.join("restore"));
        for (id, names) in self.listing()?.into_iter().rev() {
            if !names.iter().any(|n| n == METADATA) {
                found.skip_incomplete(id);
                continue;
            }
            match self.download(id) {
                Ok((metadata, dir)) => return Ok(found.with(metadata, dir)),
                Err(e) => found.skip_damaged(id, &e),
            }
        }
        Ok(found)
    }

    fn discard(&self, id: u64) -> Result<(), Error> {
        let ids = self.listing()?;
        let referenced = self.referenced(&ids, id);
        self.remove(id, ids.get(&id).map_or(&[][..], |n| n.as_slice()), &referenced)
    }

    fn next_id(&self) -> Result<u64, Error> {
        Ok(self.listing()?.keys().next_back().map_or(1, |id| id + 1))
    }

    fn retain(&self, keep: usize) -> Result<(), Error> {
        let ids = self.listing()?;
        let complete: Vec<u64> =
            ids.iter().rev().filter(|(_, names)| names.iter().any(|n| n == METADATA)).map(|(id, _)| *id).collect();
        let Some(&oldest_kept) = complete.get(keep.max(1) - 1).or(complete.last()) else { return Ok(()) };
        let referenced = self.referenced(&ids, oldest_kept);
        for (id, names) in ids.range(..oldest_kept) {
            self.remove(*id, names, &referenced)?;
        }
        Ok(())
    }
}
