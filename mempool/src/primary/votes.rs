//! Collecting votes for this node's header into a certificate.

use super::Primary;
use crate::error::Rejection;
use crate::messages::{Certificate, Header, Vote};
use crate::metrics::MempoolMetrics;
use crate::MempoolError;
use primitives::crypto::{PartialSignature, QuorumCertificate};
use primitives::{Committee, NodeId, Weight};
use std::collections::BTreeSet;

/// Votes for one header.
#[derive(Debug, Default)]
pub(crate) struct VotesAggregator {
    voters: BTreeSet<NodeId>,
    shares: Vec<(NodeId, PartialSignature)>,
    weight: Weight,
    done: bool,
}

impl VotesAggregator {
    /// Add a verified vote; returns the certificate when this vote completes a quorum.
    pub(super) fn add(
        &mut self,
        committee: &Committee,
        header: &Header,
        vote: Vote,
        scheme: primitives::crypto::SignatureScheme,
    ) -> Option<Certificate> {
        if self.done || !self.voters.insert(vote.voter) {
            return None;
        }
        self.weight += committee.weight(vote.voter);
        self.shares.push((vote.voter, vote.signature));
        if self.weight < committee.quorum_threshold() {
            return None;
        }
        self.done = true;
        let votes = QuorumCertificate::from_shares(committee, scheme, &self.shares).ok()?;
        Some(Certificate {
            header: header.clone(),
            votes,
        })
    }
}

impl Primary {
    pub(super) async fn on_vote(&mut self, vote: Vote, from: NodeId) -> Result<(), MempoolError> {
        let Some(header) = self.last_header.clone() else {
            self.ctx.metrics.reject(Rejection::UnexpectedVote);
            return Ok(());
        };
        if vote.origin != self.ctx.id || from != vote.voter {
            self.ctx.metrics.reject(Rejection::UnexpectedVote);
            return Ok(());
        }
        if vote.round < header.round {
            // A late vote for a header we already replaced (and whose batches went into
            // the next one): it must never be certified now.
            return Ok(());
        }
        let for_twin = self
            .twin
            .as_ref()
            .is_some_and(|(twin, _)| vote.round == twin.round && vote.header == twin.digest());
        if !for_twin && (vote.round != header.round || vote.header != header.digest()) {
            self.ctx.metrics.reject(Rejection::UnexpectedVote);
            return Ok(());
        }
        if vote.signature.scheme() != self.ctx.scheme
            || vote
                .signature
                .verify(
                    &self.ctx.committee,
                    vote.voter,
                    &Vote::signing_message(&vote.header),
                )
                .is_err()
        {
            self.ctx.metrics.reject(Rejection::BadSignature);
            return Ok(());
        }
        let scheme = self.ctx.scheme;
        let round = vote.round;
        if for_twin {
            // Byzantine: the twin certified (colluders double-voted): to the upper half
            // of the honest members and the colluders, never into our own DAG.
            let Some((twin, votes)) = self.twin.as_mut() else {
                return Ok(());
            };
            if let Some(certificate) = votes.add(&self.ctx.committee, twin, vote, scheme) {
                tracing::debug!(round = %certificate.round(), "formed the twin certificate");
                let (_, to) = self.equivocation_sides();
                let message = crate::messages::MempoolMessage::Certificate(certificate);
                let deliveries = self.ctx.out.broadcast_reliable(&to, &message);
                self.certificate_deliveries
                    .entry(round)
                    .or_default()
                    .extend(deliveries);
            }
            return Ok(());
        }
        if let Some(certificate) = self.votes.add(&self.ctx.committee, &header, vote, scheme) {
            MempoolMetrics::add(&self.ctx.metrics.certificates_formed, 1);
            tracing::debug!(round = %certificate.round(), "formed certificate");
            let message = crate::messages::MempoolMessage::Certificate(certificate.clone());
            // Byzantine with colluders: the first header's certificate only to the side
            // that was shown it (and the colluders).
            let faults = &self.ctx.faults;
            let to: Vec<NodeId> = if faults.equivocate_headers && !faults.colluders.is_empty() {
                self.equivocation_sides().0
            } else {
                self.ctx.out.others()
            };
            let deliveries = self.ctx.out.broadcast_reliable(&to, &message);
            self.certificate_deliveries
                .entry(certificate.round())
                .or_default()
                .extend(deliveries);
            self.on_certificate(certificate, self.ctx.id, false).await?;
        }
        Ok(())
    }
}
