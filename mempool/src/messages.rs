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
    #[serde(with = "checked_bytes::many")]
    pub transactions: Vec<Bytes>,
}

/// Byte strings decoded only once the input is seen to hold them: serde's `Bytes`
/// asks for an owned buffer, for which bincode allocates the length a prefix claims
/// (up to the codec's 64 MiB hard limit) before it reads the bytes, so a 9-byte input
/// could cost 16 MiB (found by fuzzing). Here the bytes are borrowed from the input,
/// then copied. The encoding is unchanged (a length-prefixed byte string).
mod checked_bytes {
    use bytes::Bytes;
    use serde::de::{Deserializer, SeqAccess, Visitor};
    use serde::ser::Serializer;

    struct BytesVisitor;

    impl<'de> Visitor<'de> for BytesVisitor {
        type Value = Bytes;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a byte string")
        }
        fn visit_bytes<E>(self, v: &[u8]) -> Result<Bytes, E> {
            Ok(Bytes::copy_from_slice(v))
        }
        fn visit_borrowed_bytes<E>(self, v: &'de [u8]) -> Result<Bytes, E> {
            Ok(Bytes::copy_from_slice(v))
        }
        fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Bytes, E> {
            Ok(Bytes::from(v))
        }
    }

    /// One byte string.
    pub(super) fn serialize<S: Serializer>(v: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        d.deserialize_bytes(BytesVisitor)
    }

    /// A sequence of byte strings.
    pub(super) mod many {
        use super::*;
        use serde::ser::SerializeSeq;

        pub(in super::super) fn serialize<S: Serializer>(
            v: &[Bytes],
            s: S,
        ) -> Result<S::Ok, S::Error> {
            let mut seq = s.serialize_seq(Some(v.len()))?;
            // `Bytes` serializes as a byte string.
            for b in v {
                seq.serialize_element(b)?;
            }
            seq.end()
        }

        struct One(Bytes);

        impl<'de> serde::Deserialize<'de> for One {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<One, D::Error> {
                super::deserialize(d).map(One)
            }
        }

        struct ManyVisitor;

        impl<'de> Visitor<'de> for ManyVisitor {
            type Value = Vec<Bytes>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a sequence of byte strings")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Bytes>, A::Error> {
                // Every element takes at least one byte: a claimed count is not trusted
                // for more than a modest reservation.
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4_096));
                while let Some(One(b)) = seq.next_element()? {
                    out.push(b);
                }
                Ok(out)
            }
        }

        pub(in super::super) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Vec<Bytes>, D::Error> {
            d.deserialize_seq(ManyVisitor)
        }
    }
}

/// Encode a batch for the wire and the store.
pub fn encode_batch(batch: &Batch) -> Result<Vec<u8>, CodecError> {
    // Sized up front (a length prefix takes at most 9 bytes): growing a vector of
    // hundreds of kilobytes copied it at every doubling, 1-2 % of `bftlab local`'s CPU.
    let payload: usize = batch.transactions.iter().map(Bytes::len).sum();
    let mut out = Vec::with_capacity(payload + 9 * (batch.transactions.len() + 1));
    codec::encode_append(batch, &mut out)?;
    Ok(out)
}

/// Decode a batch (at most `limit` bytes). The transactions share `bytes`' buffer: a
/// batch of hundreds of kilobytes is parsed without copying a transaction. Accepts
/// exactly the encodings [`codec::decode`] accepts (a test checks this on valid and
/// corrupted input) and, like it, never panics.
pub fn decode_batch(bytes: &Bytes, limit: usize) -> Result<Batch, CodecError> {
    let mut transactions = Vec::new();
    walk_batch(bytes, limit, |part| match part {
        BatchPart::Count(n) => transactions.reserve_exact(n),
        BatchPart::Transaction(span) => transactions.push(bytes.slice(span)),
    })?;
    Ok(Batch { transactions })
}

/// Check that `bytes` is a batch [`decode_batch`] accepts whose every transaction is at
/// most `max_transaction` bytes, without building it (no allocation): a worker checks
/// every batch it receives this way before storing it. Returns the number of
/// transactions; a transaction over the limit is [`BatchCheck::Oversized`].
pub fn check_batch(
    bytes: &[u8],
    limit: usize,
    max_transaction: usize,
) -> Result<usize, BatchCheck> {
    let mut oversized = false;
    let count = walk_batch(bytes, limit, |part| {
        if let BatchPart::Transaction(span) = part {
            oversized |= span.len() > max_transaction;
        }
    })
    .map_err(BatchCheck::Undecodable)?;
    if oversized {
        return Err(BatchCheck::Oversized);
    }
    Ok(count)
}

/// Why [`check_batch`] refused a batch.
#[derive(Debug)]
pub enum BatchCheck {
    /// Not a batch encoding (or over the size limit).
    Undecodable(CodecError),
    /// A transaction is larger than allowed.
    Oversized,
}

/// What [`walk_batch`] reports, in order.
enum BatchPart {
    /// The transaction count (first, once).
    Count(usize),
    /// One transaction's byte range.
    Transaction(std::ops::Range<usize>),
}

/// Parse a batch encoding (at most `limit` bytes), telling `each` its transaction count
/// and then every transaction's byte range, in order. Returns the count. Never panics.
fn walk_batch(
    bytes: &[u8],
    limit: usize,
    mut each: impl FnMut(BatchPart),
) -> Result<usize, CodecError> {
    let limit = limit.min(codec::HARD_LIMIT);
    if bytes.len() > limit {
        return Err(CodecError::TooLarge {
            len: bytes.len(),
            limit,
        });
    }
    let bad = |what: &str| CodecError::Decode(format!("batch: {what}"));
    let mut at = 0usize;
    let n = read_varint(bytes, &mut at).ok_or_else(|| bad("bad transaction count"))?;
    // Every transaction takes at least its one-byte length prefix, so a count beyond
    // the bytes left is a lie: refuse it before reserving anything for it.
    if n > (bytes.len() - at) as u64 {
        return Err(bad("transaction count exceeds the batch"));
    }
    let n = n as usize;
    each(BatchPart::Count(n));
    for _ in 0..n {
        let len = read_varint(bytes, &mut at).ok_or_else(|| bad("bad transaction length"))?;
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| at.checked_add(len))
            .filter(|end| *end <= bytes.len())
            .ok_or_else(|| bad("transaction runs past the end"))?;
        each(BatchPart::Transaction(at..end));
        at = end;
    }
    if at != bytes.len() {
        return Err(CodecError::TrailingBytes(bytes.len() - at));
    }
    Ok(n)
}

/// Read one unsigned integer in bincode 2's variable-length encoding (the standard
/// configuration's): below 251 one byte, else a marker byte (251, 252, 253 for 2, 4 or
/// 8 little-endian bytes). `None` if it is cut off or uses a marker for a wider type.
fn read_varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let first = *bytes.get(*at)?;
    let width = match first {
        0..=250 => {
            *at += 1;
            return Some(first as u64);
        }
        251 => 2,
        252 => 4,
        253 => 8,
        _ => return None,
    };
    let start = at.checked_add(1)?;
    let raw = bytes.get(start..start.checked_add(width)?)?;
    let mut le = [0u8; 8];
    le[..width].copy_from_slice(raw);
    *at = start + width;
    Some(u64::from_le_bytes(le))
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
    /// Digests of certificates of round `round - 1` (strong links: the header's votes
    /// for them, and the only edges the commit rules count).
    pub parents: Vec<Digest>,
    /// Weak links (DAG-Rider, Keidar et al., PODC 2021, Section 4): certificates of
    /// rounds below `round - 1`, each with its round, that the author held and that no
    /// certificate it held referenced. They carry no vote; they only put a certificate
    /// that formed too late to be anyone's strong parent into this header's causal
    /// history, so that it is ordered with it instead of never. At most the committee's
    /// size, distinct, of rounds 1 to `round - 2` (see [`Header::check_weak_parents`]).
    pub weak_parents: Vec<(Round, Digest)>,
    /// The author's ed25519 signature over [`Header::signing_message`].
    pub signature: ed25519::Signature,
    /// The digest, once read (see [`Header::digest`]).
    #[serde(skip)]
    digest: DigestCache,
}

/// A header's digest, computed the first time it is read. A header with 50 parents is
/// about 1.7 kB of hashing, and a node reads a certificate's digest a dozen times
/// between receiving it and executing it (checking, storing, indexing, ordering,
/// chaining), which made BLAKE3 a tenth of a 50-node simulation. Not on the wire (the
/// receiver computes its own), ignored by equality, copied by `clone`.
#[derive(Clone, Default)]
struct DigestCache(std::sync::OnceLock<Digest>);

impl PartialEq for DigestCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for DigestCache {}

impl std::fmt::Debug for DigestCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("..")
    }
}

impl Header {
    /// A header with a zero signature (genesis, tests, and what [`Header::new`] signs).
    pub fn unsigned(
        author: NodeId,
        round: Round,
        payload: Vec<(Digest, WorkerId)>,
        parents: Vec<Digest>,
        weak_parents: Vec<(Round, Digest)>,
    ) -> Header {
        Header {
            author,
            round,
            payload,
            parents,
            weak_parents,
            signature: ed25519::Signature([0; 64]),
            digest: DigestCache::default(),
        }
    }

    /// The header's identity: a hash of everything but the signature.
    ///
    /// Computed once and remembered (a clone keeps it): a header is not to be changed
    /// after its digest was read (build a new one, or call [`Header::forget_digest`]).
    /// Debug builds check this on every read.
    pub fn digest(&self) -> Digest {
        let digest = *self.digest.0.get_or_init(|| self.compute_digest());
        debug_assert_eq!(
            digest,
            self.compute_digest(),
            "a header changed after its digest was read"
        );
        digest
    }

    /// Forget the remembered digest, after changing a field (tests forging headers).
    pub fn forget_digest(&mut self) {
        self.digest = DigestCache::default();
    }

    fn compute_digest(&self) -> Digest {
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
        h.update_u64(self.weak_parents.len() as u64);
        for (round, parent) in &self.weak_parents {
            h.update_u64(round.0).update(parent.as_bytes());
        }
        h.finalize()
    }

    /// The structural rule for weak links, checkable without the DAG: at most the
    /// committee's size, no digest twice, none among the strong parents, and each of a
    /// round from 1 to `round - 2` (a certificate of `round - 1` is a strong parent or
    /// nothing).
    pub fn check_weak_parents(&self, committee: &Committee) -> Result<(), crate::Rejection> {
        if self.weak_parents.is_empty() {
            return Ok(());
        }
        if self.weak_parents.len() > committee.size() {
            return Err(crate::Rejection::BadParents);
        }
        let mut seen = std::collections::BTreeSet::new();
        for (round, digest) in &self.weak_parents {
            if round.0 == 0
                || round.0.saturating_add(2) > self.round.0
                || !seen.insert(*digest)
                || self.parents.contains(digest)
            {
                return Err(crate::Rejection::BadParents);
            }
        }
        Ok(())
    }

    /// Whether the payload names each batch once. A batch named twice would be delivered
    /// once by the executor, but the linearizer would take the second mention for a
    /// re-proposal of the first and skip both: voters refuse such a header.
    pub fn payload_is_distinct(&self) -> bool {
        let mut seen = std::collections::BTreeSet::new();
        self.payload.iter().all(|(d, _)| seen.insert(*d))
    }

    /// Every certificate this header links to, strong parents (of `round - 1`) and
    /// weak ones, with their rounds.
    pub fn all_parents(&self) -> impl Iterator<Item = (Round, &Digest)> + '_ {
        let previous = self.round.prev();
        self.parents
            .iter()
            .map(move |d| (previous, d))
            .chain(self.weak_parents.iter().map(|(r, d)| (*r, d)))
    }

    /// What the author signs.
    pub fn signing_message(digest: &Digest) -> Vec<u8> {
        [b"bftlab.header.sig.v1".as_slice(), digest.as_bytes()].concat()
    }

    /// Build and sign a header without weak links.
    pub fn new(
        key: &KeyPair,
        author: NodeId,
        round: Round,
        payload: Vec<(Digest, WorkerId)>,
        parents: Vec<Digest>,
    ) -> Header {
        Self::with_weak_parents(key, author, round, payload, parents, Vec::new())
    }

    /// Build and sign a header with weak links (see [`Header::weak_parents`]).
    pub fn with_weak_parents(
        key: &KeyPair,
        author: NodeId,
        round: Round,
        payload: Vec<(Digest, WorkerId)>,
        parents: Vec<Digest>,
        weak_parents: Vec<(Round, Digest)>,
    ) -> Header {
        let mut header = Header::unsigned(author, round, payload, parents, weak_parents);
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
                header: Header::unsigned(author, Round(0), vec![], vec![], vec![]),
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

impl MempoolMessage {
    /// Bytes the encoding will take, roughly (to size the buffer once).
    pub fn encoded_size_hint(&self) -> usize {
        match self {
            MempoolMessage::Batch { batch, .. } => batch.len() + 16,
            _ => 256,
        }
    }

    /// Decode a message from `body` (at most `limit` bytes). A batch keeps sharing
    /// `body`'s buffer instead of being copied out of it; everything else, and any
    /// input the fast path does not recognise, goes through [`codec::decode`], so the
    /// result is the same as `codec::decode(&body, limit)`.
    pub fn decode(body: &Bytes, limit: usize) -> Result<MempoolMessage, CodecError> {
        // Variant 0 is `Batch { worker, batch }`: worker as a varint (a u16: at most
        // the two-byte marker), then the batch's length and bytes.
        if body.len() <= limit.min(codec::HARD_LIMIT)
            && body.first() == Some(&0)
            && body.get(1).is_some_and(|b| *b <= 251)
        {
            let mut at = 1;
            if let (Some(worker), Some(len)) =
                (read_varint(body, &mut at), read_varint(body, &mut at))
            {
                if let (Ok(worker), true) = (u16::try_from(worker), len == (body.len() - at) as u64)
                {
                    return Ok(MempoolMessage::Batch {
                        worker: WorkerId(worker),
                        batch: body.slice(at..),
                    });
                }
            }
        }
        codec::decode(body, limit)
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
        #[serde(with = "checked_bytes")]
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn random_batch(rng: &mut impl Rng) -> Batch {
        let count = rng.gen_range(0..40);
        Batch {
            transactions: (0..count)
                .map(|_| {
                    // Lengths across every varint width bincode uses for them.
                    let len = match rng.gen_range(0..4) {
                        0 => rng.gen_range(0..251),
                        1 => rng.gen_range(251..70_000),
                        2 => 250,
                        _ => 251,
                    };
                    Bytes::from((0..len).map(|_| rng.gen::<u8>()).collect::<Vec<u8>>())
                })
                .collect(),
        }
    }

    #[test]
    fn weak_links_must_be_few_distinct_and_below_the_previous_round() {
        let hosts: Vec<String> = (0..4).map(|i| format!("node{i}")).collect();
        let (committee, keys) = Committee::generate(4, 1, &hosts, 7000, Some(1)).unwrap();
        let strong = vec![Digest::of(b"s")];
        let header = |round: u64, weak: Vec<(Round, Digest)>| {
            Header::with_weak_parents(
                &keys[0],
                NodeId(0),
                Round(round),
                vec![],
                strong.clone(),
                weak,
            )
        };
        let d = |i: u8| Digest::of(&[i]);
        let ok = header(5, vec![(Round(3), d(1)), (Round(1), d(2))]);
        assert_eq!(ok.check_weak_parents(&committee), Ok(()));
        assert!(ok.verify_signature(&committee).is_ok());
        // The weak links are signed: changing one breaks the signature.
        let mut forged = ok.clone();
        forged.weak_parents[0].0 = Round(2);
        forged.forget_digest();
        assert_eq!(
            forged.verify_signature(&committee),
            Err(crate::Rejection::BadSignature)
        );
        for bad in [
            header(5, vec![(Round(4), d(1))]), // the previous round: a strong parent
            header(5, vec![(Round(0), d(1))]), // genesis
            header(5, vec![(Round(2), d(1)), (Round(3), d(1))]), // twice
            header(5, vec![(Round(2), strong[0])]), // also a strong parent
            header(9, (0..5).map(|i| (Round(1), d(i))).collect()), // more than n
        ] {
            assert_eq!(
                bad.check_weak_parents(&committee),
                Err(crate::Rejection::BadParents)
            );
        }
        // A payload names each batch once.
        assert!(ok.payload_is_distinct());
        let mut twice = ok.clone();
        twice.payload = vec![
            (d(7), WorkerId(0)),
            (d(8), WorkerId(0)),
            (d(7), WorkerId(0)),
        ];
        assert!(!twice.payload_is_distinct());
    }

    #[test]
    fn zero_copy_batch_decoding_agrees_with_the_codec_on_valid_and_corrupted_input() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for round in 0..300 {
            let batch = random_batch(&mut rng);
            let bytes = Bytes::from(encode_batch(&batch).unwrap());
            assert_eq!(bytes, codec::encode(&batch).unwrap());
            assert_eq!(decode_batch(&bytes, usize::MAX).unwrap(), batch);
            // Corruptions: a flipped byte, a cut, an extension, a limit below the size.
            let mut variants: Vec<Vec<u8>> = Vec::new();
            if !bytes.is_empty() {
                let mut flipped = bytes.to_vec();
                let at = rng.gen_range(0..flipped.len().min(16));
                flipped[at] = rng.gen();
                variants.push(flipped);
                variants.push(bytes[..rng.gen_range(0..bytes.len())].to_vec());
            }
            let mut longer = bytes.to_vec();
            longer.push(rng.gen());
            variants.push(longer);
            for v in variants {
                let v = Bytes::from(v);
                let ours = decode_batch(&v, usize::MAX).ok();
                let theirs = codec::decode::<Batch>(&v, usize::MAX).ok();
                assert_eq!(ours, theirs, "round {round}: {:?}", &v[..v.len().min(12)]);
                // The allocation-free check accepts exactly what decodes.
                let checked = check_batch(&v, usize::MAX, usize::MAX).ok();
                assert_eq!(checked, ours.map(|b| b.transactions.len()));
            }
            // The per-transaction limit: the largest transaction passes at its size and
            // is refused one byte below it.
            if let Some(largest) = batch.transactions.iter().map(|t| t.len()).max() {
                assert!(check_batch(&bytes, usize::MAX, largest).is_ok());
                if largest > 0 {
                    assert!(matches!(
                        check_batch(&bytes, usize::MAX, largest - 1),
                        Err(BatchCheck::Oversized)
                    ));
                }
            }
            if bytes.len() > 1 {
                assert!(decode_batch(&bytes, bytes.len() - 1).is_err());
            }
        }
        // Hostile counts and lengths are refused before anything is reserved for them.
        for hostile in [
            vec![253, 255, 255, 255, 255, 255, 255, 255, 255],
            vec![1, 253, 255, 255, 255, 255, 255, 255, 255, 127],
            vec![255],
            vec![],
        ] {
            assert!(check_batch(&hostile, usize::MAX, usize::MAX).is_err());
            assert!(decode_batch(&Bytes::from(hostile), usize::MAX).is_err());
        }
    }

    #[test]
    fn a_batch_message_shares_its_frame_and_decodes_like_the_codec() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(8);
        for worker in [0u16, 7, 250, 251, 300, u16::MAX] {
            let batch = Bytes::from(encode_batch(&random_batch(&mut rng)).unwrap());
            let message = MempoolMessage::Batch {
                worker: WorkerId(worker),
                batch: batch.clone(),
            };
            let body = Bytes::from(codec::encode(&message).unwrap());
            let decoded = MempoolMessage::decode(&body, usize::MAX).unwrap();
            assert_eq!(decoded, message);
            if let MempoolMessage::Batch { batch: shared, .. } = decoded {
                // The same memory as the frame, not a copy.
                let offset = shared.as_ptr() as usize - body.as_ptr() as usize;
                assert_eq!(offset + shared.len(), body.len());
            }
            // Cut or extended frames are judged as the codec judges them.
            for v in [body[..body.len() - 1].to_vec(), [&body[..], &[0]].concat()] {
                let v = Bytes::from(v);
                assert_eq!(
                    MempoolMessage::decode(&v, usize::MAX).ok(),
                    codec::decode::<MempoolMessage>(&v, usize::MAX).ok()
                );
            }
            assert!(MempoolMessage::decode(&body, body.len() - 1).is_err());
        }
        let other = MempoolMessage::CertificatesRequest(vec![Digest([3; 32])]);
        let body = Bytes::from(codec::encode(&other).unwrap());
        assert_eq!(MempoolMessage::decode(&body, usize::MAX).unwrap(), other);
    }
}
