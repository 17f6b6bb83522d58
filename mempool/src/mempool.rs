//! Assembling a node's mempool (primary + workers + client endpoints) and the handle
//! consensus uses.

use crate::dag::Dag;
use crate::error::Rejection;
use crate::messages::{decode_batch, Batch, Certificate, MempoolMessage};
use crate::metrics::MempoolMetrics;
use crate::primary::{Equivocation, Primary, PrimaryCommand, PrimaryContext};
use crate::store::{Store, Table};
use crate::transport::{Outbound, CHANNEL_MEMPOOL};
use crate::worker::{self, split_stored, BatchMaker, WorkerHandler, WorkerShared};
use crate::MempoolError;
use network::clients::{ClientListener, ClientListenerConfig};
use network::{Environment, Incoming, Sender};
use primitives::crypto::KeyPair;
use primitives::{Committee, Digest, NodeId, Parameters, Round, WorkerId};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{error, Instrument};

/// Capacity of the internal queues between the router, the primary and the workers.
const QUEUE: usize = 10_000;
/// Peer messages (mostly batches, up to `batch_size` each) a worker may have waiting.
/// Beyond this the router refuses batches and their senders retry later, so a slow
/// worker pushes back on its peers instead of growing memory or blocking the primary.
const WORKER_QUEUE: usize = 64;
/// Own batches per worker that may await their quorum at once.
const MAX_AWAITING_QUORUM: usize = 16;

/// What a node's mempool is built from.
pub struct MempoolConfig {
    /// This node.
    pub id: NodeId,
    /// The committee.
    pub committee: Arc<Committee>,
    /// All parameters (the mempool reads `mempool` and `signature_scheme`).
    pub parameters: Parameters,
    /// This node's keys.
    pub keys: KeyPair,
    /// Where safety state, certificates and batches live.
    pub store: Arc<dyn Store>,
    /// The node's committee transport (already started).
    pub sender: Sender,
    /// Real UDP or turmoil (for the client-facing endpoints).
    pub environment: Environment,
    /// Seed for the mempool's random choices (sync peers) and the client endpoints' QUIC.
    pub seed: u64,
    /// Byzantine behaviours (simulations only; default: none).
    pub faults: MempoolFaults,
    /// The node's clock: batch and header delays run on it.
    pub clock: primitives::clock::NodeClock,
}

/// Byzantine behaviours of a mempool, for the simulation harness. An honest node has
/// none of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MempoolFaults {
    /// Propose two different headers each round, one to each half of the other honest
    /// members; `colluders` get both (and both certificates, if both are certified).
    pub equivocate_headers: bool,
    /// Vote for every header an author sends in a round, not only the first: with f+1
    /// such colluders, both headers of an equivocator can be certified (two
    /// certificates for one author and round, which at most f faulty members cannot
    /// make).
    pub double_vote_headers: bool,
    /// In even rounds (where the DAG-native cores' anchors sit) send the own header to
    /// only f others, so it is never certified: a leader that withholds its anchor.
    pub withhold_anchors: bool,
    /// The other Byzantine members, for equivocation and double votes.
    pub colluders: std::collections::BTreeSet<NodeId>,
    /// Send each batch only to as many members as its availability quorum needs, and
    /// never answer batch requests: the others must get it from those members.
    pub withhold_batches: bool,
}

/// A running mempool. Dropping it stops every task.
pub struct Mempool {
    tasks: Vec<JoinHandle<()>>,
    _listeners: Vec<ClientListener>,
}

impl Drop for Mempool {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// What consensus uses: the DAG, the batches, and the committed round (for GC).
#[derive(Clone)]
pub struct MempoolHandle {
    dag: Arc<RwLock<Dag>>,
    store: Arc<dyn Store>,
    commands: mpsc::Sender<PrimaryCommand>,
    metrics: Arc<MempoolMetrics>,
    evidence: Arc<Mutex<Vec<Equivocation>>>,
    client_metrics: Vec<Arc<network::clients::ClientMetrics>>,
    max_batch_bytes: usize,
    gc_depth: u64,
    history_retention_rounds: u64,
}

impl MempoolHandle {
    fn dag(&self) -> std::sync::RwLockReadGuard<'_, Dag> {
        self.dag.read().unwrap_or_else(|e| e.into_inner())
    }

    /// A certificate held in the DAG.
    pub fn certificate(&self, digest: &Digest) -> Option<Certificate> {
        self.dag().get(digest).cloned()
    }

    /// The causal history of `root` still in the DAG, skipping what `skip` marks (for
    /// example, already committed) and what is reachable only through it; ordered by
    /// round, then author.
    pub fn causal_history(
        &self,
        root: &Digest,
        skip: impl Fn(&Digest) -> bool,
    ) -> Vec<Certificate> {
        self.dag().causal_history(root, skip)
    }

    /// Run `f` with read access to the DAG.
    pub fn with_dag<T>(&self, f: impl FnOnce(&Dag) -> T) -> T {
        f(&self.dag())
    }

    /// The batches of a certificate, in payload order, leaving out `skip` (batches
    /// already delivered); `Err` lists those not (yet) in the store (they are being
    /// fetched; ask again later).
    pub fn batches(
        &self,
        certificate: &Certificate,
        skip: &[Digest],
    ) -> Result<Vec<(Digest, Batch)>, Vec<Digest>> {
        let mut out = Vec::new();
        let mut missing = Vec::new();
        for (digest, worker) in &certificate.header.payload {
            if skip.contains(digest) {
                continue;
            }
            let value = self
                .store
                .read(Table::Batches, &worker::batch_key(*worker, digest))
                .ok()
                .flatten();
            match value.as_ref().and_then(split_stored) {
                Some((_, bytes)) => match decode_batch(&bytes, self.max_batch_bytes) {
                    Ok(batch) => out.push((*digest, batch)),
                    Err(_) => missing.push(*digest),
                },
                None => missing.push(*digest),
            }
        }
        if missing.is_empty() {
            Ok(out)
        } else {
            Err(missing)
        }
    }

    /// Tell the mempool that everything up to `round` is committed; it garbage-collects
    /// rounds at or below `round - gc_depth`.
    pub async fn set_committed_round(&self, round: Round) {
        let _ = self
            .commands
            .send(PrimaryCommand::CommittedRound(round))
            .await;
    }

    /// Ask the workers to fetch `missing` batches of `certificate` (what
    /// [`MempoolHandle::batches`] reported; first from its author, the workers retry
    /// with other peers).
    pub async fn fetch_batches(&self, certificate: &Certificate, missing: &[Digest]) {
        let round = certificate.round();
        let wanted: Vec<(Digest, WorkerId, Round)> = certificate
            .header
            .payload
            .iter()
            .filter(|(d, _)| missing.contains(d))
            .map(|(d, w)| (*d, *w, round))
            .collect();
        let _ = self
            .commands
            .send(PrimaryCommand::FetchBatches(wanted, certificate.author()))
            .await;
    }

    /// Ask the workers to fetch these batches, first from `from` (then from other peers,
    /// as for [`MempoolHandle::fetch_batches`]): for certificates whose batches this
    /// node never received, such as committed history fetched from `from`. Each with
    /// the round of its certificate: it is kept at least as long as a batch stored in
    /// that round.
    pub async fn fetch_batches_from(&self, wanted: Vec<(Digest, WorkerId, Round)>, from: NodeId) {
        if wanted.is_empty() {
            return;
        }
        let _ = self
            .commands
            .send(PrimaryCommand::FetchBatches(wanted, from))
            .await;
    }

    /// These batches belong to committed certificates (delivered, or installed from the
    /// committed history, whose certificates never entered this node's DAG): the
    /// workers keep them like certified batches, not as unsolicited pushes. Never waits;
    /// lost only when the primary's command queue is full.
    pub fn note_committed(&self, payload: Vec<(Digest, WorkerId)>) {
        if !payload.is_empty() {
            let _ = self.commands.try_send(PrimaryCommand::Committed(payload));
        }
    }

    /// Ask the mempool to fetch certificates consensus needs (first from `from`).
    pub async fn fetch_certificates(&self, digests: Vec<Digest>, from: NodeId) {
        let _ = self
            .commands
            .send(PrimaryCommand::Fetch(digests, from))
            .await;
    }

    /// Hold the header proposer at or below `max_round` (`None`: release it). Only
    /// liveness depends on it: a DAG-native core waits for its anchor this way.
    pub async fn hold_proposer(&self, max_round: Option<Round>) {
        let _ = self
            .commands
            .send(PrimaryCommand::HoldProposer(max_round))
            .await;
    }

    /// The mempool parameters in force: rounds kept below the committed round.
    pub fn gc_depth(&self) -> u64 {
        self.gc_depth
    }

    /// Rounds of committed history (and their batches) kept beyond `gc_depth`.
    pub fn history_retention_rounds(&self) -> u64 {
        self.history_retention_rounds
    }

    /// Rounds delivered batches are remembered (see
    /// [`primitives::parameters::MempoolParameters::batch_memory_rounds`]).
    pub fn batch_memory_rounds(&self) -> u64 {
        primitives::parameters::batch_memory_rounds(self.gc_depth, self.history_retention_rounds)
    }

    /// The mempool's counters.
    pub fn metrics(&self) -> &Arc<MempoolMetrics> {
        &self.metrics
    }

    /// The client endpoints' counters, one per worker.
    pub fn client_metrics(&self) -> &[Arc<network::clients::ClientMetrics>] {
        &self.client_metrics
    }

    /// Equivocations seen so far (at most 1,000 kept).
    pub fn equivocations(&self) -> Vec<Equivocation> {
        self.evidence.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// Number of batches in the store (all workers).
    pub fn stored_batches(&self) -> usize {
        self.store.count(Table::Batches).unwrap_or(0)
    }

    /// Number of certificates in the store.
    pub fn stored_certificates(&self) -> usize {
        self.store.count(Table::Certificates).unwrap_or(0)
    }
}

fn port_of(address: &str) -> Result<u16, MempoolError> {
    primitives::committee::port_of(address)
        .ok_or_else(|| MempoolError::Config(format!("bad address {address:?}")))
}

impl Mempool {
    /// Start the primary, the workers and their client endpoints. `inbound` carries
    /// the node's messages on [`CHANNEL_MEMPOOL`] (channel byte included). Returns the
    /// running mempool, the handle for consensus, and the stream of certificates in
    /// causal order.
    pub async fn start(
        config: MempoolConfig,
        inbound: network::Receiver,
    ) -> Result<(Mempool, MempoolHandle, mpsc::Receiver<Certificate>), MempoolError> {
        let MempoolConfig {
            id,
            committee,
            parameters,
            keys,
            store,
            sender,
            environment,
            seed,
            faults,
            clock,
        } = config;
        parameters
            .validate()
            .map_err(|e| MempoolError::Config(e.to_string()))?;
        let me = committee
            .member(id)
            .ok_or_else(|| MempoolError::Config(format!("{id} is not in the committee")))?
            .clone();
        let params = parameters.mempool.clone();
        let metrics = Arc::new(MempoolMetrics::default());
        let dag = Arc::new(RwLock::new(Dag::new(&committee)));
        let out = Outbound { sender };
        let max_batch_bytes = params.batch_size + params.max_transaction_size + 1024;
        let node_span = tracing::info_span!("mempool", node = %id);

        let (event_tx, event_rx) = mpsc::channel(QUEUE);
        let (primary_msg_tx, primary_msg_rx) = mpsc::channel(QUEUE);
        let (command_tx, command_rx) = mpsc::channel(QUEUE);
        let (delivered_tx, delivered_rx) = mpsc::channel(QUEUE);
        let mut tasks = Vec::new();
        let mut listeners = Vec::new();
        let mut worker_commands = Vec::new();
        let mut worker_messages = Vec::new();
        let mut worker_shared = Vec::new();
        for (index, addresses) in me.workers.iter().enumerate() {
            let worker = WorkerId(index as u16);
            let shared = Arc::new(WorkerShared::default());
            worker::recover_index(store.as_ref(), worker, &shared)?;
            let (tx_tx, tx_rx) = network::clients::intake(params.max_intake_bytes);
            let (msg_tx, msg_rx) = mpsc::channel(WORKER_QUEUE);
            let (cmd_tx, cmd_rx) = mpsc::channel(QUEUE);
            let bind: SocketAddr = ([0, 0, 0, 0], port_of(&addresses.transactions)?).into();
            let mut quic_seed = [0u8; 32];
            quic_seed[..8].copy_from_slice(&seed.to_le_bytes());
            quic_seed[8..10].copy_from_slice(&id.0.to_le_bytes());
            quic_seed[10..12].copy_from_slice(&worker.0.to_le_bytes());
            quic_seed[12] = 0xc1;
            let listener = ClientListener::start(
                ClientListenerConfig {
                    key: keys.ed25519.clone(),
                    bind,
                    environment,
                    max_transaction_size: params.max_transaction_size,
                    max_inflight_bytes: params.max_client_inflight_bytes,
                    rng_seed: Some(quic_seed),
                },
                tx_tx,
            )
            .await?;
            listeners.push(listener);
            let span = tracing::info_span!(parent: &node_span, "worker", worker = index);
            let maker = BatchMaker {
                worker,
                committee: committee.clone(),
                batch_size: params.batch_size,
                max_batch_delay: Duration::from_millis(params.max_batch_delay_ms),
                resend_window: Duration::from_millis(params.batch_resend_window_ms),
                store: store.clone(),
                out: out.clone(),
                shared: shared.clone(),
                primary: event_tx.clone(),
                metrics: metrics.clone(),
                awaiting_quorum: Arc::new(tokio::sync::Semaphore::new(MAX_AWAITING_QUORUM)),
                withhold: faults.withhold_batches,
                clock: clock.clone(),
            };
            tasks.push(spawn_logged(maker.run(tx_rx), span.clone()));
            let handler = WorkerHandler {
                worker,
                max_batch_bytes,
                max_transaction_size: params.max_transaction_size,
                sync_retry_delay: Duration::from_millis(params.sync_retry_delay_ms),
                sync_retry_nodes: params.sync_retry_nodes,
                store: store.clone(),
                out: out.clone(),
                shared: shared.clone(),
                primary: event_tx.clone(),
                metrics: metrics.clone(),
                rng_seed: seed ^ ((id.0 as u64) << 32) ^ (index as u64) << 48,
                withhold: faults.withhold_batches,
                unsolicited_reported: Default::default(),
            };
            tasks.push(spawn_logged(handler.run(msg_rx, cmd_rx), span));
            worker_commands.push(cmd_tx);
            worker_messages.push(msg_tx);
            worker_shared.push(shared);
        }
        drop(event_tx);

        let evidence = Arc::new(Mutex::new(Vec::new()));
        let ctx = PrimaryContext {
            id,
            committee: committee.clone(),
            params: params.clone(),
            scheme: parameters.signature_scheme,
            key: keys,
            store: store.clone(),
            dag: dag.clone(),
            out,
            metrics: metrics.clone(),
            workers: worker_commands,
            worker_shared,
            faults: faults.clone(),
            clock: clock.clone(),
            delivered: delivered_tx,
            evidence: evidence.clone(),
            rng_seed: seed ^ (id.0 as u64),
        };
        tasks.push(spawn_logged(
            Primary::run(ctx, primary_msg_rx, event_rx, command_rx),
            node_span.clone(),
        ));
        let router = Router {
            max_message: parameters.network.max_frame_size,
            primary: primary_msg_tx,
            workers: worker_messages,
            metrics: metrics.clone(),
        };
        tasks.push(tokio::spawn(router.run(inbound).instrument(node_span)));
        let client_metrics = listeners.iter().map(|l| l.metrics().clone()).collect();
        Ok((
            Mempool {
                tasks,
                _listeners: listeners,
            },
            MempoolHandle {
                dag,
                store,
                commands: command_tx,
                metrics,
                evidence,
                client_metrics,
                max_batch_bytes,
                gc_depth: params.gc_depth,
                history_retention_rounds: params.history_retention_rounds,
            },
            delivered_rx,
        ))
    }
}

fn spawn_logged(
    task: impl std::future::Future<Output = Result<(), MempoolError>> + Send + 'static,
    span: tracing::Span,
) -> JoinHandle<()> {
    tokio::spawn(
        async move {
            if let Err(e) = task.await {
                error!(error = %e, "mempool task stopped");
            }
        }
        .instrument(span),
    )
}

/// Decodes mempool messages and hands them to the primary or the right worker.
struct Router {
    max_message: usize,
    primary: mpsc::Sender<(Incoming, MempoolMessage)>,
    workers: Vec<mpsc::Sender<(Incoming, MempoolMessage)>>,
    metrics: Arc<MempoolMetrics>,
}

impl Router {
    async fn run(self, mut inbound: network::Receiver) {
        while let Some(incoming) = inbound.recv().await {
            let message = match incoming.payload.first() {
                Some(&CHANNEL_MEMPOOL) => {
                    MempoolMessage::decode(&incoming.payload.slice(1..), self.max_message)
                }
                _ => {
                    self.metrics.reject(Rejection::Undecodable);
                    continue;
                }
            };
            let message = match message {
                Ok(m) => m,
                Err(_) => {
                    self.metrics.reject(Rejection::Undecodable);
                    continue;
                }
            };
            let target = match &message {
                MempoolMessage::Batch { worker, .. }
                | MempoolMessage::BatchRequest { worker, .. } => {
                    match self.workers.get(worker.0 as usize) {
                        Some(w) => w,
                        None => {
                            self.metrics.reject(Rejection::UnknownAuthor);
                            continue;
                        }
                    }
                }
                _ => &self.primary,
            };
            // Never wait on one component: a full queue refuses the message (a reliable
            // sender retries after its backoff; best effort is dropped) and is counted.
            match target.try_send((incoming, message)) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full((incoming, _))) => {
                    self.metrics.reject(Rejection::BufferFull);
                    incoming.reject();
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return,
            }
        }
    }
}
