//! Quorum certificates: proof that a weighted quorum signed one message.

use super::{bls, ed25519};
use crate::committee::Committee;
use crate::error::{Error, Result};
use crate::ids::{NodeId, Weight};
use serde::{Deserialize, Serialize};

/// Which signature scheme votes and quorum certificates use. Chosen by
/// `Parameters::signature_scheme`; every member of a committee must use the same one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SignatureScheme {
    /// A list of (signer, ed25519 signature): cheap to make, linear to check and ship.
    #[default]
    Ed25519,
    /// One aggregate BLS signature plus a signer bitmap: constant size, one pairing check.
    Bls,
}

/// One signer's share of a quorum certificate (a vote's signature).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PartialSignature {
    /// An ed25519 signature.
    Ed25519(ed25519::Signature),
    /// A BLS signature.
    Bls(bls::Signature),
}

impl PartialSignature {
    /// Verify this share as `signer`'s signature on `message`.
    pub fn verify(&self, committee: &Committee, signer: NodeId, message: &[u8]) -> Result<()> {
        let member = committee
            .member(signer)
            .ok_or(Error::UnknownSigner(signer))?;
        match self {
            PartialSignature::Ed25519(sig) => ed25519::verify(member.verifying_key(), message, sig),
            PartialSignature::Bls(sig) => member.bls_public_key.verify(message, sig),
        }
    }

    /// The scheme this share belongs to.
    pub fn scheme(&self) -> SignatureScheme {
        match self {
            PartialSignature::Ed25519(_) => SignatureScheme::Ed25519,
            PartialSignature::Bls(_) => SignatureScheme::Bls,
        }
    }
}

/// Which committee members signed, by their index in the committee's sorted member list.
/// On the wire it is exactly `ceil(n / 8)` bytes; a decoder checks that length.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignerBitmap(pub Vec<u8>);

impl SignerBitmap {
    /// An empty bitmap for a committee of `n` members.
    pub fn new(n: usize) -> Self {
        SignerBitmap(vec![0; n.div_ceil(8)])
    }
    /// Mark member index `i`.
    pub fn set(&mut self, i: usize) {
        if let Some(byte) = self.0.get_mut(i / 8) {
            *byte |= 1 << (i % 8);
        }
    }
    /// Whether member index `i` is marked.
    pub fn get(&self, i: usize) -> bool {
        self.0.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0)
    }
    /// Indices that are marked, in increasing order.
    pub fn indices(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.0.len() * 8).filter(|i| self.get(*i))
    }
}

/// Proof that members holding at least a threshold of weight signed one message.
///
/// [`QuorumCertificate::verify`] rejects unknown signers, duplicate signers, a signer
/// set below the threshold, a scheme other than the committee's, and any bad signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum QuorumCertificate {
    /// Individual ed25519 signatures, sorted by signer.
    Ed25519(Vec<(NodeId, ed25519::Signature)>),
    /// One aggregate BLS signature and who contributed to it.
    Bls {
        /// Which members signed.
        signers: SignerBitmap,
        /// The sum of their signatures.
        signature: bls::Signature,
    },
}

impl QuorumCertificate {
    /// Build a certificate from verified shares. The caller has checked each share
    /// (votes are verified when they arrive); shares of the wrong scheme or unknown
    /// signers are an error, duplicates of one signer are kept once.
    pub fn from_shares(
        committee: &Committee,
        scheme: SignatureScheme,
        shares: &[(NodeId, PartialSignature)],
    ) -> Result<Self> {
        let mut sorted: Vec<&(NodeId, PartialSignature)> = shares.iter().collect();
        sorted.sort_by_key(|(id, _)| *id);
        sorted.dedup_by_key(|(id, _)| *id);
        match scheme {
            SignatureScheme::Ed25519 => {
                let mut list = Vec::with_capacity(sorted.len());
                for (id, share) in sorted {
                    committee.member(*id).ok_or(Error::UnknownSigner(*id))?;
                    match share {
                        PartialSignature::Ed25519(sig) => list.push((*id, *sig)),
                        PartialSignature::Bls(_) => return Err(Error::WrongScheme),
                    }
                }
                Ok(QuorumCertificate::Ed25519(list))
            }
            SignatureScheme::Bls => {
                let mut signers = SignerBitmap::new(committee.size());
                let mut sigs = Vec::with_capacity(sorted.len());
                for (id, share) in sorted {
                    let index = committee.index_of(*id).ok_or(Error::UnknownSigner(*id))?;
                    match share {
                        PartialSignature::Bls(sig) => sigs.push(*sig),
                        PartialSignature::Ed25519(_) => return Err(Error::WrongScheme),
                    }
                    signers.set(index);
                }
                Ok(QuorumCertificate::Bls {
                    signers,
                    signature: bls::Signature::aggregate(&sigs),
                })
            }
        }
    }

    /// The scheme of this certificate.
    pub fn scheme(&self) -> SignatureScheme {
        match self {
            QuorumCertificate::Ed25519(_) => SignatureScheme::Ed25519,
            QuorumCertificate::Bls { .. } => SignatureScheme::Bls,
        }
    }

    /// The signers, in increasing id order. Does not check signatures.
    pub fn signers(&self, committee: &Committee) -> Vec<NodeId> {
        match self {
            QuorumCertificate::Ed25519(list) => list.iter().map(|(id, _)| *id).collect(),
            QuorumCertificate::Bls { signers, .. } => signers
                .indices()
                .filter_map(|i| committee.id_at(i))
                .collect(),
        }
    }

    /// Check that members with at least `threshold` weight, each at most once, signed
    /// `message` under the committee's keys.
    pub fn verify(&self, committee: &Committee, message: &[u8], threshold: Weight) -> Result<()> {
        match self {
            QuorumCertificate::Ed25519(list) => {
                let mut weight = Weight(0);
                let mut keys = Vec::with_capacity(list.len());
                let mut sigs = Vec::with_capacity(list.len());
                let mut previous: Option<NodeId> = None;
                for (id, sig) in list {
                    if let Some(prev) = previous {
                        if *id == prev {
                            return Err(Error::DuplicateSigner(*id));
                        }
                        if *id < prev {
                            return Err(Error::Malformed {
                                what: "quorum certificate signers out of order",
                            });
                        }
                    }
                    previous = Some(*id);
                    let member = committee.member(*id).ok_or(Error::UnknownSigner(*id))?;
                    weight += member.weight;
                    keys.push(*member.verifying_key());
                    sigs.push(*sig);
                }
                if weight < threshold {
                    return Err(Error::BelowThreshold {
                        got: weight.0,
                        needed: threshold.0,
                    });
                }
                let messages = vec![message; keys.len()];
                ed25519::verify_batch(&keys, &messages, &sigs)
            }
            QuorumCertificate::Bls { signers, signature } => {
                if signers.0.len() != committee.size().div_ceil(8) {
                    return Err(Error::Malformed {
                        what: "signer bitmap length",
                    });
                }
                let mut weight = Weight(0);
                let mut keys = Vec::new();
                for i in signers.indices() {
                    let id = committee.id_at(i).ok_or(Error::Malformed {
                        what: "signer bitmap (bit beyond committee)",
                    })?;
                    let member = committee.member(id).ok_or(Error::UnknownSigner(id))?;
                    weight += member.weight;
                    keys.push(&member.bls_public_key);
                }
                if weight < threshold {
                    return Err(Error::BelowThreshold {
                        got: weight.0,
                        needed: threshold.0,
                    });
                }
                bls::verify_aggregate(keys, message, signature)
            }
        }
    }
}
