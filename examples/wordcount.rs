//! Word count: the classic first dataflow program.
//!
//! Reads a few lines of text (or the file given as the first argument),
//! splits them into words, counts every word with a keyed rolling count at
//! parallelism 2, and prints the final count of each word and the job's
//! per-operator record counts.
//!
//! ```text
//! cargo run --release --example wordcount [FILE]
//! ```

use dataflow_core::{StreamEnvironment, operator};
use std::collections::BTreeMap;

const TEXT: &str = "\
To be, or not to be, that is the question:
Whether 'tis nobler in the mind to suffer
The slings and arrows of outrageous fortune,
Or to take arms against a sea of troubles
And by opposing end them.";

/// Splits a line into lowercase words.
#[operator(name = "split")]
fn words(line: String) -> Vec<String> {
    line.split(|c: char| !c.is_alphanumeric() && c != '\'').filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into())).init();
    let text = match std::env::args().nth(1) {
        Some(path) => std::fs::read_to_string(path)?,
        None => TEXT.to_string(),
    };
    let lines: Vec<String> = text.lines().map(String::from).collect();

    let env = StreamEnvironment::new().with_parallelism(2);
    let counts =
        env.from_iter(lines).name("lines").apply(words()).key_by(|word: &String| word.clone()).count().collect();
    println!("{}", env.explain()?);
    let result = env.execute().await?;

    // The count is a rolling one: keep the last (largest) count per word.
    let mut last: BTreeMap<String, u64> = BTreeMap::new();
    for (word, n) in counts.take() {
        let e = last.entry(word).or_default();
        *e = (*e).max(n);
    }
    let mut by_count: Vec<_> = last.into_iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    println!("{:<12} {:>5}", "word", "count");
    for (word, n) in by_count.iter().take(10) {
        println!("{word:<12} {n:>5}");
    }
    println!("\n{:<12} {:>10} {:>10}", "operator", "records in", "records out");
    for op in &result.operators {
        println!("{:<12} {:>10} {:>10}", op.name, op.records_in, op.records_out);
    }
    Ok(())
}
