//! BLS signatures over BLS12-381 (public keys in G1, 48 bytes; signatures in G2, 96 bytes).
//!
//! Messages are hashed to G2 with the IETF hash-to-curve suite
//! `BLS12381G2_XMD:SHA-256_SSWU_RO_`. Signatures on one message by many signers
//! aggregate into one signature checked against the sum of the signers' keys; that sum
//! is only safe when every key has a checked proof of possession (a signature by the
//! key on itself under a separate domain tag), which [`crate::Committee`] checks on
//! load. That is the defence against rogue-key attacks.

use crate::error::{Error, Result};
use bls12_381::hash_to_curve::{ExpandMsgXmd, HashToCurve};
use bls12_381::{G1Affine, G1Projective, G2Affine, G2Prepared, G2Projective, Gt, Scalar};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Domain separation tag for signatures on protocol messages.
const SIGNATURE_DST: &[u8] = b"BFTLAB-V01-CS01-with-BLS12381G2_XMD:SHA-256_SSWU_RO_NUL_";
/// Domain separation tag for proofs of possession.
const POP_DST: &[u8] = b"BFTLAB-V01-CS01-with-BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";

/// A BLS secret key (a scalar).
#[derive(Clone)]
pub struct SecretKey(Scalar);

/// A BLS public key: a non-identity point of G1.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(G1Affine);

/// A BLS signature or aggregate signature: a point of G2.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(G2Affine);

fn hash_to_g2(message: &[u8], dst: &[u8]) -> G2Affine {
    G2Affine::from(<G2Projective as HashToCurve<
        ExpandMsgXmd<sha2_09::Sha256>,
    >>::hash_to_curve(message, dst))
}

impl SecretKey {
    /// Derive a secret key from 64 uniformly random bytes (reduced modulo the group order).
    pub fn from_wide_bytes(bytes: &[u8; 64]) -> Self {
        SecretKey(Scalar::from_bytes_wide(bytes))
    }

    /// Parse from the 32-byte canonical little-endian encoding.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self> {
        Option::<Scalar>::from(Scalar::from_bytes(bytes))
            .filter(|s| *s != Scalar::zero())
            .map(SecretKey)
            .ok_or(Error::Malformed {
                what: "BLS secret key",
            })
    }

    /// The canonical 32-byte encoding.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(G1Affine::from(G1Affine::generator() * self.0))
    }

    /// Sign a protocol message.
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(G2Affine::from(hash_to_g2(message, SIGNATURE_DST) * self.0))
    }

    /// A proof of possession: this key's signature on its own public key, under the
    /// proof-of-possession domain tag.
    pub fn proof_of_possession(&self) -> Signature {
        let pk = self.public_key().to_bytes();
        Signature(G2Affine::from(hash_to_g2(&pk, POP_DST) * self.0))
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("bls::SecretKey(..)")
    }
}

/// Checks e(pk, H(m)) == e(g1, sig) with one multi-Miller loop.
fn pairing_check(pk: &G1Affine, h: &G2Affine, sig: &G2Affine) -> bool {
    let h = G2Prepared::from(*h);
    let sig = G2Prepared::from(*sig);
    let neg_g1 = -G1Affine::generator();
    bls12_381::multi_miller_loop(&[(pk, &h), (&neg_g1, &sig)]).final_exponentiation()
        == Gt::identity()
}

impl PublicKey {
    /// Compressed 48-byte encoding.
    pub fn to_bytes(&self) -> [u8; 48] {
        self.0.to_compressed()
    }

    /// Decode a compressed point; rejects non-points, points outside the prime-order
    /// subgroup, and the identity.
    pub fn from_bytes(bytes: &[u8; 48]) -> Result<Self> {
        Option::<G1Affine>::from(G1Affine::from_compressed(bytes))
            .filter(|p| !bool::from(p.is_identity()))
            .map(PublicKey)
            .ok_or(Error::Malformed {
                what: "BLS public key",
            })
    }

    /// Parse from hex (96 characters).
    pub fn from_hex(s: &str) -> Result<Self> {
        let mut out = [0u8; 48];
        hex::decode_to_slice(s.trim(), &mut out).map_err(|_| Error::Malformed {
            what: "BLS public key hex",
        })?;
        Self::from_bytes(&out)
    }

    /// Lower-case hex of the compressed encoding.
    pub fn to_hex(&self) -> String {
        hex::encode(self.to_bytes())
    }

    /// Verify a signature by this key on `message`.
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<()> {
        let id =
            super::verified::check_id(b"bls", &[&self.to_bytes(), message, &signature.to_bytes()]);
        super::verified::or_check(id, || {
            if pairing_check(&self.0, &hash_to_g2(message, SIGNATURE_DST), &signature.0) {
                Ok(())
            } else {
                Err(Error::InvalidSignature)
            }
        })
    }

    /// Verify a proof of possession for this key.
    pub fn verify_proof_of_possession(&self, proof: &Signature) -> Result<()> {
        if pairing_check(&self.0, &hash_to_g2(&self.to_bytes(), POP_DST), &proof.0) {
            Ok(())
        } else {
            Err(Error::InvalidSignature)
        }
    }

    /// The sum of public keys. Only meaningful for keys whose proofs of possession were checked.
    pub fn aggregate<'a>(keys: impl IntoIterator<Item = &'a PublicKey>) -> Result<PublicKey> {
        let mut sum = G1Projective::identity();
        let mut any = false;
        for key in keys {
            sum += key.0;
            any = true;
        }
        let sum = G1Affine::from(sum);
        if !any || bool::from(sum.is_identity()) {
            return Err(Error::InvalidSignature);
        }
        Ok(PublicKey(sum))
    }
}

impl Signature {
    /// Compressed 96-byte encoding.
    pub fn to_bytes(&self) -> [u8; 96] {
        self.0.to_compressed()
    }

    /// Decode a compressed point; rejects non-points and points outside the subgroup.
    pub fn from_bytes(bytes: &[u8; 96]) -> Result<Self> {
        Option::<G2Affine>::from(G2Affine::from_compressed(bytes))
            .map(Signature)
            .ok_or(Error::Malformed {
                what: "BLS signature",
            })
    }

    /// Parse from hex (192 characters).
    pub fn from_hex(s: &str) -> Result<Self> {
        let mut out = [0u8; 96];
        hex::decode_to_slice(s.trim(), &mut out).map_err(|_| Error::Malformed {
            what: "BLS signature hex",
        })?;
        Self::from_bytes(&out)
    }

    /// Lower-case hex of the compressed encoding.
    pub fn to_hex(&self) -> String {
        hex::encode(self.to_bytes())
    }

    /// The sum of signatures (all on the same message, for [`verify_aggregate`]).
    pub fn aggregate<'a>(signatures: impl IntoIterator<Item = &'a Signature>) -> Signature {
        let mut sum = G2Projective::identity();
        for sig in signatures {
            sum += sig.0;
        }
        Signature(G2Affine::from(sum))
    }
}

/// Verify an aggregate signature by all of `keys` on the same `message`.
pub fn verify_aggregate<'a>(
    keys: impl IntoIterator<Item = &'a PublicKey>,
    message: &[u8],
    signature: &Signature,
) -> Result<()> {
    PublicKey::aggregate(keys)?.verify(message, signature)
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bls::PublicKey({}..)", &self.to_hex()[..16])
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bls::Signature({}..)", &self.to_hex()[..16])
    }
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::fixed_bytes::serialize::<S, 48>(&self.to_bytes(), s)
    }
}
impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bytes = crate::fixed_bytes::deserialize::<D, 48>(d)?;
        PublicKey::from_bytes(&bytes).map_err(serde::de::Error::custom)
    }
}
impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::fixed_bytes::serialize::<S, 96>(&self.to_bytes(), s)
    }
}
impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bytes = crate::fixed_bytes::deserialize::<D, 96>(d)?;
        Signature::from_bytes(&bytes).map_err(serde::de::Error::custom)
    }
}
