//! State for dataflow: keys, key groups and (as the project grows) keyed
//! state primitives and the `StateBackend` trait.
//!
//! Everything that decides *where a key lives* is here, so that the
//! partitioner of the runtime and the state backends agree by construction:
//!
//! * [`Key`] gives every key a canonical byte form and a stable, seed-free
//!   hash (xxh3 over those bytes);
//! * [`key_group`] maps a hash to a key group (`hash % max_parallelism`) and a
//!   key group to the subtask that owns it ([`KeyGroupRange`]).
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
pub mod store;
pub mod table;

pub use error::StateError;
pub use key::Key;
pub use key_group::{DEFAULT_MAX_PARALLELISM, KeyGroupRange};
pub use keyed::{
    AggregateFunction, AggregatingState, ListState, MapState, Max, Min, Reducer, ReducingState, StateData, StateValue,
    Sum, ValueState,
};
