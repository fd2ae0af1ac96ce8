//! For tests: a window that counts how often it is compared or hashed, to
//! show what a window operator's state access costs in probes, not time.

use super::Window;
use crate::time::Timestamp;
use std::cell::Cell;

thread_local! {
    /// Window comparisons and hashes made so far (on this thread).
    static PROBES: Cell<u64> = const { Cell::new(0) };
}

/// A window (ending at its number) that counts its comparisons and hashes.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct Probed(pub(crate) i64);

impl PartialEq for Probed {
    fn eq(&self, other: &Self) -> bool {
        PROBES.with(|p| p.set(p.get() + 1));
        self.0 == other.0
    }
}

impl Eq for Probed {}

impl std::hash::Hash for Probed {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        PROBES.with(|p| p.set(p.get() + 1));
        self.0.hash(state);
    }
}

impl Window for Probed {
    fn max_timestamp(&self) -> Timestamp {
        self.0
    }
}

/// The comparisons and hashes of windows that `f` makes.
pub(crate) fn probes(f: impl FnOnce()) -> u64 {
    let before = PROBES.with(Cell::get);
    f();
    PROBES.with(Cell::get) - before
}
