//! The time to live of a table's states ([`Ttl`]), and leaving expired
//! states out of a table's snapshot (Flink's cleanup in full snapshots):
//! the expiry leads each state entry's value, so it is read without
//! decoding the key or the state.

use super::{STATE_ID, state_id};
use crate::StateError;
use crate::backend::Snapshot;
use crate::backend::format::{EntrySink, SnapshotView};
use std::time::Duration;

/// How long a key's state lives after its last access, in processing time
/// (Flink's `StateTtlConfig`): an expired state is never handed out, is
/// dropped when its key is next accessed, and is left out of snapshots.
///
/// Every access through [`StateTable::with_state`](super::StateTable::with_state)
/// renews it (the state is handed out as `&mut`, so every access may
/// write: Flink's `OnReadAndWrite`); [`StateTable::get`](super::StateTable::get)
/// reads without renewing.
///
/// ```
/// use dataflow_state::{KeyGroupRange, StateError, Ttl, ValueState};
/// use dataflow_state::table::{StateBackendConfig, StateTable, TableSpec};
///
/// let ttl = Ttl::new(std::time::Duration::from_millis(100));
/// let spec = TableSpec { ttl: Some(ttl), ..TableSpec::new("seen", 128, KeyGroupRange::new(0, 128)) };
/// let mut t = StateTable::<u32, ValueState<u8>>::open(&StateBackendConfig::InMemory, spec, "op").unwrap();
/// t.set_now(1_000);
/// t.with_state(&7, |s| Ok::<_, StateError>((s.update(1), false))).unwrap();
/// t.set_now(1_099);
/// assert!(t.get(&7).unwrap().is_some());
/// t.set_now(1_100);
/// assert!(t.get(&7).unwrap().is_none(), "expired 100 ms after its last access");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ttl {
    millis: i64,
}

impl Ttl {
    /// States live `time_to_live` after they were last accessed (whole
    /// milliseconds; a duration past `i64::MAX` ms is forever in practice).
    pub fn new(time_to_live: Duration) -> Self {
        Self { millis: i64::try_from(time_to_live.as_millis()).unwrap_or(i64::MAX) }
    }

    /// The time to live in milliseconds.
    pub(crate) fn millis(&self) -> i64 {
        self.millis
    }
}

/// `base` without the state entries expired at `now`.
pub(super) fn without_expired(base: Snapshot, now: i64) -> Snapshot {
    Snapshot::new(Box::new(WithoutExpired { base, now }))
}

struct WithoutExpired {
    base: Snapshot,
    now: i64,
}

impl SnapshotView for WithoutExpired {
    fn for_each(&self, f: &mut EntrySink<'_>) -> Result<(), StateError> {
        self.base.for_each(&mut |k, v| {
            // A value that does not start with an expiry is written as is:
            // restoring it reports the damage.
            let expired = state_id(k) == STATE_ID
                && postcard::take_from_bytes::<Option<i64>>(v).is_ok_and(|(e, _)| e.is_some_and(|e| e <= self.now));
            if expired { Ok(()) } else { f(k, v) }
        })
    }
}
