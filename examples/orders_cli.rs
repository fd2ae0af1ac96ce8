//! The flagship pipeline: a shop's orders arrive as JSON Lines files in a
//! folder; a job follows the folder, counts orders and revenue per
//! category in one-minute event-time windows, sends late orders and bad
//! lines aside, and writes its results exactly once, with checkpoints.
//!
//! While it runs, one operator crashes once (an injected failure): the job
//! restarts from its latest checkpoint on its own. Halfway it takes a
//! savepoint; at the end it stops with one. The committed output is then
//! checked against a plain batch computation over the files that were
//! written: nothing lost, nothing counted twice.
//!
//! ```text
//! cargo run --release --example orders
//! ```
//!
//! The job itself is `dataflow_examples::orders` (`examples/orders/`);
//! `examples/tests/orders.rs` runs it small.

use dataflow_examples::orders::{Plan, Progress, check, run};
use std::io::Write;
use std::time::{Duration, Instant};

fn main() -> Result<(), dataflow_core::BoxError> {
    // The injected crash is expected: one line instead of a backtrace.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| match info.payload().downcast_ref::<String>() {
        Some(m) if m.starts_with("injected crash") => println!("\n  {m}: the job restarts from its latest checkpoint"),
        _ => default_hook(info),
    }));
    let dir = tempfile::tempdir()?;
    let plan = Plan { files: 40, per_file: 5_000, every: Duration::from_millis(150), crash_at: Some(62_500) };
    println!(
        "{} files of {} orders (JSON Lines), one every {:?}, arrive in {}",
        plan.files,
        plan.per_file,
        plan.every,
        dir.path().join("in").display()
    );
    let started = Instant::now();
    let progress = |p: &Progress| {
        let (n, cp, r, s) = (p.files_written, p.checkpoints, p.restarts, started.elapsed().as_secs_f64());
        print!("\r  files {n:>3}/{}  checkpoints {cp:>3}  restarts {r}  {s:>5.1} s", plan.files);
        let _ = std::io::stdout().flush();
    };
    let summary = tokio::runtime::Runtime::new()?.block_on(run(dir.path(), &plan, progress))?;
    println!();
    let c = check(&summary)?;
    println!(
        "{} orders read in {:.1} s, {} checkpoints, {} restart",
        summary.orders,
        summary.elapsed.as_secs_f64(),
        summary.checkpoints,
        summary.restarts
    );
    println!("savepoint mid-run:      {}", summary.savepoint.display());
    println!("stopped with savepoint: {}", summary.final_savepoint.display());
    println!(
        "{} window results (category x minute); {} of {} stragglers came after their window fired (late output); {} bad lines aside",
        c.windows, c.late.0, c.late.1, c.bad.0
    );
    println!(
        "against a batch computation: {} windows lost, {} wrong; {} wrong late orders; bad lines {} of {} ({} windows fired again after a restart, their results adding up)",
        c.lost, c.wrong, c.late_wrong, c.bad.0, c.bad.1, c.refired
    );
    match c.exactly_once() {
        true => {
            println!("exactly once: every order counted once, in its window or as late, as the batch computation says");
            Ok(())
        }
        false => Err("the output does not match the batch computation".into()),
    }
}
