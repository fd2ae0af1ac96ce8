//! Page views from Kafka → per-page counts per minute (event time) →
//! Kafka, exactly once. Needs a Kafka broker:
//!
//! ```text
//! cargo run --release --example kafka_windows -- --brokers localhost:9092 \
//!     [--input views] [--output page-counts] [--parallelism 2] [--produce 100000] [--follow]
//! ```
//!
//! `--produce N` first writes N sample views to the input topic (which
//! must exist, or the broker must create topics on first use). Without
//! `--follow` the job stops at the end of what the input holds. The counts
//! are written as JSON, keyed by page; read them with a consumer set to
//! `isolation.level=read_committed`.

use dataflow_examples::kafka;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (mut brokers, mut input, mut output) = (None, "views".to_string(), "page-counts".to_string());
    let (mut parallelism, mut produce, mut follow) = (2, 0, false);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--brokers" => brokers = Some(value()?),
            "--input" => input = value()?,
            "--output" => output = value()?,
            "--parallelism" => parallelism = value()?.parse()?,
            "--produce" => produce = value()?.parse()?,
            "--follow" => follow = true,
            "--help" | "-h" => {
                println!(
                    "kafka_windows --brokers HOST:PORT [--input T] [--output T] [--parallelism N] [--produce N] [--follow]"
                );
                return Ok(());
            }
            other => return Err(format!("unknown argument {other} (try --help)").into()),
        }
    }
    let brokers = brokers.ok_or("--brokers HOST:PORT is needed (a Kafka broker to read from and write to)")?;
    if produce > 0 {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
        kafka::produce(&brokers, &input, &kafka::sample(produce, 50, now - produce as i64 * 100))?;
        println!("wrote {produce} sample views to '{input}'");
    }
    let checkpoints = tempfile::tempdir()?;
    let result = kafka::run(&brokers, &input, &output, checkpoints.path(), parallelism, !follow).await?;
    let read = result.operators.first().map_or(0, |o| o.records_out);
    println!("done: {read} views read, counts per page and minute in '{output}' (read them read_committed)");
    Ok(())
}
