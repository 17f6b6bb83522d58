//! Scenario files.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// A scenario, as written in TOML.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Its name.
    pub name: String,
    /// Consensus protocol (`hotstuff`).
    #[serde(default = "default_protocol")]
    pub protocol: String,
    /// HotStuff commit rule (`three-chain` or `two-chain`).
    #[serde(default = "default_rule")]
    pub commit_rule: String,
    /// Committee size.
    pub nodes: usize,
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
    /// Faults, in time order.
    #[serde(default)]
    pub faults: Vec<Fault>,
    /// After the last fault heals (or from the start), every honest node must commit new
    /// transactions within this many simulated seconds.
    #[serde(default = "default_liveness")]
    pub liveness_bound_s: u64,
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
}

fn default_protocol() -> String {
    "hotstuff".into()
}
fn default_rule() -> String {
    "three-chain".into()
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
        if s.latency_ms.0 > s.latency_ms.1 {
            return bad("latency_ms must be (min, max) with min <= max");
        }
        if s.tx_size < 16 {
            return bad("tx_size must be at least 16");
        }
        if s.protocol != "hotstuff" {
            return bad("protocol must be hotstuff (the only core so far)");
        }
        for f in &s.faults {
            let nodes: Vec<usize> = match &f.kind {
                FaultKind::Partition { a, b } => a.iter().chain(b).copied().collect(),
                FaultKind::Crash { node } | FaultKind::Restart { node } => vec![*node],
                FaultKind::HealAll => vec![],
            };
            if nodes.iter().any(|n| *n >= s.nodes) {
                return bad("a fault names a node outside the committee");
            }
            if f.at_s < 0.0 || f.at_s > s.duration_s as f64 {
                return bad("a fault happens outside the run");
            }
        }
        Ok(s)
    }

    /// Load a scenario file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError::Io(name.clone(), e))?;
        Self::from_toml(&name, &text)
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

    /// The time the last fault ends (its stabilisation time), in simulated seconds.
    pub fn stabilised_at(&self) -> f64 {
        self.faults.iter().map(|f| f.at_s).fold(0.0, f64::max)
    }
}
