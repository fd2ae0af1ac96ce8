//! Leaves expired states out of a table's snapshot (Flink's cleanup in
//! full snapshots): the expiry leads each state entry's value, so it is
//! read without decoding the key or the state.

use super::{STATE_ID, state_id};
use crate::StateError;
use crate::backend::Snapshot;
use crate::backend::format::{EntrySink, SnapshotView};

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
