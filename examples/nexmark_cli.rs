//! Runs a Nexmark query over generated events and prints its throughput
//! and a summary of its result.
//!
//! ```text
//! cargo run --release --example nexmark -- --query q5 --events 10000000
//! cargo run --release --example nexmark -- --help
//! ```

use dataflow_core::{Data, Stream, StreamEnvironment};
use dataflow_examples::nexmark::generator::{NexmarkConfig, write_csv};
use dataflow_examples::nexmark::{counted_source, queries};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const HELP: &str = "\
nexmark: run a Nexmark query on generated events

USAGE:
    cargo run --release --example nexmark -- [OPTIONS]

OPTIONS:
    --query <q>          q0 (pass-through), q1 (currency conversion), q2 (selection),
                         q5 (hot items, sliding windows), q7 (highest bid per window),
                         q3 (local item suggestion, a join), q4 (average price per category),
                         q8 (new users, a windowed join),
                         q11 (user sessions),
                         q12 (bids per bidder in 10 s of processing time: windows
                         still open when the input ends are dropped)                    [default: q0]
    --events <n>         how many events to generate                                   [default: 1000000]
    --parallelism <p>    parallelism of the job                                        [default: 2]
    --splits <s>         splits of the generator source                                [default: 8]
    --seed <s>           the generator's seed                                          [default: 0]
    --rate <r>           events per second of event time                               [default: 10000]
    --disorder-ms <d>    how far an event's time may move back (watermark bound)       [default: 100]
    --csv <file>         write the events to <file> as CSV lines instead of running a query
    --help               print this
";

struct Options {
    query: String,
    parallelism: usize,
    splits: usize,
    config: NexmarkConfig,
    csv: Option<String>,
}

fn parse() -> Result<Options, String> {
    let mut o =
        Options { query: "q0".into(), parallelism: 2, splits: 8, config: NexmarkConfig::new(1_000_000), csv: None };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            print!("{HELP}");
            std::process::exit(0);
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value (see --help)"))?;
        let num = |v: &str| v.parse::<u64>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--query" => o.query = value,
            "--events" => o.config.events = num(&value)?,
            "--parallelism" => o.parallelism = num(&value)?.max(1) as usize,
            "--splits" => o.splits = num(&value)?.max(1) as usize,
            "--seed" => o.config.seed = num(&value)?,
            "--rate" => o.config.rate = num(&value)?.max(1),
            "--disorder-ms" => o.config.disorder_ms = num(&value)? as i64,
            "--csv" => o.csv = Some(value),
            other => return Err(format!("unknown option {other} (see --help)")),
        }
    }
    Ok(o)
}

/// Counts a stream's records into `count`.
fn count<T: Data>(s: &Stream<T>, count: &Arc<AtomicU64>) {
    let c = count.clone();
    s.for_each(move |_| {
        c.fetch_add(1, Ordering::Relaxed);
    });
}

/// Keeps the last value per window of a rolling maximum.
fn per_window<T: Data>(s: &Stream<(i64, T)>, into: &Arc<Mutex<BTreeMap<i64, T>>>) {
    let m = into.clone();
    s.for_each(move |(w, v): (i64, T)| {
        m.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(w, v);
    });
}

fn main() -> Result<(), dataflow_core::BoxError> {
    let o = parse()?;
    if let Some(path) = &o.csv {
        write_csv(&o.config, std::path::Path::new(path))?;
        println!("wrote {} events to {path}", o.config.events);
        return Ok(());
    }
    let env = StreamEnvironment::new().with_parallelism(o.parallelism);
    let made = Arc::new(AtomicU64::new(0));
    let events = counted_source(&env, &o.config, o.splits, Some(made.clone()));
    let outputs = Arc::new(AtomicU64::new(0));
    let hot = Arc::new(Mutex::new(BTreeMap::new()));
    let highest = Arc::new(Mutex::new(BTreeMap::new()));
    match o.query.as_str() {
        "q0" => count(&queries::q0(&events), &outputs),
        "q1" => count(&queries::q1(&events), &outputs),
        "q2" => count(&queries::q2(&events), &outputs),
        "q5" => per_window(&queries::q5(&events), &hot),
        "q7" => per_window(&queries::q7(&events), &highest),
        "q3" => count(&queries::q3(&events), &outputs),
        "q4" => count(&queries::q4(&events), &outputs),
        "q8" => count(&queries::q8(&events), &outputs),
        "q11" => count(&queries::q11(&events), &outputs),
        "q12" => count(&queries::q12(&events), &outputs),
        other => {
            return Err(
                format!("unknown query {other}: q0, q1, q2, q3, q4, q5, q7, q8, q11 or q12 (see --help)").into()
            );
        }
    }
    let rt = tokio::runtime::Runtime::new()?;
    let started = Instant::now();
    let total = o.config.events;
    let result = rt.block_on(async {
        let job = tokio::spawn(env.execute());
        // A progress line every second while the job runs.
        let progress = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let n = made.load(Ordering::Relaxed);
                let rate = n as f64 / started.elapsed().as_secs_f64() / 1e6;
                eprint!(
                    "\r{n} / {total} events ({:.0}%), {rate:.2} M events/s",
                    100.0 * n as f64 / total.max(1) as f64
                );
            }
        });
        let r = job.await;
        progress.abort();
        r
    })??;
    let elapsed = started.elapsed();
    eprintln!();
    println!(
        "{} over {total} events at parallelism {}: {:.2?}, {:.2} M events/s",
        o.query,
        o.parallelism,
        elapsed,
        total as f64 / elapsed.as_secs_f64() / 1e6
    );
    match o.query.as_str() {
        "q5" => summary("hottest auction (bids)", &hot.lock().unwrap_or_else(std::sync::PoisonError::into_inner)),
        "q7" => {
            let m = highest.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let prices: BTreeMap<i64, (u64, u64)> = m.iter().map(|(w, b)| (*w, (b.auction, b.price))).collect();
            summary("highest bid (auction, cents)", &prices)
        }
        _ => println!("{} results", outputs.load(Ordering::Relaxed)),
    }
    let _ = result.operator("splits").map(|s| println!("source: {} events", s.records_out));
    Ok(())
}

/// Prints how many windows there were and the first and last few.
fn summary(what: &str, per_window: &BTreeMap<i64, (u64, u64)>) {
    println!("{} windows; {what} per window start:", per_window.len());
    let n = per_window.len();
    for (i, (w, v)) in per_window.iter().enumerate() {
        if i < 3 || i + 3 >= n {
            println!("  {w}: {v:?}");
        } else if i == 3 {
            println!("  ...");
        }
    }
}
