//! The folder a transactional file sink writes its parts into: a local
//! directory, or a prefix on an object store. The sink's protocol is the
//! same on both; what each step is differs:
//!
//! | step | local directory | object store |
//! | --- | --- | --- |
//! | part being written | hidden file in the directory | file in a local staging folder |
//! | seal (pre-commit) | fsync, rename to the pending name, fsync the directory | upload as the pending object |
//! | publish (commit) | rename pending → final, fsync the directory | copy pending → final, delete pending |
//!
//! An object store has no rename: a commit copies, then deletes. A crash
//! between the two leaves both; the next commit of the same part finds the
//! final object and deletes the pending one, and recovery deletes hidden
//! leftovers. Every method blocks (the sink calls them on the blocking
//! pool).

use crate::connectors::local_folder::LocalFolder;
use crate::connectors::store::{Location, block, object_store_of, object_url};
use crate::error::Error;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub(super) fn io_err(op: &'static str, file: &Path) -> impl FnOnce(io::Error) -> Error {
    move |source| Error::SinkIo { op, path: file.to_path_buf(), source }
}

fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err("sync directory", dir))
}

/// Where a sink's parts go.
#[derive(Debug)]
pub(super) enum Folder {
    Local(PathBuf),
    Store(StoreFolder),
}

#[derive(Debug)]
pub(super) struct StoreFolder {
    url: String,
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    staging: LocalFolder,
}

impl Folder {
    /// The folder `dir` names (a path, or an object store's URL), created
    /// if missing.
    pub(super) fn open(dir: &Path, options: &[(String, String)]) -> Result<Self, Error> {
        match Location::of(dir)? {
            Location::Local(dir) => {
                fs::create_dir_all(&dir).map_err(io_err("create directory", &dir))?;
                Ok(Self::Local(dir))
            }
            Location::Url(url) => {
                let (store, prefix) = object_store_of(&url, options)?;
                let staging = LocalFolder::new("sink");
                fs::create_dir_all(staging.path()).map_err(io_err("create directory", staging.path()))?;
                Ok(Self::Store(StoreFolder { url: url.to_string(), store, prefix, staging }))
            }
        }
    }

    /// How messages name `name` in the folder.
    pub(super) fn display(&self, name: &str) -> PathBuf {
        match self {
            Self::Local(dir) => dir.join(name),
            Self::Store(s) => object_url(&s.url, name),
        }
    }

    /// The names in the folder (not in sub-folders).
    pub(super) fn list(&self) -> Result<Vec<String>, Error> {
        match self {
            Self::Local(dir) => {
                let mut names = Vec::new();
                for entry in fs::read_dir(dir).map_err(io_err("list", dir))? {
                    let entry = entry.map_err(io_err("list", dir))?;
                    names.extend(entry.file_name().to_str().map(String::from));
                }
                Ok(names)
            }
            Self::Store(s) => {
                let (store, prefix) = (s.store.clone(), s.prefix.clone());
                let listed = block(async move { store.list_with_delimiter(Some(&prefix)).await })?;
                let listed = listed.map_err(s.err("list", ""))?;
                Ok(listed.objects.iter().filter_map(|o| o.location.filename().map(String::from)).collect())
            }
        }
    }

    /// Creates the part file `name` to write (in the folder, or staged).
    pub(super) fn create(&self, name: &str) -> Result<(PathBuf, File), Error> {
        let path = match self {
            Self::Local(dir) => dir.join(name),
            Self::Store(s) => s.staging.path().join(name),
        };
        let file = fs::OpenOptions::new().write(true).create_new(true).open(&path);
        Ok((path.clone(), file.map_err(io_err("create", &path))?))
    }

    /// Makes the written part file at `path` the folder's `pending`.
    pub(super) fn seal(&self, file: File, path: &Path, pending: &str) -> Result<(), Error> {
        file.sync_all().map_err(io_err("sync", path))?;
        drop(file);
        match self {
            Self::Local(dir) => {
                fs::rename(path, dir.join(pending)).map_err(io_err("rename", path))?;
                sync_dir(dir)
            }
            Self::Store(s) => {
                let bytes = fs::read(path).map_err(io_err("read", path))?;
                let (store, object) = (s.store.clone(), s.object(pending));
                block(async move { store.put(&object, PutPayload::from(bytes)).await })?
                    .map_err(s.err("upload", pending))?;
                fs::remove_file(path).map_err(io_err("remove", path))
            }
        }
    }

    /// Renames `pending` to `file`; `false` if `pending` is not there.
    pub(super) fn publish(&self, pending: &str, file: &str) -> Result<bool, Error> {
        match self {
            Self::Local(dir) => match fs::rename(dir.join(pending), dir.join(file)) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(io_err("commit (rename)", &dir.join(pending))(e)),
            },
            Self::Store(s) => {
                let (store, from, to) = (s.store.clone(), s.object(pending), s.object(file));
                match block(async move { store.copy(&from, &to).await })? {
                    Ok(()) => {}
                    Err(object_store::Error::NotFound { .. }) => return Ok(false),
                    Err(e) => return Err(s.err("commit (copy)", pending)(e)),
                }
                self.remove(pending).map(|_| true)
            }
        }
    }

    /// Whether `name` is in the folder.
    pub(super) fn exists(&self, name: &str) -> Result<bool, Error> {
        match self {
            Self::Local(dir) => dir.join(name).try_exists().map_err(io_err("look up", &dir.join(name))),
            Self::Store(s) => {
                let (store, object) = (s.store.clone(), s.object(name));
                match block(async move { store.head(&object).await })? {
                    Ok(_) => Ok(true),
                    Err(object_store::Error::NotFound { .. }) => Ok(false),
                    Err(e) => Err(s.err("look up", name)(e)),
                }
            }
        }
    }

    /// Removes `name`; `false` if it was not there.
    pub(super) fn remove(&self, name: &str) -> Result<bool, Error> {
        match self {
            Self::Local(dir) => match fs::remove_file(dir.join(name)) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(io_err("remove", &dir.join(name))(e)),
            },
            Self::Store(s) => {
                let (store, object) = (s.store.clone(), s.object(name));
                match block(async move { store.delete(&object).await })? {
                    Ok(()) => Ok(true),
                    Err(object_store::Error::NotFound { .. }) => Ok(false),
                    Err(e) => Err(s.err("remove", name)(e)),
                }
            }
        }
    }

    /// Makes the renames and removals so far durable (a local directory's
    /// fsync; an object store's are when they return).
    pub(super) fn sync(&self) -> Result<(), Error> {
        match self {
            Self::Local(dir) => sync_dir(dir),
            Self::Store(_) => Ok(()),
        }
    }
}

impl StoreFolder {
    fn object(&self, name: &str) -> ObjectPath {
        self.prefix.clone().join(name)
    }

    fn err(&self, op: &'static str, name: &str) -> impl FnOnce(object_store::Error) -> Error + use<> {
        let path = object_url(&self.url, name);
        move |e| Error::SinkIo { op, path, source: io::Error::other(e) }
    }
}
