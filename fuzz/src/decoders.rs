//! Decoder targets: the bounded codec, frames, the mempool's messages and batches, and
//! state-transfer messages. Each decodes the input the way production does and checks
//! the result against an oracle written here; a broken oracle panics with a message
//! starting `oracle:`, which the runner counts apart from production panics.

use crate::fixture::{self, committee, max_message};
use bytes::{Bytes, BytesMut};
use consensus::linearizer::Committed;
use consensus::transfer::{TransferMessage, CHANNEL_TRANSFER};
use mempool::{
    check_batch, decode_batch, encode_batch, Batch, Certificate, Header, MempoolMessage, Vote,
};
use network::{FrameCodec, FrameError};
use primitives::codec;
use primitives::crypto::{ed25519, PartialSignature, QuorumCertificate, SignatureScheme};
use primitives::{Digest, NodeId, Round, View, WorkerId};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use tokio_util::codec::Decoder;

/// Inputs the codec accepted whose re-encoding differs from the input (a value with
/// two encodings: bincode accepts non-minimal varints). Not a failure; reported.
pub static NON_CANONICAL: AtomicU64 = AtomicU64::new(0);
/// The first such input, as (type tag + bytes).
pub static NON_CANONICAL_EXAMPLE: Mutex<Option<Vec<u8>>> = Mutex::new(None);

fn note_non_canonical(input: &[u8]) {
    NON_CANONICAL.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut e) = NON_CANONICAL_EXAMPLE.lock() {
        if e.is_none() {
            *e = Some(input.to_vec());
        }
    }
}

/// Decode `bytes` as `T`; if it decodes, re-encode and note a second encoding.
fn decode_and_reencode<T>(input: &[u8], bytes: &[u8]) -> Option<T>
where
    T: serde::de::DeserializeOwned + serde::Serialize,
{
    let value = codec::decode::<T>(bytes, max_message()).ok()?;
    match codec::encode(&value) {
        Ok(again) if again == bytes => {}
        Ok(_) => note_non_canonical(input),
        Err(e) => panic!("oracle: a decoded value does not encode again: {e}"),
    }
    Some(value)
}

/// Wire types of `primitives`, selected by the input's first byte.
const CODEC_TYPES: u8 = 6;

/// `primitives::codec::decode` of the wire types of `primitives` (the first byte picks
/// the type: quorum certificate, partial signature, digest, ids, a payload list, a
/// digest list with an optional signature). Oracle: anything decoded encodes again (and a different re-encoding is
/// counted in [`NON_CANONICAL`]); a decoded quorum certificate is checked against the
/// committee without panicking.
pub fn codec(data: &[u8]) {
    let Some((&tag, body)) = data.split_first() else {
        return;
    };
    match tag % CODEC_TYPES {
        0 => {
            if let Some(qc) = decode_and_reencode::<QuorumCertificate>(data, body) {
                let (c, _) = committee();
                let _ = qc.verify(c, b"fuzz", c.quorum_threshold());
                let _ = qc.signers(c);
            }
        }
        1 => {
            if let Some(p) = decode_and_reencode::<PartialSignature>(data, body) {
                let _ = p.verify(&committee().0, NodeId(1), b"fuzz");
            }
        }
        2 => {
            let _ = decode_and_reencode::<Digest>(data, body);
        }
        3 => {
            let _ = decode_and_reencode::<(NodeId, Round, View, WorkerId)>(data, body);
        }
        4 => {
            let _ = decode_and_reencode::<Vec<(Digest, Round)>>(data, body);
        }
        _ => {
            // No wire type carries a `String` (it is decoded into an owned buffer, which
            // bincode sizes by the claimed length): a list and an optional signature.
            let _ = decode_and_reencode::<(Vec<Digest>, Option<ed25519::Signature>)>(data, body);
        }
    }
}

/// Valid encodings for [`codec`].
pub fn codec_seeds() -> Vec<Vec<u8>> {
    let tagged = |tag: u8, bytes: Result<Vec<u8>, codec::CodecError>| {
        let mut out = vec![tag];
        out.extend(bytes.unwrap_or_default());
        out
    };
    let mut seeds = Vec::new();
    for scheme in [SignatureScheme::Ed25519, SignatureScheme::Bls] {
        if let Some(c) = fixture::certify(fixture::header(1, 3, vec![]), scheme) {
            seeds.push(tagged(0, codec::encode(&c.votes)));
        }
        let (_, keys) = committee();
        let h = fixture::header(2, 1, vec![]);
        let v = Vote::new(&keys[1], NodeId(1), &h, scheme);
        seeds.push(tagged(1, codec::encode(&v.signature)));
    }
    seeds.push(tagged(2, codec::encode(&Digest::of(b"fuzz"))));
    seeds.push(tagged(
        3,
        codec::encode(&(NodeId(3), Round(300), View(70_000), WorkerId(2))),
    ));
    seeds.push(tagged(
        4,
        codec::encode(&vec![
            (Digest::of(b"a"), Round(1)),
            (Digest::of(b"b"), Round(260)),
        ]),
    ));
    seeds.push(tagged(
        5,
        codec::encode(&("fuzz".to_string(), Some(ed25519::Signature([7; 64])))),
    ));
    seeds
}

/// Frame limits the frame target runs with: the production default and small ones
/// that short inputs can exceed.
fn frame_limit(selector: u8) -> usize {
    match selector % 4 {
        0 => max_message(),
        1 => 16,
        2 => 255,
        _ => 1024,
    }
}

/// How a stream of frames ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Clean,
    Oversized,
    Truncated,
}

/// Frames read independently of tokio-util: a 4-byte big-endian length, the payload.
fn reference_frames(stream: &[u8], limit: usize) -> (Vec<Vec<u8>>, End) {
    let mut frames = Vec::new();
    let mut rest = stream;
    loop {
        if rest.is_empty() {
            return (frames, End::Clean);
        }
        let Some((head, body)) = rest.split_first_chunk::<4>() else {
            return (frames, End::Truncated);
        };
        let len = u32::from_be_bytes(*head) as usize;
        if len > limit {
            return (frames, End::Oversized);
        }
        if body.len() < len {
            return (frames, End::Truncated);
        }
        frames.push(body[..len].to_vec());
        rest = &body[len..];
    }
}

/// `network::FrameCodec` (tokio-util's length-delimited codec) fed the input as a
/// stream in chunks of input-chosen sizes, then ended. The first byte picks the frame
/// limit, the second the chunking. Oracle: the frames, and how the stream ended (clean,
/// oversized, truncated), equal an independent reading of the stream.
pub fn frames(data: &[u8]) {
    let [limit_sel, chunk_sel, stream @ ..] = data else {
        return;
    };
    let limit = frame_limit(*limit_sel);
    let mut codec = FrameCodec::new(limit);
    let mut buf = BytesMut::new();
    let mut got: Vec<Vec<u8>> = Vec::new();
    let mut end = None;
    let mut at = 0;
    let mut step = 0usize;
    'feed: while at < stream.len() {
        // Chunk sizes cycle through a pattern the second byte chooses (1 byte at a time
        // up to the whole stream).
        let size = match chunk_sel % 4 {
            0 => stream.len(),
            1 => 1,
            2 => 1 + (step * 7 + *chunk_sel as usize) % 13,
            _ => 1 + (step * 131 + *chunk_sel as usize) % 600,
        };
        step += 1;
        let next = (at + size).min(stream.len());
        buf.extend_from_slice(&stream[at..next]);
        at = next;
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => got.push(frame.to_vec()),
                Ok(None) => break,
                Err(FrameError::Oversized) => {
                    end = Some(End::Oversized);
                    break 'feed;
                }
                Err(e) => panic!("oracle: decode failed with {e}, not a frame error"),
            }
        }
    }
    let end = match end {
        Some(e) => e,
        None => loop {
            match codec.decode_eof(&mut buf) {
                Ok(Some(frame)) => got.push(frame.to_vec()),
                Ok(None) => break End::Clean,
                Err(FrameError::Oversized) => break End::Oversized,
                Err(FrameError::Truncated) => break End::Truncated,
                Err(e) => panic!("oracle: decode_eof failed with {e}"),
            }
        },
    };
    let (want, want_end) = reference_frames(stream, limit);
    for f in &got {
        if f.len() > limit {
            panic!(
                "oracle: a frame of {} bytes passed the limit {limit}",
                f.len()
            );
        }
    }
    if got != want {
        panic!(
            "oracle: frames differ from the independent reading ({} vs {})",
            got.len(),
            want.len()
        );
    }
    if end != want_end {
        panic!(
            "oracle: the stream's end is judged {end:?}, an independent reading says {want_end:?}"
        );
    }
}

/// Valid streams for [`frames`]: a few frames each, under each limit.
pub fn frame_seeds() -> Vec<Vec<u8>> {
    let frame = |payload: &[u8]| {
        let mut out = (payload.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(payload);
        out
    };
    let mut seeds = Vec::new();
    for sel in 0..4u8 {
        for chunk in [0u8, 1, 2, 3] {
            let mut s = vec![sel, chunk];
            s.extend(frame(b"hello"));
            s.extend(frame(b""));
            s.extend(frame(&[7u8; 12]));
            if sel != 1 {
                s.extend(frame(&[1u8; 200]));
            }
            seeds.push(s);
        }
    }
    seeds
}

/// What a mempool message carries, checked like a primary checks it (without panics).
fn check_mempool_message(m: &MempoolMessage) {
    let (c, _) = committee();
    match m {
        MempoolMessage::Batch { batch, .. } => {
            let ours = decode_batch(batch, max_message()).ok();
            let theirs = codec::decode::<Batch>(batch, max_message()).ok();
            if ours != theirs {
                panic!("oracle: decode_batch disagrees with the codec");
            }
        }
        MempoolMessage::Header(h) => {
            let _ = h.verify_signature(c);
            let _ = h.check_weak_parents(c);
            let _ = h.digest();
        }
        MempoolMessage::Vote(v) => {
            let _ = v
                .signature
                .verify(c, v.voter, &Vote::signing_message(&v.header));
        }
        MempoolMessage::Certificate(cert) => {
            let _ = cert.verify(c, SignatureScheme::Ed25519);
        }
        MempoolMessage::Certificates(list)
        | MempoolMessage::CertificateRange {
            certificates: list, ..
        } => {
            for cert in list {
                let _ = cert.verify(c, SignatureScheme::Ed25519);
            }
        }
        MempoolMessage::BatchRequest { .. }
        | MempoolMessage::CertificatesRequest(_)
        | MempoolMessage::CertificateRangeRequest { .. } => {}
    }
}

/// `mempool::MempoolMessage::decode` (the zero-copy batch fast path, else the codec)
/// within the production limit, then the checks a primary makes (signatures,
/// certificates, the batch inside a batch message). Oracle: the result equals
/// `codec::decode::<MempoolMessage>` (its documented contract).
pub fn mempool_message(data: &[u8]) {
    let body = Bytes::copy_from_slice(data);
    let ours = MempoolMessage::decode(&body, max_message());
    let theirs = codec::decode::<MempoolMessage>(&body, max_message());
    if ours.as_ref().ok() != theirs.as_ref().ok() {
        panic!("oracle: MempoolMessage::decode disagrees with the codec");
    }
    if let Ok(m) = ours {
        check_mempool_message(&m);
    }
}

/// Valid encodings of every mempool message variant.
pub fn mempool_message_seeds() -> Vec<Vec<u8>> {
    let (_, keys) = committee();
    let certs = fixture::certificates(2, SignatureScheme::Ed25519);
    let bls = fixture::certificates(1, SignatureScheme::Bls);
    let header = fixture::header(
        1,
        2,
        certs.iter().take(3).map(Certificate::digest).collect(),
    );
    let mut messages = vec![
        MempoolMessage::Batch {
            worker: WorkerId(0),
            batch: Bytes::from(encode_batch(&fixture::batch(7)).unwrap_or_default()),
        },
        MempoolMessage::Batch {
            worker: WorkerId(300),
            batch: Bytes::from(encode_batch(&fixture::batch(0)).unwrap_or_default()),
        },
        MempoolMessage::BatchRequest {
            worker: WorkerId(1),
            digests: vec![Digest::of(b"x"), Digest::of(b"y")],
        },
        MempoolMessage::Header(header.clone()),
        // A round-3 header with a weak link to a round-1 certificate.
        MempoolMessage::Header(Header::with_weak_parents(
            &keys[3],
            NodeId(3),
            Round(3),
            vec![],
            vec![header.digest()],
            certs
                .first()
                .map(|c| (c.round(), c.digest()))
                .into_iter()
                .collect(),
        )),
        MempoolMessage::Vote(Vote::new(
            &keys[2],
            NodeId(2),
            &header,
            SignatureScheme::Ed25519,
        )),
        MempoolMessage::Vote(Vote::new(
            &keys[3],
            NodeId(3),
            &header,
            SignatureScheme::Bls,
        )),
        MempoolMessage::CertificatesRequest(certs.iter().map(Certificate::digest).collect()),
        MempoolMessage::CertificateRangeRequest {
            from: Round(1),
            to: Round(9),
        },
        MempoolMessage::Certificates(certs.clone()),
        MempoolMessage::CertificateRange {
            gc_round: Round(0),
            certificates: certs.iter().take(4).cloned().collect(),
        },
    ];
    messages.extend(
        certs
            .iter()
            .take(2)
            .cloned()
            .map(MempoolMessage::Certificate),
    );
    messages.extend(bls.into_iter().take(1).map(MempoolMessage::Certificate));
    messages
        .iter()
        .filter_map(|m| codec::encode(m).ok())
        .collect()
}

/// `mempool::decode_batch` within the production limit. Oracle: it accepts exactly
/// what `codec::decode::<Batch>` accepts, with the same value (its documented contract).
pub fn mempool_batch(data: &[u8]) {
    let body = Bytes::copy_from_slice(data);
    let ours = decode_batch(&body, max_message()).ok();
    let theirs = codec::decode::<Batch>(&body, max_message()).ok();
    if ours != theirs {
        panic!("oracle: decode_batch disagrees with the codec");
    }
    // The in-place check a worker runs accepts exactly what decodes.
    let checked = check_batch(&body, max_message(), usize::MAX).ok();
    if checked != ours.map(|b| b.transactions.len()) {
        panic!("oracle: check_batch disagrees with decode_batch");
    }
}

/// Valid batch encodings.
pub fn mempool_batch_seeds() -> Vec<Vec<u8>> {
    [0, 1, 2, 6, 13]
        .iter()
        .filter_map(|n| encode_batch(&fixture::batch(*n)).ok())
        .collect()
}

/// A state-transfer frame decoded the way the driver decodes it (channel byte, then
/// `codec::decode::<TransferMessage>` within the message limit). Oracle: a decoded
/// message encodes again.
pub fn transfer(data: &[u8]) {
    let Some((&channel, body)) = data.split_first() else {
        return;
    };
    if channel != CHANNEL_TRANSFER {
        return;
    }
    if let Ok(m) = codec::decode::<TransferMessage>(body, max_message()) {
        if let Err(e) = codec::encode(&m) {
            panic!("oracle: a decoded transfer message does not encode again: {e}");
        }
        if let TransferMessage::Entries { entries } = &m {
            let mut chain = Digest::default();
            for e in entries {
                chain = consensus::linearizer::chain_after(&chain, e);
                let _ = e
                    .certificate
                    .verify(&committee().0, SignatureScheme::Ed25519);
            }
        }
    }
}

/// Valid encodings of every state-transfer message.
pub fn transfer_seeds() -> Vec<Vec<u8>> {
    let certs = fixture::certificates(1, SignatureScheme::Ed25519);
    let entries: Vec<Committed> = certs
        .iter()
        .enumerate()
        .map(|(i, c)| Committed {
            position: i as u64,
            certificate: c.clone(),
            block: Digest::of(b"block"),
            height: 3,
            duplicates: if i == 0 {
                vec![Digest::of(b"dup")]
            } else {
                vec![]
            },
            committed_round: Round(0),
            anchor_round: Round(1),
            chain: Digest::of(&[i as u8]),
        })
        .collect();
    let messages = [
        TransferMessage::StatusRequest,
        TransferMessage::Status {
            next_position: 300,
            floor: 2,
        },
        TransferMessage::Fetch { from: 70_000 },
        TransferMessage::Entries { entries },
        TransferMessage::VouchRequest { position: 5 },
        TransferMessage::Vouch {
            position: 5,
            chain: Some(Digest::of(b"c")),
        },
        TransferMessage::Vouch {
            position: 6,
            chain: None,
        },
    ];
    messages
        .iter()
        .filter_map(|m| {
            let mut out = vec![CHANNEL_TRANSFER];
            out.extend(codec::encode(m).ok()?);
            Some(out)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frame_oracle_reads_valid_streams() {
        for s in frame_seeds() {
            frames(&s);
        }
    }

    #[test]
    fn seeds_decode() {
        for s in mempool_message_seeds() {
            assert!(MempoolMessage::decode(&Bytes::from(s), max_message()).is_ok());
        }
        for s in transfer_seeds() {
            assert!(codec::decode::<TransferMessage>(&s[1..], max_message()).is_ok());
        }
    }
}
