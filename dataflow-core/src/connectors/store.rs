//! Where bytes live: a local path (plain, or a `file://` URL) or an object
//! store's URL (`s3://`, `gs://`, `az://`), and the object store that
//! serves a URL, configured from the environment and from options (by
//! `object_store`'s config key names, `aws_endpoint`, `aws_allow_http`, …;
//! `StreamEnvironment::set_storage_options`). The file source reads
//! through it, checkpoint and savepoint storage write through it.

use crate::error::Error;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, ObjectStoreScheme, PutPayload, WriteMultipart};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// A location (of checkpoints, savepoints, input files), by its form.
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

/// `builder` configured with `options` (by `object_store`'s config key
/// names) through `with`.
fn configure<B, K: std::str::FromStr<Err = object_store::Error>>(
    mut builder: B,
    url: &url::Url,
    options: &[(String, String)],
    with: impl Fn(B, K, &str) -> B,
) -> Result<B, Error> {
    for (k, v) in options {
        let key = k.to_ascii_lowercase().parse().map_err(|e| url_err(url, format!("option {k}: {e}")))?;
        builder = with(builder, key, v);
    }
    Ok(builder)
}

/// The object store of `url` (its bucket or container) and the path in it,
/// configured from the environment and then `options`.
pub(crate) fn object_store_of(
    url: &url::Url,
    options: &[(String, String)],
) -> Result<(Arc<dyn ObjectStore>, ObjectPath), Error> {
    use object_store::{aws, azure, gcp};
    let (scheme, path) = ObjectStoreScheme::parse(url).map_err(|e| url_err(url, e.to_string()))?;
    let built = |e: object_store::Error| url_err(url, e.to_string());
    let u = url.as_str();
    let store: Arc<dyn ObjectStore> = match scheme {
        ObjectStoreScheme::AmazonS3 => {
            let b =
                configure(aws::AmazonS3Builder::from_env().with_url(u), url, options, |b, k, v| b.with_config(k, v));
            Arc::new(b?.build().map_err(built)?)
        }
        ObjectStoreScheme::GoogleCloudStorage => {
            let b = gcp::GoogleCloudStorageBuilder::from_env().with_url(u);
            Arc::new(configure(b, url, options, |b, k, v| b.with_config(k, v))?.build().map_err(built)?)
        }
        ObjectStoreScheme::MicrosoftAzure => {
            let b = azure::MicrosoftAzureBuilder::from_env().with_url(u);
            Arc::new(configure(b, url, options, |b, k, v| b.with_config(k, v))?.build().map_err(built)?)
        }
        other => return Err(url_err(url, format!("{other:?} is not a supported object store"))),
    };
    let path = ObjectPath::parse(path.as_ref()).map_err(|e| url_err(url, e.to_string()))?;
    Ok((store, path))
}

/// Runs `f` on the object stores' runtime (made once, on first use) and
/// waits for it. Call it from a blocking thread (or any thread that is
/// not a runtime's worker).
pub(crate) fn block<T: Send + 'static>(f: impl Future<Output = T> + Send + 'static) -> Result<T, Error> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("dataflow-object-store")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    });
    let runtime =
        runtime.as_ref().map_err(|e| Error::Internal(format!("cannot start the object store's runtime: {e}")))?;
    let task = runtime.spawn(f);
    futures::executor::block_on(task).map_err(|e| Error::Internal(format!("object store task: {e}")))
}

/// Files from this size on are uploaded in parts.
const MULTIPART_FROM: usize = 16 << 20;
/// Parts of one multipart upload in flight at once, at most.
const PARTS_IN_FLIGHT: usize = 4;

/// Uploads `bytes` as `object` (in parts when large; an unfinished
/// multipart upload is aborted). Blocks: call it where [`block`] may be.
pub(crate) fn upload(
    store: &Arc<dyn ObjectStore>,
    object: ObjectPath,
    bytes: Vec<u8>,
) -> Result<Result<(), object_store::Error>, Error> {
    let len = bytes.len();
    let mut at = 0;
    upload_pieces(store, object, len, move || {
        let piece = &bytes[at..(at + MULTIPART_FROM).min(len)];
        at += piece.len();
        Ok(piece.to_vec())
    })
}

/// Uploads the local file at `path` as `object`, reading it a part at a
/// time (a checkpoint's state file can be as large as the state).
/// Blocks: call it where [`block`] may be.
pub(crate) fn upload_file(
    store: &Arc<dyn ObjectStore>,
    object: ObjectPath,
    path: &Path,
) -> Result<Result<(), object_store::Error>, Error> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(Error::checkpoint_io(path))?;
    let len = file.metadata().map_err(Error::checkpoint_io(path))?.len() as usize;
    let path = path.to_path_buf();
    upload_pieces(store, object, len, move || {
        let mut piece = Vec::with_capacity(MULTIPART_FROM);
        (&mut file).take(MULTIPART_FROM as u64).read_to_end(&mut piece).map_err(|e| object_store::Error::Generic {
            store: "local file",
            source: format!("{}: {e}", path.display()).into(),
        })?;
        Ok(piece)
    })
}

/// Uploads `len` bytes as `object`, handed out by `next` (up to
/// [`MULTIPART_FROM`] a call): in one request when short, in parts when
/// not (an unfinished multipart upload is aborted).
fn upload_pieces(
    store: &Arc<dyn ObjectStore>,
    object: ObjectPath,
    len: usize,
    mut next: impl FnMut() -> Result<Vec<u8>, object_store::Error> + Send + 'static,
) -> Result<Result<(), object_store::Error>, Error> {
    let store = store.clone();
    block(async move {
        if len < MULTIPART_FROM {
            return store.put(&object, PutPayload::from(next()?)).await.map(drop);
        }
        let mut upload = WriteMultipart::new(store.put_multipart(&object).await?);
        let written = async {
            let mut sent = 0;
            while sent < len {
                let piece = next()?;
                if piece.is_empty() {
                    break; // the file got shorter: what it has is sent
                }
                upload.wait_for_capacity(PARTS_IN_FLIGHT).await?;
                upload.write(&piece);
                sent += piece.len();
            }
            Ok::<_, object_store::Error>(())
        };
        match written.await {
            Ok(()) => upload.finish().await.map(drop),
            Err(e) => {
                // No unfinished upload is left behind (best effort).
                if let Err(abort) = upload.abort().await {
                    tracing::warn!(error = %abort, "cannot abort a multipart upload");
                }
                Err(e)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    /// A file in several parts (and a short one in one request) arrives
    /// whole, byte for byte.
    #[test]
    fn a_file_is_uploaded_a_part_at_a_time() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let dir = tempfile::tempdir().unwrap();
        for (name, len) in [("long", 2 * MULTIPART_FROM + 12_345), ("short", 1_000), ("empty", 0)] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let path = dir.path().join(name);
            std::fs::write(&path, &bytes).unwrap();
            upload_file(&store, ObjectPath::from(name), &path).unwrap().unwrap();
            let s = store.clone();
            let got = block(async move { s.get(&ObjectPath::from(name)).await?.bytes().await }).unwrap().unwrap();
            assert!(got.as_ref() == bytes.as_slice(), "{name}: {} bytes back, {len} sent", got.len());
        }
    }
}
