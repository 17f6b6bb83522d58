//! HotStuff over the DAG, as real Nodes (real QUIC over turmoil, real crypto): every
//! node commits the same sequence, every transaction exactly once, and a seed replays.

use bytes::Bytes;
use consensus::{Node, NodeConfig};
use mempool::MemoryStore;
use network::clients::TransactionClient;
use network::Environment;
use primitives::{Committee, Digest, NodeId, Parameters};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default, Clone)]
struct Log {
    sequence: Vec<Digest>,
    transactions: BTreeMap<Bytes, u32>,
    blocks: u64,
}

fn host(i: usize) -> String {
    format!("node{i}")
}

fn run(seed: u64, crashed: Option<usize>) -> (Vec<Log>, BTreeSet<Bytes>) {
    run_with(seed, crashed, None, false).0
}

/// `split`: partition {0, 1} from {2, 3} between these simulated times. Returns the logs,
/// what was submitted, and each node's committed sequence length when the split healed.
#[allow(clippy::type_complexity)]
fn run_with(
    seed: u64,
    crashed: Option<usize>,
    split: Option<(Duration, Duration)>,
    bls: bool,
) -> ((Vec<Log>, BTreeSet<Bytes>), Vec<usize>) {
    let n = 4;
    let hosts: Vec<String> = (0..n).map(host).collect();
    let (committee, keys) = Committee::generate(n, 1, &hosts, 6000, Some(seed)).unwrap();
    let committee = Arc::new(committee);
    let mut parameters = Parameters::default();
    parameters.mempool.batch_size = 20_000;
    parameters.mempool.max_batch_delay_ms = 50;
    parameters.mempool.sync_retry_delay_ms = 1_000;
    if bls {
        parameters.signature_scheme = primitives::crypto::SignatureScheme::Bls;
    }
    let logs: Vec<Arc<Mutex<Log>>> = (0..n)
        .map(|_| Arc::new(Mutex::new(Log::default())))
        .collect();
    let submitted = Arc::new(Mutex::new(BTreeSet::new()));
    let mut sim = turmoil::Builder::new()
        .simulation_duration(Duration::from_secs(60))
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(10))
        .udp_capacity(65_536)
        .rng_seed(seed)
        .build();
    for i in 0..n {
        if Some(i) == crashed {
            continue;
        }
        let committee = committee.clone();
        let keys = keys[i].clone();
        let parameters = parameters.clone();
        let log = logs[i].clone();
        let store = MemoryStore::new();
        sim.host(host(i), move || {
            let committee = committee.clone();
            let keys = keys.clone();
            let parameters = parameters.clone();
            let log = log.clone();
            let store = store.clone();
            async move {
                let id = NodeId(i as u16);
                let port: u16 = committee
                    .member(id)
                    .unwrap()
                    .primary
                    .rsplit_once(':')
                    .unwrap()
                    .1
                    .parse()?;
                let (node, mut delivered) = Node::start(NodeConfig {
                    id,
                    committee,
                    keys,
                    parameters,
                    protocol: "hotstuff".into(),
                    store: Arc::new(store),
                    environment: Environment::Turmoil,
                    bind: format!("0.0.0.0:{port}").parse()?,
                    seed,
                    seeded_transport: true,
                    adversary: None,
                    clock: primitives::clock::NodeClock::real(),
                    twins: Default::default(),
                })
                .await?;
                while let Some(d) = delivered.recv().await {
                    let mut log = log.lock().unwrap();
                    assert_eq!(d.position as usize, log.sequence.len());
                    log.sequence.push(d.certificate);
                    for tx in d.transactions {
                        *log.transactions.entry(tx).or_default() += 1;
                    }
                    log.blocks = node
                        .driver_metrics
                        .blocks_committed
                        .load(std::sync::atomic::Ordering::Relaxed);
                }
                Ok(())
            }
        });
    }
    for c in (0..n).filter(|c| Some(*c) != crashed) {
        let member = committee.member(NodeId(c as u16)).unwrap().clone();
        let submitted = submitted.clone();
        let mut rng_seed = [0u8; 32];
        rng_seed[..8].copy_from_slice(&seed.to_le_bytes());
        rng_seed[8] = c as u8;
        rng_seed[9] = 0xcc;
        sim.client(format!("client{c}"), async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let mut client = TransactionClient::connect(
                Environment::Turmoil,
                &member.workers[0].transactions,
                member.public_key,
                1 << 20,
                Some(rng_seed),
            )
            .await?;
            for seq in 0..1_500u64 {
                let mut tx = vec![0u8; 128];
                tx[..8].copy_from_slice(&(c as u64).to_be_bytes());
                tx[8..16].copy_from_slice(&seq.to_be_bytes());
                let tx = Bytes::from(tx);
                submitted.lock().unwrap().insert(tx.clone());
                client.submit(tx).await?;
                if seq % 10 == 9 {
                    client.flush().await?;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            client.finish().await?;
            Ok(())
        });
    }
    let at_heal = Arc::new(Mutex::new(Vec::new()));
    let logs_at_heal = logs.clone();
    let heal_record = at_heal.clone();
    sim.client("driver", async move {
        if let Some((cut, heal)) = split {
            tokio::time::sleep(cut).await;
            for a in [0, 1] {
                for b in [2, 3] {
                    turmoil::partition(host(a), host(b));
                }
            }
            tokio::time::sleep(heal - cut).await;
            for a in [0, 1] {
                for b in [2, 3] {
                    turmoil::repair(host(a), host(b));
                }
            }
            *heal_record.lock().unwrap() = logs_at_heal
                .iter()
                .map(|l| l.lock().unwrap().sequence.len())
                .collect();
            tokio::time::sleep(Duration::from_secs(40) - heal).await;
        } else {
            tokio::time::sleep(Duration::from_secs(40)).await;
        }
        Ok(())
    });
    sim.run().unwrap();
    let logs = logs.iter().map(|l| l.lock().unwrap().clone()).collect();
    let submitted = submitted.lock().unwrap().clone();
    let at_heal = at_heal.lock().unwrap().clone();
    ((logs, submitted), at_heal)
}

fn check(logs: &[Log], submitted: &BTreeSet<Bytes>, live: &[usize], min_blocks: u64) {
    for &i in live {
        let log = &logs[i];
        assert!(
            log.blocks >= min_blocks,
            "node {i}: only {} blocks committed",
            log.blocks
        );
        for &j in live {
            let n = log.sequence.len().min(logs[j].sequence.len());
            assert_eq!(
                log.sequence[..n],
                logs[j].sequence[..n],
                "nodes {i} and {j} diverge"
            );
        }
        assert!(
            log.transactions.values().all(|c| *c == 1),
            "node {i} delivered a transaction twice"
        );
        let missing = submitted
            .iter()
            .filter(|t| !log.transactions.contains_key(*t))
            .count();
        assert_eq!(
            missing,
            0,
            "node {i} misses {missing} of {} transactions",
            submitted.len()
        );
        assert!(
            log.transactions.keys().all(|t| submitted.contains(t)),
            "node {i} delivered an unknown transaction"
        );
    }
}

#[test]
fn four_nodes_commit_the_same_sequence_and_every_transaction_once() {
    let (logs, submitted) = run(1, None);
    check(&logs, &submitted, &[0, 1, 2, 3], 100);
    // Same seed, same committed sequence.
    let (again, _) = run(1, None);
    for i in 0..4 {
        assert_eq!(
            again[i].sequence, logs[i].sequence,
            "node {i} does not replay"
        );
    }
}

#[test]
fn a_crashed_member_costs_timeouts_but_the_others_commit_everything() {
    let (logs, submitted) = run(2, Some(2));
    // Views the crashed member leads (and the views whose votes go to it) time out,
    // with backoff, so far fewer blocks commit; but everything submitted is committed.
    check(&logs, &submitted, &[0, 1, 3], 15);
}

#[test]
fn a_two_two_partition_commits_nothing_conflicting_and_recovers_after_healing() {
    let ((logs, submitted), at_heal) = run_with(
        3,
        None,
        Some((Duration::from_secs(4), Duration::from_secs(14))),
        false,
    );
    // Agreement (prefixes), every transaction exactly once, everything eventually committed.
    check(&logs, &submitted, &[0, 1, 2, 3], 15);
    // Commits resumed after the heal on every node.
    for i in 0..4 {
        assert!(
            logs[i].sequence.len() > at_heal[i],
            "node {i} committed nothing after healing"
        );
    }
}

/// About a minute in a debug build (every vote and certificate is a pairing check):
/// run with `cargo test -p consensus --test hotstuff_sim -- --ignored`.
#[test]
#[ignore]
fn bls_quorum_certificates_work_end_to_end() {
    let ((logs, submitted), _) = run_with(4, None, None, true);
    check(&logs, &submitted, &[0, 1, 2, 3], 30);
}

/// A node whose persisted safety state cannot be decoded must not start: starting on
/// defaults would let it vote again in views it already voted in.
#[test]
fn a_node_whose_safety_state_is_corrupt_refuses_to_start() {
    use mempool::store::{Store, StoreOp, Table};
    let hosts: Vec<String> = (0..4).map(host).collect();
    let (committee, keys) = Committee::generate(4, 1, &hosts, 6000, Some(1)).unwrap();
    let committee = Arc::new(committee);
    let store = MemoryStore::new();
    store
        .write(vec![StoreOp::Put(
            Table::Meta,
            consensus::driver::SAFETY_KEY.to_vec(),
            Bytes::from_static(b"not a safety state"),
        )])
        .unwrap();
    let outcome: Arc<Mutex<Option<String>>> = Arc::default();
    let mut sim = turmoil::Builder::new()
        .simulation_duration(Duration::from_secs(10))
        .build();
    let seen = outcome.clone();
    let key = keys[0].clone();
    sim.client(host(0), async move {
        let started = Node::start(NodeConfig {
            id: NodeId(0),
            committee,
            keys: key,
            parameters: Parameters::default(),
            protocol: "hotstuff".into(),
            store: Arc::new(store),
            environment: Environment::Turmoil,
            bind: "0.0.0.0:6000".parse()?,
            seed: 1,
            seeded_transport: true,
            adversary: None,
            clock: primitives::clock::NodeClock::real(),
            twins: Default::default(),
        })
        .await;
        *seen.lock().unwrap() = Some(match started {
            Ok(_) => "started".into(),
            Err(e) => e.to_string(),
        });
        Ok(())
    });
    sim.run().unwrap();
    let message = outcome.lock().unwrap().clone().unwrap();
    assert!(
        message.contains("cannot be decoded") && message.contains("refusing to start"),
        "{message}"
    );
}
