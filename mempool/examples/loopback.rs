//! Mempool throughput on loopback: N real nodes (1 worker each) in one process over real
//! QUIC, open-loop clients at a fixed input rate, and a trivial consumer that treats
//! every certificate as committed. Reports, at node 0, certified transactions per second
//! (each transaction counted once, from every certificate delivered in the measurement
//! window) and the seal-to-certificate latency of node 0's own batches.
//!
//! `cargo run --release -p mempool --example loopback -- --rate 50000`

use bytes::Bytes;
use clap::Parser;
use mempool::{DiskStore, MemoryStore, Mempool, MempoolConfig, Store};
use network::clients::TransactionClient;
use network::{Environment, Network, NetworkConfig};
use primitives::{Committee, NodeId, Parameters};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser, Debug, Clone)]
struct Args {
    /// Total input rate, transactions per second (split evenly over the nodes).
    #[arg(long, default_value_t = 50_000)]
    rate: u64,
    /// Transaction size in bytes.
    #[arg(long, default_value_t = 512)]
    tx_size: usize,
    /// Committee size.
    #[arg(long, default_value_t = 4)]
    nodes: usize,
    /// Seconds measured (after the warm-up).
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// Seconds of warm-up, not measured.
    #[arg(long, default_value_t = 5)]
    warmup: u64,
    /// `disk` (redb, as real nodes) or `memory`.
    #[arg(long, default_value = "disk")]
    store: String,
}

fn free_ports(n: usize) -> Vec<u16> {
    let sockets: Vec<_> = (0..n)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").expect("bind"))
        .collect();
    sockets
        .iter()
        .map(|s| s.local_addr().expect("addr").port())
        .collect()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let parameters = Parameters::default();
    let (committee, keys) =
        Committee::generate(args.nodes, 1, &["127.0.0.1".into()], 20_000, None)?;
    let mut file = committee.to_file();
    let ports = free_ports(args.nodes * 3);
    for (i, m) in file.member.iter_mut().enumerate() {
        m.primary = format!("127.0.0.1:{}", ports[3 * i]);
        m.workers[0].transactions = format!("127.0.0.1:{}", ports[3 * i + 1]);
        m.workers[0].worker = format!("127.0.0.1:{}", ports[3 * i + 2]);
    }
    let committee = Arc::new(Committee::new(file)?);
    let dir = tempfile::tempdir()?;

    let certified = Arc::new(AtomicU64::new(0));
    let measuring = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut nodes = Vec::new();
    let mut handles = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let id = NodeId(i as u16);
        let member = committee.member(id).expect("member");
        let (net, receiver) = Network::start(NetworkConfig {
            id,
            key: key.ed25519.clone(),
            committee: committee.clone(),
            parameters: parameters.network.clone(),
            environment: Environment::Udp,
            bind: member.primary.parse()?,
            rng_seed: None,
            twins: Default::default(),
        })
        .await?;
        let store: Arc<dyn Store> = match args.store.as_str() {
            "memory" => Arc::new(MemoryStore::new()),
            _ => Arc::new(DiskStore::open(&dir.path().join(format!("node{i}.redb")))?),
        };
        let (mempool, handle, mut certificates) = Mempool::start(
            MempoolConfig {
                id,
                committee: committee.clone(),
                parameters: parameters.clone(),
                keys: key.clone(),
                store,
                sender: net.sender(),
                environment: Environment::Udp,
                seed: i as u64,
                faults: Default::default(),
                clock: primitives::clock::NodeClock::real(),
            },
            receiver,
        )
        .await?;
        // The trivial consumer: every certificate is committed on delivery.
        let consumer = handle.clone();
        let certified = certified.clone();
        let measuring = measuring.clone();
        tokio::spawn(async move {
            let mut waiting = Vec::new();
            loop {
                let c = tokio::time::timeout(Duration::from_millis(50), certificates.recv()).await;
                match c {
                    Ok(Some(c)) => {
                        consumer.set_committed_round(c.round()).await;
                        if i == 0 {
                            waiting.push((c, measuring.load(Ordering::Relaxed)));
                        }
                    }
                    Ok(None) => return,
                    Err(_) => {}
                }
                waiting.retain(|(c, counted)| match consumer.batches(c, &[]) {
                    Ok(batches) => {
                        if *counted {
                            let n: usize = batches.iter().map(|(_, b)| b.transactions.len()).sum();
                            certified.fetch_add(n as u64, Ordering::Relaxed);
                        }
                        false
                    }
                    Err(_) => true,
                });
            }
        });
        nodes.push((net, mempool));
        handles.push(handle);
    }

    // Open-loop clients, one per node.
    let per_client = args.rate / args.nodes as u64;
    let total = Duration::from_secs(args.warmup + args.duration);
    let mut clients = Vec::new();
    for i in 0..args.nodes {
        let member = committee.member(NodeId(i as u16)).expect("member").clone();
        let size = args.tx_size.max(16);
        clients.push(tokio::spawn(async move {
            let mut client = TransactionClient::connect(
                Environment::Udp,
                &member.workers[0].transactions,
                member.public_key,
                1 << 20,
                None,
            )
            .await?;
            let start = Instant::now();
            let mut interval = tokio::time::interval(Duration::from_millis(10));
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut sent = 0u64;
            let mut seq = 0u64;
            while start.elapsed() < total {
                interval.tick().await;
                let due = (start.elapsed().as_secs_f64() * per_client as f64) as u64;
                while sent < due {
                    let mut tx = vec![0u8; size];
                    tx[..8].copy_from_slice(&(i as u64).to_be_bytes());
                    tx[8..16].copy_from_slice(&seq.to_be_bytes());
                    seq += 1;
                    client.submit(Bytes::from(tx)).await?;
                    sent += 1;
                }
                client.flush().await?;
            }
            anyhow::Ok(sent)
        }));
    }
    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    let _ = handles[0].metrics().batch_latency.take();
    let round_start = handles[0].metrics().snapshot().round;
    measuring.store(true, Ordering::Relaxed);
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.duration)).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = t0.elapsed().as_secs_f64();
    // Let certificates of the window drain into the count.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut sent = 0;
    for c in clients {
        sent += c.await??;
    }
    let certified = certified.load(Ordering::Relaxed) as f64;
    let latency = handles[0].metrics().batch_latency.take();
    let rounds = handles[0].metrics().snapshot().round - round_start;
    let (p50, p99, mean) = latency
        .map(|h| {
            (
                h.value_at_quantile(0.5) as f64 / 1e3,
                h.value_at_quantile(0.99) as f64 / 1e3,
                h.mean() / 1e3,
            )
        })
        .unwrap_or_default();
    let summary = serde_json::json!({
        "nodes": args.nodes,
        "workers_per_node": 1,
        "input_rate_tx_s": args.rate,
        "tx_size": args.tx_size,
        "store": args.store,
        "warmup_s": args.warmup,
        "duration_s": args.duration,
        "transactions_sent": sent,
        "certified_tx_s": (certified / elapsed).round(),
        "certified_mb_s": (certified * args.tx_size as f64 / elapsed / 1e6 * 100.0).round() / 100.0,
        "rounds_per_s": (rounds as f64 / elapsed * 10.0).round() / 10.0,
        "batch_to_certificate_ms": { "mean": mean.round(), "p50": p50.round(), "p99": p99.round() },
        "node0_metrics": handles[0].metrics().snapshot(),
    });
    println!("{}", serde_json::to_string_pretty(&summary)?);
    drop(nodes);
    Ok(())
}
