//! The real transport inside turmoil: partitions heal, reliable messages get through,
//! and a seed replays the same delivery trace.

use network::{Environment, Network, NetworkConfig};
use primitives::parameters::NetworkParameters;
use primitives::{Committee, NodeId};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const NODES: usize = 4;
const MESSAGES: u32 = 300;
const SEND_EVERY: Duration = Duration::from_millis(100);
const PARTITION_AT: Duration = Duration::from_secs(3);
const REPAIR_AT: Duration = Duration::from_secs(18);

/// (receiver, sender, sequence number, simulated arrival time)
type Trace = Vec<(u16, u16, u32, Duration)>;

fn host(i: usize) -> String {
    format!("node{i}")
}

fn run(seed: u64) -> Trace {
    run_with(seed, false)
}

/// With `hostile`, links also break at random (dropping what is in flight) and hosts
/// are polled in random order, which reorders datagrams.
fn run_with(seed: u64, hostile: bool) -> Trace {
    simulate(seed, hostile, REPAIR_AT, NetworkParameters::default())
}

/// The last node is cut off from `PARTITION_AT` to `repair_at`.
fn simulate(seed: u64, hostile: bool, repair_at: Duration, base: NetworkParameters) -> Trace {
    let mut builder = turmoil::Builder::new();
    builder
        .simulation_duration(Duration::from_secs(120))
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(25))
        .udp_capacity(4096)
        .rng_seed(seed);
    if hostile {
        builder
            .fail_rate(0.02)
            .repair_rate(0.2)
            .enable_random_order();
    }
    let mut sim = builder.build();
    let hosts: Vec<String> = (0..NODES).map(host).collect();
    let (committee, keys) = Committee::generate(NODES, 1, &hosts, 4000, Some(seed)).unwrap();
    let committee = Arc::new(committee);
    let trace = Arc::new(Mutex::new(Trace::new()));

    for (i, key) in keys.iter().enumerate() {
        let committee = committee.clone();
        let key = key.ed25519.clone();
        let trace = trace.clone();
        let base = base.clone();
        sim.host(host(i), move || {
            let committee = committee.clone();
            let key = key.clone();
            let trace = trace.clone();
            let base = base.clone();
            async move {
                let port: u16 = committee
                    .member(NodeId(i as u16))
                    .unwrap()
                    .primary
                    .rsplit_once(':')
                    .unwrap()
                    .1
                    .parse()
                    .unwrap();
                let mut rng_seed = [0u8; 32];
                rng_seed[..8].copy_from_slice(&seed.to_le_bytes());
                rng_seed[8] = i as u8;
                // With a fixed large datagram size, messages too big for an Ethernet one.
                let size = if base.max_udp_payload > 0 { 5_000 } else { 200 };
                let (net, mut rx) = Network::start(NetworkConfig {
                    id: NodeId(i as u16),
                    key,
                    committee,
                    parameters: NetworkParameters {
                        retry_min_delay_ms: 100,
                        retry_max_delay_ms: 2_000,
                        ..base
                    },
                    environment: Environment::Turmoil,
                    bind: format!("0.0.0.0:{port}").parse().unwrap(),
                    rng_seed: Some(rng_seed),
                    twins: Default::default(),
                })
                .await?;
                tokio::spawn(async move {
                    while let Some(m) = rx.recv().await {
                        let seq = u32::from_be_bytes(m.payload[..4].try_into().unwrap());
                        let at = turmoil::sim_elapsed().unwrap_or_default();
                        trace.lock().unwrap().push((i as u16, m.from.0, seq, at));
                    }
                });
                let sender = net.sender();
                for seq in 0..MESSAGES {
                    tokio::time::sleep(SEND_EVERY).await;
                    let mut payload = seq.to_be_bytes().to_vec();
                    payload.resize(size, i as u8);
                    for d in sender
                        .broadcast_reliable(sender.others(), payload.into())
                        .await?
                    {
                        d.detach();
                    }
                }
                std::future::pending::<()>().await;
                drop(net);
                Ok(())
            }
        });
    }
    sim.client("controller", async move {
        tokio::time::sleep(PARTITION_AT).await;
        for i in 0..NODES - 1 {
            turmoil::partition(host(NODES - 1), host(i));
        }
        tokio::time::sleep(repair_at - PARTITION_AT).await;
        for i in 0..NODES - 1 {
            turmoil::repair(host(NODES - 1), host(i));
        }
        tokio::time::sleep(Duration::from_secs(90)).await;
        Ok(())
    });
    sim.run().unwrap();
    let trace = trace.lock().unwrap().clone();
    trace
}

fn assert_complete(trace: &Trace) {
    for receiver in 0..NODES as u16 {
        for sender in (0..NODES as u16).filter(|s| *s != receiver) {
            let got: BTreeSet<u32> = trace
                .iter()
                .filter(|(r, s, _, _)| *r == receiver && *s == sender)
                .map(|(_, _, seq, _)| *seq)
                .collect();
            assert_eq!(got.len(), MESSAGES as usize, "{receiver} from {sender}");
        }
    }
}

#[test]
fn random_link_failures_and_reordering_lose_no_reliable_message() {
    for seed in [1, 2, 3] {
        let trace = run_with(seed, true);
        assert_complete(&trace);
        // The hostile network did interfere: some messages needed resends.
        let latest = trace
            .iter()
            .map(|(_, _, seq, at)| at.saturating_sub(SEND_EVERY * (seq + 1)))
            .max()
            .unwrap();
        eprintln!(
            "seed {seed}: {} deliveries, worst lateness {latest:?}",
            trace.len()
        );
        assert!(latest > Duration::from_millis(300), "{latest:?}");
        assert_eq!(run_with(seed, true), trace, "seed {seed} does not replay");
    }
}

#[test]
fn jumbo_datagrams_lose_no_reliable_message_on_a_hostile_network() {
    // `max_udp_payload` fixes QUIC's datagram size (no path MTU discovery): messages of
    // 5,000 bytes, each one datagram, through link failures and reordering.
    let jumbo = NetworkParameters {
        max_udp_payload: 8_952,
        ..NetworkParameters::default()
    };
    let trace = simulate(4, true, REPAIR_AT, jumbo.clone());
    assert_complete(&trace);
    assert_eq!(
        simulate(4, true, REPAIR_AT, jumbo),
        trace,
        "does not replay"
    );
}

#[test]
fn partitioned_node_gets_every_reliable_message_after_repair_and_seeds_replay() {
    let trace = run(7);
    // Every node received every message of every other node (at least once).
    assert_complete(&trace);
    // The partition held: nothing crossed it between partition and repair...
    let isolated = (NODES - 1) as u16;
    let crossed_during = trace.iter().filter(|(r, s, _, at)| {
        (*r == isolated) != (*s == isolated)
            && *at > PARTITION_AT + Duration::from_millis(100)
            && *at < REPAIR_AT
    });
    assert_eq!(crossed_during.count(), 0);
    // ...and messages sent while it held arrived after repair.
    let sent_during = |seq: u32| {
        let t = SEND_EVERY * (seq + 1);
        t > PARTITION_AT + Duration::from_millis(100) && t < REPAIR_AT
    };
    let late: Vec<_> = trace
        .iter()
        .filter(|(r, s, seq, _)| (*r == isolated) != (*s == isolated) && sent_during(*seq))
        .collect();
    assert!(late.len() >= 2 * 3 * 100, "{}", late.len());
    assert!(late.iter().all(|(_, _, _, at)| *at >= REPAIR_AT));

    // Same seed, same trace; another seed, another trace.
    let again = run(7);
    if let Some(i) = (0..trace.len().min(again.len())).find(|i| trace[*i] != again[*i]) {
        panic!(
            "runs diverge at event {i}: {:?} vs {:?}",
            trace[i], again[i]
        );
    }
    assert_eq!(again.len(), trace.len());
    assert!(run(8) != trace);
}

/// The longest any message sent across the cut after `repair_at` took to arrive.
fn worst_after_repair(trace: &Trace, repair_at: Duration) -> Duration {
    let isolated = (NODES - 1) as u16;
    trace
        .iter()
        .filter(|(r, s, seq, _)| {
            (*r == isolated) != (*s == isolated) && SEND_EVERY * (seq + 1) >= repair_at
        })
        .map(|(_, _, seq, at)| at.saturating_sub(SEND_EVERY * (seq + 1)))
        .max()
        .unwrap()
}

/// The worst delivery delay after `repair_at` (the last node cut off from
/// `PARTITION_AT`) with the default parameters and with `silent_redial_ms` = 0 (no
/// redial and unbounded dials); both runs deliver everything.
fn with_and_without_redial(seed: u64, repair_at: Duration) -> (Duration, Duration) {
    let with = simulate(seed, false, repair_at, NetworkParameters::default());
    assert_complete(&with);
    let without = simulate(
        seed,
        false,
        repair_at,
        NetworkParameters {
            silent_redial_ms: 0,
            ..NetworkParameters::default()
        },
    );
    assert_complete(&without);
    let delays = (
        worst_after_repair(&with, repair_at),
        worst_after_repair(&without, repair_at),
    );
    eprintln!(
        "worst delay after the heal: {:?} with the redial, {:?} without",
        delays.0, delays.1
    );
    delays
}

/// A cut shorter than the idle timeout leaves the connections open, their QUIC probe
/// timers backed off: without a fresh dial, traffic across it resumes only at the next
/// probe, seconds after the heal. With `silent_redial_ms` it resumes within about one
/// redial period (simulated time; a bound on behaviour, not on speed).
#[test]
fn a_connection_that_outlived_a_short_cut_is_replaced_soon_after_the_heal() {
    let (fast, slow) = with_and_without_redial(3, PARTITION_AT + Duration::from_secs(8));
    assert!(fast <= Duration::from_millis(3_500), "{fast:?}");
    assert!(slow > fast, "{slow:?} vs {fast:?}");
}

/// A cut longer than the idle timeout (10 s): the connections die during it and the
/// dials made after run into it. Each dial attempt is bounded by `silent_redial_ms`, so
/// one is fresh when the cut heals; an unbounded one had backed its handshake off and
/// got through 2.2 s after the heal at 25 s (seeds 1-4; 0.6 s bounded). (For cuts of
/// 12 and 20 s both were within 1.2 s; bounded dials were 0.1-0.3 s slower there.)
#[test]
fn after_a_cut_longer_than_the_idle_timeout_a_fresh_dial_gets_through_soon() {
    let (fast, slow) = with_and_without_redial(1, PARTITION_AT + Duration::from_secs(25));
    assert!(fast <= Duration::from_millis(1_500), "{fast:?}");
    assert!(slow > fast, "{slow:?} vs {fast:?}");
}
