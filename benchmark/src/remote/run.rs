//! `bftlab remote run`: a benchmark on the inventory's hosts.
//!
//! Locally: the committee, keys and parameters are generated (addresses: the hosts'
//! private ones). On every host, under `<workdir>/bftlab`: the release binary (by its
//! BLAKE3 hash, uploaded once) and a run directory `run-<id>` with the files its
//! processes need. Nodes and clients start detached from the ssh session (`setsid
//! nohup`), each leaving its pid, log and exit status in the run directory; the
//! scenario's crashes and restarts are applied at their times; the run is polled until
//! every process has ended, and a process that fails or vanishes ends the run with its
//! status and log tail (after killing everything else). Then summaries, committed
//! sequences and logs come back into the results directory, the committed sequences of
//! the honest nodes are judged for agreement, and the record is written.

use super::check::{clock_too_far, facts, HostFacts};
use super::firewall;
use super::inventory::{shell_safe, Host, Inventory, Role};
use super::ssh::Ssh;
use super::InventoryArg;
use crate::local::{git_commit, print_summary, read_clients, Window};
use crate::node::NodeSummary;
use crate::sequence::{disagreements, Sequence};
use anyhow::{Context, Result};
use clap::Args;
use harness::{FaultKind, Misbehaviour, Scenario};
use primitives::Parameters;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The committee's first port unless told otherwise.
pub const DEFAULT_BASE_PORT: u16 = 7000;
/// The largest clock offset a run accepts unless told otherwise, ms.
pub const DEFAULT_MAX_CLOCK_OFFSET_MS: f64 = 25.0;

/// Arguments of `bftlab remote run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    inventory: InventoryArg,
    /// Consensus protocol and its parameters (`--param KEY=VALUE`).
    #[command(flatten)]
    protocol: crate::protocols::ProtocolArgs,
    /// Committee size (default: one node per host with the node role; more are spread
    /// round robin over them).
    #[arg(long)]
    nodes: Option<usize>,
    /// Workers per node.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Total input rate (transactions per second, split over the honest live nodes'
    /// clients).
    #[arg(long, default_value_t = 50_000)]
    rate: u64,
    /// Transaction size in bytes.
    #[arg(long, default_value_t = 512)]
    tx_size: usize,
    /// Seconds measured.
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// Seconds of warm-up before the measurement.
    #[arg(long, default_value_t = 5)]
    warmup: u64,
    /// Nodes that are crashed from the start (the highest ids).
    #[arg(long, default_value_t = 0)]
    faults: usize,
    /// A scenario file whose crashes, restarts (at their `at_s`, counted from the
    /// nodes' start) and Byzantine members apply to this run. Its committee size must
    /// match.
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// The binary to install on the hosts (default: this one; it must run there).
    #[arg(long)]
    binary: Option<PathBuf>,
    /// First port of the committee.
    #[arg(long, default_value_t = DEFAULT_BASE_PORT)]
    base_port: u16,
    /// Refuse to run if a host's clock is further than this from this machine's
    /// (end-to-end latency compares clocks of different hosts).
    #[arg(long, default_value_t = DEFAULT_MAX_CLOCK_OFFSET_MS)]
    max_clock_offset_ms: f64,
    /// Where result records go (each run also gets a directory of what it collected).
    #[arg(long, default_value = "results/remote")]
    results: PathBuf,
    /// Leave the run's stores on the hosts (by default they are removed after the
    /// logs and records are collected).
    #[arg(long)]
    keep_stores: bool,
    /// Serve each node's Prometheus metrics: node `i` on port `PORT + i` of its host.
    /// With a host of the monitor role, Prometheus is started there to scrape them
    /// (it stays up after the run, until `remote kill`).
    #[arg(long, value_name = "PORT")]
    metrics_port: Option<u16>,
    /// Port of the Prometheus server on the monitor host.
    #[arg(long, default_value_t = 9095)]
    monitor_port: u16,
    /// Install Debian's prometheus package on the monitor host if it is missing (as
    /// root, or with `sudo -n`).
    #[arg(long)]
    install_prometheus: bool,
    /// WAN emulation in the application (`--latency-matrix FILE`); regions default to
    /// the inventory's.
    #[command(flatten)]
    wan: crate::wan::WanArgs,
}

/// Where every node and client runs, and the committee's ports.
pub struct Plan<'a> {
    /// Node `i` runs on `nodes[i]`.
    pub nodes: Vec<&'a Host>,
    /// Workers per node.
    pub workers: usize,
    /// First port.
    pub base_port: u16,
    client_hosts: Vec<&'a Host>,
}

/// Spread `nodes` nodes round robin over the node hosts.
pub fn place(
    inventory: &Inventory,
    nodes: usize,
    workers: usize,
    base_port: u16,
) -> Result<Plan<'_>> {
    let node_hosts = inventory.with(Role::Node);
    if nodes == 0 || workers == 0 {
        anyhow::bail!("need at least one node and one worker");
    }
    let stride = 1 + 2 * workers;
    if base_port as usize + stride * nodes > u16::MAX as usize {
        anyhow::bail!("{nodes} nodes from port {base_port} do not fit below 65536");
    }
    Ok(Plan {
        nodes: (0..nodes)
            .map(|i| node_hosts[i % node_hosts.len()])
            .collect(),
        workers,
        base_port,
        client_hosts: inventory.with(Role::Client),
    })
}

impl Plan<'_> {
    /// The UDP ports node processes bind on `host`.
    pub fn ports_on(&self, host: &str) -> Vec<u16> {
        let stride = 1 + 2 * self.workers;
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, h)| h.name == host)
            .flat_map(|(i, _)| (0..stride).map(move |k| self.base_port + (stride * i + k) as u16))
            .collect()
    }

    /// Where the client of node `node`'s worker `worker` runs: beside its node if that
    /// host has the client role, else on the client hosts round robin.
    fn client_host(&self, node: usize, worker: usize) -> Result<&Host> {
        let own = self.nodes[node];
        if own.has(Role::Client) {
            return Ok(own);
        }
        if self.client_hosts.is_empty() {
            anyhow::bail!("no host has the client role");
        }
        Ok(self.client_hosts[(node * self.workers + worker) % self.client_hosts.len()])
    }
}

/// A change the scenario makes during the run.
#[derive(Clone, Debug, PartialEq)]
enum Event {
    Crash(usize),
    Restart(usize),
    Partition(Vec<usize>, Vec<usize>),
    IsolateInbound(usize),
    IsolateOutbound(usize),
    HealAll,
}

impl Event {
    /// Whether it needs firewall rules on the hosts.
    fn is_network(&self) -> bool {
        !matches!(self, Event::Crash(_) | Event::Restart(_))
    }
}

/// What of a scenario applies to a remote run: crashes, restarts, partitions and
/// one-way isolation (as firewall rules, see [`super::firewall`]) at their times. Slow
/// links, packet faults and clock changes cannot be applied to real hosts and are
/// refused by name.
fn timeline(scenario: &Scenario) -> Result<Vec<(f64, Event)>> {
    let mut events = Vec::new();
    for f in &scenario.faults {
        let event = match &f.kind {
            FaultKind::Crash { node } => Event::Crash(*node),
            FaultKind::Restart { node } => Event::Restart(*node),
            FaultKind::Partition { a, b } => Event::Partition(a.clone(), b.clone()),
            FaultKind::IsolateInbound { node } => Event::IsolateInbound(*node),
            FaultKind::IsolateOutbound { node } => Event::IsolateOutbound(*node),
            FaultKind::HealAll => Event::HealAll,
            other => anyhow::bail!(
                "{}: the fault {other:?} at {} s is not applied on remote hosts (crash, restart, partition, isolate-inbound, isolate-outbound and heal-all are)",
                scenario.name,
                f.at_s
            ),
        };
        let nodes: Vec<usize> = match &event {
            Event::Crash(n)
            | Event::Restart(n)
            | Event::IsolateInbound(n)
            | Event::IsolateOutbound(n) => vec![*n],
            Event::Partition(a, b) => a.iter().chain(b).copied().collect(),
            Event::HealAll => vec![],
        };
        if let Some(n) = nodes.iter().find(|n| **n >= scenario.nodes) {
            anyhow::bail!(
                "{}: fault at {} s names node {n}, not in the committee",
                scenario.name,
                f.at_s
            );
        }
        events.push((f.at_s, event));
    }
    for (what, present) in [
        ("packet_faults", scenario.packet_faults.is_some()),
        ("clocks", !scenario.clocks.is_empty()),
        ("links", !scenario.links.is_empty()),
        ("twins", !scenario.twins.is_empty()),
        ("known_bad", !scenario.known_bad.is_empty()),
    ] {
        if present {
            anyhow::bail!("{}: `{what}` is not applied on remote hosts", scenario.name);
        }
    }
    events.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(events)
}

/// Kills every process of the run on every host when dropped, unless disarmed.
struct Cleanup<'a> {
    ssh: &'a Ssh,
    hosts: Vec<&'a Host>,
    run_dir: String,
    armed: bool,
    /// Hosts that got firewall rules (removed whether or not the run succeeded).
    firewalled: Vec<&'a Host>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for host in &self.firewalled {
            let _ = self.ssh.run(host, &firewall::as_root(&firewall::remove()));
        }
        if !self.armed {
            return;
        }
        for host in &self.hosts {
            let pid_files = format!("{}/*.pid", self.run_dir);
            let _ = self
                .ssh
                .run(host, &super::kill_script(&host.home(), &pid_files));
        }
    }
}

/// The command that starts `name` (`node-3`, `client-5`) detached in `run`: its pid
/// in `NAME.pid`, its output appended to `NAME.log`, its exit status in `NAME.exit`.
fn detached(run: &str, name: &str, command: &str) -> String {
    // The process writes its own pid (the new session's leader, so also its group's
    // id), and its exit status through a rename, so a poll never reads half of it.
    format!(
        "cd {run} || exit 1; rm -f {name}.exit; \
         setsid nohup sh -c 'echo $$ > {name}.pid; {command}; echo $? > {name}.exit.tmp && mv {name}.exit.tmp {name}.exit' \
         >> {name}.log 2>&1 < /dev/null &"
    )
}

fn all_safe(args: &[String]) -> Result<()> {
    match args.iter().find(|a| !shell_safe(a)) {
        Some(a) => {
            anyhow::bail!("{a:?} cannot be passed to a remote shell (plain characters only)")
        }
        None => Ok(()),
    }
}

/// The BLAKE3 hash of a file, hex.
fn file_hash(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(blake3::hash(&bytes).to_hex().to_string())
}

/// Start Prometheus on the inventory's first monitor host, scraping every node's
/// metrics port; its address, or `None` without a monitor host.
fn start_monitor(
    ssh: &Ssh,
    inventory: &Inventory,
    plan: &Plan,
    port: u16,
    args: &RunArgs,
    run_id: u64,
    local: &Path,
) -> Result<Option<serde_json::Value>> {
    let Some(host) = inventory.with(Role::Monitor).first().copied() else {
        println!("  (no host has the monitor role: nodes serve metrics, nothing scrapes them)");
        return Ok(None);
    };
    let targets: Vec<String> = plan
        .nodes
        .iter()
        .enumerate()
        .map(|(i, h)| format!("'{}:{}'", h.private, port as usize + i))
        .collect();
    let config = format!(
        "# Written by bftlab remote run {run_id}.\nglobal:\n  scrape_interval: 2s\nscrape_configs:\n  - job_name: bftlab\n    static_configs:\n      - targets: [{}]\n        labels:\n          run: '{run_id}'\n          protocol: '{}'\n",
        targets.join(", "),
        args.protocol.protocol
    );
    let file = local.join("prometheus.yml");
    std::fs::write(&file, config).context("cannot write prometheus.yml")?;
    let dir = format!("{}/monitor", host.home());
    let install = if args.install_prometheus {
        "command -v prometheus >/dev/null || (export DEBIAN_FRONTEND=noninteractive;          if [ \"$(id -u)\" = 0 ]; then apt-get install -y -qq prometheus;          else sudo -n apt-get install -y -qq prometheus; fi) >/dev/null 2>&1; "
    } else {
        ""
    };
    let found = ssh.run(host, &format!("{install}command -v prometheus"))?;
    if !found.ok {
        println!(
            "  warning: no prometheus on {} (install Debian's prometheus package, or pass --install-prometheus): nodes serve metrics, nothing scrapes them",
            host.name
        );
        return Ok(None);
    }
    let prometheus = found.stdout.trim().to_string();
    ssh.check(host, &format!("mkdir -p {dir}"))?;
    ssh.upload(host, &[file], &dir)?;
    ssh.check(
        host,
        &format!(
            "cd {dir} || exit 1; \
             if [ -f prometheus.pid ]; then p=$(cat prometheus.pid); kill -- -$p 2>/dev/null; \
             for _ in $(seq 1 100); do kill -0 $p 2>/dev/null || break; sleep 0.1; done; \
             kill -KILL -- -$p 2>/dev/null; rm -f prometheus.pid; fi; \
             setsid nohup sh -c 'echo $$ > prometheus.pid; exec {prometheus} --config.file=prometheus.yml --storage.tsdb.path=data \
             --web.listen-address=0.0.0.0:{}' >> prometheus.log 2>&1 < /dev/null & \
             sleep 2; kill -0 $(cat prometheus.pid 2>/dev/null || echo 0) 2>/dev/null || {{ tail -n 5 prometheus.log >&2; exit 1; }}",
            args.monitor_port
        ),
    )?;
    let url = format!("http://{}:{}", host.public, args.monitor_port);
    println!(
        "  Prometheus on {}: {url} (deploy/grafana/bftlab.json is a dashboard for it)",
        host.name
    );
    Ok(Some(
        json!({"host": host.name, "url": url, "targets": targets.len()}),
    ))
}

/// Run `bftlab remote run`.
pub fn run(args: RunArgs) -> Result<()> {
    let inventory = Inventory::load(&args.inventory.inventory)?;
    let scenario = args
        .scenario
        .as_deref()
        .map(Scenario::load)
        .transpose()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let nodes = match (&scenario, args.nodes) {
        (Some(s), Some(n)) if s.nodes != n => {
            anyhow::bail!("the scenario has {} nodes, --nodes says {n}", s.nodes)
        }
        (Some(s), _) => s.nodes,
        (None, Some(n)) => n,
        (None, None) => inventory.with(Role::Node).len(),
    };
    if args.faults >= nodes {
        anyhow::bail!(
            "need at least one live node (--nodes {nodes} --faults {})",
            args.faults
        );
    }
    if args.tx_size < crate::tx::MIN_SIZE {
        anyhow::bail!("--tx-size must be at least {}", crate::tx::MIN_SIZE);
    }
    let plan = place(&inventory, nodes, args.workers, args.base_port)?;
    let events = scenario
        .as_ref()
        .map(timeline)
        .transpose()?
        .unwrap_or_default();
    let byzantine: BTreeMap<usize, Vec<Misbehaviour>> = scenario
        .as_ref()
        .map(|s| {
            s.byzantine_nodes()
                .into_iter()
                .map(|n| (n, s.behaviours_of(n)))
                .collect()
        })
        .unwrap_or_default();
    if let Some(n) = byzantine.keys().find(|n| **n >= nodes) {
        anyhow::bail!("the scenario's Byzantine node {n} is not in the committee");
    }
    let mut parameters = Parameters::default();
    args.protocol.apply(&mut parameters)?;
    let protocol = args.protocol.protocol.clone();
    let variant = args.protocol.variant();

    // The WAN: regions from the inventory unless given.
    let mut wan = args.wan.clone();
    if wan.latency_matrix.is_some() && wan.regions.is_none() {
        wan.regions = Some(
            plan.nodes
                .iter()
                .map(|h| {
                    h.region
                        .clone()
                        .with_context(|| format!("host {} has no region for the matrix", h.name))
                })
                .collect::<Result<_>>()?,
        );
    }
    let wan_record = wan.record(nodes)?;
    // The matrix goes to each host as matrix.csv, beside the committee.
    let wan_flags = wan.node_flags_naming(nodes, "matrix.csv")?;

    // Committee, keys, parameters.
    let local = tempfile::tempdir().context("cannot create a temporary directory")?;
    let addresses: Vec<String> = plan.nodes.iter().map(|h| h.private.clone()).collect();
    // keys::write assigns hosts round robin by node id: one address per node.
    crate::keys::write(
        local.path(),
        nodes,
        args.workers,
        &addresses,
        args.base_port,
        &parameters,
    )?;

    let ssh = Ssh::new(&inventory)?;
    let used: Vec<&Host> = inventory
        .host
        .iter()
        .filter(|h| {
            plan.nodes.iter().any(|n| n.name == h.name)
                || (0..nodes).any(|i| {
                    (0..args.workers)
                        .any(|w| plan.client_host(i, w).is_ok_and(|c| c.name == h.name))
                })
        })
        .collect();

    // Hosts: reachable, clocks close enough, ports free.
    println!("bftlab remote: checking {} hosts", used.len());
    let mut host_facts: Vec<HostFacts> = Vec::new();
    for host in &used {
        let f = facts(&ssh, host, &plan.ports_on(&host.name))?;
        if clock_too_far(&f, args.max_clock_offset_ms) {
            anyhow::bail!(
                "{}: clock {:.1} ± {:.1} ms from this machine's, beyond --max-clock-offset-ms {}: synchronise the clocks (chrony) first",
                f.name, f.clock_offset_ms, f.clock_uncertainty_ms, args.max_clock_offset_ms
            );
        }
        if !f.busy_ports.is_empty() {
            anyhow::bail!(
                "{}: ports {:?} are in use (bftlab remote kill?)",
                f.name,
                f.busy_ports
            );
        }
        host_facts.push(f);
    }

    // Upload.
    let binary = match &args.binary {
        Some(b) => b.clone(),
        None => std::env::current_exe().context("cannot find the bftlab executable")?,
    };
    let hash = file_hash(&binary)?;
    let run_id = crate::tx::now_micros() / 1000;
    let run_dir = format!("run-{run_id}");
    for host in &used {
        let home = host.home();
        let bin = format!("{home}/bin/bftlab-{}", &hash[..16]);
        ssh.check(host, &format!("mkdir -p {home}/bin {home}/{run_dir}"))?;
        if !ssh.run(host, &format!("test -x {bin}"))?.ok {
            println!("  {}: installing the binary", host.name);
            ssh.upload_as(host, &binary, &format!("{bin}.part"))?;
            ssh.check(host, &format!("chmod +x {bin}.part && mv {bin}.part {bin}"))?;
        }
        let mut files = vec![
            local.path().join("committee.toml"),
            local.path().join("parameters.toml"),
        ];
        for (i, h) in plan.nodes.iter().enumerate() {
            if h.name == host.name {
                files.push(local.path().join(format!("key-{i}.toml")));
            }
        }
        if let Some(m) = &wan.latency_matrix {
            let copy = local.path().join("matrix.csv");
            std::fs::copy(m, &copy).with_context(|| format!("cannot read {}", m.display()))?;
            files.push(copy);
        }
        ssh.upload(host, &files, &format!("{home}/{run_dir}"))?;
    }
    let mut cleanup = Cleanup {
        ssh: &ssh,
        hosts: used.clone(),
        run_dir: run_dir.clone(),
        armed: true,
        firewalled: Vec::new(),
    };
    // Partitions need an nftables table on every node host, made before the run so a
    // host that cannot is found now.
    let node_hosts: Vec<&Host> = used
        .iter()
        .copied()
        .filter(|h| plan.nodes.iter().any(|n| n.name == h.name))
        .collect();
    if events.iter().any(|(_, e)| e.is_network()) {
        if let Some(h) = node_hosts
            .iter()
            .find(|h| h.private.parse::<std::net::Ipv4Addr>().is_err())
        {
            anyhow::bail!(
                "host {}: partitions match addresses in nftables rules, so its private address must be an IPv4 address, not {:?}",
                h.name,
                h.private
            );
        }
        for host in &node_hosts {
            let ran = ssh.run(
                host,
                &firewall::as_root(&format!("{} && {}", firewall::remove(), firewall::setup())),
            )?;
            if !ran.ok {
                anyhow::bail!(
                    "{}: the scenario's partitions need nftables (`nft`) and root or passwordless sudo there: {}",
                    host.name,
                    ran.stderr.trim()
                );
            }
            cleanup.firewalled.push(host);
        }
    }

    let run_for = args.warmup + args.duration + 8;
    let live: Vec<usize> = (0..nodes - args.faults).collect();
    let honest_live: Vec<usize> = live
        .iter()
        .copied()
        .filter(|i| !byzantine.contains_key(i))
        .collect();
    let node_command = |i: usize, seconds: u64| -> Result<String> {
        let host = plan.nodes[i];
        let mut a: Vec<String> = [
            "node",
            "--committee",
            "committee.toml",
            "--parameters",
            "parameters.toml",
            "--protocol",
            &protocol,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend([
            "--key".into(),
            format!("key-{i}.toml"),
            "--store".into(),
            format!("db-{i}"),
            "--run-for".into(),
            seconds.to_string(),
            "--summary".into(),
            format!("summary-{i}.json"),
            "--history".into(),
            format!("history-{i}.txt"),
        ]);
        if let Some(b) = byzantine.get(&i) {
            let names: Vec<String> = b
                .iter()
                .map(|m| {
                    toml::Value::try_from(m).map(|v| v.as_str().unwrap_or_default().to_string())
                })
                .collect::<Result<_, _>>()?;
            a.extend(["--byzantine".into(), names.join(",")]);
            let others: Vec<String> = byzantine
                .keys()
                .filter(|n| **n != i)
                .map(|n| n.to_string())
                .collect();
            if !others.is_empty() {
                a.extend(["--colluders".into(), others.join(",")]);
            }
        }
        a.extend(wan_flags.iter().cloned());
        if let Some(port) = args.metrics_port {
            a.extend(["--metrics".into(), format!("0.0.0.0:{}", port as usize + i)]);
        }
        all_safe(&a)?;
        let bin = format!("{}/bin/bftlab-{}", host.home(), &hash[..16]);
        Ok(detached(
            &format!("{}/{run_dir}", host.home()),
            &format!("node-{i}"),
            &format!("{bin} {}", a.join(" ")),
        ))
    };

    let monitor = match args.metrics_port {
        Some(port) => start_monitor(&ssh, &inventory, &plan, port, &args, run_id, local.path())?,
        None => None,
    };
    println!(
        "bftlab remote: {protocol} {} on {} hosts, {nodes} nodes ({} crashed, {} Byzantine), {} worker(s) each, {} tx/s of {} B, {} s warm-up + {} s measured{}",
        if variant.is_empty() { "(defaults)" } else { &variant },
        used.len(), args.faults, byzantine.len(), args.workers, args.rate, args.tx_size, args.warmup, args.duration,
        if wan_flags.is_empty() { String::new() } else { format!(", WAN from {} emulated in the application", wan_flags[1]) }
    );
    let started = Instant::now();
    let started_unix_ms = crate::tx::now_micros() / 1000;
    let mut starts: BTreeMap<String, (&Host, Vec<String>)> = BTreeMap::new();
    for &i in &live {
        let host = plan.nodes[i];
        starts
            .entry(host.name.clone())
            .or_insert((host, Vec::new()))
            .1
            .push(node_command(i, run_for)?);
    }
    on_hosts(&ssh, starts.into_values())?;
    std::thread::sleep(Duration::from_secs(1));
    let per_client = args.rate / (honest_live.len() * args.workers).max(1) as u64;
    let clients_start = crate::tx::now_micros() / 1000;
    let mut clients: Vec<(usize, &Host)> = Vec::new();
    let mut starts: BTreeMap<String, (&Host, Vec<String>)> = BTreeMap::new();
    for &i in &honest_live {
        for w in 0..args.workers {
            let id = i * args.workers + w;
            let host = plan.client_host(i, w)?;
            let a: Vec<String> = vec![
                "client".into(),
                "--committee".into(),
                "committee.toml".into(),
                "--node".into(),
                i.to_string(),
                "--worker".into(),
                w.to_string(),
                "--rate".into(),
                per_client.to_string(),
                "--tx-size".into(),
                args.tx_size.to_string(),
                "--duration".into(),
                (args.warmup + args.duration).to_string(),
                "--id".into(),
                id.to_string(),
                "--summary".into(),
                format!("client-{id}.json"),
            ];
            let bin = format!("{}/bin/bftlab-{}", host.home(), &hash[..16]);
            let command = detached(
                &format!("{}/{run_dir}", host.home()),
                &format!("client-{id}"),
                &format!("{bin} {}", a.join(" ")),
            );
            starts
                .entry(host.name.clone())
                .or_insert((host, Vec::new()))
                .1
                .push(command);
            clients.push((id, host));
        }
    }
    on_hosts(&ssh, starts.into_values())?;

    // Wait, applying the timeline at its times, until every process has ended.
    let mut pending = events.clone();
    let mut applied = Vec::new();
    let mut crashed: Vec<usize> = Vec::new();
    let mut ever_crashed: Vec<usize> = Vec::new();
    let mut failed_clients: Vec<String> = Vec::new();
    let mut unreachable: BTreeMap<String, u32> = BTreeMap::new();
    let mut last_report = 0;
    let mut last_poll: Option<Instant> = None;
    loop {
        let elapsed = started.elapsed().as_secs_f64();
        while let Some((at, event)) = pending.first().cloned() {
            if at > elapsed {
                break;
            }
            pending.remove(0);
            let rules = match &event {
                Event::Partition(a, b) => firewall::partition(&plan, a, b),
                Event::IsolateInbound(n) => firewall::isolate_inbound(&plan, *n),
                Event::IsolateOutbound(n) => firewall::isolate_outbound(&plan, *n),
                Event::HealAll => node_hosts
                    .iter()
                    .map(|h| (h.name.clone(), firewall::heal()))
                    .collect(),
                _ => Vec::new(),
            };
            let mut by_host: BTreeMap<String, (&Host, Vec<String>)> = BTreeMap::new();
            for (name, rule) in rules {
                if let Some(host) = node_hosts.iter().find(|h| h.name == name) {
                    by_host
                        .entry(name)
                        .or_insert((host, Vec::new()))
                        .1
                        .push(rule);
                }
            }
            let scripts = by_host
                .into_values()
                .map(|(h, rules)| (h, vec![firewall::as_root(&rules.join(" && "))]));
            on_hosts(&ssh, scripts)?;
            match event.clone() {
                _ if event.is_network() => {}
                Event::Crash(i) if !crashed.contains(&i) && live.contains(&i) => {
                    let run = format!("{}/{run_dir}", plan.nodes[i].home());
                    ssh.check(plan.nodes[i], &format!("cd {run} && kill -KILL -- -$(cat node-{i}.pid) 2>/dev/null; rm -f node-{i}.pid; true"))?;
                    crashed.push(i);
                    ever_crashed.push(i);
                }
                Event::Restart(i) if crashed.contains(&i) => {
                    let left = (run_for as f64 - elapsed).max(1.0) as u64;
                    ssh.check(plan.nodes[i], &node_command(i, left)?)?;
                    crashed.retain(|c| *c != i);
                }
                _ => continue,
            }
            let done = started.elapsed().as_secs_f64();
            println!("  {elapsed:.1} s: {event:?} (applied by {done:.1} s)");
            applied.push(json!({
                "scheduled_s": at,
                "at_s": (elapsed * 100.0).round() / 100.0,
                "applied_s": (done * 100.0).round() / 100.0,
                "event": format!("{event:?}"),
            }));
        }
        let due_poll = last_poll.is_none_or(|t| t.elapsed() >= Duration::from_secs(1));
        if !due_poll {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        last_poll = Some(Instant::now());
        let mut running = 0;
        let polls: Vec<(&Host, Result<String>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = used
                .iter()
                .map(|host| {
                    let run = format!("{}/{run_dir}", host.home());
                    let ssh = &ssh;
                    (
                        *host,
                        scope.spawn(move || ssh.check(host, &poll_script(&run))),
                    )
                })
                .collect();
            handles
                .into_iter()
                .map(|(h, t)| {
                    (
                        h,
                        t.join()
                            .unwrap_or_else(|_| Err(anyhow::anyhow!("poll thread panicked"))),
                    )
                })
                .collect()
        });
        for (host, status) in polls {
            let run = format!("{}/{run_dir}", host.home());
            let status = match status {
                Ok(s) => {
                    unreachable.remove(&host.name);
                    s
                }
                Err(e) => {
                    // A transient ssh failure: tolerated a few times in a row.
                    let n = unreachable.entry(host.name.clone()).or_default();
                    *n += 1;
                    if *n >= 5 {
                        return Err(e.context(format!("{} unreachable during the run", host.name)));
                    }
                    running += 1;
                    continue;
                }
            };
            for line in status.lines() {
                let fields: Vec<&str> = line.split_whitespace().collect();
                match fields.as_slice() {
                    [_, "exit", "0"] => {}
                    [name, "exit", code] | [name, code @ "gone"] => {
                        let tail = ssh
                            .run(host, &format!("tail -n 8 {run}/{name}.log"))
                            .map(|r| r.stdout)
                            .unwrap_or_default();
                        if name.starts_with("client") {
                            if !failed_clients.contains(&name.to_string()) {
                                println!(
                                    "  warning: {name} on {} stopped early ({code}): {}",
                                    host.name,
                                    tail.trim().replace('\n', " | ")
                                );
                                failed_clients.push(name.to_string());
                            }
                        } else {
                            anyhow::bail!(
                                "{name} on {} {}:\n{tail}",
                                host.name,
                                if *code == "gone" {
                                    "died without an exit status (killed by a signal?)".to_string()
                                } else {
                                    format!("failed with exit status {code}")
                                }
                            );
                        }
                    }
                    // Running, or a line we cannot read: not over yet.
                    _ => running += 1,
                }
            }
        }
        if running == 0 && pending.is_empty() {
            break;
        }
        let elapsed = started.elapsed().as_secs();
        if elapsed >= last_report + 5 {
            last_report = elapsed;
            println!("  ... {elapsed} s of about {run_for} s");
        }
        if elapsed > run_for + 60 {
            anyhow::bail!("the run did not end in time");
        }
    }
    cleanup.armed = false;

    // Collect. A file that cannot be had is an error in the record (and fails the run
    // after the record is written), not a reason to lose the rest.
    let mut errors: Vec<String> = Vec::new();
    let results = args.results.join(format!("{run_id}-{protocol}-n{nodes}"));
    for host in &used {
        let run = format!("{}/{run_dir}", host.home());
        let into = results.join(&host.name);
        for pattern in ["*.json", "*.txt", "*.log"] {
            if let Err(e) = ssh.download(host, &format!("{run}/{pattern}"), &into) {
                errors.push(format!("{e:#}"));
            }
        }
        if !args.keep_stores {
            if let Err(e) = ssh.check(host, &format!("rm -rf {run}/db-*")) {
                errors.push(format!("{e:#}"));
            }
        }
    }
    let node_dir = |i: usize| results.join(&plan.nodes[i].name);
    // Nodes down at the end wrote no summary; nodes that crashed and restarted count
    // blocks but not figures (a restarted node re-delivers what it had delivered).
    let mut summaries = Vec::new();
    let mut steady = Vec::new();
    for &i in honest_live.iter().filter(|i| !crashed.contains(i)) {
        let path = node_dir(i).join(format!("summary-{i}.json"));
        let summary = std::fs::read(&path)
            .with_context(|| format!("node {i} wrote no summary"))
            .and_then(|text| {
                serde_json::from_slice::<NodeSummary>(&text)
                    .with_context(|| format!("bad summary from node {i}"))
            });
        match summary {
            Ok(s) if ever_crashed.contains(&i) => summaries.push(s),
            Ok(s) => {
                steady.push(summaries.len());
                summaries.push(s)
            }
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    let client_files: Vec<PathBuf> = clients
        .iter()
        .map(|(id, h)| results.join(&h.name).join(format!("client-{id}.json")))
        .collect();
    let input = read_clients(&client_files);
    let window = Window {
        clients_start_ms: clients_start,
        warmup_s: args.warmup,
        duration_s: args.duration,
    };
    let steady_summaries: Vec<&NodeSummary> =
        steady.iter().filter_map(|k| summaries.get(*k)).collect();
    let figures = window.figures(&steady_summaries, args.tx_size);

    // Safety over the honest nodes' committed sequences.
    let mut sequences = Vec::new();
    for i in (0..nodes).filter(|i| !byzantine.contains_key(i)) {
        let path = node_dir(i).join(format!("history-{i}.txt"));
        if path.exists() {
            match Sequence::load(&path) {
                Ok(s) => sequences.push((i, s)),
                Err(e) => errors.push(format!("{e:#}")),
            }
        }
    }
    let violations = disagreements(&sequences);
    let heads: BTreeMap<String, serde_json::Value> = sequences
        .iter()
        .map(|(i, s)| (i.to_string(), json!(s.head())))
        .collect();
    let expect_violation = scenario.as_ref().is_some_and(|s| s.expect_violation);

    let record = json!({
        "kind": "bftlab-remote",
        "config": {
            "protocol": protocol, "variant": variant, "nodes": nodes,
            "faults": args.faults, "workers": args.workers, "input_rate_tx_s": args.rate,
            "tx_size": args.tx_size, "warmup_s": args.warmup, "duration_s": args.duration,
            "sample_every": 100, "parameters": parameters, "wan": wan_record,
            "scenario": scenario.as_ref().map(|s| &s.name),
            "byzantine": byzantine.iter().map(|(n, b)| (n.to_string(), b.clone())).collect::<BTreeMap<_, _>>(),
            "placement": plan.nodes.iter().map(|h| h.name.clone()).collect::<Vec<_>>(),
        },
        "consensus": figures["consensus"], "end_to_end": figures["end_to_end"],
        "figures_from_nodes": steady.iter().filter_map(|k| summaries.get(*k)).map(|s| s.id).collect::<Vec<_>>(),
        "blocks_committed": summaries.iter().map(|s| (s.id.to_string(), s.blocks)).collect::<BTreeMap<_, _>>(),
        "crashed_at_end": crashed,
        "safety": { "nodes_checked": sequences.iter().map(|(i, _)| *i).collect::<Vec<_>>(), "violations": violations, "heads": heads, "expect_violation": expect_violation },
        "timeline_applied": applied,
        "clients_stopped_early": failed_clients,
        "clients": { "sent": input.sent, "accepted": input.accepted, "refused": input.refused, "held_back": input.skipped },
        "node_counters": summaries.iter().map(|s| s.counters.clone()).collect::<Vec<_>>(),
        "hosts": host_facts,
        "monitor": monitor,
        "inventory": inventory,
        "binary": { "blake3": hash, "path": binary },
        "git_commit": git_commit(),
        "collected": results,
        "errors": errors,
        "start_unix_ms": clients_start,
        "nodes_started_unix_ms": started_unix_ms,
    });
    print_summary(&record, &window, &input, failed_clients.len());
    std::fs::create_dir_all(&results)
        .with_context(|| format!("cannot create {}", results.display()))?;
    let file = args.results.join(format!(
        "{run_id}-{protocol}-n{nodes}-f{}-r{}{}.json",
        args.faults,
        args.rate,
        args.scenario
            .as_deref()
            .and_then(Path::file_stem)
            .map(|s| format!("-{}", s.to_string_lossy()))
            .unwrap_or_default()
    ));
    std::fs::write(&file, serde_json::to_string_pretty(&record)?)
        .with_context(|| format!("cannot write {}", file.display()))?;
    println!(" Result record: {}", file.display());
    println!(
        " Collected logs, summaries and committed sequences: {}",
        results.display()
    );
    let violations = record["safety"]["violations"]
        .as_array()
        .map_or(0, |v| v.len());
    if violations > 0 {
        if !expect_violation {
            anyhow::bail!("SAFETY VIOLATED: {}", record["safety"]["violations"]);
        }
        println!(
            " Safety: violated, as the scenario expects: {}",
            record["safety"]["violations"]
        );
    } else {
        println!(
            " Safety: the committed sequences of {} honest nodes agree",
            sequences.len()
        );
    }
    if !errors.is_empty() {
        anyhow::bail!("the run's record is incomplete:\n  {}", errors.join("\n  "));
    }
    Ok(())
}

/// Run each host's scripts (joined, in one ssh call per host), all hosts at once; the
/// first failure is the error.
fn on_hosts<'h>(ssh: &Ssh, work: impl IntoIterator<Item = (&'h Host, Vec<String>)>) -> Result<()> {
    let work: Vec<(&Host, String)> = work
        .into_iter()
        .filter(|(_, scripts)| !scripts.is_empty())
        .map(|(h, scripts)| (h, scripts.join("\n")))
        .collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = work
            .iter()
            .map(|(host, script)| scope.spawn(move || ssh.check(host, script)))
            .collect();
        for h in handles {
            h.join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("an ssh thread panicked")))?;
        }
        Ok(())
    })
}

/// The state of every process of a run directory, one line each: `NAME running`,
/// `NAME exit CODE` (its pid file is then removed: the process is no longer ours to
/// kill) or `NAME gone` (no exit status, not running: killed by something else).
fn poll_script(run: &str) -> String {
    format!(
        "cd {run} || exit 1; for f in *.pid; do [ -f \"$f\" ] || continue; n=${{f%.pid}}; \
         if [ -f $n.exit ]; then echo \"$n exit $(cat $n.exit)\"; rm -f \"$f\"; \
         elif kill -0 $(cat \"$f\") 2>/dev/null; then echo \"$n running\"; \
         elif [ -f $n.exit ]; then echo \"$n exit $(cat $n.exit)\"; rm -f \"$f\"; \
         else echo \"$n gone\"; fi; done"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVENTORY: &str = r#"
[[host]]
name = "a"
ssh = "root@10.0.0.1"
public = "10.0.0.1"
private = "10.0.0.1"
roles = ["node", "client"]
workdir = "/w"
[[host]]
name = "b"
ssh = "root@10.0.0.2"
public = "10.0.0.2"
private = "10.0.0.2"
roles = ["node"]
workdir = "/w"
[[host]]
name = "c"
ssh = "root@10.0.0.3"
public = "10.0.0.3"
private = "10.0.0.3"
roles = ["client"]
workdir = "/w"
"#;

    #[test]
    fn nodes_spread_round_robin_and_clients_sit_beside_them_when_they_can() {
        let inventory = Inventory::parse(INVENTORY).unwrap();
        let plan = place(&inventory, 4, 1, 7000).unwrap();
        let names: Vec<&str> = plan.nodes.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "a", "b"]);
        assert_eq!(plan.ports_on("a"), vec![7000, 7001, 7002, 7006, 7007, 7008]);
        assert_eq!(plan.client_host(0, 0).unwrap().name, "a");
        assert_eq!(plan.client_host(1, 0).unwrap().name, "c");
        assert!(place(&inventory, 0, 1, 7000).is_err());
        assert!(place(&inventory, 30_000, 1, 7000).is_err());
    }

    #[test]
    fn a_timeline_takes_crashes_and_restarts_and_refuses_what_it_cannot_apply() {
        let base = "name = \"t\"\nnodes = 4\nduration_s = 30\nsubmit_until_s = 20\n";
        let s = Scenario::from_toml(
            "t",
            &format!("{base}[[faults]]\nat_s = 9\nfault = \"restart\"\nnode = 3\n[[faults]]\nat_s = 4\nfault = \"crash\"\nnode = 3\n"),
        )
        .unwrap();
        assert_eq!(
            timeline(&s).unwrap(),
            vec![(4.0, Event::Crash(3)), (9.0, Event::Restart(3))]
        );
        let s = Scenario::from_toml(
            "t",
            &format!("{base}[[faults]]\nat_s = 4\nfault = \"partition\"\na = [0]\nb = [1]\n[[faults]]\nat_s = 6\nfault = \"heal-all\"\n"),
        )
        .unwrap();
        assert_eq!(
            timeline(&s).unwrap(),
            vec![
                (4.0, Event::Partition(vec![0], vec![1])),
                (6.0, Event::HealAll)
            ]
        );
        let s = Scenario::from_toml(
            "t",
            &format!("{base}[[faults]]\nat_s = 4\nfault = \"slow\"\na = [0]\nb = [1]\nlatency_ms = 300\n"),
        )
        .unwrap();
        assert!(format!("{:#}", timeline(&s).unwrap_err()).contains("not applied"));
    }

    #[test]
    fn detached_commands_leave_pid_log_and_exit_status() {
        let c = detached("/w/bftlab/run-1", "node-2", "/w/bftlab/bin/b node --x y");
        assert!(c.starts_with("cd /w/bftlab/run-1 || exit 1;"));
        assert!(c.contains("setsid nohup sh -c 'echo $$ > node-2.pid; /w/bftlab/bin/b node --x y; echo $? > node-2.exit.tmp && mv node-2.exit.tmp node-2.exit'"));
        assert!(c.ends_with(">> node-2.log 2>&1 < /dev/null &"));
        assert!(all_safe(&["a;b".to_string()]).is_err());
    }
}
