//! Tests of incremental snapshots of the state tables: a full snapshot,
//! then deltas of what changed, restored from chains. (What every table
//! does on every backend, through the public API: `tests/table.rs` and
//! `tests/conformance.rs`.)
//!
//! * a property test against a `HashMap` model: keyed operations spread
//!   over the subtasks of a parallelism, checkpoints of every subtask at
//!   random points (full or delta), aborted snapshots (dropped unwritten,
//!   a write that fails, a file written for a checkpoint that never
//!   completes), and restores of the last checkpoint from its chains, at
//!   the same parallelism (the chains go on) or another (rescaled), in
//!   memory, on fjall and on fjall with a two-key cache;
//! * deletions, timers from the newest file only, chains that are not
//!   whole, damaged deltas, old (version 1) files;
//! * (the size of a delta after 1% of the keys changed: `incremental_size.rs`).

use super::{FjallStateConfig, RawEntry, SnapshotKind, StateBackendConfig, StateTable, TIMERS_ID, TableSpec};
use crate::backend::{StateKey, format};
use crate::key_group::{assign_to_key_group, operator_index_for_key_group};
use crate::{KeyGroupRange, ListState, StateError};
use proptest::prelude::*;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

type State = ListState<u16>;

/// Few key groups, so that every subtask of a parallelism up to 4 holds
/// several, and a rescale moves some.
const MAXP: u32 = 32;
const KEYS: u16 = 64;

fn backend(kind: usize, dir: &Path) -> StateBackendConfig {
    match kind {
        0 => StateBackendConfig::InMemory,
        1 => StateBackendConfig::Fjall(FjallStateConfig::new(dir)),
        _ => StateBackendConfig::Fjall(FjallStateConfig { cached_keys: 2, ..FjallStateConfig::new(dir) }),
    }
}

fn add(t: &mut StateTable<u16, State>, k: u16, v: u16) {
    t.with_state(&k, |s| {
        s.add(v);
        Ok::<_, StateError>(((), false))
    })
    .unwrap();
}

fn clear(t: &mut StateTable<u16, State>, k: u16) {
    t.with_state(&k, |s| {
        s.clear();
        Ok::<_, StateError>(((), true))
    })
    .unwrap();
}

fn get(t: &mut StateTable<u16, State>, k: u16) -> Option<Vec<u16>> {
    t.get(&k).unwrap().map(|s| s.get().to_vec())
}

/// A timer entry for `k` (what the keyed operator adds as `extra`).
fn timer(k: u16) -> RawEntry {
    let kg = assign_to_key_group(&k, MAXP) as u16;
    (StateKey::new(kg, TIMERS_ID, &k.to_be_bytes(), b"").as_bytes().to_vec(), k.to_be_bytes().to_vec())
}

fn timers_in(timers: &BTreeSet<u16>, range: KeyGroupRange) -> Vec<RawEntry> {
    let mut out: Vec<RawEntry> =
        timers.iter().filter(|k| range.contains(assign_to_key_group(*k, MAXP))).map(|k| timer(*k)).collect();
    out.sort();
    out
}

#[derive(Clone, Debug)]
enum Op {
    /// Appends to the key's list.
    Add(u16, u16),
    /// Empties the key's list (the table drops it: a tombstone in a delta).
    Clear(u16),
    /// Sets (true) or deletes a timer of the key.
    Timer(u16, bool),
    /// Every subtask snapshots (a delta if asked and possible) and writes
    /// its file; the checkpoint completes.
    Checkpoint { delta: bool },
    /// Every subtask snapshots, but the checkpoint does not complete:
    /// 0 the snapshot is dropped unwritten, 1 its write fails, 2 its file
    /// is written (and stays in its chain: the next delta follows it).
    Abort { delta: bool, how: u8 },
    /// Every subtask is replaced by a fresh table of `kind` at
    /// `parallelism`, restored from the last complete checkpoint's files
    /// (flat, in an order given by `shuffle`).
    Restore { parallelism: u32, kind: usize, shuffle: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (0..KEYS, any::<u16>()).prop_map(|(k, v)| Op::Add(k, v)),
        3 => (0..KEYS).prop_map(Op::Clear),
        2 => (0..KEYS, any::<bool>()).prop_map(|(k, on)| Op::Timer(k, on)),
        3 => prop_oneof![1 => Just(false), 3 => Just(true)].prop_map(|delta| Op::Checkpoint { delta }),
        1 => (any::<bool>(), 0..3u8).prop_map(|(delta, how)| Op::Abort { delta, how }),
        1 => (1..=4u32, 0..3usize, any::<u64>()).prop_map(|(parallelism, kind, shuffle)| Op::Restore {
            parallelism,
            kind,
            shuffle
        }),
    ]
}

struct Subtask {
    table: StateTable<u16, State>,
    range: KeyGroupRange,
    /// Its chain so far: a full file, then deltas.
    chain: Vec<PathBuf>,
    /// Whether its next delta can follow its chain (else it is full).
    based: bool,
}

/// The last complete checkpoint: the state and timers it holds, and each
/// subtask's chain.
#[derive(Clone)]
struct Checkpoint {
    model: HashMap<u16, Vec<u16>>,
    timers: BTreeSet<u16>,
    chains: Vec<Vec<PathBuf>>,
}

struct World {
    dir: tempfile::TempDir,
    subtasks: Vec<Subtask>,
    model: HashMap<u16, Vec<u16>>,
    timers: BTreeSet<u16>,
    checkpoint: Option<Checkpoint>,
    names: usize,
}

impl World {
    fn new(parallelism: u32, kind: usize) -> Self {
        let mut w = World {
            dir: tempfile::tempdir().unwrap(),
            subtasks: Vec::new(),
            model: HashMap::new(),
            timers: BTreeSet::new(),
            checkpoint: None,
            names: 0,
        };
        w.subtasks = w.open(parallelism, kind);
        w
    }

    fn name(&mut self, what: &str) -> String {
        self.names += 1;
        format!("{what}-{}", self.names)
    }

    fn open(&mut self, parallelism: u32, kind: usize) -> Vec<Subtask> {
        (0..parallelism)
            .map(|i| {
                let range = KeyGroupRange::for_operator(MAXP, parallelism, i).unwrap();
                let spec = TableSpec::new("lists", MAXP, range).with_incremental(true);
                let name = self.name("table");
                let table = StateTable::open(&backend(kind, self.dir.path()), spec, &name).unwrap();
                Subtask { table, range, chain: Vec::new(), based: false }
            })
            .collect()
    }

    fn owner(&mut self, k: u16) -> &mut Subtask {
        let kg = assign_to_key_group(&k, MAXP);
        let p = self.subtasks.len() as u32;
        &mut self.subtasks[operator_index_for_key_group(MAXP, p, kg)]
    }

    /// Every subtask snapshots; returns each one's file (`None`: not
    /// written, per `how`).
    fn snapshot_all(&mut self, delta: bool, how: u8) -> Vec<Option<PathBuf>> {
        let mut files = Vec::new();
        for i in 0..self.subtasks.len() {
            let name = self.name("snap");
            let file = self.dir.path().join(name);
            let timers = timers_in(&self.timers, self.subtasks[i].range);
            let s = &mut self.subtasks[i];
            let snap = if delta { s.table.snapshot_changes(timers) } else { s.table.snapshot(timers) }.unwrap();
            let expect = if delta && s.based { SnapshotKind::Delta } else { SnapshotKind::Full };
            assert_eq!(snap.kind(), expect, "subtask {i}, based: {}", s.based);
            match how {
                0 => {
                    drop(snap);
                    s.based = false;
                    files.push(None);
                }
                1 => {
                    let nowhere = self.dir.path().join("missing-dir").join("snap");
                    assert!(matches!(snap.write_to(&nowhere), Err(StateError::Io { .. })));
                    s.based = false;
                    files.push(None);
                }
                _ => {
                    snap.write_to(&file).unwrap();
                    if snap.kind() == SnapshotKind::Full {
                        s.chain.clear();
                    }
                    s.chain.push(file.clone());
                    s.based = true;
                    files.push(Some(file));
                }
            }
        }
        files
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Add(k, v) => {
                let before = self.model.get(&k).cloned().unwrap_or_default();
                self.owner(k)
                    .table
                    .with_state(&k, |s| {
                        assert_eq!(s.get(), before.as_slice(), "key {k}");
                        s.add(v);
                        Ok::<_, StateError>(((), false))
                    })
                    .unwrap();
                self.model.entry(k).or_default().push(v);
            }
            Op::Clear(k) => {
                let before = self.model.remove(&k).unwrap_or_default();
                self.owner(k)
                    .table
                    .with_state(&k, |s| {
                        assert_eq!(s.get(), before.as_slice(), "key {k}");
                        s.clear();
                        Ok::<_, StateError>(((), true))
                    })
                    .unwrap();
            }
            Op::Timer(k, true) => _ = self.timers.insert(k),
            Op::Timer(k, false) => _ = self.timers.remove(&k),
            Op::Checkpoint { delta } => {
                self.snapshot_all(delta, 2);
                let chains = self.subtasks.iter().map(|s| s.chain.clone()).collect();
                self.checkpoint = Some(Checkpoint { model: self.model.clone(), timers: self.timers.clone(), chains });
            }
            Op::Abort { delta, how } => _ = self.snapshot_all(delta, how),
            Op::Restore { parallelism, kind, shuffle } => {
                let Some(c) = self.checkpoint.clone() else { return };
                let mut files: Vec<PathBuf> = c.chains.iter().flatten().cloned().collect();
                // A flat list in any order: the headers put it in order.
                let n = files.len().max(1);
                files.rotate_left((shuffle as usize) % n);
                if shuffle & 1 == 1 {
                    files.reverse();
                }
                let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
                let same = parallelism as usize == c.chains.len();
                let mut fresh = self.open(parallelism, kind);
                for (i, s) in fresh.iter_mut().enumerate() {
                    let mut extra = s.table.restore(&refs).unwrap();
                    extra.sort(); // in key order per file, the files chain after chain
                    assert_eq!(extra, timers_in(&c.timers, s.range), "timers of subtask {i} of {parallelism}");
                    if same {
                        s.chain = c.chains[i].clone();
                        s.based = true;
                    }
                }
                self.subtasks = fresh;
                self.model = c.model;
                self.timers = c.timers;
                self.check();
            }
        }
    }

    fn check(&mut self) {
        for k in 0..KEYS {
            let want = self.model.get(&k).cloned();
            assert_eq!(get(&mut self.owner(k).table, k), want, "key {k}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn chains_restore_like_a_hash_map(
        parallelism in 1..=3u32,
        kind in 0..3usize,
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        let mut w = World::new(parallelism, kind);
        for op in ops {
            w.apply(op);
        }
        w.check();
        // Whatever happened, the last checkpoint restores.
        w.apply(Op::Restore { parallelism: 2, kind: 0, shuffle: 1 });
    }
}

fn spec(range: KeyGroupRange) -> TableSpec {
    TableSpec::new("lists", MAXP, range).with_incremental(true)
}

fn all() -> KeyGroupRange {
    KeyGroupRange::new(0, MAXP)
}

/// Deletions become tombstones; a key deleted and added again in one
/// epoch is there; a table restored from a chain continues it.
#[test]
fn deletions_on_every_backend() {
    for kind in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let (full, d1, d2) = (dir.path().join("full"), dir.path().join("d1"), dir.path().join("d2"));
        let mut t = StateTable::<u16, State>::open(&backend(kind, dir.path()), spec(all()), "a").unwrap();
        for k in 0..20 {
            add(&mut t, k, k);
        }
        t.snapshot(Vec::new()).unwrap().write_to(&full).unwrap();
        clear(&mut t, 3); // deleted
        clear(&mut t, 4);
        add(&mut t, 4, 40); // deleted and back
        clear(&mut t, 99); // never there
        add(&mut t, 50, 5); // new
        add(&mut t, 51, 5); // new and gone again: nothing to write
        clear(&mut t, 51);
        clear(&mut t, 5); // deleted, back, and deleted again
        add(&mut t, 5, 50);
        clear(&mut t, 5);
        assert_eq!((get(&mut t, 5), get(&mut t, 51)), (None, None), "backend {kind}");
        let snap = t.snapshot_changes(Vec::new()).unwrap();
        assert_eq!(snap.kind(), SnapshotKind::Delta);
        // Tombstones for 3 and 5, entries for 4 and 50. 51 never reached
        // fjall with a large cache: nothing to delete. In memory a
        // (needless, harmless) tombstone for 51: the memory table cannot
        // tell it from a key that was there at the full snapshot; and with
        // a two-key cache 51 went to fjall at an eviction.
        let written = snap.write_to(&d1).unwrap();
        assert_eq!(written, if kind == 1 { 4 } else { 5 }, "backend {kind}");

        let mut u = StateTable::<u16, State>::open(&backend(kind, dir.path()), spec(all()), "b").unwrap();
        u.restore(&[&d1, &full]).unwrap();
        for k in 0..20 {
            let want = match k {
                3 | 5 => None,
                4 => Some(vec![40]),
                k => Some(vec![k]),
            };
            assert_eq!(get(&mut u, k), want, "backend {kind}, key {k}");
        }
        assert_eq!(get(&mut u, 50), Some(vec![5]));
        assert_eq!(get(&mut u, 51), None);
        // The restored table goes on with the chain.
        clear(&mut u, 50);
        let snap = u.snapshot_changes(Vec::new()).unwrap();
        assert_eq!(snap.kind(), SnapshotKind::Delta);
        assert_eq!(snap.write_to(&d2).unwrap(), 1);
        let chain = |f: &Path| format::read_file_header(f).unwrap().chain.unwrap();
        assert_eq!(chain(&d2).parent, chain(&d1).sequence, "backend {kind}: d2 follows d1");
        assert_eq!((chain(&d2).base, chain(&d1).base), (chain(&full).sequence, chain(&full).sequence));
        let mut v = StateTable::<u16, State>::open(&backend(kind, dir.path()), spec(all()), "c").unwrap();
        v.restore(&[&full, &d1, &d2]).unwrap();
        assert_eq!(get(&mut v, 50), None);
        assert_eq!(get(&mut v, 4), Some(vec![40]));
    }
}

/// The timers (extra entries) come from the newest file of each chain
/// only: a timer deleted after the full snapshot does not come back.
#[test]
fn timers_come_from_the_newest_file() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = (0..3).map(|i| dir.path().join(format!("f{i}"))).collect();
    let mut t = StateTable::<u16, State>::open(&StateBackendConfig::InMemory, spec(all()), "t").unwrap();
    add(&mut t, 1, 1);
    let all_timers: BTreeSet<u16> = [1, 2, 3].into();
    t.snapshot(timers_in(&all_timers, all())).unwrap().write_to(&files[0]).unwrap();
    let fewer: BTreeSet<u16> = [2].into();
    t.snapshot_changes(timers_in(&fewer, all())).unwrap().write_to(&files[1]).unwrap();
    let refs: Vec<&Path> = files[..2].iter().map(PathBuf::as_path).collect();
    let mut u = StateTable::<u16, State>::open(&StateBackendConfig::InMemory, spec(all()), "u").unwrap();
    assert_eq!(u.restore(&refs).unwrap(), timers_in(&fewer, all()));
    // None left: an empty newest file means no timers.
    t.snapshot_changes(Vec::new()).unwrap().write_to(&files[2]).unwrap();
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let mut v = StateTable::<u16, State>::open(&StateBackendConfig::InMemory, spec(all()), "v").unwrap();
    assert_eq!(v.restore(&refs).unwrap(), Vec::<RawEntry>::new());
    assert_eq!(get(&mut v, 1), Some(vec![1]));
}

/// A table without change tracking writes full snapshots whatever it is
/// asked; a snapshot dropped unwritten or whose write failed makes the
/// next one full.
#[test]
fn full_when_a_delta_cannot_follow() {
    let dir = tempfile::tempdir().unwrap();
    let plain = TableSpec::new("lists", MAXP, all());
    let mut t = StateTable::<u16, State>::open(&StateBackendConfig::InMemory, plain, "t").unwrap();
    add(&mut t, 1, 1);
    for _ in 0..2 {
        let snap = t.snapshot_changes(Vec::new()).unwrap();
        assert_eq!(snap.kind(), SnapshotKind::Full);
        snap.write_to(&dir.path().join("plain")).unwrap();
    }

    let mut t = StateTable::<u16, State>::open(&StateBackendConfig::InMemory, spec(all()), "u").unwrap();
    assert_eq!(t.snapshot_changes(Vec::new()).unwrap().kind(), SnapshotKind::Full, "first: dropped unwritten");
    let snap = t.snapshot_changes(Vec::new()).unwrap();
    assert_eq!(snap.kind(), SnapshotKind::Full, "after one dropped unwritten");
    assert!(snap.write_to(&dir.path().join("no-such-dir").join("f")).is_err());
    let snap = t.snapshot_changes(Vec::new()).unwrap();
    assert_eq!(snap.kind(), SnapshotKind::Full, "after a failed write");
    // In flight (not yet written) counts as written: it will be, or the
    // checkpoint fails.
    let next = t.snapshot_changes(Vec::new()).unwrap();
    assert_eq!(next.kind(), SnapshotKind::Delta);
    snap.write_to(&dir.path().join("ok")).unwrap();
    next.write_to(&dir.path().join("ok2")).unwrap();
    assert_eq!(t.snapshot_changes(Vec::new()).unwrap().kind(), SnapshotKind::Delta);
}

/// Writes a full file and two deltas of a table with `n` keys; returns
/// their paths.
fn chain_files(dir: &Path, n: u16) -> Vec<PathBuf> {
    let files: Vec<PathBuf> = ["full", "d1", "d2"].iter().map(|f| dir.join(f)).collect();
    let mut t = StateTable::<u16, State>::open(&StateBackendConfig::InMemory, spec(all()), "t").unwrap();
    for k in 0..n {
        add(&mut t, k, k);
    }
    t.snapshot(vec![timer(1)]).unwrap().write_to(&files[0]).unwrap();
    for k in 0..n / 3 {
        add(&mut t, k, 7);
    }
    clear(&mut t, n - 1);
    t.snapshot_changes(vec![timer(1)]).unwrap().write_to(&files[1]).unwrap();
    add(&mut t, 0, 8);
    t.snapshot_changes(vec![timer(1)]).unwrap().write_to(&files[2]).unwrap();
    files
}

/// A delta without its full file or its parent, or twice, and two chains
/// of one writer, are errors naming a file, before anything is restored.
#[test]
fn broken_chains_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let f = chain_files(dir.path(), 50);
    let restore = |files: &[&PathBuf]| {
        let mut t = StateTable::<u16, State>::open(&StateBackendConfig::InMemory, spec(all()), "r").unwrap();
        let refs: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
        let r = t.restore(&refs);
        (r, t.get(&0).unwrap())
    };
    let (r, _) = restore(&[&f[2], &f[0], &f[1]]);
    assert_eq!(r.unwrap().len(), 1);
    for (files, names) in
        [(vec![&f[1], &f[2]], "d1"), (vec![&f[0], &f[2]], "d2"), (vec![&f[0], &f[1], &f[1], &f[2]], "d1")]
    {
        match restore(&files) {
            (Err(StateError::BrokenChain { path, reason }), None) => {
                assert!(path.ends_with(names), "{}: {reason}", path.display())
            }
            other => panic!("{files:?}: {other:?}"),
        }
    }
    // Two chains of the same writer (an older full file passed along).
    let mut t = StateTable::<u16, State>::open(&StateBackendConfig::InMemory, spec(all()), "t2").unwrap();
    add(&mut t, 1, 1);
    let other = dir.path().join("other");
    t.snapshot(Vec::new()).unwrap().write_to(&other).unwrap();
    assert!(matches!(restore(&[&f[0], &f[1], &other]), (Err(StateError::BrokenChain { .. }), None)));
}

/// Every flipped byte and every truncation of a delta is a
/// `StateError::Corrupt` naming it, never a panic.
#[test]
fn a_damaged_delta_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let f = chain_files(dir.path(), 300);
    let good = std::fs::read(&f[1]).unwrap();
    let bad = dir.path().join("bad");
    let step = (good.len() / 151).max(1);
    for pos in (0..good.len()).step_by(step).chain([good.len() - 1]) {
        for damage in ["flip", "truncate"] {
            let mut bytes = good.clone();
            match damage {
                "flip" => bytes[pos] ^= 0x5a,
                _ => bytes.truncate(pos),
            }
            std::fs::write(&bad, &bytes).unwrap();
            let mut t = StateTable::<u16, State>::open(&StateBackendConfig::InMemory, spec(all()), "r").unwrap();
            match t.restore(&[&f[0], &bad]) {
                Err(StateError::Corrupt { path, .. }) => assert!(path.ends_with("bad"), "{}", path.display()),
                other => panic!("{damage} at {pos} of {}: {other:?}", good.len()),
            }
        }
    }
}

/// Rewrites a version 2 file with a chain field as a version 1 file (the
/// format before incremental snapshots): no chain field.
fn as_version_1(bytes: &[u8]) -> Vec<u8> {
    let be16 = |at: usize| u16::from_be_bytes([bytes[at], bytes[at + 1]]) as usize;
    let mut at = 12;
    for _ in 0..be16(10) {
        at += 2;
        at += 2 + be16(at);
        at += 2 + be16(at);
    }
    let mut header = bytes[..at].to_vec();
    header[8..10].copy_from_slice(&1u16.to_be_bytes());
    let crc = crc32c::crc32c(&header);
    header.extend_from_slice(&crc.to_be_bytes());
    header.extend_from_slice(&bytes[at + 33 + 4..]);
    header
}

/// Full files of format version 1 restore (as stand-alone full files);
/// an unknown version is an error saying which versions are read.
#[test]
fn version_1_files_restore() {
    let dir = tempfile::tempdir().unwrap();
    let f = chain_files(dir.path(), 40);
    let old = dir.path().join("old");
    std::fs::write(&old, as_version_1(&std::fs::read(&f[0]).unwrap())).unwrap();
    let header = format::read_file_header(&old).unwrap();
    assert_eq!((header.version, header.chain), (1, None));
    let mut t = StateTable::<u16, State>::open(&StateBackendConfig::InMemory, spec(all()), "t").unwrap();
    assert_eq!(t.restore(&[&old]).unwrap(), vec![timer(1)]);
    assert_eq!(get(&mut t, 39), Some(vec![39]));
    // Restored from a file without a chain: the next snapshot is full.
    assert_eq!(t.snapshot_changes(Vec::new()).unwrap().kind(), SnapshotKind::Full);

    let mut bytes = std::fs::read(&f[0]).unwrap();
    bytes[8..10].copy_from_slice(&9u16.to_be_bytes());
    std::fs::write(&old, bytes).unwrap();
    match t.restore(&[&old]) {
        Err(StateError::Corrupt { reason, .. }) => assert!(reason.contains("versions 1 to 2"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

/// Restores at another parallelism take their key groups out of every
/// old subtask's chain; the next snapshot is full.
#[test]
fn rescaled_restore_from_chains() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for i in 0..2 {
        let range = KeyGroupRange::for_operator(MAXP, 2, i).unwrap();
        let mut t = StateTable::<u16, State>::open(&StateBackendConfig::InMemory, spec(range), "t").unwrap();
        let mine: Vec<u16> = (0..200).filter(|k| range.contains(assign_to_key_group(k, MAXP))).collect();
        mine.iter().for_each(|k| add(&mut t, *k, 1));
        let full = dir.path().join(format!("full-{i}"));
        t.snapshot(Vec::new()).unwrap().write_to(&full).unwrap();
        mine.iter().filter(|k| *k % 2 == 0).for_each(|k| add(&mut t, *k, 2));
        mine.iter().filter(|k| *k % 5 == 0).for_each(|k| clear(&mut t, *k));
        let delta = dir.path().join(format!("delta-{i}"));
        t.snapshot_changes(Vec::new()).unwrap().write_to(&delta).unwrap();
        files.extend([delta, full]);
    }
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    for i in 0..3 {
        let range = KeyGroupRange::for_operator(MAXP, 3, i).unwrap();
        let mut t = StateTable::<u16, State>::open(&StateBackendConfig::InMemory, spec(range), "n").unwrap();
        t.restore(&refs).unwrap();
        for k in (0..200).filter(|k| range.contains(assign_to_key_group(k, MAXP))) {
            let want = match (k % 5, k % 2) {
                (0, _) => None,
                (_, 0) => Some(vec![1, 2]),
                _ => Some(vec![1]),
            };
            assert_eq!(get(&mut t, k), want, "key {k} in subtask {i} of 3");
        }
        assert_eq!(t.snapshot_changes(Vec::new()).unwrap().kind(), SnapshotKind::Full);
    }
}
