//! A twinned member (Twins testing): two instances with one identity on two hosts.
//! Everything sent to the member reaches both, a reliable message is delivered when
//! either acknowledges it, and the two instances' connections to a peer coexist.

use bytes::Bytes;
use network::{Environment, Network, NetworkConfig};
use primitives::parameters::NetworkParameters;
use primitives::{Committee, NodeId};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What an instance received: (payload's first byte, payload's second byte).
type Log = Arc<Mutex<Vec<(u8, u8)>>>;

/// Hosts: members 0, 1, 2 on `node0..node2`; member 0's twin on `twin0`.
fn hosts() -> Vec<String> {
    (0..3).map(|i| format!("node{i}")).collect()
}

#[test]
fn a_twinned_member_gets_everything_on_both_instances_and_either_acknowledges() {
    let mut sim = turmoil::Builder::new()
        .simulation_duration(Duration::from_secs(60))
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(5))
        .rng_seed(7)
        .build();
    let (committee, keys) = Committee::generate(3, 1, &hosts(), 4000, Some(7)).unwrap();
    let committee = Arc::new(committee);
    let port = |i: u16| -> u16 {
        let primary = &committee.member(NodeId(i)).unwrap().primary;
        primary.rsplit_once(':').unwrap().1.parse().unwrap()
    };
    let twins: BTreeMap<NodeId, String> = [(NodeId(0), format!("twin0:{}", port(0)))].into();
    // Received by instance: node0, twin0, node1.
    let logs: Vec<Log> = (0..3).map(|_| Log::default()).collect();
    let connections_in = Arc::new(Mutex::new(0u64));
    let delivered = Arc::new(Mutex::new(Vec::<u8>::new()));

    // (host, member, tag of what it sends to member 1, its log)
    let instances = [
        ("node0".to_string(), 0u16, b'a', Some(logs[0].clone())),
        ("twin0".to_string(), 0u16, b'b', Some(logs[1].clone())),
        ("node1".to_string(), 1u16, 0, Some(logs[2].clone())),
        ("node2".to_string(), 2u16, 0, None),
    ];
    for (host, member, tag, log) in instances {
        let committee = committee.clone();
        let key = keys[member as usize].ed25519.clone();
        let twins = twins.clone();
        let bind = port(member);
        let delivered = delivered.clone();
        let connections_in = connections_in.clone();
        sim.host(host, move || {
            let (committee, key, twins, log) =
                (committee.clone(), key.clone(), twins.clone(), log.clone());
            let (delivered, connections_in) = (delivered.clone(), connections_in.clone());
            async move {
                let (net, mut rx) = Network::start(NetworkConfig {
                    id: NodeId(member),
                    key,
                    committee,
                    parameters: NetworkParameters {
                        retry_min_delay_ms: 100,
                        retry_max_delay_ms: 1_000,
                        ..NetworkParameters::default()
                    },
                    environment: Environment::Turmoil,
                    bind: format!("0.0.0.0:{bind}").parse().unwrap(),
                    rng_seed: Some([member as u8 + tag; 32]),
                    twins,
                })
                .await?;
                if let Some(log) = log {
                    tokio::spawn(async move {
                        while let Some(m) = rx.recv().await {
                            let (_, payload) = m.processed();
                            log.lock().unwrap().push((payload[0], payload[1]));
                        }
                    });
                }
                let sender = net.sender();
                match member {
                    // Both instances of member 0 send to member 1 every 100 ms.
                    0 => {
                        for k in 0..100u8 {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            let _ = sender.send(NodeId(1), Bytes::from(vec![tag, k]));
                        }
                    }
                    // Member 2 sends to member 0, best effort and reliably.
                    2 => {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        for k in 0..10u8 {
                            sender.send(NodeId(0), Bytes::from(vec![b's', k]))?;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        sender
                            .send_reliable(NodeId(0), Bytes::from(vec![b'r', 0]))
                            .await?
                            .await?;
                        delivered.lock().unwrap().push(0);
                        // The other instance's copy goes on after the first ack.
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        // Cut member 2 off from member 0's first instance: the twin's
                        // acknowledgement alone must deliver.
                        turmoil::partition("node2", "node0");
                        sender
                            .send_reliable(NodeId(0), Bytes::from(vec![b'r', 1]))
                            .await?
                            .await?;
                        delivered.lock().unwrap().push(1);
                    }
                    _ => {
                        tokio::time::sleep(Duration::from_secs(15)).await;
                        *connections_in.lock().unwrap() = net.metrics().snapshot().connections_in;
                    }
                }
                std::future::pending::<()>().await;
                drop(net);
                Ok(())
            }
        });
    }
    sim.client("wait", async {
        tokio::time::sleep(Duration::from_secs(20)).await;
        Ok(())
    });
    sim.run().unwrap();

    let got = |i: usize, tag: u8| -> Vec<u8> {
        let log = logs[i].lock().unwrap();
        log.iter()
            .filter(|(t, _)| *t == tag)
            .map(|(_, k)| *k)
            .collect()
    };
    // Member 2's messages reached both instances of member 0.
    for i in 0..2 {
        assert_eq!(got(i, b's'), (0..10).collect::<Vec<u8>>(), "instance {i}");
        assert!(got(i, b'r').contains(&0), "instance {i}");
    }
    // Only the twin could acknowledge the second reliable message; it did.
    assert_eq!(got(1, b'r'), vec![0, 1]);
    assert_eq!(*delivered.lock().unwrap(), vec![0, 1]);
    // Member 1 heard both instances, everything, over two connections that stayed up
    // (a dial from one instance did not close the other's).
    assert_eq!(got(2, b'a'), (0..100).collect::<Vec<u8>>());
    assert_eq!(got(2, b'b'), (0..100).collect::<Vec<u8>>());
    assert_eq!(*connections_in.lock().unwrap(), 3);
}
