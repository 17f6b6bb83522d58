//! Ed25519 signing and verification (ed25519-dalek).
//!
//! Single signatures are checked with `verify_strict` (rejects small-order keys and
//! non-canonical encodings). Lists of signatures are checked with dalek's batch
//! verification. For honestly made signatures it agrees with the single check with
//! overwhelming probability, but it is not strict: a signer can give its signature a
//! small-order component that `verify_strict` refuses and a batch accepts about half
//! the time (the batch's coefficients depend on its contents). Such a signer spoils only
//! its own share, and every honest node runs the same check on the same certificate, so
//! acceptance does not depend on which node looks. What must agree across nodes is
//! therefore checked in the same grouping everywhere (a certificate's list as a whole).

use crate::error::{Error, Result};
use crate::fixed_bytes::fixed_bytes_newtype;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};

/// An ed25519 public key as it travels and is stored (32 bytes, compressed Edwards point).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(pub [u8; 32]);
fixed_bytes_newtype!(PublicKey, 32);

/// An ed25519 signature (64 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; 64]);
fixed_bytes_newtype!(Signature, 64);

impl PublicKey {
    /// Decode into a verifying key; fails on bytes that are not a point, or on a weak
    /// (small-order) key, which no honest member would use.
    pub fn verifying_key(&self) -> Result<VerifyingKey> {
        let key = VerifyingKey::from_bytes(&self.0).map_err(|_| Error::Malformed {
            what: "ed25519 public key",
        })?;
        if key.is_weak() {
            return Err(Error::Malformed {
                what: "ed25519 public key (weak)",
            });
        }
        Ok(key)
    }

    /// Parse from hex (64 characters).
    pub fn from_hex(s: &str) -> Result<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s.trim(), &mut out).map_err(|_| Error::Malformed {
            what: "ed25519 public key hex",
        })?;
        Ok(PublicKey(out))
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl From<&VerifyingKey> for PublicKey {
    fn from(key: &VerifyingKey) -> Self {
        PublicKey(key.to_bytes())
    }
}

/// Sign `message` with `key`.
pub fn sign(key: &SigningKey, message: &[u8]) -> Signature {
    Signature(key.sign(message).to_bytes())
}

/// Verify one signature (a repeat of a check that succeeded costs one hash; see
/// `verified`).
pub fn verify(key: &VerifyingKey, message: &[u8], signature: &Signature) -> Result<()> {
    let id = super::verified::check_id(b"ed25519", &[key.as_bytes(), message, &signature.0]);
    super::verified::or_check(id, || {
        let sig = ed25519_dalek::Signature::from_bytes(&signature.0);
        key.verify_strict(message, &sig)
            .map_err(|_| Error::InvalidSignature)
    })
}

/// Verify many signatures at once (each item may have its own message and key).
/// Fails if any one of them is invalid; it does not say which.
pub fn verify_batch(
    keys: &[VerifyingKey],
    messages: &[&[u8]],
    signatures: &[Signature],
) -> Result<()> {
    if keys.len() != messages.len() || keys.len() != signatures.len() {
        return Err(Error::InvalidSignature);
    }
    let mut parts: Vec<&[u8]> = Vec::with_capacity(keys.len() * 3);
    for ((k, m), s) in keys.iter().zip(messages).zip(signatures) {
        parts.push(k.as_bytes());
        parts.push(m);
        parts.push(&s.0);
    }
    let id = super::verified::check_id(b"ed25519-batch", &parts);
    super::verified::or_check(id, || {
        let sigs: Vec<ed25519_dalek::Signature> = signatures
            .iter()
            .map(|s| ed25519_dalek::Signature::from_bytes(&s.0))
            .collect();
        ed25519_dalek::verify_batch(messages, &sigs, keys).map_err(|_| Error::InvalidSignature)
    })
}
