//! Checkpoints and savepoints on an object store (issue 17): a real
//! S3-compatible server (moto, started by the test on a free port) holds
//! the checkpoints of a job writing transactional files. The job fails
//! mid-stream and restarts from its checkpoint on S3; it is run again from
//! S3 after it finished; its newest checkpoint is damaged on S3 (the
//! restart fails naming the object, and falls back when allowed); and a
//! savepoint uploaded to S3 is restored from its URL. The committed output
//! is compared with the list of every record, each exactly once.
//!
//! The server is moto (`pip install 'moto[server]'`); without it the tests
//! fail, saying so.

#[path = "support/phased_job.rs"]
mod phased_job;

mod common;

use common::s3::Moto;
use common::{Gate, gate, stop_at_gates};
use dataflow_core::checkpoint::coordinator::CheckpointConfig;
use dataflow_core::connectors::two_phase::read_committed;
use dataflow_core::{Error, StreamEnvironment};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use phased_job::{CHECKPOINTS, assert_exactly_once, checkpoint_dirs, run_job, run_job_failing};
use std::sync::Arc;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// The objects under `prefix`, as paths below it.
fn objects(store: &Arc<dyn ObjectStore>, prefix: &str) -> Vec<String> {
    use futures::TryStreamExt;
    let p = ObjectPath::from(prefix);
    let mut names: Vec<String> = rt()
        .block_on(store.list(Some(&p)).map_ok(|m| m.location.to_string()).try_collect::<Vec<_>>())
        .unwrap()
        .into_iter()
        .map(|n| n.trim_start_matches(prefix).trim_start_matches('/').to_string())
        .collect();
    names.sort();
    names
}

/// The ids of the complete checkpoints under `prefix`, newest first.
fn complete(store: &Arc<dyn ObjectStore>, prefix: &str) -> Vec<u64> {
    let mut ids: Vec<u64> = objects(store, prefix)
        .iter()
        .filter_map(|n| n.strip_suffix("/_metadata")?.strip_prefix("chk-")?.parse().ok())
        .collect();
    ids.sort_by_key(|id| std::cmp::Reverse(*id));
    ids
}

#[test]
fn a_job_checkpointing_to_s3_fails_restarts_and_falls_back_past_damage_exactly_once() {
    let moto = Moto::start();
    moto.create_bucket("checkpoints");
    let store = moto.store("checkpoints");
    let owned = moto.options();
    let options: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let prefix = "jobs/numbers".to_string();
    let url = &format!("s3://checkpoints/{prefix}");
    let out = tempfile::tempdir().unwrap();

    // Fails at the third pause (checkpoints 1 and 2 complete), restarts
    // from checkpoint 2 on S3, runs to its end.
    run_job_failing(url, out.path(), |c| c, &options, Some(3)).unwrap();
    assert_exactly_once(out.path());
    // 4 retained, the newest the final one (ids go on after the restart).
    let ids = complete(&store, &prefix);
    assert_eq!(ids, (2..=CHECKPOINTS + 1).rev().collect::<Vec<_>>(), "{:?}", objects(&store, &prefix));
    // Every kept checkpoint's files are there; nothing is left of older ones.
    let folders: std::collections::BTreeSet<String> =
        objects(&store, &prefix).iter().filter_map(|n| Some(n.split_once('/')?.0.to_string())).collect();
    assert_eq!(folders, ids.iter().map(|id| format!("chk-{id}")).collect());

    // Run again (as after a crash at the very end): resumes from the final
    // checkpoint on S3 and publishes nothing twice.
    run_job(url, out.path(), |c| c, &options).unwrap();
    assert_exactly_once(out.path());

    // The newest checkpoint's _metadata damaged on S3 (truncated).
    let newest = complete(&store, &prefix)[0];
    let metadata = ObjectPath::from(format!("{prefix}/chk-{newest}/_metadata"));
    let rt = rt();
    let bytes = rt.block_on(async { store.get(&metadata).await.unwrap().bytes().await.unwrap() });
    rt.block_on(store.put(&metadata, PutPayload::from(bytes[..bytes.len() / 2].to_vec()))).unwrap();
    let err = run_job(url, out.path(), |c| c, &options).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::CheckpointDamaged { .. }), "{msg}");
    assert!(msg.contains(&format!("{url}/chk-{newest}/_metadata")), "names the object: {msg}");
    assert_exactly_once(out.path());
    let allow = |c| CheckpointConfig { allow_fallback_past_damaged_checkpoints: true, ..c };
    run_job(url, out.path(), allow, &options).unwrap();
    assert_exactly_once(out.path());
}

/// The job of the savepoint test: two splits of numbers through
/// transactional files into `out`, held at the middle by `g`.
fn split_job(g: &Gate, out: &std::path::Path) -> StreamEnvironment {
    let env = StreamEnvironment::new().with_parallelism(2).with_batch_size(64);
    env.from_splits(2, |s| (0..PER_SPLIT).map(move |i| s as u64 * PER_SPLIT + i))
        .uid("events")
        .apply_async(gate(g, |v: &u64| v % PER_SPLIT))
        .map(|v: u64| v.to_string())
        .uid("format")
        .write_transactional_files(out)
        .uid("out");
    env
}

const PER_SPLIT: u64 = 1_000;

fn past_middle(position: u64) -> bool {
    position >= PER_SPLIT / 2
}

#[test]
fn a_savepoint_on_s3_is_restored_from_its_url_and_a_damaged_one_is_named() {
    let moto = Moto::start();
    moto.create_bucket("savepoints");
    let store = moto.store("savepoints");
    // Stop a job with a savepoint (a local folder), then upload the folder.
    let (root, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let g = Gate::holding(past_middle);
    let sp = stop_at_gates(split_job(&g, out.path()), &g, 2, &root.path().join("sp"), false).unwrap();
    let rt = rt();
    for entry in std::fs::read_dir(&sp).unwrap() {
        let entry = entry.unwrap();
        let object = ObjectPath::from(format!("sp-1/{}", entry.file_name().to_string_lossy()));
        rt.block_on(store.put(&object, PutPayload::from(std::fs::read(entry.path()).unwrap()))).unwrap();
    }
    let resume = || {
        let env = split_job(&Gate::default(), out.path());
        env.set_storage_options(moto.options());
        env.restore_from("s3://savepoints/sp-1");
        rt.block_on(env.execute())
    };
    // A damaged file of the savepoint is an error naming its URL.
    let files = objects(&store, "sp-1");
    let victim = files.iter().find(|n| n.starts_with("op")).unwrap().clone();
    let object = ObjectPath::from(format!("sp-1/{victim}"));
    let good = rt.block_on(async { store.get(&object).await.unwrap().bytes().await.unwrap() });
    rt.block_on(store.put(&object, PutPayload::from(b"damaged".to_vec()))).unwrap();
    let err = resume().unwrap_err().to_string();
    assert!(err.contains(&format!("s3://savepoints/sp-1/{victim}")), "{err}");
    // Intact, it resumes the job: every number once in the output.
    rt.block_on(store.put(&object, PutPayload::from(good.to_vec()))).unwrap();
    resume().unwrap();
    let mut lines: Vec<u64> = read_committed(out.path()).unwrap().iter().map(|l| l.parse().unwrap()).collect();
    lines.sort();
    assert_eq!(lines, (0..2 * PER_SPLIT).collect::<Vec<_>>());
}

/// The storage API on S3: a later checkpoint listing an earlier one's file
/// (incremental checkpoints share files) is restored through it; retention
/// keeps the shared object while a kept checkpoint lists it; an object
/// missing on S3 makes the checkpoint damaged, named by its URL; an
/// upload interrupted before `_metadata` leaves an incomplete checkpoint.
#[test]
fn object_storage_shares_files_keeps_them_in_retention_and_names_damage() {
    use dataflow_core::StateBackendConfig;
    use dataflow_core::checkpoint::object_storage::ObjectStorage;
    use dataflow_core::checkpoint::storage::{CheckpointMetadata, CheckpointStorage, StateFile, shared_name};
    use dataflow_core::operator::{KeyedOperatorHarness, KeyedReduce};
    let moto = Moto::start();
    moto.create_bucket("shared");
    let store = moto.store("shared");
    let prefix = "api".to_string();
    let url = url::Url::parse(&format!("s3://shared/{prefix}")).unwrap();
    let options: Vec<(String, String)> = moto.options().into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    let storage = ObjectStorage::new(&url, &options).unwrap();
    let harness = || {
        KeyedOperatorHarness::new(
            KeyedReduce::new(|a: u64, b: u64| a + b),
            |v: &u64| v % 7,
            StateBackendConfig::InMemory,
        )
        .unwrap()
    };
    // Checkpoint 1: a keyed state file.
    let dir1 = storage.checkpoint_dir(1).unwrap();
    let mut h = harness();
    (0..100u64).for_each(|v| h.process(v, None).unwrap());
    h.snapshot().unwrap().write_to(&dir1.join("reduce-0")).unwrap();
    let files = vec![StateFile::of(&dir1, "reduce-0", "reduce", 0).unwrap()];
    storage.complete(&CheckpointMetadata { id: 1, timestamp: 1, files: files.clone() }).unwrap();
    // Checkpoint 2: its own offsets, and checkpoint 1's state file.
    let dir2 = storage.checkpoint_dir(2).unwrap();
    std::fs::write(dir2.join("offsets-0"), 2u64.to_be_bytes()).unwrap();
    let shared = shared_name(1, "reduce-0");
    let shared_file = StateFile { name: shared.clone(), ..files[0].clone() };
    let files2 = vec![shared_file, StateFile::of(&dir2, "offsets-0", "source", 0).unwrap()];
    storage.complete(&CheckpointMetadata { id: 2, timestamp: 2, files: files2 }).unwrap();
    storage.retain(1).unwrap();
    assert_eq!(objects(&store, &prefix), ["chk-1/reduce-0", "chk-2/_metadata", "chk-2/offsets-0"]);
    let latest = storage.latest().unwrap().unwrap();
    assert_eq!(latest.metadata.id, 2);
    harness().restore(&[latest.dir.join(&shared).as_path()]).unwrap();

    // Checkpoint 3 uploaded its part but died before `_metadata`.
    rt().block_on(store.put(&ObjectPath::from(format!("{prefix}/chk-3/offsets-0")), PutPayload::from(vec![1])))
        .unwrap();
    assert_eq!(storage.next_id().unwrap(), 4);
    // The shared object gone: checkpoint 2 is damaged, named by URL.
    rt().block_on(store.delete(&ObjectPath::from(format!("{prefix}/chk-1/reduce-0")))).unwrap();
    let found = storage.find().unwrap();
    assert!(found.latest.is_none());
    assert_eq!(found.incomplete, [3]);
    assert_eq!(found.damaged.len(), 1);
    assert!(found.damaged[0].reason.contains(&format!("{url}/chk-1/reduce-0")), "{:?}", found.damaged);
    let err = found.restore_point(true, None).unwrap_err().to_string();
    assert!(err.contains("checkpoint 2: "), "{err}");
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Order {
    id: u64,
    #[allow(dead_code)]
    customer: String,
}

/// The file source reads CSV objects below an `s3://` prefix (one of
/// them larger than a ranged read, so lines cross the ranges), leaves out
/// hidden objects and those of sub-prefixes, skips bad lines; stopped with
/// a savepoint in the middle of the large object, it resumes at another
/// parallelism from the positions, ranged reads from the middle: every
/// good record once. One object's URL reads that object only.
#[test]
fn the_file_source_reads_objects_below_a_prefix_and_resumes_in_the_middle_of_one() {
    use dataflow_core::connectors::file::{FileSource, Format};
    use dataflow_core::operator::BadRecordPolicy;
    use dataflow_core::time::WatermarkStrategy;
    use std::collections::BTreeSet;
    let moto = Moto::start();
    moto.create_bucket("input");
    let store = moto.store("input");
    let mut good = BTreeSet::new();
    // a: 200 000 lines (about 11 MiB, over one 8 MiB range); b, c: small.
    for (name, first, n) in [("a.csv", 0u64, 200_000u64), ("b.csv", 1_000_000, 500), ("c.csv", 2_000_000, 700)] {
        let mut text = String::from("id,customer\n");
        for id in first..first + n {
            if id % 7 == 0 {
                text.push_str(&format!("{id}x,broken\n"));
            } else {
                text.push_str(&format!("{id},customer-{:04}-{}\n", id % 997, "x".repeat(36)));
                good.insert(id);
            }
        }
        let object = ObjectPath::from(format!("orders/{name}"));
        rt().block_on(store.put(&object, PutPayload::from(text.into_bytes()))).unwrap();
    }
    for left_out in ["orders/_hidden.csv", "orders/.hidden.csv", "orders/sub/d.csv"] {
        let object = ObjectPath::from(left_out);
        rt().block_on(store.put(&object, PutPayload::from(b"id,customer\n5,x\n".to_vec()))).unwrap();
    }
    let job = |url: &str, p: usize, restore: Option<&std::path::Path>| {
        let env = StreamEnvironment::new().with_parallelism(p).with_bad_record_policy(BadRecordPolicy::Skip);
        env.set_storage_options(moto.options());
        if let Some(sp) = restore {
            env.restore_from(sp);
        }
        let (tx, rx) = tokio::sync::mpsc::channel(1_000);
        let source = FileSource::new(url, Format::<Order>::csv());
        env.from_source(source.into(), WatermarkStrategy::no_watermarks()).uid("orders").sink_channel(tx);
        (env, rx)
    };
    let sp = tempfile::tempdir().unwrap();
    let multi = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    multi.block_on(async {
        let mut seen = BTreeSet::new();
        let take = |seen: &mut BTreeSet<u64>, o: Order| assert!(seen.insert(o.id), "order {} twice", o.id);
        let (env, mut rx) = job("s3://input/orders/", 2, None);
        let running = env.submit();
        for _ in 0..50_000 {
            take(&mut seen, rx.recv().await.expect("records stopped early"));
        }
        let stop = running.stop_with_savepoint(sp.path().join("sp"), false);
        let (saved, ()) = tokio::join!(stop, async {
            while let Some(o) = rx.recv().await {
                take(&mut seen, o);
            }
        });
        let saved = saved.unwrap();
        running.wait().await.unwrap();
        assert!(seen.len() < good.len() / 2, "the savepoint was taken after most records ({})", seen.len());

        // Every record of a job run to its end.
        let all = |url: &'static str, p: usize, restore: Option<std::path::PathBuf>| {
            let (env, mut rx) = job(url, p, restore.as_deref());
            async move {
                let running = env.submit();
                let mut records = Vec::new();
                while let Some(o) = rx.recv().await {
                    records.push(o.id);
                }
                running.wait().await.unwrap();
                records
            }
        };
        for id in all("s3://input/orders", 3, Some(saved)).await {
            assert!(seen.insert(id), "order {id} twice");
        }
        assert!(seen == good, "{} of {} good records, {} unknown", seen.intersection(&good).count(), good.len(), {
            seen.difference(&good).count()
        });

        // One object by its URL.
        let ids: BTreeSet<u64> = all("s3://input/orders/b.csv", 2, None).await.into_iter().collect();
        assert_eq!(ids, good.range(1_000_000..2_000_000).copied().collect());

        // A glob over the prefix's objects.
        let ids: BTreeSet<u64> = all("s3://input/orders/[bc].csv", 2, None).await.into_iter().collect();
        assert_eq!(ids, good.range(1_000_000..).copied().collect());
    });
}

/// Copies every object below `prefix` (not in sub-prefixes) into `dir`.
fn download(store: &Arc<dyn ObjectStore>, prefix: &str, dir: &std::path::Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    for name in objects(store, prefix) {
        let object = ObjectPath::from(format!("{prefix}/{name}"));
        let bytes = rt().block_on(async { store.get(&object).await.unwrap().bytes().await.unwrap() });
        std::fs::write(dir.join(&name), bytes).unwrap();
    }
}

/// The exactly-once file sink with its folder on S3: a job that fails once
/// and restarts publishes every record once; no pending object is left
/// once the job ended; after the newest checkpoint is damaged, the
/// allowed fallback removes the parts committed after the checkpoint it
/// restores (on S3) and publishes them again: still every record once.
#[test]
fn the_file_sink_on_s3_publishes_every_record_once_across_a_failure_and_a_fallback() {
    let moto = Moto::start();
    moto.create_bucket("output");
    let store = moto.store("output");
    let owned = moto.options();
    let options: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (chk, local) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let chk_url = chk.path().to_str().unwrap();
    let out = std::path::Path::new("s3://output/numbers");

    run_job_failing(chk_url, out, |c| c, &options, Some(3)).unwrap();
    download(&store, "numbers", local.path());
    assert_exactly_once(local.path());
    let hidden: Vec<String> = objects(&store, "numbers").into_iter().filter(|n| n.starts_with('.')).collect();
    assert!(hidden.is_empty(), "left behind: {hidden:?}");

    // The newest (final) checkpoint damaged: the fallback to the one
    // before removes the parts committed after it and writes them again.
    let (_, newest) = checkpoint_dirs(chk.path()).remove(0);
    let metadata = newest.join("_metadata");
    let bytes = std::fs::read(&metadata).unwrap();
    std::fs::write(&metadata, &bytes[..bytes.len() / 2]).unwrap();
    let before = objects(&store, "numbers").len();
    let allow = |c| CheckpointConfig { allow_fallback_past_damaged_checkpoints: true, ..c };
    run_job(chk_url, out, allow, &options).unwrap();
    download(&store, "numbers", local.path());
    assert_exactly_once(local.path());
    assert!(before > 0);
}

/// A savepoint taken straight into an S3 URL: staged locally and uploaded,
/// `_metadata` last; the job resumes from that URL with every number once;
/// a second savepoint into the same (now not empty) prefix fails, naming it.
#[test]
fn a_savepoint_is_taken_into_an_s3_url_and_restored_from_it() {
    let moto = Moto::start();
    moto.create_bucket("savepoints");
    let store = moto.store("savepoints");
    let with_options = |env: StreamEnvironment| {
        env.set_storage_options(moto.options());
        env
    };
    let out = tempfile::tempdir().unwrap();
    let url = std::path::Path::new("s3://savepoints/direct/sp-1");
    let g = Gate::holding(past_middle);
    let sp = stop_at_gates(with_options(split_job(&g, out.path())), &g, 2, url, false).unwrap();
    assert_eq!(sp, url);
    let names = objects(&store, "direct/sp-1");
    assert!(names.contains(&"_metadata".to_string()) && names.len() > 1, "{names:?}");
    let written = read_committed(out.path()).unwrap().len() as u64;
    assert!(written > 0 && written < 2 * PER_SPLIT, "{written} records before the savepoint");

    // Another savepoint into the same prefix: refused, naming it.
    let g = Gate::holding(past_middle);
    let other = tempfile::tempdir().unwrap();
    let (taken, _job) = common::stop_at_gates_outcome(with_options(split_job(&g, other.path())), &g, 2, url, false);
    let err = taken.unwrap_err().to_string();
    assert!(err.contains("s3://savepoints/direct/sp-1") && err.contains("not empty"), "{err}");

    let env = with_options(split_job(&Gate::default(), out.path()));
    env.restore_from(url);
    rt().block_on(env.execute()).unwrap();
    let mut lines: Vec<u64> = read_committed(out.path()).unwrap().iter().map(|l| l.parse().unwrap()).collect();
    lines.sort();
    assert_eq!(lines, (0..2 * PER_SPLIT).collect::<Vec<_>>());
}
