//! Procedural macros of dataflow.
//!
//! This crate will hold the `#[operator]` attribute (parse → model →
//! expand), which turns an ordinary function into an operator of
//! `dataflow-core`'s operator model. Until it lands, operators are written
//! by implementing `dataflow_core::Operator` directly, which is also how the
//! built-ins are written today.
