//! The WAN emulation on real UDP: datagrams between members take the matrix's latency
//! (a lower bound, which a slow machine cannot break), and everything still arrives
//! exactly once and in order. Its own test binary: the emulation is installed once per
//! process.

mod common;

use common::*;
use network::latency_matrix::LatencyMatrix;
use network::wan_emulation::{self, WanEmulation};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_datagrams_take_the_matrix_latency_and_all_arrive_in_order() {
    let (committee, keys) = loopback_committee(2, 7);
    // Node 0 in region a, node 1 in b, 300 ms round trip between them. Both networks
    // share this process's emulation (region a): to node 1 takes 150 ms, to node 0 none.
    let matrix = LatencyMatrix::parse("region,a,b\na,0,300\nb,300,0\n").unwrap();
    let members: Vec<(SocketAddr, String)> = committee
        .members()
        .iter()
        .map(|m| {
            (
                m.primary.parse().unwrap(),
                if m.id.0 == 0 { "a" } else { "b" }.to_string(),
            )
        })
        .collect();
    let emulation =
        wan_emulation::install(WanEmulation::new(&matrix, "a", &members, 0, 0.0).unwrap()).unwrap();
    let (n0, _r0) = start(&committee, &keys, 0, test_parameters()).await;
    let (_n1, mut r1) = start(&committee, &keys, 1, test_parameters()).await;
    let sender = n0.sender();
    let to = primitives::NodeId(1);
    while !sender.is_connected(to) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for seq in 0..200u32 {
        let sent = Instant::now();
        sender.send(to, message(0, seq, 100)).unwrap();
        if seq == 0 {
            let m = tokio::time::timeout(Duration::from_secs(30), r1.recv())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(parse(&m.payload), (0, 0));
            assert!(
                sent.elapsed() >= Duration::from_millis(150),
                "{:?}",
                sent.elapsed()
            );
        }
    }
    for seq in 1..200u32 {
        let m = tokio::time::timeout(Duration::from_secs(30), r1.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(parse(&m.payload), (0, seq));
    }
    // Messages share datagrams, so fewer datagrams than messages went through the line.
    assert!(emulation.counters.delayed.load(Ordering::Relaxed) > 0);
    assert_eq!(emulation.counters.lost.load(Ordering::Relaxed), 0);
    assert_eq!(emulation.counters.queue_full.load(Ordering::Relaxed), 0);
}
