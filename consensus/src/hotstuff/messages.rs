//! HotStuff wire types: blocks, votes, quorum certificates, timeouts, timeout certificates.

use primitives::crypto::{ed25519, KeyPair, PartialSignature, QuorumCertificate, SignatureScheme};
use primitives::{Committee, Digest, Hasher, NodeId, Round, View};
use serde::{Deserialize, Serialize};

/// The digest of the genesis block (view 0), which every chain extends.
pub fn genesis_digest() -> Digest {
    Hasher::new().update(b"bftlab.hotstuff.genesis").finalize()
}

/// Why a HotStuff message failed verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidMessage {
    /// Signer or author not in the committee, or not the view's leader.
    #[error("wrong or unknown author")]
    Author,
    /// A signature, QC or TC did not verify.
    #[error("bad signature or certificate")]
    Signature,
    /// A limit was exceeded.
    #[error("oversized")]
    Oversized,
}

impl InvalidMessage {
    /// The reason, as the driver counts it.
    pub fn reason(&self) -> &'static str {
        match self {
            InvalidMessage::Author => "wrong or unknown author",
            InvalidMessage::Signature => "bad signature or certificate",
            InvalidMessage::Oversized => "oversized",
        }
    }
}

/// A quorum certificate for a block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Qc {
    /// The certified block.
    pub block: Digest,
    /// Its view.
    pub view: View,
    /// A quorum of votes over [`Vote::signing_message`].
    pub votes: QuorumCertificate,
}

impl Qc {
    /// The QC of the genesis block (needs no votes).
    pub fn genesis() -> Qc {
        Qc {
            block: genesis_digest(),
            view: View(0),
            votes: QuorumCertificate::Ed25519(vec![]),
        }
    }

    /// Check the votes (the genesis QC is valid by definition).
    pub fn verify(
        &self,
        committee: &Committee,
        scheme: SignatureScheme,
    ) -> Result<(), InvalidMessage> {
        if *self == Qc::genesis() {
            return Ok(());
        }
        if self.view == View(0) || self.votes.scheme() != scheme {
            return Err(InvalidMessage::Signature);
        }
        self.votes
            .verify(
                committee,
                &Vote::signing_message(&self.block, self.view),
                committee.quorum_threshold(),
            )
            .map_err(|_| InvalidMessage::Signature)
    }
}

/// A proposal: a block extending the block its QC certifies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// The proposer (the leader of `view`).
    pub author: NodeId,
    /// The view it is proposed in.
    pub view: View,
    /// The highest QC the proposer knew: certifies the parent.
    pub qc: Qc,
    /// When the previous view ended by timeout: its timeout certificate.
    pub tc: Option<Tc>,
    /// DAG certificates this block orders: digest and round (voters check the round
    /// against the certificate they hold).
    pub payload: Vec<(Digest, Round)>,
    /// The author's signature over [`Block::digest`].
    pub signature: ed25519::Signature,
}

impl Block {
    /// Identity: everything but the signature.
    pub fn digest(&self) -> Digest {
        let mut h = Hasher::new();
        h.update(b"bftlab.hotstuff.block")
            .update_u64(self.author.0 as u64)
            .update_u64(self.view.0)
            .update(self.qc.block.as_bytes())
            .update_u64(self.qc.view.0)
            .update_u64(self.tc.as_ref().map(|t| t.view.0 + 1).unwrap_or(0))
            .update_u64(self.payload.len() as u64);
        for (d, r) in &self.payload {
            h.update(d.as_bytes()).update_u64(r.0);
        }
        h.finalize()
    }

    /// The parent block (certified by `qc`).
    pub fn parent(&self) -> Digest {
        self.qc.block
    }

    /// Build and sign.
    pub fn new(
        keys: &KeyPair,
        author: NodeId,
        view: View,
        qc: Qc,
        tc: Option<Tc>,
        payload: Vec<(Digest, Round)>,
    ) -> Block {
        let mut block = Block {
            author,
            view,
            qc,
            tc,
            payload,
            signature: ed25519::Signature([0; 64]),
        };
        block.signature = ed25519::sign(&keys.ed25519, block.digest().as_bytes());
        block
    }

    /// Check the block on its own: payload within the limit, author leads its view, view
    /// above its QC's, signature, QC and TC verify.
    pub fn verify(
        &self,
        committee: &Committee,
        scheme: SignatureScheme,
        config: &super::Config,
    ) -> Result<(), InvalidMessage> {
        if self.payload.len() > config.max_block_payload {
            return Err(InvalidMessage::Oversized);
        }
        if config.leader_of(committee, self.view) != self.author || self.view <= self.qc.view {
            return Err(InvalidMessage::Author);
        }
        let member = committee
            .member(self.author)
            .ok_or(InvalidMessage::Author)?;
        ed25519::verify(
            member.verifying_key(),
            self.digest().as_bytes(),
            &self.signature,
        )
        .map_err(|_| InvalidMessage::Signature)?;
        self.qc.verify(committee, scheme)?;
        if let Some(tc) = &self.tc {
            tc.verify(committee)?;
        }
        Ok(())
    }
}

/// A vote for a block, sent to the next view's leader.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    /// The block.
    pub block: Digest,
    /// Its view.
    pub view: View,
    /// The voter.
    pub voter: NodeId,
    /// Signature share over [`Vote::signing_message`].
    pub signature: PartialSignature,
}

impl Vote {
    /// What a voter signs.
    pub fn signing_message(block: &Digest, view: View) -> Vec<u8> {
        let mut m = b"bftlab.hotstuff.vote".to_vec();
        m.extend_from_slice(block.as_bytes());
        m.extend_from_slice(&view.0.to_le_bytes());
        m
    }

    /// Sign a vote.
    pub fn new(
        keys: &KeyPair,
        voter: NodeId,
        block: Digest,
        view: View,
        scheme: SignatureScheme,
    ) -> Vote {
        let message = Self::signing_message(&block, view);
        let signature = match scheme {
            SignatureScheme::Ed25519 => {
                PartialSignature::Ed25519(ed25519::sign(&keys.ed25519, &message))
            }
            SignatureScheme::Bls => PartialSignature::Bls(keys.bls.sign(&message)),
        };
        Vote {
            block,
            view,
            voter,
            signature,
        }
    }
}

/// A replica gives up on `view`, reporting the highest QC it holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeout {
    /// The view given up.
    pub view: View,
    /// The sender's highest QC.
    pub high_qc: Qc,
    /// The sender.
    pub voter: NodeId,
    /// ed25519 over [`Timeout::signing_message`]`(view, high_qc.view)`.
    pub signature: ed25519::Signature,
}

impl Timeout {
    /// What a timeout signs: the view and the view of the sender's highest QC.
    pub fn signing_message(view: View, high_qc_view: View) -> Vec<u8> {
        let mut m = b"bftlab.hotstuff.timeout".to_vec();
        m.extend_from_slice(&view.0.to_le_bytes());
        m.extend_from_slice(&high_qc_view.0.to_le_bytes());
        m
    }

    /// Sign a timeout.
    pub fn new(keys: &KeyPair, voter: NodeId, view: View, high_qc: Qc) -> Timeout {
        let signature = ed25519::sign(&keys.ed25519, &Self::signing_message(view, high_qc.view));
        Timeout {
            view,
            high_qc,
            voter,
            signature,
        }
    }
}

/// A quorum of timeouts for one view: lets the next leader propose without a QC for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tc {
    /// The view that timed out.
    pub view: View,
    /// (signer, view of its highest QC, signature), sorted by signer.
    pub timeouts: Vec<(NodeId, View, ed25519::Signature)>,
}

impl Tc {
    /// The highest QC view any signer reported.
    pub fn high_qc_view(&self) -> View {
        self.timeouts
            .iter()
            .map(|(_, v, _)| *v)
            .max()
            .unwrap_or_default()
    }

    /// Check signers are distinct members with quorum weight, and every signature.
    pub fn verify(&self, committee: &Committee) -> Result<(), InvalidMessage> {
        if self.timeouts.len() > committee.size() {
            return Err(InvalidMessage::Oversized);
        }
        let mut previous: Option<NodeId> = None;
        let mut weight = primitives::Weight(0);
        for (signer, high_qc_view, signature) in &self.timeouts {
            if previous.is_some_and(|p| p >= *signer) || *high_qc_view >= self.view {
                return Err(InvalidMessage::Signature);
            }
            previous = Some(*signer);
            let member = committee.member(*signer).ok_or(InvalidMessage::Author)?;
            ed25519::verify(
                member.verifying_key(),
                &Timeout::signing_message(self.view, *high_qc_view),
                signature,
            )
            .map_err(|_| InvalidMessage::Signature)?;
            weight += member.weight;
        }
        if weight < committee.quorum_threshold() {
            return Err(InvalidMessage::Signature);
        }
        Ok(())
    }
}

/// Everything HotStuff replicas say to each other.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// A leader's proposal.
    Propose(Block),
    /// A vote, to the next leader.
    Vote(Vote),
    /// A timeout, to everyone.
    Timeout(Timeout),
    /// A timeout certificate, to everyone (so laggards move on).
    Tc(Tc),
    /// Ask for a block by digest and, in the reply, its ancestors above view `above`
    /// (the asker's last committed view: it needs nothing at or below it), as many as
    /// fit. Without the bound a reply carried 64 blocks where one or two were missing:
    /// at 50 members that was most of a run's bytes.
    SyncRequest {
        /// The block wanted.
        block: Digest,
        /// Ancestors at or below this view are not wanted.
        above: View,
    },
    /// A requested block first, then its ancestors, newest first; at most
    /// [`MAX_SYNC_CHAIN`] blocks.
    SyncReply(Vec<Block>),
}

/// Most blocks one [`Message::SyncReply`] carries.
pub const MAX_SYNC_CHAIN: usize = 64;

/// The leader of `view`: round-robin over the committee in id order, each leader
/// keeping `views_per_leader` consecutive views.
pub fn leader(committee: &Committee, view: View, views_per_leader: u64) -> NodeId {
    let n = committee.size().max(1) as u64;
    let slot = view.0 / views_per_leader.max(1);
    committee.id_at((slot % n) as usize).unwrap_or_default()
}

impl Message {
    /// Everything the driver checks before the core sees the message: authors are
    /// members (and a block's author leads its view), signatures, QCs and TCs verify,
    /// payload within `max_payload`.
    pub fn verify(
        &self,
        committee: &Committee,
        scheme: SignatureScheme,
        config: &super::Config,
    ) -> Result<(), InvalidMessage> {
        match self {
            Message::Propose(b) => b.verify(committee, scheme, config),
            Message::SyncReply(chain) => {
                if chain.is_empty() || chain.len() > MAX_SYNC_CHAIN {
                    return Err(InvalidMessage::Oversized);
                }
                chain
                    .iter()
                    .try_for_each(|b| b.verify(committee, scheme, config))
            }
            Message::Vote(v) => {
                if v.signature.scheme() != scheme {
                    return Err(InvalidMessage::Signature);
                }
                v.signature
                    .verify(committee, v.voter, &Vote::signing_message(&v.block, v.view))
                    .map_err(|e| match e {
                        primitives::Error::UnknownSigner(_) => InvalidMessage::Author,
                        _ => InvalidMessage::Signature,
                    })
            }
            Message::Timeout(t) => {
                let member = committee.member(t.voter).ok_or(InvalidMessage::Author)?;
                if t.high_qc.view >= t.view {
                    return Err(InvalidMessage::Signature);
                }
                ed25519::verify(
                    member.verifying_key(),
                    &Timeout::signing_message(t.view, t.high_qc.view),
                    &t.signature,
                )
                .map_err(|_| InvalidMessage::Signature)?;
                t.high_qc.verify(committee, scheme)
            }
            Message::Tc(tc) => tc.verify(committee),
            Message::SyncRequest { .. } => Ok(()),
        }
    }
}
