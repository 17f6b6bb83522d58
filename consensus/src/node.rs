//! A complete node: transport, mempool, a consensus core and its driver, and an
//! executor that turns committed certificates into transactions, in any environment.

use crate::byzantine::{Adversary, Byzantine};
use crate::driver::{self, DriverContext, DriverMetrics, CHANNEL_CONSENSUS, SAFETY_KEY};
use crate::hotstuff::{self, HotStuff};
use crate::linearizer::Committed;
use bytes::Bytes;
use mempool::store::Table;
use mempool::{Mempool, MempoolConfig, MempoolHandle, Store, CHANNEL_MEMPOOL};
use network::{Environment, Network, NetworkConfig};
use primitives::crypto::KeyPair;
use primitives::{Committee, Digest, NodeId, Parameters, Round};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Which consensus core a node runs, with its configuration.
#[derive(Clone, Debug, PartialEq)]
pub enum Protocol {
    /// Chained HotStuff over the DAG.
    HotStuff(hotstuff::Config),
}

impl Default for Protocol {
    fn default() -> Self {
        Protocol::HotStuff(hotstuff::Config::default())
    }
}

/// Everything a node is built from.
pub struct NodeConfig {
    /// This node.
    pub id: NodeId,
    /// The committee.
    pub committee: Arc<Committee>,
    /// This node's keys.
    pub keys: KeyPair,
    /// Parameters.
    pub parameters: Parameters,
    /// The consensus core.
    pub protocol: Protocol,
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
}

impl Node {
    /// Start the node; committed transactions arrive on the returned channel in order.
    pub async fn start(config: NodeConfig) -> Result<(Node, mpsc::Receiver<Delivered>), NodeError> {
        let NodeConfig {
            id,
            committee,
            keys,
            parameters,
            protocol,
            store,
            environment,
            bind,
            seed,
            seeded_transport,
            adversary,
        } = config;
        let rng_seed = seeded_transport.then(|| {
            let mut s = [0u8; 32];
            s[..8].copy_from_slice(&seed.to_le_bytes());
            s[8..10].copy_from_slice(&id.0.to_le_bytes());
            s
        });
        let (network, mut receiver) = Network::start(NetworkConfig {
            id,
            key: keys.ed25519.clone(),
            committee: committee.clone(),
            parameters: parameters.network.clone(),
            environment,
            bind,
            rng_seed,
        })
        .await?;
        let (mempool_tx, mempool_rx) = mpsc::channel(10_000);
        let (consensus_tx, consensus_rx) = mpsc::channel(10_000);
        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(async move {
            while let Some(incoming) = receiver.recv().await {
                let target = match incoming.payload.first() {
                    Some(&CHANNEL_MEMPOOL) => &mempool_tx,
                    Some(&CHANNEL_CONSENSUS) => &consensus_tx,
                    _ => continue,
                };
                if target.send(incoming).await.is_err() {
                    return;
                }
            }
        }));
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
                faults: adversary.as_ref().map(|a| a.mempool).unwrap_or_default(),
            },
            mempool_rx,
        )
        .await?;
        let persisted = store.read(Table::Meta, SAFETY_KEY)?;
        let metrics = Arc::new(DriverMetrics::default());
        let ctx = DriverContext {
            id,
            sender: network.sender(),
            mempool: handle.clone(),
            store: store.clone(),
            max_message: parameters.network.max_frame_size,
            metrics: metrics.clone(),
        };
        let (committed_tx, committed_rx) = mpsc::channel(10_000);
        match protocol {
            Protocol::HotStuff(config) => {
                let core = HotStuff::new(
                    id,
                    committee.clone(),
                    keys,
                    parameters.signature_scheme,
                    config,
                    persisted.as_deref(),
                );
                match adversary {
                    None => tasks.push(tokio::spawn(driver::run(
                        core,
                        ctx,
                        consensus_rx,
                        certificates,
                        committed_tx,
                    ))),
                    Some(adversary) => {
                        let members: Vec<NodeId> = committee.ids().collect();
                        let core = Byzantine::new(core, id, &members, adversary);
                        tasks.push(tokio::spawn(driver::run(
                            core,
                            ctx,
                            consensus_rx,
                            certificates,
                            committed_tx,
                        )))
                    }
                }
            }
        }
        let (delivered_tx, delivered_rx) = mpsc::channel(10_000);
        tasks.push(tokio::spawn(execute(
            handle.clone(),
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
async fn execute(
    mempool: MempoolHandle,
    mut committed: mpsc::Receiver<Committed>,
    out: mpsc::Sender<Delivered>,
    metrics: Arc<DriverMetrics>,
) {
    while let Some(Committed {
        position,
        certificate,
    }) = committed.recv().await
    {
        // Normally the batches are on their way (a quorum stored them before the
        // certificate formed): ask only after waiting a second, then every second.
        let mut asked = tokio::time::Instant::now();
        let transactions = loop {
            match mempool.batches(&certificate) {
                Ok(batches) => {
                    break batches
                        .into_iter()
                        .flat_map(|(_, b)| b.transactions)
                        .collect()
                }
                Err(missing) => {
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
        metrics
            .executed_round
            .fetch_max(certificate.round().0, std::sync::atomic::Ordering::Relaxed);
        let delivered = Delivered {
            position,
            certificate: certificate.digest(),
            round: certificate.round(),
            author: certificate.author(),
            transactions,
        };
        if out.send(delivered).await.is_err() {
            return;
        }
    }
}
