//! Crypto behaviour: batch verification, BLS aggregation over quorums, and the quorum
//! certificate's rejections.

use primitives::crypto::{
    bls, ed25519, KeyPair, PartialSignature, QuorumCertificate, SignatureScheme,
};
use primitives::{Committee, Error, NodeId, Weight};

fn committee(n: usize) -> (Committee, Vec<KeyPair>) {
    Committee::generate(n, 1, &["127.0.0.1".into()], 9000, Some(11)).unwrap()
}

fn shares(
    keys: &[KeyPair],
    who: &[usize],
    scheme: SignatureScheme,
    msg: &[u8],
) -> Vec<(NodeId, PartialSignature)> {
    who.iter()
        .map(|&i| {
            let s = match scheme {
                SignatureScheme::Ed25519 => {
                    PartialSignature::Ed25519(ed25519::sign(&keys[i].ed25519, msg))
                }
                SignatureScheme::Bls => PartialSignature::Bls(keys[i].bls.sign(msg)),
            };
            (NodeId(i as u16), s)
        })
        .collect()
}

#[test]
fn ed25519_batch_with_one_bad_signature_fails() {
    let keys: Vec<KeyPair> = (0..100u8).map(|i| KeyPair::from_seed(&[i; 32])).collect();
    let msgs: Vec<Vec<u8>> = (0..100u32).map(|i| i.to_le_bytes().to_vec()).collect();
    let vks: Vec<_> = keys.iter().map(|k| k.ed25519.verifying_key()).collect();
    let mut sigs: Vec<_> = keys
        .iter()
        .zip(&msgs)
        .map(|(k, m)| ed25519::sign(&k.ed25519, m))
        .collect();
    let refs: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
    ed25519::verify_batch(&vks, &refs, &sigs).unwrap();
    sigs[57] = ed25519::sign(&keys[57].ed25519, b"something else");
    assert!(matches!(
        ed25519::verify_batch(&vks, &refs, &sigs),
        Err(Error::InvalidSignature)
    ));
    // Single verification agrees on both.
    assert!(ed25519::verify(&vks[57], refs[57], &sigs[57]).is_err());
    ed25519::verify(&vks[56], refs[56], &sigs[56]).unwrap();
}

#[test]
fn bls_aggregate_over_any_quorum_verifies_and_fails_with_one_signer_swapped() {
    let (c, keys) = committee(7); // f = 2, quorum 5
    let msg = b"certificate digest";
    // Every 5-subset of 7 members.
    let mut quorums = 0;
    for mask in 0u32..(1 << 7) {
        if mask.count_ones() != 5 {
            continue;
        }
        let who: Vec<usize> = (0..7).filter(|i| mask & (1 << i) != 0).collect();
        let qc = QuorumCertificate::from_shares(
            &c,
            SignatureScheme::Bls,
            &shares(&keys, &who, SignatureScheme::Bls, msg),
        )
        .unwrap();
        qc.verify(&c, msg, c.quorum_threshold()).unwrap();
        assert!(qc
            .verify(&c, b"other message", c.quorum_threshold())
            .is_err());
        // Swap one signer in the bitmap for a non-signer: the aggregate no longer matches.
        if let QuorumCertificate::Bls { signers, signature } = &qc {
            let out = (0..7).find(|i| !who.contains(i)).unwrap();
            let mut swapped = signers.clone();
            swapped.0[0] &= !(1 << who[0]);
            swapped.0[0] |= 1 << out;
            let forged = QuorumCertificate::Bls {
                signers: swapped,
                signature: *signature,
            };
            assert!(matches!(
                forged.verify(&c, msg, c.quorum_threshold()),
                Err(Error::InvalidSignature)
            ));
        }
        quorums += 1;
    }
    assert_eq!(quorums, 21);
}

#[test]
fn quorum_certificate_rejects_below_threshold_duplicates_and_unknown() {
    let (c, keys) = committee(4); // quorum 3
    let msg = b"m";
    for scheme in [SignatureScheme::Ed25519, SignatureScheme::Bls] {
        let two = QuorumCertificate::from_shares(&c, scheme, &shares(&keys, &[0, 1], scheme, msg))
            .unwrap();
        assert!(matches!(
            two.verify(&c, msg, c.quorum_threshold()),
            Err(Error::BelowThreshold { got: 2, needed: 3 })
        ));
        two.verify(&c, msg, c.validity_threshold()).unwrap();
        let three =
            QuorumCertificate::from_shares(&c, scheme, &shares(&keys, &[0, 2, 3], scheme, msg))
                .unwrap();
        three.verify(&c, msg, c.quorum_threshold()).unwrap();
        assert_eq!(three.signers(&c), vec![NodeId(0), NodeId(2), NodeId(3)]);
    }
    // A forged ed25519 list repeating one signer to reach the threshold.
    let s = ed25519::sign(&keys[0].ed25519, msg);
    let t = ed25519::sign(&keys[1].ed25519, msg);
    let dup = QuorumCertificate::Ed25519(vec![(NodeId(0), s), (NodeId(1), t), (NodeId(1), t)]);
    assert!(matches!(
        dup.verify(&c, msg, c.quorum_threshold()),
        Err(Error::DuplicateSigner(NodeId(1)))
    ));
    let unsorted = QuorumCertificate::Ed25519(vec![(NodeId(1), t), (NodeId(0), s), (NodeId(1), t)]);
    assert!(unsorted.verify(&c, msg, c.quorum_threshold()).is_err());
    let unknown = QuorumCertificate::Ed25519(vec![(NodeId(0), s), (NodeId(1), t), (NodeId(9), t)]);
    assert!(matches!(
        unknown.verify(&c, msg, c.quorum_threshold()),
        Err(Error::UnknownSigner(NodeId(9)))
    ));
    // One bad signature in an otherwise full list.
    let u = ed25519::sign(&keys[2].ed25519, b"not m");
    let bad = QuorumCertificate::Ed25519(vec![(NodeId(0), s), (NodeId(1), t), (NodeId(2), u)]);
    assert!(matches!(
        bad.verify(&c, msg, c.quorum_threshold()),
        Err(Error::InvalidSignature)
    ));
    // A BLS bitmap with a bit beyond the committee, or of the wrong length.
    let qc = QuorumCertificate::from_shares(
        &c,
        SignatureScheme::Bls,
        &shares(&keys, &[0, 1, 2], SignatureScheme::Bls, msg),
    )
    .unwrap();
    if let QuorumCertificate::Bls {
        mut signers,
        signature,
    } = qc
    {
        signers.0[0] |= 1 << 6;
        let q = QuorumCertificate::Bls {
            signers: signers.clone(),
            signature,
        };
        assert!(matches!(
            q.verify(&c, msg, c.quorum_threshold()),
            Err(Error::Malformed { .. })
        ));
        signers.0.push(0);
        let q = QuorumCertificate::Bls { signers, signature };
        assert!(matches!(
            q.verify(&c, msg, c.quorum_threshold()),
            Err(Error::Malformed { .. })
        ));
    }
    // Mixed schemes are refused when building.
    let mut mixed = shares(&keys, &[0, 1], SignatureScheme::Bls, msg);
    mixed.extend(shares(&keys, &[2], SignatureScheme::Ed25519, msg));
    assert!(matches!(
        QuorumCertificate::from_shares(&c, SignatureScheme::Bls, &mixed),
        Err(Error::WrongScheme)
    ));
    let _ = Weight(0);
}

#[test]
fn bls_single_signatures_and_proofs_of_possession() {
    let k = KeyPair::from_seed(&[1; 32]);
    let other = KeyPair::from_seed(&[2; 32]);
    let sig = k.bls.sign(b"hello");
    k.bls_public_key().verify(b"hello", &sig).unwrap();
    assert!(other.bls_public_key().verify(b"hello", &sig).is_err());
    // A signature is not a proof of possession and vice versa (separate domain tags).
    let pop = k.bls.proof_of_possession();
    k.bls_public_key().verify_proof_of_possession(&pop).unwrap();
    assert!(k
        .bls_public_key()
        .verify(&k.bls_public_key().to_bytes(), &pop)
        .is_err());
    assert!(other
        .bls_public_key()
        .verify_proof_of_possession(&pop)
        .is_err());
    // Malformed encodings are errors, not panics.
    assert!(bls::PublicKey::from_bytes(&[0xff; 48]).is_err());
    assert!(bls::Signature::from_bytes(&[0x11; 96]).is_err());
}
