//! The driver's promises to a core, checked with a probe protocol on real Nodes (real
//! QUIC over turmoil, real mempool): reliable sends survive a partition, the proposer
//! hold keeps the DAG at its bound until lifted, certificates arrive with their parents
//! and authors' weights, the GC horizon is reported, timers fire, and the core's
//! counters reach the driver's metrics.

use consensus::byzantine::{Adversarial, MessageKind};
use consensus::registry::{entry, Entry};
use consensus::{
    Action, ConsensusError, Context, Counters, Delivery, Event, Node, NodeConfig, Protocol,
    ProtocolConfig, Rejected, Time, TimerId,
};
use mempool::MemoryStore;
use network::Environment;
use primitives::{Committee, NodeId, Parameters, Round};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ProbeConfig {
    /// Hold the DAG proposer at this round until `release_ms`.
    hold_round: u64,
    release_ms: u64,
    /// Broadcast a reliable hello at this tick (of 100 ms).
    hello_tick: u64,
    /// Commit nothing (the driver must warn that it waits for the core).
    no_commits: bool,
    /// Commit, with the first own certificate, an anchor nobody has (the driver must
    /// warn that it waits for certificates).
    phantom_anchor: bool,
}

impl ProtocolConfig for ProbeConfig {
    const PARAMETERS: &'static [(&'static str, &'static str)] = &[
        ("hold_round", "round the proposer is held at"),
        ("release_ms", "when the hold is lifted"),
        ("hello_tick", "when the reliable hello goes out"),
        ("no_commits", "commit nothing"),
        ("phantom_anchor", "commit an anchor nobody has"),
    ];
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Ping {
    Hello(u16),
}

/// A protocol that only exercises the driver.
struct Probe {
    id: NodeId,
    config: ProbeConfig,
    ticks: u64,
    held: bool,
    max_round: u64,
    max_round_while_held: u64,
    bad_certificates: u64,
    horizon: u64,
    hellos: BTreeSet<u16>,
    phantom_committed: bool,
}

const TICK: TimerId = TimerId::new(1);

impl Protocol for Probe {
    const NAME: &'static str = "probe";
    const DESCRIPTION: &'static str = "exercises the driver";
    type Config = ProbeConfig;
    type Message = Ping;

    fn new(context: Context, config: ProbeConfig) -> Result<Self, ConsensusError> {
        Ok(Probe {
            id: context.id,
            config,
            ticks: 0,
            held: false,
            max_round: 0,
            max_round_while_held: 0,
            bad_certificates: 0,
            horizon: 0,
            hellos: BTreeSet::new(),
            phantom_committed: false,
        })
    }

    fn verify(&self, _from: NodeId, _message: &Ping) -> Result<(), Rejected> {
        Ok(())
    }

    fn handle(&mut self, now: Time, event: Event<Ping>) -> Vec<Action<Ping>> {
        let mut out = Vec::new();
        match event {
            Event::Start => {
                self.held = true;
                out.push(Action::HoldProposer {
                    max_round: Some(Round(self.config.hold_round)),
                });
                out.push(Action::SetTimer {
                    id: TICK,
                    after: Duration::from_millis(100),
                });
            }
            Event::Timer(id) if id == TICK => {
                self.ticks += 1;
                if self.ticks == self.config.hello_tick {
                    out.push(Action::Broadcast {
                        message: Ping::Hello(self.id.0),
                        delivery: Delivery::Reliable { key: 0 },
                    });
                }
                if self.held && now.0 >= Duration::from_millis(self.config.release_ms) {
                    self.held = false;
                    out.push(Action::HoldProposer { max_round: None });
                }
                out.push(Action::SetTimer {
                    id: TICK,
                    after: Duration::from_millis(100),
                });
            }
            Event::Timer(_) => {}
            Event::Certificate(c) => {
                // Commit our own certificates as anchors, so the linearizer delivers and
                // the mempool collects garbage (which the horizon event reports).
                if c.author == self.id && self.config.phantom_anchor {
                    if !self.phantom_committed {
                        self.phantom_committed = true;
                        out.push(Action::Commit {
                            block: c.digest,
                            height: c.round.0,
                            anchors: vec![(primitives::Digest::of(b"nobody has it"), c.round)],
                        });
                    }
                } else if c.author == self.id && !self.config.no_commits {
                    out.push(Action::Commit {
                        block: c.digest,
                        height: c.round.0,
                        anchors: vec![(c.digest, c.round)],
                    });
                }
                self.max_round = self.max_round.max(c.round.0);
                if self.held {
                    self.max_round_while_held = self.max_round_while_held.max(c.round.0);
                }
                if c.weight.0 != 1 || (c.round.0 > 1 && c.parents.len() < 3) {
                    self.bad_certificates += 1;
                }
            }
            Event::Horizon { gc_round } => self.horizon = self.horizon.max(gc_round.0),
            Event::Installed { .. } => {}
            Event::Message {
                message: Ping::Hello(from),
                ..
            } => {
                self.hellos.insert(from);
            }
        }
        out
    }

    fn metrics(&self) -> Counters {
        vec![
            ("ticks", self.ticks),
            ("max_round", self.max_round),
            ("max_round_while_held", self.max_round_while_held),
            ("bad_certificates", self.bad_certificates),
            ("hellos", self.hellos.len() as u64),
            ("horizon", self.horizon),
        ]
    }
}

impl Adversarial for Probe {
    fn kind(_message: &Ping) -> MessageKind {
        MessageKind::Other
    }
    fn with_bad_signature(&self, message: &Ping) -> Ping {
        message.clone()
    }
}

static PROBE: Entry = entry::<Probe>();

fn host(i: usize) -> String {
    format!("node{i}")
}

/// Run 4 probe nodes for `secs` simulated seconds, node 0 cut off from the others during
/// `isolated`; returns each node's last core counters.
fn run(secs: u64, isolated: (Duration, Duration), config: &str) -> Vec<Counters> {
    // RUST_LOG=mempool=debug shows what the nodes do.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let n = 4;
    let hosts: Vec<String> = (0..n).map(host).collect();
    let (committee, keys) = Committee::generate(n, 1, &hosts, 6000, Some(3)).unwrap();
    let committee = Arc::new(committee);
    let mut parameters = Parameters::default();
    parameters.mempool.max_header_delay_ms = 50;
    parameters.mempool.gc_depth = 5;
    parameters.mempool.sync_retry_delay_ms = 1_000;
    parameters
        .consensus
        .insert("probe".into(), toml::from_str(config).unwrap());
    let counters: Vec<Arc<Mutex<Counters>>> = (0..n).map(|_| Arc::default()).collect();
    let mut sim = turmoil::Builder::new()
        .simulation_duration(Duration::from_secs(secs + 5))
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(10))
        .rng_seed(3)
        .build();
    for i in 0..n {
        let (committee, keys, parameters) =
            (committee.clone(), keys[i].clone(), parameters.clone());
        let seen = counters[i].clone();
        sim.host(host(i), move || {
            let (committee, keys, parameters, seen) = (
                committee.clone(),
                keys.clone(),
                parameters.clone(),
                seen.clone(),
            );
            async move {
                let id = NodeId(i as u16);
                let port = committee
                    .member(id)
                    .and_then(|m| primitives::committee::port_of(&m.primary))
                    .ok_or("bad address")?;
                let (node, _delivered) = Node::start_with(
                    NodeConfig {
                        id,
                        committee,
                        keys,
                        parameters,
                        protocol: "probe".into(),
                        store: Arc::new(MemoryStore::new()),
                        environment: Environment::Turmoil,
                        bind: format!("0.0.0.0:{port}").parse()?,
                        seed: 3,
                        seeded_transport: true,
                        adversary: None,
                        clock: primitives::clock::NodeClock::real(),
                        twins: Default::default(),
                    },
                    &PROBE,
                )
                .await?;
                loop {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    let d = &node.driver_metrics;
                    let mut counters = d.core_counters();
                    let load = |c: &std::sync::atomic::AtomicU64| {
                        c.load(std::sync::atomic::Ordering::Relaxed)
                    };
                    counters.extend([
                        ("stalls_certificates", load(&d.stalls_waiting_certificates)),
                        ("stalls_core", load(&d.stalls_waiting_core)),
                        ("stalls_batches", load(&d.stalls_waiting_batches)),
                    ]);
                    *seen.lock().unwrap() = counters;
                }
            }
        });
    }
    sim.client("clock", async move {
        tokio::time::sleep(Duration::from_secs(secs)).await;
        Ok(())
    });
    let (mut cut, mut healed) = (false, false);
    while sim.elapsed() < Duration::from_secs(secs) {
        if !cut && sim.elapsed() >= isolated.0 {
            for y in 1..n {
                sim.partition(host(0), host(y));
            }
            cut = true;
        }
        if cut && !healed && sim.elapsed() >= isolated.1 {
            for y in 1..n {
                sim.repair(host(0), host(y));
            }
            healed = true;
        }
        sim.step().unwrap();
    }
    counters.iter().map(|c| c.lock().unwrap().clone()).collect()
}

fn get(counters: &[(&'static str, u64)], name: &str) -> u64 {
    counters
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v)
        .unwrap_or_else(|| panic!("no counter {name} in {counters:?}"))
}

#[test]
fn the_driver_keeps_its_promises_to_a_core() {
    // Node 0 is cut off for longer than QUIC's idle timeout (10 s), so its connections
    // die: only a resent (reliable) message gets through on the new ones.
    let cut = (Duration::from_millis(1_000), Duration::from_millis(12_500));
    let nodes = run(
        20,
        cut,
        "hold_round = 4\nrelease_ms = 14000\nhello_tick = 12",
    );
    for (i, c) in nodes.iter().enumerate() {
        // Reliable hellos sent at 1.2 s reached everyone, across node 0's partition.
        assert_eq!(get(c, "hellos"), 3, "node {i}: {c:?}");
        // Timers fired every 100 ms (20 s of simulated time).
        assert!(get(c, "ticks") >= 180, "node {i}: {c:?}");
        // The hold kept the DAG at round 4 until lifted at 14 s; then it went on.
        assert!(get(c, "max_round_while_held") <= 4, "node {i}: {c:?}");
        assert!(get(c, "max_round") > 10, "node {i}: {c:?}");
        // Certificates came with their authors' weight and a quorum of parents.
        assert_eq!(get(c, "bad_certificates"), 0, "node {i}: {c:?}");
        // Commits moved the GC horizon (gc_depth 5), and the core heard of it.
        assert!(get(c, "horizon") > 0, "node {i}: {c:?}");
    }
}

/// Issue 10: a node that commits nothing for several timeouts while the DAG grows warns
/// (and counts) what it waits for: the core, or committed anchors missing from its DAG.
#[test]
fn a_stalled_node_says_what_it_waits_for() {
    let none = (Duration::from_secs(100), Duration::from_secs(100));
    for (config, cause) in [
        ("no_commits = true", "stalls_core"),
        ("phantom_anchor = true", "stalls_certificates"),
    ] {
        let nodes = run(12, none, config);
        for (i, c) in nodes.iter().enumerate() {
            assert!(get(c, "max_round") > 10, "{config}, node {i}: {c:?}");
            // One warning per 5 s stalled: at 5 s and at 10 s.
            assert!(get(c, cause) >= 1, "{config}, node {i}: {c:?}");
            for other in ["stalls_core", "stalls_certificates", "stalls_batches"] {
                if other != cause {
                    assert_eq!(get(c, other), 0, "{config}, node {i}: {c:?}");
                }
            }
        }
    }
    // A committee that commits does not warn.
    let nodes = run(12, none, "");
    for (i, c) in nodes.iter().enumerate() {
        assert_eq!(
            get(c, "stalls_core") + get(c, "stalls_certificates"),
            0,
            "node {i}: {c:?}"
        );
    }
}
