//! Reprocess: why savepoints matter.
//!
//! A shop's purchase history is a file that grows through the day. Version
//! 1 of a job keeps a running total of spend per customer. At noon the
//! team stops it with a savepoint (after purchase 3 000, a known position)
//! to deploy version 2, which keeps the same totals (same operator, same
//! uid) but changes what it reports: customers past a spend threshold are
//! "VIP". Version 2 can start three ways, and the afternoon then arrives:
//!
//! 1. **from the savepoint**: it restores the totals and the file position
//!    and reads on from there;
//! 2. **as batch, from the start, without state**: it reprocesses the whole
//!    history (the right answer, at the cost of reading everything again);
//! 3. **at the position, without state**: it reads on from noon with empty
//!    totals (the wrong answer: the morning is lost).
//!
//! (1) equals (2) without reading the morning again; (3) does not.
//!
//! ```text
//! cargo run --release --example reprocess
//! ```
//!
//! The pipeline lives in `dataflow_examples::shop`, where the test
//! `tests/reprocess.rs` runs it too.

use dataflow_examples::shop::{Answers, VIP_CENTS, run};

fn main() -> Result<(), dataflow_core::BoxError> {
    let dir = tempfile::tempdir()?;
    let started = std::time::Instant::now();
    let Answers { from_savepoint, batch, at_position, savepoint, position, purchases } =
        tokio::runtime::Runtime::new()?.block_on(run(dir.path()))?;
    println!("{purchases} purchases; version 1 stopped with a savepoint after purchase {position}");
    println!("savepoint: {}", savepoint.display());
    println!();
    println!("total spend per customer (VIP: {} or more), as version 2 reports it:", money(VIP_CENTS));
    println!(
        "{:<10} {:>16} {:>20} {:>24}",
        "customer", "(1) savepoint", "(2) batch, no state", "(3) position, no state"
    );
    for (customer, total) in &batch {
        let cell = |t: Option<&u64>| match t {
            Some(t) => format!("{}{}", money(*t), if *t >= VIP_CENTS { " VIP" } else { "    " }),
            None => "-".to_string(),
        };
        let (a, c) = (from_savepoint.get(customer), at_position.get(customer));
        let mark = if c != Some(total) { "  <- wrong" } else { "" };
        println!("{customer:<10} {:>16} {:>20} {:>24}{mark}", cell(a), cell(Some(total)), cell(c));
    }
    let vips = |m: &std::collections::BTreeMap<String, u64>| m.values().filter(|t| **t >= VIP_CENTS).count();
    println!();
    println!("(1) from the savepoint:        equals (2): {}; {} VIPs", from_savepoint == batch, vips(&from_savepoint));
    println!("(2) reprocessed from the start: {} VIPs (the right answer)", vips(&batch));
    let wrong = batch.iter().filter(|(c, t)| at_position.get(*c) != Some(*t)).count();
    println!("(3) at the position, no state: {wrong} of {} customers wrong; {} VIPs", batch.len(), vips(&at_position));
    println!("ran in {:.2?}", started.elapsed());
    Ok(())
}

fn money(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}
