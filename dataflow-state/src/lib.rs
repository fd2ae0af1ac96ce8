//! State for dataflow: where a key lives, what a keyed operator keeps per
//! key, and how that state is snapshotted and restored.
//!
//! * Keys and key groups: [`Key`] gives every key a canonical byte form and
//!   a stable, seed-free hash (xxh3 over those bytes); [`key_group`] maps a
//!   hash to a key group (`hash % max_parallelism`) and a key group to the
//!   subtask that owns it ([`KeyGroupRange`]), so the partitioner of the
//!   runtime and the state agree by construction.
//! * Keyed state primitives ([`ValueState`], [`ListState`], [`MapState`],
//!   [`ReducingState`], [`AggregatingState`]): the typed per-key state an
//!   operator works on, combined into one [`StateValue`] per operator.
//! * State tables ([`table`]): where a keyed operator keeps that state
//!   while the job runs, on the backend the job chose
//!   ([`table::StateBackendConfig`]: typed values in memory, or an fjall LSM
//!   store on disk), optionally expiring ([`Ttl`]), with full and
//!   incremental snapshots in one file format that every backend restores.
//! * Operator state ([`operator_state`]): list, union and broadcast state
//!   of non-keyed operators, redistributed on a restore at another
//!   parallelism.
//! * [`backend`]: the entry layout ([`backend::StateKey`]) and the snapshot
//!   file format shared by all of the above.
//!
//! Every failure is a [`StateError`], which keeps its cause (an I/O error
//! or a storage engine error) as its `source`.
//!
//! ```
//! use dataflow_state::{key_group, Key, KeyGroupRange};
//!
//! let kg = key_group::assign_to_key_group(&"alice".to_string(), 128);
//! let owner = key_group::operator_index_for_key_group(128, 4, kg) as u32;
//! assert!(KeyGroupRange::for_operator(128, 4, owner).unwrap().contains(kg));
//! ```

pub mod backend;
mod error;
mod key;
pub mod key_group;
mod keyed;
pub mod operator_state;
pub mod table;

pub use error::StateError;
pub use key::Key;
pub use key_group::{DEFAULT_MAX_PARALLELISM, KeyGroupRange};
pub use keyed::{
    AggregateFunction, AggregatingState, ListState, MapState, Max, Min, Reducer, ReducingState, StateData, StateValue,
    Sum, ValueState,
};
pub use table::ttl::Ttl;
