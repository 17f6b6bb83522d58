//! A Byzantine member (real key, raw transport) injects every kind of bad input; the
//! honest nodes reject and count each one and keep making rounds.

mod common;

use bytes::Bytes;
use common::*;
use mempool::{Certificate, Header, MempoolMessage, CHANNEL_MEMPOOL};
use network::{Environment, Network, NetworkConfig};
use primitives::crypto::{ed25519, QuorumCertificate};
use primitives::{codec, Digest, NodeId, Round, WorkerId};
use std::collections::BTreeMap;
use std::time::Duration;

fn frame(message: &MempoolMessage) -> Bytes {
    let mut v = vec![CHANNEL_MEMPOOL];
    v.extend(codec::encode(message).unwrap());
    v.into()
}

#[test]
fn every_bad_input_is_rejected_and_counted_while_rounds_continue() {
    let cluster = Cluster::new(4, 5, parameters());
    let mut sim = cluster.builder(Duration::from_secs(60)).build();
    for i in 0..3 {
        cluster.add_node(&mut sim, i);
        cluster.add_client(&mut sim, i, i, 300, 512, Duration::from_secs(20));
    }
    let committee = cluster.committee.clone();
    let key = cluster.keys[3].clone();
    let network_parameters = cluster.parameters.network.clone();
    sim.host(host(3), move || {
        let committee = committee.clone();
        let key = key.clone();
        let network_parameters = network_parameters.clone();
        async move {
            let port: u16 = committee
                .member(NodeId(3))
                .unwrap()
                .primary
                .rsplit_once(':')
                .unwrap()
                .1
                .parse()?;
            let (net, mut rx) = Network::start(NetworkConfig {
                id: NodeId(3),
                key: key.ed25519.clone(),
                committee: committee.clone(),
                parameters: network_parameters,
                environment: Environment::Turmoil,
                bind: format!("0.0.0.0:{port}").parse()?,
                rng_seed: Some([3; 32]),
                twins: Default::default(),
            })
            .await?;
            let sender = net.sender();
            // Listen to the honest nodes for a while to learn real certificates.
            let mut rounds: BTreeMap<Round, Vec<Certificate>> = BTreeMap::new();
            while turmoil::sim_elapsed().unwrap_or_default() < Duration::from_secs(8) {
                if let Ok(Some(m)) =
                    tokio::time::timeout(Duration::from_millis(50), rx.recv()).await
                {
                    if let Ok(MempoolMessage::Certificate(c)) =
                        codec::decode::<MempoolMessage>(&m.payload[1..], 1 << 24)
                    {
                        rounds.entry(c.round()).or_default().push(c);
                    }
                }
            }
            let (&r, certs) = rounds.iter().rev().find(|(_, c)| c.len() >= 3).unwrap();

            let parents: Vec<Digest> = certs.iter().map(|c| c.digest()).collect();
            let older: Vec<Digest> = rounds[&r.prev()].iter().map(|c| c.digest()).collect();
            let honest = [NodeId(0), NodeId(1), NodeId(2)];
            let mut attacks: Vec<MempoolMessage> = Vec::new();
            // Bad signature.
            let mut h = Header::new(&key, NodeId(3), r.next(), vec![], parents.clone());
            h.signature.0[0] ^= 1;
            attacks.push(MempoolMessage::Header(h));
            // Unknown author.
            attacks.push(MempoolMessage::Header(Header::new(
                &key,
                NodeId(9),
                r.next(),
                vec![],
                parents.clone(),
            )));
            // Too old, too far ahead.
            attacks.push(MempoolMessage::Header(Header::new(
                &key,
                NodeId(3),
                Round(1),
                vec![],
                vec![],
            )));
            attacks.push(MempoolMessage::Header(Header::new(
                &key,
                NodeId(3),
                Round(r.0 + 5_000),
                vec![],
                parents.clone(),
            )));
            // Parents below quorum (round r with one parent of round r - 1).
            attacks.push(MempoolMessage::Header(Header::new(
                &key,
                NodeId(3),
                r,
                vec![],
                vec![older[0]],
            )));
            // Equivocation: two different headers for round r + 1.
            let h1 = Header::new(&key, NodeId(3), r.next(), vec![], parents.clone());
            let h2 = Header::new(
                &key,
                NodeId(3),
                r.next(),
                vec![(Digest::of(b"x"), WorkerId(0))],
                parents.clone(),
            );
            attacks.push(MempoolMessage::Header(h1.clone()));
            attacks.push(MempoolMessage::Header(h2));
            // Oversized payload.
            let payload: Vec<_> = (0..1_001u32)
                .map(|i| (Digest::of(&i.to_be_bytes()), WorkerId(0)))
                .collect();
            attacks.push(MempoolMessage::Header(Header::new(
                &key,
                NodeId(3),
                Round(r.0 + 2),
                payload,
                parents.clone(),
            )));
            // Weak links (each in a round of its own, so none is an equivocation): of the
            // previous round; a real certificate under a false round; more than n.
            let real = certs[0].digest();
            for (round, weak) in [
                (r.0 + 3, vec![(Round(r.0 + 2), real)]),
                (r.0 + 4, vec![(r.prev(), real)]),
                (
                    r.0 + 5,
                    (0..5u8).map(|i| (r.prev(), Digest::of(&[i]))).collect(),
                ),
            ] {
                attacks.push(MempoolMessage::Header(Header::with_weak_parents(
                    &key,
                    NodeId(3),
                    Round(round),
                    vec![],
                    parents.clone(),
                    weak,
                )));
            }
            // A certificate whose "quorum" is one signature.
            let sig = ed25519::sign(&key.ed25519, &mempool::Vote::signing_message(&h1.digest()));
            attacks.push(MempoolMessage::Certificate(Certificate {
                header: h1,
                votes: QuorumCertificate::Ed25519(vec![(NodeId(3), sig)]),
            }));
            // An oversized batch and a request to a worker that does not exist.
            attacks.push(MempoolMessage::Batch {
                worker: WorkerId(0),
                batch: Bytes::from(vec![1u8; 300_000]),
            });
            attacks.push(MempoolMessage::BatchRequest {
                worker: WorkerId(7),
                digests: vec![],
            });
            for attack in &attacks {
                for peer in honest {
                    let _ = sender.send(peer, frame(attack));
                }
            }
            // Undecodable bytes on the mempool channel, and on an unknown channel.
            for peer in honest {
                let _ = sender.send(
                    peer,
                    Bytes::from_static(&[CHANNEL_MEMPOOL, 0xff, 0xff, 0xff, 0x13, 0x37]),
                );
                let _ = sender.send(peer, Bytes::from_static(&[0x7f, 1, 2, 3]));
            }
            loop {
                if rx.recv().await.is_none() {
                    break;
                }
            }
            drop(net);
            Ok(())
        }
    });
    sim.client("driver", async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        Ok(())
    });
    sim.run().unwrap();

    use mempool::Rejection::*;
    for i in 0..3 {
        let o = cluster.observed(i);
        let m = o.metrics.clone().unwrap();
        let count = |r| {
            m.rejections
                .iter()
                .find(|(x, _)| *x == r)
                .map(|(_, n)| *n)
                .unwrap_or(0)
        };
        for reason in [
            BadSignature,
            UnknownAuthor,
            TooOld,
            TooFarAhead,
            BadParents,
            Equivocation,
            Oversized,
            Undecodable,
        ] {
            assert!(
                count(reason) >= 1,
                "node {i}: no {reason:?} in {:?}",
                m.rejections
            );
        }
        // One header below quorum, three with bad weak links.
        assert!(count(BadParents) >= 4, "{:?}", m.rejections);
        assert!(o.equivocations >= 1);
        // The honest nodes kept making rounds after the attack (8 s) until the end (30 s).
        assert!(o.highest.0 > 250, "node {i} only reached {}", o.highest);
    }
}
