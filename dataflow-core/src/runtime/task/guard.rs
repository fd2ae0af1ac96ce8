//! Running user code: its error or panic becomes an [`Error`] that names
//! the operator and subtask, so one bad record or bug fails the job with a
//! clear message instead of tearing down the process.

use crate::error::Error;
use crate::operator::{BoxError, OperatorInfo};
use futures::FutureExt;
use std::panic::AssertUnwindSafe;

/// Turns a panic payload into its message.
pub(crate) fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(p) => p.downcast_ref::<&str>().map_or_else(|| "(no message)".to_string(), |s| s.to_string()),
    }
}

/// Runs user code, turning its error or panic into an [`Error`] that names
/// the operator and subtask.
pub(crate) fn guard<R>(info: &OperatorInfo, f: impl FnOnce() -> Result<R, BoxError>) -> Result<R, Error> {
    match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(|source| failed(info, source)),
        Err(p) => Err(panicked(info, p)),
    }
}

/// [`guard`] for async user code.
pub(crate) async fn guard_async<R>(
    info: &OperatorInfo,
    f: impl std::future::Future<Output = Result<R, BoxError>>,
) -> Result<R, Error> {
    match AssertUnwindSafe(f).catch_unwind().await {
        Ok(r) => r.map_err(|source| failed(info, source)),
        Err(p) => Err(panicked(info, p)),
    }
}

fn failed(info: &OperatorInfo, source: BoxError) -> Error {
    Error::OperatorFailed { operator: info.name.clone(), subtask: info.subtask, parallelism: info.parallelism, source }
}

pub(crate) fn panicked(info: &OperatorInfo, payload: Box<dyn std::any::Any + Send>) -> Error {
    Error::OperatorPanicked {
        operator: info.name.clone(),
        subtask: info.subtask,
        parallelism: info.parallelism,
        message: panic_message(payload),
    }
}
