//! Batches: how records travel.
//!
//! A [`Batch`] stores its records column-wise: the values in one `Vec`, and
//! the event timestamps in another that stays empty while no record in the
//! batch has one. So a stream without event time moves its values and
//! nothing else, and a map over a batch is one pass over a `Vec<T>` whose
//! timestamps move along untouched.

use super::{NO_TIMESTAMP, Record, Timestamp};

/// A batch of records, stored as a column of values and (only when some
/// record has one) a column of timestamps.
///
/// ```
/// use dataflow_core::{Batch, Record};
/// let mut b = Batch::new();
/// b.push_value("a");
/// b.push(Record::with_timestamp("b", 7));
/// assert_eq!(b.len(), 2);
/// assert_eq!(b.timestamps(), Some(&[i64::MIN, 7][..]));
/// let records: Vec<_> = b.drain().collect();
/// assert_eq!(records, [Record::new("a"), Record::with_timestamp("b", 7)]);
/// assert!(b.is_empty());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch<T> {
    values: Vec<T>,
    // Empty, or exactly one entry per value (`NO_TIMESTAMP` for none).
    timestamps: Vec<Timestamp>,
}

impl<T> Default for Batch<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> From<Vec<T>> for Batch<T> {
    fn from(values: Vec<T>) -> Self {
        Self { values, timestamps: Vec::new() }
    }
}

impl<T> Batch<T> {
    /// An empty batch.
    pub fn new() -> Self {
        Self { values: Vec::new(), timestamps: Vec::new() }
    }

    /// An empty batch with room for `n` values.
    ///
    /// ```
    /// assert!(dataflow_core::Batch::<u8>::with_capacity(8).is_empty());
    /// ```
    pub fn with_capacity(n: usize) -> Self {
        Self { values: Vec::with_capacity(n), timestamps: Vec::new() }
    }

    /// The number of records.
    #[inline]
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the batch holds no record.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The room for values without reallocating.
    pub fn capacity(&self) -> usize {
        self.values.capacity()
    }

    /// Reserves room for `n` more values.
    pub fn reserve(&mut self, n: usize) {
        self.values.reserve(n);
    }

    #[inline]
    fn fill_timestamps(&mut self) {
        if self.timestamps.len() < self.values.len() {
            self.timestamps.resize(self.values.len(), NO_TIMESTAMP);
        }
    }

    /// Appends a value without a timestamp.
    #[inline]
    pub fn push_value(&mut self, value: T) {
        if !self.timestamps.is_empty() {
            self.timestamps.push(NO_TIMESTAMP);
        }
        self.values.push(value);
    }

    /// Appends a value with an optional timestamp.
    ///
    /// ```
    /// let mut b = dataflow_core::Batch::new();
    /// b.push_with(1, None);
    /// b.push_with(2, Some(5));
    /// assert_eq!(b.timestamp(0), None);
    /// assert_eq!(b.timestamp(1), Some(5));
    /// ```
    #[inline]
    pub fn push_with(&mut self, value: T, timestamp: Option<Timestamp>) {
        match timestamp {
            Some(ts) if ts != NO_TIMESTAMP => {
                self.fill_timestamps();
                self.timestamps.push(ts);
                self.values.push(value);
            }
            _ => self.push_value(value),
        }
    }

    /// Appends a record.
    #[inline]
    pub fn push(&mut self, record: Record<T>) {
        let ts = record.timestamp();
        self.push_with(record.value, ts);
    }

    /// Appends values without timestamps.
    ///
    /// ```
    /// let mut b = dataflow_core::Batch::new();
    /// b.extend_values(0..3);
    /// assert_eq!(b.values(), &[0, 1, 2]);
    /// ```
    #[inline]
    pub fn extend_values(&mut self, values: impl IntoIterator<Item = T>) {
        if self.timestamps.is_empty() {
            self.values.extend(values);
        } else {
            values.into_iter().for_each(|v| self.push_value(v));
        }
    }

    /// The values.
    #[inline]
    pub fn values(&self) -> &[T] {
        &self.values
    }

    /// The values, to change in place.
    ///
    /// ```
    /// let mut b = dataflow_core::Batch::from(vec![1, 2]);
    /// b.values_mut().iter_mut().for_each(|v| *v *= 10);
    /// assert_eq!(b.values(), &[10, 20]);
    /// ```
    #[inline]
    pub fn values_mut(&mut self) -> &mut [T] {
        &mut self.values
    }

    /// The timestamps (`i64::MIN` for none), or `None` when no record has one.
    #[inline]
    pub fn timestamps(&self) -> Option<&[Timestamp]> {
        (!self.timestamps.is_empty()).then_some(&self.timestamps[..])
    }

    /// The batch's values and timestamps (empty, or one per value).
    pub(crate) fn parts(&self) -> (&[T], &[Timestamp]) {
        (&self.values, &self.timestamps)
    }

    /// A batch from [`parts`](Self::parts); `None` if the lengths disagree.
    pub(crate) fn from_parts(values: Vec<T>, timestamps: Vec<Timestamp>) -> Option<Self> {
        (timestamps.is_empty() || timestamps.len() == values.len()).then_some(Self { values, timestamps })
    }

    /// The timestamp of record `i`.
    #[inline]
    pub fn timestamp(&self, i: usize) -> Option<Timestamp> {
        self.timestamps.get(i).copied().filter(|&t| t != NO_TIMESTAMP)
    }

    /// Removes every record.
    #[inline]
    pub fn clear(&mut self) {
        self.values.clear();
        self.timestamps.clear();
    }

    /// Takes every record out, in order.
    #[inline]
    pub fn drain(&mut self) -> Drain<'_, T> {
        Drain { values: self.values.drain(..), timestamps: self.timestamps.drain(..) }
    }

    /// Takes every value out, dropping the timestamps.
    ///
    /// ```
    /// let mut b = dataflow_core::Batch::from(vec![1, 2]);
    /// assert_eq!(b.drain_values().sum::<i32>(), 3);
    /// ```
    #[inline]
    pub fn drain_values(&mut self) -> std::vec::Drain<'_, T> {
        self.timestamps.clear();
        self.values.drain(..)
    }

    /// Moves every record of `other` to the end of this batch (swapping the
    /// two when this one is empty, which copies nothing).
    ///
    /// ```
    /// let mut a = dataflow_core::Batch::from(vec![1]);
    /// let mut b = dataflow_core::Batch::from(vec![2, 3]);
    /// a.append(&mut b);
    /// assert_eq!((a.len(), b.len()), (3, 0));
    /// ```
    #[inline]
    pub fn append(&mut self, other: &mut Batch<T>) {
        if self.values.is_empty() {
            std::mem::swap(self, other);
            other.clear();
            return;
        }
        if self.timestamps.is_empty() && other.timestamps.is_empty() {
            self.values.append(&mut other.values);
            return;
        }
        self.fill_timestamps();
        other.fill_timestamps();
        self.values.append(&mut other.values);
        self.timestamps.append(&mut other.timestamps);
    }

    /// Maps every value into `out`, keeping timestamps; leaves this batch empty.
    ///
    /// ```
    /// use dataflow_core::{Batch, Record};
    /// let mut b = Batch::new();
    /// b.push(Record::with_timestamp(2, 9));
    /// let mut out = Batch::new();
    /// b.map_into(&mut out, |v| v * 10);
    /// assert_eq!(out.drain().collect::<Vec<_>>(), [Record::with_timestamp(20, 9)]);
    /// ```
    #[inline]
    pub fn map_into<U>(&mut self, out: &mut Batch<U>, f: impl FnMut(T) -> U) {
        if !self.timestamps.is_empty() || !out.timestamps.is_empty() {
            self.fill_timestamps();
            out.fill_timestamps();
            out.timestamps.append(&mut self.timestamps);
        }
        if out.values.is_empty() {
            // Map in place: `Vec::into_iter().map().collect()` reuses the
            // allocation when the value layouts allow, so the batch is read
            // and written in one buffer; the output's empty buffer comes back
            // as this batch's (again in place when layouts allow).
            let spare = std::mem::take(&mut out.values);
            out.values = std::mem::take(&mut self.values).into_iter().map(f).collect();
            self.values = spare.into_iter().filter_map(|_| None).collect();
        } else {
            out.values.extend(self.values.drain(..).map(f));
        }
    }

    /// Sets each record's timestamp to `f(value, its timestamp)`, in place
    /// (the values do not move).
    ///
    /// ```
    /// let mut b = dataflow_core::Batch::from(vec![3, 4]);
    /// b.restamp(|v, old| old.or(Some(*v * 10)));
    /// assert_eq!(b.timestamps(), Some(&[30, 40][..]));
    /// b.restamp(|_, _| None);
    /// assert_eq!(b.timestamps(), None);
    /// ```
    #[inline]
    pub fn restamp(&mut self, mut f: impl FnMut(&T, Option<Timestamp>) -> Option<Timestamp>) {
        self.fill_timestamps();
        let mut any = false;
        for (v, t) in self.values.iter().zip(self.timestamps.iter_mut()) {
            let old = (*t != NO_TIMESTAMP).then_some(*t);
            *t = f(v, old).unwrap_or(NO_TIMESTAMP);
            any |= *t != NO_TIMESTAMP;
        }
        if !any {
            self.timestamps.clear(); // no record has one: no column
        }
    }

    /// Keeps the records whose value satisfies `f`, in order.
    ///
    /// ```
    /// let mut b = dataflow_core::Batch::from(vec![1, 2, 3, 4]);
    /// b.retain(|v| v % 2 == 0);
    /// assert_eq!(b.values(), &[2, 4]);
    /// ```
    #[inline]
    pub fn retain(&mut self, mut f: impl FnMut(&T) -> bool) {
        if self.timestamps.is_empty() {
            self.values.retain(f);
            return;
        }
        let mut kept = 0;
        for i in 0..self.values.len() {
            if f(&self.values[i]) {
                self.values.swap(kept, i);
                self.timestamps[kept] = self.timestamps[i];
                kept += 1;
            }
        }
        self.values.truncate(kept);
        self.timestamps.truncate(kept);
    }
}

impl<T: Clone> Batch<T> {
    /// Appends clones of the records of `other`.
    ///
    /// ```
    /// let mut a = dataflow_core::Batch::from(vec![1]);
    /// a.extend_from_batch(&dataflow_core::Batch::from(vec![2]));
    /// assert_eq!(a.values(), &[1, 2]);
    /// ```
    pub fn extend_from_batch(&mut self, other: &Batch<T>) {
        if self.timestamps.is_empty() && other.timestamps.is_empty() {
            self.values.extend_from_slice(&other.values);
            return;
        }
        self.fill_timestamps();
        self.values.extend_from_slice(&other.values);
        match other.timestamps() {
            Some(ts) => self.timestamps.extend_from_slice(ts),
            None => self.fill_timestamps(),
        }
    }
}

impl<T> FromIterator<Record<T>> for Batch<T> {
    fn from_iter<I: IntoIterator<Item = Record<T>>>(iter: I) -> Self {
        let mut b = Batch::new();
        iter.into_iter().for_each(|r| b.push(r));
        b
    }
}

/// The records taken out of a batch by [`Batch::drain`].
#[derive(Debug)]
pub struct Drain<'a, T> {
    values: std::vec::Drain<'a, T>,
    timestamps: std::vec::Drain<'a, Timestamp>,
}

impl<T> Iterator for Drain<'_, T> {
    type Item = Record<T>;

    #[inline]
    fn next(&mut self) -> Option<Record<T>> {
        let value = self.values.next()?;
        Some(Record::with_timestamp(value, self.timestamps.next().unwrap_or(NO_TIMESTAMP)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.values.size_hint()
    }
}

impl<T> ExactSizeIterator for Drain<'_, T> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixing_timestamped_and_plain_records_keeps_alignment() {
        let mut b = Batch::from(vec![1, 2]);
        b.push(Record::with_timestamp(3, 30));
        b.push_value(4);
        let mut other = Batch::new();
        other.push(Record::with_timestamp(5, 50));
        b.append(&mut other);
        b.retain(|v| v % 2 == 1);
        let got: Vec<_> = b.drain().collect();
        assert_eq!(got, [Record::new(1), Record::with_timestamp(3, 30), Record::with_timestamp(5, 50)]);
    }

    #[test]
    fn map_into_a_timestamped_batch_pads_plain_records() {
        let mut out = Batch::new();
        out.push(Record::with_timestamp(0, 1));
        let mut b = Batch::from(vec![7]);
        b.map_into(&mut out, |v| v + 1);
        assert_eq!(out.drain().collect::<Vec<_>>(), [Record::with_timestamp(0, 1), Record::new(8)]);
    }
}
