//! Criterion benchmarks of dataflow (`cargo bench`); see the `[[bench]]`
//! entries of this package.
