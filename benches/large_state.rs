//! The large-state job (issue 19): keyed `ValueState` of about 125 bytes
//! per key (a 100-byte payload and a counter), keys uniform, on the memory
//! or the fjall backend, optionally checkpointing. Not a criterion bench:
//! one run, with a progress line every few seconds (records/s, resident
//! memory, bytes written to disk) and a summary at the end.
//!
//! ```text
//! cargo bench --bench large_state -- --keys 10000000 --records 20000000 --backend fjall \
//!     [--parallelism 2] [--checkpoint-every 5] [--dir /path/on/a/big/disk]
//! ```

/// A program that keeps large state on fjall picks an allocator that gives
/// freed memory back: with glibc's, the blocking threads that write
/// snapshots each get an arena of their own that keeps what was freed in
/// it (measured at 2M keys with a checkpoint every 5 s: peak RSS 537 MiB
/// with glibc, 297 MiB with `MALLOC_ARENA_MAX=2`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use dataflow_core::checkpoint::coordinator::CheckpointConfig;
use dataflow_core::{FjallStateConfig, StateBackendConfig, StreamEnvironment, ValueState, operator};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What each key keeps.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
struct Kept {
    payload: Vec<u8>,
    count: u64,
}

/// Keeps a payload per key and counts its records.
#[operator]
fn remember(key: u64, kept: &mut ValueState<Kept>) -> u64 {
    let k = kept.get_or_insert_with(|| Kept { payload: vec![(key % 251) as u8; 100], count: 0 });
    k.count += 1;
    k.count
}

struct Args {
    keys: u64,
    records: u64,
    backend: String,
    parallelism: usize,
    checkpoint_every: Option<u64>,
    dir: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        keys: 1_000_000,
        records: 2_000_000,
        backend: "fjall".into(),
        parallelism: 2,
        checkpoint_every: None,
        dir: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--keys" => a.keys = value().parse().expect("--keys N"),
            "--records" => a.records = value().parse().expect("--records N"),
            "--backend" => a.backend = value(),
            "--parallelism" => a.parallelism = value().parse().expect("--parallelism N"),
            "--checkpoint-every" => a.checkpoint_every = Some(value().parse().expect("--checkpoint-every SECONDS")),
            "--dir" => a.dir = Some(value()),
            // What `cargo bench` passes to every bench.
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

/// A line of `/proc/self/<file>` that starts with `field`, its number.
fn proc_field(file: &str, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/self/{file}")).unwrap_or_default();
    let line = text.lines().find(|l| l.starts_with(field)).unwrap_or_default();
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

fn main() {
    let a = args();
    let tmp = tempfile::tempdir().expect("a temporary folder");
    let dir = a.dir.as_ref().map_or_else(|| tmp.path().to_path_buf(), std::path::PathBuf::from);
    let env = StreamEnvironment::new().with_parallelism(a.parallelism);
    match a.backend.as_str() {
        "memory" => env.set_state_backend(StateBackendConfig::InMemory),
        "fjall" => env.set_state_backend(StateBackendConfig::Fjall(FjallStateConfig::new(dir.join("state")))),
        other => panic!("--backend memory|fjall, not {other}"),
    }
    let checkpoints = a
        .checkpoint_every
        .map(|s| env.enable_checkpointing(CheckpointConfig::every(Duration::from_secs(s)), dir.join("checkpoints")));
    let (keys, records, p) = (a.keys, a.records, a.parallelism as u64);
    let done = Arc::new(AtomicU64::new(0));
    let d = done.clone();
    env.from_parallel_iter(move |info| {
        let s = info.subtask as u64;
        // Record j of all: key = a mix of j, uniform over the keys.
        (s..records).step_by(p as usize).map(move |j| j.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17) % keys)
    })
    .key_by(|k: &u64| *k)
    .apply(remember())
    .for_each(move |_| {
        d.fetch_add(1, Ordering::Relaxed);
    });

    let finished = Arc::new(AtomicBool::new(false));
    let f = finished.clone();
    let start = Instant::now();
    let written_before = proc_field("io", "write_bytes:");
    let progress = std::thread::spawn(move || {
        let mut last = (Instant::now(), 0);
        while !f.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(200));
            if last.0.elapsed() < Duration::from_secs(5) {
                continue;
            }
            let n = done.load(Ordering::Relaxed);
            let rate = (n - last.1) as f64 / last.0.elapsed().as_secs_f64();
            let written = proc_field("io", "write_bytes:") - written_before;
            eprintln!(
                "{:>6.1} s  {:>5.1} %  {:>9.0} records/s  RSS {:>7.1} MiB  written {:>8.1} MiB",
                start.elapsed().as_secs_f64(),
                100.0 * n as f64 / records as f64,
                rate,
                proc_field("status", "VmRSS:") as f64 / 1024.0,
                mib(written)
            );
            last = (Instant::now(), n);
        }
    });
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(env.execute()).expect("the job");
    finished.store(true, Ordering::Relaxed);
    progress.join().unwrap();
    let secs = start.elapsed().as_secs_f64();
    // Each checkpoint: how long it took and how much keyed state it wrote
    // (incremental on fjall by default: what changed since the previous).
    for c in checkpoints.iter().flat_map(|h| h.stats()) {
        println!(
            "checkpoint {:>3}: {:>7.2} s (synchronous {:.3} s), {:>8.1} MiB of state",
            c.id,
            c.duration.as_secs_f64(),
            c.synchronous.as_secs_f64(),
            mib(c.state_bytes)
        );
    }
    println!(
        "large_state: {keys} keys, {records} records, {}, p={p}{}: {:.0} records/s, peak RSS {:.1} MiB, \
         {:.1} MiB written to disk",
        a.backend,
        a.checkpoint_every.map_or(String::new(), |s| format!(", checkpoint every {s} s")),
        records as f64 / secs,
        proc_field("status", "VmHWM:") as f64 / 1024.0,
        mib(proc_field("io", "write_bytes:") - written_before)
    );
}
