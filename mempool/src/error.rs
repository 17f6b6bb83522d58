//! Errors and rejection reasons of the mempool.

use crate::store::StoreError;
use serde::Serialize;

/// Why a message from the network was not accepted. Every rejection is counted in
/// [`crate::MempoolMetrics`] under its reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum Rejection {
    /// The bytes did not decode as a mempool message.
    #[error("undecodable message")]
    Undecodable,
    /// The author or signer is not a committee member (or the worker index is unknown).
    #[error("unknown author")]
    UnknownAuthor,
    /// A signature or quorum certificate did not verify.
    #[error("bad signature")]
    BadSignature,
    /// The round is at or below the garbage-collection horizon.
    #[error("round too old")]
    TooOld,
    /// The round is too far ahead of this node's round.
    #[error("round too far ahead")]
    TooFarAhead,
    /// A header's parents do not add up to a quorum, or are not of the previous round.
    #[error("parents below quorum or of the wrong round")]
    BadParents,
    /// A second, different header from one author in one round (evidence recorded).
    #[error("equivocating header")]
    Equivocation,
    /// A payload, batch or reply exceeds its size limit.
    #[error("oversized")]
    Oversized,
    /// A vote that does not match the header it claims to vote for.
    #[error("unexpected vote")]
    UnexpectedVote,
    /// A header for a round this node already voted past.
    #[error("already voted in a later round")]
    StaleHeader,
    /// A message of a kind the sender has no business sending (e.g. a batch to the wrong worker).
    #[error("malformed")]
    Malformed,
    /// A buffer of waiting items was full and the item was dropped.
    #[error("buffer full")]
    BufferFull,
    /// A request asked for more than one reply may carry; the rest is not served.
    #[error("reply over its byte budget")]
    OverBudget,
}

impl Rejection {
    /// Every reason, in a fixed order.
    pub const ALL: [Rejection; 13] = [
        Rejection::Undecodable,
        Rejection::UnknownAuthor,
        Rejection::BadSignature,
        Rejection::TooOld,
        Rejection::TooFarAhead,
        Rejection::BadParents,
        Rejection::Equivocation,
        Rejection::Oversized,
        Rejection::UnexpectedVote,
        Rejection::StaleHeader,
        Rejection::Malformed,
        Rejection::BufferFull,
        Rejection::OverBudget,
    ];
}

/// Errors that stop a mempool component.
#[derive(Debug, thiserror::Error)]
pub enum MempoolError {
    /// The store failed; safety state could not be persisted, so the node must stop.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The transport could not start.
    #[error(transparent)]
    Network(#[from] network::NetworkError),
    /// A message could not be encoded.
    #[error(transparent)]
    Codec(#[from] primitives::codec::CodecError),
    /// Configuration problem.
    #[error("{0}")]
    Config(String),
}
