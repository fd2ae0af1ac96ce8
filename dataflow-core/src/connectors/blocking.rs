//! Blocking file work off the async worker threads: connectors run their
//! file system calls (create, write, fsync, rename, list) on tokio's
//! blocking pool, so a slow disk stalls no other task of the job.

use crate::error::Error;

/// Runs `f` on tokio's blocking pool and waits for it without blocking the
/// async worker. A panic in `f` is resumed here, where the operator's panic
/// guard reports it.
pub(crate) async fn blocking<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> Result<R, Error> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => Ok(r),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(Error::Internal(format!("a blocking file task was cancelled: {e}"))),
    }
}

/// State a connector moves to the blocking pool for each file operation
/// and takes back afterwards (`None` while an operation runs, or after one
/// panicked).
#[derive(Debug)]
pub(crate) struct OffThread<S>(Option<S>);

impl<S: Send + 'static> OffThread<S> {
    pub(crate) fn new(state: S) -> Self {
        Self(Some(state))
    }

    /// The state, unless an operation runs (or one panicked).
    pub(crate) fn get_mut(&mut self) -> Option<&mut S> {
        self.0.as_mut()
    }

    /// Runs `f` on the state on the blocking pool.
    pub(crate) async fn run<R: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut S) -> Result<R, Error> + Send + 'static,
    ) -> Result<R, Error> {
        let mut state = self
            .0
            .take()
            .ok_or_else(|| Error::Internal("a connector was used after one of its file operations failed".into()))?;
        let (state, r) = blocking(move || {
            let r = f(&mut state);
            (state, r)
        })
        .await?;
        self.0 = Some(state);
        r
    }
}
