//! Criterion benchmarks of dataflow (`cargo bench`); see the `[[bench]]`
//! entries of this package.

/// A record of the source benchmarks (`file_source`, `kafka_source`): an
/// order of four fields, as CSV or JSON.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Order {
    /// Its number.
    pub id: u64,
    /// Who ordered.
    pub customer: String,
    /// How much.
    pub amount: f64,
    /// When.
    pub time: i64,
}

/// Order `i`.
pub fn order(i: u64) -> Order {
    Order { id: i, customer: format!("customer-{}", i % 997), amount: (i % 1000) as f64 / 10.0, time: i as i64 * 3 }
}
