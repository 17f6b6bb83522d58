//! Checking others' headers and voting on them, by the rules of the Narwhal paper:
//! at most one vote per (author, round); parents must be a quorum of certificates of
//! the previous round that this node holds (or fetches first); weak links must be
//! certificates of the rounds they claim, below the previous one, held or fetched
//! first (DAG-Rider's weak edges); the payload must be in this node's workers' store
//! (they fetch it first).

use super::{Equivocation, Primary, Suspended, SUSPENDED_PER_MEMBER};
use crate::error::Rejection;
use crate::messages::{Header, MempoolMessage, Vote};
use crate::metrics::MempoolMetrics;
use crate::store::{StoreOp, Table};
use crate::worker::{batch_key, WorkerCommand};
use crate::MempoolError;
use primitives::{codec, Digest, NodeId, Round, WorkerId};
use std::collections::{BTreeMap, BTreeSet};
use tracing::{debug, warn};

/// The store key of the last vote for `author`.
pub(super) fn vote_key(author: NodeId) -> Vec<u8> {
    author.0.to_be_bytes().to_vec()
}

impl Primary {
    /// Stateless checks of a header, before anything is fetched or stored for it.
    fn check_header(&self, header: &Header) -> Result<(), Rejection> {
        let member = self
            .ctx
            .committee
            .member(header.author)
            .ok_or(Rejection::UnknownAuthor)?;
        let gc_round = self.gc_round();
        // Parents must still be checkable: the previous round is above the horizon.
        if header.round == Round(0)
            || header.round <= gc_round
            || (header.round.prev() <= gc_round && header.round.prev() != Round(0))
        {
            return Err(Rejection::TooOld);
        }

        if header.round.0
            > self
                .round
                .0
                .saturating_add(self.ctx.params.max_round_lookahead)
        {
            return Err(Rejection::TooFarAhead);
        }
        if header.payload.len() > self.ctx.params.max_header_batches {
            return Err(Rejection::Oversized);
        }
        if header
            .payload
            .iter()
            .any(|(_, w)| w.0 as usize >= member.workers.len().max(1))
            || !header.payload_is_distinct()
        {
            return Err(Rejection::Malformed);
        }
        let unique: BTreeSet<&Digest> = header.parents.iter().collect();
        if unique.len() != header.parents.len() || header.parents.len() > self.ctx.committee.size()
        {
            return Err(Rejection::BadParents);
        }
        header.check_weak_parents(&self.ctx.committee)?;
        header.verify_signature(&self.ctx.committee)
    }

    pub(super) async fn on_header(
        &mut self,
        header: Header,
        from: NodeId,
    ) -> Result<(), MempoolError> {
        if header.author != self.ctx.id {
            if let Err(reason) = self.check_header(&header) {
                debug!(author = %header.author, round = %header.round, ?reason, "rejecting header");
                self.ctx.metrics.reject(reason);
                return Ok(());
            }
        }
        let digest = header.digest();
        let key = (header.round, header.author);
        match self.seen_headers.get(&key) {
            Some(first) if first.digest() != digest => {
                self.record_equivocation(first.clone(), header.clone());
                if !self.ctx.faults.double_vote_headers {
                    return Ok(());
                }
                // Byzantine: vote for the second one too.
            }
            Some(_) => {}
            None => {
                self.seen_headers.insert(key, header.clone());
            }
        }
        self.try_vote(header, from).await
    }

    fn record_equivocation(&mut self, first: Header, second: Header) {
        warn!(author = %second.author, round = %second.round, "equivocating header");
        self.ctx.metrics.reject(Rejection::Equivocation);
        MempoolMetrics::add(&self.ctx.metrics.equivocations, 1);
        if let Ok(mut evidence) = self.ctx.evidence.lock() {
            if evidence.len() < 1_000 {
                evidence.push(Equivocation { first, second });
            }
        }
    }

    /// Vote if parents and payload are in hand; otherwise fetch them and wait.
    pub(super) async fn try_vote(
        &mut self,
        header: Header,
        _from: NodeId,
    ) -> Result<(), MempoolError> {
        let digest = header.digest();
        // Parents: certificates of the previous round; weak links: certificates of the
        // rounds they claim (DAG-Rider's weak edges). Each held or fetched first; a weak
        // link below the horizon is not checked (ordered or skipped everywhere already).
        let mut missing = BTreeSet::new();
        let mut parent_authors = Vec::new();
        {
            let dag = self.dag();
            for (round, parent) in header.all_parents() {
                if dag.below_horizon(round) {
                    continue;
                }
                match dag.get(parent) {
                    Some(c) if c.round() == round => {
                        if round == header.round.prev() {
                            parent_authors.push(c.author());
                        }
                    }
                    Some(_) => {
                        drop(dag);
                        self.ctx.metrics.reject(Rejection::BadParents);
                        return Ok(());
                    }
                    None => {
                        missing.insert(*parent);
                    }
                }
            }
        }
        if !missing.is_empty() {
            self.request_parents(&header, &missing, header.author);
            self.suspend(header, missing);
            return Ok(());
        }
        if self.ctx.committee.weight_of(&parent_authors) < self.ctx.committee.quorum_threshold() {
            self.ctx.metrics.reject(Rejection::BadParents);
            return Ok(());
        }
        // Payload: every batch in our workers' store.
        let mut missing_batches: BTreeMap<WorkerId, Vec<Digest>> = BTreeMap::new();
        for (batch, worker) in &header.payload {
            if !self
                .ctx
                .store
                .contains(Table::Batches, &batch_key(*worker, batch))?
            {
                missing_batches.entry(*worker).or_default().push(*batch);
            }
        }
        if !missing_batches.is_empty() {
            let mut missing = BTreeSet::new();
            for (worker, digests) in missing_batches {
                missing.extend(digests.iter().copied());
                if let Some(w) = self.ctx.workers.get(worker.0 as usize) {
                    let _ = w.try_send(WorkerCommand::Synchronize(digests, header.author));
                }
            }
            self.suspend(header, missing);
            return Ok(());
        }
        // One vote per (author, round), never for an older round than the last vote.
        if let Some((round, voted)) = self.last_votes.get(&header.author).copied() {
            if header.round < round {
                self.ctx.metrics.reject(Rejection::StaleHeader);
                return Ok(());
            }
            if header.round == round && voted != digest && !self.ctx.faults.double_vote_headers {
                self.ctx.metrics.reject(Rejection::Equivocation);
                return Ok(());
            }
        }
        // Persist the vote before it leaves.
        let record = codec::encode(&(header.round, digest))?;
        self.ctx.store.write(vec![StoreOp::Put(
            Table::Votes,
            vote_key(header.author),
            record.into(),
        )])?;
        if !(self.ctx.faults.double_vote_headers
            && self
                .last_votes
                .get(&header.author)
                .is_some_and(|(r, _)| *r == header.round))
        {
            self.last_votes
                .insert(header.author, (header.round, digest));
        }
        let vote = Vote::new(&self.ctx.key, self.ctx.id, &header, self.ctx.scheme);
        MempoolMetrics::add(&self.ctx.metrics.votes_cast, 1);
        if header.author == self.ctx.id {
            let me = self.ctx.id;
            Box::pin(self.on_vote(vote, me)).await
        } else {
            // Reliably: a vote lost while connections are re-established after a
            // partition heals would leave the header uncertified, and if a quorum of
            // that round needs it, the DAG would stop for good.
            let message = MempoolMessage::Vote(vote);
            match self.ctx.out.try_reliable(header.author, &message) {
                Some(delivery) => {
                    self.vote_deliveries.insert(header.author, delivery);
                }
                None => self.ctx.out.send(header.author, &message),
            }
            Ok(())
        }
    }

    /// Keep `header` until what it misses arrives. Each author has
    /// [`SUSPENDED_PER_MEMBER`] places: past them its lowest-round header is evicted (the
    /// least likely to still matter), so one member's headers never evict another's.
    fn suspend(&mut self, header: Header, missing: BTreeSet<Digest>) {
        let author = header.author;
        let own = self
            .suspended
            .iter()
            .filter(|(_, s)| s.header.author == author);
        if own.clone().count() >= SUSPENDED_PER_MEMBER {
            if let Some(oldest) = own.min_by_key(|(_, s)| s.header.round).map(|(d, _)| *d) {
                self.suspended.remove(&oldest);
                self.ctx.metrics.reject(Rejection::BufferFull);
            }
        }
        self.suspended
            .insert(header.digest(), Suspended { header, missing });
    }

    /// Something a suspended header may wait for (a certificate or a batch) arrived.
    pub(super) async fn wake_headers(&mut self, arrived: &Digest) -> Result<(), MempoolError> {
        let mut ready = Vec::new();
        for (digest, s) in self.suspended.iter_mut() {
            if s.missing.remove(arrived) && s.missing.is_empty() {
                ready.push(*digest);
            }
        }
        for digest in ready {
            if let Some(s) = self.suspended.remove(&digest) {
                let author = s.header.author;
                self.try_vote(s.header, author).await?;
            }
        }
        Ok(())
    }
}
