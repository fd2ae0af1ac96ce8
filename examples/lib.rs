//! Runnable examples of dataflow; see the `[[example]]` entries of this
//! package (`cargo run --release --example wordcount`).
