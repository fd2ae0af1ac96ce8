//! Building and running a job: the typed API stores a factory per node in
//! the graph ([`factory`]); [`run`] resolves the physical plan, builds the
//! channels, operator instances and tasks, restores them from a checkpoint
//! or savepoint, runs them to the end and restarts after a failure.

pub(crate) mod factory;
mod run;

pub(crate) use run::{JobConfig, RestoreSettings, run};
