//! Watermark alignment across sources (Flink's
//! `withWatermarkAlignment`): the sources whose strategies name the same
//! group report their watermarks to it, and a source whose watermark is
//! more than the group's maximum drift ahead of the group's slowest member
//! stops reading until the slowest catches up. Idle and finished members do
//! not hold the group back.
//!
//! ```
//! use dataflow_core::time::AlignmentGroup;
//! let group = AlignmentGroup::new("clicks", 100);
//! let (fast, slow) = (group.join(), group.join());
//! group.report(slow, 1_000, true);
//! group.report(fast, 1_050, true);
//! assert!(group.pause(fast).is_none()); // 50 ahead: within the drift
//! group.report(fast, 1_200, true);
//! assert!(group.pause(fast).is_some()); // 200 ahead: pauses
//! group.report(slow, 1_150, true);
//! assert!(group.pause(fast).is_none()); // released
//! ```

use super::{Timestamp, Wakeup};
use std::sync::{Mutex, PoisonError};

#[derive(Clone, Copy, Debug)]
struct Member {
    watermark: Timestamp,
    active: bool,
}

/// The shared bookkeeping of one alignment group in a job.
#[derive(Debug)]
pub struct AlignmentGroup {
    name: String,
    max_drift: i64,
    members: Mutex<Vec<Member>>,
    /// Bumped whenever the group's minimum may have moved.
    changed: tokio::sync::watch::Sender<u64>,
}

impl AlignmentGroup {
    /// A group named `name` whose members may run `max_drift` ms ahead of
    /// its slowest.
    pub fn new(name: &str, max_drift: i64) -> Self {
        Self {
            name: name.to_string(),
            max_drift: max_drift.max(0),
            members: Mutex::new(Vec::new()),
            changed: tokio::sync::watch::Sender::new(0),
        }
    }

    /// The group's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds a member (a source subtask), active at `Watermark::MIN`;
    /// returns its id.
    pub fn join(&self) -> usize {
        let mut m = self.members.lock().unwrap_or_else(PoisonError::into_inner);
        m.push(Member { watermark: Timestamp::MIN, active: true });
        m.len() - 1
    }

    /// Member `id` is at `watermark`; `active` is false once it is idle or
    /// finished, so it no longer holds the group back.
    pub fn report(&self, id: usize, watermark: Timestamp, active: bool) {
        let mut m = self.members.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(member) = m.get_mut(id) {
            member.watermark = member.watermark.max(watermark);
            member.active = active;
        }
        drop(m);
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// The largest watermark a member may have and keep reading: the
    /// slowest active member's plus the drift.
    pub fn max_allowed(&self) -> Timestamp {
        let m = self.members.lock().unwrap_or_else(PoisonError::into_inner);
        m.iter()
            .filter(|x| x.active)
            .map(|x| x.watermark)
            .min()
            .map_or(Timestamp::MAX, |w| w.saturating_add(self.max_drift))
    }

    /// If member `id` is too far ahead, a future that completes when the
    /// group changes (the caller then asks again); `None` if it may read.
    pub fn pause(&self, id: usize) -> Option<Wakeup> {
        let mut rx = self.changed.subscribe();
        let own = self.members.lock().unwrap_or_else(PoisonError::into_inner).get(id).map(|m| m.watermark)?;
        if own <= self.max_allowed() {
            return None;
        }
        Some(Box::pin(async move {
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }))
    }
}
