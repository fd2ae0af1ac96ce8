//! Operator state: the state of a non-keyed operator subtask (Flink's
//! `OperatorStateStore`), such as a source's offsets, a sink's pending
//! transactions or the rules a broadcast stream carries.
//!
//! An [`OperatorStateStore`] holds named, typed states of three kinds, which
//! differ in how a restore at another parallelism redistributes them:
//!
//! | kind | descriptor | on restore |
//! | --- | --- | --- |
//! | list (Flink's `getListState`) | [`OperatorStateDescriptor::list`] | same parallelism: each subtask gets its own elements back; another parallelism: the old subtasks' elements, in old subtask order, are split into contiguous chunks whose sizes differ by at most one, one per new subtask |
//! | union list (`getUnionListState`) | [`OperatorStateDescriptor::union`] | every subtask gets all elements of all old subtasks |
//! | broadcast (`BroadcastState`) | [`BroadcastStateDescriptor::new`] | every subtask gets one old copy of the map (old subtask `index % old parallelism`'s, all copies being equal) |
//!
//! A snapshot ([`OperatorStateStore::snapshot`]) encodes the states in
//! memory (operator state is small); [`OperatorSnapshot::write_to`] writes
//! one file per subtask in the keyed snapshot format ([`mod@format`]: CRC32C
//! on the header and every block, so a damaged file is a
//! [`StateError::Corrupt`] naming it). The header's description of each state
//! has the state's name and, as value type, `kind:type` (`list:`, `union:`
//! or `broadcast:` and Rust's type name, for information). Entry keys use a
//! reserved layout, `key group 0 (u16) | state id (u16) | index (u64)`,
//! all big-endian; a value is one postcard-encoded element (list, union) or
//! `(key, value)` pair (broadcast, in key order). Restored states stay as
//! bytes until an accessor is first called with their descriptor; states
//! never asked for again are kept in later snapshots.
//!
//! ```
//! use dataflow_state::operator_state::{OperatorStateDescriptor, OperatorStateStore};
//! let dir = tempfile::tempdir().unwrap();
//! let offsets = OperatorStateDescriptor::<(String, u64)>::list("offsets");
//! let mut files = Vec::new();
//! for subtask in 0..2u64 {
//!     let mut store = OperatorStateStore::new();
//!     store.list_state(&offsets).unwrap().push((format!("partition-{subtask}"), 100 * subtask));
//!     let file = dir.path().join(format!("op-{subtask}"));
//!     store.snapshot().unwrap().write_to(&file).unwrap();
//!     files.push(file);
//! }
//! let files: Vec<&std::path::Path> = files.iter().map(|f| f.as_path()).collect();
//! // Rescaled to one subtask, which takes both partitions over.
//! let mut one = OperatorStateStore::restore(&files, 1, 0).unwrap();
//! assert_eq!(one.list_state(&offsets).unwrap().len(), 2);
//! ```

use crate::backend::format::{self, EntrySink, Snapshot, SnapshotView, StateInfo};
use crate::{KeyGroupRange, StateError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::any::Any;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::marker::PhantomData;
use std::path::Path;

/// How a state is redistributed on restore.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    List,
    Union,
    Broadcast,
}

impl Kind {
    fn tag(self) -> &'static str {
        ["list", "union", "broadcast"][self as usize]
    }

    /// The kind a header's value type (`kind:type`) names.
    fn parse(value_type: &str) -> Option<Self> {
        let tag = value_type.split_once(':')?.0;
        [Kind::List, Kind::Union, Kind::Broadcast].into_iter().find(|k| k.tag() == tag)
    }
}

/// Names a list or union list state of elements of type `T`.
///
/// ```
/// let d = dataflow_state::operator_state::OperatorStateDescriptor::<u64>::union("watermarks");
/// assert_eq!(d.name(), "watermarks");
/// ```
#[derive(Clone, Debug)]
pub struct OperatorStateDescriptor<T> {
    name: String,
    kind: Kind,
    _t: PhantomData<fn() -> T>,
}

impl<T> OperatorStateDescriptor<T> {
    /// A list state (Flink's `getListState`): on restore at another
    /// parallelism every element goes to exactly one subtask.
    ///
    /// ```
    /// let _offsets = dataflow_state::operator_state::OperatorStateDescriptor::<(String, u64)>::list("offsets");
    /// ```
    pub fn list(name: &str) -> Self {
        Self { name: name.to_string(), kind: Kind::List, _t: PhantomData }
    }

    /// A union list state (Flink's `getUnionListState`): on restore every
    /// subtask gets every element.
    ///
    /// ```
    /// let _seen = dataflow_state::operator_state::OperatorStateDescriptor::<String>::union("seen");
    /// ```
    pub fn union(name: &str) -> Self {
        Self { name: name.to_string(), kind: Kind::Union, _t: PhantomData }
    }

    /// The state's name (unique in its operator).
    ///
    /// ```
    /// assert_eq!(dataflow_state::operator_state::OperatorStateDescriptor::<u8>::list("x").name(), "x");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Names a broadcast state: a map from `K` to `V`, the same on every
/// subtask (Flink's `BroadcastState`).
///
/// ```
/// let d = dataflow_state::operator_state::BroadcastStateDescriptor::<String, u32>::new("rules");
/// assert_eq!(d.name(), "rules");
/// ```
#[derive(Clone, Debug)]
pub struct BroadcastStateDescriptor<K, V> {
    name: String,
    _t: PhantomData<fn() -> (K, V)>,
}

impl<K, V> BroadcastStateDescriptor<K, V> {
    /// A broadcast state named `name` (unique in its operator).
    ///
    /// ```
    /// let _limits = dataflow_state::operator_state::BroadcastStateDescriptor::<String, u64>::new("limits");
    /// ```
    pub fn new(name: &str) -> Self {
        Self { name: name.to_string(), _t: PhantomData }
    }

    /// The state's name.
    ///
    /// ```
    /// assert_eq!(dataflow_state::operator_state::BroadcastStateDescriptor::<u8, u8>::new("b").name(), "b");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A typed state behind `dyn`: it can encode itself, one entry per element.
trait Erased: Any + Send {
    fn encode(&self) -> Result<Vec<Vec<u8>>, postcard::Error>;
}

impl<T: Serialize + Send + 'static> Erased for Vec<T> {
    fn encode(&self) -> Result<Vec<Vec<u8>>, postcard::Error> {
        self.iter().map(postcard::to_stdvec).collect()
    }
}

impl<K: Serialize + Send + 'static, V: Serialize + Send + 'static> Erased for BTreeMap<K, V> {
    fn encode(&self) -> Result<Vec<Vec<u8>>, postcard::Error> {
        self.iter().map(|entry| postcard::to_stdvec(&entry)).collect()
    }
}

/// A state in use, with its values decoded.
struct Slot {
    kind: Kind,
    type_name: &'static str,
    value: Box<dyn Erased>,
}

/// A restored state not yet asked for: its encoded entries.
struct Raw {
    kind: Kind,
    value_type: String,
    entries: Vec<Vec<u8>>,
}

/// The operator state of one operator subtask: named list, union list and
/// broadcast states, snapshotted to one file and restored at any
/// parallelism.
///
/// ```
/// use dataflow_state::operator_state::{BroadcastStateDescriptor, OperatorStateStore};
/// let mut store = OperatorStateStore::new();
/// let rules = BroadcastStateDescriptor::<String, u32>::new("rules");
/// store.broadcast_state(&rules).unwrap().insert("max".into(), 10);
/// assert_eq!(store.broadcast_state(&rules).unwrap()["max"], 10);
/// ```
#[derive(Default)]
pub struct OperatorStateStore {
    states: BTreeMap<String, Slot>,
    restored: BTreeMap<String, Raw>,
}

impl std::fmt::Debug for OperatorStateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.states.keys().chain(self.restored.keys())).finish()
    }
}

fn state_error(state: &str, message: impl Into<String>) -> StateError {
    StateError::Decode { state: state.to_string(), key_group: 0, message: message.into() }
}

fn corrupt(file: &Path, reason: impl Into<String>) -> StateError {
    StateError::corrupt(file, reason)
}

impl OperatorStateStore {
    /// An empty store (a subtask that starts without a checkpoint).
    ///
    /// ```
    /// let store = dataflow_state::operator_state::OperatorStateStore::new();
    /// assert_eq!(format!("{store:?}"), "{}");
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The list or union list state `d` (created empty, or decoded from
    /// the restored bytes, on first use). Registering a name again with
    /// another kind or element type is a [`StateError::Decode`] naming the
    /// state, and so is a restored element that does not decode as `T`.
    ///
    /// ```
    /// use dataflow_state::operator_state::{OperatorStateDescriptor, OperatorStateStore};
    /// let mut store = OperatorStateStore::new();
    /// store.list_state(&OperatorStateDescriptor::<u64>::list("offsets")).unwrap().push(7);
    /// assert!(store.list_state(&OperatorStateDescriptor::<u64>::union("offsets")).is_err());
    /// assert!(store.list_state(&OperatorStateDescriptor::<String>::list("offsets")).is_err());
    /// ```
    pub fn list_state<T>(&mut self, d: &OperatorStateDescriptor<T>) -> Result<&mut Vec<T>, StateError>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
    {
        self.slot(&d.name, d.kind, std::any::type_name::<T>(), |entries| {
            entries.iter().map(|e| postcard::from_bytes::<T>(e)).collect::<Result<Vec<T>, _>>()
        })
    }

    /// The broadcast state `d`: a map, the same on every subtask (keep it
    /// so: change it only from broadcast input). Errors as for
    /// [`Self::list_state`].
    ///
    /// ```
    /// use dataflow_state::operator_state::{BroadcastStateDescriptor, OperatorStateStore};
    /// let mut store = OperatorStateStore::new();
    /// let d = BroadcastStateDescriptor::<u32, String>::new("names");
    /// store.broadcast_state(&d).unwrap().insert(1, "one".into());
    /// assert_eq!(store.broadcast_state(&d).unwrap().len(), 1);
    /// ```
    pub fn broadcast_state<K, V>(
        &mut self,
        d: &BroadcastStateDescriptor<K, V>,
    ) -> Result<&mut BTreeMap<K, V>, StateError>
    where
        K: Ord + Serialize + DeserializeOwned + Send + 'static,
        V: Serialize + DeserializeOwned + Send + 'static,
    {
        self.slot(&d.name, Kind::Broadcast, std::any::type_name::<(K, V)>(), |entries| {
            entries.iter().map(|e| postcard::from_bytes::<(K, V)>(e)).collect::<Result<BTreeMap<K, V>, _>>()
        })
    }

    /// Gets or creates the state `name` as an `S`.
    fn slot<S: Erased + Default>(
        &mut self,
        name: &str,
        kind: Kind,
        type_name: &'static str,
        decode: impl FnOnce(&[Vec<u8>]) -> Result<S, postcard::Error>,
    ) -> Result<&mut S, StateError> {
        if !self.states.contains_key(name) {
            let value = match self.restored.get(name) {
                None => S::default(),
                Some(raw) if raw.kind != kind => {
                    let m = format!("restored as {} state, asked for as {} state", raw.kind.tag(), kind.tag());
                    return Err(state_error(name, m));
                }
                Some(raw) => decode(&raw.entries).map_err(|err| state_error(name, format!("as {type_name}: {err}")))?,
            };
            self.restored.remove(name);
            self.states.insert(name.to_string(), Slot { kind, type_name, value: Box::new(value) });
        }
        let Some(slot) = self.states.get_mut(name) else { return Err(state_error(name, "not registered")) };
        if slot.kind != kind {
            let m = format!("registered as {} state, asked for as {} state", slot.kind.tag(), kind.tag());
            return Err(state_error(name, m));
        }
        let registered = slot.type_name;
        let any: &mut dyn Any = slot.value.as_mut();
        any.downcast_mut::<S>().ok_or_else(|| {
            state_error(name, format!("registered with type {registered}, asked for with type {type_name}"))
        })
    }

    /// The synchronous part of a snapshot: every state (also restored ones
    /// not asked for since) encoded in memory. An element that cannot be
    /// encoded is a [`StateError::Decode`] naming its state.
    ///
    /// ```
    /// use dataflow_state::operator_state::{OperatorStateDescriptor, OperatorStateStore};
    /// let mut store = OperatorStateStore::new();
    /// store.list_state(&OperatorStateDescriptor::<u8>::list("l")).unwrap().extend([1, 2]);
    /// let snap = store.snapshot().unwrap();
    /// store.list_state(&OperatorStateDescriptor::<u8>::list("l")).unwrap().clear(); // not in `snap`
    /// let dir = tempfile::tempdir().unwrap();
    /// assert_eq!(snap.write_to(&dir.path().join("op")).unwrap(), 2);
    /// ```
    pub fn snapshot(&self) -> Result<OperatorSnapshot, StateError> {
        let mut parts = Vec::with_capacity(self.states.len() + self.restored.len());
        for (name, s) in &self.states {
            let entries = s.value.encode().map_err(|e| state_error(name, format!("cannot encode: {e}")))?;
            let mut value_type = format!("{}:{}", s.kind.tag(), s.type_name);
            if value_type.len() > usize::from(u16::MAX) {
                value_type = format!("{}:", s.kind.tag()); // the type name is for information only
            }
            parts.push((name, value_type, entries));
        }
        for (name, r) in &self.restored {
            parts.push((name, r.value_type.clone(), r.entries.clone()));
        }
        let (mut infos, mut entries) = (Vec::new(), Vec::new());
        for (id, (name, value_type, values)) in parts.into_iter().enumerate() {
            let id = u16::try_from(id).map_err(|_| state_error(name, "more than 65536 operator states"))?;
            if name.len() > usize::from(u16::MAX) {
                return Err(state_error(name, "a state name longer than 65535 bytes"));
            }
            infos.push(StateInfo { id, name: name.clone(), value_type });
            for (index, value) in (0u64..).zip(values) {
                entries.push(([&[0, 0][..], &id.to_be_bytes(), &index.to_be_bytes()].concat(), value));
            }
        }
        Ok(OperatorSnapshot { infos, snapshot: Snapshot::new(Box::new(Entries(entries))) })
    }

    /// Restores subtask `index` of `parallelism` from the files of the
    /// old subtasks (`files`, in old subtask order; none for a fresh
    /// start), redistributing each state by its kind (see the module
    /// documentation). A damaged file is a [`StateError::Corrupt`] naming
    /// it, a missing one a [`StateError::Io`]; an index at or past
    /// `parallelism` is a [`StateError::InvalidSubtask`].
    ///
    /// ```
    /// use dataflow_state::operator_state::{OperatorStateDescriptor, OperatorStateStore};
    /// let d = OperatorStateDescriptor::<u32>::union("seen");
    /// let mut old = OperatorStateStore::new();
    /// old.list_state(&d).unwrap().extend([1, 2, 3]);
    /// let dir = tempfile::tempdir().unwrap();
    /// let file = dir.path().join("op-0");
    /// old.snapshot().unwrap().write_to(&file).unwrap();
    /// for index in 0..3 {
    ///     let mut new = OperatorStateStore::restore(&[&file], 3, index).unwrap();
    ///     assert_eq!(*new.list_state(&d).unwrap(), [1, 2, 3]);
    /// }
    /// ```
    pub fn restore(files: &[&Path], parallelism: u32, index: u32) -> Result<Self, StateError> {
        if index >= parallelism {
            return Err(StateError::InvalidSubtask { index, parallelism });
        }
        let mut old = Vec::with_capacity(files.len());
        let mut kinds: BTreeMap<String, Kind> = BTreeMap::new();
        for file in files {
            let states = read_states(file)?;
            for (name, raw) in &states {
                let was = *kinds.entry(name.clone()).or_insert(raw.kind);
                if was != raw.kind {
                    let (was, is) = (was.tag(), raw.kind.tag());
                    return Err(corrupt(file, format!("state '{name}' is {is} state here, {was} state before")));
                }
            }
            old.push(states);
        }
        let (i, p) = (index as usize, parallelism as usize);
        let mut restored = BTreeMap::new();
        for (name, kind) in kinds {
            let copies: Vec<(usize, Raw)> =
                old.iter_mut().enumerate().filter_map(|(n, s)| s.remove(&name).map(|r| (n, r))).collect();
            let value_type = copies.first().map(|c| c.1.value_type.clone()).unwrap_or_default();
            let entries = match kind {
                Kind::Broadcast => {
                    let pick = copies.iter().position(|c| c.0 == i % files.len().max(1)).unwrap_or(0);
                    copies.into_iter().nth(pick).map(|c| c.1.entries).unwrap_or_default()
                }
                Kind::List if files.len() == p => {
                    copies.into_iter().find(|c| c.0 == i).map(|c| c.1.entries).unwrap_or_default()
                }
                Kind::Union => copies.into_iter().flat_map(|c| c.1.entries).collect(),
                Kind::List => {
                    let all: Vec<Vec<u8>> = copies.into_iter().flat_map(|c| c.1.entries).collect();
                    let (base, extra) = (all.len() / p, all.len() % p);
                    let start = i * base + i.min(extra);
                    all.into_iter().skip(start).take(base + usize::from(i < extra)).collect()
                }
            };
            restored.insert(name, Raw { kind, value_type, entries });
        }
        Ok(Self { states: BTreeMap::new(), restored })
    }
}

/// Reads one old subtask's file: its states by name, entries in order.
fn read_states(file: &Path) -> Result<BTreeMap<String, Raw>, StateError> {
    let mut by_id: HashMap<u16, (String, Raw)> = HashMap::new();
    let mut names = HashSet::new();
    for info in format::read_header(file)? {
        let kind = Kind::parse(&info.value_type).ok_or_else(|| {
            corrupt(file, format!("state '{}' is not operator state (value type '{}')", info.name, info.value_type))
        })?;
        if !names.insert(info.name.clone()) || by_id.contains_key(&info.id) {
            return Err(corrupt(file, format!("state '{}' or id {} twice in the header", info.name, info.id)));
        }
        by_id.insert(info.id, (info.name, Raw { kind, value_type: info.value_type, entries: Vec::new() }));
    }
    format::read_file(file, KeyGroupRange::new(0, 1 << 16), &mut |k, v| {
        let Ok(key) = <[u8; 12]>::try_from(k) else {
            return Err(corrupt(file, format!("an entry key of {} bytes, not 12", k.len())));
        };
        let [g0, g1, s0, s1, index @ ..] = key;
        let (group, id, index) =
            (u16::from_be_bytes([g0, g1]), u16::from_be_bytes([s0, s1]), u64::from_be_bytes(index));
        let (name, raw) = by_id.get_mut(&id).ok_or_else(|| corrupt(file, format!("an entry of unknown state {id}")))?;
        if group != 0 || index != raw.entries.len() as u64 {
            return Err(corrupt(file, format!("state '{name}': entry {index} of group {group} out of place")));
        }
        raw.entries.push(v.to_vec());
        Ok(())
    })?;
    Ok(by_id.into_values().collect())
}

/// A snapshot of an [`OperatorStateStore`], encoded in memory;
/// [`Self::write_to`] writes it out (on any thread).
///
/// ```
/// let snap = dataflow_state::operator_state::OperatorStateStore::new().snapshot().unwrap();
/// let dir = tempfile::tempdir().unwrap();
/// assert_eq!(snap.write_to(&dir.path().join("empty")).unwrap(), 0);
/// ```
#[derive(Debug)]
pub struct OperatorSnapshot {
    infos: Vec<StateInfo>,
    snapshot: Snapshot,
}

impl OperatorSnapshot {
    /// Writes the snapshot to `file` (created or replaced); returns the
    /// number of entries written. An I/O failure is a [`StateError::Io`]
    /// naming the file.
    ///
    /// ```
    /// use dataflow_state::operator_state::{OperatorStateDescriptor, OperatorStateStore};
    /// let mut store = OperatorStateStore::new();
    /// store.list_state(&OperatorStateDescriptor::<i8>::list("l")).unwrap().push(-1);
    /// let dir = tempfile::tempdir().unwrap();
    /// assert_eq!(store.snapshot().unwrap().write_to(&dir.path().join("op")).unwrap(), 1);
    /// ```
    pub fn write_to(&self, file: &Path) -> Result<u64, StateError> {
        self.snapshot.write_to(file, &self.infos)
    }
}

/// Encoded entries, in key order, as a snapshot view.
struct Entries(Vec<(Vec<u8>, Vec<u8>)>);

impl SnapshotView for Entries {
    fn for_each(&self, f: &mut EntrySink<'_>) -> Result<(), StateError> {
        self.0.iter().try_for_each(|(k, v)| f(k, v))
    }
}
