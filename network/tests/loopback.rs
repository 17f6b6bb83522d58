//! The transport over real UDP on loopback: exactly-once delivery at volume,
//! committee-only admission, and bad frames from a member.

mod common;

use common::*;
use network::tls;
use network::DropReason;
use primitives::crypto::KeyPair;
use primitives::parameters::NetworkParameters;
use primitives::NodeId;
use quinn::crypto::rustls::QuicClientConfig;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

async fn wait_connected(senders: &[network::Sender]) {
    for s in senders {
        for peer in s.others() {
            while !s.is_connected(peer) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_nodes_broadcast_ten_thousand_messages_each_exactly_once() {
    const PER_NODE: u32 = 10_000;
    let (committee, keys) = loopback_committee(4, 1);
    let mut nets = Vec::new();
    let mut receivers = Vec::new();
    for id in 0..4 {
        let (n, r) = start(&committee, &keys, id, test_parameters()).await;
        nets.push(n);
        receivers.push(r);
    }
    let senders: Vec<_> = nets.iter().map(|n| n.sender()).collect();
    wait_connected(&senders).await;

    // Half best effort, half reliable.
    let mut tasks = Vec::new();
    for (id, sender) in senders.iter().cloned().enumerate() {
        tasks.push(tokio::spawn(async move {
            let others = sender.others();
            for seq in 0..PER_NODE / 2 {
                let failures = sender.broadcast(others.clone(), message(id as u16, seq, 64));
                assert!(failures.is_empty(), "{failures:?}");
            }
            let mut deliveries = Vec::new();
            for seq in PER_NODE / 2..PER_NODE {
                deliveries.extend(
                    sender
                        .broadcast_reliable(others.clone(), message(id as u16, seq, 64))
                        .await
                        .unwrap(),
                );
            }
            for d in deliveries {
                d.await.unwrap();
            }
        }));
    }
    let mut readers = Vec::new();
    for (me, mut rx) in receivers.into_iter().enumerate() {
        readers.push(tokio::spawn(async move {
            let mut seen: HashMap<(u16, u32), u32> = HashMap::new();
            let expected = 3 * PER_NODE as usize;
            while seen.len() < expected {
                let m = tokio::time::timeout(Duration::from_secs(60), rx.recv())
                    .await
                    .expect("stalled")
                    .unwrap();
                let (claimed, seq) = parse(&m.payload);
                // The sender id comes from the TLS key and matches what the sender wrote.
                assert_eq!(NodeId(claimed), m.from);
                assert_ne!(m.from, NodeId(me as u16));
                *seen.entry((claimed, seq)).or_default() += 1;
            }
            // Nothing extra arrives (no duplicates).
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert!(rx.try_recv().is_none());
            seen
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for r in readers {
        let seen = r.await.unwrap();
        assert_eq!(seen.len(), 3 * PER_NODE as usize);
        assert!(seen.values().all(|c| *c == 1));
    }
    for n in &nets {
        let m = n.metrics().snapshot();
        assert_eq!(m.messages_in, 3 * PER_NODE as u64);
        assert!(m.drops.is_empty(), "{:?}", m.drops);
    }
}

/// A raw QUIC client presenting `identity`, dialling `target` whose key is `expected`.
fn raw_client(
    identity: &tls::Identity,
    expected: primitives::crypto::ed25519::PublicKey,
) -> (quinn::Endpoint, quinn::ClientConfig) {
    let metrics = Arc::new(network::Metrics::default());
    let tls = tls::client_config(identity, expected, metrics).unwrap();
    let config = quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls).unwrap()));
    let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    (endpoint, config)
}

/// Whether a connection attempt ends up usable: it must not be, for outsiders.
async fn try_talk(endpoint: &quinn::Endpoint, config: quinn::ClientConfig, addr: &str) -> bool {
    let Ok(connecting) = endpoint.connect_with(config, addr.parse().unwrap(), "bftlab") else {
        return false;
    };
    let Ok(conn) = connecting.await else {
        return false;
    };
    // The client may finish its side of the handshake before the server has checked the
    // client certificate; the server then closes the connection.
    if let Ok(mut s) = conn.open_uni().await {
        let _ = s.write_all(&[0, 0, 0, 2, 7, 7]).await;
        let _ = s.finish();
    }
    tokio::time::timeout(Duration::from_secs(5), conn.closed())
        .await
        .is_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outsiders_and_impersonators_are_refused() {
    let (committee, keys) = loopback_committee(4, 2);
    let (net0, mut rx0) = start(&committee, &keys, 0, test_parameters()).await;
    let addr0 = committee.member(NodeId(0)).unwrap().primary.clone();
    let key0 = keys[0].public_key();

    // 1. A client whose key is not in the committee.
    let outsider = KeyPair::from_seed(&[200; 32]);
    let outsider_id = tls::identity(&outsider.ed25519).unwrap();
    let (endpoint, config) = raw_client(&outsider_id, key0);
    assert!(!try_talk(&endpoint, config, &addr0).await);
    assert!(net0.metrics().dropped(DropReason::UnknownPeer) >= 1);

    // 2. An impersonator: a certificate carrying member 1's public key, but the
    //    impersonator can only sign the handshake with its own key.
    let forged = forged_certificate(&outsider, &keys[1]);
    let metrics = Arc::new(network::Metrics::default());
    let mut tls_config = tls::client_config(&outsider_id, key0, metrics).unwrap();
    let signing_key =
        rustls::crypto::ring::sign::any_eddsa_type(&match outsider_id.private_key.clone_key() {
            rustls::pki_types::PrivateKeyDer::Pkcs8(k) => k,
            _ => unreachable!(),
        })
        .unwrap();
    tls_config.client_auth_cert_resolver = Arc::new(FixedCert(Arc::new(
        rustls::sign::CertifiedKey::new(vec![forged], signing_key),
    )));
    let config =
        quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls_config).unwrap()));
    assert!(!try_talk(&endpoint, config, &addr0).await);

    // 3. A server that is not the member we dial is refused by the client side too.
    let (endpoint, config) = raw_client(&outsider_id, keys[2].public_key());
    assert!(!try_talk(&endpoint, config, &addr0).await);

    // Nothing from any of them reached node 0's application.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(rx0.try_recv().is_none());
    assert_eq!(net0.metrics().snapshot().messages_in, 0);
    assert_eq!(net0.metrics().snapshot().connections_in, 0);
}

/// A certificate for `victim`'s public key, signed by `attacker` (who lacks the victim's key).
fn forged_certificate(
    attacker: &KeyPair,
    victim: &KeyPair,
) -> rustls::pki_types::CertificateDer<'static> {
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    let der = attacker.ed25519.to_pkcs8_der().unwrap();
    let attacker_key = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
        &rustls::pki_types::PrivatePkcs8KeyDer::from(der.as_bytes().to_vec()),
        &rcgen::PKCS_ED25519,
    )
    .unwrap();
    let issuer = rcgen::CertificateParams::new(vec!["bftlab".into()])
        .unwrap()
        .self_signed(&attacker_key)
        .unwrap();
    let victim_spki = VictimKey(victim.public_key().0);
    let cert = rcgen::CertificateParams::new(vec!["bftlab".into()])
        .unwrap()
        .signed_by(&victim_spki, &issuer, &attacker_key)
        .unwrap();
    assert_eq!(tls::ed25519_key_of(cert.der()), Some(victim.public_key()));
    cert.der().clone()
}

/// The victim's raw public key, as rcgen wants it for the certificate's subject.
struct VictimKey([u8; 32]);

impl rcgen::PublicKeyData for VictimKey {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }
    fn algorithm(&self) -> &rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ED25519
    }
}

#[derive(Debug)]
struct FixedCert(Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for FixedCert {
    fn resolve(
        &self,
        _hints: &[&[u8]],
        _schemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
    fn has_certs(&self) -> bool {
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_are_dropped_and_counted_while_honest_traffic_flows() {
    let (committee, keys) = loopback_committee(4, 3);
    let mut params = test_parameters();
    params.max_frame_size = 64 * 1024;
    let (net0, mut rx0) = start(&committee, &keys, 0, params.clone()).await;
    let (net1, _rx1) = start(&committee, &keys, 1, params.clone()).await;
    let (net2, _rx2) = start(&committee, &keys, 2, params.clone()).await;
    let addr0 = committee.member(NodeId(0)).unwrap().primary.clone();

    // Member 3 is Byzantine: it holds its real key but speaks raw QUIC.
    let identity3 = tls::identity(&keys[3].ed25519).unwrap();
    let (endpoint, config) = raw_client(&identity3, keys[0].public_key());
    let conn = endpoint
        .connect_with(config, addr0.parse().unwrap(), "bftlab")
        .unwrap()
        .await
        .unwrap();

    let honest = tokio::spawn({
        let s1 = net1.sender();
        let s2 = net2.sender();
        async move {
            for seq in 0..200u32 {
                s1.send_reliable(NodeId(0), message(1, seq, 100))
                    .await
                    .unwrap()
                    .await
                    .unwrap();
                s2.send_reliable(NodeId(0), message(2, seq, 100))
                    .await
                    .unwrap()
                    .await
                    .unwrap();
            }
        }
    });

    // The node may stop a bad stream before the rest of it is written, so writes on
    // these streams may fail (with the stop code): that is the refusal, not an error.
    // Garbage bytes: a random length prefix far beyond the limit.
    let mut s = conn.open_uni().await.unwrap();
    let _ = s
        .write_all(&[0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7])
        .await;
    let _ = s.finish();
    // An explicitly oversized frame: 1 MiB announced, limit 64 KiB.
    let mut s = conn.open_uni().await.unwrap();
    let _ = s.write_all(&(1u32 << 20).to_be_bytes()).await;
    let _ = s.write_all(&[0u8; 1000]).await;
    let _ = s.finish();
    // A truncated frame: 100 bytes announced, 10 sent, stream finished.
    let mut s = conn.open_uni().await.unwrap();
    let _ = s.write_all(&100u32.to_be_bytes()).await;
    let _ = s.write_all(&[1u8; 10]).await;
    let _ = s.finish();
    // A good frame first, then a truncated one, on a reliable-style stream.
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    let _ = send.write_all(&50u32.to_be_bytes()).await;
    let _ = send.write_all(&[3u8; 5]).await;
    let _ = send.finish();
    // A reliable frame too short to hold its message id.
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    let _ = send.write_all(&3u32.to_be_bytes()).await;
    let _ = send.write_all(&[1u8, 2, 3]).await;
    let _ = send.finish();
    // A well-formed reliable message from member 3 is delivered and answered with its
    // id and "handled" (the stream format of `reliable.rs`).
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    let good = message(3, 1, 20);
    send.write_all(&((good.len() + 8) as u32).to_be_bytes())
        .await
        .unwrap();
    send.write_all(&7u64.to_be_bytes()).await.unwrap();
    send.write_all(&good).await.unwrap();
    // A second one on the same stream, which the application refuses (below).
    let refused = message(3, 2, 20);
    send.write_all(&((refused.len() + 8) as u32).to_be_bytes())
        .await
        .unwrap();
    send.write_all(&8u64.to_be_bytes()).await.unwrap();
    send.write_all(&refused).await.unwrap();
    let answers = tokio::spawn(async move {
        let mut records = [0u8; 18];
        recv.read_exact(&mut records).await.map(|()| records)
    });

    // Finally a well-formed frame from member 3 still gets through, labelled as member 3.
    let mut s = conn.open_uni().await.unwrap();
    let good = message(3, 0, 20);
    s.write_all(&(good.len() as u32).to_be_bytes())
        .await
        .unwrap();
    s.write_all(&good).await.unwrap();
    s.finish().unwrap();

    let mut from_honest = 0;
    let mut from_byzantine = 0;
    while from_honest < 400 || from_byzantine < 3 {
        let m = tokio::time::timeout(Duration::from_secs(30), rx0.recv())
            .await
            .expect("stalled")
            .unwrap();
        let (claimed, seq) = parse(&m.payload);
        assert_eq!(NodeId(claimed), m.from);
        if m.from == NodeId(3) {
            from_byzantine += 1;
            if seq == 2 {
                m.reject();
            }
        } else {
            from_honest += 1;
        }
    }
    honest.await.unwrap();
    let m = net0.metrics();
    // Wait for the stream readers to finish counting.
    for _ in 0..100 {
        if m.dropped(DropReason::OversizedFrame) >= 2 && m.dropped(DropReason::TruncatedFrame) >= 3
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(m.dropped(DropReason::OversizedFrame), 2);
    assert_eq!(m.dropped(DropReason::TruncatedFrame), 3);
    assert_eq!(from_byzantine, 3);
    let records = tokio::time::timeout(Duration::from_secs(30), answers)
        .await
        .expect("no answer")
        .unwrap()
        .unwrap();
    // Each answered with its id: 7 handled, 8 refused (in the order they were handled).
    let mut answered: Vec<(u64, u8)> = records
        .chunks(9)
        .map(|r| (u64::from_be_bytes(r[..8].try_into().unwrap()), r[8]))
        .collect();
    answered.sort();
    assert_eq!(answered, vec![(7, 1), (8, 0)]);
    drop((net1, net2));
}

#[tokio::test]
async fn a_peer_that_does_not_drain_is_held_to_its_queue_bytes() {
    // Node 1 never starts: node 0's queue for it fills and is never drained.
    let (committee, keys) = common::loopback_committee(2, 11);
    let parameters = NetworkParameters {
        peer_queue_bytes: 4 << 20,
        ..common::test_parameters()
    };
    let (net, _rx) = common::start(&committee, &keys, 0, parameters).await;
    let sender = net.sender();
    let mut accepted = 0;
    for seq in 0..100 {
        if sender
            .send(NodeId(1), common::message(0, seq, 1 << 20))
            .is_ok()
        {
            accepted += 1;
        }
    }
    // Four 1 MiB messages fit in 4 MiB; the rest are refused and counted.
    assert_eq!(accepted, 4);
    let snapshot = net.metrics().snapshot();
    assert_eq!(snapshot.queued_bytes, 4 << 20);
    let refused = snapshot
        .drops
        .iter()
        .find(|(r, _)| *r == DropReason::QueueBytes)
        .map(|(_, n)| *n);
    assert_eq!(refused, Some(96));
    // One message larger than the budget still goes into an empty queue.
    let (committee, keys) = common::loopback_committee(2, 12);
    let (net, _rx) = common::start(
        &committee,
        &keys,
        0,
        NetworkParameters {
            peer_queue_bytes: 1_000,
            ..common::test_parameters()
        },
    )
    .await;
    assert!(net
        .sender()
        .send(NodeId(1), common::message(0, 0, 5_000))
        .is_ok());
}

/// Wait until `cond` holds, checking every 10 ms, for at most 30 s.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..3_000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_member_waits_alone_and_loses_nothing() {
    const FLOOD: u32 = 500;
    let (committee, keys) = loopback_committee(3, 7);
    let parameters = NetworkParameters {
        inbound_peer_bytes: 64 << 10,
        ..test_parameters()
    };
    let (n0, mut rx0) = start(&committee, &keys, 0, parameters.clone()).await;
    let (n1, _rx1) = start(&committee, &keys, 1, parameters.clone()).await;
    let (n2, _rx2) = start(&committee, &keys, 2, parameters).await;
    let senders = [n0.sender(), n1.sender(), n2.sender()];
    wait_connected(&senders).await;
    // Node 1 floods node 0, which reads nothing: node 1's queue there fills (64 KiB)
    // and its stream waits.
    for seq in 0..FLOOD {
        senders[1]
            .send_queued(NodeId(0), message(1, seq, 4_096))
            .await
            .unwrap();
    }
    let queued = || n0.metrics().snapshot().inbound_queued_bytes;
    eventually("node 1's queue at node 0 is full", || queued() >= 64 << 10).await;
    let full = queued();
    assert!(full < (64 << 10) + 4_096, "bounded per member: {full}");
    // Node 2's message is admitted all the same, and taken within one turn.
    senders[2].send(NodeId(0), message(2, 0, 100)).unwrap();
    eventually("node 2's message is queued", || queued() > full).await;
    let first: Vec<u16> = [rx0.recv().await.unwrap(), rx0.recv().await.unwrap()]
        .iter()
        .map(|m| m.from.0)
        .collect();
    assert_eq!(first, vec![1, 2]);
    // Back-pressure, not loss: every flood message arrives, in order.
    let mut next = 1;
    while next < FLOOD {
        let m = tokio::time::timeout(Duration::from_secs(30), rx0.recv())
            .await
            .expect("stalled")
            .unwrap();
        assert_eq!(parse(&m.payload), (1, next));
        next += 1;
    }
    assert!(n0.metrics().snapshot().drops.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_lane_does_not_hold_up_another() {
    let (committee, keys) = loopback_committee(3, 8);
    let parameters = NetworkParameters {
        inbound_peer_bytes: 16 << 10,
        ..test_parameters()
    };
    let (n0, [mut fast, _slow]) =
        common::start_lanes(&committee, &keys, 0, parameters.clone(), &[&[7], &[8, 9]]).await;
    let (n1, _rx1) = start(&committee, &keys, 1, parameters.clone()).await;
    let (n2, _rx2) = start(&committee, &keys, 2, parameters).await;
    let senders = [n0.sender(), n1.sender(), n2.sender()];
    wait_connected(&senders).await;
    let on = common::on_channel;
    // Node 2 fills the unread lane.
    for seq in 0..100 {
        senders[2]
            .send_queued(NodeId(0), on(8, seq, 2_048))
            .await
            .unwrap();
    }
    eventually("the slow lane is full", || {
        n0.metrics().snapshot().inbound_queued_bytes >= 16 << 10
    })
    .await;
    // Node 1's messages on the other lane get through; an unknown channel is counted.
    senders[1].send(NodeId(0), on(99, 0, 10)).unwrap();
    for seq in 0..10 {
        senders[1].send(NodeId(0), on(7, seq, 10)).unwrap();
    }
    for seq in 0..10u32 {
        let m = tokio::time::timeout(Duration::from_secs(30), fast.recv())
            .await
            .expect("the fast lane stalled")
            .unwrap();
        assert_eq!(
            (m.from, &m.payload[1..5]),
            (NodeId(1), &seq.to_be_bytes()[..])
        );
    }
    eventually("the unknown channel is counted", || {
        n0.metrics().dropped(DropReason::UnknownChannel) == 1
    })
    .await;
}

/// Reliable messages of one peer share a stream: one whose lane is full waits aside,
/// and one whose lane's reader is gone is refused alone; the peer's messages for
/// another lane behind them are delivered and acknowledged all the same.
#[tokio::test]
async fn a_full_or_closed_lane_does_not_hold_up_a_peers_other_reliable_messages() {
    let (committee, keys) = loopback_committee(2, 12);
    let parameters = NetworkParameters {
        inbound_peer_bytes: 16 << 10,
        ..test_parameters()
    };
    let (n0, [mut fast, _unread, closed]) = common::start_lanes(
        &committee,
        &keys,
        0,
        parameters.clone(),
        &[&[7], &[8], &[9]],
    )
    .await;
    drop(closed);
    let (n1, _rx1) = start(&committee, &keys, 1, parameters).await;
    let senders = [n0.sender(), n1.sender()];
    wait_connected(&senders).await;
    let on = common::on_channel;
    // More than the unread lane holds (16 KiB): the rest wait aside, unacknowledged.
    let mut waiting = Vec::new();
    for seq in 0..20 {
        waiting.push(
            senders[1]
                .send_reliable(NodeId(0), on(8, seq, 2_048))
                .await
                .unwrap(),
        );
    }
    // One for the lane nobody reads any more: refused, resent, never acknowledged.
    let refused = senders[1]
        .send_reliable(NodeId(0), on(9, 0, 100))
        .await
        .unwrap();
    // The fast lane's messages, sent after both, arrive and are acknowledged.
    let mut delivered = Vec::new();
    for seq in 0..10u32 {
        delivered.push(
            senders[1]
                .send_reliable(NodeId(0), on(7, seq, 100))
                .await
                .unwrap(),
        );
    }
    let mut got = Vec::new();
    for _ in 0..10 {
        let m = tokio::time::timeout(Duration::from_secs(30), fast.recv())
            .await
            .expect("the fast lane stalled behind the others")
            .unwrap();
        got.push(u32::from_be_bytes(m.payload[1..5].try_into().unwrap()));
    }
    got.sort();
    assert_eq!(got, (0..10).collect::<Vec<_>>());
    for d in delivered {
        tokio::time::timeout(Duration::from_secs(30), d)
            .await
            .expect("not acknowledged")
            .unwrap();
    }
    eventually("the closed lane's message is refused", || {
        n0.metrics().dropped(DropReason::Refused) >= 1
    })
    .await;
    // The unread lane's overflow and the closed lane's message are still unacknowledged.
    let pending = futures::future::select_all(waiting.into_iter().skip(10).chain([refused]));
    assert!(
        tokio::time::timeout(Duration::from_millis(200), pending)
            .await
            .is_err(),
        "a message no application took was acknowledged"
    );
}

/// The largest fixed datagram size a real socket takes carries large reliable messages
/// (each sent as full segmentation-offload batches of datagrams), and one byte more is
/// refused at start with a parameter error instead of losing every full batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_real_datagram_size_carries_large_messages_and_a_larger_is_refused() {
    const MESSAGES: u32 = 40;
    let (committee, keys) = loopback_committee(2, 21);
    let too_large = NetworkParameters {
        max_udp_payload: network::MAX_REAL_UDP_PAYLOAD + 1,
        ..test_parameters()
    };
    match network::Network::start(config(&committee, &keys, 0, too_large)).await {
        Err(network::NetworkError::Parameter(why)) => assert!(why.contains("max_udp_payload")),
        Err(other) => panic!("expected a parameter error, got {other}"),
        Ok(_) => panic!("a datagram size above the real-socket limit was accepted"),
    }
    let parameters = NetworkParameters {
        max_udp_payload: network::MAX_REAL_UDP_PAYLOAD,
        ..test_parameters()
    };
    let (net0, _rx0) = start(&committee, &keys, 0, parameters.clone()).await;
    let (net1, mut rx1) = start(&committee, &keys, 1, parameters).await;
    let sender = net0.sender();
    wait_connected(&[sender.clone(), net1.sender()]).await;
    let mut deliveries = Vec::new();
    for seq in 0..MESSAGES {
        deliveries.extend(
            sender
                .broadcast_reliable(vec![NodeId(1)], message(0, seq, 300_000))
                .await
                .unwrap(),
        );
    }
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < MESSAGES as usize {
        let m = tokio::time::timeout(Duration::from_secs(60), rx1.recv())
            .await
            .expect("stalled")
            .unwrap();
        assert_eq!(m.payload.len(), 300_000);
        assert!(seen.insert(parse(&m.payload).1), "delivered twice");
    }
    for d in deliveries {
        d.await.unwrap();
    }
    assert!(net1.metrics().snapshot().drops.is_empty());
}
