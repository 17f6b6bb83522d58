//! Starting from the store (a fresh node or a restart) and garbage collection.

use super::headers::vote_key;
use super::proposer::LAST_HEADER;
use super::{Primary, PrimaryContext, VotesAggregator};
use crate::messages::{Certificate, Header};
use crate::metrics::MempoolMetrics;
use crate::store::{StoreOp, Table};
use crate::worker::WorkerCommand;
use crate::MempoolError;
use primitives::{codec, Digest, NodeId, Round};
use rand::SeedableRng;
use std::collections::BTreeMap;
use tokio::time::Instant;
use tracing::info;

/// The store key of the garbage-collection round.
const GC_ROUND: &[u8] = b"gc_round";
/// Largest stored record the node reads back (certificates, votes, headers).
const MAX_RECORD: usize = 16 << 20;

impl Primary {
    /// Rebuild the primary from its store: DAG, last votes, last own header, round.
    pub(super) async fn recover(ctx: PrimaryContext) -> Result<Primary, MempoolError> {
        let store = ctx.store.clone();
        let gc_round: Round = match store.read(Table::Meta, GC_ROUND)? {
            Some(bytes) => codec::decode(&bytes, MAX_RECORD)?,
            None => Round(0),
        };
        let mut certificates: Vec<Certificate> = Vec::new();
        for (_, bytes) in store.scan(Table::Certificates)? {
            // A record we cannot read back is dropped, not fatal: it is re-fetched.
            if let Ok(c) = codec::decode::<Certificate>(&bytes, MAX_RECORD) {
                if c.round() > gc_round {
                    certificates.push(c);
                }
            }
        }
        certificates.sort_by_key(|c| (c.round(), c.author()));
        let mut last_votes = BTreeMap::new();
        for id in ctx.committee.ids() {
            if let Some(bytes) = store.read(Table::Votes, &vote_key(id))? {
                if let Ok(record) = codec::decode::<(Round, Digest)>(&bytes, MAX_RECORD) {
                    last_votes.insert(id, record);
                }
            }
        }
        let last_header: Option<Header> = match store.read(Table::Meta, LAST_HEADER)? {
            Some(bytes) => codec::decode(&bytes, MAX_RECORD).ok(),
            None => None,
        };
        let genesis: Vec<Digest> = Certificate::genesis(&ctx.committee)
            .iter()
            .map(|c| c.digest())
            .collect();
        let rng = rand_chacha::ChaCha8Rng::seed_from_u64(ctx.rng_seed);
        let mut primary = Primary {
            round: Round(1),
            parents: genesis,
            payload: Vec::new(),
            header_deadline: Instant::now()
                + std::time::Duration::from_millis(ctx.params.max_header_delay_ms),
            last_header: None,
            last_header_certified: false,
            header_deliveries: Vec::new(),
            vote_deliveries: Default::default(),
            votes: VotesAggregator::default(),
            twin: None,
            certificate_deliveries: BTreeMap::new(),
            last_votes,
            seen_headers: BTreeMap::new(),
            suspended: BTreeMap::new(),
            pending: BTreeMap::new(),
            waiters: BTreeMap::new(),
            requested: Default::default(),
            range_request_due: None,
            peer_horizons: BTreeMap::new(),
            rng,
            hold: None,
            watched: BTreeMap::new(),
            requeued_origin: BTreeMap::new(),
            served: primitives::rate::PerMemberRate::new(super::SERVED_PER_SECOND),
            ctx,
        };
        if gc_round > Round(0) {
            primary.dag_mut().collect_garbage(gc_round);
        }
        let recovered = certificates.len();
        for c in certificates {
            // Re-deliver in causal order; consensus skips what it already committed.
            let me = primary.ctx.id;
            primary.on_certificate(c, me, false).await?;
        }
        if let Some(header) = last_header {
            if header.round >= primary.round {
                // We proposed this round before the restart: re-send that header,
                // never a different one.
                primary.round = header.round;
                primary.parents = header.parents.clone();
                primary.last_header = Some(header.clone());
                primary.broadcast_header(&header);
                let me = primary.ctx.id;
                primary.on_header(header, me).await?;
            } else {
                primary.last_header = Some(header);
            }
        }
        if recovered > 0 {
            info!(certificates = recovered, round = %primary.round, "recovered from store");
        }
        Ok(primary)
    }

    /// Consensus committed up to `committed`: drop everything `gc_depth` rounds below it.
    pub(super) async fn collect_garbage(&mut self, committed: Round) -> Result<(), MempoolError> {
        let gc_round = Round(committed.0.saturating_sub(self.ctx.params.gc_depth));
        self.move_horizon(gc_round).await
    }

    /// Drop every round at or below `gc_round`, from memory and from the store.
    pub(super) async fn move_horizon(&mut self, gc_round: Round) -> Result<(), MempoolError> {
        if gc_round <= self.gc_round() {
            return Ok(());
        }
        let removed = self.dag_mut().collect_garbage(gc_round);
        let mut ops: Vec<StoreOp> = removed
            .iter()
            .map(|c| StoreOp::Delete(Table::Certificates, c.digest().as_bytes().to_vec()))
            .collect();
        ops.push(StoreOp::Put(
            Table::Meta,
            GC_ROUND.to_vec(),
            codec::encode(&gc_round)?.into(),
        ));
        self.ctx.store.write_relaxed(ops)?;
        MempoolMetrics::add(
            &self.ctx.metrics.certificates_collected,
            removed.len() as u64,
        );
        self.ctx
            .metrics
            .batch_latency
            .forget_older_than(std::time::Duration::from_secs(600));

        self.pending.retain(|_, p| p.certificate.round() > gc_round);
        let pending = &self.pending;
        self.waiters.retain(|_, children| {
            children.retain(|c| pending.contains_key(c));
            !children.is_empty()
        });
        self.suspended.retain(|_, s| s.header.round > gc_round);
        self.seen_headers = self.seen_headers.split_off(&(gc_round.next(), NodeId(0)));
        self.certificate_deliveries = self.certificate_deliveries.split_off(&gc_round.next());
        // Requests for certificates now below the horizon are moot.
        self.requested.retain(|_, round| round > gc_round);
        // A batch stays while a certificate still in the DAG carries it (it may yet be
        // executed here or fetched by a peer), not only while it is young: a batch
        // stored long ago can be certified late, when its author re-proposes it (an
        // orphaned or uncertified header), and collecting it by its storage round would
        // leave that certificate unexecutable everywhere. Also kept: batches queued for
        // our own headers, and those of own certificates whose commit was not reported
        // yet (they may be re-proposed).
        let mut keep = self.dag().carried_batches().clone();
        for (d, _) in self
            .payload
            .iter()
            .chain(self.last_header.iter().flat_map(|h| h.payload.iter()))
            .chain(
                self.watched
                    .values()
                    .flat_map(|w| w.certificate.header.payload.iter()),
            )
        {
            keep.add(*d);
        }
        let keep = std::sync::Arc::new(keep);
        // Batches outlive their certificates by another `gc_depth` rounds, and by the
        // history retention: a node that restarts, reconnects or catches up on the
        // committed history executes those rounds and fetches their batches from peers.
        // (A batch a certificate carries is re-tagged while the certificate is in the
        // DAG, above, so the retention counts from its certificate's round.)
        let batch_gc =
            Round(gc_round.0.saturating_sub(
                self.ctx.params.gc_depth + self.ctx.params.history_retention_rounds,
            ));
        for worker in &self.ctx.workers {
            let _ = worker
                .send(WorkerCommand::Cleanup(batch_gc, gc_round, keep.clone()))
                .await;
        }
        self.release_below_horizon(gc_round).await
    }

    /// What waited for certificates now at or below the horizon waits for them no more
    /// (they are ordered or skipped everywhere, and peers no longer serve them): pending
    /// certificates whose other parents are all here go into the DAG, and suspended
    /// headers stop waiting for their weak links there. A weak link may reach `gc_depth`
    /// rounds below its header, so a certificate can wait on one the horizon passes
    /// while the certificate itself stays above it; left waiting, it (and every later
    /// round, which has it as a parent) would stay out of the DAG.
    async fn release_below_horizon(&mut self, gc_round: Round) -> Result<(), MempoolError> {
        let mut ready: Vec<Certificate> = Vec::new();
        {
            let dag = self.ctx.dag.clone();
            let dag = dag.read().unwrap_or_else(|e| e.into_inner());
            for p in self.pending.values_mut() {
                p.missing = dag.missing_parents(&p.certificate);
                if p.missing.is_empty() {
                    ready.push(p.certificate.clone());
                }
            }
        }
        ready.sort_by_key(|c| c.round());
        for c in ready {
            self.pending.remove(&c.digest());
            let me = self.ctx.id;
            Box::pin(self.on_certificate(c, me, false)).await?;
        }
        let mut woken = Vec::new();
        for (digest, s) in self.suspended.iter_mut() {
            for (round, parent) in &s.header.weak_parents {
                if *round <= gc_round {
                    s.missing.remove(parent);
                }
            }
            if s.missing.is_empty() {
                woken.push(*digest);
            }
        }
        for digest in woken {
            if let Some(s) = self.suspended.remove(&digest) {
                let author = s.header.author;
                Box::pin(self.try_vote(s.header, author)).await?;
            }
        }
        Ok(())
    }
}
