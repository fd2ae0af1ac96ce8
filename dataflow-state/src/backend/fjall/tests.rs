//! Tests of the fjall backend.

use super::*;
use std::error::Error as _;

fn open(dir: &tempfile::TempDir) -> FjallBackend {
    FjallBackend::open(FjallConfig::new(dir.path().join("db"))).unwrap()
}

/// Every entry, in key order (a snapshot of every key group).
fn all(b: &mut FjallBackend) -> Vec<(Vec<u8>, Vec<u8>)> {
    entries(&b.snapshot(KeyGroupRange::new(0, 1 << 16)).unwrap())
}

fn entries(s: &Snapshot) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    s.for_each(&mut |k, v| {
        out.push((k.to_vec(), v.to_vec()));
        Ok(())
    })
    .unwrap();
    out
}

/// Entries in several key groups, states and keys.
fn fill(b: &mut FjallBackend) {
    for kg in [0u16, 1, 2, 7, 63, 64, 127] {
        for state in [0u16, 3] {
            for key in [&b"a"[..], b"bb", b"c"] {
                for user in [&b""[..], b"x", b"y"] {
                    let v = format!("{kg}/{state}/{key:?}/{user:?}");
                    b.put(&StateKey::new(kg, state, key, user), v.as_bytes()).unwrap();
                }
            }
        }
    }
}

#[test]
fn put_get_delete() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = open(&dir);
    let k = StateKey::new(9, 2, b"key", b"");
    assert_eq!(b.get(&k).unwrap(), None);
    b.put(&k, b"one").unwrap();
    assert_eq!(b.get(&k).unwrap().as_deref(), Some(&b"one"[..]));
    b.put(&k, b"two").unwrap();
    assert_eq!(b.get(&k).unwrap().as_deref(), Some(&b"two"[..]));
    b.put(&k, b"").unwrap();
    assert_eq!(b.get(&k).unwrap().as_deref(), Some(&b""[..]));
    b.delete(&k).unwrap();
    assert_eq!(b.get(&k).unwrap(), None);
    b.delete(&k).unwrap(); // deleting what is not there is fine
}

#[test]
fn too_long_keys_are_refused_not_panicked_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = open(&dir);
    let k = StateKey::new(0, 0, &vec![7u8; MAX_KEY_LEN], b"");
    assert!(matches!(b.put(&k, b"v"), Err(StateError::TooLarge { what: "key", len, .. }) if len == MAX_KEY_LEN + 4));
    assert_eq!(b.get(&k).unwrap(), None);
    b.delete(&k).unwrap();
    let ok = StateKey::new(0, 0, &vec![7u8; MAX_KEY_LEN - 4], b"");
    b.put(&ok, b"v").unwrap();
    assert_eq!(b.get(&ok).unwrap().as_deref(), Some(&b"v"[..]));
}

#[test]
fn snapshot_is_isolated_from_later_writes() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = open(&dir);
    fill(&mut b);
    let before = all(&mut b);
    let snap = b.snapshot(KeyGroupRange::new(0, 128)).unwrap();
    b.put(&StateKey::new(1, 0, b"a", b""), b"changed").unwrap();
    b.put(&StateKey::new(1, 0, b"new", b""), b"added").unwrap();
    b.delete(&StateKey::new(2, 0, b"a", b"")).unwrap();
    assert_ne!(all(&mut b), before);
    // Read on another thread while the backend keeps changing.
    let reader = std::thread::spawn(move || entries(&snap));
    for i in 0..1000u32 {
        b.put(&StateKey::new(3, 0, &i.to_be_bytes(), b""), b"later").unwrap();
    }
    assert_eq!(reader.join().unwrap(), before);
}

#[test]
fn snapshot_survives_flushes_and_compactions() {
    let dir = tempfile::tempdir().unwrap();
    let config = FjallConfig { cache_bytes: 1 << 20, write_buffer_bytes: 256 << 10, ..FjallConfig::new(dir.path()) };
    let mut b = FjallBackend::open(config).unwrap();
    let key = |i: u32| StateKey::new((i % 128) as u16, 0, &i.to_be_bytes(), b"");
    for i in 0..5000u32 {
        b.put(&key(i), &[1; 100]).unwrap();
    }
    let before = all(&mut b);
    let snap = b.snapshot(KeyGroupRange::new(0, 128)).unwrap();
    // Overwrite and delete everything a few times over: many memtables
    // are flushed and compacted while the snapshot is pinned.
    for round in 2..8u8 {
        for i in 0..5000u32 {
            if i % 7 == 0 {
                b.delete(&key(i)).unwrap();
            } else {
                b.put(&key(i), &[round; 100]).unwrap();
            }
        }
    }
    assert_eq!(b.get(&key(1)).unwrap().as_deref(), Some(&[7; 100][..]));
    assert_eq!(b.get(&key(7)).unwrap(), None);
    assert_eq!(entries(&snap), before);
    assert_eq!(before.len(), 5000);
}

#[test]
fn snapshot_covers_its_key_group_range_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = open(&dir);
    fill(&mut b);
    let everything = all(&mut b);
    for (start, end) in [(0, 128), (1, 64), (7, 8), (64, 128), (8, 63), (127, 65536), (5, 5), (200, 300)] {
        let got = entries(&b.snapshot(KeyGroupRange::new(start, end)).unwrap());
        let want: Vec<_> = everything
            .iter()
            .filter(|(k, _)| KeyGroupRange::new(start, end).contains(u32::from(u16::from_be_bytes([k[0], k[1]]))))
            .cloned()
            .collect();
        assert_eq!(got, want, "range {start}..{end}");
    }
    // The last key group is included when the range ends past it.
    b.put(&StateKey::new(u16::MAX, 0, b"k", b""), b"v").unwrap();
    assert_eq!(entries(&b.snapshot(KeyGroupRange::new(65535, 65536)).unwrap()).len(), 1);
}

#[test]
fn snapshot_outlives_the_backend() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = open(&dir);
    fill(&mut b);
    let want = all(&mut b);
    let snap = b.snapshot(KeyGroupRange::new(0, 128)).unwrap();
    drop(b);
    assert_eq!(entries(&snap), want);
}

#[test]
fn entries_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = open(&dir);
    fill(&mut b);
    let want = all(&mut b);
    assert_eq!(want.len(), 7 * 2 * 3 * 3);
    drop(b);
    assert_eq!(all(&mut open(&dir)), want);
}

#[test]
fn the_backend_and_its_snapshots_are_send() {
    fn send<T: Send>() {}
    send::<FjallBackend>();
    send::<FjallView>();
}

#[test]
fn open_reports_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let err = FjallBackend::open(FjallConfig::new(file.join("db"))).unwrap_err();
    match &err {
        StateError::Io { path, source } => {
            assert_eq!(path, &file.join("db"));
            assert_ne!(source.kind(), std::io::ErrorKind::NotFound, "{err:?}");
        }
        other => panic!("{other:?}"),
    }
    assert!(err.source().is_some_and(|s| s.is::<std::io::Error>()));
    // A store is opened by one backend at a time.
    let _b = open(&dir);
    let err = FjallBackend::open(FjallConfig::new(dir.path().join("db"))).unwrap_err();
    match &err {
        StateError::Backend { path, operation: "open", .. } => assert_eq!(path, &dir.path().join("db")),
        other => panic!("{other:?}"),
    }
    assert!(err.source().is_some_and(|s| s.is::<fjall::Error>()), "{err:?}");
}

#[test]
fn the_default_configuration() {
    let c = FjallConfig::new("/tmp/state");
    assert_eq!((c.cache_bytes, c.write_buffer_bytes), (32 << 20, 16 << 20));
    assert_eq!(c.journal_bytes(), MIN_JOURNAL_BYTES);
    let big = FjallConfig { write_buffer_bytes: 64 << 20, ..c };
    assert_eq!(big.journal_bytes(), 256 << 20);
}

/// A pinned view keeps what was written before it, whatever happens to
/// the store (or the backend) after.
#[test]
fn a_pinned_view_reads_the_past() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = open(&dir);
    let k = StateKey::new(5, 1, b"alice", b"");
    b.put(&k, b"1").unwrap();
    let pinned = b.pin();
    b.delete(&k).unwrap();
    b.put(&StateKey::new(5, 1, b"bob", b""), b"2").unwrap();
    assert_eq!(b.get(&k).unwrap(), None);
    drop(b);
    assert_eq!(pinned.get(k.as_bytes()).unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(pinned.get(StateKey::new(5, 1, b"bob", b"").as_bytes()).unwrap(), None);
    assert_eq!(pinned.get(&vec![0; MAX_KEY_LEN + 1]).unwrap(), None, "a key fjall cannot hold");
}
