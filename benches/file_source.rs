//! The file source reading CSV and JSON Lines at parallelism 1, side by side
//! with a plain single-threaded loop (`csv` / `serde_json` over a buffered
//! reader) that decodes the same file into the same type. Both count the
//! records and sum a field, so neither can skip the decoding. Run with
//! `cargo bench --bench file_source`; the ratio is ours / loop.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dataflow_core::StreamEnvironment;
use dataflow_core::connectors::file::{FileSource, Format};
use dataflow_core::time::WatermarkStrategy;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

const N: u64 = 1_000_000;

use dataflow_benches::{Order, order};

fn write_files(dir: &Path) {
    let mut csv = csv::Writer::from_path(dir.join("orders.csv")).unwrap();
    let mut json = std::io::BufWriter::new(std::fs::File::create(dir.join("orders.jsonl")).unwrap());
    for i in 0..N {
        csv.serialize(order(i)).unwrap();
        serde_json::to_writer(&mut json, &order(i)).unwrap();
        json.write_all(b"\n").unwrap();
    }
    csv.flush().unwrap();
    json.flush().unwrap();
}

fn ours(rt: &tokio::runtime::Runtime, file: &Path, format: Format<Order>) -> u64 {
    let env = StreamEnvironment::new().with_parallelism(1);
    let sum = Arc::new(AtomicU64::new(0));
    let s = sum.clone();
    env.from_source(FileSource::new(file, format).into(), WatermarkStrategy::no_watermarks()).for_each(
        move |o: Order| {
            s.fetch_add(o.id, Ordering::Relaxed);
        },
    );
    rt.block_on(env.execute()).expect("job");
    sum.load(Ordering::Relaxed)
}

fn loop_csv(file: &Path) -> u64 {
    let mut r = csv::Reader::from_path(file).unwrap();
    r.deserialize::<Order>().map(|o| o.unwrap().id).sum()
}

fn loop_json(file: &Path) -> u64 {
    let r = BufReader::new(std::fs::File::open(file).unwrap());
    r.lines().map(|l| serde_json::from_str::<Order>(&l.unwrap()).unwrap().id).sum()
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path());
    let (csv, json) = (dir.path().join("orders.csv"), dir.path().join("orders.jsonl"));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let want = N * (N - 1) / 2;
    assert_eq!(ours(&rt, &csv, Format::csv()), want);
    assert_eq!(loop_csv(&csv), want);
    assert_eq!(ours(&rt, &json, Format::json_lines()), want);
    assert_eq!(loop_json(&json), want);

    let mut g = c.benchmark_group("file_source");
    g.throughput(Throughput::Elements(N)).sample_size(10);
    g.bench_function(BenchmarkId::new("csv/dataflow", 1), |b| b.iter(|| ours(&rt, &csv, Format::csv())));
    g.bench_function(BenchmarkId::new("csv/loop", 1), |b| b.iter(|| loop_csv(&csv)));
    g.bench_function(BenchmarkId::new("jsonl/dataflow", 1), |b| b.iter(|| ours(&rt, &json, Format::json_lines())));
    g.bench_function(BenchmarkId::new("jsonl/loop", 1), |b| b.iter(|| loop_json(&json)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
