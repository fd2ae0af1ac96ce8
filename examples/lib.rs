//! Runnable examples of dataflow; see the `[[example]]` entries of this
//! package (`cargo run --release --example wordcount`).
//!
//! The pipelines of some examples live here so that tests can run them.

pub mod kafka;
pub mod nexmark;
pub mod orders;
pub mod rng;
pub mod shop;
pub mod twitter;
