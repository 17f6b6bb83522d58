//! Playing a scenario on real Nodes inside turmoil.

use crate::scenario::{FaultKind, Misbehaviour, Scenario};
use bytes::Bytes;
use consensus::byzantine::{Adversary, ForkBook};
use consensus::{Node, NodeConfig};
use mempool::MemoryStore;
use network::clients::TransactionClient;
use network::Environment;
use primitives::clock::NodeClock;
use primitives::{Committee, Digest, NodeId};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Counters of one node, sampled every 250 ms of simulated time (the last sample).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Blocks committed by the consensus core.
    pub blocks_committed: u64,
    /// Certificates delivered by the linearizer.
    pub certificates_committed: u64,
    /// The mempool's DAG round.
    pub dag_round: u64,
    /// The consensus core's own counters (its progress measure first, e.g. `view`).
    pub core: Vec<(&'static str, u64)>,
    /// Evidence of misbehaviour the core reported.
    pub evidence: u64,
    /// Messages this node sent to peers.
    pub messages_out: u64,
    /// Payload bytes of those messages.
    pub bytes_out: u64,
    /// Peer consensus messages the driver refused (bad signature, not decodable).
    pub consensus_rejected: u64,
}

/// A simulated client's task (they all run on one simulated host).
type ClientTask = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), &'static str>>>>;

/// What one node committed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeLog {
    /// Committed certificates, in order (a restarted node continues its sequence);
    /// positions skipped by a checkpoint hold [`SKIPPED`].
    pub sequence: Vec<Digest>,
    /// The chain hash after each position (for a gap's positions: unknown, [`SKIPPED`],
    /// but the last, which holds the checkpoint's chain hash).
    pub chains: Vec<Digest>,
    /// Per position, the index in `transactions` of its first transaction.
    pub first_tx: Vec<usize>,
    /// Gaps delivered: positions `from..to` skipped by a checkpoint whose chain hash
    /// (before `to`) is the third field.
    pub skips: Vec<(u64, u64, Digest)>,
    /// Per position: the certificate's DAG round and author, and the simulated time
    /// it was delivered (for a gap's positions: round 0, author 0, the gap's time).
    pub positions: Vec<(u64, u16, Duration)>,
    /// Committed transactions, in order.
    pub transactions: Vec<Bytes>,
    /// (simulated time, transactions committed so far) after each delivery.
    pub progress: Vec<(Duration, usize)>,
    /// Counters, last sampled (carried over restarts).
    pub counters: Counters,
    /// The mempool's counters, last sampled.
    pub mempool: Option<mempool::MetricsSnapshot>,
    /// Positions delivered again (after a restart) with a different certificate.
    pub redelivery_conflicts: u64,
    /// Deliveries that skipped positions (the sequence has a hole).
    pub gaps: u64,
    /// The consensus block (protocol's own id and height) behind the last delivery.
    pub last_block: Option<(Digest, u64)>,
    /// Distinct consensus blocks whose commits delivered something.
    pub blocks_delivering: u64,
    /// The block behind each height (the protocol's view, height or round) that
    /// delivered something: two honest nodes must agree on it, even where one of them
    /// installed the sequence from peers instead of committing it itself.
    pub blocks: BTreeMap<u64, Digest>,
    /// Deliveries from a block other than the one an earlier delivery of the same
    /// height came from (two blocks committed at one height on one node).
    pub block_conflicts: u64,
    /// The highest value sampled (every 250 ms, over restarts) of each of the node's
    /// core counters (the sizes of its state among them), of the transport's queued
    /// bytes (out: `queued_bytes`, in: `inbound_queued_bytes`) and of the mempool's
    /// maps peers can grow (requested, suspended, pending): what a flood made it hold.
    pub peaks: BTreeMap<&'static str, u64>,
}

/// The placeholder of a skipped position in [`NodeLog::sequence`] and [`NodeLog::chains`].
pub const SKIPPED: Digest = Digest([0; 32]);

/// The outcome of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// The scenario's name.
    pub scenario: String,
    /// The seed.
    pub seed: u64,
    /// Per node.
    pub logs: Vec<NodeLog>,
    /// Every transaction clients submitted, with the simulated time it was sent.
    pub submitted: BTreeMap<Bytes, Duration>,
    /// Nodes down at the end of the run.
    pub down: Vec<usize>,
    /// Byzantine nodes (held to nothing).
    pub byzantine: Vec<usize>,
    /// Simulated duration.
    pub duration: Duration,
    /// What the scenario's packet faults did (all zero without them).
    pub packet_faults: network::packet_faults::PacketFaultCounts,
}

impl Report {
    /// A digest of every node's committed sequence and transactions: two runs with
    /// equal fingerprints committed exactly the same things.
    pub fn fingerprint(&self) -> primitives::Digest {
        let mut bytes = Vec::new();
        for log in &self.logs {
            bytes.extend_from_slice(&(log.sequence.len() as u64).to_le_bytes());
            for d in &log.sequence {
                bytes.extend_from_slice(d.as_bytes());
            }
            for t in &log.transactions {
                bytes.extend_from_slice(&(t.len() as u64).to_le_bytes());
                bytes.extend_from_slice(t);
            }
            for (at, n) in &log.progress {
                bytes.extend_from_slice(&(at.as_nanos() as u64).to_le_bytes());
                bytes.extend_from_slice(&(*n as u64).to_le_bytes());
            }
        }
        primitives::Digest::of(&bytes)
    }

    /// Nodes held to every property: neither Byzantine nor down at the end.
    pub fn honest_up(&self) -> Vec<usize> {
        (0..self.logs.len())
            .filter(|i| !self.down.contains(i) && !self.byzantine.contains(i))
            .collect()
    }
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

/// The committee of a scenario: generated from the seed, with the scenario's weights.
fn committee(
    scenario: &Scenario,
    seed: u64,
) -> Result<(Arc<Committee>, Vec<primitives::crypto::KeyPair>), String> {
    let hosts: Vec<String> = (0..scenario.nodes).map(host).collect();
    let (c, keys) = Committee::generate(scenario.nodes, 1, &hosts, 6000, Some(seed))
        .map_err(|e| format!("cannot generate a committee: {e}"))?;
    let Some(weights) = &scenario.weights else {
        return Ok((Arc::new(c), keys));
    };
    let mut file = c.to_file();
    for (m, w) in file.member.iter_mut().zip(weights) {
        m.weight = *w;
    }
    let c = Committee::new(file).map_err(|e| format!("bad weights: {e}"))?;
    Ok((Arc::new(c), keys))
}

/// What a Byzantine node of the scenario is told to do, split by layer.
/// With `known_bad`, every node runs those behaviours too (a known-bad variant of the
/// honest code).
fn adversary(scenario: &Scenario, node: usize, book: &ForkBook) -> Option<Adversary> {
    let mut behaviours = scenario.behaviours_of(node);
    behaviours.extend(scenario.known_bad.iter().copied());
    crate::byzantine::adversary(&behaviours, node, &scenario.byzantine_nodes(), book)
}

/// The one-way latency of every pair of nodes `(a, b)`, `a < b`, in ms, when the
/// scenario models a WAN: from its matrix (`latency_matrix`, rounded to the millisecond,
/// at least 1), or drawn uniformly from `link_latency_ms` by the seed.
pub fn wan_latencies(scenario: &Scenario, seed: u64) -> BTreeMap<(usize, usize), u64> {
    use rand::{Rng, SeedableRng};
    if let Some(matrix) = &scenario.matrix {
        // Checked by `Scenario::load`; a scenario built otherwise gets round robin.
        let placed = matrix
            .place(scenario.nodes, scenario.regions.as_deref())
            .unwrap_or_else(|_| matrix.place(scenario.nodes, None).unwrap_or_default());
        let mut out = BTreeMap::new();
        for a in 0..placed.len() {
            for b in a + 1..placed.len() {
                let ms = matrix.one_way_ms(placed[a], placed[b]).round().max(1.0);
                out.insert((a, b), ms as u64);
            }
        }
        return out;
    }
    let Some((lo, hi)) = scenario.link_latency_ms else {
        return BTreeMap::new();
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x7761_6e5f_6c61_7473);
    let mut out = BTreeMap::new();
    for a in 0..scenario.nodes {
        for b in a + 1..scenario.nodes {
            out.insert((a, b), rng.gen_range(lo..=hi));
        }
    }
    out
}

/// Run `scenario` with `seed`.
pub fn run(scenario: &Scenario, seed: u64) -> Result<Report, RunError> {
    run_with_progress(scenario, seed, &mut |_| {})
}

/// Run `scenario` with `seed`, calling `progress` with the simulated time after every
/// simulated second.
pub fn run_with_progress(
    scenario: &Scenario,
    seed: u64,
    progress: &mut dyn FnMut(Duration),
) -> Result<Report, RunError> {
    let fail = |reason: String| RunError {
        scenario: scenario.name.clone(),
        seed,
        reason,
    };
    let n = scenario.nodes;
    // Nodes of the simulation: the members, then each twin's second instance.
    let instances = scenario.instances();
    let (committee, keys) = committee(scenario, seed).map_err(fail)?;
    let twin_addresses: BTreeMap<NodeId, String> = (n..instances)
        .filter_map(|i| {
            let member = committee.member(NodeId(scenario.member_of(i) as u16))?;
            let port = primitives::committee::port_of(&member.primary)?;
            Some((member.id, format!("{}:{port}", host(i))))
        })
        .collect();
    let parameters = scenario.node_parameters().map_err(fail)?;
    let protocol = scenario.protocol.clone();
    let logs: Vec<Arc<Mutex<NodeLog>>> = (0..instances)
        .map(|_| Arc::new(Mutex::new(NodeLog::default())))
        .collect();
    let submitted = Arc::new(Mutex::new(BTreeMap::new()));
    let duration = Duration::from_secs(scenario.duration_s);
    let book = ForkBook::default();
    let mut sim = turmoil::Builder::new()
        .simulation_duration(duration + Duration::from_secs(1))
        .min_message_latency(Duration::from_millis(scenario.latency_ms.0))
        .max_message_latency(Duration::from_millis(scenario.latency_ms.1))
        .fail_rate(scenario.loss)
        .udp_capacity(65_536)
        .rng_seed(seed)
        .build();
    let silent: Vec<usize> = (0..n)
        .filter(|i| scenario.behaviours_of(*i).contains(&Misbehaviour::Silent))
        .collect();
    for (i, log) in logs.iter().enumerate() {
        let member = scenario.member_of(i);
        let committee = committee.clone();
        let keys = keys[member].clone();
        let parameters = parameters.clone();
        let protocol = protocol.clone();
        let log = log.clone();
        let store = MemoryStore::new();
        let adversary = adversary(scenario, member, &book);
        let behaviours = scenario.behaviours_of(member);
        let is_silent = silent.contains(&member);
        let clock_changes = scenario.clock_changes(member);
        let twins = twin_addresses.clone();
        sim.host(host(i), move || {
            let (committee, keys, parameters, protocol, log, store, adversary) = (
                committee.clone(),
                keys.clone(),
                parameters.clone(),
                protocol.clone(),
                log.clone(),
                store.clone(),
                adversary.clone(),
            );
            let clock_changes = clock_changes.clone();
            let behaviours = behaviours.clone();
            let twins = twins.clone();
            async move {
                if is_silent {
                    std::future::pending::<()>().await;
                }
                let id = NodeId(member as u16);
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
                    adversary,
                    clock: if clock_changes.is_empty() {
                        NodeClock::real()
                    } else {
                        // The simulation's elapsed time: the same origin for every
                        // node and across restarts.
                        NodeClock::scheduled(
                            || turmoil::sim_elapsed().unwrap_or_default(),
                            clock_changes.clone(),
                        )?
                    },
                    twins,
                })
                .await?;
                let flood = crate::byzantine::spawn_floods(&node, &behaviours, seed);
                let sampler = {
                    let log = log.clone();
                    let driver = node.driver_metrics.clone();
                    let mempool = node.mempool.metrics().clone();
                    let network = node.network_metrics().clone();
                    tokio::spawn(async move {
                        loop {
                            tokio::time::sleep(Duration::from_millis(250)).await;
                            use std::sync::atomic::Ordering::Relaxed;
                            let net = network.snapshot();
                            let pool = mempool.snapshot();
                            if let Ok(mut log) = log.lock() {
                                let core = driver.core_counters();
                                let sizes = core.iter().copied().chain([
                                    ("queued_bytes", net.queued_bytes),
                                    ("inbound_queued_bytes", net.inbound_queued_bytes),
                                    ("requested_certificates", pool.requested_certificates),
                                    ("suspended_headers", pool.suspended_headers),
                                    ("mempool_pending_certificates", pool.pending_certificates),
                                    ("unsolicited_batches", pool.unsolicited_batches),
                                ]);
                                for (key, value) in sizes {
                                    let peak = log.peaks.entry(key).or_default();
                                    *peak = (*peak).max(value);
                                }
                                log.mempool = Some(pool);
                                log.counters = Counters {
                                    blocks_committed: driver.blocks_committed.load(Relaxed),
                                    certificates_committed: driver
                                        .certificates_committed
                                        .load(Relaxed),
                                    dag_round: mempool.round.load(Relaxed),
                                    core,
                                    evidence: driver.evidence.load(Relaxed),
                                    messages_out: net.messages_out,
                                    bytes_out: net.bytes_out,
                                    consensus_rejected: driver.rejected.load(Relaxed),
                                };
                            }
                        }
                    })
                };
                while let Some(d) = delivered.recv().await {
                    let now = turmoil::sim_elapsed().unwrap_or_default();
                    let mut log = log.lock().map_err(|_| "poisoned")?;
                    // After a restart a node may deliver again what it delivered just
                    // before the crash (at least once, by position): an application
                    // keeps the first; a different certificate there is a violation.
                    if let Some(earlier) = log.sequence.get(d.position as usize) {
                        if *earlier != d.certificate {
                            log.redelivery_conflicts += 1;
                        }
                        continue;
                    }
                    if d.position as usize > log.sequence.len() {
                        log.gaps += 1;
                    }
                    if let Some(to) = d.skipped_until {
                        // A gap, explicit: the checkers compare its chain hash with the
                        // other nodes' at its end.
                        let first = log.transactions.len();
                        for p in d.position..to {
                            log.sequence.push(SKIPPED);
                            log.chains.push(if p + 1 == to { d.chain } else { SKIPPED });
                            log.first_tx.push(first);
                            log.positions.push((0, 0, now));
                        }
                        log.skips.push((d.position, to, d.chain));
                        log.progress.push((now, first));
                        continue;
                    }
                    if log.last_block.is_none_or(|(b, _)| b != d.block) {
                        log.blocks_delivering += 1;
                    }
                    log.last_block = Some((d.block, d.height));
                    if *log.blocks.entry(d.height).or_insert(d.block) != d.block {
                        log.block_conflicts += 1;
                    }
                    log.sequence.push(d.certificate);
                    log.positions.push((d.round.0, d.author.0, now));
                    log.chains.push(d.chain);
                    let first = log.transactions.len();
                    log.first_tx.push(first);
                    log.transactions.extend(d.transactions);
                    let total = log.transactions.len();
                    log.progress.push((now, total));
                }
                sampler.abort();
                for f in flood {
                    f.abort();
                }
                drop(node);
                Ok(())
            }
        });
    }
    // Every client runs on one simulated host: the simulation ticks each host and scans
    // every link for each host at every step, so a host per client cost about a tenth
    // of a 50-node run's wall time. Each client still has its own socket and link to its
    // node (faults never name clients).
    let mut clients: Vec<ClientTask> = Vec::new();
    for c in (0..n).filter(|c| !silent.contains(c)) {
        let Some(member) = committee.member(NodeId(c as u16)).cloned() else {
            continue;
        };
        let submitted = submitted.clone();
        let (rate, size, until) = (
            scenario.rate,
            scenario.tx_size,
            Duration::from_secs(scenario.submit_until_s),
        );
        let mut rng_seed: [u8; 32] = [0u8; 32];
        rng_seed[..8].copy_from_slice(&seed.to_le_bytes());
        rng_seed[8..10].copy_from_slice(&(c as u16).to_le_bytes());
        rng_seed[10] = 0xcc;
        clients.push(Box::pin(async move {
            let start = Duration::from_millis(500);
            tokio::time::sleep(start).await;
            let elapsed = || turmoil::sim_elapsed().unwrap_or_default();
            let mut seq = 0u64;
            // Connect, submit until the connection fails (the node crashed), and connect
            // again (it may restart) until the submission window ends.
            'connect: while elapsed() < until {
                let Ok(mut client) = TransactionClient::connect(
                    Environment::Turmoil,
                    &member.workers[0].transactions,
                    member.public_key,
                    1 << 20,
                    Some(rng_seed),
                )
                .await
                else {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue; // the node is down
                };
                rng_seed[11] = rng_seed[11].wrapping_add(1);
                // This connection's transactions by stream index: a transaction the node
                // refuses (admission control) was never accepted, so it leaves
                // `submitted` and nothing demands that it be committed.
                let mut sent: Vec<Bytes> = Vec::new();
                let forget =
                    |ranges: Vec<(u64, u64)>, sent: &[Bytes]| -> Result<(), &'static str> {
                        let mut submitted = submitted.lock().map_err(|_| "poisoned")?;
                        for (from, to) in ranges {
                            for i in from..to {
                                if let Some(tx) = sent.get(i as usize) {
                                    submitted.remove(tx);
                                }
                            }
                        }
                        Ok(())
                    };
                // Every 10 ms, as many as keep the total at `rate` per second (missed
                // ticks while disconnected are not made up).
                while elapsed() < until {
                    let now = elapsed();
                    let tick = (now.saturating_sub(start).as_millis() / 10) as u64;
                    let due = (tick + 1) * rate / 100 - tick * rate / 100;
                    for _ in 0..due {
                        let mut tx = vec![0u8; size];
                        tx[..8].copy_from_slice(&(c as u64).to_be_bytes());
                        tx[8..16].copy_from_slice(&seq.to_be_bytes());
                        seq += 1;
                        let tx = Bytes::from(tx);
                        if client.submit(tx.clone()).await.is_err() {
                            forget(client.take_refused(), &sent)?;
                            continue 'connect; // what was accepted counts
                        }
                        submitted
                            .lock()
                            .map_err(|_| "poisoned")?
                            .insert(tx.clone(), now);
                        sent.push(tx);
                    }
                    if client.flush().await.is_err() {
                        forget(client.take_refused(), &sent)?;
                        continue 'connect;
                    }
                    forget(client.take_refused(), &sent)?;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                if let Ok((_, refused)) = client.finish().await {
                    forget(refused, &sent)?;
                }
            }
            Ok(())
        }));
    }
    sim.client("clients", async move {
        let mut tasks = tokio::task::JoinSet::new();
        for c in clients {
            tasks.spawn_local(c);
        }
        // The first client to fail fails the simulation at once, as its own host did.
        while let Some(done) = tasks.join_next().await {
            done.map_err(|e| e.to_string())??;
        }
        Ok(())
    });
    let wan = wan_latencies(scenario, seed);
    let set_wan_link = |sim: &mut turmoil::Sim, a: usize, b: usize, ms: u64| {
        sim.set_link_latency(host(a), host(b), Duration::from_millis(ms));
        if scenario.jitter_ms > 0 {
            let max = Duration::from_millis(ms + scenario.jitter_ms);
            sim.set_link_max_message_latency(host(a), host(b), max);
        }
    };
    if scenario.latency_matrix.is_some() && scenario.matrix.is_none() {
        return Err(fail(
            "latency_matrix is not loaded (load the scenario with Scenario::load)".into(),
        ));
    }
    // A twin's second instance sits where its member does: the member's links.
    for a in 0..instances {
        for b in a + 1..instances {
            let (x, y) = (scenario.member_of(a), scenario.member_of(b));
            if let Some(ms) = wan.get(&(x.min(y), x.max(y))) {
                set_wan_link(&mut sim, a, b, *ms);
            }
        }
    }
    for link in &scenario.links {
        for a in &link.a {
            for b in &link.b {
                if let Some(ms) = link.latency_ms {
                    sim.set_link_latency(host(*a), host(*b), Duration::from_millis(ms));
                }
                if let Some(loss) = link.loss {
                    sim.set_link_fail_rate(host(*a), host(*b), loss);
                }
            }
        }
    }
    // Sockets are bound inside the hosts, on this thread, as the simulation steps.
    network::packet_faults::install(scenario.packet_faults.clone(), seed ^ 0x7061_636b_6574);
    let mut faults = scenario.faults.clone();
    faults.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
    let mut slowed: BTreeSet<(usize, usize)> = BTreeSet::new();
    let mut next = 0;
    let mut reported = Duration::ZERO;
    while sim.elapsed() < duration {
        if sim.elapsed() >= reported + Duration::from_secs(1) {
            reported = sim.elapsed();
            progress(reported);
        }
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
                    for x in 0..instances {
                        for y in 0..instances {
                            if x != y {
                                sim.repair(host(x), host(y));
                            }
                        }
                    }
                    // A slowed link gets its own latency back: its override, its WAN
                    // latency, or (turmoil cannot give a link its random range back)
                    // the scenario's largest latency, fixed.
                    for (x, y) in std::mem::take(&mut slowed) {
                        let own = scenario
                            .links
                            .iter()
                            .rev()
                            .find(|l| {
                                l.latency_ms.is_some()
                                    && ((l.a.contains(&x) && l.b.contains(&y))
                                        || (l.a.contains(&y) && l.b.contains(&x)))
                            })
                            .and_then(|l| l.latency_ms);
                        let (mx, my) = (scenario.member_of(x), scenario.member_of(y));
                        match (own, wan.get(&(mx.min(my), mx.max(my)))) {
                            (None, Some(ms)) => set_wan_link(&mut sim, x, y, *ms),
                            (ms, _) => sim.set_link_latency(
                                host(x),
                                host(y),
                                Duration::from_millis(ms.unwrap_or(scenario.latency_ms.1)),
                            ),
                        }
                    }
                }
                FaultKind::Crash { node } => sim.crash(host(*node)),
                FaultKind::Restart { node } => sim.bounce(host(*node)),
                FaultKind::Slow { a, b, latency_ms } => {
                    for x in a {
                        for y in b {
                            sim.set_link_latency(
                                host(*x),
                                host(*y),
                                Duration::from_millis(*latency_ms),
                            );
                            slowed.insert((*x, *y));
                        }
                    }
                }
                FaultKind::IsolateOutbound { node } => {
                    for y in (0..instances).filter(|y| y != node) {
                        sim.partition_oneway(host(*node), host(y));
                    }
                }
                FaultKind::IsolateInbound { node } => {
                    for y in (0..instances).filter(|y| y != node) {
                        sim.partition_oneway(host(y), host(*node));
                    }
                }
            }
            next += 1;
        }
        if let Err(e) = sim.step() {
            network::packet_faults::install(None, 0);
            return Err(fail(format!("simulation failed: {e}")));
        }
    }
    let packet_faults = network::packet_faults::counts();
    network::packet_faults::install(None, 0);
    let mut down = scenario.down_at_end();
    down.extend(silent);
    down.sort();
    down.dedup();
    Ok(Report {
        scenario: scenario.name.clone(),
        seed,
        logs: logs
            .iter()
            .map(|l| l.lock().map(|l| l.clone()).unwrap_or_default())
            .collect(),
        submitted: submitted.lock().map(|s| s.clone()).unwrap_or_default(),
        down,
        byzantine: scenario.unjudged(),
        duration,
        packet_faults,
    })
}
