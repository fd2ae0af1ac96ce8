//! The file source: CSV and JSON Lines with bad lines under each
//! bad-record policy (fail names file and line; skip counts exactly; the
//! side output holds exactly the bad lines with their text), and the
//! continuous mode: files added while the job runs are read, a savepoint
//! taken mid-run restores at another parallelism with the files and their
//! positions reassigned, and every record arrives once.

use dataflow_core::connectors::file::{FileSource, Format};
use dataflow_core::operator::BadRecordPolicy;
use dataflow_core::time::WatermarkStrategy;
use dataflow_core::{Error, StreamEnvironment};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
struct Order {
    id: u64,
    customer: String,
}

/// Writes `n` orders from `first` into `dir/name` (CSV with a header, or
/// JSON Lines); lines whose id is a multiple of 7 are broken. Returns the
/// good ids and the bad lines as (file:line, text).
fn write(dir: &Path, name: &str, first: u64, n: u64, csv: bool) -> (Vec<u64>, Vec<(String, String)>) {
    let (mut text, mut good, mut bad) = (String::new(), Vec::new(), Vec::new());
    let mut line = 0;
    if csv {
        text.push_str("id,customer\n");
        line += 1;
    }
    for id in first..first + n {
        line += 1;
        let l = match (id % 7 == 0, csv) {
            (false, true) => format!("{id},c{}", id % 5),
            (true, true) => format!("{id}x,c{}", id % 5),
            (false, false) => format!(r#"{{"id":{id},"customer":"c{}"}}"#, id % 5),
            (true, false) => format!(r#"{{"id":{id},"customer":"#),
        };
        if id % 7 == 0 {
            bad.push((format!("{}:{line}", dir.join(name).display()), l.clone()));
        } else {
            good.push(id);
        }
        text.push_str(&l);
        text.push('\n');
    }
    // Written aside, then renamed in: a reader never sees half a file.
    std::fs::write(dir.join(format!(".{name}")), text).unwrap();
    std::fs::rename(dir.join(format!(".{name}")), dir.join(name)).unwrap();
    (good, bad)
}

fn format(csv: bool) -> Format<Order> {
    if csv { Format::csv() } else { Format::json_lines() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_lines_go_by_the_bad_record_policy() {
    for csv in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let (mut good, mut bad) = (Vec::new(), Vec::new());
        for (i, name) in ["a", "b", "c"].into_iter().enumerate() {
            let (g, b) = write(dir.path(), name, i as u64 * 100, 60, csv);
            good.extend(g);
            bad.extend(b);
        }
        let first_bad = bad[0].clone(); // file a, line 2 (id 0)
        good.sort();
        bad.sort();

        // Fail: the error names the first bad line's file and line.
        let env = StreamEnvironment::new().with_parallelism(1);
        env.from_source(FileSource::new(dir.path(), format(csv)).into(), WatermarkStrategy::no_watermarks())
            .for_each(|_| {});
        let err = env.execute().await.unwrap_err().to_string();
        assert!(err.contains(&format!("{}:", first_bad.0)) && err.contains(&first_bad.1), "csv={csv}: {err}");

        // Skip: exactly the bad lines are counted, the rest arrive.
        let env = StreamEnvironment::new().with_parallelism(2).with_bad_record_policy(BadRecordPolicy::Skip);
        let source = FileSource::new(dir.path(), format(csv));
        let out = env.from_source(source.into(), WatermarkStrategy::no_watermarks()).collect();
        let result = env.execute().await.unwrap();
        let mut ids: Vec<u64> = out.take().into_iter().map(|o| o.id).collect();
        ids.sort();
        assert_eq!(ids, good, "csv={csv}");
        let skipped = result.operator("file source").unwrap().records_skipped;
        assert_eq!(skipped, bad.len() as u64, "csv={csv}");

        // Side output: exactly the bad lines, with their text.
        let env = StreamEnvironment::new().with_parallelism(2).with_bad_record_policy(BadRecordPolicy::SideOutput);
        let orders =
            env.from_source(FileSource::new(dir.path(), format(csv)).into(), WatermarkStrategy::no_watermarks());
        let reports = orders.bad_records().collect();
        let out = orders.collect();
        env.execute().await.unwrap();
        assert_eq!(out.take().len(), good.len());
        let mut got: Vec<(String, String)> =
            reports.take().into_iter().map(|r| (r.location.unwrap(), r.raw.unwrap())).collect();
        got.sort();
        assert_eq!(got, bad, "csv={csv}");
    }
}

/// Receives `n` orders from `rx`; the timeout is a safety net, not a wait.
async fn receive(rx: &mut mpsc::Receiver<Order>, n: usize, seen: &mut BTreeSet<u64>) {
    for _ in 0..n {
        let o = tokio::time::timeout(Duration::from_secs(60), rx.recv()).await.expect("records stopped").unwrap();
        assert!(seen.insert(o.id), "order {} twice", o.id);
    }
}

fn continuous_job(dir: &Path, p: usize, restore: Option<&Path>) -> (StreamEnvironment, mpsc::Receiver<Order>) {
    let env = StreamEnvironment::new().with_parallelism(p);
    if let Some(sp) = restore {
        env.restore_from(sp);
    }
    let (tx, rx) = mpsc::channel(10_000);
    let source = FileSource::new(dir, Format::csv()).continuous(Duration::from_millis(20));
    env.from_source(source.into(), WatermarkStrategy::no_watermarks()).uid("orders").sink_channel(tx);
    (env, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continuous_mode_reads_new_files_and_resumes_at_another_parallelism() -> Result<(), Error> {
    let (dir, sp) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut all = BTreeSet::new();
    let mut seen = BTreeSet::new();
    let mut add = |name: &str, first: u64| -> usize {
        let (good, _) = write(dir.path(), name, first, 300, true);
        all.extend(good.iter().copied());
        good.len()
    };
    let n = add("f1.csv", 0) + add("f2.csv", 1_000);
    let (env, mut rx) = continuous_job(dir.path(), 2, None);
    let env = env.with_bad_record_policy(BadRecordPolicy::Skip);
    let job = env.submit();
    receive(&mut rx, n, &mut seen).await;
    // Added while the job runs.
    let n = add("f3.csv", 2_000) + add("f4.csv", 3_000);
    receive(&mut rx, n, &mut seen).await;
    let saved = job.stop_with_savepoint(sp.path().join("sp"), false).await?;
    job.wait().await?;

    // Resumed at parallelism 3: only what was added since arrives.
    let n = add("f5.csv", 4_000);
    let (env, mut rx) = continuous_job(dir.path(), 3, Some(&saved));
    let env = env.with_bad_record_policy(BadRecordPolicy::Skip);
    let job = env.submit();
    receive(&mut rx, n, &mut seen).await;
    let n = add("f6.csv", 5_000);
    receive(&mut rx, n, &mut seen).await;
    job.stop_with_savepoint(sp.path().join("sp2"), false).await?;
    job.wait().await?;
    assert!(rx.try_recv().is_err(), "a record arrived twice or late");
    assert_eq!(seen, all);
    Ok(())
}

/// The file sink writes CSV and JSON Lines part files, rolled by size, that
/// the file source reads back as the same records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_sink_writes_what_the_file_source_reads() {
    use dataflow_core::connectors::file::FileOutput;
    let orders: Vec<Order> = (0..2_000).map(|id| Order { id, customer: format!("c, \"{}\"", id % 5) }).collect();
    for csv in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let format = || if csv { Format::csv_without_headers() } else { Format::json_lines() };
        let env = StreamEnvironment::new().with_parallelism(2);
        env.from_iter(orders.clone()).write_files(FileOutput::new(dir.path(), format()).with_max_part_bytes(4_096));
        env.execute().await.unwrap();
        let parts = std::fs::read_dir(dir.path()).unwrap().count();
        assert!(parts >= 8, "csv={csv}: {parts} parts");

        let env = StreamEnvironment::new().with_parallelism(2);
        let out =
            env.from_source(FileSource::new(dir.path(), format()).into(), WatermarkStrategy::no_watermarks()).collect();
        env.execute().await.unwrap();
        let mut got = out.take();
        got.sort();
        assert_eq!(got, orders, "csv={csv}");
    }
}

/// A glob in the last component picks the folder's files by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_glob_picks_files_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let (mut want, _) = write(dir.path(), "2026-01.csv", 0, 20, true);
    want.extend(write(dir.path(), "2026-02.csv", 100, 20, true).0);
    write(dir.path(), "2025-12.csv", 200, 20, true);
    write(dir.path(), "2026-03.json", 300, 20, false);
    let env = StreamEnvironment::new().with_parallelism(2).with_bad_record_policy(BadRecordPolicy::Skip);
    let source = FileSource::new(dir.path().join("2026-*.csv"), format(true));
    let out = env.from_source(source.into(), WatermarkStrategy::no_watermarks()).collect();
    env.execute().await.unwrap();
    let mut got: Vec<u64> = out.take().iter().map(|o| o.id).collect();
    got.sort();
    assert_eq!(got, want);
}

/// Files read as byte ranges of many sizes (down to 1 byte: most ranges
/// then start and end inside a line; some start exactly at a line): every
/// good line once, every bad line once on the side output with its text,
/// located by file and line in a file's first range and by file and byte
/// offset in the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn byte_ranges_of_a_file_hold_each_line_once() {
    for csv in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let (mut good, mut bad) = write(dir.path(), "a", 0, 300, csv);
        let (g, b) = write(dir.path(), "b", 1_000, 40, csv);
        good.extend(g);
        bad.extend(b);
        good.sort();
        let text_a = std::fs::read_to_string(dir.path().join("a")).unwrap();
        for split in [1, 2, 5, 17, 64, 1_000, 1 << 20] {
            let env = StreamEnvironment::new().with_parallelism(3).with_bad_record_policy(BadRecordPolicy::SideOutput);
            let source = FileSource::new(dir.path(), format(csv)).with_split_size(split);
            let orders = env.from_source(source.into(), WatermarkStrategy::no_watermarks());
            let reports = orders.bad_records().collect();
            let out = orders.collect();
            env.execute().await.unwrap();
            let mut ids: Vec<u64> = out.take().into_iter().map(|o| o.id).collect();
            ids.sort();
            assert_eq!(ids, good, "csv={csv} split={split}");
            let reports = reports.take();
            let mut raw: Vec<String> = reports.iter().map(|r| r.raw.clone().unwrap()).collect();
            raw.sort();
            let mut want: Vec<String> = bad.iter().map(|(_, text)| text.clone()).collect();
            want.sort();
            assert_eq!(raw, want, "csv={csv} split={split}");
            // A location by byte offset points at the line's text.
            for r in &reports {
                let location = r.location.clone().unwrap();
                if let Some(at) = location.strip_prefix(&format!("{}@", dir.path().join("a").display())) {
                    let at: usize = at.parse().unwrap();
                    assert!(text_a[at..].starts_with(r.raw.as_deref().unwrap()), "{location}");
                    assert!(at == 0 || text_a.as_bytes()[at - 1] == b'\n', "{location}");
                }
            }
        }
    }
}
