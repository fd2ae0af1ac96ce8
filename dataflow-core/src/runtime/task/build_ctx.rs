//! What an operator instance is built with: its info, counters, side
//! outputs, where it acknowledges barriers, and the checkpoint files it
//! restores from.

use crate::checkpoint::Acks;
use crate::error::Error;
use crate::operator::OperatorInfo;
use crate::runtime::metrics::OperatorCounters;
use crate::runtime::push::SideTarget;
use std::sync::Arc;

/// What an operator instance is built with.
pub(crate) struct BuildCtx {
    pub(crate) info: Arc<OperatorInfo>,
    pub(crate) counters: Arc<OperatorCounters>,
    pub(crate) batch_size: usize,
    pub(crate) sides: Vec<Box<dyn SideTarget>>,
    /// Where the instance acknowledges checkpoint barriers (with checkpointing).
    pub(crate) acks: Option<Acks>,
    /// The checkpoint files of this operator to restore from (every
    /// subtask's: keyed state takes its key groups out of them).
    pub(crate) restore: Vec<std::path::PathBuf>,
    /// This instance's own parts among them (a source's position, a sink's
    /// committables): its subtask's, or when `rescaled` those of every old
    /// subtask that maps to it.
    pub(crate) own: Vec<std::path::PathBuf>,
    /// The restored checkpoint is older than complete ones that are
    /// damaged (a fallback that was allowed): sinks remove what they
    /// committed after it.
    pub(crate) past_damaged: bool,
    /// Restored from a savepoint taken at another parallelism.
    pub(crate) rescaled: bool,
    /// The operator-state files of this operator, one per old subtask in
    /// subtask order (this instance takes its share out of them).
    pub(crate) operator_state: Vec<std::path::PathBuf>,
}

fn read_parts(files: &[std::path::PathBuf]) -> Result<Vec<Vec<u8>>, Error> {
    (files.iter()).map(|f| std::fs::read(f).map_err(Error::checkpoint_io(f))).collect()
}

impl BuildCtx {
    /// This instance's own parts of the restored checkpoint.
    pub(crate) fn own_parts(&self) -> Result<Vec<Vec<u8>>, Error> {
        read_parts(&self.own)
    }

    /// Every subtask's part of the restored checkpoint (a rescaled source's).
    pub(crate) fn all_parts(&self) -> Result<Vec<Vec<u8>>, Error> {
        read_parts(&self.restore)
    }
}
