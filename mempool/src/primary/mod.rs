//! The primary: headers, votes, certificates, rounds, synchronization of missing
//! certificates, and garbage collection. One task owns all of its state; the handlers
//! live in sibling modules as `impl Primary` blocks.

mod certificates;
mod headers;
mod proposer;
mod recovery;
mod synchronizer;
mod votes;

use crate::dag::Dag;
use crate::messages::{Certificate, Header, MempoolMessage};
use crate::metrics::MempoolMetrics;
use crate::store::Store;
use crate::transport::Outbound;
use crate::worker::{WorkerCommand, WorkerEvent, WorkerShared};
use crate::MempoolError;
use network::{Delivery, Incoming};
use primitives::crypto::{KeyPair, SignatureScheme};
use primitives::parameters::MempoolParameters;
use primitives::{Committee, Digest, NodeId, Round, WorkerId};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::Instrument;

pub(crate) use votes::VotesAggregator;

/// What consensus tells the primary.
#[derive(Debug)]
pub(crate) enum PrimaryCommand {
    /// Everything up to this round is committed: garbage-collect below it minus `gc_depth`.
    CommittedRound(Round),
    /// Consensus needs these certificates: fetch them (first from the given node).
    Fetch(Vec<Digest>, NodeId),
    /// The executor needs these batches of a committed certificate (by worker), first
    /// from the certificate's author.
    FetchBatches(Vec<(Digest, WorkerId, Round)>, NodeId),
    /// Make no header above this round until told otherwise (`None`: no bound). A
    /// DAG-native consensus core's timing rule (liveness only).
    HoldProposer(Option<Round>),
    /// These batches belong to committed certificates (delivered or installed from the
    /// committed history): they are no longer unsolicited pushes.
    Committed(Vec<(Digest, WorkerId)>),
}

/// A header waiting for parents or batches before this node can vote on it.
#[derive(Debug)]
pub(crate) struct Suspended {
    header: Header,
    missing: BTreeSet<Digest>,
}

/// A certificate waiting for its parents.
#[derive(Debug)]
pub(crate) struct Pending {
    certificate: Certificate,
    missing: BTreeSet<Digest>,
}

/// Evidence of equivocation: two different signed headers by one author for one round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Equivocation {
    /// The header seen first.
    pub first: Header,
    /// The conflicting header.
    pub second: Header,
}

/// Everything the primary is built from.
pub(crate) struct PrimaryContext {
    pub(crate) id: NodeId,
    pub(crate) committee: Arc<Committee>,
    pub(crate) params: MempoolParameters,
    pub(crate) scheme: SignatureScheme,
    pub(crate) key: KeyPair,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) dag: Arc<RwLock<Dag>>,
    pub(crate) out: Outbound,
    pub(crate) metrics: Arc<MempoolMetrics>,
    pub(crate) workers: Vec<mpsc::Sender<WorkerCommand>>,
    pub(crate) worker_shared: Vec<Arc<WorkerShared>>,
    pub(crate) delivered: mpsc::Sender<Certificate>,
    pub(crate) evidence: Arc<std::sync::Mutex<Vec<Equivocation>>>,
    pub(crate) rng_seed: u64,
    /// Byzantine behaviours (none for an honest node).
    pub(crate) faults: crate::MempoolFaults,
    /// The node's clock (the header delay runs on it).
    pub(crate) clock: primitives::clock::NodeClock,
}

/// The primary's state machine.
pub(crate) struct Primary {
    ctx: PrimaryContext,
    // Proposer.
    round: Round,
    parents: Vec<Digest>,
    payload: Vec<(Digest, WorkerId)>,
    header_deadline: Instant,
    last_header: Option<Header>,
    /// Whether `last_header` was certified (its certificate may since have left the DAG
    /// below the horizon: it must not then be taken for uncertified and re-queued, as
    /// `requeue_orphans` already re-queues a certificate the horizon passed).
    last_header_certified: bool,
    header_deliveries: Vec<(NodeId, Delivery)>,
    /// Our latest vote to each author, resent until it arrives (a newer vote to the
    /// same author replaces, and so cancels, the older one).
    vote_deliveries: std::collections::HashMap<NodeId, Delivery>,
    votes: VotesAggregator,
    /// Byzantine: the second header of this round and its votes.
    twin: Option<(Header, VotesAggregator)>,
    certificate_deliveries: BTreeMap<Round, Vec<(NodeId, Delivery)>>,
    // Voter.
    last_votes: BTreeMap<NodeId, (Round, Digest)>,
    seen_headers: BTreeMap<(Round, NodeId), Header>,
    suspended: BTreeMap<Digest, Suspended>,
    // Certificates waiting for parents, and who waits for what.
    pending: BTreeMap<Digest, Pending>,
    waiters: BTreeMap<Digest, BTreeSet<Digest>>,
    // Synchronizer.
    requested: synchronizer::Requests,
    range_request_due: Option<Instant>,
    peer_horizons: BTreeMap<NodeId, Round>,
    rng: rand_chacha::ChaCha8Rng,
    /// Consensus asked the proposer not to go above this round.
    hold: Option<Round>,
    /// Own certificates with batches whose commit consensus has not reported yet (see
    /// `requeue_orphans`).
    watched: BTreeMap<Round, proposer::Watched>,
    /// Batches re-proposed and not yet in a new own certificate, each with the round of
    /// the first own certificate that carried it (see `requeue_orphans`).
    requeued_origin: BTreeMap<Digest, Round>,
    /// Per peer: the start of its current second, and the certificate requests served
    /// in it (at most [`SERVED_PER_SECOND`]).
    served: primitives::rate::PerMemberRate<std::time::Instant>,
}

/// Most headers suspended at once, per committee member.
const SUSPENDED_PER_MEMBER: usize = 8;

/// Certificate requests (by digest or by range) served per peer per second; beyond it
/// they are dropped and counted (`over_budget`). An honest node asks about once per
/// second per missing set (`sync_retry_delay`, the 1 s range retry), so this only
/// holds back a peer that floods.
const SERVED_PER_SECOND: u32 = 20;

impl Primary {
    fn max_pending(&self) -> usize {
        self.ctx
            .committee
            .size()
            .saturating_mul(self.ctx.params.max_round_lookahead as usize)
            .max(1_000)
    }

    fn gc_round(&self) -> Round {
        self.dag().gc_round()
    }

    fn dag(&self) -> std::sync::RwLockReadGuard<'_, Dag> {
        // A poisoned lock means a reader panicked; the data is still consistent
        // (readers never write), so keep going.
        self.ctx.dag.read().unwrap_or_else(|e| e.into_inner())
    }

    fn dag_mut(&self) -> std::sync::RwLockWriteGuard<'_, Dag> {
        self.ctx.dag.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Run the primary until its inputs close or the store fails.
    pub(crate) async fn run(
        ctx: PrimaryContext,
        mut inbound: mpsc::Receiver<(Incoming, MempoolMessage)>,
        mut worker_events: mpsc::Receiver<WorkerEvent>,
        mut commands: mpsc::Receiver<PrimaryCommand>,
    ) -> Result<(), MempoolError> {
        let span = tracing::info_span!("primary", node = %ctx.id);
        async move {
            let mut primary = Primary::recover(ctx).await?;
            let retry_every = Duration::from_millis(primary.ctx.params.sync_retry_delay_ms.min(1_000));
            let mut sync_tick = tokio::time::interval(retry_every);
            sync_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let can_propose = primary.can_propose();
                tokio::select! {
                    biased;
                    command = commands.recv() => match command {
                        Some(PrimaryCommand::CommittedRound(round)) => primary.collect_garbage(round).await?,
                        Some(PrimaryCommand::Committed(payload)) => {
                            primary.name_batches(&payload);
                            primary.settle_committed(&payload);
                        }
                        Some(PrimaryCommand::HoldProposer(max_round)) => {
                            primary.hold = max_round;
                            primary.maybe_propose(false).await?;
                        }
                        Some(PrimaryCommand::Fetch(digests, from)) => {
                            let wanted: Vec<Digest> = {
                                let dag = primary.dag();
                                digests.into_iter().filter(|d| !dag.contains(d)).collect()
                            };
                            let round = primary.round;
                            primary.request_certificates(wanted, round, from);
                        }
                        Some(PrimaryCommand::FetchBatches(batches, from)) => {
                            let mut by_worker: BTreeMap<WorkerId, Vec<(Digest, Round)>> = BTreeMap::new();
                            for (digest, worker, round) in batches {
                                by_worker.entry(worker).or_default().push((digest, round));
                            }
                            for (worker, digests) in by_worker {
                                if let Some(w) = primary.ctx.workers.get(worker.0 as usize) {
                                    let _ = w.try_send(WorkerCommand::Refetch(digests, from));
                                }
                            }
                        }
                        None => return Ok(()),
                    },
                    event = worker_events.recv() => match event {
                        Some(WorkerEvent::OwnBatch(digest, worker)) => {
                            primary.payload.push((digest, worker));
                            primary.maybe_propose(false).await?;
                        }
                        Some(WorkerEvent::Stored(digest)) => primary.wake_headers(&digest).await?,
                        None => return Ok(()),
                    },
                    message = inbound.recv() => match message {
                        Some((incoming, message)) => {
                            let from = incoming.from;
                            primary.handle(from, message).await?;
                        }
                        None => return Ok(()),
                    },
                    _ = tokio::time::sleep_until(primary.header_deadline), if can_propose => {
                        primary.maybe_propose(true).await?;
                    }
                    _ = sync_tick.tick() => primary.retry_sync(),
                }
                primary.report_sizes();
            }
        }
        .instrument(span)
        .await
    }

    /// Publish the sizes of the maps peers can grow (the harness records their peaks).
    fn report_sizes(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        let m = &self.ctx.metrics;
        m.requested_certificates
            .store(self.requested.len() as u64, Relaxed);
        m.suspended_headers
            .store(self.suspended.len() as u64, Relaxed);
        m.pending_certificates
            .store(self.pending.len() as u64, Relaxed);
    }

    /// Whether a certificate request from `peer` may be served now (and count it).
    fn admit_request(&mut self, peer: NodeId) -> bool {
        // tokio's clock (simulated under turmoil), as a std instant.
        if self.served.admit(peer, Instant::now().into_std()) {
            return true;
        }
        self.ctx.metrics.reject(crate::Rejection::OverBudget);
        false
    }

    async fn handle(&mut self, from: NodeId, message: MempoolMessage) -> Result<(), MempoolError> {
        match message {
            MempoolMessage::Header(header) => self.on_header(header, from).await,
            MempoolMessage::Vote(vote) => self.on_vote(vote, from).await,
            MempoolMessage::Certificate(certificate) => {
                self.on_certificate(certificate, from, false).await
            }
            MempoolMessage::CertificatesRequest(digests) => {
                if self.admit_request(from) {
                    self.serve_certificates(from, digests);
                }
                Ok(())
            }
            MempoolMessage::CertificateRangeRequest { from: first, to } => {
                if self.admit_request(from) {
                    self.serve_range(from, first, to);
                }
                Ok(())
            }
            MempoolMessage::CertificateRange {
                gc_round,
                mut certificates,
            } => {
                if certificates.len() > 10_000 {
                    self.ctx.metrics.reject(crate::Rejection::Oversized);
                    return Ok(());
                }
                certificates.sort_by_key(|c| c.round());
                for c in certificates {
                    self.on_certificate(c, from, true).await?;
                }
                self.note_peer_horizon(from, gc_round).await
            }
            MempoolMessage::Certificates(mut certificates) => {
                if certificates.len() > 10_000 {
                    self.ctx.metrics.reject(crate::Rejection::Oversized);
                    return Ok(());
                }
                certificates.sort_by_key(|c| c.round());
                for c in certificates {
                    self.on_certificate(c, from, true).await?;
                }
                Ok(())
            }
            MempoolMessage::Batch { .. } | MempoolMessage::BatchRequest { .. } => {
                self.ctx.metrics.reject(crate::Rejection::Malformed);
                Ok(())
            }
        }
    }
}
