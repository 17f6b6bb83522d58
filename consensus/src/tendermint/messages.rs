//! Tendermint wire types: values, proposals, prevotes and precommits, decisions (a value
//! with its commit certificate), and the requests a lagging node catches up with.

use super::config::Config;
use crate::leaders::ProposerSchedule;
use primitives::crypto::{ed25519, KeyPair, PartialSignature, QuorumCertificate, SignatureScheme};
use primitives::{Committee, Digest, Hasher, NodeId, Round};
use serde::{Deserialize, Serialize};

/// Most decisions one [`Message::SyncReply`] carries.
pub const MAX_SYNC_DECISIONS: usize = 32;

/// The value a height decides: the DAG certificates it orders, by digest and DAG round
/// (voters check the round against the certificate they hold). Deciding it delivers
/// those certificates' causal histories.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// The height it is proposed for.
    pub height: u64,
    /// DAG certificates, in the order the linearizer delivers their histories.
    pub payload: Vec<(Digest, Round)>,
}

impl Block {
    /// `id(v)`: what prevotes and precommits name.
    pub fn digest(&self) -> Digest {
        let mut h = Hasher::new();
        h.update(b"bftlab.tendermint.value")
            .update_u64(self.height)
            .update_u64(self.payload.len() as u64);
        for (d, r) in &self.payload {
            h.update(d.as_bytes()).update_u64(r.0);
        }
        h.finalize()
    }
}

/// Why a Tendermint message failed verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidMessage {
    /// Signer not in the committee, not the sender, or not the round's proposer.
    #[error("wrong or unknown author")]
    Author,
    /// A signature or commit certificate did not verify.
    #[error("bad signature or certificate")]
    Signature,
    /// A limit was exceeded or a field is out of range.
    #[error("oversized or malformed")]
    Malformed,
}

impl InvalidMessage {
    /// The reason, as the driver counts it.
    pub fn reason(&self) -> &'static str {
        match self {
            InvalidMessage::Author => "wrong or unknown author",
            InvalidMessage::Signature => "bad signature or certificate",
            InvalidMessage::Malformed => "oversized or malformed",
        }
    }
}

/// `<PROPOSAL, h, r, v, vr>`, signed by the proposer of `(height, round)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// `h`.
    pub height: u64,
    /// `r`.
    pub round: u64,
    /// `v`.
    pub value: Block,
    /// `vr`: the round of the proposer's proof of lock (`None` is the paper's -1).
    pub valid_round: Option<u64>,
    /// The proposer.
    pub author: NodeId,
    /// ed25519 over [`Proposal::signing_message`].
    pub signature: ed25519::Signature,
}

impl Proposal {
    /// What a proposer signs.
    pub fn signing_message(height: u64, round: u64, value: &Digest, vr: Option<u64>) -> Vec<u8> {
        let mut m = b"bftlab.tendermint.proposal".to_vec();
        m.extend_from_slice(&height.to_le_bytes());
        m.extend_from_slice(&round.to_le_bytes());
        m.extend_from_slice(value.as_bytes());
        m.extend_from_slice(&vr.map_or(0, |r| r.saturating_add(1)).to_le_bytes());
        m
    }

    /// Build and sign.
    pub fn new(
        keys: &KeyPair,
        author: NodeId,
        round: u64,
        value: Block,
        valid_round: Option<u64>,
    ) -> Proposal {
        let height = value.height;
        let message = Self::signing_message(height, round, &value.digest(), valid_round);
        Proposal {
            height,
            round,
            value,
            valid_round,
            author,
            signature: ed25519::sign(&keys.ed25519, &message),
        }
    }

    /// Check on its own: within limits, by the round's proposer, signed by it.
    pub fn verify(
        &self,
        committee: &Committee,
        proposers: &ProposerSchedule,
        config: &Config,
    ) -> Result<(), InvalidMessage> {
        if self.value.payload.len() > config.max_block_payload
            || self.value.height != self.height
            || self.valid_round.is_some_and(|vr| vr >= self.round)
        {
            return Err(InvalidMessage::Malformed);
        }
        if proposers.proposer(self.height, self.round) != self.author {
            return Err(InvalidMessage::Author);
        }
        let member = committee
            .member(self.author)
            .ok_or(InvalidMessage::Author)?;
        let message = Self::signing_message(
            self.height,
            self.round,
            &self.value.digest(),
            self.valid_round,
        );
        ed25519::verify(member.verifying_key(), &message, &self.signature)
            .map_err(|_| InvalidMessage::Signature)
    }
}

/// Which of the two votes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum VoteKind {
    /// `PREVOTE`.
    Prevote,
    /// `PRECOMMIT`.
    Precommit,
}

/// `<PREVOTE, h, r, id(v) | nil>` or `<PRECOMMIT, h, r, id(v) | nil>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    /// Prevote or precommit.
    pub kind: VoteKind,
    /// `h`.
    pub height: u64,
    /// `r`.
    pub round: u64,
    /// `id(v)`, or `None` for nil.
    pub value: Option<Digest>,
    /// The voter.
    pub voter: NodeId,
    /// Share over [`Vote::signing_message`] (ed25519 or BLS, by the committee's scheme).
    pub signature: PartialSignature,
}

impl Vote {
    /// What a voter signs.
    pub fn signing_message(
        kind: VoteKind,
        height: u64,
        round: u64,
        value: Option<&Digest>,
    ) -> Vec<u8> {
        let mut m = b"bftlab.tendermint.vote".to_vec();
        m.push(match kind {
            VoteKind::Prevote => 1,
            VoteKind::Precommit => 2,
        });
        m.extend_from_slice(&height.to_le_bytes());
        m.extend_from_slice(&round.to_le_bytes());
        match value {
            None => m.push(0),
            Some(d) => {
                m.push(1);
                m.extend_from_slice(d.as_bytes());
            }
        }
        m
    }

    /// Sign a vote.
    pub fn new(
        keys: &KeyPair,
        voter: NodeId,
        kind: VoteKind,
        height: u64,
        round: u64,
        value: Option<Digest>,
        scheme: SignatureScheme,
    ) -> Vote {
        let message = Self::signing_message(kind, height, round, value.as_ref());
        let signature = match scheme {
            SignatureScheme::Ed25519 => {
                PartialSignature::Ed25519(ed25519::sign(&keys.ed25519, &message))
            }
            SignatureScheme::Bls => PartialSignature::Bls(keys.bls.sign(&message)),
        };
        Vote {
            kind,
            height,
            round,
            value,
            voter,
            signature,
        }
    }

    fn verify(&self, committee: &Committee, scheme: SignatureScheme) -> Result<(), InvalidMessage> {
        if self.signature.scheme() != scheme {
            return Err(InvalidMessage::Signature);
        }
        let message =
            Self::signing_message(self.kind, self.height, self.round, self.value.as_ref());
        self.signature
            .verify(committee, self.voter, &message)
            .map_err(|e| match e {
                primitives::Error::UnknownSigner(_) => InvalidMessage::Author,
                _ => InvalidMessage::Signature,
            })
    }
}

/// A decided height: the value and a commit certificate, 2f+1 precommits (by weight)
/// for `id(value)` in `round`. Anyone can check it without having seen the round.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// The round it was decided in.
    pub round: u64,
    /// The decided value (its height is the decided height).
    pub value: Block,
    /// The precommits, aggregated.
    pub precommits: QuorumCertificate,
}

impl Decision {
    /// The decided height.
    pub fn height(&self) -> u64 {
        self.value.height
    }

    /// Check the commit certificate.
    pub fn verify(
        &self,
        committee: &Committee,
        scheme: SignatureScheme,
        config: &Config,
    ) -> Result<(), InvalidMessage> {
        if self.value.payload.len() > config.max_block_payload {
            return Err(InvalidMessage::Malformed);
        }
        if self.precommits.scheme() != scheme {
            return Err(InvalidMessage::Signature);
        }
        let message = Vote::signing_message(
            VoteKind::Precommit,
            self.value.height,
            self.round,
            Some(&self.value.digest()),
        );
        self.precommits
            .verify(committee, &message, committee.quorum_threshold())
            .map_err(|_| InvalidMessage::Signature)
    }
}

/// Everything Tendermint replicas say to each other.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// A proposer's proposal.
    Proposal(Proposal),
    /// A prevote or precommit, to everyone.
    Vote(Vote),
    /// Ask for the decisions from `height` on (a node that sees its peers ahead).
    SyncRequest {
        /// The first height wanted.
        height: u64,
    },
    /// Consecutive decisions, lowest first; at most [`MAX_SYNC_DECISIONS`].
    SyncReply(Vec<Decision>),
    /// A proof of lock relayed: prevotes of other members for one value in one round
    /// (the `2f+1 <PREVOTE, h, vr, id(v)>` that a proposal with `validRound = vr` needs,
    /// line 28), which a node that missed them when they were first sent cannot prevote
    /// without. Each is signed by its voter; at most one per member.
    Polka(Vec<Vote>),
}

impl Message {
    /// Everything the driver checks before the core sees the message: signers are
    /// members and the sender (for votes), proposals come from their round's proposer,
    /// signatures and commit certificates verify, payloads within the limit.
    pub fn verify(
        &self,
        from: NodeId,
        committee: &Committee,
        scheme: SignatureScheme,
        proposers: &ProposerSchedule,
        config: &Config,
    ) -> Result<(), InvalidMessage> {
        match self {
            Message::Proposal(p) => p.verify(committee, proposers, config),
            Message::Vote(v) => {
                if v.voter != from {
                    return Err(InvalidMessage::Author);
                }
                v.verify(committee, scheme)
            }
            Message::SyncRequest { .. } => Ok(()),
            Message::Polka(votes) => {
                let Some(first) = votes.first() else {
                    return Err(InvalidMessage::Malformed);
                };
                let mut voters: Vec<NodeId> = votes.iter().map(|v| v.voter).collect();
                voters.sort();
                voters.dedup();
                let same = votes.iter().all(|v| {
                    (v.kind, v.height, v.round, v.value)
                        == (VoteKind::Prevote, first.height, first.round, first.value)
                });
                if voters.len() != votes.len()
                    || votes.len() > committee.size()
                    || !same
                    || first.value.is_none()
                {
                    return Err(InvalidMessage::Malformed);
                }
                votes.iter().try_for_each(|v| v.verify(committee, scheme))
            }
            Message::SyncReply(decisions) => {
                if decisions.is_empty() || decisions.len() > MAX_SYNC_DECISIONS {
                    return Err(InvalidMessage::Malformed);
                }
                let consecutive = decisions
                    .windows(2)
                    .all(|w| w[0].height().checked_add(1) == Some(w[1].height()));
                if !consecutive {
                    return Err(InvalidMessage::Malformed);
                }
                decisions
                    .iter()
                    .try_for_each(|d| d.verify(committee, scheme, config))
            }
        }
    }

    /// The height this message is about (`None` for sync traffic).
    pub fn height(&self) -> Option<u64> {
        match self {
            Message::Proposal(p) => Some(p.height),
            Message::Vote(v) => Some(v.height),
            Message::Polka(votes) => votes.first().map(|v| v.height),
            _ => None,
        }
    }
}
