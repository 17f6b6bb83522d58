//! `bftlab sim-sweep`: scenarios x protocols x seeds in the deterministic simulation,
//! several simulations at once (one per core by default), each in its own `bftlab sim`
//! process.
//!
//! A simulation is single-threaded, so a 2-core machine runs two at a time. Each run is
//! a child process writing one record (`records/<scenario>-<protocol>-seed<N>.json`)
//! and its printed table (`logs/`); the sweep appends a line per run to
//! `sim-sweep.jsonl`: `passed`, `violation` (a property broke; for a scenario beyond
//! the core's fault bound that is the expected outcome, and the line says so) or
//! `failed` (the process died without a record: a crash, out of memory). `--resume`
//! skips runs already listed (and `--retry-failed` runs the failed ones again). A run
//! is as deterministic in its own process as in one process with the others: the same
//! scenario, protocol and seed commit the same sequence (the record's fingerprint).

use crate::sweep::ProtocolSpec;
use anyhow::{Context, Result};
use clap::Args;
use harness::Scenario;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// The journal's file name in the results folder.
pub const JOURNAL: &str = "sim-sweep.jsonl";

/// Flags of `bftlab sim-sweep`.
#[derive(Args, Debug, Clone)]
pub struct SimSweepArgs {
    /// Scenario files, or folders whose `*.toml` scenarios are all run (one level deep).
    #[arg(required = true)]
    pub scenarios: Vec<PathBuf>,
    /// Protocols, comma-separated; each `NAME` or `NAME:KEY=VALUE[:KEY=VALUE...]` (e.g.
    /// `hotstuff:commit_rule=two-chain`). Default: every registered protocol, and
    /// HotStuff's two-chain rule.
    #[arg(long, value_delimiter = ',')]
    pub protocols: Vec<String>,
    /// Seeds, `A..B` (B excluded).
    #[arg(long, default_value = "1..4")]
    pub seeds: String,
    /// Simulations at once (default: the machine's cores). Each holds its whole
    /// committee in memory: a 50-node run takes about 4.5 GB.
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Where `records/`, `logs/` and `sim-sweep.jsonl` go.
    #[arg(long, default_value = "results/sim-sweep")]
    pub results: PathBuf,
    /// Resuming from `sim-sweep.jsonl`, and listing the runs.
    #[command(flatten)]
    pub journal: crate::sweep::JournalArgs,
    /// Stop a simulation still running after this many wall-clock seconds (it is filed
    /// as failed). A 50-node, 20-simulated-second run takes about 5 minutes on a 2-core machine.
    #[arg(long, default_value_t = 3600)]
    pub timeout: u64,
}

/// One run of the sweep.
#[derive(Clone, Debug)]
pub struct SimRun {
    /// The scenario file.
    pub scenario: PathBuf,
    /// Its short name (folder-qualified outside the top scenario folder).
    pub name: String,
    /// The protocol and its own parameters.
    pub protocol: ProtocolSpec,
    /// The seed.
    pub seed: u64,
    /// Relative cost, for scheduling the heaviest runs first.
    pub weight: u64,
}

impl SimRun {
    /// What identifies the run in the journal (and for `--resume`).
    pub fn key(&self) -> String {
        format!("{} {} seed={}", self.name, self.protocol.label(), self.seed)
    }

    /// Its record's path under the results folder.
    pub fn record_path(&self, results: &Path) -> PathBuf {
        results
            .join("records")
            .join(format!("{}.json", self.stem()))
    }

    /// The file stem of its record and log.
    pub fn stem(&self) -> String {
        format!(
            "{}-{}-seed{}",
            self.name,
            crate::plot::slug(&self.protocol.label()),
            self.seed
        )
    }
}

/// The short name of a scenario file: its stem, prefixed by its folder's name when that
/// is not `scenarios` (`wallcost-n50`, `large-wan-n50`).
pub fn scenario_name(path: &Path) -> String {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("scenario")
        .to_string();
    match path
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|s| s.to_str())
    {
        Some(folder) if folder != "scenarios" && !folder.is_empty() => format!("{folder}-{stem}"),
        _ => stem,
    }
}

/// Every scenario file the inputs name (folders one level deep, `*.toml`), sorted.
fn scenario_files(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    crate::plot::files_with_extension(inputs, "toml")
}

/// The runs, heaviest first (a committee's messages grow with n², and a long run with
/// its simulated seconds), so that the last runs of a sweep are short ones; runs of
/// equal weight keep the order scenario, seed, protocol (protocols alternate). A run
/// listed twice (a protocol named twice, one scenario under two spellings) is run once.
pub fn plan(
    scenarios: &[(PathBuf, Scenario)],
    protocols: &[ProtocolSpec],
    seeds: &[u64],
) -> Vec<SimRun> {
    let mut runs = Vec::new();
    for (path, scenario) in scenarios {
        let n = scenario.nodes as u64;
        for seed in seeds {
            for protocol in protocols {
                runs.push(SimRun {
                    scenario: path.clone(),
                    name: scenario_name(path),
                    protocol: protocol.clone(),
                    seed: *seed,
                    weight: n * n * scenario.duration_s.max(1),
                });
            }
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    runs.retain(|r| seen.insert(r.key()));
    runs.sort_by_key(|r| std::cmp::Reverse(r.weight));
    runs
}

/// How a finished run is filed, from its process's exit and its record.
fn file_run(record: Option<&Value>, exit: &str) -> (&'static str, Value) {
    let Some(record) = record else {
        return ("failed", json!({ "error": format!("no record ({exit})") }));
    };
    let run = &record["runs"][0];
    let expected = record["expect_violation"] == true;
    let status = if run["passed"] == true {
        "passed"
    } else {
        "violation"
    };
    (
        status,
        json!({
            "expect_violation": expected,
            "as_expected": (status == "violation") == expected,
            "violations": run["violations"],
            "fingerprint": run["fingerprint"],
            "finality_p50_ms": run["metrics"]["finality_ms"]["p50"],
            "wall_seconds": run["wall_seconds"],
        }),
    )
}

/// Run one simulation in a child `bftlab sim` process, killed after `timeout`; its
/// record's JSON, if written, and how the process ended.
fn run_child(
    exe: &Path,
    run: &SimRun,
    results: &Path,
    timeout: Duration,
) -> (Option<Value>, String) {
    let record = run.record_path(results);
    let log = results.join("logs").join(format!("{}.txt", run.stem()));
    let mut command = Command::new(exe);
    command
        .arg("sim")
        .arg(&run.scenario)
        .args(["--protocol", &run.protocol.name])
        .args(["--seed", &run.seed.to_string()])
        .arg("--record")
        .arg(&record);
    for p in &run.protocol.params {
        command.args(["--param", p]);
    }
    // A stale record from an earlier, killed sweep must not pass for this run's.
    let _ = std::fs::remove_file(&record);
    let exit = match std::fs::File::create(&log) {
        Err(e) => format!("cannot create {}: {e}", log.display()),
        Ok(out) => {
            let err = out.try_clone();
            command.stdout(out);
            if let Ok(err) = err {
                command.stderr(err);
            }
            match command.spawn() {
                Err(e) => format!("cannot start {}: {e}", exe.display()),
                Ok(mut child) => {
                    let started = Instant::now();
                    loop {
                        match child.try_wait() {
                            Ok(Some(status)) => break status.to_string(),
                            Ok(None) if started.elapsed() < timeout => {
                                std::thread::sleep(Duration::from_millis(200))
                            }
                            Ok(None) => {
                                let _ = child.kill();
                                let _ = child.wait();
                                // Whatever it wrote is not a finished run's record.
                                let _ = std::fs::remove_file(&record);
                                break format!("killed after {} s", timeout.as_secs());
                            }
                            Err(e) => break format!("cannot wait for the simulation: {e}"),
                        }
                    }
                }
            }
        }
    };
    let value = std::fs::read(&record)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
    (value, exit)
}

/// Run `bftlab sim-sweep`.
pub fn run(args: SimSweepArgs) -> Result<()> {
    let protocols = if args.protocols.is_empty() {
        crate::sweep::default_protocols()
    } else {
        args.protocols
            .iter()
            .map(|p| ProtocolSpec::parse(p))
            .collect::<Result<Vec<_>>>()?
    };
    let seeds = crate::sim::parse_range(&args.seeds)?;
    let mut scenarios = Vec::new();
    for path in scenario_files(&args.scenarios)? {
        let scenario = Scenario::load(&path)?;
        // Every protocol must accept the scenario's parameters: refuse now, not an hour in.
        for p in &protocols {
            crate::sim::with_protocol(scenario.clone(), &p.name, &p.params)
                .with_context(|| format!("{} under {}", path.display(), p.label()))?;
        }
        scenarios.push((path, scenario));
    }
    let all = plan(&scenarios, &protocols, &seeds);
    let done = if args.journal.resume {
        crate::sweep::done_keys(&args.results, JOURNAL, args.journal.retry_failed)?
    } else {
        Default::default()
    };
    let todo: Vec<SimRun> = all
        .iter()
        .filter(|r| !done.contains(&r.key()))
        .cloned()
        .collect();
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    println!(
        "bftlab sim-sweep: {} scenario(s) x {} protocol(s) x {} seed(s) = {} runs, {} to do, {jobs} at a time",
        scenarios.len(),
        protocols.len(),
        seeds.len(),
        all.len(),
        todo.len()
    );
    if args.journal.dry_run {
        for r in &todo {
            println!("  {}", r.key());
        }
        return Ok(());
    }
    for sub in ["records", "logs"] {
        let dir = args.results.join(sub);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let journal_path = args.results.join(JOURNAL);
    let mut journal = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&journal_path)
        .with_context(|| format!("cannot open {}", journal_path.display()))?;
    let exe = std::env::current_exe().context("cannot find the bftlab binary to run")?;
    let command = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let bar = ProgressBar::new(todo.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("run {pos}/{len} [{elapsed_precise}, ETA {eta}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_secs(1));
    let queue = Arc::new(Mutex::new(todo.into_iter().collect::<VecDeque<_>>()));
    let (tx, rx) = mpsc::channel();
    let mut workers = Vec::new();
    let timeout = Duration::from_secs(args.timeout.max(1));
    for _ in 0..jobs {
        let (queue, tx, exe, results) =
            (queue.clone(), tx.clone(), exe.clone(), args.results.clone());
        workers.push(std::thread::spawn(move || loop {
            let next = match queue.lock() {
                Ok(mut q) => q.pop_front(),
                Err(_) => None,
            };
            let Some(run) = next else { break };
            let started = Instant::now();
            let (record, exit) = run_child(&exe, &run, &results, timeout);
            if tx.send((run, record, exit, started.elapsed())).is_err() {
                break;
            }
        }));
    }
    drop(tx);
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for (run, record, exit, wall) in rx {
        let (status, details) = file_run(record.as_ref(), &exit);
        let unexpected = details["as_expected"] == false;
        *counts
            .entry(if unexpected {
                format!("{status} (unexpected)")
            } else {
                status.to_string()
            })
            .or_default() += 1;
        let mut line = json!({
            "key": run.key(),
            "scenario": run.scenario.display().to_string(),
            "protocol": run.protocol.name,
            "protocol_params": run.protocol.params,
            "seed": run.seed,
            "status": status,
            "record": run.record_path(&args.results).display().to_string(),
            "process_wall_seconds": wall.as_secs_f64(),
            "finished_unix_ms": crate::tx::now_micros() / 1000,
            "command": command,
        });
        if let (Some(line), Some(details)) = (line.as_object_mut(), details.as_object()) {
            line.extend(details.clone());
        }
        if let Err(e) = journal.write_all(format!("{line}\n").as_bytes()) {
            // Without its journal the sweep cannot be resumed: start nothing more, let
            // the running simulations finish, and say so.
            if let Ok(mut q) = queue.lock() {
                q.clear();
            }
            for w in workers {
                let _ = w.join();
            }
            return Err(e).with_context(|| format!("cannot append to {}", journal_path.display()));
        }
        let report = format!(
            "{:<9}{} {} ({:.0} s){}",
            status,
            if unexpected { "!" } else { " " },
            run.key(),
            wall.as_secs_f64(),
            details["error"]
                .as_str()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
        if bar.is_hidden() {
            println!("{report}");
        } else {
            bar.println(report);
        }
        bar.inc(1);
    }
    for w in workers {
        let _ = w.join();
    }
    bar.finish_and_clear();
    let counts: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
    println!(
        "bftlab sim-sweep: done ({}); records in {}, {}",
        if counts.is_empty() {
            "nothing to run".to_string()
        } else {
            counts.join(", ")
        },
        args.results.join("records").display(),
        journal_path.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_names_carry_their_folder_outside_the_top_one() {
        assert_eq!(
            scenario_name(Path::new("harness/scenarios/happy-n4.toml")),
            "happy-n4"
        );
        assert_eq!(
            scenario_name(Path::new("harness/scenarios/wallcost/n50.toml")),
            "wallcost-n50"
        );
        assert_eq!(scenario_name(Path::new("x.toml")), "x");
    }

    #[test]
    fn the_plan_runs_heavy_scenarios_first_and_keys_are_distinct() {
        let small = Scenario::load(Path::new("../harness/scenarios/happy-n4.toml")).unwrap();
        let big = Scenario::load(Path::new("../harness/scenarios/happy-n10.toml")).unwrap();
        let p = |n: &str| ProtocolSpec {
            name: n.into(),
            params: vec![],
        };
        let runs = plan(
            &[
                (PathBuf::from("happy-n4.toml"), small),
                (PathBuf::from("happy-n10.toml"), big),
            ],
            &[p("hotstuff"), p("tusk")],
            &[1, 2],
        );
        assert_eq!(runs.len(), 8);
        assert_eq!(runs[0].key(), "happy-n10 hotstuff seed=1");
        assert_eq!(runs[1].key(), "happy-n10 tusk seed=1");
        assert_eq!(runs[4].name, "happy-n4");
        let keys: std::collections::BTreeSet<String> = runs.iter().map(SimRun::key).collect();
        assert_eq!(keys.len(), 8);
        assert_eq!(runs[0].stem(), "happy-n10-hotstuff-seed1");
    }

    #[test]
    fn runs_are_filed_by_their_record() {
        assert_eq!(file_run(None, "signal: 9").0, "failed");
        let passed = json!({"expect_violation": false, "runs": [{"passed": true}]});
        let (status, details) = file_run(Some(&passed), "exit status: 0");
        assert_eq!(
            (status, details["as_expected"].clone()),
            ("passed", json!(true))
        );
        let broke = json!({"expect_violation": true, "runs": [{"passed": false}]});
        let (status, details) = file_run(Some(&broke), "exit status: 0");
        assert_eq!(
            (status, details["as_expected"].clone()),
            ("violation", json!(true))
        );
        let missed = json!({"expect_violation": true, "runs": [{"passed": true}]});
        assert_eq!(
            file_run(Some(&missed), "exit status: 1").1["as_expected"],
            false
        );
    }
}
