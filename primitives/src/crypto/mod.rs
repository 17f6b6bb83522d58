//! Signatures: ed25519 for identities and messages, BLS12-381 for aggregate quorum
//! certificates, and the [`QuorumCertificate`] type that holds either.

pub mod bls;
pub mod ed25519;
mod keys;
mod qc;
mod verified;

pub use keys::KeyPair;
pub use qc::{PartialSignature, QuorumCertificate, SignatureScheme, SignerBitmap};
pub use verified::{remember_verified, reserve_verified_memory};
