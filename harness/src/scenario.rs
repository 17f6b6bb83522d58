//! Scenario files.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// A scenario, as written in TOML.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Its name.
    pub name: String,
    /// Consensus protocol, a registered name (`bftlab protocols`); `bftlab sim
    /// --protocol` overrides it. Its parameters go in `[parameters.consensus.<name>]`.
    #[serde(default = "default_protocol")]
    pub protocol: String,
    /// Committee size.
    pub nodes: usize,
    /// Voting weight of each member, in id order (default: 1 each).
    #[serde(default)]
    pub weights: Option<Vec<u64>>,
    /// Simulated seconds the run lasts.
    pub duration_s: u64,
    /// Seeds to run (a sweep); `run` takes one of them.
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    /// Transactions per second per client (one client per honest node).
    #[serde(default = "default_rate")]
    pub rate: u64,
    /// Transaction size in bytes.
    #[serde(default = "default_tx_size")]
    pub tx_size: usize,
    /// Clients stop submitting at this simulated second.
    pub submit_until_s: u64,
    /// Smallest and largest one-way message latency, in milliseconds.
    #[serde(default = "default_latency")]
    pub latency_ms: (u64, u64),
    /// A WAN: every pair of nodes gets its own fixed one-way latency, drawn once per
    /// seed uniformly from `(min, max)` ms (the same both ways). Datagrams on a link
    /// keep their order, as on a real path; `latency_ms` (which gives every datagram its
    /// own random delay, and so reorders a flow's packets by up to its range) then
    /// applies only to the clients' links. `links` overrides it per pair.
    #[serde(default)]
    pub link_latency_ms: Option<(u64, u64)>,
    /// A WAN from a measured matrix (see [`crate::wan`]): a CSV file of round trips
    /// between regions, relative to the scenario file's directory. Every pair of nodes
    /// gets the one-way latency between their regions (half the round trip), fixed, as
    /// with `link_latency_ms` (the two are exclusive); `links` overrides it per pair.
    #[serde(default)]
    pub latency_matrix: Option<String>,
    /// The region of each node, by name (default: round robin over the matrix's
    /// regions in the file's order).
    #[serde(default)]
    pub regions: Option<Vec<String>>,
    /// Jitter on the matrix's links: each datagram takes up to this many milliseconds
    /// more than its link's latency (turmoil's exponential curve between the two), so
    /// datagrams on a link may overtake each other by up to this much.
    #[serde(default)]
    pub jitter_ms: u64,
    /// The matrix `latency_matrix` names, read by [`Scenario::load`] (also written into
    /// run records, so a record shows the latencies it ran with).
    #[serde(default, skip_deserializing)]
    pub matrix: Option<crate::wan::LatencyMatrix>,
    /// Per-millisecond probability that a link fails (every datagram in flight on it
    /// is lost; it comes back the next millisecond): turmoil's link failure model.
    #[serde(default)]
    pub loss: f64,
    /// Faults of single datagrams under QUIC, on every link (nodes' and clients'):
    /// `[packet_faults]` with `loss`, `duplicate`, `reorder` (probabilities per
    /// datagram), `reorder_ms` (the longest hold of a reordered one, default 20),
    /// `bandwidth_mbps` (each sender's cap toward each peer) and `queue_ms` (what a
    /// capped link queues before it drops, default 100). See
    /// [`network::packet_faults`].
    #[serde(default)]
    pub packet_faults: Option<network::packet_faults::PacketFaults>,
    /// Nodes' own clocks (see [`primitives::clock`]): each entry changes one node's
    /// clock at `at_s` (default 0): its rate from then on (`rate`, times real speed;
    /// default: unchanged) and a jump forward (`jump_s`, default 0). The consensus
    /// core's time and timers and the mempool's delays run on it; the network's and
    /// every other node's time do not change.
    #[serde(default)]
    pub clocks: Vec<ClockEntry>,
    /// Per-link overrides of latency and loss.
    #[serde(default)]
    pub links: Vec<LinkOverride>,
    /// Faults, in time order.
    #[serde(default)]
    pub faults: Vec<Fault>,
    /// Byzantine members and what they do. They are not held to any property.
    #[serde(default)]
    pub byzantine: Vec<ByzantineNode>,
    /// Twins testing (Bano et al., "Twins: BFT Systems Made Robust", OPODIS 2021):
    /// members that run twice, as two full nodes with one identity and key (each with
    /// its own store), which equivocate only because they see different messages. The
    /// second instance of `twins[k]` is instance `nodes + k`: the faults and `links`
    /// may name it like a node; what is sent to the member goes to both instances (as
    /// far as the links let it). A twinned member is Byzantine: neither instance is
    /// held to any property.
    #[serde(default)]
    pub twins: Vec<usize>,
    /// Test only: behaviours every node runs although each is still held to every
    /// property. A known-bad variant of the honest code (`double-vote-headers`: the
    /// mempool's rule of one vote per author and round switched off), to show that the
    /// checkers, or a Twins sweep, catch what it breaks.
    #[serde(default)]
    pub known_bad: Vec<Misbehaviour>,
    /// Overrides of the node parameters, as in a parameters file: sections
    /// `[parameters.network]`, `[parameters.mempool]`, and one
    /// `[parameters.consensus.<protocol>]` per protocol.
    #[serde(default)]
    pub parameters: Option<toml::Table>,
    /// The scenario exceeds what the protocol tolerates: a seed that violates a
    /// property is the expected outcome (`bftlab sim` succeeds if any seed does).
    #[serde(default)]
    pub expect_violation: bool,
    /// Protocols its Byzantine behaviours have nothing to act on (the DAG-native cores
    /// send no consensus messages to equivocate or double-vote with): under them the
    /// scenario is an honest-majority one, `expect_violation` does not apply, and every
    /// property must hold.
    #[serde(default)]
    pub no_violation_under: Vec<String>,
    /// Protocols whose fault bound the scenario exceeds although the 3f+1 cores
    /// tolerate it (Snowman's consistency needs Byzantine weight below n/5): under them
    /// `expect_violation` holds, and the checkers must see the violation.
    #[serde(default)]
    pub violation_expected_under: Vec<String>,
    /// After the last fault heals (or from the start), every honest node must commit new
    /// transactions within this many simulated seconds.
    #[serde(default = "default_liveness")]
    pub liveness_bound_s: u64,
    /// The liveness bound under particular protocols, by name, for a scenario whose
    /// bound is "a few base timeouts": each core's own (Tendermint's 3 s propose
    /// timeout, Snowman's 5 s proposer window) rather than the fastest core's.
    #[serde(default)]
    pub liveness_bound_under: BTreeMap<String, u64>,
}

/// A change of one node's clock.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockEntry {
    /// Which node.
    pub node: usize,
    /// When (simulated seconds).
    #[serde(default)]
    pub at_s: f64,
    /// Its clock's rate from then on, times real speed (unchanged if absent).
    #[serde(default)]
    pub rate: Option<f64>,
    /// A jump forward, in seconds.
    #[serde(default)]
    pub jump_s: f64,
}

/// Latency and loss of the links between two groups (both directions), from the start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkOverride {
    /// One side.
    pub a: Vec<usize>,
    /// The other side.
    pub b: Vec<usize>,
    /// Fixed one-way latency, in milliseconds.
    #[serde(default)]
    pub latency_ms: Option<u64>,
    /// Link failure probability per millisecond (see [`Scenario::loss`]).
    #[serde(default)]
    pub loss: Option<f64>,
}

/// A Byzantine member.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ByzantineNode {
    /// Which member.
    pub node: usize,
    /// What it does (any combination).
    pub behaviours: Vec<Misbehaviour>,
}

/// The named Byzantine behaviours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Misbehaviour {
    /// Never sends anything (a crash without restart, from the start).
    Silent,
    /// As leader, conflicting proposals to the two halves of the honest members.
    Equivocate,
    /// Votes for every proposal of a view it sees.
    DoubleVote,
    /// Never votes.
    WithholdVotes,
    /// Every consensus message carries a broken signature.
    InvalidSignatures,
    /// Re-sends old consensus messages alongside new ones.
    Replay,
    /// With every consensus message, validly signed ones for instances up to a million
    /// ahead, for blocks nobody has.
    FutureFlood,
    /// Two DAG headers per round, one to each half of the honest others (colluders get
    /// both).
    EquivocateHeaders,
    /// Votes for every DAG header of an author in a round, not only the first (with an
    /// equivocating colluder, both its headers can be certified).
    DoubleVoteHeaders,
    /// Its DAG headers of even rounds (where Bullshark's and Tusk's anchors sit) to only
    /// f others, so they are never certified: a leader withholding its anchor.
    WithholdAnchors,
    /// Batches only to a bare availability quorum, and no answers to batch requests.
    WithholdBatches,
    /// Floods every peer with undecodable frames (200 per second each).
    Garbage,
    /// Asks every peer's worker, 100 times a second, for up to 1,000 batches: the
    /// newest of its DAG, each twice, and unknown ones.
    BatchRequestFlood,
    /// Asks every peer, 100 times a second, for every certificate of rounds 0 to
    /// `u64::MAX`, for 1,000 unknown certificates, and for the committed history from
    /// position 0.
    SyncSpam,
    /// Pushes a batch of random transactions to every peer's worker 0, 100 times a
    /// second, and never proposes them.
    BatchFlood,
}

/// One fault at a simulated time. (Unknown keys inside a fault are not detected: serde
/// cannot refuse them through the flattened fault kind.)
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// When, in simulated seconds.
    pub at_s: f64,
    /// What.
    #[serde(flatten)]
    pub kind: FaultKind,
}

/// The kinds of fault.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "kebab-case")]
pub enum FaultKind {
    /// Cut every link between the two groups (both directions).
    Partition {
        /// One side.
        a: Vec<usize>,
        /// The other side.
        b: Vec<usize>,
    },
    /// Repair every link.
    HealAll,
    /// Crash a node (it stays down unless restarted).
    Crash {
        /// Which.
        node: usize,
    },
    /// Restart a crashed node from its store.
    Restart {
        /// Which.
        node: usize,
    },
    /// Give the links between two groups a fixed one-way latency (until `heal-all`).
    Slow {
        /// One side.
        a: Vec<usize>,
        /// The other side.
        b: Vec<usize>,
        /// The latency, in milliseconds.
        latency_ms: u64,
    },
    /// Nothing the node sends arrives (it still hears everyone), until `heal-all`.
    IsolateOutbound {
        /// Which.
        node: usize,
    },
    /// Nothing sent to the node arrives (it still talks), until `heal-all`.
    IsolateInbound {
        /// Which.
        node: usize,
    },
}

fn default_protocol() -> String {
    "hotstuff".into()
}
fn default_seeds() -> Vec<u64> {
    vec![1]
}
fn default_rate() -> u64 {
    200
}
fn default_tx_size() -> usize {
    128
}
fn default_latency() -> (u64, u64) {
    (1, 10)
}
fn default_liveness() -> u64 {
    10
}

/// Longest simulated run accepted (a week): far beyond any useful scenario, and far
/// from overflowing simulated time.
pub const MAX_DURATION_S: u64 = 7 * 24 * 3600;

/// A scenario file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// Unreadable file.
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    /// Not a valid scenario.
    #[error("{0}: {1}")]
    Parse(String, String),
    /// Inconsistent values.
    #[error("{0}: {1}")]
    Invalid(String, String),
}

impl Scenario {
    /// Parse and check a scenario.
    pub fn from_toml(name: &str, text: &str) -> Result<Self, ScenarioError> {
        let s: Scenario = toml::from_str(text)
            .map_err(|e| ScenarioError::Parse(name.into(), e.message().into()))?;
        let bad = |m: &str| Err(ScenarioError::Invalid(name.into(), m.into()));
        if s.nodes == 0 || s.nodes > 100 {
            return bad("nodes must be in 1..=100");
        }
        if s.duration_s == 0 || s.duration_s > MAX_DURATION_S {
            return bad(&format!("duration_s must be in 1..={MAX_DURATION_S}"));
        }
        if s.submit_until_s > s.duration_s {
            return bad("submit_until_s must not exceed duration_s");
        }
        if std::iter::once(&s.liveness_bound_s)
            .chain(s.liveness_bound_under.values())
            .any(|b| *b == 0 || *b > MAX_DURATION_S)
        {
            return bad(&format!("liveness bounds must be in 1..={MAX_DURATION_S}"));
        }
        if s.latency_ms.1 > 60_000 {
            return bad("latency_ms must be at most 60,000 ms");
        }
        if s.rate > 1_000_000 {
            return bad("rate must be at most 1,000,000 tx/s per client");
        }
        if s.latency_ms.0 > s.latency_ms.1 {
            return bad("latency_ms must be (min, max) with min <= max");
        }
        if let Some((lo, hi)) = s.link_latency_ms {
            if lo > hi || hi > 60_000 {
                return bad("link_latency_ms must be (min, max) with min <= max <= 60,000 ms");
            }
        }
        if s.latency_matrix.is_some() && s.link_latency_ms.is_some() {
            return bad("latency_matrix and link_latency_ms are exclusive");
        }
        if s.latency_matrix.is_none() && (s.regions.is_some() || s.jitter_ms > 0) {
            return bad("regions and jitter_ms need a latency_matrix");
        }
        for c in &s.clocks {
            if c.node >= s.nodes {
                return bad("a clock entry names a node outside the committee");
            }
            if !c.at_s.is_finite() || c.at_s < 0.0 || c.at_s > s.duration_s as f64 {
                return bad("a clock entry's at_s must be a number of seconds within the run");
            }
            if c.rate
                .is_some_and(|r| !r.is_finite() || !(0.01..=100.0).contains(&r))
            {
                return bad("a clock rate must be in 0.01..=100");
            }
            if !c.jump_s.is_finite() || c.jump_s < 0.0 || c.jump_s > MAX_DURATION_S as f64 {
                return bad("a clock jump must be a number of seconds, at least 0");
            }
        }
        if let Some(Err(e)) = s.packet_faults.as_ref().map(|f| f.validate()) {
            return bad(&e);
        }
        if s.jitter_ms > 60_000 {
            return bad("jitter_ms must be at most 60,000 ms");
        }
        if s.tx_size < 16 {
            return bad("tx_size must be at least 16");
        }
        if let Err(e) = s.node_parameters() {
            return bad(&format!("parameters: {e}"));
        }
        if let Some(w) = &s.weights {
            if w.len() != s.nodes || w.contains(&0) {
                return bad("weights must give every node a weight of at least 1");
            }
        }
        let rate_ok = |r: f64| (0.0..1.0).contains(&r);
        if !rate_ok(s.loss) || s.links.iter().any(|l| !rate_ok(l.loss.unwrap_or(0.0))) {
            return bad("loss must be in [0, 1)");
        }
        if s.known_bad.iter().any(|m| {
            matches!(
                m,
                Misbehaviour::Silent
                    | Misbehaviour::Garbage
                    | Misbehaviour::BatchRequestFlood
                    | Misbehaviour::SyncSpam
                    | Misbehaviour::BatchFlood
            )
        }) {
            return bad("known_bad takes behaviours of the node's own code, not silence or floods");
        }
        if s.byzantine.iter().any(|b| b.node >= s.nodes) {
            return bad("a Byzantine entry names a node outside the committee");
        }
        let mut twinned = s.twins.clone();
        twinned.sort_unstable();
        twinned.dedup();
        if twinned.len() != s.twins.len() || s.twins.iter().any(|t| *t >= s.nodes) {
            return bad("twins must name distinct members of the committee");
        }
        if s.twins.len() >= s.nodes {
            return bad("fewer twins than nodes");
        }
        let instances = s.instances();
        if s.links
            .iter()
            .flat_map(|l| l.a.iter().chain(&l.b))
            .any(|n| *n >= instances)
        {
            return bad("a link names a node outside the committee (and its twins)");
        }
        for f in &s.faults {
            let nodes: Vec<usize> = match &f.kind {
                FaultKind::Partition { a, b } | FaultKind::Slow { a, b, .. } => {
                    a.iter().chain(b).copied().collect()
                }
                FaultKind::Crash { node }
                | FaultKind::Restart { node }
                | FaultKind::IsolateOutbound { node }
                | FaultKind::IsolateInbound { node } => vec![*node],
                FaultKind::HealAll => vec![],
            };
            if nodes.iter().any(|n| *n >= instances) {
                return bad("a fault names a node outside the committee (and its twins)");
            }
            if !f.at_s.is_finite() || f.at_s < 0.0 || f.at_s > s.duration_s as f64 {
                return bad("a fault's at_s must be a number of seconds within the run");
            }
        }
        Ok(s)
    }

    /// The same scenario under another protocol (checked like the file's own).
    pub fn with_protocol(mut self, protocol: &str) -> Result<Self, ScenarioError> {
        self.protocol = protocol.into();
        if self.no_violation_under.iter().any(|p| p == protocol) {
            self.expect_violation = false;
        }
        if self.violation_expected_under.iter().any(|p| p == protocol) {
            self.expect_violation = true;
        }
        if let Err(e) = self.node_parameters() {
            return Err(ScenarioError::Invalid(self.name.clone(), e));
        }
        Ok(self)
    }

    /// Load a scenario file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError::Io(name.clone(), e))?;
        let mut scenario = Self::from_toml(&name, &text)?;
        if let Some(file) = &scenario.latency_matrix {
            let dir = path.parent().unwrap_or(Path::new("."));
            let matrix = crate::wan::LatencyMatrix::load(&dir.join(file))
                .map_err(|e| ScenarioError::Invalid(name.clone(), e.to_string()))?;
            matrix
                .place(scenario.nodes, scenario.regions.as_deref())
                .map_err(|e| ScenarioError::Invalid(name.clone(), e))?;
            scenario.matrix = Some(matrix);
        }
        Ok(scenario)
    }

    /// Node `node`'s clock changes, in time order, each with its rate resolved (an
    /// entry without a rate keeps the one before it).
    pub fn clock_changes(&self, node: usize) -> Vec<primitives::clock::ClockChange> {
        let mut entries: Vec<&ClockEntry> = self.clocks.iter().filter(|c| c.node == node).collect();
        entries.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
        let mut rate = 1.0;
        entries
            .into_iter()
            .map(|c| {
                rate = c.rate.unwrap_or(rate);
                primitives::clock::ClockChange {
                    at: std::time::Duration::from_secs_f64(c.at_s),
                    rate,
                    jump: std::time::Duration::from_secs_f64(c.jump_s),
                }
            })
            .collect()
    }

    /// Nodes that crash at some point of the run (restarted or not).
    pub fn ever_crashed(&self) -> Vec<usize> {
        let mut nodes: Vec<usize> = self
            .faults
            .iter()
            .filter_map(|f| match f.kind {
                FaultKind::Crash { node } => Some(node),
                _ => None,
            })
            .collect();
        nodes.sort();
        nodes.dedup();
        nodes
    }

    /// Nodes crashed at the end of the run (never restarted after their last crash).
    pub fn down_at_end(&self) -> Vec<usize> {
        let mut down = std::collections::BTreeSet::new();
        for f in &self.faults {
            match f.kind {
                FaultKind::Crash { node } => {
                    down.insert(node);
                }
                FaultKind::Restart { node } => {
                    down.remove(&node);
                }
                _ => {}
            }
        }
        down.into_iter().collect()
    }

    /// The parameters every node runs with: the defaults, the simulation's own choices
    /// (20 KB batches sealed within 50 ms, sync retried every second), then the
    /// scenario's overrides.
    pub fn node_parameters(&self) -> Result<primitives::Parameters, String> {
        let mut p = primitives::Parameters::default();
        p.mempool.batch_size = 20_000;
        p.mempool.max_batch_delay_ms = 50;
        p.mempool.sync_retry_delay_ms = 1_000;
        let Some(overrides) = &self.parameters else {
            consensus::registry::check(&self.protocol, &p).map_err(|e| e.to_string())?;
            return Ok(p);
        };
        let mut base = toml::Table::try_from(&p).map_err(|e| e.to_string())?;
        for (section, values) in overrides {
            let (Some(toml::Value::Table(into)), toml::Value::Table(values)) =
                (base.get_mut(section), values)
            else {
                return Err(format!("unknown section {section:?}"));
            };
            for (k, v) in values {
                into.insert(k.clone(), v.clone());
            }
        }
        let text = toml::to_string(&base).map_err(|e| e.to_string())?;
        let p = primitives::Parameters::from_toml(&text).map_err(|e| e.to_string())?;
        consensus::registry::check(&self.protocol, &p).map_err(|e| e.to_string())?;
        Ok(p)
    }

    /// Members that are Byzantine in this scenario.
    pub fn byzantine_nodes(&self) -> Vec<usize> {
        self.byzantine.iter().map(|b| b.node).collect()
    }

    /// Nodes of the simulation: the members, then the second instance of each twin.
    pub fn instances(&self) -> usize {
        self.nodes + self.twins.len()
    }

    /// The member whose node instance `instance` runs (itself, or the twinned member).
    pub fn member_of(&self, instance: usize) -> usize {
        match instance.checked_sub(self.nodes) {
            Some(k) => self.twins.get(k).copied().unwrap_or(instance),
            None => instance,
        }
    }

    /// Instances held to no property: Byzantine members, and both instances of every
    /// twinned member.
    pub fn unjudged(&self) -> Vec<usize> {
        (0..self.instances())
            .filter(|i| {
                let m = self.member_of(*i);
                self.twins.contains(&m) || self.byzantine.iter().any(|b| b.node == m)
            })
            .collect()
    }

    /// The Byzantine behaviours of `node` (empty for an honest member).
    pub fn behaviours_of(&self, node: usize) -> Vec<Misbehaviour> {
        self.byzantine
            .iter()
            .filter(|b| b.node == node)
            .flat_map(|b| b.behaviours.iter().copied())
            .collect()
    }

    /// The liveness bound of the scenario's protocol, in simulated seconds
    /// (`liveness_bound_under` for it, else `liveness_bound_s`).
    pub fn liveness_bound(&self) -> u64 {
        self.liveness_bound_under
            .get(&self.protocol)
            .copied()
            .unwrap_or(self.liveness_bound_s)
    }

    /// The time the last fault ends (its stabilisation time), in simulated seconds.
    pub fn stabilised_at(&self) -> f64 {
        self.faults.iter().map(|f| f.at_s).fold(0.0, f64::max)
    }
}
