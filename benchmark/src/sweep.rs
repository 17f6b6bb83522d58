//! `bftlab sweep`: a matrix of `bftlab local` runs (protocols x input rates x fault
//! settings x repeats), one after another, with a progress bar; with `--remote
//! INVENTORY`, of `bftlab remote run` runs on a cluster.
//!
//! Every run writes its record as it finishes, and the sweep appends one line per run
//! to `sweep.jsonl` in the results folder: the run's key, its status and its record. A
//! run that fails is recorded with its error, and one that collapses with its figures;
//! neither is dropped. `--resume` skips the runs whose key already has a line.
//! Repeats are interleaved (all runs of repeat 1, then of repeat 2, ...), so the repeats
//! of one configuration are spread over the sitting instead of run back to back, as
//! docs/benchmarks.md asks for comparisons on a noisy machine.

use crate::local::{LocalArgs, LocalOutcome};
use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A run whose end-to-end committed throughput is below this share of its input is
/// recorded as collapsed.
pub const COLLAPSED_BELOW: f64 = 0.1;

/// Flags of `bftlab sweep`.
#[derive(Args, Debug, Clone)]
pub struct SweepArgs {
    /// Protocols, comma-separated; each `NAME` or `NAME:KEY=VALUE[:KEY=VALUE...]` for a
    /// variant with `--param`s of its own (e.g. `hotstuff:commit_rule=two-chain`).
    /// Default: every registered protocol, and HotStuff's two-chain rule.
    #[arg(long, value_delimiter = ',')]
    pub protocols: Vec<String>,
    /// Total input rates (tx/s), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "50000")]
    pub rates: Vec<u64>,
    /// Fault settings, comma-separated: `none`, `crash` (the highest node crashed from
    /// the start), `byzantine:B1+B2` (the highest node runs the named Byzantine
    /// behaviours, as in scenarios' `[[byzantine]]`).
    #[arg(long, value_delimiter = ',', default_value = "none")]
    pub faults: Vec<String>,
    /// Runs of each configuration.
    #[arg(long, default_value_t = 1)]
    pub repeats: usize,
    /// Committee size.
    #[arg(long, default_value_t = 4)]
    pub nodes: usize,
    /// Workers per node.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Transaction size in bytes.
    #[arg(long, default_value_t = 512)]
    pub tx_size: usize,
    /// Seconds measured per run.
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
    /// Seconds of warm-up per run.
    #[arg(long, default_value_t = 5)]
    pub warmup: u64,
    /// A parameter for every run, `mempool.FIELD=VALUE` or `network.FIELD=VALUE`
    /// (repeatable; a protocol's own keys go in `--protocols NAME:KEY=VALUE`).
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// Where the records and `sweep.jsonl` go.
    #[arg(long, default_value = "results/sweep")]
    pub results: PathBuf,
    /// Resuming from `sweep.jsonl` (a run is the same when its protocol, rate, faults,
    /// repeat and shared settings are), and listing the runs.
    #[command(flatten)]
    pub journal: JournalArgs,
    /// Run each benchmark on a cluster through `bftlab remote run` with this inventory
    /// (docs/remote.md) instead of on this machine. A Byzantine setting becomes a
    /// scenario file in the results folder naming the highest node.
    #[arg(long, value_name = "INVENTORY")]
    pub remote: Option<PathBuf>,
}

/// What `bftlab sweep` and `bftlab sim-sweep` share: resuming from the results folder's
/// journal, and listing the runs without running them.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct JournalArgs {
    /// Skip the runs the journal in the results folder already lists.
    #[arg(long)]
    pub resume: bool,
    /// With `--resume`, run again the runs listed as failed (no record).
    #[arg(long, requires = "resume")]
    pub retry_failed: bool,
    /// List the runs and exit.
    #[arg(long)]
    pub dry_run: bool,
}

/// One protocol of the matrix: a registered name and its own parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct ProtocolSpec {
    /// Registered name.
    pub name: String,
    /// `KEY=VALUE` parameters of this variant.
    pub params: Vec<String>,
}

impl ProtocolSpec {
    /// Parse `NAME[:KEY=VALUE...]`, checking the name and keys against the registry.
    pub fn parse(text: &str) -> Result<Self> {
        let mut parts = text.split(':').map(str::trim);
        let name = parts.next().unwrap_or_default().to_string();
        let params: Vec<String> = parts.map(String::from).collect();
        let spec = ProtocolSpec { name, params };
        // The same check `bftlab local` makes: unknown names and keys are refused.
        spec.protocol_args(&[])
            .apply(&mut primitives::Parameters::default())
            .with_context(|| format!("--protocols entry {text:?}"))?;
        Ok(spec)
    }

    fn protocol_args(&self, shared: &[String]) -> crate::protocols::ProtocolArgs {
        crate::protocols::ProtocolArgs {
            protocol: self.name.clone(),
            params: shared.iter().chain(&self.params).cloned().collect(),
        }
    }

    /// `NAME` or `NAME:KEY=VALUE...`, as given.
    pub fn label(&self) -> String {
        std::iter::once(self.name.clone())
            .chain(self.params.iter().cloned())
            .collect::<Vec<_>>()
            .join(":")
    }
}

/// A fault setting of the matrix.
#[derive(Clone, Debug, PartialEq)]
pub enum FaultSpec {
    /// Every node honest and up.
    None,
    /// The highest node crashed from the start.
    Crash,
    /// The highest node runs these Byzantine behaviours.
    Byzantine(Vec<String>),
}

impl FaultSpec {
    /// Parse `none`, `crash` or `byzantine:B1+B2`.
    pub fn parse(text: &str) -> Result<Self> {
        match text.trim() {
            "none" => Ok(FaultSpec::None),
            "crash" => Ok(FaultSpec::Crash),
            other => {
                let Some(names) = other.strip_prefix("byzantine:") else {
                    anyhow::bail!(
                        "unknown fault setting {other:?} (none, crash, byzantine:BEHAVIOUR[+BEHAVIOUR])"
                    );
                };
                let names: Vec<String> = names.split('+').map(|s| s.trim().to_string()).collect();
                harness::byzantine::parse_behaviours(&names).map_err(anyhow::Error::msg)?;
                Ok(FaultSpec::Byzantine(names))
            }
        }
    }

    /// As written on the command line.
    pub fn label(&self) -> String {
        match self {
            FaultSpec::None => "none".into(),
            FaultSpec::Crash => "crash".into(),
            FaultSpec::Byzantine(names) => format!("byzantine:{}", names.join("+")),
        }
    }
}

/// One run of the matrix.
#[derive(Clone, Debug)]
pub struct Run {
    /// Which protocol.
    pub protocol: ProtocolSpec,
    /// Total input rate.
    pub rate: u64,
    /// Fault setting.
    pub fault: FaultSpec,
    /// 1-based repeat.
    pub repeat: usize,
    /// The settings every run of the sweep shares (committee, workers, sizes, times,
    /// shared parameters), so that a resumed sweep with other settings runs anew.
    pub setting: String,
}

impl Run {
    /// What identifies the run in `sweep.jsonl` (and for `--resume`).
    pub fn key(&self) -> String {
        format!(
            "{} rate={} faults={} repeat={} {}",
            self.protocol.label(),
            self.rate,
            self.fault.label(),
            self.repeat,
            self.setting
        )
    }
}

/// The runs of the matrix in the order they are run: repeats outermost, then fault
/// settings, rates and protocols (protocols alternate run by run). A value listed twice
/// is run once.
pub fn plan(
    protocols: &[ProtocolSpec],
    rates: &[u64],
    faults: &[FaultSpec],
    repeats: usize,
    setting: &str,
) -> Vec<Run> {
    fn distinct<T: PartialEq + Clone>(items: &[T]) -> Vec<T> {
        let mut out: Vec<T> = Vec::new();
        for item in items {
            if !out.contains(item) {
                out.push(item.clone());
            }
        }
        out
    }
    let (protocols, rates, faults) = (distinct(protocols), distinct(rates), distinct(faults));
    let mut runs = Vec::new();
    for repeat in 1..=repeats {
        for fault in &faults {
            for rate in &rates {
                for protocol in &protocols {
                    runs.push(Run {
                        protocol: protocol.clone(),
                        rate: *rate,
                        fault: fault.clone(),
                        repeat,
                        setting: setting.to_string(),
                    });
                }
            }
        }
    }
    runs
}

/// Every registered protocol, and HotStuff's two-chain commit rule.
pub(crate) fn default_protocols() -> Vec<ProtocolSpec> {
    let mut specs: Vec<ProtocolSpec> = consensus::registry::PROTOCOLS
        .iter()
        .map(|e| ProtocolSpec {
            name: e.name.to_string(),
            params: vec![],
        })
        .collect();
    if let Some(at) = specs.iter().position(|s| s.name == "hotstuff") {
        specs.insert(
            at + 1,
            ProtocolSpec {
                name: "hotstuff".into(),
                params: vec!["commit_rule=two-chain".into()],
            },
        );
    }
    specs
}

/// The keys the journal `name` in `folder` lists (none if it does not exist), leaving out
/// failed runs when `retry_failed`. A last line cut short (the sweep was killed while
/// writing it) is ignored; any other line that is not a JSON object with a `key` is
/// refused: a resumed sweep must not guess.
pub fn done_keys(folder: &Path, name: &str, retry_failed: bool) -> Result<BTreeSet<String>> {
    let path = folder.join(name);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .collect();
    let mut keys = BTreeSet::new();
    for (at, (i, line)) in lines.iter().enumerate() {
        let value: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(_) if at + 1 == lines.len() && !text.ends_with('\n') => {
                eprintln!(
                    "note: {}:{}: the last line was cut short; its run will be run again",
                    path.display(),
                    i + 1
                );
                continue;
            }
            Err(e) => {
                return Err(e).with_context(|| format!("{}:{}: not JSON", path.display(), i + 1))
            }
        };
        let key = value
            .get("key")
            .and_then(|k| k.as_str())
            .with_context(|| format!("{}:{}: no \"key\"", path.display(), i + 1))?;
        if retry_failed && value.get("status").and_then(|s| s.as_str()) == Some("failed") {
            continue;
        }
        keys.insert(key.to_string());
    }
    Ok(keys)
}

/// How a finished run is filed.
fn status_of(outcome: &Result<LocalOutcome>, rate: u64) -> (&'static str, serde_json::Value) {
    match outcome {
        Err(e) => ("failed", json!({ "error": format!("{e:#}") })),
        Ok(o) => {
            let tps = o.end_to_end_tps;
            let status = if tps < COLLAPSED_BELOW * rate as f64 {
                "collapsed"
            } else {
                "ok"
            };
            (
                status,
                json!({
                    "record": o.record.display().to_string(),
                    "end_to_end_tps": tps,
                    "end_to_end_p50_ms": o.end_to_end_p50_ms,
                }),
            )
        }
    }
}

/// A scenario file giving the highest of `nodes` the Byzantine behaviours `names`, for
/// `bftlab remote run --scenario` (which takes Byzantine members only from one).
fn byzantine_scenario(nodes: usize, names: &[String], seconds: u64) -> String {
    let behaviours: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    format!(
        "# Written by bftlab sweep --remote: node {node} runs {list}.\n\
         name = \"sweep: node {node} Byzantine ({list})\"\n\
         nodes = {nodes}\nduration_s = {seconds}\nsubmit_until_s = {seconds}\n\n\
         [[byzantine]]\nnode = {node}\nbehaviours = [{behaviours}]\n",
        node = nodes.saturating_sub(1),
        list = names.join("+"),
        behaviours = behaviours.join(", "),
    )
}

/// One run of the matrix on a cluster: `bftlab remote run` in a child process, its
/// printed output kept in `logs/`, its record read back.
fn run_remote(inventory: &Path, args: &SweepArgs, run: &Run) -> Result<LocalOutcome> {
    let exe = std::env::current_exe().context("cannot find the bftlab binary to run")?;
    let mut command = std::process::Command::new(exe);
    command
        .args(["remote", "run", "--inventory"])
        .arg(inventory)
        .args(["--protocol", &run.protocol.name]);
    for p in args.params.iter().chain(&run.protocol.params) {
        command.args(["--param", p]);
    }
    for (flag, value) in [
        ("--nodes", args.nodes.to_string()),
        ("--workers", args.workers.to_string()),
        ("--rate", run.rate.to_string()),
        ("--tx-size", args.tx_size.to_string()),
        ("--duration", args.duration.to_string()),
        ("--warmup", args.warmup.to_string()),
    ] {
        command.args([flag, &value]);
    }
    command.arg("--results").arg(&args.results);
    match &run.fault {
        FaultSpec::None => {}
        FaultSpec::Crash => {
            command.args(["--faults", "1"]);
        }
        FaultSpec::Byzantine(names) => {
            let file = args.results.join(format!(
                "byzantine-{}-n{}.toml",
                crate::plot::slug(&names.join("+")),
                args.nodes
            ));
            let seconds = args.warmup + args.duration;
            std::fs::write(&file, byzantine_scenario(args.nodes, names, seconds))
                .with_context(|| format!("cannot write {}", file.display()))?;
            command.arg("--scenario").arg(file);
        }
    }
    let output = command.output().context("cannot start bftlab remote run")?;
    let logs = args.results.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
    // The key holds every parameter and the inventory's path: too long for a file name
    // in general. Its start and a hash of the whole name the log.
    let slug: String = crate::plot::slug(&run.key()).chars().take(80).collect();
    let hash = blake3::hash(run.key().as_bytes()).to_hex();
    let log = logs.join(format!("{slug}-{}.txt", &hash[..12]));
    let mut text = output.stdout.clone();
    text.extend_from_slice(&output.stderr);
    std::fs::write(&log, &text).with_context(|| format!("cannot write {}", log.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let record = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("Result record: "))
        .map(PathBuf::from);
    let last = |bytes: &[u8]| {
        let text = String::from_utf8_lossy(bytes);
        let lines: Vec<&str> = text.lines().rev().take(3).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join(" / ")
    };
    let Some(record) = record else {
        anyhow::bail!(
            "bftlab remote run wrote no record ({}): {} (output in {})",
            output.status,
            last(&output.stderr),
            log.display()
        );
    };
    if !output.status.success() {
        anyhow::bail!(
            "bftlab remote run failed ({}): {} (record {}, output in {})",
            output.status,
            last(&output.stderr),
            record.display(),
            log.display()
        );
    }
    let value: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&record).with_context(|| format!("cannot read {}", record.display()))?,
    )
    .with_context(|| format!("{} is not JSON", record.display()))?;
    Ok(LocalOutcome {
        end_to_end_tps: value["end_to_end"]["tps"].as_f64().unwrap_or(0.0),
        end_to_end_p50_ms: value["end_to_end"]["latency"]["p50_ms"].as_f64(),
        record,
    })
}

/// Run `bftlab sweep`.
pub fn run(args: SweepArgs) -> Result<()> {
    let protocols = if args.protocols.is_empty() {
        default_protocols()
    } else {
        args.protocols
            .iter()
            .map(|p| ProtocolSpec::parse(p))
            .collect::<Result<Vec<_>>>()?
    };
    let faults = args
        .faults
        .iter()
        .map(|f| FaultSpec::parse(f))
        .collect::<Result<Vec<_>>>()?;
    if args.rates.is_empty() || args.rates.contains(&0) {
        anyhow::bail!("--rates must list rates above 0");
    }
    if args.repeats == 0 {
        anyhow::bail!("--repeats must be at least 1");
    }
    if let Some(p) = args
        .params
        .iter()
        .find(|p| !(p.starts_with("mempool.") || p.starts_with("network.")))
    {
        anyhow::bail!(
            "--param {p:?}: only mempool.* and network.* apply to every protocol; put a protocol's own keys in --protocols NAME:KEY=VALUE"
        );
    }
    let setting = format!(
        "{}nodes={} workers={} tx_size={} duration={} warmup={}{}",
        args.remote
            .as_ref()
            .map(|i| format!("remote={} ", i.display()))
            .unwrap_or_default(),
        args.nodes,
        args.workers,
        args.tx_size,
        args.duration,
        args.warmup,
        args.params
            .iter()
            .map(|p| format!(" {p}"))
            .collect::<String>()
    );
    let all = plan(&protocols, &args.rates, &faults, args.repeats, &setting);
    let done = if args.journal.resume {
        done_keys(&args.results, "sweep.jsonl", args.journal.retry_failed)?
    } else {
        BTreeSet::new()
    };
    let todo: Vec<&Run> = all.iter().filter(|r| !done.contains(&r.key())).collect();
    println!(
        "bftlab sweep: {} protocol(s) x {} rate(s) x {} fault setting(s) x {} repeat(s) = {} runs, {} to do; about {} s each",
        protocols.len(),
        args.rates.len(),
        faults.len(),
        args.repeats,
        all.len(),
        todo.len(),
        args.warmup + args.duration + 8
    );
    if args.journal.dry_run {
        for r in &todo {
            println!("  {}", r.key());
        }
        return Ok(());
    }
    std::fs::create_dir_all(&args.results)
        .with_context(|| format!("cannot create {}", args.results.display()))?;
    let journal_path = args.results.join("sweep.jsonl");
    let mut journal = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&journal_path)
        .with_context(|| format!("cannot open {}", journal_path.display()))?;
    let bar = ProgressBar::new(todo.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("run {pos}/{len} [{elapsed_precise}, ETA {eta}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_secs(1));
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    let command = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    if args.remote.is_none() {
        if let Some(note) = crate::local::udp_buffer_note(crate::local::udp_buffer_limits()) {
            eprintln!("{note}");
        }
    }
    for run in todo {
        bar.set_message(run.key());
        let local = LocalArgs {
            protocol: run.protocol.protocol_args(&args.params),
            nodes: args.nodes,
            workers: args.workers,
            rate: run.rate,
            tx_size: args.tx_size,
            duration: args.duration,
            warmup: args.warmup,
            faults: usize::from(run.fault == FaultSpec::Crash),
            byzantine: match &run.fault {
                FaultSpec::Byzantine(names) => names.clone(),
                _ => vec![],
            },
            results: args.results.clone(),
            metrics_port: None,
            wan: crate::wan::WanArgs::default(),
            keep: false,
            quiet: true,
        };
        let outcome = match &args.remote {
            Some(inventory) => run_remote(inventory, &args, run),
            None => crate::local::run_recorded(&local),
        };
        let (status, details) = status_of(&outcome, run.rate);
        *counts.entry(status).or_default() += 1;
        let mut line = json!({
            "key": run.key(),
            "protocol": run.protocol.name,
            "protocol_params": run.protocol.params,
            "rate": run.rate,
            "faults": run.fault.label(),
            "repeat": run.repeat,
            "status": status,
            "finished_unix_ms": crate::tx::now_micros() / 1000,
            "command": command,
        });
        if let (Some(line), Some(details)) = (line.as_object_mut(), details.as_object()) {
            line.extend(details.clone());
        }
        // One write per line, so that a sweep killed mid-way leaves whole lines.
        journal
            .write_all(format!("{line}\n").as_bytes())
            .context("cannot append to sweep.jsonl")?;
        let report = match &outcome {
            Ok(o) => format!(
                "{:<9} {}: {:.0} tx/s, e2e p50 {} ms",
                status,
                run.key(),
                o.end_to_end_tps,
                o.end_to_end_p50_ms
                    .map_or("-".to_string(), |v| format!("{v:.0}"))
            ),
            Err(e) => format!("{status:<9} {}: {e:#}", run.key()),
        };
        // A hidden bar (output not a terminal) prints nothing itself.
        if bar.is_hidden() {
            println!("{report}");
        } else {
            bar.println(report);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let counts: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
    println!(
        "bftlab sweep: done ({}); records and {} in {}",
        if counts.is_empty() {
            "nothing to run".to_string()
        } else {
            counts.join(", ")
        },
        journal_path.display(),
        args.results.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_refuse_unknown_names() {
        let two = ProtocolSpec::parse("hotstuff:commit_rule=two-chain").unwrap();
        assert_eq!(two.name, "hotstuff");
        assert_eq!(two.label(), "hotstuff:commit_rule=two-chain");
        assert!(ProtocolSpec::parse("paxos").is_err());
        assert!(ProtocolSpec::parse("hotstuff:no_such_key=1").is_err());
        assert_eq!(FaultSpec::parse("none").unwrap(), FaultSpec::None);
        assert_eq!(FaultSpec::parse("crash").unwrap(), FaultSpec::Crash);
        assert_eq!(
            FaultSpec::parse("byzantine:equivocate+garbage").unwrap(),
            FaultSpec::Byzantine(vec!["equivocate".into(), "garbage".into()])
        );
        assert!(FaultSpec::parse("byzantine:lie").is_err());
        assert!(FaultSpec::parse("flaky").is_err());
    }

    #[test]
    fn the_plan_interleaves_repeats_and_protocols() {
        let p = |n: &str| ProtocolSpec {
            name: n.into(),
            params: vec![],
        };
        let runs = plan(
            &[p("hotstuff"), p("tusk"), p("tusk")],
            &[1000, 2000, 1000],
            &[FaultSpec::None, FaultSpec::Crash],
            2,
            "nodes=4",
        );
        // Values listed twice run once.
        assert_eq!(runs.len(), 16);
        let keys: Vec<String> = runs.iter().map(Run::key).collect();
        assert_eq!(keys[0], "hotstuff rate=1000 faults=none repeat=1 nodes=4");
        assert_eq!(keys[1], "tusk rate=1000 faults=none repeat=1 nodes=4");
        assert_eq!(keys[8], "hotstuff rate=1000 faults=none repeat=2 nodes=4");
        // Every key is distinct: --resume can tell the runs apart.
        assert_eq!(keys.iter().collect::<BTreeSet<_>>().len(), 16);
    }

    #[test]
    fn the_default_matrix_is_every_core_and_two_chain_hotstuff() {
        let labels: Vec<String> = default_protocols().iter().map(|p| p.label()).collect();
        assert_eq!(labels[0], "hotstuff");
        assert_eq!(labels[1], "hotstuff:commit_rule=two-chain");
        for e in consensus::registry::PROTOCOLS {
            assert!(labels.contains(&e.name.to_string()));
        }
    }

    #[test]
    fn resume_reads_the_journal_and_refuses_a_damaged_one() {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("sweep.jsonl");
        assert!(done_keys(dir.path(), "sweep.jsonl", false)
            .unwrap()
            .is_empty());
        std::fs::write(
            &journal,
            "{\"key\":\"a\",\"status\":\"ok\"}\n\n{\"key\":\"b\",\"status\":\"failed\"}\n",
        )
        .unwrap();
        let keys = done_keys(dir.path(), "sweep.jsonl", false).unwrap();
        assert_eq!(keys, ["a".to_string(), "b".to_string()].into());
        // Failed runs are run again on request.
        assert_eq!(
            done_keys(dir.path(), "sweep.jsonl", true).unwrap(),
            ["a".to_string()].into()
        );
        // A damaged line in the middle is refused; a last line cut short is not.
        std::fs::write(&journal, "{\"key\":\"a\"}\nnot json\n").unwrap();
        assert!(done_keys(dir.path(), "sweep.jsonl", false).is_err());
        std::fs::write(&journal, "{\"key\":\"a\"}\n{\"key\":\"b").unwrap();
        assert_eq!(
            done_keys(dir.path(), "sweep.jsonl", false).unwrap(),
            ["a".to_string()].into()
        );
    }

    #[test]
    fn a_remote_byzantine_setting_is_a_scenario_naming_the_highest_node() {
        let text = byzantine_scenario(4, &["equivocate".into(), "garbage".into()], 25);
        let scenario = harness::Scenario::from_toml("b", &text).unwrap();
        assert_eq!(scenario.nodes, 4);
        assert_eq!(scenario.byzantine_nodes(), vec![3]);
        assert_eq!(scenario.behaviours_of(3).len(), 2);
    }

    #[test]
    fn failed_and_collapsed_runs_are_filed_as_such() {
        let failed: Result<LocalOutcome> = Err(anyhow::anyhow!("node 2 failed"));
        assert_eq!(status_of(&failed, 1000).0, "failed");
        let outcome = |tps: f64| -> Result<LocalOutcome> {
            Ok(LocalOutcome {
                record: PathBuf::from("r.json"),
                end_to_end_tps: tps,
                end_to_end_p50_ms: Some(100.0),
            })
        };
        assert_eq!(status_of(&outcome(50.0), 1000).0, "collapsed");
        assert_eq!(status_of(&outcome(990.0), 1000).0, "ok");
    }
}
