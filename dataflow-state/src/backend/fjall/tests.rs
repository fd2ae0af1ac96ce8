//! Tests of the fjall backend.

use super::*;
use crate::backend::MemoryBackend;

fn open(dir: &tempfile::TempDir) -> FjallBackend {
    FjallBackend::open(FjallConfig::new(dir.path().join("db"))).unwrap()
}

fn scan(b: &dyn StateBackend, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    b.scan_prefix(prefix, &mut |k, v| {
        out.push((k.to_vec(), v.to_vec()));
        true
    })
    .unwrap();
    out
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
fn fill(b: &mut dyn StateBackend) {
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
    assert!(matches!(b.put(&k, b"v"), Err(StateError::Backend(_))));
    assert_eq!(b.get(&k).unwrap(), None);
    b.delete(&k).unwrap();
    let ok = StateKey::new(0, 0, &vec![7u8; MAX_KEY_LEN - 4], b"");
    b.put(&ok, b"v").unwrap();
    assert_eq!(b.get(&ok).unwrap().as_deref(), Some(&b"v"[..]));
}

#[test]
fn scan_prefix_is_ordered_and_contiguous() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = open(&dir);
    let mut m = MemoryBackend::new();
    fill(&mut b);
    fill(&mut m);
    for prefix in [
        &[][..],
        &[0][..],
        &[0, 7][..],
        StateKey::new(7, 3, b"", b"").as_bytes(),
        StateKey::new(7, 3, b"bb", b"").as_bytes(),
        StateKey::new(64, 0, b"c", b"x").as_bytes(),
        StateKey::new(5, 0, b"", b"").as_bytes(),
    ] {
        let got = scan(&b, prefix);
        assert!(got.windows(2).all(|w| w[0].0 < w[1].0), "not in key order");
        assert!(got.iter().all(|(k, _)| k.starts_with(prefix)));
        assert_eq!(got, scan(&m, prefix), "prefix {prefix:?}");
    }
    assert_eq!(scan(&b, StateKey::new(7, 3, b"bb", b"").as_bytes()).len(), 3);
    // Stops early.
    let mut n = 0;
    b.scan_prefix(&[0, 7], &mut |_, _| {
        n += 1;
        n < 2
    })
    .unwrap();
    assert_eq!(n, 2);
}

#[test]
fn delete_prefix_removes_only_the_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = open(&dir);
    fill(&mut b);
    let all = scan(&b, &[]).len();
    b.delete_prefix(StateKey::new(7, 3, b"a", b"").as_bytes()).unwrap();
    assert_eq!(scan(&b, StateKey::new(7, 3, b"a", b"").as_bytes()), []);
    assert_eq!(scan(&b, &[]).len(), all - 3);
    b.delete_prefix(&[0, 64]).unwrap();
    assert_eq!(scan(&b, &[0, 64]), []);
    assert_eq!(scan(&b, &[]).len(), all - 3 - 18);
}

#[test]
fn snapshot_is_isolated_from_later_writes() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = open(&dir);
    fill(&mut b);
    let before = scan(&b, &[]);
    let snap = b.snapshot(KeyGroupRange::new(0, 128)).unwrap();
    b.put(&StateKey::new(1, 0, b"a", b""), b"changed").unwrap();
    b.put(&StateKey::new(1, 0, b"new", b""), b"added").unwrap();
    b.delete(&StateKey::new(2, 0, b"a", b"")).unwrap();
    b.delete_prefix(&[0, 63]).unwrap();
    assert_ne!(scan(&b, &[]), before);
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
    let before = scan(&b, &[]);
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
    b.delete_prefix(&[0, 9]).unwrap();
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
    let all = scan(&b, &[]);
    for (start, end) in [(0, 128), (1, 64), (7, 8), (64, 128), (8, 63), (127, 65536), (5, 5), (200, 300)] {
        let got = entries(&b.snapshot(KeyGroupRange::new(start, end)).unwrap());
        let want: Vec<_> = all
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
    let want = scan(&b, &[]);
    let snap = b.snapshot(KeyGroupRange::new(0, 128)).unwrap();
    drop(b);
    assert_eq!(entries(&snap), want);
}

#[test]
fn entries_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = open(&dir);
    fill(&mut b);
    let want = scan(&b, &[]);
    drop(b);
    assert_eq!(scan(&open(&dir), &[]), want);
}

#[test]
fn snapshots_move_between_fjall_and_memory() {
    let dir = tempfile::tempdir().unwrap();
    let subset = KeyGroupRange::new(2, 64);
    let in_subset = |e: &(Vec<u8>, Vec<u8>)| subset.contains(u32::from(u16::from_be_bytes([e.0[0], e.0[1]])));

    // fjall -> memory: a full snapshot, restored for a subset.
    let mut f = open(&dir);
    fill(&mut f);
    let full = scan(&f, &[]);
    let file = dir.path().join("from-fjall");
    let n = f.snapshot(KeyGroupRange::new(0, 128)).unwrap().write_to(&file, &[]).unwrap();
    assert_eq!(n as usize, full.len());
    let mut m = MemoryBackend::new();
    m.restore(&[&file], subset).unwrap();
    let want: Vec<_> = full.iter().filter(|e| in_subset(e)).cloned().collect();
    assert!(!want.is_empty() && want.len() < full.len());
    assert_eq!(scan(&m, &[]), want);

    // memory -> fjall: two files (two old subtasks), restored for a subset.
    let mut low = MemoryBackend::new();
    let mut high = MemoryBackend::new();
    fill(&mut low);
    fill(&mut high);
    let (low_file, high_file) = (dir.path().join("low"), dir.path().join("high"));
    low.snapshot(KeyGroupRange::new(0, 64)).unwrap().write_to(&low_file, &[]).unwrap();
    high.snapshot(KeyGroupRange::new(64, 128)).unwrap().write_to(&high_file, &[]).unwrap();
    let mut g = FjallBackend::open(FjallConfig::new(dir.path().join("db2"))).unwrap();
    g.restore(&[&low_file, &high_file], subset).unwrap();
    assert_eq!(scan(&g, &[]), want);

    // And fjall -> fjall through a subset snapshot.
    let sub_file = dir.path().join("sub");
    g.snapshot(KeyGroupRange::new(7, 8)).unwrap().write_to(&sub_file, &[]).unwrap();
    let mut h = FjallBackend::open(FjallConfig::new(dir.path().join("db3"))).unwrap();
    h.restore(&[&sub_file], KeyGroupRange::new(0, 128)).unwrap();
    assert_eq!(scan(&h, &[]), scan(&g, &[0, 7]));
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
    assert!(matches!(err, StateError::Io { .. }), "{err:?}");
    let _b = open(&dir);
    let err = FjallBackend::open(FjallConfig::new(dir.path().join("db"))).unwrap_err();
    assert!(matches!(&err, StateError::Backend(m) if m.contains("cannot open")), "{err:?}");
}
