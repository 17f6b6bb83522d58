//! Playing a scenario on real Nodes inside turmoil.

use crate::scenario::{FaultKind, Scenario};
use bytes::Bytes;
use consensus::hotstuff::{CommitRule, Config};
use consensus::{Node, NodeConfig, Protocol};
use mempool::MemoryStore;
use network::clients::TransactionClient;
use network::Environment;
use primitives::{Committee, Digest, NodeId, Parameters};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What one node committed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeLog {
    /// Committed certificates, in order.
    pub sequence: Vec<Digest>,
    /// Committed transactions, in order.
    pub transactions: Vec<Bytes>,
    /// (simulated time, transactions committed so far) after each delivery.
    pub progress: Vec<(Duration, usize)>,
    /// Last sampled (every simulated second): blocks committed by the core,
    /// certificates delivered by the linearizer, the mempool's round.
    pub counters: (u64, u64, u64),
    /// The mempool's counters, last sampled.
    pub mempool: Option<mempool::MetricsSnapshot>,
}

/// The outcome of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// The scenario's name.
    pub scenario: String,
    /// The seed.
    pub seed: u64,
    /// Per node.
    pub logs: Vec<NodeLog>,
    /// Every transaction clients submitted.
    pub submitted: BTreeSet<Bytes>,
    /// Nodes down at the end of the run.
    pub down: Vec<usize>,
    /// Simulated duration.
    pub duration: Duration,
}

fn host(i: usize) -> String {
    format!("node{i}")
}

/// A run that could not be carried out (not a property violation: a broken setup).
#[derive(Debug, thiserror::Error)]
#[error("scenario {scenario}, seed {seed}: {reason}")]
pub struct RunError {
    /// The scenario's name.
    pub scenario: String,
    /// The seed.
    pub seed: u64,
    /// What went wrong.
    pub reason: String,
}

/// Run `scenario` with `seed`.
pub fn run(scenario: &Scenario, seed: u64) -> Result<Report, RunError> {
    let fail = |reason: String| RunError {
        scenario: scenario.name.clone(),
        seed,
        reason,
    };
    let n = scenario.nodes;
    let hosts: Vec<String> = (0..n).map(host).collect();
    let committee = match Committee::generate(n, 1, &hosts, 6000, Some(seed)) {
        Ok((c, keys)) => (Arc::new(c), keys),
        Err(e) => return Err(fail(format!("cannot generate a committee: {e}"))),
    };
    let (committee, keys) = committee;
    let mut parameters = Parameters::default();
    parameters.mempool.batch_size = 20_000;
    parameters.mempool.max_batch_delay_ms = 50;
    parameters.mempool.sync_retry_delay_ms = 1_000;
    let rule = if scenario.commit_rule == "two-chain" {
        CommitRule::TwoChain
    } else {
        CommitRule::ThreeChain
    };
    let protocol = Protocol::HotStuff(Config::from_parameters(&parameters.consensus, rule));
    let logs: Vec<Arc<Mutex<NodeLog>>> = (0..n)
        .map(|_| Arc::new(Mutex::new(NodeLog::default())))
        .collect();
    let submitted = Arc::new(Mutex::new(BTreeSet::new()));
    let duration = Duration::from_secs(scenario.duration_s);
    let mut sim = turmoil::Builder::new()
        .simulation_duration(duration + Duration::from_secs(1))
        .min_message_latency(Duration::from_millis(scenario.latency_ms.0))
        .max_message_latency(Duration::from_millis(scenario.latency_ms.1))
        .udp_capacity(65_536)
        .rng_seed(seed)
        .build();
    for i in 0..n {
        let committee = committee.clone();
        let keys = keys[i].clone();
        let parameters = parameters.clone();
        let protocol = protocol.clone();
        let log = logs[i].clone();
        let store = MemoryStore::new();
        sim.host(host(i), move || {
            let (committee, keys, parameters, protocol, log, store) = (
                committee.clone(),
                keys.clone(),
                parameters.clone(),
                protocol.clone(),
                log.clone(),
                store.clone(),
            );
            async move {
                let id = NodeId(i as u16);
                let port = committee
                    .member(id)
                    .and_then(|m| primitives::committee::port_of(&m.primary))
                    .ok_or("bad address")?;
                let (node, mut delivered) = Node::start(NodeConfig {
                    id,
                    committee,
                    keys,
                    parameters,
                    protocol,
                    store: Arc::new(store),
                    environment: Environment::Turmoil,
                    bind: format!("0.0.0.0:{port}").parse()?,
                    seed,
                    seeded_transport: true,
                })
                .await?;
                let sampler = {
                    let log = log.clone();
                    let driver = node.driver_metrics.clone();
                    let mempool = node.mempool.metrics().clone();
                    tokio::spawn(async move {
                        loop {
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            use std::sync::atomic::Ordering::Relaxed;
                            if let Ok(mut log) = log.lock() {
                                log.mempool = Some(mempool.snapshot());
                                log.counters = (
                                    driver.blocks_committed.load(Relaxed),
                                    driver.certificates_committed.load(Relaxed),
                                    mempool.round.load(Relaxed),
                                );
                            }
                        }
                    })
                };
                while let Some(d) = delivered.recv().await {
                    let now = turmoil::sim_elapsed().unwrap_or_default();
                    let mut log = log.lock().map_err(|_| "poisoned")?;
                    log.sequence.push(d.certificate);
                    log.transactions.extend(d.transactions);
                    let total = log.transactions.len();
                    log.progress.push((now, total));
                }
                sampler.abort();
                drop(node);
                Ok(())
            }
        });
    }
    let down_from_start: Vec<usize> = Vec::new();
    for c in (0..n).filter(|c| !down_from_start.contains(c)) {
        let Some(member) = committee.member(NodeId(c as u16)).cloned() else {
            continue;
        };
        let submitted = submitted.clone();
        let (rate, size, until) = (
            scenario.rate,
            scenario.tx_size,
            Duration::from_secs(scenario.submit_until_s),
        );
        let mut rng_seed = [0u8; 32];
        rng_seed[..8].copy_from_slice(&seed.to_le_bytes());
        rng_seed[8] = c as u8;
        rng_seed[9] = 0xcc;
        sim.client(format!("client{c}"), async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let Ok(mut client) = TransactionClient::connect(
                Environment::Turmoil,
                &member.workers[0].transactions,
                member.public_key,
                1 << 20,
                Some(rng_seed),
            )
            .await
            else {
                return Ok(()); // the node is down: this client submits nothing
            };
            let per_tick = (rate / 100).max(1);
            let mut seq = 0u64;
            while turmoil::sim_elapsed().unwrap_or_default() < until {
                for _ in 0..per_tick {
                    let mut tx = vec![0u8; size];
                    tx[..8].copy_from_slice(&(c as u64).to_be_bytes());
                    tx[8..16].copy_from_slice(&seq.to_be_bytes());
                    seq += 1;
                    let tx = Bytes::from(tx);
                    if client.submit(tx.clone()).await.is_err() {
                        return Ok(()); // its node crashed: stop, what was accepted counts
                    }
                    submitted.lock().map_err(|_| "poisoned")?.insert(tx);
                }
                if client.flush().await.is_err() {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let _ = client.finish().await;
            Ok(())
        });
    }
    let mut faults = scenario.faults.clone();
    faults.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
    let mut next = 0;
    while sim.elapsed() < duration {
        while next < faults.len() && sim.elapsed().as_secs_f64() >= faults[next].at_s {
            match &faults[next].kind {
                FaultKind::Partition { a, b } => {
                    for x in a {
                        for y in b {
                            sim.partition(host(*x), host(*y));
                        }
                    }
                }
                FaultKind::HealAll => {
                    for x in 0..n {
                        for y in 0..n {
                            if x != y {
                                sim.repair(host(x), host(y));
                            }
                        }
                    }
                }
                FaultKind::Crash { node } => sim.crash(host(*node)),
                FaultKind::Restart { node } => sim.bounce(host(*node)),
            }
            next += 1;
        }
        if let Err(e) = sim.step() {
            return Err(fail(format!("simulation failed: {e}")));
        }
    }
    Ok(Report {
        scenario: scenario.name.clone(),
        seed,
        logs: logs
            .iter()
            .map(|l| l.lock().map(|l| l.clone()).unwrap_or_default())
            .collect(),
        submitted: submitted.lock().map(|s| s.clone()).unwrap_or_default(),
        down: scenario.down_at_end(),
        duration,
    })
}
