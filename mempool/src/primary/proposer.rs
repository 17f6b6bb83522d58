//! Proposing this node's header for each round, and moving between rounds.

use super::{Primary, VotesAggregator};
use crate::messages::{Certificate, Header, MempoolMessage};
use crate::metrics::MempoolMetrics;
use crate::store::{StoreOp, Table};
use crate::MempoolError;
use primitives::{codec, Digest, NodeId, Round};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::time::Instant;
use tracing::{debug, warn};

/// An own certificate whose commit consensus has not reported yet.
#[derive(Debug)]
pub(super) struct Watched {
    /// The certificate.
    pub(super) certificate: Certificate,
    /// Whether f+1 weight of a later round was seen to descend from it.
    pub(super) referenced: bool,
    /// For the batches it carries again (re-proposed), the round of the first own
    /// certificate that carried each; the others were first certified in its round.
    pub(super) origins: BTreeMap<Digest, Round>,
}

/// The store key of the node's last own header.
pub(super) const LAST_HEADER: &[u8] = b"last_header";
/// Bytes one payload entry counts for against `header_size` (a digest).
const ENTRY_BYTES: usize = 32;

impl Primary {
    /// Whether a header for the current round may still be made (parents in hand, not
    /// yet proposed, and consensus does not hold the proposer below this round).
    pub(super) fn can_propose(&self) -> bool {
        !self.parents.is_empty()
            && self.hold.is_none_or(|max| self.round <= max)
            && self
                .last_header
                .as_ref()
                .is_none_or(|h| h.round < self.round)
    }

    /// Make this round's header if there are parents and either enough payload or the
    /// header delay has passed (`timer`).
    pub(super) async fn maybe_propose(&mut self, timer: bool) -> Result<(), MempoolError> {
        if !self.can_propose() {
            return Ok(());
        }
        let enough = self.payload.len() * ENTRY_BYTES >= self.ctx.params.header_size;
        if !(enough || timer || Instant::now() >= self.header_deadline) {
            return Ok(());
        }
        // Our previous header is replaced now; if it was not certified it never will be
        // (only we collect its votes), so its batches go into this one.
        if let Some(last) = &self.last_header {
            if !self.last_header_certified && !self.dag().contains(&last.digest()) {
                let mut requeued = last.payload.clone();
                requeued.append(&mut self.payload);
                self.payload = requeued;
            }
        }
        self.drop_copies_past_window();
        let take = self.payload.len().min(self.ctx.params.max_header_batches);
        // A header names each batch once (voters refuse one that does not): a batch
        // queued twice goes once.
        let mut distinct = std::collections::BTreeSet::new();
        let payload: Vec<_> = self
            .payload
            .drain(..take)
            .filter(|(d, _)| distinct.insert(*d))
            .collect();
        // Every certificate of the previous round we hold, not only the first quorum:
        // late certificates get a parent too.
        let mut parents: Vec<Digest> = self
            .dag()
            .round(self.round.prev())
            .map(|certs| certs.values().map(|c| c.digest()).collect())
            .unwrap_or_else(|| self.parents.clone());
        parents.sort();
        // Weak links to what nobody we know of links to: a late certificate (its author
        // slow or briefly cut off) is then ordered with this header instead of never.
        let weak = self.dag().weak_links(self.round, self.ctx.committee.size());
        if !weak.is_empty() {
            MempoolMetrics::add(&self.ctx.metrics.weak_links, weak.len() as u64);
        }
        let header = Header::with_weak_parents(
            &self.ctx.key,
            self.ctx.id,
            self.round,
            payload,
            parents,
            weak,
        );
        // Persist before it leaves: a restarted node re-sends this header, never another.
        self.ctx.store.write(vec![StoreOp::Put(
            Table::Meta,
            LAST_HEADER.to_vec(),
            codec::encode(&header)?.into(),
        )])?;
        debug!(round = %header.round, batches = header.payload.len(), "proposing header");
        MempoolMetrics::add(&self.ctx.metrics.headers_proposed, 1);
        self.last_header = Some(header.clone());
        self.last_header_certified = false;
        self.votes = VotesAggregator::default();
        self.twin = None;
        self.header_deadline = Instant::now() + self.max_header_delay();
        self.broadcast_header(&header);
        let me = self.ctx.id;
        self.on_header(header, me).await
    }

    pub(super) fn broadcast_header(&mut self, header: &Header) {
        let message = MempoolMessage::Header(header.clone());
        let mut others = self.ctx.out.others();
        if self.ctx.faults.withhold_anchors && header.round.0 % 2 == 0 {
            // Byzantine: f others only (with our own vote, f+1 < 2f+1: never certified).
            let f = self.ctx.committee.max_faulty_weight().0 as usize;
            others.truncate(f);
        }
        if !self.ctx.faults.equivocate_headers {
            self.header_deliveries = self.ctx.out.broadcast_reliable(&others, &message);
            return;
        }
        // Byzantine: the upper half of the other honest members gets a second header
        // for the same round with the payload left out (it is re-queued, so nothing is
        // lost); colluders get both.
        let (low, high) = self.equivocation_sides();
        let twin = Header::with_weak_parents(
            &self.ctx.key,
            self.ctx.id,
            header.round,
            Vec::new(),
            header.parents.clone(),
            header.weak_parents.clone(),
        );
        let twin = if twin.digest() == header.digest() {
            Header::with_weak_parents(
                &self.ctx.key,
                self.ctx.id,
                header.round,
                Vec::new(),
                header.parents.iter().take(1).copied().collect(),
                header.weak_parents.clone(),
            )
        } else {
            twin
        };
        self.header_deliveries = self.ctx.out.broadcast_reliable(&low, &message);
        self.header_deliveries.extend(
            self.ctx
                .out
                .broadcast_reliable(&high, &MempoolMessage::Header(twin.clone())),
        );
        // Our own vote for the twin too: colluders' double votes can certify it.
        let mut votes = super::VotesAggregator::default();
        let own = crate::messages::Vote::new(&self.ctx.key, self.ctx.id, &twin, self.ctx.scheme);
        votes.add(&self.ctx.committee, &twin, own, self.ctx.scheme);
        self.twin = Some((twin, votes));
    }

    /// Byzantine: who an equivocator shows each of its two headers (and their
    /// certificates): the lower half of the other honest members the first, the upper
    /// half the twin, and the colluders both.
    pub(super) fn equivocation_sides(&self) -> (Vec<NodeId>, Vec<NodeId>) {
        let colluders = &self.ctx.faults.colluders;
        let honest: Vec<NodeId> = self
            .ctx
            .out
            .others()
            .iter()
            .copied()
            .filter(|id| !colluders.contains(id))
            .collect();
        let (low, high) = honest.split_at(honest.len() / 2);
        let with_colluders = |side: &[NodeId]| side.iter().chain(colluders).copied().collect();
        (with_colluders(low), with_colluders(high))
    }

    /// Own certificates that cannot be sure to be committed get their batches re-proposed.
    ///
    /// A certificate of round r is in the causal history of every certificate of round
    /// k+1 once certificates of round k with f+1 weight descend from it (each round k+1
    /// certificate has 2f+1 weight of round k parents, so one of them): then every anchor
    /// from round k+1 on delivers it. A certificate that formed late (its votes reached
    /// us after the others moved on, as after we could not hear) may be referenced by
    /// nobody, or only by our own next one: no anchor's history would ever hold it, and
    /// its transactions would be lost. Weak links (every honest header links to the
    /// certificates nobody it knows of links to) normally settle such a certificate within
    /// two rounds; this is the fallback for when they could not (its author was cut off
    /// so long that nobody held it in time). So when we enter round R, an own certificate
    /// is referenced once f+1 weight of round R-1 descends from it (through strong or
    /// weak links); one still unreferenced three rounds later is an orphan, and its
    /// batches go into our next header.
    ///
    /// Being referenced is not yet being ordered: an anchor orders only what lies above
    /// the garbage-collection horizon when it commits. A certificate made just after a
    /// horizon jump (we caught up on the committee's history after being cut off) can be
    /// referenced by weak links and still fall below every committing anchor's horizon.
    /// So an own certificate stays watched until consensus reports its batches committed
    /// ([`Primary::settle_committed`]); one the horizon passes first is re-proposed too.
    ///
    /// A re-proposed batch that was ordered after all is delivered once: the linearizer
    /// remembers delivered batches for [`primitives::parameters::MempoolParameters::batch_memory_rounds`]
    /// rounds, and a copy is proposed only while this node's round is within
    /// `batch_memory_rounds - gc_depth` rounds of the round the batch was first
    /// certified in (checked here, and again when the copy goes into a header). Past
    /// that a copy could be executed twice, so the batch is given up and counted
    /// ([`MempoolMetrics::orphans_abandoned`]). That happens when its commit could not
    /// be heard: the node skipped that part of the sequence by a checkpoint (down longer
    /// than its peers keep history), or a commit report was lost (a full command queue,
    /// or a restart: commits before it are not reported again). The window is
    /// `max(gc_depth, history_retention_rounds)`; with a retention no longer than
    /// `gc_depth` a certificate the horizon passes is always past it.
    fn requeue_orphans(&mut self) {
        let gc_round = self.gc_round();
        let top = self.round.prev();
        let quorum = self.ctx.committee.validity_threshold();
        let mut requeued = Vec::new();
        let mut abandoned = 0u64;
        let mut done = Vec::new();
        let mut referenced = Vec::new();
        for (round, watched) in &self.watched {
            if *round >= top {
                break;
            }
            let certificate = &watched.certificate;
            if *round <= gc_round {
                debug!(%round, digest = %certificate.digest(), batches = certificate.header.payload.len(), "own certificate fell below the horizon before its commit was reported; its batches go into the next header");
            } else if watched.referenced {
                continue;
            } else if self.descendant_weight(certificate, top) >= quorum {
                referenced.push(*round);
                continue;
            } else if top.0 >= round.0 + 3 {
                debug!(%round, digest = %certificate.digest(), batches = certificate.header.payload.len(), "own certificate orphaned; its batches go into the next header");
            } else {
                continue;
            }
            MempoolMetrics::add(&self.ctx.metrics.orphans_requeued, 1);
            for (digest, worker) in &certificate.header.payload {
                let origin = watched.origins.get(digest).copied().unwrap_or(*round);
                if !self.within_copy_window(origin) {
                    abandoned += 1;
                } else if !self.requeued_origin.contains_key(digest) {
                    // (A batch already queued again, e.g. recovered twice, goes once.)
                    requeued.push((*digest, *worker));
                    self.requeued_origin.insert(*digest, origin);
                }
            }
            done.push(*round);
        }
        self.count_abandoned(abandoned);
        for round in referenced {
            if let Some(watched) = self.watched.get_mut(&round) {
                watched.referenced = true;
            }
        }
        for round in done {
            self.watched.remove(&round);
        }
        if !requeued.is_empty() {
            requeued.append(&mut self.payload);
            self.payload = requeued;
        }
    }

    /// Whether a copy of a batch first certified in round `origin`, proposed now, is
    /// still within every linearizer's memory of the first (see `requeue_orphans`).
    fn within_copy_window(&self, origin: Round) -> bool {
        let window = self
            .ctx
            .params
            .batch_memory_rounds()
            .saturating_sub(self.ctx.params.gc_depth);
        self.round.0 <= origin.0.saturating_add(window)
    }

    /// Re-proposed batches still queued (the proposer was held, the header that carried
    /// them was not certified, or more were queued than one header takes) whose window
    /// has passed are given up, like those `requeue_orphans` finds past it.
    fn drop_copies_past_window(&mut self) {
        if self.requeued_origin.is_empty() {
            return;
        }
        let late: Vec<Digest> = self
            .requeued_origin
            .iter()
            .filter(|(_, origin)| !self.within_copy_window(**origin))
            .map(|(d, _)| *d)
            .collect();
        if late.is_empty() {
            return;
        }
        let before = self.payload.len();
        for d in &late {
            self.requeued_origin.remove(d);
        }
        let late: std::collections::BTreeSet<Digest> = late.into_iter().collect();
        self.payload.retain(|(d, _)| !late.contains(d));
        self.count_abandoned((before - self.payload.len()) as u64);
    }

    fn count_abandoned(&self, batches: u64) {
        if batches > 0 {
            warn!(batches, horizon = %self.gc_round(), "own batches passed by the horizon long after they were first certified, their commit never heard: not proposed again, as a copy could be executed twice");
            MempoolMetrics::add(&self.ctx.metrics.orphans_abandoned, batches);
        }
    }

    /// Start watching a new own certificate with batches (see `requeue_orphans`),
    /// with the round each re-proposed batch of it was first certified in.
    pub(super) fn watch(&mut self, certificate: &Certificate) {
        let round = certificate.round();
        if self
            .last_header
            .as_ref()
            .is_some_and(|h| h.digest() == certificate.digest())
        {
            self.last_header_certified = true;
        }
        let origins = certificate
            .header
            .payload
            .iter()
            .filter_map(|(d, _)| {
                self.requeued_origin
                    .remove(d)
                    .filter(|origin| *origin < round)
                    .map(|origin| (*d, origin))
            })
            .collect();
        self.watched.insert(
            round,
            Watched {
                certificate: certificate.clone(),
                referenced: false,
                origins,
            },
        );
    }

    /// Consensus committed these batches: own certificates whose batches are all among
    /// them are ordered, and no longer watched by `requeue_orphans`; copies of them
    /// still queued (re-proposed before the commit was heard) are not proposed.
    pub(super) fn settle_committed(&mut self, payload: &[(Digest, primitives::WorkerId)]) {
        if self.watched.is_empty() && self.requeued_origin.is_empty() {
            return;
        }
        let committed: std::collections::BTreeSet<&Digest> =
            payload.iter().map(|(d, _)| d).collect();
        self.watched.retain(|_, w| {
            !w.certificate
                .header
                .payload
                .iter()
                .all(|(d, _)| committed.contains(d))
        });
        if self.requeued_origin.keys().any(|d| committed.contains(d)) {
            let copies = &mut self.requeued_origin;
            self.payload
                .retain(|(d, _)| !(committed.contains(d) && copies.contains_key(d)));
            copies.retain(|d, _| !committed.contains(d));
        }
    }

    /// The weight of the certificates of round `at` in our DAG that descend from `root`
    /// (through strong or weak links).
    fn descendant_weight(&self, root: &Certificate, at: Round) -> primitives::Weight {
        let dag = self.dag();
        let mut reaching: std::collections::BTreeSet<Digest> = [root.digest()].into();
        let mut round = root.round();
        while round < at {
            round = round.next();
            let next: Vec<Digest> = dag
                .round(round)
                .map(|certs| {
                    certs
                        .values()
                        .filter(|c| c.header.all_parents().any(|(_, p)| reaching.contains(p)))
                        .map(|c| c.digest())
                        .collect()
                })
                .unwrap_or_default();
            reaching.extend(next);
        }
        let authors: Vec<primitives::NodeId> = dag
            .round(at)
            .map(|certs| {
                certs
                    .values()
                    .filter(|c| reaching.contains(&c.digest()))
                    .map(|c| c.author())
                    .collect()
            })
            .unwrap_or_default();
        self.ctx.committee.weight_of(authors.iter())
    }

    /// The header delay, in real time (it runs on the node's clock).
    pub(super) fn max_header_delay(&self) -> Duration {
        let delay = Duration::from_millis(self.ctx.params.max_header_delay_ms);
        self.ctx.clock.real_duration(delay)
    }

    /// A certificate of `round` was inserted: if the DAG now holds a quorum of that
    /// round and we are not past it, move to the next round.
    pub(super) async fn check_round_quorum(&mut self, round: Round) -> Result<(), MempoolError> {
        if round < self.round {
            return Ok(());
        }
        let parents: Option<Vec<Digest>> = {
            let dag = self.dag();
            dag.round(round).and_then(|certs| {
                let weight = self.ctx.committee.weight_of(certs.keys());
                (weight >= self.ctx.committee.quorum_threshold())
                    .then(|| certs.values().map(|c| c.digest()).collect())
            })
        };
        if let Some(parents) = parents {
            self.advance_to(round.next(), parents);
            self.maybe_propose(false).await?;
        }
        Ok(())
    }

    /// Enter `round` with `parents` (a quorum of certificates of the round before).
    /// Votes for our last header are still accepted until the next header replaces it.
    pub(super) fn advance_to(&mut self, round: Round, parents: Vec<Digest>) {
        if round <= self.round {
            return;
        }
        debug!(%round, "advancing round");
        self.round = round;
        self.parents = parents;
        self.requeue_orphans();
        self.ctx.metrics.round.store(round.0, Ordering::Relaxed);
        for shared in &self.ctx.worker_shared {
            shared.round.fetch_max(round.0, Ordering::Relaxed);
        }
    }
}
