//! The wire codec: serde + bincode 2 with explicit size limits.
//!
//! Guarantees, for any input bytes:
//! - [`decode`] never panics; it returns a [`CodecError`].
//! - Input longer than the caller's limit is refused before any decoding.
//! - No single decode claims more than [`HARD_LIMIT`] bytes: a length prefix that
//!   promises more (a hostile `Vec` or byte-string length) fails with
//!   [`CodecError::Decode`] before anything is allocated for it. Decoding borrows from
//!   the input, so a byte string read through `deserialize_bytes` is allocated only
//!   once the input is seen to hold it; a type that asks for an owned buffer (`String`,
//!   serde's own `Bytes`) still gets the claimed length allocated, up to the hard
//!   limit, before the input is found short. No wire type does: the mempool's byte
//!   strings go through `deserialize_bytes`.
//! - Bytes left over after the value are an error, so one value has one encoding.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The most any one decode may read or claim, whatever the caller's limit.
pub const HARD_LIMIT: usize = 64 << 20;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<HARD_LIMIT>()
}

/// Why bytes could not be encoded or decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    /// The input is longer than the limit the caller allows.
    #[error("message of {len} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// Input length.
        len: usize,
        /// The limit in force.
        limit: usize,
    },
    /// The bytes are not a valid encoding (truncated, bad tag, hostile length prefix).
    #[error("undecodable message: {0}")]
    Decode(String),
    /// A valid value was followed by extra bytes.
    #[error("{0} trailing bytes after message")]
    TrailingBytes(usize),
    /// The value could not be encoded (larger than the hard limit).
    #[error("cannot encode message: {0}")]
    Encode(String),
}

/// Encode a value.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    bincode::serde::encode_to_vec(value, config()).map_err(|e| CodecError::Encode(e.to_string()))
}

/// Encode a value at the end of `out` (after, say, a channel byte), with no
/// intermediate buffer.
pub fn encode_append<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    bincode::serde::encode_into_std_write(value, out, config())
        .map(|_| ())
        .map_err(|e| CodecError::Encode(e.to_string()))
}

/// Decode a value from exactly `bytes`, refusing input longer than `limit`.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], limit: usize) -> Result<T, CodecError> {
    if bytes.len() > limit.min(HARD_LIMIT) {
        return Err(CodecError::TooLarge {
            len: bytes.len(),
            limit: limit.min(HARD_LIMIT),
        });
    }
    // Borrowing from the input: a byte string or string is taken from the slice once
    // the slice is known to hold it, then copied; the owned decoder would allocate the
    // length its prefix claims (up to the hard limit) before finding the input short
    // (found by fuzzing: a 9-byte batch allocated 16 MiB).
    let (value, read) = bincode::serde::borrow_decode_from_slice::<T, _>(bytes, config())
        .map_err(|e| CodecError::Decode(e.to_string()))?;
    if read != bytes.len() {
        return Err(CodecError::TrailingBytes(bytes.len() - read));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{KeyPair, PartialSignature, QuorumCertificate, SignatureScheme};
    use crate::{Committee, Digest, NodeId};
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        round: u64,
        parents: Vec<Digest>,
        #[serde(with = "serde_bytes_compat")]
        payload: Vec<u8>,
        note: String,
    }

    /// Byte strings encoded as one length-prefixed blob (the way batches travel).
    mod serde_bytes_compat {
        use serde::{Deserializer, Serializer};
        pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(v)
        }
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
            struct V;
            impl serde::de::Visitor<'_> for V {
                type Value = Vec<u8>;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("bytes")
                }
                fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                    Ok(v.to_vec())
                }
                fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                    Ok(v)
                }
            }
            d.deserialize_byte_buf(V)
        }
    }

    fn sample() -> Sample {
        Sample {
            round: 7,
            parents: vec![Digest::of(b"a"), Digest::of(b"b")],
            payload: vec![1, 2, 3, 4, 5],
            note: "hello".into(),
        }
    }

    #[test]
    fn round_trips() {
        let bytes = encode(&sample()).unwrap();
        assert_eq!(decode::<Sample>(&bytes, 1 << 20).unwrap(), sample());

        let (committee, keys) = Committee::generate(4, 1, &["h".into()], 1000, Some(5)).unwrap();
        for scheme in [SignatureScheme::Ed25519, SignatureScheme::Bls] {
            let shares: Vec<_> = keys
                .iter()
                .enumerate()
                .map(|(i, k)| {
                    let share = match scheme {
                        SignatureScheme::Ed25519 => PartialSignature::Ed25519(
                            crate::crypto::ed25519::sign(&k.ed25519, b"m"),
                        ),
                        SignatureScheme::Bls => PartialSignature::Bls(k.bls.sign(b"m")),
                    };
                    (NodeId(i as u16), share)
                })
                .collect();
            let qc = QuorumCertificate::from_shares(&committee, scheme, &shares).unwrap();
            let back: QuorumCertificate = decode(&encode(&qc).unwrap(), 1 << 20).unwrap();
            assert_eq!(back, qc);
            back.verify(&committee, b"m", committee.quorum_threshold())
                .unwrap();
        }
        let _ = KeyPair::from_seed(&[0; 32]);
    }

    #[test]
    fn over_limit_length_prefix_is_refused_without_allocation() {
        // round = 7, then a Vec<Digest> claiming u64::MAX / 2 entries.
        let mut bytes = vec![7u8];
        bytes.push(253); // bincode varint marker: a u64 follows
        bytes.extend_from_slice(&(u64::MAX / 2).to_le_bytes());
        let err = decode::<Sample>(&bytes, 1 << 20).unwrap_err();
        assert!(matches!(err, CodecError::Decode(_)), "{err:?}");

        // A byte string claiming 1 TiB: refused by the claim limit before allocating.
        let mut bytes = encode(&7u64).unwrap();
        bytes.extend_from_slice(&[0]); // empty parents
        bytes.push(253);
        bytes.extend_from_slice(&(1u64 << 40).to_le_bytes());
        let err = decode::<Sample>(&bytes, 1 << 20).unwrap_err();
        assert!(matches!(err, CodecError::Decode(_)), "{err:?}");
    }

    #[test]
    fn limits_truncation_and_trailing_bytes() {
        let bytes = encode(&sample()).unwrap();
        assert!(matches!(
            decode::<Sample>(&bytes, 4),
            Err(CodecError::TooLarge { .. })
        ));
        for cut in 0..bytes.len() {
            assert!(decode::<Sample>(&bytes[..cut], 1 << 20).is_err());
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            decode::<Sample>(&longer, 1 << 20),
            Err(CodecError::TrailingBytes(1))
        );
    }

    #[test]
    fn garbage_never_panics() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
        for len in 0..2000 {
            let garbage: Vec<u8> = (0..len % 300).map(|_| rng.gen()).collect();
            let _ = decode::<Sample>(&garbage, 1 << 20);
            let _ = decode::<QuorumCertificate>(&garbage, 1 << 20);
        }
    }
}
