//! Wire types of the mempool: batches, headers, votes, certificates, and the messages
//! that carry them.

use bytes::Bytes;
use primitives::codec::{self, CodecError};
use primitives::crypto::{ed25519, KeyPair, PartialSignature, QuorumCertificate, SignatureScheme};
use primitives::{Committee, Digest, Hasher, NodeId, Round, WorkerId};
use serde::{Deserialize, Serialize};

/// A batch of client transactions, as sealed by a worker. Its identity is the digest of
/// its encoding ([`encode_batch`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// The transactions, in arrival order.
    pub transactions: Vec<Bytes>,
}

/// Encode a batch for the wire and the store.
pub fn encode_batch(batch: &Batch) -> Result<Vec<u8>, CodecError> {
    codec::encode(batch)
}

/// Decode a batch (at most `limit` bytes).
pub fn decode_batch(bytes: &[u8], limit: usize) -> Result<Batch, CodecError> {
    codec::decode(bytes, limit)
}

/// A primary's proposal for one round: batch digests and a quorum of parents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Who proposed it.
    pub author: NodeId,
    /// Its round (1 and up; round 0 is genesis).
    pub round: Round,
    /// Batch digests and the worker (shard) holding each.
    pub payload: Vec<(Digest, WorkerId)>,
    /// Digests of certificates of round `round - 1`.
    pub parents: Vec<Digest>,
    /// The author's ed25519 signature over [`Header::signing_message`].
    pub signature: ed25519::Signature,
}

impl Header {
    /// The header's identity: a hash of everything but the signature.
    pub fn digest(&self) -> Digest {
        let mut h = Hasher::new();
        h.update(b"bftlab.header.v1")
            .update_u64(self.author.0 as u64)
            .update_u64(self.round.0)
            .update_u64(self.payload.len() as u64);
        for (digest, worker) in &self.payload {
            h.update(digest.as_bytes()).update_u64(worker.0 as u64);
        }
        h.update_u64(self.parents.len() as u64);
        for parent in &self.parents {
            h.update(parent.as_bytes());
        }
        h.finalize()
    }

    /// What the author signs.
    pub fn signing_message(digest: &Digest) -> Vec<u8> {
        [b"bftlab.header.sig.v1".as_slice(), digest.as_bytes()].concat()
    }

    /// Build and sign a header.
    pub fn new(
        key: &KeyPair,
        author: NodeId,
        round: Round,
        payload: Vec<(Digest, WorkerId)>,
        parents: Vec<Digest>,
    ) -> Header {
        let mut header = Header {
            author,
            round,
            payload,
            parents,
            signature: ed25519::Signature([0; 64]),
        };
        header.signature = ed25519::sign(&key.ed25519, &Self::signing_message(&header.digest()));
        header
    }

    /// Check the author is a member and signed this header.
    pub fn verify_signature(&self, committee: &Committee) -> Result<(), crate::Rejection> {
        let member = committee
            .member(self.author)
            .ok_or(crate::Rejection::UnknownAuthor)?;
        ed25519::verify(
            member.verifying_key(),
            &Self::signing_message(&self.digest()),
            &self.signature,
        )
        .map_err(|_| crate::Rejection::BadSignature)
    }
}

/// A vote for a header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    /// The header voted for.
    pub header: Digest,
    /// Its round.
    pub round: Round,
    /// Its author.
    pub origin: NodeId,
    /// The voter.
    pub voter: NodeId,
    /// The voter's signature share over [`Vote::signing_message`].
    pub signature: PartialSignature,
}

impl Vote {
    /// What voters sign: a domain tag and the header digest.
    pub fn signing_message(header: &Digest) -> Vec<u8> {
        [b"bftlab.vote.v1".as_slice(), header.as_bytes()].concat()
    }

    /// A vote by `voter` for `header`.
    pub fn new(key: &KeyPair, voter: NodeId, header: &Header, scheme: SignatureScheme) -> Vote {
        let digest = header.digest();
        let message = Self::signing_message(&digest);
        let signature = match scheme {
            SignatureScheme::Ed25519 => {
                PartialSignature::Ed25519(ed25519::sign(&key.ed25519, &message))
            }
            SignatureScheme::Bls => PartialSignature::Bls(key.bls.sign(&message)),
        };
        Vote {
            header: digest,
            round: header.round,
            origin: header.author,
            voter,
            signature,
        }
    }
}

/// A header with a quorum of votes: proof that a quorum stored its payload and checked
/// its parents. Its digest is its header's digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    /// The certified header.
    pub header: Header,
    /// The quorum of votes over the header's digest.
    pub votes: QuorumCertificate,
}

impl Certificate {
    /// The certificate's identity (= its header's digest).
    pub fn digest(&self) -> Digest {
        self.header.digest()
    }

    /// Its round.
    pub fn round(&self) -> Round {
        self.header.round
    }

    /// Its author.
    pub fn author(&self) -> NodeId {
        self.header.author
    }

    /// The genesis certificates (round 0, one per member, no payload, no signatures).
    pub fn genesis(committee: &Committee) -> Vec<Certificate> {
        committee
            .ids()
            .map(|author| Certificate {
                header: Header {
                    author,
                    round: Round(0),
                    payload: vec![],
                    parents: vec![],
                    signature: ed25519::Signature([0; 64]),
                },
                votes: QuorumCertificate::Ed25519(vec![]),
            })
            .collect()
    }

    /// Check the header's signature and that a quorum of the committee voted for it
    /// under `scheme`. Genesis certificates are not verifiable this way (they are known).
    pub fn verify(
        &self,
        committee: &Committee,
        scheme: SignatureScheme,
    ) -> Result<(), crate::Rejection> {
        if self.round() == Round(0) {
            return Err(crate::Rejection::TooOld);
        }
        if self.votes.scheme() != scheme {
            return Err(crate::Rejection::BadSignature);
        }
        self.header.verify_signature(committee)?;
        self.votes
            .verify(
                committee,
                &Vote::signing_message(&self.digest()),
                committee.quorum_threshold(),
            )
            .map_err(|_| crate::Rejection::BadSignature)
    }
}

/// Everything mempools say to each other.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MempoolMessage {
    /// A batch for the receiving node's worker `worker` to store (sent reliably; the
    /// acknowledgement means "stored").
    Batch {
        /// The worker (shard) index.
        worker: WorkerId,
        /// The encoded batch.
        batch: Bytes,
    },
    /// Ask the receiving node's worker `worker` for these batches.
    BatchRequest {
        /// The worker (shard) index.
        worker: WorkerId,
        /// The batches wanted.
        digests: Vec<Digest>,
    },
    /// A header to vote on.
    Header(Header),
    /// A vote for the receiver's header.
    Vote(Vote),
    /// A new certificate.
    Certificate(Certificate),
    /// Ask for these certificates.
    CertificatesRequest(Vec<Digest>),
    /// Ask for every certificate the receiver holds of rounds `from..=to`.
    CertificateRangeRequest {
        /// First round wanted.
        from: Round,
        /// Last round wanted.
        to: Round,
    },
    /// Certificates sent in reply to a request.
    Certificates(Vec<Certificate>),
    /// Reply to a range request: the certificates held, and the sender's
    /// garbage-collection round (it holds nothing at or below it).
    CertificateRange {
        /// The sender's garbage-collection round.
        gc_round: Round,
        /// The certificates, lowest rounds first.
        certificates: Vec<Certificate>,
    },
}
