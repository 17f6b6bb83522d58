//! `bftlab local`: a committee of node processes and their clients on this machine, and
//! a summary of what they committed.

use crate::node::NodeSummary;
use anyhow::{Context, Result};
use clap::Args;
use primitives::Parameters;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Arguments of `bftlab local`.
#[derive(Args, Debug, Clone)]
pub struct LocalArgs {
    /// Consensus protocol and its parameters (`--param KEY=VALUE`).
    #[command(flatten)]
    pub protocol: crate::protocols::ProtocolArgs,
    /// Committee size.
    #[arg(long, default_value_t = 4)]
    pub nodes: usize,
    /// Workers per node.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Total input rate (transactions per second, split over the live nodes' clients).
    #[arg(long, default_value_t = 50_000)]
    pub rate: u64,
    /// Transaction size in bytes.
    #[arg(long, default_value_t = 512)]
    pub tx_size: usize,
    /// Seconds measured.
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
    /// Seconds of warm-up before the measurement (excluded from the figures).
    #[arg(long, default_value_t = 5)]
    pub warmup: u64,
    /// Nodes that are crashed from the start (the highest ids).
    #[arg(long, default_value_t = 0)]
    pub faults: usize,
    /// Where result records go.
    #[arg(long, default_value = "results/local")]
    pub results: PathBuf,
    /// Serve each node's Prometheus metrics on 127.0.0.1, node `i` at port `PORT + i`.
    #[arg(long, value_name = "PORT")]
    pub metrics_port: Option<u16>,
    /// WAN emulation in the application (`--latency-matrix FILE`).
    #[command(flatten)]
    pub wan: crate::wan::WanArgs,
    /// Keep the working directory (committee, keys, stores, node and client logs) and
    /// print where it is.
    #[arg(long)]
    pub keep: bool,
    /// Run the highest live node as a Byzantine member with these behaviours, as named
    /// in scenarios' `[[byzantine]]` entries (comma-separated, e.g. `equivocate,garbage`).
    #[arg(long, value_delimiter = ',')]
    pub byzantine: Vec<String>,
    /// Print nothing but errors (`bftlab sweep` shows its own progress).
    #[arg(skip)]
    pub quiet: bool,
}

/// What a finished `bftlab local` run reports to its caller.
#[derive(Clone, Debug)]
pub struct LocalOutcome {
    /// The record written.
    pub record: PathBuf,
    /// End-to-end committed transactions per second in the measured window.
    pub end_to_end_tps: f64,
    /// End-to-end p50 latency (None without samples).
    pub end_to_end_p50_ms: Option<f64>,
}

/// Child processes, killed when dropped (errors, Ctrl-C unwinding, normal end).
struct Children(Vec<(String, Child)>);

impl Drop for Children {
    fn drop(&mut self) {
        for (_, child) in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn ports_free(base: u16, count: usize) -> bool {
    (0..count).all(|i| {
        base.checked_add(i as u16)
            .is_some_and(|p| std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok())
    })
}

fn pick_base_port(count: usize) -> Result<u16> {
    let start = 20_000 + (std::process::id() % 200) as u16 * 100;
    (0..200u16)
        .map(|i| 20_000 + (start - 20_000 + i * 100) % 20_000)
        .find(|b| ports_free(*b, count))
        .context("no free block of UDP ports on 127.0.0.1")
}

pub(crate) fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join("\n")
}

fn latency(samples: &[u64]) -> serde_json::Value {
    let Ok(mut h) = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3) else {
        return json!(null);
    };
    for s in samples {
        let _ = h.record((*s).max(1));
    }
    if h.is_empty() {
        return json!({"samples": 0});
    }
    json!({
        "samples": h.len(),
        "mean_ms": (h.mean() / 100.0).round() / 10.0,
        "p50_ms": (h.value_at_quantile(0.5) as f64 / 100.0).round() / 10.0,
        "p99_ms": (h.value_at_quantile(0.99) as f64 / 100.0).round() / 10.0,
    })
}

/// The measured window of a run: what the clients sent after the warm-up.
pub(crate) struct Window {
    /// When the clients started (Unix ms).
    pub clients_start_ms: u64,
    /// Seconds of warm-up excluded.
    pub warmup_s: u64,
    /// Seconds measured.
    pub duration_s: u64,
}

impl Window {
    fn contains(&self, t: u64) -> bool {
        let start = self.clients_start_ms + self.warmup_s * 1000;
        t >= start && t < start + self.duration_s * 1000
    }

    /// Throughput and latency of the window, from the nodes' summaries: `consensus`
    /// (the first node's committed transactions; latency from its own certificates
    /// reaching consensus to their commit, over all nodes) and `end_to_end` (from a
    /// sampled transaction's sending to its commit).
    pub fn figures(&self, summaries: &[&NodeSummary], tx_size: usize) -> serde_json::Value {
        let Some(first) = summaries.first() else {
            return json!({"consensus": null, "end_to_end": null});
        };
        let seconds = self.duration_s as f64;
        let (txs, bytes) = first
            .commits
            .iter()
            .filter(|(t, _, _)| self.contains(*t))
            .fold((0u64, 0u64), |(a, b), (_, n, by)| (a + n, b + by));
        let samples = |pick: fn(&NodeSummary) -> &Vec<(u64, u64)>| -> Vec<u64> {
            summaries
                .iter()
                .flat_map(|s| pick(s).iter())
                .filter(|(t, _)| self.contains(*t))
                .map(|(_, l)| *l)
                .collect()
        };
        let consensus = samples(|s| &s.consensus_us);
        let e2e = samples(|s| &s.e2e_us);
        let first_samples = first
            .e2e_us
            .iter()
            .filter(|(t, _)| self.contains(*t))
            .count() as f64;
        let e2e_tps = first_samples * 100.0 / seconds;
        json!({
            "consensus": { "tps": (txs as f64 / seconds).round(), "bps": (bytes as f64 / seconds).round(), "latency": latency(&consensus) },
            "end_to_end": { "tps": e2e_tps.round(), "bps": (e2e_tps * tx_size as f64).round(), "latency": latency(&e2e) },
        })
    }
}

/// What the clients offered and what the nodes' admission control refused, summed over
/// the client summaries that could be read.
pub(crate) fn read_clients(files: &[PathBuf]) -> crate::client::ClientSummary {
    let mut input = crate::client::ClientSummary::default();
    for path in files {
        if let Ok(c) = std::fs::read(path)
            .map_err(anyhow::Error::from)
            .and_then(|t| Ok(serde_json::from_slice::<crate::client::ClientSummary>(&t)?))
        {
            input.sent += c.sent;
            input.accepted += c.accepted;
            input.refused += c.refused;
            input.skipped += c.skipped;
        }
    }
    input
}

/// Print a run's summary lines.
pub(crate) fn print_summary(
    record: &serde_json::Value,
    window: &Window,
    input: &crate::client::ClientSummary,
    stopped_early: usize,
) {
    println!(
        "\n SUMMARY ({} s measured after {} s warm-up)",
        window.duration_s, window.warmup_s
    );
    println!(
        " {:<11} {:>14} {:>12}   {:>17} {:>9}",
        "", "throughput", "bandwidth", "p50/p99/mean", "samples"
    );
    for (name, key) in [("consensus", "consensus"), ("end-to-end", "end_to_end")] {
        let part = &record[key];
        let latency = &part["latency"];
        let ms = |k: &str| {
            latency[k]
                .as_f64()
                .map_or("-".to_string(), |v| format!("{v:.0}"))
        };
        println!(
            " {:<11} {:>9} tx/s {:>7.2} MB/s   {:>14} ms {:>9}",
            name,
            thousands(part["tps"].as_f64().unwrap_or(0.0)),
            part["bps"].as_f64().unwrap_or(0.0) / 1e6,
            format!("{}/{}/{}", ms("p50_ms"), ms("p99_ms"), ms("mean_ms")),
            thousands(latency["samples"].as_f64().unwrap_or(0.0)),
        );
    }
    println!(
        " clients     sent {} tx, {} refused by admission control ({:.1} %), {} held back (flow control or client CPU), {} stopped early",
        thousands(input.sent as f64),
        thousands(input.refused as f64),
        100.0 * input.refused as f64 / input.sent.max(1) as f64,
        thousands(input.skipped as f64),
        stopped_early
    );
}

/// A whole number with thousands separators (`49,925`).
pub(crate) fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The commit this binary was built from (`-dirty`: with uncommitted changes), as
/// the build script recorded it.
pub(crate) fn git_commit() -> String {
    env!("BFTLAB_BUILD_COMMIT").to_string()
}

/// What a record says of the machine it ran on: cores, CPU model and memory (where
/// Linux's /proc tells them), and the kernel's UDP buffer caps.
pub(crate) fn machine() -> serde_json::Value {
    let proc_field = |file: &str, key: &str| -> Option<String> {
        let text = std::fs::read_to_string(file).ok()?;
        let line = text.lines().find(|l| l.starts_with(key))?;
        Some(line.split_once(':')?.1.trim().to_string())
    };
    let memory_kb = proc_field("/proc/meminfo", "MemTotal")
        .and_then(|v| v.trim_end_matches("kB").trim().parse::<u64>().ok());
    let udp_limits = udp_buffer_limits();
    json!({
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu": proc_field("/proc/cpuinfo", "model name"),
        "memory_kb": memory_kb,
        "udp_rmem_max": udp_limits.map(|l| l.0), "udp_wmem_max": udp_limits.map(|l| l.1),
    })
}

/// The datagram size `bftlab local` gives its nodes and clients on plain loopback
/// (`network.max_udp_payload`; not with an emulated WAN) unless told otherwise. At
/// 200,000 tx/s offered it committed about a third more than QUIC's own size
/// (results/local-2026-12-06-throughput/). Not the largest a real socket takes
/// ([`network::MAX_REAL_UDP_PAYLOAD`], 6,550): a full send of ten datagrams of more
/// than about 6,500 bytes made the receivers' sockets drop 6,700-11,700 datagrams a
/// run instead of 740-1,700 (`RcvbufErrors`; the send is then just over 64 KiB,
/// and the likely cause is that the kernel charges the receive buffer for a 128 KiB
/// allocation), each drop halving a QUIC congestion window. 6,000 keeps a margin.
pub const LOOPBACK_UDP_PAYLOAD: u16 = 6_000;

/// The kernel's caps on socket receive and send buffers (`net.core.rmem_max`,
/// `wmem_max`), where they can be read (Linux).
pub(crate) fn udp_buffer_limits() -> Option<(usize, usize)> {
    let read = |name: &str| -> Option<usize> {
        std::fs::read_to_string(format!("/proc/sys/net/core/{name}"))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    Some((read("rmem_max")?, read("wmem_max")?))
}

/// A note for the user when the kernel caps UDP buffers below what nodes ask for.
pub(crate) fn udp_buffer_note(limits: Option<(usize, usize)>) -> Option<String> {
    let (rmem, wmem) = limits?;
    (rmem.min(wmem) < network::UDP_SOCKET_BUFFER_BYTES).then(|| {
        format!(
            "note: net.core.rmem_max = {rmem} and wmem_max = {wmem} cap the nodes' UDP buffers below the {} bytes they ask for; \
             datagrams may be dropped at high rates (raise both with sysctl -w)",
            network::UDP_SOCKET_BUFFER_BYTES
        )
    })
}

/// Run `bftlab local`.
pub fn run(args: LocalArgs) -> Result<()> {
    run_recorded(&args).map(|_| ())
}

/// Run `bftlab local` and say where its record is and what it measured.
pub fn run_recorded(args: &LocalArgs) -> Result<LocalOutcome> {
    let say = |line: String| {
        if !args.quiet {
            println!("{line}");
        }
    };
    if args.nodes == 0 || args.faults >= args.nodes {
        anyhow::bail!(
            "need at least one live node (--nodes {} --faults {})",
            args.nodes,
            args.faults
        );
    }
    if args.workers == 0 {
        anyhow::bail!("--workers must be at least 1");
    }
    if args.tx_size < crate::tx::MIN_SIZE {
        anyhow::bail!("--tx-size must be at least {}", crate::tx::MIN_SIZE);
    }
    harness::byzantine::parse_behaviours(&args.byzantine).map_err(anyhow::Error::msg)?;
    if !args.byzantine.is_empty() && args.nodes - args.faults < 2 {
        anyhow::bail!("--byzantine needs at least two live nodes");
    }
    let udp_limits = udp_buffer_limits();
    if !args.quiet {
        if let Some(note) = udp_buffer_note(udp_limits) {
            eprintln!("{note}");
        }
    }
    let exe = std::env::current_exe().context("cannot find the bftlab executable")?;
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let ports_per_node = 1 + 2 * args.workers;
    let base = pick_base_port(args.nodes * ports_per_node)?;
    let wan_flags = args.wan.node_flags(args.nodes)?;
    let mut parameters = Parameters::default();
    if wan_flags.is_empty() {
        // Loopback carries datagrams of up to 64 KiB; QUIC's own size (1,452 at most)
        // made per-packet work the largest cost of a run. An emulated WAN keeps QUIC's
        // own size, as a real one would. `--param network.max_udp_payload=` overrides.
        parameters.network.max_udp_payload = LOOPBACK_UDP_PAYLOAD;
    }
    args.protocol.apply(&mut parameters)?;
    let protocol = args.protocol.protocol.clone();
    let variant = args.protocol.variant();
    crate::keys::write(
        dir.path(),
        args.nodes,
        args.workers,
        &["127.0.0.1".into()],
        base,
        &parameters,
    )?;
    let live = args.nodes - args.faults;
    let wan_record = args.wan.record(args.nodes)?;
    // Nodes outlast their clients (which start a second later) long enough to read
    // what the clients still have in flight and answer with the final notice.
    let run_for = args.warmup + args.duration + 6;
    say(format!(
        "bftlab local: {} {} ({}), {} nodes ({} crashed{}), {} worker(s) each, {} tx/s of {} B, {} s warm-up + {} s measured",
        protocol, if variant.is_empty() { "(defaults)" } else { &variant },
        if wan_flags.is_empty() { "loopback".to_string() } else { format!("loopback with a WAN from {} emulated in the application", wan_flags[1]) },
        args.nodes, args.faults,
        if args.byzantine.is_empty() { String::new() } else { format!(", node {} Byzantine: {}", args.nodes - args.faults - 1, args.byzantine.join(",")) },
        args.workers, args.rate, args.tx_size, args.warmup, args.duration
    ));
    let byzantine_flags = |i: usize| -> Vec<String> {
        if args.byzantine.is_empty() || i + 1 != live {
            return vec![];
        }
        vec!["--byzantine".into(), args.byzantine.join(",")]
    };
    let mut children = Children(Vec::new());
    for i in 0..live {
        let log = dir.path().join(format!("node-{i}.log"));
        let child = Command::new(&exe)
            .arg("node")
            .arg("--committee")
            .arg(dir.path().join("committee.toml"))
            .arg("--key")
            .arg(dir.path().join(format!("key-{i}.toml")))
            .arg("--parameters")
            .arg(dir.path().join("parameters.toml"))
            .arg("--store")
            .arg(dir.path().join(format!("db-{i}")))
            .arg("--protocol")
            .arg(&protocol)
            .arg("--run-for")
            .arg(run_for.to_string())
            .arg("--summary")
            .arg(dir.path().join(format!("summary-{i}.json")))
            .args(&wan_flags)
            .args(byzantine_flags(i))
            .args(
                args.metrics_port
                    .map(|p| {
                        vec![
                            "--metrics".to_string(),
                            format!("127.0.0.1:{}", p as usize + i),
                        ]
                    })
                    .unwrap_or_default(),
            )
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .context("cannot start a node process")?;
        children.0.push((format!("node {i}"), child));
    }
    std::thread::sleep(Duration::from_millis(1_000));
    // One client per worker of every live node, sharing the input rate evenly.
    let per_client = args.rate / (live * args.workers) as u64;
    let clients_start = crate::tx::now_micros() / 1000;
    for i in 0..live {
        for w in 0..args.workers {
            let id = i * args.workers + w;
            let log = dir.path().join(format!("client-{id}.log"));
            let child = Command::new(&exe)
                .arg("client")
                .arg("--committee")
                .arg(dir.path().join("committee.toml"))
                .arg("--node")
                .arg(i.to_string())
                .arg("--worker")
                .arg(w.to_string())
                .arg("--rate")
                .arg(per_client.to_string())
                .arg("--tx-size")
                .arg(args.tx_size.to_string())
                .arg("--duration")
                .arg((args.warmup + args.duration).to_string())
                .arg("--id")
                .arg(id.to_string())
                .arg("--max-udp-payload")
                .arg(parameters.network.max_udp_payload.to_string())
                .arg("--summary")
                .arg(dir.path().join(format!("client-{id}.json")))
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log)?)
                .spawn()
                .context("cannot start a client process")?;
            children.0.push((format!("client {id}"), child));
        }
    }
    // Wait, showing progress; a child that fails ends the run with its error.
    let started = Instant::now();
    let mut last_report = 0;
    let mut failed_clients: Vec<String> = Vec::new();
    loop {
        let mut running = 0;
        for (name, child) in &mut children.0 {
            match child.try_wait()? {
                None => running += 1,
                Some(status) if !status.success() => {
                    let log = dir.path().join(format!("{}.log", name.replace(' ', "-")));
                    if name.starts_with("client") {
                        // An overloaded committee can stall a client until its
                        // connection drops: that ends its input, not the benchmark.
                        if !failed_clients.contains(name) {
                            say(format!(
                                "  warning: {name} stopped early ({status}): {}",
                                tail(&log).replace('\n', " | ")
                            ));
                            failed_clients.push(name.clone());
                        }
                    } else {
                        anyhow::bail!("{name} failed ({status}):\n{}", tail(&log));
                    }
                }
                Some(_) => {}
            }
        }

        if running == 0 {
            break;
        }
        let elapsed = started.elapsed().as_secs();
        if elapsed >= last_report + 5 {
            last_report = elapsed;
            say(format!("  ... {elapsed} s of about {} s", run_for + 1));
        }
        if elapsed > run_for + 60 {
            anyhow::bail!("the committee did not stop in time");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(children);

    // Aggregate.
    let mut summaries = Vec::new();
    for i in 0..live {
        let path = dir.path().join(format!("summary-{i}.json"));
        let text = std::fs::read(&path).with_context(|| format!("node {i} wrote no summary"))?;
        summaries.push(
            serde_json::from_slice::<NodeSummary>(&text)
                .with_context(|| format!("bad summary from node {i}"))?,
        );
    }
    let client_files: Vec<PathBuf> = (0..live * args.workers)
        .map(|id| dir.path().join(format!("client-{id}.json")))
        .collect();
    let input = read_clients(&client_files);
    let window = Window {
        clients_start_ms: clients_start,
        warmup_s: args.warmup,
        duration_s: args.duration,
    };
    // A Byzantine node's own view of latency is not evidence: figures come from the
    // honest nodes (throughput is counted at node 0 in any case).
    let honest: Vec<&NodeSummary> = summaries
        .iter()
        .enumerate()
        .filter(|(i, _)| args.byzantine.is_empty() || i + 1 != live)
        .map(|(_, s)| s)
        .collect();
    let figures = window.figures(&honest, args.tx_size);
    let record = json!({
        "kind": "bftlab-local",
        "config": {
            "protocol": protocol, "variant": variant, "nodes": args.nodes,
            "faults": args.faults, "workers": args.workers, "input_rate_tx_s": args.rate,
            "tx_size": args.tx_size, "warmup_s": args.warmup, "duration_s": args.duration,
            "sample_every": 100, "parameters": parameters, "wan": wan_record,
            "byzantine": args.byzantine,
            "byzantine_node": (!args.byzantine.is_empty()).then_some(live - 1),
        },
        "consensus": figures["consensus"], "end_to_end": figures["end_to_end"],
        "blocks_committed": summaries.iter().map(|s| s.blocks).collect::<Vec<_>>(),
        "clients_stopped_early": failed_clients,
        "clients": { "sent": input.sent, "accepted": input.accepted, "refused": input.refused, "held_back": input.skipped },
        "node_counters": summaries.iter().map(|s| s.counters.clone()).collect::<Vec<_>>(),

        "git_commit": git_commit(),
        "machine": machine(),
        "start_unix_ms": clients_start,
    });
    if !args.quiet {
        print_summary(&record, &window, &input, failed_clients.len());
    }
    std::fs::create_dir_all(&args.results)
        .with_context(|| format!("cannot create {}", args.results.display()))?;
    let file = args.results.join(format!(
        "{}-{}-n{}-f{}-r{}{}{}.json",
        clients_start,
        protocol,
        args.nodes,
        args.faults,
        args.rate,
        if variant.is_empty() {
            String::new()
        } else {
            format!("-{}", variant.replace(['=', ',', '/'], "-"))
        },
        if args.byzantine.is_empty() {
            String::new()
        } else {
            format!("-byzantine-{}", args.byzantine.join("-"))
        }
    ));
    std::fs::write(&file, serde_json::to_string_pretty(&record)?)
        .with_context(|| format!("cannot write {}", file.display()))?;
    say(format!(" Result record: {}", file.display()));
    if args.keep {
        say(format!(" Working directory kept: {}", dir.keep().display()));
    }
    Ok(LocalOutcome {
        record: file,
        end_to_end_tps: record["end_to_end"]["tps"].as_f64().unwrap_or(0.0),
        end_to_end_p50_ms: record["end_to_end"]["latency"]["p50_ms"].as_f64(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_are_separated() {
        assert_eq!(super::thousands(0.0), "0");
        assert_eq!(super::thousands(999.4), "999");
        assert_eq!(super::thousands(49_925.0), "49,925");
        assert_eq!(super::thousands(1_234_567.0), "1,234,567");
    }
}
