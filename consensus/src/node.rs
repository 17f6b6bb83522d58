//! A complete node: transport, mempool, a consensus core and its driver, and an
//! executor that turns committed certificates into transactions, in any environment.

use crate::byzantine::Adversary;
use crate::core::{ConsensusError, Context, Time};
use crate::driver::{DriverContext, DriverMetrics, CHANNEL_CONSENSUS, SAFETY_KEY};
use crate::history;
use crate::linearizer::Committed;
use crate::registry::{self, Launch};
use crate::transfer::CHANNEL_TRANSFER;
use bytes::Bytes;
use mempool::store::Table;
use mempool::{Mempool, MempoolConfig, MempoolHandle, Store, CHANNEL_MEMPOOL};
use network::{Environment, Network, NetworkConfig};
use primitives::crypto::KeyPair;
use primitives::{Committee, Digest, NodeId, Parameters, Round};
use rand::SeedableRng;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Everything a node is built from.
pub struct NodeConfig {
    /// This node.
    pub id: NodeId,
    /// The committee.
    pub committee: Arc<Committee>,
    /// This node's keys.
    pub keys: KeyPair,
    /// Parameters (the protocol's own in `[consensus.<protocol>]`).
    pub parameters: Parameters,
    /// The consensus protocol's registered name (see [`crate::registry`]).
    pub protocol: String,
    /// Persistent state (mempool and consensus share it).
    pub store: Arc<dyn Store>,
    /// Real UDP or turmoil.
    pub environment: Environment,
    /// Where the committee endpoint binds.
    pub bind: SocketAddr,
    /// Seed for all randomness of the node (simulations set it so runs replay).
    pub seed: u64,
    /// Whether QUIC's randomness is seeded from `seed` (simulations) or the OS (real nodes).
    pub seeded_transport: bool,
    /// Byzantine behaviours (simulations only); `None` for an honest node.
    pub adversary: Option<Adversary>,
    /// The node's clock ([`primitives::clock::NodeClock::real`] outside simulations):
    /// the consensus core's time and timers and the mempool's batch and header delays
    /// run on it; the transport's (QUIC's) timers run on real time.
    pub clock: primitives::clock::NodeClock,
    /// Twins testing only (simulations; empty elsewhere): the second address of each
    /// member that runs twice (see [`network::NetworkConfig::twins`]).
    pub twins: std::collections::BTreeMap<NodeId, String>,
}

/// A committed batch of transactions, in the node's delivery order.
#[derive(Clone, Debug)]
pub struct Delivered {
    /// Position of the certificate in the committed sequence.
    pub position: u64,
    /// The certificate.
    pub certificate: Digest,
    /// Its round.
    pub round: Round,
    /// Its author.
    pub author: NodeId,
    /// Transactions of its batches, in order.
    pub transactions: Vec<Bytes>,
    /// The consensus block whose commit delivered it (the protocol's own identity).
    pub block: Digest,
    /// That block's view, height or round (the protocol's own numbering).
    pub height: u64,
    /// The chain hash of the committed sequence up to and including this position
    /// ([`crate::linearizer::chain_after`]): equal on two nodes exactly when their
    /// sequences agree up to here.
    pub chain: Digest,
    /// `Some(to)`: this is not a certificate but a gap, positions `position..to` that
    /// this node skipped by installing a checkpoint (they were beyond every peer's
    /// history retention); `chain` is then the chain hash of the sequence before `to`,
    /// vouched for by members holding f+1 weight, and the other fields are empty.
    pub skipped_until: Option<u64>,
}

/// A running node. Dropping it stops everything.
pub struct Node {
    network: Network,
    _mempool: Mempool,
    /// The mempool handle (DAG, batches, metrics).
    pub mempool: MempoolHandle,
    /// Consensus driver counters.
    pub driver_metrics: Arc<DriverMetrics>,
    tasks: Vec<JoinHandle<()>>,
}

impl Node {
    /// The node's committee transport (the harness floods garbage through it).
    pub fn sender(&self) -> network::Sender {
        self.network.sender()
    }

    /// The transport's counters.
    pub fn network_metrics(&self) -> &Arc<network::Metrics> {
        self.network.metrics()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Why a node failed to start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The transport.
    #[error(transparent)]
    Network(#[from] network::NetworkError),
    /// The mempool.
    #[error(transparent)]
    Mempool(#[from] mempool::MempoolError),
    /// The store.
    #[error(transparent)]
    Store(#[from] mempool::StoreError),
    /// The consensus core (unknown protocol, bad parameters, corrupt safety state).
    #[error(transparent)]
    Consensus(#[from] ConsensusError),
}

impl Node {
    /// Start the node; committed transactions arrive on the returned channel in order.
    /// Fails before opening any socket on an unknown protocol or bad protocol
    /// parameters, and before running consensus on undecodable safety state.
    pub async fn start(config: NodeConfig) -> Result<(Node, mpsc::Receiver<Delivered>), NodeError> {
        registry::check(&config.protocol, &config.parameters)?;
        let entry = registry::find(&config.protocol)?;
        Self::start_with(config, entry).await
    }

    /// Start the node running the protocol of `entry` (a registry entry, or one a test
    /// builds with [`registry::entry`]); `config.protocol` is not looked up.
    pub async fn start_with(
        config: NodeConfig,
        entry: &registry::Entry,
    ) -> Result<(Node, mpsc::Receiver<Delivered>), NodeError> {
        let NodeConfig {
            id,
            committee,
            keys,
            parameters,
            protocol: _,
            store,
            environment,
            bind,
            seed,
            seeded_transport,
            adversary,
            clock,
            twins,
        } = config;
        entry.check(parameters.consensus.get(entry.name))?;
        let rng_seed = seeded_transport.then(|| {
            let mut s = [0u8; 32];
            s[..8].copy_from_slice(&seed.to_le_bytes());
            s[8..10].copy_from_slice(&id.0.to_le_bytes());
            s
        });
        // Two lanes: the mempool's traffic never waits behind consensus's (or the
        // reverse), and within each, every member has its own bounded queue.
        let (network, receivers) = Network::start_lanes(
            NetworkConfig {
                id,
                key: keys.ed25519.clone(),
                committee: committee.clone(),
                parameters: parameters.network.clone(),
                environment,
                bind,
                rng_seed,
                twins,
            },
            &[&[CHANNEL_MEMPOOL], &[CHANNEL_CONSENSUS, CHANNEL_TRANSFER]],
        )
        .await?;
        let [mempool_rx, consensus_rx]: [network::Receiver; 2] =
            receivers.try_into().map_err(|_| {
                NodeError::Network(network::NetworkError::Tls(
                    "two inbound lanes expected".into(),
                ))
            })?;
        let mut tasks = Vec::new();
        let (mempool, handle, certificates) = Mempool::start(
            MempoolConfig {
                id,
                committee: committee.clone(),
                parameters: parameters.clone(),
                keys: keys.clone(),
                store: store.clone(),
                sender: network.sender(),
                environment,
                seed,
                faults: adversary
                    .as_ref()
                    .map(|a| a.mempool.clone())
                    .unwrap_or_default(),
                clock: clock.clone(),
            },
            mempool_rx,
        )
        .await?;
        let persisted = store.read(Table::Meta, SAFETY_KEY)?.map(|b| b.to_vec());
        // Where the executor resumes: read once, before the driver and executor start.
        let executed = history::read_position(store.as_ref(), history::EXECUTED_KEY)?;
        let recent = Arc::new(history::Recent::default());
        let metrics = Arc::new(DriverMetrics::default());
        metrics
            .executed_position
            .store(executed, std::sync::atomic::Ordering::Relaxed);
        let ctx = DriverContext {
            id,
            committee: committee.clone(),
            sender: network.sender(),
            mempool: handle.clone(),
            store: store.clone(),
            max_message: parameters.network.max_frame_size,
            // The rounds the linearizer remembers delivered batches for: a restart
            // rebuilds that memory from the history exactly.
            history_rounds: parameters.mempool.batch_memory_rounds(),
            metrics: metrics.clone(),
            recent: recent.clone(),
            clock,
        };
        let (committed_tx, committed_rx) = tokio::sync::watch::channel(0u64);
        // The core's randomness: from the node's seed, apart from the transport's.
        let mut core_seed = [0u8; 32];
        core_seed[..8].copy_from_slice(&seed.to_le_bytes());
        core_seed[8..10].copy_from_slice(&id.0.to_le_bytes());
        core_seed[10] = 0xc0;
        let context = Context {
            id,
            committee: committee.clone(),
            keys,
            scheme: parameters.signature_scheme,
            rng: rand_chacha::ChaCha20Rng::from_seed(core_seed),
            persisted,
            now: Time::default(),
        };
        let task = entry.launch(Launch {
            context,
            parameters,
            driver: ctx,
            inbound: consensus_rx,
            certificates,
            committed: committed_tx,
            adversary,
        })?;
        tasks.push(tokio::spawn(task));
        let (delivered_tx, delivered_rx) = mpsc::channel(10_000);
        tasks.push(tokio::spawn(execute(
            id,
            handle.clone(),
            store.clone(),
            recent,
            committed_rx,
            delivered_tx,
            metrics.clone(),
        )));
        Ok((
            Node {
                network,
                _mempool: mempool,
                mempool: handle,
                driver_metrics: metrics,
                tasks,
            },
            delivered_rx,
        ))
    }
}

/// Resolve committed certificates into transactions, in order, waiting for batches
/// that are still being fetched.
///
/// The executor takes committed entries from memory (the latest [`history::Recent`]) or
/// from the committed history, up to the tip the driver publishes on `committed`; it
/// delivers each position once, in order, and records
/// how far it got (not waiting for stable storage). After a restart it resumes from
/// that position: at least once by position, identical content, never a hole. Reading
/// from the store instead of a queue means a slow executor (batches still being
/// fetched after a state transfer) never holds the driver back.
async fn execute(
    id: NodeId,
    mempool: MempoolHandle,
    store: Arc<dyn Store>,
    recent: Arc<history::Recent>,
    mut committed: tokio::sync::watch::Receiver<u64>,
    out: mpsc::Sender<Delivered>,
    metrics: Arc<DriverMetrics>,
) {
    // Read from the store before the executor was spawned.
    let mut next = metrics
        .executed_position
        .load(std::sync::atomic::Ordering::Relaxed);
    let mut executor = Executor {
        id,
        mempool,
        store,
        out,
        metrics,
    };
    // Positions up to here have had their missing batches asked for ahead of time.
    let mut prefetched = next;
    loop {
        let tip = *committed.borrow_and_update();
        while next < tip {
            if tip - next > PREFETCH_LAG {
                let until = tip.min(next + PREFETCH_AHEAD);
                let from = prefetched.max(next + 1);
                if from < until {
                    executor.prefetch(&recent, from, until).await;
                    prefetched = until;
                }
            }
            if let Some(entry) = recent.take(next) {
                if !executor.run(entry, &mut next).await {
                    return;
                }
                continue;
            }
            let entry = match history::read(executor.store.as_ref(), next) {
                Ok(Some(entry)) => entry,
                Ok(None) => {
                    if let Ok(Some(gap)) = history::read_gap(executor.store.as_ref(), next) {
                        if !executor.skip(gap, &mut next).await {
                            return;
                        }
                        continue;
                    }
                    tracing::error!(node = %id, position = next, "a committed position is missing from the history; skipping it");
                    next += 1;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(node = %id, error = %e, "cannot read the committed history; stopping");
                    return;
                }
            };
            if !executor.run(entry, &mut next).await {
                return;
            }
        }
        // Caught up with what is committed: record the position (not waiting for
        // stable storage; once per wake-up rather than per certificate, since every
        // write contends with the mempool's for the store).
        if !executor.record(next) {
            return;
        }
        if committed.changed().await.is_err() {
            return;
        }
    }
}

/// How often (in positions) a busy executor records its position.
const RECORD_EVERY: u64 = 64;

/// How far behind the committed tip (in positions) the executor must be before it asks
/// for the batches of positions ahead of the one it executes.
const PREFETCH_LAG: u64 = 16;

/// How many positions ahead of the one it executes a lagging executor asks for. Without
/// it a node that restarted with many committed positions whose batches it never
/// received (cut off, then crashed) asked for each position's batches only when it got
/// there, a second after starting to wait: a position a second or two
/// (`crash-while-executing` under Tusk, seed 1, lost liveness this way when a change of
/// timing left it 190 positions to fetch). In `regressions/crash-while-executing-long`
/// (about 600 positions to fetch) the catch-up takes as long without it, 3.6-5.0 s
/// (harness/tests/bullshark.rs): there the batches arrive by other ways first.
const PREFETCH_AHEAD: u64 = 256;

struct Executor {
    id: NodeId,
    mempool: MempoolHandle,
    store: Arc<dyn Store>,
    out: mpsc::Sender<Delivered>,
    metrics: Arc<DriverMetrics>,
}

impl Executor {
    /// Ask now for the batches this node lacks of the committed positions `from..until`
    /// (in the recent entries or the committed history; others are left to
    /// [`Executor::run`]).
    async fn prefetch(&self, recent: &history::Recent, from: u64, until: u64) {
        for position in from..until {
            let entry = match recent.get(position) {
                Some(entry) => entry,
                None => match history::read(self.store.as_ref(), position) {
                    Ok(Some(entry)) => entry,
                    _ => continue,
                },
            };
            if let Err(missing) = self.mempool.batches(&entry.certificate, &entry.duplicates) {
                self.mempool
                    .fetch_batches(&entry.certificate, &missing)
                    .await;
            }
        }
    }

    /// Deliver one committed certificate (waiting for its batches); false when the
    /// node stops.
    async fn run(&mut self, entry: Committed, next: &mut u64) -> bool {
        let Committed {
            position,
            certificate,
            block,
            height,
            duplicates,
            chain,
            ..
        } = entry;
        let (id, mempool) = (self.id, &self.mempool);
        // Normally the batches are on their way (a quorum stored them before the
        // certificate formed): ask only after waiting a second, then every second.
        let mut asked = tokio::time::Instant::now();
        let waiting_since = asked;
        let mut warned = asked;
        let transactions = loop {
            match mempool.batches(&certificate, &duplicates) {
                Ok(batches) => {
                    break batches
                        .into_iter()
                        .flat_map(|(_, b)| b.transactions)
                        .collect()
                }
                Err(missing) => {
                    if warned.elapsed() >= crate::driver::STALL_WARNING {
                        warned = tokio::time::Instant::now();
                        self.metrics
                            .stalls_waiting_batches
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        tracing::warn!(
                            node = %id,
                            certificate = %certificate.digest(),
                            round = certificate.round().0,
                            author = %certificate.author(),
                            waiting_s = waiting_since.elapsed().as_secs(),
                            "execution waits for {} batch(es) of a committed certificate (first {}); asking peers again",
                            missing.len(),
                            missing.first().map(|d| d.to_string()).unwrap_or_default()
                        );
                    }
                    // A node that did not vote for this certificate (it was cut off) may
                    // never have received its batches: ask for them, again every second.
                    if asked.elapsed() >= Duration::from_secs(1) {
                        mempool.fetch_batches(&certificate, &missing).await;
                        asked = tokio::time::Instant::now();
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
            }
        };
        self.metrics
            .executed_round
            .fetch_max(certificate.round().0, std::sync::atomic::Ordering::Relaxed);
        let delivered = Delivered {
            position,
            certificate: certificate.digest(),
            round: certificate.round(),
            author: certificate.author(),
            transactions,
            block,
            height,
            chain,
            skipped_until: None,
        };
        if self.out.send(delivered).await.is_err() {
            return false;
        }
        *next = position + 1;
        self.metrics
            .executed_position
            .store(*next, std::sync::atomic::Ordering::Relaxed);
        // Recorded every RECORD_EVERY positions, and whenever the executor catches up.
        if *next % RECORD_EVERY == 0 {
            return self.record(*next);
        }
        true
    }

    /// Deliver a gap in the sequence (a checkpoint was installed): one entry that names
    /// the skipped positions and the chain hash ending them; false when the node stops.
    async fn skip(&mut self, gap: history::Gap, next: &mut u64) -> bool {
        tracing::warn!(node = %self.id, from = gap.from, to = gap.to, "delivering a gap: positions skipped by a checkpoint");
        let delivered = Delivered {
            position: gap.from,
            certificate: Digest::default(),
            round: Round(0),
            author: self.id,
            transactions: Vec::new(),
            block: Digest::default(),
            height: 0,
            chain: gap.chain,
            skipped_until: Some(gap.to),
        };
        if self.out.send(delivered).await.is_err() {
            return false;
        }
        *next = gap.to;
        self.metrics
            .executed_position
            .store(*next, std::sync::atomic::Ordering::Relaxed);
        self.record(*next)
    }

    /// Record the executed position, not waiting for stable storage (a crash
    /// re-delivers from an older position); false when the store failed.
    fn record(&self, next: u64) -> bool {
        if let Err(e) = self
            .store
            .write_relaxed(vec![history::position_op(history::EXECUTED_KEY, next)])
        {
            tracing::warn!(node = %self.id, error = %e, "cannot record the executed position; stopping");
            return false;
        }
        true
    }
}
