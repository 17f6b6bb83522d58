//! The error type of the primitives crate.

use std::path::PathBuf;

/// Everything that can go wrong in this crate. Each variant carries enough
/// context to print a one-line message a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file in question.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A TOML file did not parse into the expected structure.
    #[error("{path}: {message}")]
    Parse {
        /// The file in question (empty when parsing a string).
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// A committee is not usable (empty, duplicate members, zero weight, bad key, bad proof of possession).
    #[error("invalid committee: {0}")]
    InvalidCommittee(String),
    /// Parameters are out of their allowed range.
    #[error("invalid parameters: {0}")]
    InvalidParameters(String),
    /// A key or signature did not decode.
    #[error("malformed {what}")]
    Malformed {
        /// What was being decoded (for example "ed25519 public key").
        what: &'static str,
    },
    /// A signature did not verify.
    #[error("invalid signature")]
    InvalidSignature,
    /// A signer is not a member of the committee.
    #[error("unknown signer {0}")]
    UnknownSigner(crate::NodeId),
    /// The same signer appears twice in a quorum certificate.
    #[error("duplicate signer {0}")]
    DuplicateSigner(crate::NodeId),
    /// A quorum certificate's signers do not add up to the threshold.
    #[error("not enough weight: {got} < {needed}")]
    BelowThreshold {
        /// The weight of the valid signers.
        got: u64,
        /// The weight that was required.
        needed: u64,
    },
    /// A quorum certificate's signature scheme does not match the one in force.
    #[error("quorum certificate uses the wrong signature scheme")]
    WrongScheme,
    /// Wire bytes could not be encoded or decoded.
    #[error(transparent)]
    Codec(#[from] crate::codec::CodecError),
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
