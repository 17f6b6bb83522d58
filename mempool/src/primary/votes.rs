//! Collecting votes for this node's header into a certificate.

use super::Primary;
use crate::error::Rejection;
use crate::messages::{Certificate, Header, Vote};
use crate::metrics::MempoolMetrics;
use crate::MempoolError;
use primitives::crypto::{PartialSignature, QuorumCertificate};
use primitives::{Committee, NodeId, Weight};
use std::collections::BTreeSet;

/// Votes for one header, counted before their signatures are checked.
///
/// Checking each vote on arrival costs one signature verification per vote, late ones
/// included. Instead a vote is counted once its sender is known to be its voter (the
/// authenticated connection says so, see [`Primary::on_vote`]), and the signatures are
/// checked together when the count reaches a quorum: one batch verification of the
/// quorum certificate (one aggregate check under BLS). If that fails, each share is
/// checked alone, the bad ones are dropped (their voters, who can only have spoiled
/// their own votes, stay counted as having voted) and the header waits for more votes.
/// A certificate is therefore only ever formed from shares that passed the same check
/// its receivers apply. Votes arriving after the quorum are not checked at all.
///
/// After one failed quorum check every later share is checked on arrival, so f
/// Byzantine voters spoiling their votes one after another cost one failed batch and
/// one check per share, not a failed batch of a whole quorum per spoiled vote.
#[derive(Debug, Default)]
pub(crate) struct VotesAggregator {
    voters: BTreeSet<NodeId>,
    shares: Vec<(NodeId, PartialSignature)>,
    weight: Weight,
    done: bool,
    /// A quorum check failed: shares are now checked one by one as they arrive.
    suspicious: bool,
}

/// What adding a vote did.
#[derive(Debug, Default)]
pub(crate) struct Added {
    /// The certificate, when this vote completed a quorum of valid shares.
    pub certificate: Option<Certificate>,
    /// Shares found invalid (and dropped) on this call.
    pub bad_signatures: usize,
}

impl VotesAggregator {
    /// Whether a vote from `voter` would still count: no quorum yet, and no earlier vote
    /// of that voter. Cheap; lets the caller skip late and repeated votes unchecked.
    pub(super) fn wants(&self, voter: NodeId) -> bool {
        !self.done && !self.voters.contains(&voter)
    }

    /// Add a vote whose sender is its voter (its signature not yet checked); returns the
    /// certificate when the votes counted reach a quorum and their shares verify.
    pub(super) fn add(
        &mut self,
        committee: &Committee,
        header: &Header,
        vote: Vote,
        scheme: primitives::crypto::SignatureScheme,
    ) -> Added {
        if !self.wants(vote.voter) {
            return Added::default();
        }
        self.voters.insert(vote.voter);
        let message = Vote::signing_message(&vote.header);
        if self.suspicious
            && vote
                .signature
                .verify(committee, vote.voter, &message)
                .is_err()
        {
            // The voter spoiled its own vote; it stays counted as having voted.
            return Added {
                certificate: None,
                bad_signatures: 1,
            };
        }
        self.weight += committee.weight(vote.voter);
        self.shares.push((vote.voter, vote.signature));
        let quorum = committee.quorum_threshold();
        if self.weight < quorum {
            return Added::default();
        }
        let certify = |shares: &[(NodeId, PartialSignature)]| {
            let votes = QuorumCertificate::from_shares(committee, scheme, shares).ok()?;
            votes.verify(committee, &message, quorum).ok()?;
            Some(Certificate {
                header: header.clone(),
                votes,
            })
        };
        if let Some(certificate) = certify(&self.shares) {
            self.done = true;
            return Added {
                certificate: Some(certificate),
                bad_signatures: 0,
            };
        }
        // Some share is bad (or of the wrong scheme): check them one by one, and every
        // later one on arrival.
        self.suspicious = true;
        let before = self.shares.len();
        self.shares
            .retain(|(voter, share)| share.verify(committee, *voter, &message).is_ok());
        let bad_signatures = before - self.shares.len();
        self.weight = self.shares.iter().map(|(v, _)| committee.weight(*v)).sum();
        let mut added = Added {
            certificate: None,
            bad_signatures,
        };
        if self.weight >= quorum {
            // Every remaining share verified alone, so the batch can only fail here if
            // the batch and single checks disagree; then no certificate is formed.
            added.certificate = certify(&self.shares);
            self.done = added.certificate.is_some();
        }
        added
    }
}

impl Primary {
    pub(super) async fn on_vote(&mut self, vote: Vote, from: NodeId) -> Result<(), MempoolError> {
        let Some(header) = self.last_header.as_ref() else {
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
        if !for_twin && vote.round != header.round {
            self.ctx.metrics.reject(Rejection::UnexpectedVote);
            return Ok(());
        }
        // The signature is checked with the quorum's (see `VotesAggregator`); a vote
        // that would no longer count is not checked at all, nor hashed against the header.
        let counts = if for_twin {
            self.twin
                .as_ref()
                .is_some_and(|(_, votes)| votes.wants(vote.voter))
        } else {
            self.votes.wants(vote.voter)
        };
        if !counts {
            return Ok(());
        }
        if !for_twin && vote.header != header.digest() {
            self.ctx.metrics.reject(Rejection::UnexpectedVote);
            return Ok(());
        }
        if vote.signature.scheme() != self.ctx.scheme {
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
            let added = votes.add(&self.ctx.committee, twin, vote, scheme);
            self.reject_bad_votes(added.bad_signatures);
            if let Some(certificate) = added.certificate {
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
        let added = self.votes.add(&self.ctx.committee, header, vote, scheme);
        self.reject_bad_votes(added.bad_signatures);
        if let Some(certificate) = added.certificate {
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

    /// Count `n` votes whose signatures failed as rejected.
    fn reject_bad_votes(&self, n: usize) {
        for _ in 0..n {
            self.ctx.metrics.reject(Rejection::BadSignature);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use primitives::crypto::{KeyPair, SignatureScheme};
    use primitives::Round;

    fn setup(n: usize) -> (Committee, Vec<KeyPair>, Header) {
        let hosts = vec!["127.0.0.1".to_string()];
        let (committee, keys) = Committee::generate(n, 1, &hosts, 9000, Some(7)).unwrap();
        let header = Header::new(&keys[0], NodeId(0), Round(1), vec![], vec![]);
        (committee, keys, header)
    }

    /// A vote of `voter` whose signature is over another header's digest.
    fn spoiled(keys: &[KeyPair], voter: usize, header: &Header, scheme: SignatureScheme) -> Vote {
        let other = Header::new(&keys[0], NodeId(0), Round(2), vec![], vec![]);
        let mut vote = Vote::new(&keys[voter], NodeId(voter as u16), header, scheme);
        vote.signature = Vote::new(&keys[voter], NodeId(voter as u16), &other, scheme).signature;
        vote
    }

    #[test]
    fn a_quorum_of_valid_votes_certifies_and_later_votes_are_not_wanted() {
        for scheme in [SignatureScheme::Ed25519, SignatureScheme::Bls] {
            let (committee, keys, header) = setup(4);
            let mut votes = VotesAggregator::default();
            for (voter, key) in keys.iter().enumerate().take(2) {
                let vote = Vote::new(key, NodeId(voter as u16), &header, scheme);
                let added = votes.add(&committee, &header, vote, scheme);
                assert!(added.certificate.is_none());
            }
            // A repeat is not counted.
            assert!(!votes.wants(NodeId(1)));
            let vote = Vote::new(&keys[2], NodeId(2), &header, scheme);
            let certificate = votes
                .add(&committee, &header, vote, scheme)
                .certificate
                .expect("three of four certify");
            assert_eq!(certificate.verify(&committee, scheme), Ok(()));
            assert!(!votes.wants(NodeId(3)));
        }
    }

    #[test]
    fn a_bad_share_is_dropped_and_the_certificate_waits_for_a_valid_one() {
        for scheme in [SignatureScheme::Ed25519, SignatureScheme::Bls] {
            let (committee, keys, header) = setup(4);
            let mut votes = VotesAggregator::default();
            let mut add = |vote| votes.add(&committee, &header, vote, scheme);
            let a = add(Vote::new(&keys[0], NodeId(0), &header, scheme));
            let b = add(spoiled(&keys, 1, &header, scheme));
            assert!(a.certificate.is_none() && b.certificate.is_none());
            // Three counted, one spoiled: the batch check fails, the bad share goes.
            let c = add(Vote::new(&keys[2], NodeId(2), &header, scheme));
            assert!(c.certificate.is_none());
            assert_eq!(c.bad_signatures, 1);
            // The spoiler cannot vote again; the fourth member completes the quorum.
            let again = add(Vote::new(&keys[1], NodeId(1), &header, scheme));
            assert!(again.certificate.is_none() && again.bad_signatures == 0);
            let d = add(Vote::new(&keys[3], NodeId(3), &header, scheme));
            let certificate = d.certificate.expect("three valid shares certify");
            assert_eq!(certificate.verify(&committee, scheme), Ok(()));
            assert!(!certificate.votes.signers(&committee).contains(&NodeId(1)));
        }
    }

    #[test]
    fn after_a_failed_quorum_check_each_spoiled_vote_is_refused_on_arrival() {
        for scheme in [SignatureScheme::Ed25519, SignatureScheme::Bls] {
            let (committee, keys, header) = setup(7);
            assert_eq!(committee.quorum_threshold(), Weight(5));
            let mut votes = VotesAggregator::default();
            let mut add = |vote| votes.add(&committee, &header, vote, scheme);
            for voter in [0, 1, 2] {
                let vote = Vote::new(&keys[voter], NodeId(voter as u16), &header, scheme);
                assert!(add(vote).certificate.is_none());
            }
            assert_eq!(add(spoiled(&keys, 3, &header, scheme)).bad_signatures, 0);
            // The fifth vote makes a quorum count; the check fails and drops voter 3.
            let fifth = add(Vote::new(&keys[4], NodeId(4), &header, scheme));
            assert!(fifth.certificate.is_none());
            assert_eq!(fifth.bad_signatures, 1);
            // Another spoiled vote is found out alone, before any quorum check.
            let sixth = add(spoiled(&keys, 5, &header, scheme));
            assert!(sixth.certificate.is_none());
            assert_eq!(sixth.bad_signatures, 1);
            let seventh = add(Vote::new(&keys[6], NodeId(6), &header, scheme));
            let certificate = seventh.certificate.expect("five valid shares certify");
            assert_eq!(certificate.verify(&committee, scheme), Ok(()));
            let signers = certificate.votes.signers(&committee);
            assert!(!signers.contains(&NodeId(3)) && !signers.contains(&NodeId(5)));
        }
    }
}
