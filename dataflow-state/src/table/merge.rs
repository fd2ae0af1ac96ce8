//! Adds extra entries (a keyed operator's timers) to a table's snapshot,
//! keeping the file's key order.

use super::RawEntry;
use crate::StateError;
use crate::backend::Snapshot;
use crate::backend::format::{EntrySink, SnapshotView};

/// `base` with `extra` (sorted by key) merged in.
pub(super) fn with_extra(base: Snapshot, extra: Vec<RawEntry>) -> Snapshot {
    if extra.is_empty() {
        return base;
    }
    Snapshot::new(Box::new(Merged { base, extra }))
}

struct Merged {
    base: Snapshot,
    extra: Vec<RawEntry>,
}

impl SnapshotView for Merged {
    fn for_each(&self, f: &mut EntrySink<'_>) -> Result<(), StateError> {
        let mut next = 0;
        self.base.for_each(&mut |k, v| {
            while let Some((ek, ev)) = self.extra.get(next).filter(|(ek, _)| ek.as_slice() < k) {
                f(ek, ev)?;
                next += 1;
            }
            f(k, v)
        })?;
        self.extra[next..].iter().try_for_each(|(k, v)| f(k, v))
    }
}
