//! What travels on a channel: records (one by one, or in [`Batch`]es) and
//! control elements (watermarks, checkpoint barriers, stream status, end of
//! input), with the types they are made of ([`Timestamp`], [`Watermark`],
//! [`CheckpointBarrier`]). This is the lowest layer of the crate.
//!
//! A channel carries [`StreamElement`]s: records, watermarks, checkpoint
//! barriers, stream-status changes and the end of input. On the wire the
//! runtime groups consecutive records into a [`Batch`](crate::Batch), so
//! a channel operation or a future is paid per batch and a record costs a
//! function call; control elements ([`Control`]) travel on their own, and
//! every batch is flushed before one is sent.

mod barrier;
mod batch;
mod watermark;

pub use barrier::{BarrierKind, CheckpointBarrier, CheckpointingMode};
pub use batch::{Batch, Drain};
pub use watermark::{Timestamp, Watermark};

pub(crate) const NO_TIMESTAMP: Timestamp = Timestamp::MIN;

/// A value with an optional event timestamp (milliseconds since the epoch).
///
/// ```
/// use dataflow_core::Record;
/// let r = Record::with_timestamp("tweet", 1_000);
/// assert_eq!(r.timestamp(), Some(1_000));
/// assert_eq!(r.map(str::len).value, 5);
/// assert_eq!(Record::new(1).timestamp(), None);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Record<T> {
    /// The payload.
    pub value: T,
    // `Timestamp::MIN` means "none": it keeps a record 8 bytes smaller than
    // an `Option<i64>` would.
    timestamp: Timestamp,
}

impl<T> Record<T> {
    /// A record without a timestamp.
    ///
    /// ```
    /// assert_eq!(dataflow_core::Record::new(3).value, 3);
    /// ```
    #[inline]
    pub fn new(value: T) -> Self {
        Self { value, timestamp: NO_TIMESTAMP }
    }

    /// A record with an event timestamp. `Timestamp::MIN` is reserved and
    /// reads back as "no timestamp".
    ///
    /// ```
    /// assert_eq!(dataflow_core::Record::with_timestamp(3, 7).timestamp(), Some(7));
    /// ```
    #[inline]
    pub fn with_timestamp(value: T, timestamp: Timestamp) -> Self {
        Self { value, timestamp }
    }

    /// A record that carries `timestamp` if it is `Some`.
    ///
    /// ```
    /// use dataflow_core::Record;
    /// assert_eq!(Record::with_optional_timestamp(1, None), Record::new(1));
    /// ```
    #[inline]
    pub fn with_optional_timestamp(value: T, timestamp: Option<Timestamp>) -> Self {
        Self { value, timestamp: timestamp.unwrap_or(NO_TIMESTAMP) }
    }

    /// The event timestamp, if the record has one.
    ///
    /// ```
    /// assert_eq!(dataflow_core::Record::new(()).timestamp(), None);
    /// ```
    #[inline]
    pub fn timestamp(&self) -> Option<Timestamp> {
        (self.timestamp != NO_TIMESTAMP).then_some(self.timestamp)
    }

    /// Replaces the value, keeping the timestamp.
    ///
    /// ```
    /// let r = dataflow_core::Record::with_timestamp(2, 9).map(|v| v * 10);
    /// assert_eq!((r.value, r.timestamp()), (20, Some(9)));
    /// ```
    #[inline]
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Record<U> {
        Record { value: f(self.value), timestamp: self.timestamp }
    }

    /// A record with `value` and this record's timestamp.
    ///
    /// ```
    /// let r = dataflow_core::Record::with_timestamp(2, 9);
    /// assert_eq!(r.derive("x").timestamp(), Some(9));
    /// ```
    #[inline]
    pub fn derive<U>(&self, value: U) -> Record<U> {
        Record { value, timestamp: self.timestamp }
    }
}

/// Whether a channel currently produces data. An idle channel does not hold
/// back the watermark of the task that reads it.
///
/// ```
/// assert_ne!(dataflow_core::StreamStatus::Idle, dataflow_core::StreamStatus::Active);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StreamStatus {
    /// The channel produces records and watermarks.
    Active,
    /// The channel produces nothing for now.
    Idle,
}

/// Any element that is not a record.
///
/// ```
/// use dataflow_core::{Control, time::Watermark};
/// assert!(matches!(Control::Watermark(Watermark(5)), Control::Watermark(Watermark(5))));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Control {
    /// Event time has reached this point on the channel.
    Watermark(Watermark),
    /// A checkpoint barrier.
    Barrier(CheckpointBarrier),
    /// The channel became idle or active.
    Status(StreamStatus),
    /// The channel will carry nothing more.
    EndOfInput,
}

/// One element of a stream.
///
/// Sources built with [`crate::StreamEnvironment::from_elements`] produce
/// streams from these, which lets a test script watermarks and idleness.
///
/// ```
/// use dataflow_core::{StreamElement, Record, time::Watermark};
/// let e: StreamElement<u8> = StreamElement::Watermark(Watermark(10));
/// assert!(e.into_record().is_err());
/// assert!(StreamElement::Record(Record::new(1u8)).into_record().is_ok());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamElement<T> {
    /// A record.
    Record(Record<T>),
    /// A watermark.
    Watermark(Watermark),
    /// A checkpoint barrier.
    Barrier(CheckpointBarrier),
    /// A change of stream status.
    Status(StreamStatus),
    /// The end of the stream.
    EndOfInput,
}

impl<T> StreamElement<T> {
    /// The record, or the control element if this is not a record.
    ///
    /// ```
    /// use dataflow_core::{StreamElement, Control};
    /// assert_eq!(StreamElement::<u8>::EndOfInput.into_record(), Err(Control::EndOfInput));
    /// ```
    pub fn into_record(self) -> Result<Record<T>, Control> {
        match self {
            StreamElement::Record(r) => Ok(r),
            StreamElement::Watermark(w) => Err(Control::Watermark(w)),
            StreamElement::Barrier(b) => Err(Control::Barrier(b)),
            StreamElement::Status(s) => Err(Control::Status(s)),
            StreamElement::EndOfInput => Err(Control::EndOfInput),
        }
    }
}

impl<T> From<Control> for StreamElement<T> {
    fn from(c: Control) -> Self {
        match c {
            Control::Watermark(w) => StreamElement::Watermark(w),
            Control::Barrier(b) => StreamElement::Barrier(b),
            Control::Status(s) => StreamElement::Status(s),
            Control::EndOfInput => StreamElement::EndOfInput,
        }
    }
}

/// The data a stream can carry: owned, cloneable (for broadcast and
/// fan-out), sendable between tasks, and serializable with serde (records
/// in flight become channel state in unaligned checkpoints, and cross the
/// network between processes). Any type with these bounds is `Data`;
/// `#[derive(Clone, serde::Serialize, serde::Deserialize)]` is usually all
/// it takes.
///
/// ```
/// #[derive(Clone, serde::Serialize, serde::Deserialize)]
/// struct Click { user: String, at: i64 }
///
/// fn takes<T: dataflow_core::Data>(_: T) {}
/// takes(String::from("any owned, Clone + Send + serde type"));
/// takes(Click { user: "ada".into(), at: 7 });
/// ```
pub trait Data: Clone + Send + serde::Serialize + serde::de::DeserializeOwned + 'static {}
impl<T: Clone + Send + serde::Serialize + serde::de::DeserializeOwned + 'static> Data for T {}
