//! Key groups: the unit in which keyed state is partitioned and moved.
//!
//! A key belongs to key group `stable_hash(key) % max_parallelism`. Subtask
//! `i` of an operator with parallelism `p` owns the contiguous range of key
//! groups computed by [`KeyGroupRange::for_operator`], so rescaling moves whole
//! key groups between subtasks (the scheme of Flink's
//! `KeyGroupRangeAssignment`). The runtime's hash partitioner and the state
//! backends both call these functions: there is one implementation.
//!
//! ```
//! use dataflow_state::key_group::{key_group_for_hash, operator_index_for_key_group};
//!
//! let kg = key_group_for_hash(1_000_003, 128);
//! assert_eq!(kg, 1_000_003 % 128);
//! assert_eq!(operator_index_for_key_group(128, 2, 63), 0);
//! assert_eq!(operator_index_for_key_group(128, 2, 64), 1);
//! ```

use crate::{Key, StateError};

/// The default maximum parallelism, which is also the number of key groups.
pub const DEFAULT_MAX_PARALLELISM: u32 = 128;

/// The key group of a stable key hash.
///
/// ```
/// assert_eq!(dataflow_state::key_group::key_group_for_hash(130, 128), 2);
/// ```
#[inline]
pub fn key_group_for_hash(hash: u64, max_parallelism: u32) -> u32 {
    if max_parallelism.is_power_of_two() {
        // The same result without a division (the default is 128).
        (hash & u64::from(max_parallelism - 1)) as u32
    } else {
        (hash % u64::from(max_parallelism.max(1))) as u32
    }
}

/// The key group of a key.
///
/// ```
/// use dataflow_state::{key_group::assign_to_key_group, Key};
/// assert_eq!(assign_to_key_group(&9u64, 128), (9u64.stable_hash() % 128) as u32);
/// ```
#[inline]
pub fn assign_to_key_group<K: Key>(key: &K, max_parallelism: u32) -> u32 {
    key_group_for_hash(key.stable_hash(), max_parallelism)
}

/// The index of the subtask (of `parallelism`) that owns `key_group`.
///
/// ```
/// use dataflow_state::key_group::operator_index_for_key_group;
/// assert_eq!(operator_index_for_key_group(128, 3, 42), 0);
/// assert_eq!(operator_index_for_key_group(128, 3, 43), 1);
/// ```
#[inline]
pub fn operator_index_for_key_group(max_parallelism: u32, parallelism: u32, key_group: u32) -> usize {
    (u64::from(key_group) * u64::from(parallelism) / u64::from(max_parallelism)) as usize
}

/// A contiguous, half-open range `[start, end)` of key groups.
///
/// ```
/// use dataflow_state::KeyGroupRange;
/// let r = KeyGroupRange::for_operator(128, 3, 1).unwrap();
/// assert_eq!((r.start, r.end), (43, 86));
/// assert_eq!(r.len(), 43);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KeyGroupRange {
    /// First key group in the range.
    pub start: u32,
    /// One past the last key group in the range.
    pub end: u32,
}

impl KeyGroupRange {
    /// The range `[start, end)`.
    ///
    /// ```
    /// assert!(dataflow_state::KeyGroupRange::new(3, 3).is_empty());
    /// ```
    pub fn new(start: u32, end: u32) -> Self {
        Self { start, end: end.max(start) }
    }

    /// The key groups owned by subtask `index` of an operator with
    /// `parallelism` subtasks and `max_parallelism` key groups.
    ///
    /// ```
    /// use dataflow_state::KeyGroupRange;
    /// assert_eq!(KeyGroupRange::for_operator(128, 1, 0).unwrap(), KeyGroupRange::new(0, 128));
    /// assert!(KeyGroupRange::for_operator(128, 200, 0).is_err());
    /// ```
    pub fn for_operator(max_parallelism: u32, parallelism: u32, index: u32) -> Result<Self, StateError> {
        if parallelism == 0 || parallelism > max_parallelism {
            return Err(StateError::InvalidParallelism { parallelism, max_parallelism });
        }
        if index >= parallelism {
            return Err(StateError::InvalidSubtask { index, parallelism });
        }
        let (maxp, p, i) = (u64::from(max_parallelism), u64::from(parallelism), u64::from(index));
        let start = (i * maxp).div_ceil(p);
        let end = ((i + 1) * maxp - 1) / p + 1;
        Ok(Self::new(start as u32, end as u32))
    }

    /// Whether `key_group` lies in this range.
    ///
    /// ```
    /// assert!(dataflow_state::KeyGroupRange::new(0, 64).contains(63));
    /// ```
    #[inline]
    pub fn contains(&self, key_group: u32) -> bool {
        (self.start..self.end).contains(&key_group)
    }

    /// The number of key groups in the range.
    ///
    /// ```
    /// assert_eq!(dataflow_state::KeyGroupRange::new(10, 20).len(), 10);
    /// ```
    pub fn len(&self) -> usize {
        (self.end - self.start) as usize
    }

    /// Whether the range holds no key group.
    ///
    /// ```
    /// assert!(!dataflow_state::KeyGroupRange::new(0, 1).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// The key groups of the range, in order.
    ///
    /// ```
    /// let v: Vec<u32> = dataflow_state::KeyGroupRange::new(2, 5).iter().collect();
    /// assert_eq!(v, [2, 3, 4]);
    /// ```
    pub fn iter(&self) -> std::ops::Range<u32> {
        self.start..self.end
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Ranges tile `[0, max)` and agree with `operator_index_for_key_group`.
        #[test]
        fn ranges_tile_and_agree(maxp in 1u32..=512, p_frac in 0.0f64..1.0) {
            let p = ((f64::from(maxp) * p_frac) as u32).clamp(1, maxp);
            let mut next = 0;
            for i in 0..p {
                let r = KeyGroupRange::for_operator(maxp, p, i).unwrap();
                prop_assert_eq!(r.start, next);
                prop_assert!(!r.is_empty());
                for kg in r.iter() {
                    prop_assert_eq!(operator_index_for_key_group(maxp, p, kg), i as usize);
                }
                next = r.end;
            }
            prop_assert_eq!(next, maxp);
        }
    }

    #[test]
    fn rejects_bad_parallelism() {
        assert!(matches!(
            KeyGroupRange::for_operator(128, 0, 0),
            Err(StateError::InvalidParallelism { parallelism: 0, max_parallelism: 128 })
        ));
        assert!(matches!(
            KeyGroupRange::for_operator(128, 129, 0),
            Err(StateError::InvalidParallelism { parallelism: 129, max_parallelism: 128 })
        ));
        assert!(matches!(
            KeyGroupRange::for_operator(128, 2, 2),
            Err(StateError::InvalidSubtask { index: 2, parallelism: 2 })
        ));
    }
}
