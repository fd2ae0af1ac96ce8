//! The fjall backend keeps state much larger than its memory: it writes
//! 5 million keys under a small memory configuration and checks that the
//! process's resident memory stays under a stated bound, well below the
//! state's size on disk.
//!
//! The test runs itself again in a process of its own (the unit test
//! binary, asked for this one test), so the resident set measured is this
//! test's alone, not that of the tests running beside it. It takes about 25 s on 2
//! cores (about 32 s with a competing busy process; fjall is built
//! optimized in the dev and test profiles, see the workspace's
//! Cargo.toml) and up to about 0.65 GiB of temporary disk.

use super::{FjallBackend, FjallConfig};
use crate::backend::{StateBackend, StateKey};
use std::path::Path;
use std::time::Instant;

const KEYS: u64 = 5_000_000;
const VALUE_BYTES: usize = 64;
const KEY_GROUPS: u64 = 128;
const MIB: u64 = 1 << 20;

/// A small memory configuration: an 8 MiB block cache, 8 MiB write buffers.
const CACHE_BYTES: u64 = 8 * MIB;
const WRITE_BUFFER_BYTES: u64 = 8 * MIB;

/// The stated bound on the process's peak resident memory (`VmHWM`).
///
/// What the configuration allows: the cache (8 MiB), up to 5 write
/// buffers (the active one and 4 sealed ones waiting for their flush:
/// 40 MiB as fjall counts entries, about 55 MiB as skiplist nodes and
/// value allocations), the pinned filter and index blocks of levels 0
/// and 1 (whose sizes the compaction strategy bounds), the workers'
/// buffers and stacks: about 90 MiB at worst. Measured on the 2-core
/// development machine over 5 runs (one with a competing busy process):
/// peaks of 64–79 MiB, reached by about 2M keys and then flat, while the
/// state on disk grows to 480–500 MiB (up to 640 MiB mid-compaction).
/// 128 MiB leaves a margin of over 1.6x. Without the backend's own
/// write-buffer rotation (fjall's background rotation alone) the same run
/// peaked at 320–400 MiB, growing with the amount written.
const RSS_BOUND: u64 = 128 * MIB;

/// The state on disk must be at least this large: the entries alone are
/// 5M × (12-byte key + 64 incompressible bytes) = 362 MiB, plus filters,
/// indexes and the journal; 2.5 × the memory bound.
const MIN_DISK: u64 = 320 * MIB;

/// SplitMix64: pseudo-random, so values do not compress.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn key(i: u64) -> StateKey {
    StateKey::new((mix(i) % KEY_GROUPS) as u16, 1, &i.to_be_bytes(), b"")
}

fn value(i: u64) -> [u8; VALUE_BYTES] {
    let mut v = [0u8; VALUE_BYTES];
    for (n, chunk) in v.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&mix(i.wrapping_mul(31).wrapping_add(n as u64 + 1)).to_le_bytes());
    }
    v
}

/// A line of /proc/self/status, in bytes (the kernel reports kB).
fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field} line"));
    let kb: u64 = line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("a number of kB");
    kb * 1024
}

fn disk_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).expect("read the store's directory") {
        let entry = entry.expect("a directory entry");
        let meta = entry.metadata().expect("metadata");
        total += if meta.is_dir() { disk_bytes(&entry.path()) } else { meta.len() };
    }
    total
}

/// Set in the process that measures.
const CHILD: &str = "DATAFLOW_STATE_MEMORY_TEST_CHILD";

#[test]
fn five_million_keys_in_bounded_memory() {
    if std::env::var_os(CHILD).is_none() {
        let module = module_path!().split_once("::").map_or(module_path!(), |(_, m)| m);
        let name = format!("{module}::five_million_keys_in_bounded_memory");
        let exe = std::env::current_exe().expect("the test binary");
        let out = std::process::Command::new(exe)
            .args([name.as_str(), "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .output()
            .expect("run the test in a process of its own");
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        eprintln!("{stderr}");
        assert!(out.status.success(), "{name} in a process of its own: {}\n{stdout}", out.status);
        // Not a filter that matched nothing.
        assert!(stdout.contains("1 passed"), "{name} did not run:\n{stdout}");
        return;
    }
    in_bounded_memory();
}

/// The test itself, in a process of its own.
fn in_bounded_memory() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("db");
    let config =
        FjallConfig { cache_bytes: CACHE_BYTES, write_buffer_bytes: WRITE_BUFFER_BYTES, ..FjallConfig::new(&path) };
    let mut backend = FjallBackend::open(config).expect("open the store");
    let start = Instant::now();
    let rss_before = status_bytes("VmRSS:");
    let mut rss_max = rss_before;
    for i in 0..KEYS {
        backend.put(&key(i), &value(i)).expect("put");
        if i % 250_000 == 0 {
            let rss = status_bytes("VmRSS:");
            rss_max = rss_max.max(rss);
            eprintln!(
                "{i:>9} keys  {:>5.1}s  rss {:>4} MiB  disk {:>4} MiB",
                start.elapsed().as_secs_f64(),
                rss / MIB,
                disk_bytes(&path) / MIB
            );
        }
    }
    let written = start.elapsed();
    // Everything is readable back.
    for i in (0..KEYS).step_by(4999) {
        assert_eq!(backend.get(&key(i)).expect("get").as_deref(), Some(&value(i)[..]), "key {i}");
    }
    rss_max = rss_max.max(status_bytes("VmRSS:"));
    let peak = status_bytes("VmHWM:");
    let disk = disk_bytes(&path);
    eprintln!(
        "{KEYS} keys written in {:.1}s (total {:.1}s); rss before {} MiB, max sampled {} MiB, peak (VmHWM) {} MiB; disk {} MiB",
        written.as_secs_f64(),
        start.elapsed().as_secs_f64(),
        rss_before / MIB,
        rss_max / MIB,
        peak / MIB,
        disk / MIB
    );
    assert!(disk >= MIN_DISK, "the state on disk is {} MiB, expected at least {} MiB", disk / MIB, MIN_DISK / MIB);
    assert!(
        peak < RSS_BOUND,
        "peak resident memory {} MiB is over the bound of {} MiB (state on disk: {} MiB)",
        peak / MIB,
        RSS_BOUND / MIB,
        disk / MIB
    );
    assert!(rss_max < RSS_BOUND);
    assert!(peak * 2 < disk, "resident memory {} MiB is not well below the state's {} MiB", peak / MIB, disk / MIB);
}
