//! The parts an operator instance writes for a checkpoint, and their
//! names in the checkpoint's folder and in `_metadata`.

use super::storage::{OPERATOR_STATE, StateFile};
use crate::error::Error;
use crate::operator::OperatorInfo;
use dataflow_state::operator_state::OperatorSnapshot;
use dataflow_state::table::StateSnapshot;
use std::path::Path;

/// What an operator instance wrote for a checkpoint.
pub(crate) enum Part {
    /// Nothing (no state).
    Nothing,
    /// The synchronous part of a state snapshot.
    State(StateSnapshot),
    /// Bytes: a source's position, a sink's committables.
    Bytes(Vec<u8>),
}

/// Where a part goes: its file name and the operator it is listed under.
pub(crate) struct PartFile {
    pub(crate) name: String,
    pub(crate) operator: String,
    pub(crate) subtask: u32,
}

impl PartFile {
    /// Writes `part` into `dir`; returns the file as `_metadata` lists it
    /// (none for an empty part).
    pub(crate) fn write(&self, dir: &Path, part: Part) -> Result<Vec<StateFile>, Error> {
        let path = dir.join(&self.name);
        match part {
            Part::Nothing => return Ok(Vec::new()),
            Part::State(s) => {
                s.write_to(&path)?;
            }
            Part::Bytes(p) if p.is_empty() => return Ok(Vec::new()),
            Part::Bytes(p) => {
                std::fs::write(&path, p).map_err(Error::checkpoint_io(&path))?;
            }
        }
        Ok(vec![StateFile::of(dir, &self.name, &self.operator, self.subtask)?])
    }

    /// Writes the instance's operator state into `dir` (always in full,
    /// never part of a chain), beside its other part.
    pub(crate) fn write_operator_state(&self, dir: &Path, state: &OperatorSnapshot) -> Result<StateFile, Error> {
        let name = format!("{}{OPERATOR_STATE_FILE}", self.name);
        state.write_to(&dir.join(&name))?;
        StateFile::of(dir, &name, &format!("{}{OPERATOR_STATE}", self.operator), self.subtask)
    }
}

/// What marks the `operator` under which a task's channel state is listed
/// in `_metadata` (apart from the operator's own state files): the state
/// id of the task's head, then this.
pub(crate) const CHANNELS: &str = "#channels";

/// The suffix of an operator-state file's name (after its part's name).
const OPERATOR_STATE_FILE: &str = "-os";

/// The name of a task's channel-state file (the task named by its head).
pub(crate) fn channel_state_name(info: &OperatorInfo) -> String {
    format!("ch{}-{}", info.operator_index, info.subtask)
}

/// The name of an operator instance's part in a checkpoint's folder.
pub(crate) fn part_name(info: &OperatorInfo) -> String {
    format!("op{}-{}", info.operator_index, info.subtask)
}
