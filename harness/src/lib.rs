//! The bftlab simulation laboratory: scenarios of faults run on real Nodes inside turmoil, judged by safety and liveness checkers.
//!
//! A [`Scenario`] (TOML, see `harness/scenarios/`) names the protocol, the committee,
//! the workload, the network and a timeline of faults. [`run`] plays it for one seed
//! with real [`consensus::Node`]s (real QUIC over turmoil's UDP, real codec, real
//! crypto) and returns a [`Report`]; [`check`] judges it: agreement (committed
//! sequences are prefixes of one another), integrity (no transaction twice), validity
//! (only submitted transactions) and liveness (every honest node commits new
//! transactions within a bound after the last fault heals).

pub mod byzantine;
mod checkers;
mod floods;
pub mod history;
mod metrics;
mod runner;
mod scenario;
pub mod timeline;
pub mod twins;
pub mod wan;

pub use checkers::{check, Verdict, Violation};
pub use metrics::{measure, Percentiles, RunMetrics};
pub use runner::{
    run, run_with_progress, wan_latencies, Counters, NodeLog, Report, RunError, SKIPPED,
};
pub use scenario::{
    ByzantineNode, ClockEntry, Fault, FaultKind, LinkOverride, Misbehaviour, Scenario,
    ScenarioError,
};
