//! QUIC throughput between two nodes on loopback: one node streams messages of a
//! given size to the other over the best-effort path (with back-pressure), through the
//! full stack (TLS 1.3, QUIC, framing, queues). Names follow `module::op/key=value`.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use network::{Environment, Network, NetworkConfig};
use primitives::parameters::NetworkParameters;
use primitives::{Committee, NodeId};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn free_ports(n: usize) -> Vec<u16> {
    let sockets: Vec<_> = (0..n)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    sockets
        .iter()
        .map(|s| s.local_addr().unwrap().port())
        .collect()
}

fn quic_throughput(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (committee, keys) =
        Committee::generate(2, 1, &["127.0.0.1".into()], 20_000, Some(1)).unwrap();
    let mut file = committee.to_file();
    for (m, port) in file.member.iter_mut().zip(free_ports(2)) {
        m.primary = format!("127.0.0.1:{port}");
    }
    let committee = Arc::new(Committee::new(file).unwrap());
    let (nets, mut receivers): (Vec<_>, Vec<_>) = rt.block_on(async {
        let mut out = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let m = committee.member(NodeId(i as u16)).unwrap();
            out.push(
                Network::start(NetworkConfig {
                    id: NodeId(i as u16),
                    key: key.ed25519.clone(),
                    committee: committee.clone(),
                    parameters: NetworkParameters::default(),
                    environment: Environment::Udp,
                    bind: m.primary.parse().unwrap(),
                    rng_seed: None,
                    twins: Default::default(),
                })
                .await
                .unwrap(),
            );
        }
        out.into_iter().unzip()
    });
    let sender = nets[0].sender();
    rt.block_on(async {
        while !sender.is_connected(NodeId(1)) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let mut rx = receivers.remove(1);

    let mut group = c.benchmark_group("network");
    group.measurement_time(Duration::from_secs(5));
    group.sample_size(10);
    for size in [512usize, 16 * 1024, 500_000] {
        let payload = bytes::Bytes::from(vec![7u8; size]);
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(
            BenchmarkId::new("network::quic_send", format!("size={size}")),
            &payload,
            |b, payload| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let start = Instant::now();
                        let s = sender.clone();
                        let p = payload.clone();
                        let producer = tokio::spawn(async move {
                            for _ in 0..iters {
                                s.send_queued(NodeId(1), p.clone()).await.unwrap();
                            }
                        });
                        for _ in 0..iters {
                            rx.recv().await.unwrap();
                        }
                        producer.await.unwrap();
                        start.elapsed()
                    })
                })
            },
        );
    }
    group.finish();
    drop(nets);
}

criterion_group!(benches, quic_throughput);
criterion_main!(benches);
