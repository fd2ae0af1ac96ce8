//! Every ratio that issue 19 sets a target for, measured side by side in
//! one run, in one command: `cargo bench --bench ratios`.
//!
//! It runs the main cases of the `window`, `throughput`, `nexmark` and
//! `checkpoint` benches (the same code, included below; checkpoints only
//! without and every 1 s unaligned), then prints one table: each ratio,
//! its target and whether it holds, with the machine's core count and its
//! load average before and after. It writes the table to
//! `<target>/ratios/ratios.csv` and a bar chart of the ratios against their
//! targets to `<target>/ratios/ratios.svg`. Criterion's options work as
//! usual (`cargo bench --bench ratios -- --warm-up-time 1
//! --measurement-time 3`); a filter given on the command line replaces the
//! default set. `docs/performance.md` explains how to read the table.
#![allow(dead_code)] // the included benches' own `main`s and helpers
#![allow(clippy::duplicate_mod)] // each included bench has its own copy of the helpers

#[path = "checkpoint.rs"]
mod checkpoint;
#[path = "nexmark.rs"]
mod nexmark;
#[path = "nexmark_report.rs"]
mod report_dirs;
#[path = "throughput.rs"]
mod throughput;
#[path = "window.rs"]
mod window;

use criterion::Criterion;
use std::error::Error;
use std::path::Path;

/// The benchmarks run unless a filter is given.
const DEFAULT_FILTER: &str =
    "^(window/|chain/|keyed/|nexmark/|checkpoint_throughput/(memory|fjall)/(none|unaligned_1s)$)";

fn main() {
    let before = load();
    let mut c = Criterion::default().configure_from_args();
    if !has_filter(std::env::args().skip(1)) {
        c = c.with_filter(DEFAULT_FILTER);
    }
    window::bench(&mut c);
    throughput::bench(&mut c);
    nexmark::nexmark(&mut c);
    checkpoint::bench(&mut c);
    c.final_summary();
    if report_dirs::benchmarking(std::env::args()) {
        report(&before, &load());
    }
}

/// Whether the arguments hold a positional filter (criterion's options
/// that take a value are skipped with it).
fn has_filter(args: impl Iterator<Item = String>) -> bool {
    const VALUED: [&str; 12] = [
        "--save-baseline",
        "--baseline",
        "--load-baseline",
        "--sample-size",
        "--warm-up-time",
        "--measurement-time",
        "--nresamples",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--profile-time",
        "--output-format",
    ];
    let mut args = args.peekable();
    while let Some(a) = args.next() {
        if VALUED.contains(&a.as_str()) {
            args.next();
        } else if !a.starts_with('-') {
            return true;
        }
    }
    false
}

/// The 1-, 5- and 15-minute load averages (Linux), or a dash.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "-".into())
}

/// Elements per second of the latest run of `id` (`group/function/value`).
fn rate(criterion: &Path, id: &str) -> Option<f64> {
    let dir = criterion.join(id).join("new");
    let read =
        |f: &str| -> Option<serde_json::Value> { serde_json::from_slice(&std::fs::read(dir.join(f)).ok()?).ok() };
    let ns = read("estimates.json")?["mean"]["point_estimate"].as_f64().filter(|ns| *ns > 0.0)?;
    let elements = read("benchmark.json")?["throughput"]["Elements"].as_f64()?;
    Some(elements * 1e9 / ns)
}

/// One ratio: what it compares, its value (if both sides ran), the target
/// and whether a larger value is better (else smaller).
struct Ratio {
    name: String,
    value: Option<f64>,
    target: f64,
}

impl Ratio {
    fn holds(&self) -> Option<bool> {
        self.value.map(|v| v >= self.target)
    }
}

/// `a / b` of the rates of two benchmarks.
fn ratio(criterion: &Path, name: impl Into<String>, a: &str, b: &str, target: f64) -> Ratio {
    let value = match (rate(criterion, a), rate(criterion, b)) {
        (Some(a), Some(b)) => Some(a / b),
        _ => None,
    };
    Ratio { name: name.into(), value, target }
}

const QUERIES: [&str; 10] = ["q0", "q1", "q2", "q3", "q4", "q5", "q7", "q8", "q11", "q12"];

fn ratios(c: &Path) -> Vec<Ratio> {
    let mut all = vec![
        ratio(c, "window: p2 / p1", "window/dataflow/2", "window/dataflow/1", 1.7),
        ratio(c, "window: ours / timely, p1", "window/dataflow/1", "window/timely/1", 0.8),
        ratio(c, "window: ours / timely, p2", "window/dataflow/2", "window/timely/2", 0.8),
        ratio(c, "window: ours / loop, p1", "window/dataflow/1", "window/loop", 0.4),
        ratio(c, "keyed sum: ours / timely, p1", "keyed/dataflow/1", "keyed/timely/1", 1.0),
        ratio(c, "nexmark q5: ours / timely, p1", "nexmark/q5/p1", "nexmark/q5/timely1", 1.0),
        ratio(c, "nexmark q5: ours / timely, p2", "nexmark/q5/p2", "nexmark/q5/timely2", 1.0),
    ];
    for q in QUERIES {
        all.push(ratio(
            c,
            format!("nexmark {q}: p2 / p1"),
            &format!("nexmark/{q}/p2"),
            &format!("nexmark/{q}/p1"),
            1.5,
        ));
    }
    let ck = "checkpoint_throughput";
    all.push(ratio(c, "window job p2: fjall / memory", &format!("{ck}/fjall/none"), &format!("{ck}/memory/none"), 0.6));
    for backend in ["memory", "fjall"] {
        all.push(ratio(
            c,
            format!("window job p2, {backend}: checkpoint every 1 s / none"),
            &format!("{ck}/{backend}/unaligned_1s"),
            &format!("{ck}/{backend}/none"),
            0.95,
        ));
    }
    all
}

/// Prints the table and writes the CSV and the chart; never panics.
fn report(before: &str, after: &str) {
    let target = report_dirs::target_dir();
    let criterion = report_dirs::criterion_dir(&target);
    let all = ratios(&criterion);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "\nratios (latest criterion result of each benchmark); {cores} cores; load {before} before, {after} after"
    );
    let width = all.iter().map(|r| r.name.len()).max().unwrap_or(0);
    println!("{:<width$}  {:>7}  {:>7}  holds", "ratio", "value", "target");
    for r in &all {
        let value = r.value.map_or("-".to_string(), |v| format!("{v:.2}"));
        let holds = match r.holds() {
            Some(true) => "yes",
            Some(false) => "no",
            None => "not run",
        };
        println!("{:<width$}  {value:>7}  {:>7.2}  {holds}", r.name, r.target);
    }
    let dir = target.join("ratios");
    if let Err(e) = std::fs::create_dir_all(&dir) {
        println!("ratios: cannot create {}: {e}", dir.display());
        return;
    }
    for (file, result) in [
        ("ratios.csv", write_csv(&all, cores, before, after, &dir.join("ratios.csv"))),
        ("ratios.svg", { chart(&all, cores, &dir.join("ratios.svg")) }),
    ] {
        match result {
            Ok(()) => println!("ratios: wrote {}", dir.join(file).display()),
            Err(e) => println!("ratios: cannot write {}: {e}", dir.join(file).display()),
        }
    }
}

fn write_csv(all: &[Ratio], cores: usize, before: &str, after: &str, path: &Path) -> Result<(), Box<dyn Error>> {
    let mut w = csv::Writer::from_path(path)?;
    w.write_record(["ratio", "value", "target", "holds", "cores", "load_before", "load_after"])?;
    for r in all {
        let value = r.value.map_or(String::new(), |v| format!("{v:.4}"));
        let holds = r.holds().map_or(String::new(), |h| h.to_string());
        w.write_record([&r.name, &value, &r.target.to_string(), &holds, &cores.to_string(), before, after])?;
    }
    w.flush()?;
    Ok(())
}

/// A horizontal bar per ratio (green where it holds, red where not), with
/// its target as a black tick.
fn chart(all: &[Ratio], cores: usize, path: &Path) -> Result<(), Box<dyn Error>> {
    use plotters::prelude::*;
    let n = all.len();
    let top = all.iter().flat_map(|r| [r.value.unwrap_or(0.0), r.target]).fold(0.0f64, f64::max) * 1.1;
    let root = SVGBackend::new(path, (900, 40 + 28 * n as u32 + 60)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("dataflow: ratios against their targets ({cores} cores)"), ("sans-serif", 18))
        .margin(15)
        .x_label_area_size(30)
        .y_label_area_size(330)
        .build_cartesian_2d(0f64..top.max(1e-9), -0.5f64..n as f64 - 0.5)?;
    let label = |y: &f64| {
        let i = y.round();
        let at = (y - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < n;
        if at { all[n - 1 - i as usize].name.clone() } else { String::new() }
    };
    chart.configure_mesh().disable_y_mesh().y_labels(n).y_label_formatter(&label).x_desc("ratio").draw()?;
    let (green, red) = (RGBColor(44, 160, 44), RGBColor(214, 39, 40));
    chart.draw_series(all.iter().enumerate().filter_map(|(i, r)| {
        let y = (n - 1 - i) as f64;
        let color = if r.holds() == Some(true) { green } else { red };
        r.value.map(|v| Rectangle::new([(0.0, y - 0.35), (v, y + 0.35)], color.filled()))
    }))?;
    chart.draw_series(all.iter().enumerate().map(|(i, r)| {
        let y = (n - 1 - i) as f64;
        PathElement::new(vec![(r.target, y - 0.45), (r.target, y + 0.45)], BLACK.stroke_width(3))
    }))?;
    root.present()?;
    Ok(())
}
