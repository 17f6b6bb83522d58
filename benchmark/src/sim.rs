//! `bftlab sim`: run a scenario in the deterministic simulation for one seed or a sweep,
//! judge every run, print a table and write a JSON record.

use anyhow::{Context, Result};
use clap::Args;
use harness::{check, measure, run_with_progress, Scenario};
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

/// Log lines stamped with the simulation's clock (so they line up with fault times).
struct SimulatedTime;

impl tracing_subscriber::fmt::time::FormatTime for SimulatedTime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        match turmoil::sim_elapsed() {
            Some(t) => write!(w, "{:>10.3}s", t.as_secs_f64()),
            None => write!(w, "{:>11}", "-"),
        }
    }
}

/// Arguments of `bftlab sim`.
#[derive(Args, Debug)]
pub struct SimArgs {
    /// The scenario file (see harness/scenarios/).
    pub scenario: PathBuf,
    /// Run this one seed.
    #[arg(long, conflicts_with = "seeds")]
    pub seed: Option<u64>,
    /// Run a range of seeds, `A..B` (B excluded).
    #[arg(long)]
    pub seeds: Option<String>,
    /// Run the scenario under this protocol instead of the one it names (any scenario
    /// runs under any core; `bftlab protocols` lists them).
    #[arg(long)]
    pub protocol: Option<String>,
    /// A parameter of the run, `KEY=VALUE` (repeatable), as `bftlab local --param`: a
    /// key of the protocol's own section (`commit_rule=two-chain`), or
    /// `mempool.FIELD` / `network.FIELD`. Applied over the scenario's parameters.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// Where result records go.
    #[arg(long, default_value = "results/sim")]
    pub results: PathBuf,
    /// Also write each run's histories (every node's committed sequence, the submitted
    /// transactions, who was Byzantine or down) as JSON lines into
    /// `DIR/<scenario>-<protocol>-seed<N>/`, for checkers outside the project
    /// (docs/histories.md).
    #[arg(long, value_name = "DIR")]
    pub history: Option<PathBuf>,
    /// Write the record to this file (instead of `<results>/<time>-<scenario>.json`).
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
}

/// `scenario` under protocol `name` with `params` (`KEY=VALUE`, as `--param`) applied
/// over its own parameters; an unknown protocol or key is an error naming it.
pub(crate) fn with_protocol(scenario: Scenario, name: &str, params: &[String]) -> Result<Scenario> {
    let mut scenario = scenario.with_protocol(name)?;
    if params.is_empty() {
        return Ok(scenario);
    }
    let mut parameters = scenario.node_parameters().map_err(anyhow::Error::msg)?;
    crate::protocols::ProtocolArgs {
        protocol: name.to_string(),
        params: params.to_vec(),
    }
    .apply(&mut parameters)?;
    // A scenario's overrides are sections (`mempool`, `network`, `consensus`); the
    // top-level values `--param` cannot set stay as the scenario has them.
    let mut sections = toml::Table::try_from(&parameters).context("parameters as TOML")?;
    sections.retain(|_, v| v.is_table());
    scenario.parameters = Some(sections);
    Ok(scenario.with_protocol(name)?)
}

pub(crate) fn parse_range(text: &str) -> Result<Vec<u64>> {
    let (a, b) = text
        .split_once("..")
        .with_context(|| format!("--seeds wants A..B, got {text:?}"))?;
    let a: u64 = a
        .trim()
        .parse()
        .with_context(|| format!("bad seed {a:?}"))?;
    let b: u64 = b
        .trim()
        .parse()
        .with_context(|| format!("bad seed {b:?}"))?;
    if b <= a {
        anyhow::bail!("--seeds {text}: the range is empty");
    }
    Ok((a..b).collect())
}

/// Run `bftlab sim`.
pub fn run_sim(args: SimArgs) -> Result<()> {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_timer(SimulatedTime)
            .with_writer(std::io::stderr)
            .init();
    }
    let mut scenario = Scenario::load(&args.scenario)?;
    let stem = args
        .scenario
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("scenario")
        .to_string();
    if args.protocol.is_some() || !args.params.is_empty() {
        let name = args
            .protocol
            .clone()
            .unwrap_or_else(|| scenario.protocol.clone());
        scenario = with_protocol(scenario, &name, &args.params)?;
    }
    let variant = args.params.join(",");
    let seeds = match (&args.seed, &args.seeds) {
        (Some(s), _) => vec![*s],
        (None, Some(range)) => parse_range(range)?,
        (None, None) => scenario.seeds.clone(),
    };
    println!(
        "bftlab sim: {} under {}{} ({} nodes, {} s simulated), {} seed(s)",
        scenario.name,
        scenario.protocol,
        if variant.is_empty() {
            String::new()
        } else {
            format!(" ({variant})")
        },
        scenario.nodes,
        scenario.duration_s,
        seeds.len()
    );
    println!(
        "{:>6}  {:>7}  {:>9}  {:>8}  {:>8}  {:>8}  {:>14}  {:>8}  {:>8}  violations",
        "seed", "verdict", "committed", "tx/s", "p50 ms", "p99 ms", "progress", "recovery", "stall"
    );
    let mut runs = Vec::new();
    let mut failed = Vec::new();
    for (k, seed) in seeds.iter().enumerate() {
        let started = std::time::Instant::now();
        // Progress of a long run on a terminal: simulated time against wall time.
        let live = std::io::stderr().is_terminal();
        let report = run_with_progress(&scenario, *seed, &mut |t| {
            if live {
                eprint!(
                    "\r  seed {seed}: {:>4} of {} s simulated, {:.0} s wall ",
                    t.as_secs(),
                    scenario.duration_s,
                    started.elapsed().as_secs_f64()
                );
                let _ = std::io::stderr().flush();
            }
        })?;
        if live {
            eprint!("\r{:60}\r", "");
        }
        let verdict = check(&scenario, &report);
        let metrics = measure(&scenario, &report);
        if let Some(dir) = &args.history {
            let run_dir = dir.join(format!("{stem}-{}-seed{seed}", scenario.protocol));
            harness::history::write(&run_dir, &scenario, *seed, &report)
                .with_context(|| format!("cannot write the history into {}", run_dir.display()))?;
        }
        let wall = started.elapsed().as_secs_f64();
        let ms = |f: fn(&harness::Percentiles) -> f64| {
            metrics
                .finality_ms
                .as_ref()
                .map(|p| format!("{:.0}", f(p)))
                .unwrap_or_else(|| "-".into())
        };
        println!(
            "{:>6}  {:>7}  {:>9}  {:>8.0}  {:>8}  {:>8}  {:>14}  {:>8}  {:>8}  {:?}   ({}/{}, {:.1} s wall)",
            seed,
            if verdict.passed() { "pass" } else { "FAIL" },
            metrics.committed_transactions,
            metrics.throughput_tps,
            ms(|p| p.p50),
            ms(|p| p.p99),
            metrics
                .progress
                .as_ref()
                .map(|(name, v)| format!("{name} {v}"))
                .unwrap_or_else(|| "-".into()),
            metrics
                .recovery_s
                .map(|r| format!("{r:.2} s"))
                .unwrap_or_else(|| "-".into()),
            metrics
                .longest_stall_s
                .map(|r| format!("{r:.2} s"))
                .unwrap_or_else(|| "-".into()),
            verdict.violations,
            k + 1,
            seeds.len(),
            wall
        );
        if !verdict.passed() {
            failed.push(*seed);
        }
        runs.push(json!({
            "seed": seed,
            "passed": verdict.passed(),
            "violations": verdict.violations.iter().map(|v| format!("{v:?}")).collect::<Vec<_>>(),
            "metrics": metrics,
            "fingerprint": report.fingerprint().to_hex(),
            "simulated_seconds": scenario.duration_s,
            "submitted": report.submitted.len(),
            "packet_faults": report.packet_faults,
            "events": harness::timeline::fault_events(&scenario),
            "byzantine": report.byzantine,
            "timeline": harness::timeline::commit_timeline(&report, std::time::Duration::from_secs(1)),
            "nodes": report.logs.iter().map(|l| json!({
                "delivered_certificates": l.sequence.len(),
                "delivered_transactions": l.transactions.len(),
                "skipped": l.skips.iter().map(|(from, to, chain)| json!({"from": from, "to": to, "chain": chain.to_hex()})).collect::<Vec<_>>(),
                "last_delivery_s": l.progress.last().map(|(t, _)| t.as_secs_f64()),
                "blocks_committed": l.counters.blocks_committed,
                "certificates_committed": l.counters.certificates_committed,
                "dag_round": l.counters.dag_round,
                "core": l.counters.core.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
                "evidence": l.counters.evidence,
                "last_block": l.last_block.map(|(b, h)| json!({"block": b.to_hex(), "height": h})),
                "blocks_delivering": l.blocks_delivering,
                "messages_out": l.counters.messages_out,
                "bytes_out": l.counters.bytes_out,
                "consensus_rejected": l.counters.consensus_rejected,
                "peaks": l.peaks.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            })).collect::<Vec<_>>(),
            "wall_seconds": wall,
        }));
    }
    let file = args.record.clone().unwrap_or_else(|| {
        args.results
            .join(format!("{}-{stem}.json", crate::tx::now_micros() / 1000))
    });
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let record = json!({
        "kind": "bftlab-sim",
        "scenario": scenario.name,
        "protocol": scenario.protocol,
        "variant": variant,
        "nodes": scenario.nodes,
        "wan": scenario.latency_matrix.is_some() || scenario.link_latency_ms.is_some(),
        // Anything beyond the happy path: timed faults, Byzantine members, lossy or
        // overridden links, datagram faults, node clocks.
        "faulty": !scenario.faults.is_empty()
            || !scenario.byzantine.is_empty()
            || scenario.packet_faults.is_some()
            || scenario.loss > 0.0
            || !scenario.links.is_empty()
            || !scenario.clocks.is_empty(),
        "machine": crate::local::machine(),
        "file": args.scenario,
        "expect_violation": scenario.expect_violation,
        "commit": crate::local::git_commit(),
        "runs": runs,
    });
    std::fs::write(&file, serde_json::to_string_pretty(&record)?)
        .with_context(|| format!("cannot write {}", file.display()))?;
    println!("record: {}", file.display());
    // The replay runs what this run ran: the same protocol and parameters.
    let variant_flags: String = std::iter::once(format!(" --protocol {}", scenario.protocol))
        .chain(args.params.iter().map(|p| format!(" --param {p}")))
        .collect();
    for seed in &failed {
        println!(
            "replay: bftlab sim {}{variant_flags} --seed {seed}",
            args.scenario.display()
        );
    }
    if scenario.expect_violation {
        // Beyond what the protocol tolerates: the checkers must catch it.
        if failed.is_empty() {
            anyhow::bail!(
                "the scenario expects a violation and none of {} seed(s) showed one",
                seeds.len()
            );
        }
        println!(
            "expected: {} of {} seed(s) violated a property",
            failed.len(),
            seeds.len()
        );
        return Ok(());
    }
    if !failed.is_empty() {
        anyhow::bail!(
            "{} of {} seed(s) violated a property",
            failed.len(),
            seeds.len()
        );
    }
    Ok(())
}
