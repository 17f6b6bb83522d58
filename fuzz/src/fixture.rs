//! What every target is built from: a four-member committee with its keys, the
//! production message limit, and valid signed mempool values.

use bytes::Bytes;
use mempool::{Batch, Certificate, Header, Vote};
use primitives::crypto::{KeyPair, QuorumCertificate, SignatureScheme};
use primitives::{Committee, Digest, NodeId, Round, WorkerId};
use std::sync::{Arc, OnceLock};

/// Members of the fuzzed committee.
pub const MEMBERS: usize = 4;

/// The committee and its keys (deterministic: committee seed 5).
pub fn committee() -> &'static (Arc<Committee>, Vec<KeyPair>) {
    static COMMITTEE: OnceLock<(Arc<Committee>, Vec<KeyPair>)> = OnceLock::new();
    COMMITTEE.get_or_init(|| {
        match Committee::generate(MEMBERS, 1, &["127.0.0.1".into()], 9000, Some(5)) {
            Ok((c, k)) => (Arc::new(c), k),
            // Generation from fixed, valid arguments cannot fail; a broken build of
            // primitives would, and then no target can run.
            Err(e) => panic!("fixture committee: {e}"),
        }
    })
}

/// The largest message the driver and the mempool accept: the default
/// `network.max_frame_size`, which `consensus::node` passes as the driver's
/// `max_message`.
pub fn max_message() -> usize {
    primitives::Parameters::default().network.max_frame_size
}

/// A signed header of `round` by member `author` with some payload and parents.
pub fn header(author: usize, round: u64, parents: Vec<Digest>) -> Header {
    let (_, keys) = committee();
    let payload = (0..(round % 3) as u8)
        .map(|i| (Digest::of(&[i, round as u8]), WorkerId(i as u16)))
        .collect();
    Header::new(
        &keys[author],
        NodeId(author as u16),
        Round(round),
        payload,
        parents,
    )
}

/// A certificate of `header` with a quorum of `scheme` votes.
pub fn certify(header: Header, scheme: SignatureScheme) -> Option<Certificate> {
    let (committee, keys) = committee();
    let shares: Vec<_> = keys
        .iter()
        .enumerate()
        .take(3)
        .map(|(i, k)| {
            let v = Vote::new(k, NodeId(i as u16), &header, scheme);
            (v.voter, v.signature)
        })
        .collect();
    let votes = QuorumCertificate::from_shares(committee, scheme, &shares).ok()?;
    Some(Certificate { header, votes })
}

/// A few rounds of a DAG: one certificate per member and round, each with the
/// previous round's certificates as parents.
pub fn certificates(rounds: u64, scheme: SignatureScheme) -> Vec<Certificate> {
    let mut out: Vec<Certificate> = Vec::new();
    let mut previous: Vec<Digest> = Vec::new();
    for round in 1..=rounds {
        let mut this = Vec::new();
        for author in 0..MEMBERS {
            if let Some(c) = certify(header(author, round, previous.clone()), scheme) {
                this.push(c.digest());
                out.push(c);
            }
        }
        previous = this;
    }
    out
}

/// A batch of `count` transactions of assorted lengths (across varint widths).
pub fn batch(count: usize) -> Batch {
    Batch {
        transactions: (0..count)
            .map(|i| Bytes::from(vec![i as u8; [0, 1, 17, 250, 251, 300][i % 6]]))
            .collect(),
    }
}
