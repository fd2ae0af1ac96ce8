//! Inspect a savepoint: its operators, their uids, parallelism, key groups
//! and state sizes.
//!
//! ```text
//! cargo run --release --example inspect -- <savepoint folder>
//! cargo run --release --example inspect      # makes one first (the reprocess story's)
//! ```

use dataflow_core::checkpoint::savepoint::Savepoint;

fn main() -> Result<(), dataflow_core::BoxError> {
    let keep = tempfile::tempdir()?;
    let path = match std::env::args_os().nth(1) {
        Some(p) => p.into(),
        None => {
            println!("no savepoint given: taking the reprocess example's savepoint first");
            let answers = tokio::runtime::Runtime::new()?.block_on(dataflow_examples::shop::run(keep.path()))?;
            answers.savepoint
        }
    };
    let sp = Savepoint::load(&path)?;
    let m = &sp.metadata;
    println!("savepoint {} (checkpoint {}, taken at {} ms)", path.display(), m.id, m.timestamp);
    println!("max parallelism {} (key groups), {} files, {} bytes", m.max_parallelism, m.files.len(), sp.bytes());
    println!();
    println!(
        "{:<20} {:<16} {:>11} {:>10} {:>12}  files (subtask: bytes)",
        "uid", "name", "parallelism", "key groups", "state bytes"
    );
    for op in sp.operators() {
        let uid = if op.generated_uid { format!("{} (generated)", op.uid) } else { op.uid.clone() };
        let files: Vec<String> = op.files.iter().map(|(s, b)| format!("{s}: {b}")).collect();
        println!(
            "{uid:<20} {:<16} {:>11} {:>10} {:>12}  {}",
            op.name,
            op.parallelism,
            op.key_groups,
            op.bytes,
            files.join(", ")
        );
    }
    Ok(())
}
