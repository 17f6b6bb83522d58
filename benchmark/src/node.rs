//! `bftlab node`: one node from committee, key and parameter files, on an on-disk store.

use crate::tx;
use anyhow::{Context, Result};
use clap::Args;
use consensus::{Node, NodeConfig};
use mempool::DiskStore;
use network::Environment;
use primitives::crypto::KeyPair;
use primitives::{Committee, Parameters};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Arguments of `bftlab node`.
#[derive(Args, Debug)]
pub struct NodeArgs {
    /// Committee file.
    #[arg(long)]
    pub committee: PathBuf,
    /// This node's key file.
    #[arg(long)]
    pub key: PathBuf,
    /// Parameters file (defaults if absent).
    #[arg(long)]
    pub parameters: Option<PathBuf>,
    /// Directory of the on-disk store (created if missing; a restart resumes from it).
    #[arg(long)]
    pub store: PathBuf,
    /// Consensus protocol, with `--param KEY=VALUE` overriding the parameters file's
    /// `[consensus.<protocol>]` entries.
    #[command(flatten)]
    pub protocol: crate::protocols::ProtocolArgs,
    /// Stop after this many seconds (benchmarks); otherwise run until Ctrl-C.
    #[arg(long)]
    pub run_for: Option<u64>,
    /// Where to write the measurement summary (JSON) when the node stops.
    #[arg(long)]
    pub summary: Option<PathBuf>,
    /// Append the committed sequence to this file (one line per position: position,
    /// certificate and chain hash; see `bftlab remote`), across restarts.
    #[arg(long)]
    pub history: Option<PathBuf>,
    /// Run as a Byzantine member: behaviours as named in scenarios' `[[byzantine]]`
    /// entries, comma-separated (`equivocate,double-vote`; `silent` runs no node).
    #[arg(long, value_delimiter = ',')]
    pub byzantine: Vec<String>,
    /// The other Byzantine members it colludes with (ids, comma-separated): they get
    /// both sides of its equivocations.
    #[arg(long, value_delimiter = ',', requires = "byzantine")]
    pub colluders: Vec<usize>,
    /// Serve Prometheus metrics at `http://ADDR/metrics` (e.g. `0.0.0.0:9100`).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// WAN emulation in the application.
    #[command(flatten)]
    pub wan: crate::wan::WanArgs,
}

/// What a node measured, written at shutdown for `bftlab local` to aggregate.
#[derive(Serialize, Deserialize, Debug, Default)]
pub struct NodeSummary {
    /// The node's id.
    pub id: u16,
    /// Per 100 ms bucket (Unix ms at its start): committed transactions and bytes.
    pub commits: Vec<(u64, u64, u64)>,
    /// End-to-end latency samples: (commit time Unix ms, client send to commit µs).
    pub e2e_us: Vec<(u64, u64)>,
    /// Consensus latency samples for the node's own certificates: (commit time Unix
    /// ms, certificate reaching consensus to commit µs).
    pub consensus_us: Vec<(u64, u64)>,
    /// Blocks committed by the core.
    pub blocks: u64,
    /// The node's component counters at shutdown (network, mempool, client endpoints),
    /// so that a run past capacity shows where work was refused or dropped.
    #[serde(default)]
    pub counters: serde_json::Value,
}

/// Run `bftlab node`.
pub fn run(args: NodeArgs) -> Result<()> {
    let committee = Arc::new(Committee::load(&args.committee)?);
    let (id, keys): (_, KeyPair) = KeyPair::load(&args.key)?;
    let mut parameters = match &args.parameters {
        Some(p) => Parameters::load(p)?,
        None => Parameters::default(),
    };
    args.protocol.apply(&mut parameters)?;
    let protocol = args.protocol.protocol.clone();
    let member = committee
        .member(id)
        .with_context(|| format!("node {id} is not in {}", args.committee.display()))?;
    if member.public_key != keys.public_key() {
        anyhow::bail!(
            "the key in {} does not match node {id} in the committee",
            args.key.display()
        );
    }
    let port = primitives::committee::port_of(&member.primary)
        .with_context(|| format!("bad primary address {:?}", member.primary))?;
    let bind: SocketAddr = ([0, 0, 0, 0], port).into();
    std::fs::create_dir_all(&args.store)
        .with_context(|| format!("cannot create {}", args.store.display()))?;
    let store = Arc::new(DiskStore::open(&args.store.join("store.redb"))?);
    let emulation = args.wan.install(&committee, id)?;
    let misbehaviours =
        harness::byzantine::parse_behaviours(&args.byzantine).map_err(anyhow::Error::msg)?;
    let adversary = harness::byzantine::adversary(
        &misbehaviours,
        id.0 as usize,
        &args.colluders,
        &consensus::byzantine::ForkBook::default(),
    );
    let silent = misbehaviours.contains(&harness::Misbehaviour::Silent);
    let mut history = args
        .history
        .as_deref()
        .map(crate::sequence::SequenceWriter::open)
        .transpose()?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let deadline = args.run_for.map(|s| Instant::now() + Duration::from_secs(s));
        if silent {
            // A silent member never sends anything: it runs no node at all.
            tracing::warn!(node = %id, "Byzantine and silent: not starting");
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
            return anyhow::Ok(());
        }
        let (node, mut delivered) = Node::start(NodeConfig {
            id,
            committee,
            keys,
            parameters,
            protocol,
            store,
            environment: Environment::Udp,
            bind,
            seed: tx::now_micros(),
            seeded_transport: false,
            adversary,
            clock: primitives::clock::NodeClock::real(),
            twins: Default::default(),
        })
        .await
        .with_context(|| format!("node {id} cannot start (is port {port} in use?)"))?;
        let floods = harness::byzantine::spawn_floods(&node, &misbehaviours, tx::now_micros());
        let observed = match args.metrics {
            None => None,
            Some(address) => {
                let (registry, observed) = crate::metrics::registry(
                    id.0,
                    crate::metrics::Sources {
                        network: node.network_metrics().clone(),
                        mempool: node.mempool.metrics().clone(),
                        clients: node.mempool.client_metrics().to_vec(),
                        driver: node.driver_metrics.clone(),
                        emulation: emulation.clone(),
                    },
                );
                let listener = tokio::net::TcpListener::bind(address)
                    .await
                    .with_context(|| format!("cannot serve metrics at {address}"))?;
                tokio::spawn(crate::metrics::serve(listener, Arc::new(registry)));
                Some(observed)
            }
        };
        let mut summary = NodeSummary {
            id: id.0,
            ..NodeSummary::default()
        };
        let stop = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        };
        tokio::pin!(stop);
        let mut bucket = (0u64, 0u64, 0u64);
        loop {
            tokio::select! {
                biased;
                _ = &mut stop => break,
                d = delivered.recv() => {
                    let Some(d) = d else { break };
                    if let Some(h) = history.as_mut() {
                        h.record(&d)?;
                    }
                    let now_us = tx::now_micros();
                    let now_ms = now_us / 1000;
                    let slot = now_ms - now_ms % 100;
                    if slot != bucket.0 {
                        if bucket.1 > 0 {
                            summary.commits.push(bucket);
                        }
                        bucket = (slot, 0, 0);
                    }
                    let bytes_before = bucket.2;
                    for t in &d.transactions {
                        bucket.1 += 1;
                        bucket.2 += t.len() as u64;
                        if let Some(sent) = tx::sample_time(t) {
                            let latency = now_us.saturating_sub(sent);
                            summary.e2e_us.push((now_ms, latency));
                            if let Some(o) = &observed {
                                o.e2e_latency.observe(latency as f64 / 1e6);
                            }
                        }
                    }
                    if let Some(o) = &observed {
                        o.committed_transactions.inc_by(d.transactions.len() as u64);
                        o.committed_bytes.inc_by(bucket.2 - bytes_before);
                    }
                    if d.author == id {
                        let arrived = node.driver_metrics.own_certificates.lock().ok().and_then(|mut m| m.remove(&d.certificate));
                        if let Some(at) = arrived {
                            summary.consensus_us.push((now_ms, at.elapsed().as_micros() as u64));
                            if let Some(o) = &observed {
                                o.consensus_latency.observe(at.elapsed().as_secs_f64());
                            }
                        }
                    }
                }
            }
        }
        if bucket.1 > 0 {
            summary.commits.push(bucket);
        }
        summary.blocks = node.driver_metrics.blocks_committed.load(std::sync::atomic::Ordering::Relaxed);
        let clients: Vec<_> = node.mempool.client_metrics().iter().map(|m| m.snapshot()).collect();
        summary.counters = serde_json::json!({
            "network": node.network_metrics().snapshot(),
            "mempool": node.mempool.metrics().snapshot(),
            "clients": clients,
            "wan_emulation": emulation.as_ref().map(|e| serde_json::json!({
                "delayed": e.counters.delayed.load(std::sync::atomic::Ordering::Relaxed),
                "lost": e.counters.lost.load(std::sync::atomic::Ordering::Relaxed),
                "queue_full": e.counters.queue_full.load(std::sync::atomic::Ordering::Relaxed),
            })),
            "seal_to_certificate_ms": node.mempool.metrics().batch_latency.take().map(|h| serde_json::json!({
                "p50": h.value_at_quantile(0.5) as f64 / 1000.0,
                "p99": h.value_at_quantile(0.99) as f64 / 1000.0,
                "samples": h.len(),
            })),
        });
        if let Some(path) = &args.summary {
            std::fs::write(path, serde_json::to_vec(&summary)?).with_context(|| format!("cannot write {}", path.display()))?;
        }
        for f in floods {
            f.abort();
        }
        drop(node);
        anyhow::Ok(())
    })
}
