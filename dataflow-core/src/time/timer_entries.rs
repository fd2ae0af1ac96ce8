//! How a keyed operator's timers are written into its state snapshots:
//! one entry per timer under the state id
//! [`TIMERS_ID`](dataflow_state::table::TIMERS_ID), so the timers are part
//! of every snapshot and restore with their key groups.
//!
//! Entry key: `key group | TIMERS_ID | domain (1 byte) | time (i64,
//! big-endian, sign bit flipped so that it sorts) | key's canonical bytes |
//! namespace (postcard)`; entry value: `(domain, time, key, namespace)`
//! encoded with postcard.

use super::{TimeDomain, Timer, TimerService, Timestamp};
use dataflow_state::backend::StateKey;
use dataflow_state::table::{RawEntry, TIMERS_ID};
use dataflow_state::{Key, StateError, key_group};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::hash::Hash;

fn timers_error(key_group: u32, e: impl std::fmt::Display) -> StateError {
    StateError::Decode { state: "timers".into(), key_group, message: e.to_string() }
}

/// Every timer of `timers` as snapshot entries, sorted by key.
pub(crate) fn timer_entries<K, N>(
    timers: &TimerService<K, N>,
    max_parallelism: u32,
) -> Result<Vec<RawEntry>, StateError>
where
    K: Key,
    N: Clone + Eq + Hash + Serialize,
{
    entries_of(timers.iter(), max_parallelism)
}

/// The snapshot entries of `timers` (from a [`TimerService`] or kept
/// otherwise, such as the window operator's timers per window), sorted by
/// key.
pub(crate) fn entries_of<'a, K: Key, N: Serialize + 'a>(
    timers: impl Iterator<Item = Timer<&'a K, &'a N>>,
    max_parallelism: u32,
) -> Result<Vec<RawEntry>, StateError> {
    let mut out = Vec::with_capacity(timers.size_hint().0);
    for t in timers {
        let kg = key_group::assign_to_key_group(t.key, max_parallelism);
        let mut head = Vec::with_capacity(9);
        head.push(t.domain as u8);
        head.extend_from_slice(&((t.timestamp as u64) ^ (1 << 63)).to_be_bytes());
        let mut tail = Vec::new();
        t.key.write_canonical(&mut tail);
        let tail = postcard::to_extend(t.namespace, tail).map_err(|e| timers_error(kg, e))?;
        let value =
            postcard::to_stdvec(&(t.domain, t.timestamp, t.key, t.namespace)).map_err(|e| timers_error(kg, e))?;
        out.push((StateKey::new(kg as u16, TIMERS_ID, &head, &tail).as_bytes().to_vec(), value));
    }
    out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The timer of a snapshot entry written by [`timer_entries`].
pub(crate) fn decode_timer<K: Key, N: DeserializeOwned>(key: &[u8], value: &[u8]) -> Result<Timer<K, N>, StateError> {
    let kg = key.get(..2).map_or(0, |b| u32::from(u16::from_be_bytes([b[0], b[1]])));
    let (domain, timestamp, key, namespace): (TimeDomain, Timestamp, K, N) =
        postcard::from_bytes(value).map_err(|e| timers_error(kg, e))?;
    Ok(Timer { key, namespace, timestamp, domain })
}
