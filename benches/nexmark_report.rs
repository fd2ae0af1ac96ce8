//! The report of `cargo bench --bench nexmark`: after the benchmarks it
//! reads criterion's latest estimate of each `nexmark/<query>/<id>` (`id`
//! one of `p1`, `p2`, `timely1`, `timely2`; the mean of
//! `<criterion>/nexmark/<query>/<id>/new/estimates.json`, in ns), and
//!
//! * prints a table of M events/s per query: dataflow at parallelism 1
//!   and 2, timely with 1 and 2 workers, and the ratios ours/timely;
//! * writes the same as `<target>/nexmark/results.csv` (plain numbers, an
//!   empty cell where a result is missing);
//! * draws `<target>/nexmark/throughput.svg`, a grouped bar chart of the
//!   M events/s (plotters' SVG backend).
//!
//! A benchmark without a result (a filtered run, a query without a timely
//! baseline) is a dash in the table and missing in the chart; with no
//! result at all the report says so and writes nothing. A filtered run
//! reports the other benchmarks' results of earlier runs, if any.
//!
//! The directories follow criterion 0.8: its output is `$CRITERION_HOME`,
//! else `<target>/criterion`, where the target directory is
//! `$CARGO_TARGET_DIR`, else `cargo metadata`'s (run with `$CARGO`, which
//! `cargo bench` sets), else `target`.

use std::error::Error;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The benchmark ids of a query, in the columns' order.
const IDS: [&str; 4] = ["p1", "p2", "timely1", "timely2"];
/// The series' names, in the order of `IDS`.
const SERIES: [&str; 4] = ["dataflow p1", "dataflow p2", "timely p1", "timely p2"];

/// Whether the command line asks criterion to benchmark, so that there is
/// something to report: `cargo bench` passes `--bench`; `--test` (also
/// `cargo test --benches`, which passes no `--bench`), `--list` and
/// `--profile-time` store no results.
pub fn benchmarking(args: impl IntoIterator<Item = String>) -> bool {
    let args: Vec<String> = args.into_iter().collect();
    args.iter().any(|a| a == "--bench")
        && !args.iter().any(|a| a == "--test" || a == "--list" || a.starts_with("--profile-time"))
}

/// The cargo target directory, found as criterion finds it.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(metadata_target_dir)
        .unwrap_or_else(|| "target".into())
}

/// `cargo metadata`'s target directory.
fn metadata_target_dir() -> Option<PathBuf> {
    let output = Command::new(std::env::var_os("CARGO")?)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .ok()?;
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
    metadata["target_directory"].as_str().map(PathBuf::from)
}

/// Criterion's output directory.
pub fn criterion_dir(target: &Path) -> PathBuf {
    std::env::var_os("CRITERION_HOME").map(PathBuf::from).unwrap_or_else(|| target.join("criterion"))
}

/// The mean time (ns) of the latest run of `nexmark/<query>/<id>`, if any.
fn mean_ns(criterion: &Path, query: &str, id: &str) -> Option<f64> {
    let path = criterion.join("nexmark").join(query).join(id).join("new").join("estimates.json");
    let estimates: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    estimates["mean"]["point_estimate"].as_f64().filter(|ns| *ns > 0.0)
}

/// One query's M events/s, in the order of `IDS`.
struct Row {
    query: String,
    rates: [Option<f64>; 4],
}

impl Row {
    /// Ours over timely's throughput at parallelism `p` (1 or 2).
    fn ratio(&self, p: usize) -> Option<f64> {
        Some(self.rates[p - 1]? / self.rates[p + 1]?)
    }

    /// The row's numbers: the four rates, then the two ratios.
    fn cells(&self) -> [Option<f64>; 6] {
        let r = self.rates;
        [r[0], r[1], r[2], r[3], self.ratio(1), self.ratio(2)]
    }
}

/// Reads the results of `queries` (each run over `events` events); prints
/// the table and writes the CSV and the chart under `<target>/nexmark`.
/// Never panics: what is missing or fails is skipped or printed.
pub fn report(queries: &[&str], events: u64) {
    let target = target_dir();
    let criterion = criterion_dir(&target);
    let rows: Vec<Row> = queries
        .iter()
        .map(|q| Row {
            query: q.to_string(),
            rates: IDS.map(|id| mean_ns(&criterion, q, id).map(|ns| events as f64 * 1e3 / ns)),
        })
        .filter(|r| r.rates.iter().any(Option::is_some))
        .collect();
    if rows.is_empty() {
        println!("nexmark report: no results under {}", criterion.join("nexmark").display());
        return;
    }
    print!("{}", table(&rows, events));
    let dir = target.join("nexmark");
    if let Err(e) = std::fs::create_dir_all(&dir) {
        println!("nexmark report: cannot create {}: {e}", dir.display());
        return;
    }
    let csv_path = dir.join("results.csv");
    match std::fs::write(&csv_path, csv(&rows)) {
        Ok(()) => println!("nexmark report: wrote {}", csv_path.display()),
        Err(e) => println!("nexmark report: cannot write {}: {e}", csv_path.display()),
    }
    let svg_path = dir.join("throughput.svg");
    match chart(&rows, events, &svg_path) {
        Ok(()) => println!("nexmark report: wrote {}", svg_path.display()),
        Err(e) => println!("nexmark report: cannot draw {}: {e}", svg_path.display()),
    }
}

/// The table as text: M events/s and ratios, a dash where missing.
fn table(rows: &[Row], events: u64) -> String {
    let mut out = format!("nexmark: M events/s over {events} events (latest criterion result of each)\n");
    let head = ["query", "dataflow p1", "dataflow p2", "timely p1", "timely p2", "ours/timely p1", "ours/timely p2"];
    let widths: Vec<usize> = head.iter().map(|h| h.len().max(6)).collect();
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| if i == 0 { format!("{c:<w$}") } else { format!("{c:>w$}") })
            .collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    out += &line(head.iter().map(|h| h.to_string()).collect());
    for row in rows {
        let cells = row.cells();
        let mut texts = vec![row.query.clone()];
        texts.extend(cells.iter().enumerate().map(|(i, c)| match c {
            Some(v) if i < 4 => format!("{v:.2}"),
            Some(v) => format!("{v:.2}x"),
            None => "-".to_string(),
        }));
        out += &line(texts);
    }
    out
}

/// The CSV: a header, then a line per query (M events/s, ratios; empty
/// where missing).
fn csv(rows: &[Row]) -> String {
    let mut out = String::from(
        "query,dataflow_p1_mevents_s,dataflow_p2_mevents_s,timely_p1_mevents_s,timely_p2_mevents_s,ours_over_timely_p1,ours_over_timely_p2\n",
    );
    for row in rows {
        out += &row.query;
        for cell in row.cells() {
            out.push(',');
            if let Some(v) = cell {
                let _ = write!(out, "{v:.4}");
            }
        }
        out.push('\n');
    }
    out
}

/// Draws the grouped bar chart of the rates to `path` (SVG).
fn chart(rows: &[Row], events: u64, path: &Path) -> Result<(), Box<dyn Error>> {
    use plotters::prelude::*;
    const COLORS: [RGBColor; 4] =
        [RGBColor(31, 119, 180), RGBColor(174, 199, 232), RGBColor(255, 127, 14), RGBColor(255, 187, 120)];
    let top = rows.iter().flat_map(|r| r.rates.iter().flatten()).fold(0.0f64, |a, &b| a.max(b)) * 1.4;
    // (Headroom above the bars for the legend.)
    let n = rows.len();
    let root = SVGBackend::new(path, (120 * n as u32 + 260, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("Nexmark throughput, {events} events"), ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5f64..n as f64 - 0.5, 0f64..top.max(1e-9))?;
    // One label per query, at the integers (the middle of each group).
    let name = |x: &f64| {
        let i = x.round();
        let at = (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < n;
        if at { rows[i as usize].query.clone() } else { String::new() }
    };
    chart.configure_mesh().disable_x_mesh().x_labels(n).x_label_formatter(&name).y_desc("M events/s").draw()?;
    for (j, (series, color)) in SERIES.iter().zip(COLORS).enumerate() {
        let bars = rows.iter().enumerate().filter_map(|(i, r)| {
            let x0 = i as f64 - 0.4 + 0.2 * j as f64;
            r.rates[j].map(|v| Rectangle::new([(x0, 0.0), (x0 + 0.2, v)], color.filled()))
        });
        chart
            .draw_series(bars)?
            .label(*series)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font(("sans-serif", 13))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
