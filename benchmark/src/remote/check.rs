//! `bftlab remote check`: is every host ready for a run?

use super::inventory::{Host, Inventory};
use super::ssh::Ssh;
use super::InventoryArg;
use anyhow::Result;
use clap::Args;

/// Arguments of `bftlab remote check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    inventory: InventoryArg,
    /// Committee size the ports are checked for (default: one node per node host).
    #[arg(long)]
    nodes: Option<usize>,
    /// Workers per node.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// First port of the committee.
    #[arg(long, default_value_t = super::run::DEFAULT_BASE_PORT)]
    base_port: u16,
    /// A clock further than this from this machine's (beyond the measurement's
    /// uncertainty) fails the check.
    #[arg(long, default_value_t = super::run::DEFAULT_MAX_CLOCK_OFFSET_MS)]
    max_clock_offset_ms: f64,
}

/// Less free disk than this under a work directory fails the check.
const MIN_FREE_MB: u64 = 1024;

/// What one host reported.
#[derive(Debug, serde::Serialize)]
pub struct HostFacts {
    /// The host's name.
    pub name: String,
    /// `uname -sr`.
    pub kernel: String,
    /// `nproc`.
    pub cores: u64,
    /// Free disk under its work directory, MB.
    pub free_mb: u64,
    /// Its clock minus ours, ms.
    pub clock_offset_ms: f64,
    /// Half the round trip of the best sample, ms.
    pub clock_uncertainty_ms: f64,
    /// UDP ports of the committee that something already listens on.
    pub busy_ports: Vec<u16>,
}

/// Ask `host` for its facts; `ports` are the UDP ports the run will bind there.
pub fn facts(ssh: &Ssh, host: &Host, ports: &[u16]) -> Result<HostFacts> {
    let parent = host.workdir.trim_end_matches('/');
    let script = format!(
        "mkdir -p {parent} && uname -sr && nproc && df -Pk {parent} | tail -1 | awk '{{print $4}}' \
         && (ss -Hlun 2>/dev/null | awk '{{print $4}}' | sed 's/.*://' | sort -u | tr '\\n' ' '; echo)"
    );
    let out = ssh.check(host, &script)?;
    let mut lines = out.lines();
    let kernel = lines.next().unwrap_or_default().trim().to_string();
    let cores = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0);
    let free_mb = lines
        .next()
        .and_then(|l| l.trim().parse::<u64>().ok())
        .unwrap_or(0)
        / 1024;
    let listening: Vec<u16> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    let (clock_offset_ms, clock_uncertainty_ms) = ssh.clock_offset(host)?;
    Ok(HostFacts {
        name: host.name.clone(),
        kernel,
        cores,
        free_mb,
        clock_offset_ms,
        clock_uncertainty_ms,
        busy_ports: ports
            .iter()
            .copied()
            .filter(|p| listening.contains(p))
            .collect(),
    })
}

/// Whether a clock offset is certainly beyond `bound` ms.
pub fn clock_too_far(f: &HostFacts, bound: f64) -> bool {
    f.clock_offset_ms.abs() - f.clock_uncertainty_ms > bound
}

/// Run `bftlab remote check`.
pub fn run(args: CheckArgs) -> Result<()> {
    let inventory = Inventory::load(&args.inventory.inventory)?;
    let ssh = Ssh::new(&inventory)?;
    let nodes = args
        .nodes
        .unwrap_or_else(|| inventory.with(super::inventory::Role::Node).len());
    let plan = super::run::place(&inventory, nodes, args.workers, args.base_port)?;
    let mut problems = Vec::new();
    println!(
        "{:<12} {:<28} {:>5} {:>9} {:>16}  ports",
        "host", "kernel", "cores", "free MB", "clock offset ms"
    );
    for host in &inventory.host {
        let ports = plan.ports_on(&host.name);
        match facts(&ssh, host, &ports) {
            Err(e) => {
                println!("{:<12} unreachable: {e:#}", host.name);
                problems.push(format!("{} unreachable", host.name));
            }
            Ok(f) => {
                println!(
                    "{:<12} {:<28} {:>5} {:>9} {:>9.1} ± {:<4.1}  {}",
                    f.name,
                    f.kernel,
                    f.cores,
                    f.free_mb,
                    f.clock_offset_ms,
                    f.clock_uncertainty_ms,
                    if f.busy_ports.is_empty() {
                        format!("{} free", ports.len())
                    } else {
                        format!("busy: {:?}", f.busy_ports)
                    }
                );
                if clock_too_far(&f, args.max_clock_offset_ms) {
                    problems.push(format!(
                        "{}: clock {:.1} ms off (bound {} ms): synchronise it (chrony)",
                        f.name, f.clock_offset_ms, args.max_clock_offset_ms
                    ));
                }
                if !f.busy_ports.is_empty() {
                    problems.push(format!("{}: ports in use {:?}", f.name, f.busy_ports));
                }
                if f.free_mb < MIN_FREE_MB {
                    problems.push(format!("{}: only {} MB free", f.name, f.free_mb));
                }
            }
        }
    }
    if problems.is_empty() {
        println!("all {} hosts ready", inventory.host.len());
        Ok(())
    } else {
        anyhow::bail!("not ready:\n  {}", problems.join("\n  "))
    }
}
