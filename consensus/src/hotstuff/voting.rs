//! Proposals and votes of the HotStuff replica: a leader proposes the pending DAG
//! certificates; a replica votes once the parent and payload are in hand and the
//! safety rules allow it; the next leader aggregates votes into a QC.

use super::core::HotStuff;
use super::messages::{Block, Message, Qc, Vote};
use super::safety;
use super::views::EVIDENCE_VIEWS;
use super::window::Window;
use crate::core::Action;
use crate::payload::Availability;
use crate::votes::Added;
use primitives::crypto::QuorumCertificate;
use primitives::{Digest, NodeId, Round};
use std::collections::BTreeSet;

/// Most proposals waiting for a parent or payload at once.
const MAX_WAITING: usize = 64;

impl HotStuff {
    pub(super) fn propose(&mut self, out: &mut Vec<Action<Message>>) {
        let view = self.view();
        if self.last_proposed_view >= view {
            return;
        }
        let qc = self.safety.high_qc.clone();
        let tc = if qc.view.next() == view {
            None
        } else {
            match self.pacemaker.high_tc() {
                Some(tc) if tc.view.next() == view => Some(tc.clone()),
                // No justification for this view yet: wait for a QC or TC.
                _ => return,
            }
        };
        // Nothing to order and nothing waiting to be committed: wait for a certificate
        // (`on_certificate` proposes) rather than spin through empty views.
        if !self.payload.has_pending() && !self.tree.has_uncommitted_payload() {
            return;
        }
        let payload = self.payload.next_payload(self.config.max_block_payload);
        let block = Block::new(&self.keys, self.id, view, qc, tc, payload);
        tracing::debug!(node = %self.id, %view, payload = block.payload.len(), "proposing");
        self.last_proposed_view = view;
        out.push(Action::broadcast(Message::Propose(block.clone())));
        let me = self.id;
        self.on_proposal(block, me, out);
    }

    pub(super) fn on_proposal(
        &mut self,
        block: Block,
        from: NodeId,
        out: &mut Vec<Action<Message>>,
    ) {
        if self.leader_of(block.view) != block.author {
            return;
        }
        let digest = block.digest();
        if Window::beyond(self.view(), block.view) {
            // Far ahead: only its certificates count (they may move a lagging replica
            // up to it); nothing of it is kept otherwise.
            self.process_qc(&block.qc.clone(), out);
            if let Some(tc) = &block.tc {
                self.process_tc(tc.clone(), out);
            }
            if Window::beyond(self.view(), block.view) {
                self.window.refuse_ahead();
                return;
            }
        }
        match self.first_proposal.get(&block.view) {
            Some(first) if *first != digest => out.push(Action::Evidence {
                culprit: block.author,
                kind: "proposal-equivocation",
                detail: format!("two proposals in view {}", block.view),
            }),
            Some(_) => {}
            None => {
                if block.view.0 + EVIDENCE_VIEWS >= self.view().0 {
                    self.first_proposal.insert(block.view, digest);
                }
            }
        }
        self.process_qc(&block.qc.clone(), out);
        if let Some(tc) = &block.tc {
            self.process_tc(tc.clone(), out);
        }
        // A valid proposal from its leader clears any suspicion of it.
        self.pacemaker.on_proposal(block.author, block.view, out);
        if block.view <= self.tree.last_committed().1
            || !self.window.admit_block(self.view(), block.view, digest)
        {
            return;
        }
        self.tree.insert(block.clone());
        // Whoever proposed these certificates, nobody needs to propose them again.
        self.payload.mark_carried(&block.payload);
        self.try_vote(block, from, out);
    }

    pub(super) fn try_vote(&mut self, block: Block, from: NodeId, out: &mut Vec<Action<Message>>) {
        if let Err(why) = safety::may_vote_in(&self.safety, self.view(), block.view) {
            tracing::trace!(node = %self.id, view = %self.view(), block = %block.digest(), ?why, "no vote");
            return;
        }
        // The parent must be in hand (or committed) to check safety and commit later.
        let parent = block.parent();
        if !self.tree.is_known(&parent) && block.qc.view > self.tree.last_committed().1 {
            // Ask whoever sent the block, whoever proposed the parent (our own
            // proposal may extend a QC whose block we never received), and others up
            // to f + 1 peers: a quorum certified the parent, so an honest one holds it.
            let mut ask = BTreeSet::from([from, self.leader_of(block.qc.view)]);
            ask.remove(&self.id);
            let enough = (self.committee.size().saturating_sub(1) / 3 + 1)
                .min(self.committee.size().saturating_sub(1));
            let mut k = 0;
            while ask.len() < enough && k < self.committee.size() as u32 {
                ask.insert(self.peer_after(k));
                k += 1;
            }
            let request = self.sync_request(parent);
            for to in ask {
                out.push(Action::send(to, request.clone()));
            }
            self.wait_for(block, BTreeSet::from([parent]));
            return;
        }
        // Every certificate of the payload must be available (data availability), and
        // of the round the block says (the linearizer relies on it).
        match self.payload.availability(&block.payload) {
            Availability::Available => {}
            Availability::WrongRound(_) => {
                tracing::debug!(node = %self.id, view = %block.view, "no vote: a payload round is wrong");
                return;
            }
            Availability::Missing(missing) => {
                tracing::trace!(node = %self.id, view = %block.view, missing = missing.len(), "vote waits for certificates");
                out.push(Action::FetchCertificates {
                    digests: missing.clone(),
                    from: block.author,
                });
                self.wait_for(block, missing.into_iter().collect());
                return;
            }
        }
        let rule = self.config.commit_rule;
        let locked = self.safety.locked_qc.clone();
        let tree = &self.tree;
        let safe = safety::safe_to_vote(rule, &self.safety, &block, || {
            tree.extends(&block, &locked.block, locked.view)
        });
        if let Err(why) = safe {
            tracing::debug!(node = %self.id, view = %block.view, block = %block.digest(), ?why, "no vote: unsafe");
            return;
        }
        tracing::trace!(node = %self.id, view = %block.view, block = %block.digest(), "vote");
        safety::record_vote(&mut self.safety, block.view);
        self.persist(out);
        let vote = Vote::new(&self.keys, self.id, block.digest(), block.view, self.scheme);
        let next = self.leader_of(block.view.next());
        if next == self.id {
            self.on_vote(vote, out);
        } else {
            out.push(Action::send(next, Message::Vote(vote)));
        }
    }

    pub(super) fn on_vote(&mut self, vote: Vote, out: &mut Vec<Action<Message>>) {
        tracing::trace!(node = %self.id, view = %vote.view, block = %vote.block, voter = %vote.voter, "vote received");
        if self.leader_of(vote.view.next()) != self.id
            || vote.view < self.view().0.saturating_sub(1).into()
        {
            return;
        }
        let first = self.first_vote.get(&(vote.view, vote.voter)).copied();
        if !self
            .window
            .admit_vote(self.view(), vote.view, vote.voter, vote.block, first)
        {
            return;
        }
        match first {
            Some(first) if first != vote.block => out.push(Action::Evidence {
                culprit: vote.voter,
                kind: "double-vote",
                detail: format!("votes for two blocks in view {}", vote.view),
            }),
            Some(_) => {}
            None => {
                self.first_vote.insert((vote.view, vote.voter), vote.block);
            }
        }
        // Votes count per (view, block): a QC needs a quorum for that block.
        let quorum = self.committee.quorum_threshold();
        let key = (vote.view, vote.block);
        let Added::Counted { before, after } =
            self.votes
                .add(&self.committee, key, (), vote.voter, vote.signature)
        else {
            return;
        };
        if before >= quorum || after < quorum {
            return;
        }
        let shares = self.votes.shares(&key, &());
        let Ok(votes) = QuorumCertificate::from_shares(&self.committee, self.scheme, &shares)
        else {
            return;
        };
        let qc = Qc {
            block: vote.block,
            view: vote.view,
            votes,
        };
        self.process_qc(&qc, out);
    }

    /// Park a proposal until every digest in `missing` (blocks or certificates) is in hand.
    pub(super) fn wait_for(&mut self, block: Block, missing: BTreeSet<Digest>) {
        if self.waiting.len() >= MAX_WAITING {
            // Drop the oldest view: it is the least likely to still get a vote.
            if let Some(oldest) = self
                .waiting
                .iter()
                .min_by_key(|(_, (b, _))| b.view)
                .map(|(d, _)| *d)
            {
                self.waiting.remove(&oldest);
            }
        }
        self.waiting.insert(block.digest(), (block, missing));
    }

    /// `arrived` is now in hand: retry the proposals that waited only for it.
    pub(super) fn wake(&mut self, arrived: &Digest, out: &mut Vec<Action<Message>>) {
        let mut ready = Vec::new();
        for (digest, (_, missing)) in self.waiting.iter_mut() {
            if missing.remove(arrived) && missing.is_empty() {
                ready.push(*digest);
            }
        }
        for digest in ready {
            if let Some((block, _)) = self.waiting.remove(&digest) {
                let author = block.author;
                self.try_vote(block, author, out);
            }
        }
    }

    pub(super) fn on_certificate(
        &mut self,
        digest: Digest,
        round: Round,
        parents: &[Digest],
        out: &mut Vec<Action<Message>>,
    ) {
        self.payload
            .on_certificate_with_parents(digest, round, parents);
        self.wake(&digest, out);
        if self.leader_of(self.view()) == self.id && self.last_proposed_view < self.view() {
            self.propose(out);
        }
    }
}
