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
    fn add(
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
        if vote.round != header.round || vote.header != header.digest() {
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
        if let Some(certificate) = self.votes.add(&self.ctx.committee, &header, vote, scheme) {
            MempoolMetrics::add(&self.ctx.metrics.certificates_formed, 1);
            tracing::debug!(round = %certificate.round(), "formed certificate");
            let message = crate::messages::MempoolMessage::Certificate(certificate.clone());
            let deliveries = self
                .ctx
                .out
                .broadcast_reliable(&self.ctx.out.others(), &message);
            self.certificate_deliveries
                .entry(certificate.round())
                .or_default()
                .extend(deliveries);
            self.on_certificate(certificate, self.ctx.id, false).await?;
        }
        Ok(())
    }
}
