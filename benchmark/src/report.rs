//! `bftlab report DIR`: the cross-protocol comparison page (`DIR/README.md`) and its
//! figures (`DIR/figures/`), regenerated from the records under `DIR` alone.
//!
//! It reads every `bftlab local` and `remote run` record (from `bftlab sweep`), every
//! `bftlab sim` record (from `bftlab sim-sweep`) and the sweeps' journals (`sweep.jsonl`,
//! `sim-sweep.jsonl`: how many lines of each status, and the commands that were run).
//! Benchmark runs are tabled per setup (committee, workers, transaction size, window,
//! WAN, commit): runs of different setups are never pooled. Every number in a cell is
//! the median of that quantity over the cell's repeats or seeds (the upper middle of
//! an even count; throughput and latency are each their own median), and benchmark
//! cells name their run count. The only numbers not from a record are the reference
//! points of the research prototypes, quoted from the project's benchmark guide and
//! marked as measured on another day.

use crate::local::thousands;
use crate::plot::{fault_label, median, protocol_label, short_commit, Figure};
use anyhow::{Context, Result};
use clap::Args;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Flags of `bftlab report`.
#[derive(Args, Debug, Clone)]
pub struct ReportArgs {
    /// The comparison folder: its records are read (every `*.json` and journal below it,
    /// `figures/` excepted) and `README.md` and `figures/` are written into it.
    #[arg(default_value = "results/comparison")]
    pub dir: PathBuf,
}

/// The input rate whose latencies the page quotes as "at 50,000 tx/s" (the benchmark
/// guide's default load).
const REFERENCE_RATE: u64 = 50_000;

/// The research prototypes' figures from shared/BENCHMARKS.md (their own `fab local`
/// defaults, means; measured by the project on a machine of this kind, other days):
/// system, input, consensus TPS, consensus latency, end-to-end TPS, end-to-end latency.
const PROTOTYPES: [[&str; 6]; 5] = [
    [
        "Narwhal + Tusk, 3 runs 2026-12-02",
        "50,000",
        "44,600-46,800",
        "0.36-0.45 s",
        "44,400-46,500",
        "0.46-0.55 s",
    ],
    [
        "Narwhal + Tusk, 2 runs 2026-12-02",
        "100,000",
        "66,300-76,400",
        "0.44-0.46 s",
        "66,100-76,200",
        "0.79-0.93 s",
    ],
    [
        "Narwhal + Tusk, 2026-11-23",
        "100,000",
        "~79,000",
        "~1.45 s",
        "~78,400",
        "~1.83 s",
    ],
    [
        "batched HotStuff (batch 15 KB/10 ms)",
        "50,000",
        "~49,900",
        "0.055 s",
        "~49,900",
        "0.20 s",
    ],
    [
        "batched HotStuff",
        "100,000",
        "~41,400 (collapses)",
        "0.54 s",
        "~41,400",
        "0.99 s",
    ],
];

/// One `bftlab local` or `remote run` run.
#[derive(Clone, Debug)]
struct LocalRun {
    /// What must be equal for runs to be compared (see [`setup_of`]).
    setup: String,
    protocol: String,
    faults: String,
    rate: u64,
    tps: f64,
    p50: f64,
    p99: f64,
}

/// Medians over the runs of one cell.
#[derive(Clone, Copy, Debug)]
struct Cell {
    tps: f64,
    p50: f64,
    p99: f64,
    runs: usize,
}

fn cell(runs: &[&LocalRun]) -> Option<Cell> {
    (!runs.is_empty()).then(|| Cell {
        tps: median(runs.iter().map(|r| r.tps).collect()),
        p50: median(runs.iter().map(|r| r.p50).collect()),
        p99: median(runs.iter().map(|r| r.p99).collect()),
        runs: runs.len(),
    })
}

/// One `bftlab sim` run (one seed).
#[derive(Clone, Debug)]
struct SimRun {
    scenario: String,
    protocol: String,
    nodes: usize,
    expect_violation: bool,
    passed: bool,
    faulty: bool,
    wan: bool,
    metrics: Value,
}

/// Everything read from the folder.
#[derive(Default)]
struct Inputs {
    records: Vec<(PathBuf, Value)>,
    local: Vec<LocalRun>,
    sim: Vec<SimRun>,
    /// (journal, status) -> lines (a run done again is counted again).
    statuses: BTreeMap<(String, String), usize>,
    commands: BTreeSet<String>,
    commits: BTreeSet<String>,
    machines: BTreeSet<String>,
}

/// Every file below `dir` (not following into `figures/`), sorted.
fn files_below(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in
            std::fs::read_dir(&at).with_context(|| format!("cannot read {}", at.display()))?
        {
            let entry = entry?;
            let path = entry.path();
            // Symbolic links are not followed (a link to a parent would never end).
            let kind = entry.file_type()?;
            if kind.is_dir() {
                if path.file_name().is_some_and(|n| n != "figures") {
                    stack.push(path);
                }
            } else if kind.is_file() {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn machine_text(machine: &Value) -> Option<String> {
    let cores = machine["cores"].as_u64()?;
    let mut text = format!("{cores} cores");
    if let Some(cpu) = machine["cpu"].as_str() {
        text = format!("{cpu}, {text}");
    }
    if let Some(kb) = machine["memory_kb"].as_u64() {
        let _ = write!(text, ", {:.0} GiB", kb as f64 / (1024.0 * 1024.0));
    }
    Some(text)
}

/// The setup of a benchmark record: committee, where it ran, workers, transaction
/// size, measured window, WAN, commit. Runs are only compared within one setup.
fn setup_of(record: &Value) -> String {
    let config = &record["config"];
    let n = |k: &str| config[k].as_u64().unwrap_or(0);
    format!(
        "{} nodes {}, {} worker(s), {} B transactions, {} s measured after {} s warm-up{}; commit {}",
        n("nodes"),
        if record["kind"] == "bftlab-remote" {
            "on a cluster (bftlab remote)"
        } else {
            "on this machine's loopback (bftlab local)"
        },
        n("workers"),
        n("tx_size"),
        n("duration_s"),
        n("warmup_s"),
        if config["wan"].is_null() {
            ""
        } else {
            ", emulated WAN"
        },
        short_commit(record)
    )
}

fn read_inputs(dir: &Path) -> Result<Inputs> {
    let mut inputs = Inputs::default();
    for path in files_below(dir)? {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name == "sweep.jsonl" || name == crate::sim_sweep::JOURNAL {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            // Lines that do not parse (a sweep killed mid-line) are not runs.
            for line in text
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            {
                if let Some(status) = line["status"].as_str() {
                    *inputs
                        .statuses
                        .entry((name.to_string(), status.to_string()))
                        .or_default() += 1;
                }
                if let Some(c) = line["command"].as_str() {
                    inputs.commands.insert(c.to_string());
                }
            }
            continue;
        }
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let Ok(record) = serde_json::from_slice::<Value>(&bytes) else {
            continue;
        };
        match record["kind"].as_str() {
            Some("bftlab-local" | "bftlab-remote") => {
                if crate::plot::remote_run_failed(&record) {
                    continue;
                }
                let config = &record["config"];
                let e2e = &record["end_to_end"];
                if let (Some(tps), Some(p50), Some(p99)) = (
                    e2e["tps"].as_f64(),
                    e2e["latency"]["p50_ms"].as_f64(),
                    e2e["latency"]["p99_ms"].as_f64(),
                ) {
                    inputs.local.push(LocalRun {
                        setup: setup_of(&record),
                        protocol: protocol_label(config),
                        faults: fault_label(config),
                        rate: config["input_rate_tx_s"].as_u64().unwrap_or(0),
                        tps,
                        p50,
                        p99,
                    });
                }
                if let Some(m) = machine_text(&record["machine"]) {
                    inputs.machines.insert(m);
                }
            }
            Some("bftlab-sim") => {
                if let Some(m) = machine_text(&record["machine"]) {
                    inputs.machines.insert(m);
                }
                for run in record["runs"].as_array().into_iter().flatten() {
                    inputs.sim.push(SimRun {
                        scenario: crate::sim_sweep::scenario_name(Path::new(
                            record["file"].as_str().unwrap_or("?"),
                        )),
                        protocol: protocol_label(&record),
                        nodes: run["nodes"].as_array().map_or(0, Vec::len),
                        expect_violation: record["expect_violation"] == true,
                        passed: run["passed"] == true,
                        faulty: record["faulty"] == true
                            || run["events"].as_array().is_some_and(|e| !e.is_empty())
                            || run["byzantine"].as_array().is_some_and(|b| !b.is_empty()),
                        wan: record["wan"] == true,
                        metrics: run["metrics"].clone(),
                    });
                }
            }
            _ => continue,
        }
        inputs.commits.insert(short_commit(&record));
        inputs.records.push((path, record));
    }
    Ok(inputs)
}

fn ms(v: f64) -> String {
    thousands(v)
}

/// The benchmarks' section: one part per setup.
fn local_section(inputs: &Inputs, out: &mut String) {
    if inputs.local.is_empty() {
        out.push_str("No `bftlab local` or `remote run` records yet.\n\n");
        return;
    }
    let setups: BTreeSet<&str> = inputs.local.iter().map(|r| r.setup.as_str()).collect();
    for setup in setups {
        let runs: Vec<LocalRun> = inputs
            .local
            .iter()
            .filter(|r| r.setup == setup)
            .cloned()
            .collect();
        let _ = writeln!(out, "Setup: {setup}.\n");
        setup_tables(&runs, out);
    }
    out.push_str(
        "### The research prototypes, for reference (measured on another day)\n\n\
         Quoted from the project's benchmark guide (shared/BENCHMARKS.md): the public \
         prototypes at their own `fab local` defaults on a machine of this kind, plaintext \
         TCP, means (they report no percentiles). Not measured in this sitting; compare \
         shapes, not digits.\n\n\
         | system | input tx/s | consensus tx/s | consensus latency | e2e tx/s | e2e latency |\n|---|---|---|---|---|---|\n",
    );
    for row in PROTOTYPES {
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
    out.push('\n');
}

/// The tables of one setup's runs.
fn setup_tables(local: &[LocalRun], out: &mut String) {
    let protocols: BTreeSet<&str> = local.iter().map(|r| r.protocol.as_str()).collect();
    let rates: BTreeSet<u64> = local
        .iter()
        .filter(|r| r.faults == "no faults")
        .map(|r| r.rate)
        .collect();
    let runs_of = |p: &str, f: &str, rate: u64| -> Vec<&LocalRun> {
        local
            .iter()
            .filter(|r| r.protocol == p && r.faults == f && r.rate == rate)
            .collect()
    };
    // Peak and the reference load, every core side by side.
    let mut rows: Vec<(f64, String)> = Vec::new();
    for p in &protocols {
        let cells: Vec<(u64, Cell)> = rates
            .iter()
            .filter_map(|rate| Some((*rate, cell(&runs_of(p, "no faults", *rate))?)))
            .collect();
        let Some((peak_rate, peak)) = cells
            .iter()
            .max_by(|a, b| a.1.tps.total_cmp(&b.1.tps))
            .copied()
        else {
            continue;
        };
        let at = cells
            .iter()
            .find(|(r, _)| *r == REFERENCE_RATE)
            .map(|(_, c)| format!("{} | {} | {}", thousands(c.tps), ms(c.p50), ms(c.p99)))
            .unwrap_or_else(|| "- | - | -".into());
        rows.push((
            peak.tps,
            format!(
                "| {p} | {} ({}{}) | {} / {} | {at} |\n",
                thousands(peak.tps),
                thousands(peak_rate as f64),
                if Some(&peak_rate) == rates.last() {
                    ", the highest swept"
                } else {
                    ""
                },
                ms(peak.p50),
                ms(peak.p99)
            ),
        ));
    }
    rows.sort_by(|a, b| b.0.total_cmp(&a.0));
    out.push_str(
        "### Peak throughput, and latency at 50,000 tx/s\n\n\
         Peak: the input rate whose median committed throughput is highest (where that is \
         the highest rate swept, the core may commit more at higher input). Latency is \
         end to end (client send to commit at the node), in ms.\n\n\
         | protocol | peak tx/s (input) | p50 / p99 at peak | tx/s at 50k | p50 at 50k | p99 at 50k |\n|---|---|---|---|---|---|\n",
    );
    for (_, row) in rows {
        out.push_str(&row);
    }
    // Every rate.
    let _ = write!(
        out,
        "\n### Every input rate, no faults\n\nEach cell: committed tx/s, end-to-end p50 / p99 ms (runs).\n\n| protocol |{}\n|---|{}\n",
        rates
            .iter()
            .map(|r| format!(" {} tx/s |", thousands(*r as f64)))
            .collect::<String>(),
        "---|".repeat(rates.len())
    );
    for p in &protocols {
        let _ = write!(out, "| {p} |");
        for rate in &rates {
            match cell(&runs_of(p, "no faults", *rate)) {
                Some(c) => {
                    let _ = write!(
                        out,
                        " {}, {} / {} ({}) |",
                        thousands(c.tps),
                        ms(c.p50),
                        ms(c.p99),
                        c.runs
                    );
                }
                None => out.push_str(" - |"),
            }
        }
        out.push('\n');
    }
    // Faults.
    let settings: BTreeSet<&str> = local
        .iter()
        .map(|r| r.faults.as_str())
        .filter(|f| *f != "no faults")
        .collect();
    if !settings.is_empty() {
        out.push_str(
            "\n### Under faults\n\nThe highest node crashed from the start, or running Byzantine \
             behaviours (its own clients' samples left out). \"vs none\": p50 against the same \
             core's p50 without faults at the same input.\n\n\
             | protocol | faults | input tx/s | committed tx/s | p50 / p99 ms | p50 vs none | runs |\n|---|---|---|---|---|---|---|\n",
        );
        for f in &settings {
            for p in &protocols {
                let fault_rates: BTreeSet<u64> = local
                    .iter()
                    .filter(|r| r.protocol == *p && r.faults == *f)
                    .map(|r| r.rate)
                    .collect();
                for rate in fault_rates {
                    let Some(c) = cell(&runs_of(p, f, rate)) else {
                        continue;
                    };
                    let ratio = cell(&runs_of(p, "no faults", rate))
                        .filter(|base| base.p50 > 0.0)
                        .map(|base| format!("{:.2}x", c.p50 / base.p50))
                        .unwrap_or_else(|| "-".into());
                    let _ = writeln!(
                        out,
                        "| {p} | {f} | {} | {} | {} / {} | {ratio} | {} |",
                        thousands(rate as f64),
                        thousands(c.tps),
                        ms(c.p50),
                        ms(c.p99),
                        c.runs
                    );
                }
            }
        }
    }
    out.push('\n');
}

/// `passed/total` of a cell, with its meaning.
fn verdict(runs: &[&SimRun]) -> String {
    let passed = runs.iter().filter(|r| r.passed).count();
    let total = runs.len();
    if runs.iter().any(|r| r.expect_violation) {
        let broke = total - passed;
        if broke > 0 {
            format!("violation as expected {broke}/{total}")
        } else {
            format!("**no violation** 0/{total} (one expected)")
        }
    } else if passed == total {
        format!("pass {passed}/{total}")
    } else {
        format!("**FAIL** {}/{total}", total - passed)
    }
}

fn metric(runs: &[&SimRun], pick: &dyn Fn(&Value) -> Option<f64>) -> Option<f64> {
    let values: Vec<f64> = runs
        .iter()
        .filter(|r| r.passed)
        .filter_map(|r| pick(&r.metrics))
        .collect();
    (!values.is_empty()).then(|| median(values))
}

/// A scenario x protocol table of `cell` (None: "-").
fn matrix(
    out: &mut String,
    scenarios: &[String],
    protocols: &BTreeSet<&str>,
    sim: &[SimRun],
    cell: &dyn Fn(&[&SimRun]) -> Option<String>,
) {
    let _ = write!(
        out,
        "| scenario (n) |{}\n|---|{}\n",
        protocols
            .iter()
            .map(|p| format!(" {p} |"))
            .collect::<String>(),
        "---|".repeat(protocols.len())
    );
    for s in scenarios {
        let n = sim.iter().find(|r| &r.scenario == s).map_or(0, |r| r.nodes);
        let _ = write!(out, "| {s} ({n}) |");
        for p in protocols {
            let runs: Vec<&SimRun> = sim
                .iter()
                .filter(|r| &r.scenario == s && r.protocol == *p)
                .collect();
            let text = if runs.is_empty() { None } else { cell(&runs) };
            let _ = write!(out, " {} |", text.unwrap_or_else(|| "-".into()));
        }
        out.push('\n');
    }
    out.push('\n');
}

/// The simulation's section.
fn sim_section(inputs: &Inputs, out: &mut String) {
    if inputs.sim.is_empty() {
        out.push_str("No `bftlab sim` records yet.\n\n");
        return;
    }
    let protocols: BTreeSet<&str> = inputs.sim.iter().map(|r| r.protocol.as_str()).collect();
    // Scenarios by committee size, then name.
    let all: Vec<String> = inputs
        .sim
        .iter()
        .map(|r| (r.nodes, r.scenario.clone()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    // A table over the runs `keep` selects (each cell sees only those), under `heading`;
    // nothing at all when no run is selected.
    let table = |out: &mut String,
                 heading: &str,
                 keep: &dyn Fn(&SimRun) -> bool,
                 cell: &dyn Fn(&[&SimRun]) -> Option<String>| {
        let runs: Vec<SimRun> = inputs.sim.iter().filter(|r| keep(r)).cloned().collect();
        let scenarios: Vec<String> = all
            .iter()
            .filter(|s| runs.iter().any(|r| &r.scenario == *s))
            .cloned()
            .collect();
        if !scenarios.is_empty() {
            out.push_str(heading);
            matrix(out, &scenarios, &protocols, &runs, cell);
        }
    };
    let p50_p99 = |runs: &[&SimRun]| -> Option<String> {
        let p50 = metric(runs, &|m| m["finality_ms"]["p50"].as_f64())?;
        let p99 = metric(runs, &|m| m["finality_ms"]["p99"].as_f64())?;
        Some(format!("{} / {}", ms(p50), ms(p99)))
    };
    let happy = |r: &SimRun| !r.faulty && !r.wan && !r.expect_violation;
    table(
        out,
        "### Finality by committee size (no faults)\n\nFinality: client send to commit, over every honest node and transaction, \
         in simulated ms, p50 / p99; medians over the seeds that passed.\n\n",
        &happy,
        &p50_p99,
    );
    table(
        out,
        "### Messages and bytes per committed transaction (no faults)\n\nEvery node's messages and payload bytes to its peers, over the transactions committed (medians over the seeds that passed).\n\n",
        &happy,
        &|runs| {
            let m = metric(runs, &|m| m["messages_per_tx"].as_f64())?;
            let b = metric(runs, &|m| m["bytes_per_tx"].as_f64())?;
            Some(format!("{m:.2} msgs, {} B", thousands(b)))
        },
    );
    table(
        out,
        "### Wide-area latencies\n\nFinality p50 / p99 in simulated ms (links from a measured latency matrix or drawn per pair; a scenario may add faults, see its name); medians over the seeds that passed.\n\n",
        &|r| r.wan && !r.expect_violation,
        &p50_p99,
    );
    table(
        out,
        "### Under faults: recovery and stalls\n\nEach cell: recovery (from the last fault to every honest live node's next commit), \
         the longest stall of an honest node that never crashed, in simulated s; finality p50 ms. Medians over the seeds that passed; \
         scenarios beyond a core's fault bound are left out.\n\n",
        &|r| r.faulty && !r.expect_violation,
        &|runs| {
            let secs = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2} s"));
            let recovery = metric(runs, &|m| m["recovery_s"].as_f64());
            let stall = metric(runs, &|m| m["longest_stall_s"].as_f64());
            let p50 = metric(runs, &|m| m["finality_ms"]["p50"].as_f64());
            Some(format!(
                "{}, {}; {}",
                secs(recovery),
                secs(stall),
                p50.map_or("-".into(), |v| format!("{} ms", ms(v)))
            ))
        },
    );
    table(
        out,
        "### Every scenario: verdicts\n\nSeeds that passed every checker (agreement, integrity, validity, liveness) over those run; a scenario beyond a core's fault bound expects a violation.\n\n",
        &|_| true,
        &|runs| Some(verdict(runs)),
    );
}

/// Commits over time, one figure per faulty scenario (its lowest seed), one line per
/// protocol, with the scenario's faults marked.
pub fn timeline_figures(records: &[(PathBuf, Value)]) -> Vec<Figure> {
    // scenario -> (seed, protocol -> (bucket, counts), events, records)
    type Lines = BTreeMap<String, (f64, Vec<f64>)>;
    type Scenario = (u64, Lines, Vec<(f64, String)>, Vec<String>);
    let mut by: BTreeMap<String, Scenario> = BTreeMap::new();
    for (path, record) in records {
        if record["kind"] != "bftlab-sim" {
            continue;
        }
        let scenario =
            crate::sim_sweep::scenario_name(Path::new(record["file"].as_str().unwrap_or("?")));
        for run in record["runs"].as_array().into_iter().flatten() {
            let events: Vec<(f64, String)> = run["events"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| Some((e["at_s"].as_f64()?, e["what"].as_str()?.to_string())))
                .collect();
            let (Some(seed), Some(bucket), Some(counts)) = (
                run["seed"].as_u64(),
                run["timeline"]["bucket_s"].as_f64(),
                run["timeline"]["committed"].as_array(),
            ) else {
                continue;
            };
            let faulty = record["faulty"] == true || !events.is_empty();
            if !faulty || bucket <= 0.0 {
                continue;
            }
            let entry = by
                .entry(scenario.clone())
                .or_insert_with(|| (seed, Lines::new(), events.clone(), vec![]));
            if seed > entry.0 {
                continue;
            }
            if seed < entry.0 {
                *entry = (seed, Lines::new(), events.clone(), vec![]);
            }
            let rates: Vec<f64> = counts
                .iter()
                .map(|c| c.as_f64().unwrap_or(0.0) / bucket)
                .collect();
            entry.1.insert(protocol_label(record), (bucket, rates));
            entry.3.push(path.display().to_string());
        }
    }
    by.into_iter()
        .map(|(scenario, (seed, lines, events, files))| Figure {
            name: format!("commits-over-time-{}", crate::plot::slug(&scenario)),
            title: format!("Committed transactions per second, {scenario} (seed {seed})"),
            x_label: "simulated time (s)".into(),
            y_label: "committed (tx/s)".into(),
            caption: format!(
                "bftlab sim; the most advanced honest node's commits per {} s; dashed: the scenario's faults",
                lines.values().next().map_or(1.0, |l| l.0)
            ),
            series: lines
                .into_iter()
                .map(|(label, (bucket, rates))| crate::plot::Series {
                    label,
                    points: rates
                        .iter()
                        .enumerate()
                        .map(|(k, v)| crate::plot::Point {
                            x: (k as f64 + 1.0) * bucket,
                            p50: *v,
                            p99: *v,
                            from: String::new(),
                        })
                        .collect(),
                })
                .collect(),
            records: files,
            markers: events,
            linear_y: true,
        })
        .collect()
}

/// Build the page from the folder's records; also writes the figures.
fn page(dir: &Path, inputs: &Inputs) -> Result<String> {
    let figures_dir = dir.join("figures");
    std::fs::create_dir_all(&figures_dir)
        .with_context(|| format!("cannot create {}", figures_dir.display()))?;
    let figures: Vec<Figure> = crate::plot::local_figures(&inputs.records)
        .into_iter()
        .chain(crate::plot::sim_figures(&inputs.records))
        .chain(timeline_figures(&inputs.records))
        .collect();
    for f in &figures {
        crate::plot::write(f, &figures_dir)?;
    }
    std::fs::write(
        figures_dir.join("figures.json"),
        serde_json::to_string_pretty(&figures)?,
    )
    .context("cannot write figures.json")?;
    let mut out = String::new();
    let _ = write!(
        out,
        "# Every core side by side\n\n\
         Generated by `bftlab report {dir}` from the records in this folder; do not edit by \
         hand (observations, written by hand, are in [observations.md](observations.md)).\n\n\
         - Regenerate this page and `figures/` from the records: `bftlab report {dir}`\n\
         - Re-measure everything (about two and a half hours on 2 cores): `scripts/comparison.sh {dir}`. \
         The sweeps resume: runs already in their journals are skipped; delete `local/` and \
         `sim/` for a new sitting.\n\n\
         Commits of the records: {}. Machine: {}.\n\n",
        inputs
            .commits
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
        if inputs.machines.is_empty() {
            "not recorded".into()
        } else {
            inputs
                .machines
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join("; ")
        },
        dir = dir.display(),
    );
    out.push_str("## Benchmarks of node processes (QUIC, real time)\n\n");
    local_section(inputs, &mut out);
    let local_figs: Vec<&Figure> = figures
        .iter()
        .filter(|f| f.name.starts_with("latency-throughput"))
        .collect();
    for f in local_figs {
        let _ = writeln!(out, "![{}](figures/{}.png)\n", f.title, f.name);
    }
    out.push_str("## Simulation (deterministic, simulated time)\n\n");
    sim_section(inputs, &mut out);
    for f in figures
        .iter()
        .filter(|f| !f.name.starts_with("latency-throughput"))
    {
        let _ = writeln!(out, "![{}](figures/{}.png)\n", f.title, f.name);
    }
    out.push_str("## Runs\n\n");
    if !inputs.statuses.is_empty() {
        out.push_str("| journal | status | runs |\n|---|---|---|\n");
        for ((journal, status), n) in &inputs.statuses {
            let _ = writeln!(out, "| {journal} | {status} | {n} |");
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "{} records ({} local runs, {} simulation runs). The commands, as the sweeps recorded them:\n",
        inputs.records.len(),
        inputs.local.len(),
        inputs.sim.len()
    );
    out.push_str("```\n");
    for c in &inputs.commands {
        let _ = writeln!(out, "{c}");
    }
    out.push_str("```\n");
    Ok(out)
}

/// Run `bftlab report`.
pub fn run(args: ReportArgs) -> Result<()> {
    crate::plot::register_font()?;
    let inputs = read_inputs(&args.dir)?;
    if inputs.records.is_empty() {
        anyhow::bail!(
            "no bftlab local or sim record below {}: run scripts/comparison.sh first",
            args.dir.display()
        );
    }
    let text = page(&args.dir, &inputs)?;
    let readme = args.dir.join("README.md");
    std::fs::write(&readme, text).with_context(|| format!("cannot write {}", readme.display()))?;
    println!(
        "{}: {} records, {} local and {} simulation runs; figures in {}",
        readme.display(),
        inputs.records.len(),
        inputs.local.len(),
        inputs.sim.len(),
        args.dir.join("figures").display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn local(protocol: &str, rate: u64, tps: f64, p50: f64, faults: u64) -> Value {
        json!({
            "kind": "bftlab-local", "git_commit": "abcdef0123456", "machine": {"cores": 2},
            "config": {"protocol": protocol, "variant": "", "nodes": 4, "faults": faults,
                       "input_rate_tx_s": rate, "byzantine": [], "workers": 1, "tx_size": 512},
            "end_to_end": {"tps": tps, "latency": {"p50_ms": p50, "p99_ms": p50 * 2.0}},
        })
    }

    fn sim(protocol: &str, file: &str, seed: u64, passed: bool, events: Value) -> Value {
        json!({
            "kind": "bftlab-sim", "protocol": protocol, "file": file, "commit": "abcdef0123456",
            "expect_violation": false, "wan": false,
            "runs": [{"seed": seed, "passed": passed, "nodes": [{}, {}, {}, {}], "events": events, "byzantine": [],
                      "timeline": {"bucket_s": 1.0, "committed": [100, 0, 50]},
                      "metrics": {"finality_ms": {"p50": 100.0 + seed as f64, "p99": 200.0},
                                  "messages_per_tx": 3.5, "bytes_per_tx": 900.0, "recovery_s": 1.5, "longest_stall_s": 2.0}}]
        })
    }

    #[test]
    fn the_page_is_built_from_the_records_in_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, v: &Value| {
            std::fs::write(dir.path().join(name), serde_json::to_vec(v).unwrap()).unwrap()
        };
        for (k, (p, rate, tps, p50)) in [
            ("hotstuff", 50_000, 49_900.0, 140.0),
            ("hotstuff", 50_000, 49_950.0, 150.0),
            ("hotstuff", 100_000, 99_000.0, 300.0),
            ("tusk", 50_000, 49_000.0, 500.0),
        ]
        .into_iter()
        .enumerate()
        {
            write(&format!("l{k}.json"), &local(p, rate, tps, p50, 0));
        }
        write("c.json", &local("hotstuff", 50_000, 49_000.0, 300.0, 1));
        // Another transaction size is another setup, tabled apart, never pooled.
        let mut small = local("hotstuff", 50_000, 10.0, 9_999.0, 0);
        small["config"]["tx_size"] = json!(128);
        write("o.json", &small);
        let partition =
            json!([{"at_s": 2.0, "what": "partition 0,1 | 2,3"}, {"at_s": 4.0, "what": "heal"}]);
        write(
            "s1.json",
            &sim(
                "hotstuff",
                "harness/scenarios/happy-n4.toml",
                1,
                true,
                json!([]),
            ),
        );
        write(
            "s2.json",
            &sim(
                "hotstuff",
                "harness/scenarios/happy-n4.toml",
                2,
                true,
                json!([]),
            ),
        );
        write(
            "s3.json",
            &sim(
                "tusk",
                "harness/scenarios/partition-2-2.toml",
                1,
                false,
                partition.clone(),
            ),
        );
        write(
            "s4.json",
            &sim(
                "hotstuff",
                "harness/scenarios/partition-2-2.toml",
                1,
                true,
                partition,
            ),
        );
        std::fs::write(
            dir.path().join("sweep.jsonl"),
            "{\"key\":\"a\",\"status\":\"ok\",\"command\":\"bftlab sweep --rates 50000\"}\n{\"key\":\"b\",\"status\":\"failed\"}\n",
        )
        .unwrap();
        crate::plot::register_font().unwrap();
        let inputs = read_inputs(dir.path()).unwrap();
        assert_eq!(inputs.local.len(), 6);
        assert_eq!(inputs.sim.len(), 4);
        let text = page(dir.path(), &inputs).unwrap();
        // Peak: hotstuff's 100k cell; at 50k the median of two (the upper one).
        assert!(
            text.contains("| hotstuff | 99,000 (100,000, the highest swept) | 300 / 600 | 49,950 | 150 | 300 |"),
            "{text}"
        );
        assert!(
            text.contains("| hotstuff | 1 crashed | 50,000 | 49,000 | 300 / 600 | 2.00x | 1 |"),
            "{text}"
        );
        assert!(text.contains("| happy-n4 (4) | 102 / 200 | - |"), "{text}");
        assert!(
            text.contains("| partition-2-2 (4) | pass 1/1 | **FAIL** 1/1 |"),
            "{text}"
        );
        assert!(text.contains("| sweep.jsonl | failed | 1 |"));
        assert!(text.contains("bftlab sweep --rates 50000"));
        assert!(text.contains("Narwhal + Tusk"));
        assert_eq!(text.matches("Setup: ").count(), 2, "{text}");
        assert!(
            text.contains("| hotstuff | 10 (50,000, the highest swept) | 9,999 / 19,998 |"),
            "{text}"
        );
        let figures = dir.path().join("figures");
        assert!(figures.join("commits-over-time-partition-2-2.png").exists());
        assert!(figures.join("finality-by-committee-size.svg").exists());
        // The figures of one folder are not read back as records.
        assert_eq!(
            read_inputs(dir.path()).unwrap().records.len(),
            inputs.records.len()
        );
    }

    #[test]
    fn the_timeline_figure_takes_the_lowest_seed_and_marks_the_faults() {
        let events = json!([{"at_s": 2.0, "what": "crash 3"}]);
        let records = vec![
            (
                PathBuf::from("a"),
                sim("hotstuff", "crash-one.toml", 2, true, events.clone()),
            ),
            (
                PathBuf::from("b"),
                sim("hotstuff", "crash-one.toml", 1, true, events.clone()),
            ),
            (
                PathBuf::from("c"),
                sim("tusk", "crash-one.toml", 1, true, events),
            ),
            (
                PathBuf::from("d"),
                sim("tusk", "happy-n4.toml", 1, true, json!([])),
            ),
        ];
        let figures = timeline_figures(&records);
        assert_eq!(figures.len(), 1);
        let f = &figures[0];
        assert!(f.title.contains("seed 1"));
        assert_eq!(f.series.len(), 2);
        assert_eq!(f.records, ["b", "c"]);
        assert_eq!(f.markers, [(2.0, "crash 3".to_string())]);
        assert_eq!(f.series[0].points[0].x, 1.0);
        assert_eq!(f.series[0].points[2].p50, 50.0);
    }
}
