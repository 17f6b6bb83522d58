#![allow(missing_docs)]
//! Micro-benchmarks: ed25519 verification (single, batch of 100) and BLS aggregate
//! verification by committee size. Names follow `module::op/key=value`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use primitives::crypto::{ed25519, KeyPair, PartialSignature, QuorumCertificate, SignatureScheme};
use primitives::{Committee, NodeId};

fn ed25519_benches(c: &mut Criterion) {
    // Time the checks themselves, not the memory of earlier successes.
    primitives::crypto::remember_verified(false);
    let keys: Vec<KeyPair> = (0..100u8).map(|i| KeyPair::from_seed(&[i; 32])).collect();
    let msg = primitives::Digest::of(b"vote").0;
    let vks: Vec<_> = keys.iter().map(|k| k.ed25519.verifying_key()).collect();
    let sigs: Vec<_> = keys
        .iter()
        .map(|k| ed25519::sign(&k.ed25519, &msg))
        .collect();
    let mut group = c.benchmark_group("ed25519");
    group.throughput(Throughput::Elements(1));
    group.bench_function("ed25519::verify/n=1", |b| {
        b.iter(|| ed25519::verify(&vks[0], &msg, &sigs[0]).unwrap())
    });
    group.throughput(Throughput::Elements(100));
    let msgs: Vec<&[u8]> = vec![&msg[..]; 100];
    group.bench_function("ed25519::verify_batch/n=100", |b| {
        b.iter(|| ed25519::verify_batch(&vks, &msgs, &sigs).unwrap())
    });
    group.finish();
}

fn bls_benches(c: &mut Criterion) {
    // Time the checks themselves, not the memory of earlier successes.
    primitives::crypto::remember_verified(false);
    let mut group = c.benchmark_group("bls");
    group.sample_size(20);
    for n in [4usize, 10, 50, 100] {
        let (committee, keys) =
            Committee::generate(n, 1, &["127.0.0.1".into()], 1000, Some(1)).unwrap();
        let msg = primitives::Digest::of(b"certificate").0;
        let quorum = committee.quorum_threshold().0 as usize;
        let shares: Vec<_> = keys[..quorum]
            .iter()
            .enumerate()
            .map(|(i, k)| (NodeId(i as u16), PartialSignature::Bls(k.bls.sign(&msg))))
            .collect();
        let qc = QuorumCertificate::from_shares(&committee, SignatureScheme::Bls, &shares).unwrap();
        group.bench_with_input(
            BenchmarkId::new("bls::verify_aggregate", format!("n={n}")),
            &qc,
            |b, qc| {
                b.iter(|| {
                    qc.verify(&committee, &msg, committee.quorum_threshold())
                        .unwrap()
                })
            },
        );
        let ed_shares: Vec<_> = keys[..quorum]
            .iter()
            .enumerate()
            .map(|(i, k)| {
                (
                    NodeId(i as u16),
                    PartialSignature::Ed25519(ed25519::sign(&k.ed25519, &msg)),
                )
            })
            .collect();
        let ed_qc =
            QuorumCertificate::from_shares(&committee, SignatureScheme::Ed25519, &ed_shares)
                .unwrap();
        group.bench_with_input(
            BenchmarkId::new("qc::verify_ed25519", format!("n={n}")),
            &ed_qc,
            |b, qc| {
                b.iter(|| {
                    qc.verify(&committee, &msg, committee.quorum_threshold())
                        .unwrap()
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, ed25519_benches, bls_benches);
criterion_main!(benches);
