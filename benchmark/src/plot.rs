//! `bftlab plot`: figures from result records, as PNG and SVG (the `plotters` crate,
//! pure Rust; the PNG text is drawn with the DejaVu Sans font embedded in the binary).
//!
//! From `bftlab local` and `remote run` records (`sweep`, `local`): end-to-end latency against committed
//! throughput, one line per protocol (p50, with the band up to p99), one figure per
//! committee size and fault setting; each input rate is the run with the median
//! throughput among its repeats. From `bftlab sim` records: finality and messages per
//! committed transaction against committee size, one line per protocol, over the runs
//! that passed (medians across seeds); and for every scenario with faults, committed
//! transactions per second over simulated time, one line per protocol (the lowest seed),
//! with the faults marked. Every figure's numbers are also written to
//! `figures.json` beside it, with the records they came from.

use anyhow::{Context, Result};
use clap::Args;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::Shift;
use plotters::prelude::*;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The embedded font (licence in `benchmark/assets/FONT-LICENSE.txt`).
static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// Flags of `bftlab plot`.
#[derive(Args, Debug, Clone)]
pub struct PlotArgs {
    /// Record files, or folders whose `*.json` records are read.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Where the figures go (`NAME.png`, `NAME.svg`, and `figures.json`).
    #[arg(long, default_value = "results/figures")]
    pub out: PathBuf,
}

/// One point of a series: its x value and the p50 and p99 of its y.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Point {
    /// x (throughput in tx/s, or committee size).
    pub x: f64,
    /// Median y.
    pub p50: f64,
    /// 99th percentile y (equal to `p50` where only one value exists).
    pub p99: f64,
    /// The input rate or scenario it came from.
    pub from: String,
}

/// One line of a figure.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// Points in drawing order.
    pub points: Vec<Point>,
}

/// One figure.
#[derive(Clone, Debug, Serialize)]
pub struct Figure {
    /// File stem.
    pub name: String,
    /// Title drawn above the plot.
    pub title: String,
    /// x axis label, with its unit.
    pub x_label: String,
    /// y axis label, with its unit.
    pub y_label: String,
    /// Caption drawn below the plot: commits, machine, what the lines are.
    pub caption: String,
    /// Its lines.
    pub series: Vec<Series>,
    /// The records it was drawn from.
    pub records: Vec<String>,
    /// Vertical markers (x, label): the faults of a run over time.
    pub markers: Vec<(f64, String)>,
    /// A linear y axis from 0 (rates over time) instead of a logarithmic one.
    pub linear_y: bool,
}

/// Every `*.json` under the inputs (folders are read one level deep), sorted.
fn record_files(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    files_with_extension(inputs, "json")
}

/// The files named in `inputs` and, for each folder among them, its files ending in
/// `.ext` (one level deep); sorted, each once. A name that is neither is an error.
pub fn files_with_extension(inputs: &[PathBuf], ext: &str) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let entries = std::fs::read_dir(input)
                .with_context(|| format!("cannot read {}", input.display()))?;
            for entry in entries {
                let path = entry?.path();
                if path.extension().is_some_and(|e| e == ext) {
                    files.push(path);
                }
            }
        } else if input.is_file() {
            files.push(input.clone());
        } else {
            anyhow::bail!("{}: no such file or folder", input.display());
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

/// A median of a non-empty list (the upper one of two middles).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// `protocol (variant)` of a local record's config or a sim record.
pub fn protocol_label(config: &Value) -> String {
    let protocol = config["protocol"].as_str().unwrap_or("?");
    match config["variant"].as_str().filter(|v| !v.is_empty()) {
        Some(variant) => format!("{protocol} ({variant})"),
        None => protocol.to_string(),
    }
}

/// The Byzantine behaviours of a local or remote record's config: `bftlab local` lists
/// the one Byzantine node's behaviours, `remote run` maps each Byzantine node to its own.
/// (Byzantine nodes, every behaviour named.)
fn byzantine_of(config: &Value) -> (usize, Vec<String>) {
    let names = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    };
    match &config["byzantine"] {
        Value::Object(nodes) => {
            let mut all: Vec<String> = nodes.values().flat_map(names).collect();
            all.dedup();
            (nodes.len(), all)
        }
        list => {
            let all = names(list);
            (usize::from(!all.is_empty()), all)
        }
    }
}

/// The fault setting of a local or remote record's config, in words.
pub fn fault_label(config: &Value) -> String {
    let (byzantine, names) = byzantine_of(config);
    let crashed = config["faults"].as_u64().unwrap_or(0);
    let mut parts = Vec::new();
    if crashed > 0 {
        parts.push(format!("{crashed} crashed"));
    }
    if byzantine > 0 {
        parts.push(format!("{byzantine} Byzantine ({})", names.join("+")));
    }
    if let Some(scenario) = config["scenario"].as_str() {
        parts.push(format!("scenario {scenario:?}"));
    }
    if parts.is_empty() {
        "no faults".into()
    } else {
        parts.join(", ")
    }
}

/// Whether a remote run's record says the run went wrong (an unexpected safety
/// violation, or parts it could not collect): such a record is kept for inspection but
/// not drawn or tabled as a measurement.
pub fn remote_run_failed(record: &Value) -> bool {
    record["kind"] == "bftlab-remote"
        && (record["errors"].as_array().is_some_and(|e| !e.is_empty())
            || (record["safety"]["violations"]
                .as_array()
                .is_some_and(|v| !v.is_empty())
                && record["safety"]["expect_violation"] != true))
}

/// `text` as a file name: lowercase letters and digits, other runs as `-`.
pub fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

/// The record's commit, 10 characters (and `-dirty` if the binary had uncommitted
/// changes).
pub fn short_commit(record: &Value) -> String {
    let commit = record["git_commit"]
        .as_str()
        .or_else(|| record["commit"].as_str())
        .unwrap_or("unknown");
    let short: String = commit.chars().take(10).collect();
    // A binary built with uncommitted changes says so.
    if commit.ends_with("-dirty") && !short.ends_with("-dirty") {
        format!("{short}-dirty")
    } else {
        short
    }
}

/// Latency against throughput from `bftlab local` and `bftlab remote run` records: one
/// figure per setup (committee size, cluster or this machine, ...) and fault setting.
pub fn local_figures(records: &[(PathBuf, Value)]) -> Vec<Figure> {
    // figure (nodes, faults) -> line (protocol, commit) -> input rate -> runs
    // (tps, p50, p99, record); and per figure its commits, records and cores.
    type Runs = Vec<(f64, f64, f64, String)>;
    // (nodes, faulty nodes, fault label): fault-free figures first.
    type FigureKey = (u64, u64, String);
    type Lines = BTreeMap<(String, String), BTreeMap<u64, Runs>>;
    type Meta = (Vec<String>, Vec<String>, u64);
    let mut groups: BTreeMap<FigureKey, Lines> = BTreeMap::new();
    let mut meta: BTreeMap<FigureKey, Meta> = BTreeMap::new();
    for (path, record) in records {
        let remote = record["kind"] == "bftlab-remote";
        if (record["kind"] != "bftlab-local" && !remote) || remote_run_failed(record) {
            continue;
        }
        let config = &record["config"];
        let e2e = &record["end_to_end"];
        let (Some(tps), Some(p50), Some(p99)) = (
            e2e["tps"].as_f64(),
            e2e["latency"]["p50_ms"].as_f64(),
            e2e["latency"]["p99_ms"].as_f64(),
        ) else {
            continue; // no samples: nothing committed in the window
        };
        let nodes = config["nodes"].as_u64().unwrap_or(0);
        let faulty = config["faults"].as_u64().unwrap_or(0)
            + byzantine_of(config).0 as u64
            + u64::from(config["scenario"].is_string());
        // Runs of another shape are never pooled: the setup is part of the figure.
        let setup = format!(
            "{nodes} nodes{}, {} worker(s), {} B tx{}, {}",
            if remote { " on a cluster" } else { "" },
            config["workers"].as_u64().unwrap_or(1),
            config["tx_size"].as_u64().unwrap_or(0),
            if config["wan"].is_null() {
                ""
            } else {
                ", emulated WAN"
            },
            fault_label(config)
        );
        let key = (nodes, faulty, setup);
        groups
            .entry(key.clone())
            .or_default()
            .entry((protocol_label(config), short_commit(record)))
            .or_default()
            .entry(config["input_rate_tx_s"].as_u64().unwrap_or(0))
            .or_default()
            .push((tps, p50, p99, path.display().to_string()));
        let m = meta.entry(key).or_default();
        m.0.push(short_commit(record));
        m.1.push(path.display().to_string());
        if let Some(cores) = record["machine"]["cores"].as_u64() {
            m.2 = cores;
        }
    }
    let mut figures = Vec::new();
    for ((nodes, faulty, faults), by_protocol) in groups {
        let (mut commits, files, cores) = meta
            .remove(&(nodes, faulty, faults.clone()))
            .unwrap_or_default();
        commits.sort();
        commits.dedup();
        // Records of several commits are not pooled: each commit gets its own lines.
        let several = commits.len() > 1;
        let series: Vec<Series> = by_protocol
            .into_iter()
            .map(|((label, commit), by_rate)| Series {
                label: if several {
                    format!("{label} @ {commit}")
                } else {
                    label
                },
                points: by_rate
                    .into_iter()
                    .map(|(rate, mut runs)| {
                        runs.sort_by(|a, b| a.0.total_cmp(&b.0));
                        let (tps, p50, p99, _) = runs[runs.len() / 2].clone();
                        Point {
                            x: tps,
                            p50,
                            p99,
                            from: format!("{rate} tx/s input, {} run(s)", runs.len()),
                        }
                    })
                    .collect(),
            })
            .collect();
        figures.push(Figure {
            name: format!("latency-throughput-{}", slug(&faults)),
            title: format!("End-to-end latency against throughput, {faults}"),
            x_label: "committed throughput (tx/s)".into(),
            y_label: "end-to-end latency (ms, log scale)".into(),
            caption: format!(
                "line: p50, {}; each point the run with the median throughput among its input rate's repeats (of two, the faster). commit {}{}",
                p99_style(series.len()),
                commits.join(", "),
                if cores > 0 {
                    format!("; {cores} cores")
                } else {
                    String::new()
                }
            ),
            series,
            records: files,
            markers: vec![],
            linear_y: false,
        });
    }
    figures
}

/// Finality and messages per transaction against committee size, from `bftlab sim`
/// records of the happy path (no faults, no WAN; runs that passed).
pub fn sim_figures(records: &[(PathBuf, Value)]) -> Vec<Figure> {
    // protocol -> n -> (finality p50s, p99s, messages per tx, scenarios)
    type Acc = (Vec<f64>, Vec<f64>, Vec<f64>, Vec<String>);
    let mut by: BTreeMap<String, BTreeMap<u64, Acc>> = BTreeMap::new();
    let mut files = Vec::new();
    let mut commits = Vec::new();
    for (path, record) in records {
        // Scenarios built to break a core measure no finality worth plotting, and faults or
        // a WAN would make a committee size's point depend on which scenarios were run:
        // these figures are of the happy path on the simulation's default network.
        if record["kind"] != "bftlab-sim"
            || record["expect_violation"] == true
            || record["faulty"] == true
            || record["wan"] == true
        {
            continue;
        }
        let protocol = protocol_label(record);
        let scenario = record["file"].as_str().unwrap_or("?").to_string();
        let mut used = false;
        for run in record["runs"].as_array().into_iter().flatten() {
            let n = run["nodes"].as_array().map_or(0, |a| a.len()) as u64;
            let m = &run["metrics"];
            let (Some(p50), Some(p99)) = (
                m["finality_ms"]["p50"].as_f64(),
                m["finality_ms"]["p99"].as_f64(),
            ) else {
                continue;
            };
            if run["passed"] != true || n == 0 {
                continue;
            }
            let acc = by
                .entry(protocol.clone())
                .or_default()
                .entry(n)
                .or_default();
            acc.0.push(p50);
            acc.1.push(p99);
            if let Some(messages) = m["messages_per_tx"].as_f64() {
                acc.2.push(messages);
            }
            if !acc.3.contains(&scenario) {
                acc.3.push(scenario.clone());
            }
            used = true;
        }
        if used {
            files.push(path.display().to_string());
            commits.push(short_commit(record));
        }
    }
    if by.is_empty() {
        return vec![];
    }
    commits.sort();
    commits.dedup();
    // One line per protocol over committee sizes; `pick` gives a size's p50, p99 and
    // run count, or None to leave the size out.
    type Pick<'a> = &'a dyn Fn(&Acc) -> Option<(f64, f64, usize)>;
    let by_size = |pick: Pick| -> Vec<Series> {
        by.iter()
            .map(|(protocol, by_n)| Series {
                label: protocol.clone(),
                points: by_n
                    .iter()
                    .filter_map(|(n, acc)| {
                        let (p50, p99, runs) = pick(acc)?;
                        Some(Point {
                            x: *n as f64,
                            p50,
                            p99,
                            from: format!("{} ({runs} run(s))", acc.3.join(", ")),
                        })
                    })
                    .collect(),
            })
            .collect()
    };
    let finality =
        by_size(&|acc| Some((median(acc.0.clone()), median(acc.1.clone()), acc.0.len())));
    let messages = by_size(&|acc| {
        (!acc.2.is_empty()).then(|| {
            let m = median(acc.2.clone());
            (m, m, acc.2.len())
        })
    });
    let caption = format!(
        "bftlab sim (simulated time), runs that passed, medians across seeds. commit {}",
        commits.join(", ")
    );
    vec![
        Figure {
            name: "finality-by-committee-size".into(),
            title: "Finality against committee size (simulation)".into(),
            x_label: "committee size (nodes)".into(),
            y_label: "finality (ms, log scale)".into(),
            caption: format!("{caption}; line: p50, {}", p99_style(by.len())),
            series: finality,
            records: files.clone(),
            markers: vec![],
            linear_y: false,
        },
        Figure {
            name: "messages-per-transaction-by-committee-size".into(),
            title: "Messages per committed transaction against committee size (simulation)".into(),
            x_label: "committee size (nodes)".into(),
            y_label: "messages per committed transaction (log scale)".into(),
            caption,
            series: messages,
            records: files,
            markers: vec![],
            linear_y: false,
        },
    ]
}

/// The colour of series `i`.
fn colour(i: usize) -> RGBColor {
    const COLOURS: [RGBColor; 8] = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(255, 127, 14),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(23, 190, 207),
    ];
    COLOURS[i % COLOURS.len()]
}

/// The axis ranges of a figure: x from 0, y (logarithmic) over every p50 and p99 with a
/// margin, never empty or inverted.
fn ranges(figure: &Figure) -> (std::ops::Range<f64>, std::ops::Range<f64>) {
    let points = figure.series.iter().flat_map(|s| &s.points);
    let x_max = points.clone().map(|p| p.x).fold(0.0, f64::max);
    let y_max = points.clone().map(|p| p.p99.max(p.p50)).fold(0.0, f64::max);
    let y_min = points
        .map(|p| p.p50.min(p.p99))
        .filter(|v| *v > 0.0)
        .fold(f64::INFINITY, f64::min);
    let y_min = if y_min.is_finite() { y_min } else { 1.0 };
    let x = 0.0..(x_max * 1.08).max(1.0);
    if figure.linear_y {
        // Head room above the highest point for the legend and the fault labels.
        return (x, 0.0..(y_max * 1.4).max(1.0));
    }
    let lo = (y_min / 1.5).max(1e-6);
    (x, lo..(y_max * 1.5).max(lo * 10.0))
}

/// Draw `figure` on `root`.
fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, figure: &Figure) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow::anyhow!("drawing: {e}");
    root.fill(&WHITE).map_err(err)?;
    let (plot_area, caption_area) = root.split_vertically(root.dim_in_pixel().1 - 40);
    caption_area
        .draw(&Text::new(
            figure.caption.clone(),
            (10, 12),
            ("sans-serif", 13).into_font().color(&BLACK.mix(0.75)),
        ))
        .map_err(err)?;
    let (x_range, y_range) = ranges(figure);
    let mut builder = ChartBuilder::on(&plot_area);
    builder
        .caption(&figure.title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70);
    if figure.linear_y {
        let mut chart = builder.build_cartesian_2d(x_range, y_range).map_err(err)?;
        draw_chart(&mut chart, figure).map_err(err)?;
    } else {
        let mut chart = builder
            .build_cartesian_2d(x_range, y_range.log_scale())
            .map_err(err)?;
        draw_chart(&mut chart, figure).map_err(err)?;
    }
    root.present().map_err(err)?;
    Ok(())
}

/// Everything of `figure` on `chart`: axes, fault markers, then the series.
fn draw_chart<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    figure: &Figure,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    mesh(chart, figure)?;
    draw_markers(chart, figure)?;
    draw_series(chart, figure)
}

/// The axes, their labels and the grid of `figure` on `chart`.
fn mesh<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    figure: &Figure,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .x_desc(&figure.x_label)
        .y_desc(&figure.y_label)
        .x_label_formatter(&|v| crate::local::thousands(*v))
        .y_label_formatter(&|v| crate::local::thousands(*v))
        .y_labels(14)
        .light_line_style(BLACK.mix(0.04))
        .draw()
}

/// The vertical fault markers of `figure`, each with its label at the top.
fn draw_markers<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    figure: &Figure,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let (bottom, top) = {
        let range = chart.y_range();
        (range.start, range.end)
    };
    for (k, (x, label)) in figure.markers.iter().enumerate() {
        chart.draw_series(DashedLineSeries::new(
            [(*x, bottom), (*x, top)],
            5,
            4,
            BLACK.mix(0.6).stroke_width(1),
        ))?;
        // Labels of nearby markers are staggered so they do not overprint.
        let row = (k % 3) as i32;
        chart.draw_series(std::iter::once(
            EmptyElement::at((*x, top))
                + Text::new(
                    label.clone(),
                    (4, 4 + 16 * row),
                    ("sans-serif", 13).into_font().color(&BLACK.mix(0.8)),
                ),
        ))?;
    }
    Ok(())
}

/// The lines, bands, points and legend of `figure` on `chart`.
fn draw_series<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    figure: &Figure,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    // Up to BANDS_UP_TO lines get a shaded p50-p99 band; more would overlap into mud, so
    // their p99 is a thin dashed line instead.
    let bands = figure.series.len() <= BANDS_UP_TO;
    for (i, series) in figure.series.iter().enumerate() {
        let c = colour(i);
        if series.points.iter().any(|p| p.p99 != p.p50) {
            if bands {
                let band: Vec<(f64, f64)> = series
                    .points
                    .iter()
                    .map(|p| (p.x, p.p50))
                    .chain(series.points.iter().rev().map(|p| (p.x, p.p99)))
                    .collect();
                chart.draw_series(std::iter::once(Polygon::new(band, c.mix(0.15).filled())))?;
            } else {
                chart.draw_series(DashedLineSeries::new(
                    series.points.iter().map(|p| (p.x, p.p99)),
                    6,
                    4,
                    c.mix(0.8).stroke_width(1),
                ))?;
                // A whisker from each p50 to its p99 (a line of one point has no dashes).
                chart.draw_series(series.points.iter().map(|p| {
                    PathElement::new(vec![(p.x, p.p50), (p.x, p.p99)], c.mix(0.5).stroke_width(1))
                }))?;
            }
        }
        chart
            .draw_series(LineSeries::new(
                series.points.iter().map(|p| (p.x, p.p50)),
                c.stroke_width(2),
            ))?
            .label(series.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        // A rate over time is a dense line: dots would hide it.
        if !figure.linear_y {
            chart.draw_series(
                series
                    .points
                    .iter()
                    .map(|p| Circle::new((p.x, p.p50), 3, c.filled())),
            )?;
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .position(if figure.linear_y {
            SeriesLabelPosition::UpperRight
        } else {
            SeriesLabelPosition::UpperLeft
        })
        .label_font(("sans-serif", 14))
        .draw()
}

/// Figures with at most this many lines draw the p50-p99 range as a band.
const BANDS_UP_TO: usize = 3;

/// What the p99 looks like in `figure`, for its caption.
fn p99_style(lines: usize) -> &'static str {
    if lines <= BANDS_UP_TO {
        "band: p50 to p99"
    } else {
        "dashed line and whiskers: p99"
    }
}

/// Figure size in pixels.
const SIZE: (u32, u32) = (1000, 640);

/// `figure` with only the points a log axis can show: finite, positive p50 (a p99 that
/// is not is replaced by the p50).
fn drawable(figure: &Figure) -> Figure {
    let mut out = figure.clone();
    for series in &mut out.series {
        // A linear axis shows zero (a stall); a logarithmic one cannot.
        let least = if figure.linear_y {
            0.0
        } else {
            f64::MIN_POSITIVE
        };
        series
            .points
            .retain(|p| p.x.is_finite() && p.x >= 0.0 && p.p50.is_finite() && p.p50 >= least);
        for p in &mut series.points {
            if !(p.p99.is_finite() && p.p99 >= least) {
                p.p99 = p.p50;
            }
        }
    }
    out
}

/// Write `figure` as `DIR/NAME.png` and `DIR/NAME.svg`.
pub fn write(figure: &Figure, dir: &Path) -> Result<()> {
    let figure = &drawable(figure);
    let png = dir.join(format!("{}.png", figure.name));
    draw(BitMapBackend::new(&png, SIZE).into_drawing_area(), figure)
        .with_context(|| format!("cannot write {}", png.display()))?;
    let svg = dir.join(format!("{}.svg", figure.name));
    draw(SVGBackend::new(&svg, SIZE).into_drawing_area(), figure)
        .with_context(|| format!("cannot write {}", svg.display()))?;
    Ok(())
}

/// Make the embedded font plotters' `sans-serif` (before drawing any text).
pub fn register_font() -> Result<()> {
    plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
        .map_err(|_| anyhow::anyhow!("the embedded font is not a font"))
}

/// Run `bftlab plot`.
pub fn run(args: PlotArgs) -> Result<()> {
    register_font()?;
    let files = record_files(&args.inputs)?;
    let mut records = Vec::new();
    let mut skipped = 0;
    for path in files {
        let text =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        match serde_json::from_slice::<Value>(&text) {
            Ok(v)
                if v["kind"] == "bftlab-local"
                    || v["kind"] == "bftlab-remote"
                    || v["kind"] == "bftlab-sim" =>
            {
                records.push((path, v))
            }
            _ => skipped += 1,
        }
    }
    let figures: Vec<Figure> = local_figures(&records)
        .into_iter()
        .chain(sim_figures(&records))
        .chain(crate::report::timeline_figures(&records))
        .collect();
    if figures.is_empty() {
        anyhow::bail!(
            "no figure to draw: {} record(s) read, none of bftlab local or sim with samples ({skipped} other file(s) skipped)",
            records.len()
        );
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    for figure in &figures {
        write(figure, &args.out)?;
        let points: usize = figure.series.iter().map(|s| s.points.len()).sum();
        println!(
            "{}.png/.svg: {} ({} line(s), {} point(s), {} record(s))",
            args.out.join(&figure.name).display(),
            figure.title,
            figure.series.len(),
            points,
            figure.records.len()
        );
    }
    let data = args.out.join("figures.json");
    std::fs::write(&data, serde_json::to_string_pretty(&figures)?)
        .with_context(|| format!("cannot write {}", data.display()))?;
    println!(
        "{}: every figure's numbers and records ({skipped} file(s) that are not records skipped)",
        data.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn local(protocol: &str, rate: u64, tps: f64, p50: f64, faults: u64) -> (PathBuf, Value) {
        (
            PathBuf::from(format!("{protocol}-{rate}-{tps}.json")),
            json!({
                "kind": "bftlab-local",
                "git_commit": "abcdef0123456",
                "machine": {"cores": 2},
                "config": {"protocol": protocol, "variant": "", "nodes": 4, "faults": faults,
                           "input_rate_tx_s": rate, "byzantine": []},
                "end_to_end": {"tps": tps, "latency": {"p50_ms": p50, "p99_ms": p50 * 2.0}},
            }),
        )
    }

    #[test]
    fn local_records_become_one_line_per_protocol_and_figure_per_fault_setting() {
        let records = vec![
            local("hotstuff", 1000, 1000.0, 100.0, 0),
            local("hotstuff", 2000, 1990.0, 120.0, 0),
            // Three repeats at 2000 for tusk: the median-throughput run is drawn.
            local("tusk", 2000, 1500.0, 900.0, 0),
            local("tusk", 2000, 1980.0, 300.0, 0),
            local("tusk", 2000, 1900.0, 400.0, 0),
            local("hotstuff", 1000, 1000.0, 500.0, 1),
            (
                PathBuf::from("other.json"),
                json!({"kind": "bftlab-sim", "runs": []}),
            ),
        ];
        let figures = local_figures(&records);
        assert_eq!(figures.len(), 2);
        let none = &figures[0];
        assert_eq!(
            none.name,
            "latency-throughput-4-nodes-1-worker-s-0-b-tx-no-faults"
        );
        assert_eq!(none.series.len(), 2);
        assert_eq!(none.series[0].label, "hotstuff");
        assert_eq!(
            none.series[0]
                .points
                .iter()
                .map(|p| p.x)
                .collect::<Vec<_>>(),
            vec![1000.0, 1990.0]
        );
        assert_eq!(none.series[1].points[0].x, 1900.0);
        assert_eq!(none.series[1].points[0].p50, 400.0);
        assert_eq!(none.series[1].points[0].p99, 800.0);
        assert!(figures[1].name.ends_with("1-crashed"));
        assert!(none.caption.contains("abcdef0123"));
        // Another commit's records make lines of their own, named by commit.
        let mut other = local("hotstuff", 1000, 800.0, 90.0, 0);
        other.1["git_commit"] = json!("99999999999");
        let figures = local_figures(&[local("hotstuff", 1000, 1000.0, 100.0, 0), other]);
        let labels: Vec<&str> = figures[0].series.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels, ["hotstuff @ 9999999999", "hotstuff @ abcdef0123"]);
    }

    #[test]
    fn sim_records_give_finality_by_committee_size_over_passed_runs() {
        let run = |n: usize, p50: f64, passed: bool| {
            json!({"passed": passed, "nodes": vec![json!({}); n],
                   "metrics": {"finality_ms": {"p50": p50, "p99": p50 * 1.5}, "messages_per_tx": n as f64 * 3.0}})
        };
        let records = vec![
            (
                PathBuf::from("a.json"),
                json!({"kind": "bftlab-sim", "protocol": "hotstuff", "file": "happy-n4.toml", "commit": "1234567890ab",
                       "runs": [run(4, 100.0, true), run(4, 120.0, true), run(4, 5000.0, false)]}),
            ),
            (
                PathBuf::from("b.json"),
                json!({"kind": "bftlab-sim", "protocol": "hotstuff", "file": "happy-n10.toml", "commit": "1234567890ab",
                       "runs": [run(10, 150.0, true)]}),
            ),
        ];
        let figures = sim_figures(&records);
        assert_eq!(figures.len(), 2);
        let finality = &figures[0].series[0];
        assert_eq!(finality.points.len(), 2);
        // The failed run is left out; the upper middle of two is the median.
        assert_eq!(finality.points[0].p50, 120.0);
        assert_eq!(finality.points[1].x, 10.0);
        assert_eq!(figures[1].series[0].points[1].p50, 30.0);
    }

    #[test]
    fn values_a_log_axis_cannot_show_are_left_out_not_drawn() {
        assert!(plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_ok());
        let dir = tempfile::tempdir().unwrap();
        let mut figures = local_figures(&[
            local("hotstuff", 1000, 1000.0, 100.0, 0),
            local("hotstuff", 2000, 1990.0, 0.0, 0),
            local("hotstuff", 3000, -5.0, 1e-9, 0),
        ]);
        figures[0].series[0].points.push(Point {
            x: f64::NAN,
            p50: f64::INFINITY,
            p99: f64::NAN,
            from: "bad".into(),
        });
        write(&figures[0], dir.path()).unwrap();
        assert_eq!(drawable(&figures[0]).series[0].points.len(), 1);
        let (_, y) = ranges(&drawable(&figures[0]));
        assert!(y.start > 0.0 && y.end > y.start);
    }

    #[test]
    fn figures_are_written_as_png_and_svg() {
        assert!(plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_ok());
        let dir = tempfile::tempdir().unwrap();
        let figures = local_figures(&[
            local("hotstuff", 1000, 1000.0, 100.0, 0),
            local("hotstuff", 2000, 1990.0, 120.0, 0),
        ]);
        write(&figures[0], dir.path()).unwrap();
        let png = std::fs::read(dir.path().join(format!("{}.png", figures[0].name))).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let svg =
            std::fs::read_to_string(dir.path().join(format!("{}.svg", figures[0].name))).unwrap();
        assert!(svg.contains("<svg") && svg.contains("hotstuff"));
    }
}
