//! `bftlab keys`: a committee, per-node key files and default parameters.

use anyhow::{Context, Result};
use clap::Args;
use primitives::{Committee, NodeId, Parameters};
use std::path::{Path, PathBuf};

/// Arguments of `bftlab keys`.
#[derive(Args, Debug)]
pub struct KeysArgs {
    /// Committee size.
    #[arg(long, default_value_t = 4)]
    pub nodes: usize,
    /// Workers per node.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Output directory (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Hosts, comma-separated, assigned round-robin.
    #[arg(long, default_value = "127.0.0.1", value_delimiter = ',')]
    pub hosts: Vec<String>,
    /// First port; each node uses 1 + 2 x workers consecutive ports.
    #[arg(long, default_value_t = 7000)]
    pub base_port: u16,
}

/// Write `committee.toml`, `key-<i>.toml` and `parameters.toml` into `out`.
pub fn write(
    out: &Path,
    nodes: usize,
    workers: usize,
    hosts: &[String],
    base_port: u16,
    parameters: &Parameters,
) -> Result<Committee> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let (committee, keys) = Committee::generate(nodes, workers, hosts, base_port, None)?;
    committee.save(&out.join("committee.toml"))?;
    for (i, key) in keys.iter().enumerate() {
        key.save(NodeId(i as u16), &out.join(format!("key-{i}.toml")))?;
    }
    parameters.save(&out.join("parameters.toml"))?;
    Ok(committee)
}

/// Run `bftlab keys`.
pub fn run(args: KeysArgs) -> Result<()> {
    if args.nodes == 0 || args.workers == 0 {
        anyhow::bail!("--nodes and --workers must be at least 1");
    }
    write(
        &args.out,
        args.nodes,
        args.workers,
        &args.hosts,
        args.base_port,
        &Parameters::default(),
    )?;
    println!(
        "wrote committee.toml, key-0..{}.toml and parameters.toml to {}",
        args.nodes - 1,
        args.out.display()
    );
    Ok(())
}
