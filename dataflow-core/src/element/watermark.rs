//! Event time on the wire: timestamps and watermarks.

/// Milliseconds since the Unix epoch (event or processing time).
pub type Timestamp = i64;

/// A promise that no record with a timestamp at or below this one follows
/// on the channel (bar late data).
///
/// ```
/// use dataflow_core::time::Watermark;
/// assert!(Watermark(5) < Watermark(6));
/// assert_eq!(Watermark::MAX.0, i64::MAX);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Watermark(pub Timestamp);

impl Watermark {
    /// The watermark before any event time: nothing is known.
    pub const MIN: Watermark = Watermark(Timestamp::MIN);
    /// The watermark at the end of input: every window can fire.
    pub const MAX: Watermark = Watermark(Timestamp::MAX);
}
