//! The canonical encoding of state values in savepoints: self-describing
//! CBOR, so a savepoint survives changes of the state's type that serde
//! can bridge.
//!
//! Checkpoints store a key's state as postcard bytes: compact and fast, but
//! not self-describing (a struct is its fields in order, without names), so
//! a type that gained a field cannot read the old bytes. A savepoint is
//! meant to outlive the code that wrote it: its state entries are written
//! as the byte [`CANONICAL`] followed by CBOR of the same
//! `(expiry, key, state)` triple, where structs are maps by field name. A
//! field added with `#[serde(default)]` then restores (missing fields take
//! their default), and an incompatible change (a field of another type, a
//! new field without a default) is a [`StateError::Decode`] naming the
//! state and the key group, instead of garbage.
//!
//! Restoring turns a canonical entry back into postcard before the table
//! takes it, so every backend reads savepoints and checkpoints alike. Keys
//! stay in their canonical postcard bytes (they decide the key group).

use super::{STATE_ID, TableSpec, state_id};
use crate::backend::Snapshot;
use crate::backend::format::{EntrySink, SnapshotView};
use crate::{Key, StateError, StateValue};
use std::marker::PhantomData;

/// The first byte of a canonical (CBOR) state entry's value. A postcard
/// entry starts with its expiry's `Option` tag (0 or 1); a tombstone of a
/// delta file with `0xFF`.
pub(super) const CANONICAL: u8 = 0xCB;

/// `base` with every state entry (state id [`STATE_ID`]) re-encoded from
/// postcard into the canonical encoding; other entries (timers) as they are.
pub(super) fn canonical<K: Key, S: StateValue>(base: Snapshot, spec: TableSpec) -> Snapshot {
    Snapshot::new(Box::new(Canonical::<K, S> { base, spec, _t: PhantomData }))
}

struct Canonical<K, S> {
    base: Snapshot,
    spec: TableSpec,
    _t: PhantomData<fn() -> (K, S)>,
}

impl<K: Key, S: StateValue> SnapshotView for Canonical<K, S> {
    fn for_each(&self, f: &mut EntrySink<'_>) -> Result<(), StateError> {
        let mut buf = Vec::new();
        self.base.for_each(&mut |k, v| {
            if state_id(k) != STATE_ID {
                return f(k, v);
            }
            let kg = key_group(k);
            let triple: (Option<i64>, K, S) = postcard::from_bytes(v).map_err(|e| self.spec.decode_err(kg, e))?;
            buf.clear();
            buf.push(CANONICAL);
            ciborium::into_writer(&triple, &mut buf).map_err(|e| self.spec.decode_err(kg, e))?;
            f(k, &buf)
        })
    }
}

/// The postcard bytes of a canonical state entry's value (key group `kg`
/// for the error): decodes the CBOR into the table's types, so a type that
/// no longer matches is a [`StateError::Decode`] naming the state.
pub(super) fn to_postcard<K: Key, S: StateValue>(
    spec: &TableSpec,
    kg: u32,
    value: &[u8],
) -> Result<Vec<u8>, StateError> {
    let body = value.get(1..).unwrap_or_default();
    let triple: (Option<i64>, K, S) = ciborium::from_reader(body).map_err(|e| {
        let type_name = std::any::type_name::<S>();
        spec.decode_err(kg, format!("the savepoint's value does not fit this state's type {type_name} ({e})"))
    })?;
    postcard::to_stdvec(&triple).map_err(|e| spec.decode_err(kg, e))
}

fn key_group(k: &[u8]) -> u32 {
    match k {
        [a, b, ..] => u32::from(u16::from_be_bytes([*a, *b])),
        _ => 0,
    }
}
