//! Twins testing on whole nodes (Bano, Sonnino, Chursin, Perelman, Li, Ching, Malkhi:
//! "Twins: BFT Systems Made Robust", OPODIS 2021), for every core, the DAG-native ones
//! included.
//!
//! [`consensus::twins`] twins the cores alone, over a simulated message bus; the
//! DAG-native cores (Bullshark, Tusk) send no messages of their own there, so their
//! Byzantine behaviour lives in the mempool, and only whole nodes can twin it. Here a
//! twinned member runs as two complete nodes (mempool, workers, core, store) with one
//! identity and key on two simulated hosts, over the real transport
//! ([`crate::Scenario::twins`]): what an honest node sends to the member reaches both
//! instances, and each instance, honest code throughout, signs headers, votes and
//! proposals for what it alone has seen. Two instances that see different things
//! propose different headers in one round: a Narwhal author's equivocation, produced
//! by the protocol itself rather than by a scripted attack.
//!
//! A case is [`consensus::twins`]'s: for each of its rounds (here `round_ms` slices of
//! simulated time) a partition of the instances, members first, then the second
//! instances of the twins, into sides; nothing crosses sides. It is played as a
//! scenario: a partition per round from [`START_S`], then every link healed, then
//! `tail_ms` of normal running. The judges are the simulation's checkers on the
//! untwinned members: agreement, integrity and validity (safety) and, since the
//! partitions heal, liveness and no transaction lost.
//!
//! Differences from the paper: a round is a slice of simulated time, not a view (the
//! transport does not know views; a round of time covers several views, heights or DAG
//! rounds, none known in advance). Leaders follow each core's own schedule, or, in a
//! case with leaders ([`TwinsConfig::choose_leaders`]), the case's k-th leader leads the
//! core's k-th instance (HotStuff view k + 1, Tendermint's and Snowman's height k + 1,
//! Bullshark's and Tusk's anchor round 2(k + 1)) through the cores' `leaders` parameter,
//! and the rotation after them; those instances are not aligned with the partitions'
//! slices of time ([`consensus::twins`] aligns both, by view). The twins are the first
//! members.

use crate::checkers::{check, Violation};
use crate::runner::{run, Report, RunError};
use crate::scenario::{Misbehaviour, Scenario};
use consensus::twins::{Case, TwinsConfig};

/// Simulated second the first round's partition starts (the nodes have connected and
/// the clients submit from 0.5 s).
pub const START_S: f64 = 1.0;

/// The shape of a whole-node sweep: `consensus::twins`'s, with rounds long enough
/// for a few DAG rounds each (4 nodes, 1 twin, 2 partitions, as the paper; 8 rounds
/// of 400 ms, then 8 s healed).
pub fn default_config() -> TwinsConfig {
    TwinsConfig {
        rounds: 8,
        round_ms: 400,
        tail_ms: 8_000,
        choose_leaders: false,
        per_instance: false,
        ..TwinsConfig::default()
    }
}

/// Whether `twins` twinned members of `nodes` (one vote each) are within
/// `protocol`'s fault bound: Byzantine weight below a third for the 3f+1 cores, below a
/// fifth for Snowman (the bound its consistency analysis needs). Beyond it a violation
/// is an expected outcome, not a bug (one twin of four is beyond Snowman's).
pub fn within_bound(protocol: &str, nodes: usize, twins: usize) -> bool {
    let divisor = if protocol == "snowman" { 5 } else { 3 };
    twins * divisor < nodes
}

/// Transactions per second each client submits.
const RATE: u64 = 200;

/// The scenario that plays `case` of `config` under `protocol`; `known_bad` are
/// behaviours every node runs while held to every property (a known-bad variant of the
/// honest code, to show the sweep can fail).
pub fn scenario(
    config: &TwinsConfig,
    case: &Case,
    protocol: &str,
    known_bad: &[Misbehaviour],
) -> Result<Scenario, String> {
    config.validate()?;
    if case.leaders.is_empty() == config.choose_leaders {
        return Err(format!(
            "case {}: {}",
            case.text(),
            if config.choose_leaders {
                "the sweep chooses leaders, and the case names none"
            } else {
                "the case names leaders, and the sweep keeps each core's rotation"
            }
        ));
    }
    let round_s = config.round_ms as f64 / 1000.0;
    let healed_at = START_S + round_s * config.rounds as f64;
    // At least a second past the heal: a fault at the very end is never applied.
    let duration_s = ((healed_at + config.tail_ms as f64 / 1000.0).ceil() as u64)
        .max(healed_at.floor() as u64 + 1);
    // The liveness bound: most of the tail, and every transaction submitted up to the
    // heal must be committed by the end.
    let bound_s = (duration_s as f64 - healed_at).floor().max(1.0) as u64;
    let instances = config.nodes + config.twins;
    let mut text = format!(
        "name = {name}\nprotocol = {protocol}\nnodes = {nodes}\ntwins = {twins:?}\n\
         duration_s = {duration_s}\nrate = {RATE}\nsubmit_until_s = {submit}\n\
         latency_ms = [{lo}, {hi}]\nliveness_bound_s = {bound_s}\n",
        name = toml::Value::String(format!("twins {}", case.text())),
        protocol = toml::Value::String(protocol.into()),
        nodes = config.nodes,
        twins = (0..config.twins).collect::<Vec<usize>>(),
        submit = duration_s.saturating_sub(2),
        lo = config.latency_ms.0,
        hi = config.latency_ms.1,
    );
    if !known_bad.is_empty() {
        let names: Vec<String> = known_bad
            .iter()
            .map(|m| toml::Value::try_from(m).map(|v| v.to_string()))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        text.push_str(&format!("known_bad = [{}]\n", names.join(", ")));
    }
    if !case.leaders.is_empty() {
        // The cores' own option: leader of instance k + 1 (see the module's doc).
        text.push_str(&format!(
            "[parameters.consensus.{}]\nleaders = {:?}\n",
            toml::Value::String(protocol.into()),
            case.leaders
        ));
    }
    for (k, sides) in case.rounds.iter().enumerate() {
        if sides.len() != instances {
            return Err(format!(
                "case {} does not fit {instances} instances",
                case.text()
            ));
        }
        let at = START_S + round_s * k as f64;
        if k > 0 {
            text.push_str(&format!("[[faults]]\nat_s = {at}\nfault = \"heal-all\"\n"));
        }
        let count = sides.iter().copied().max().map_or(0, |m| m as usize + 1);
        let side = |s: usize| -> Vec<usize> {
            (0..instances).filter(|i| sides[*i] as usize == s).collect()
        };
        for a in 0..count {
            for b in a + 1..count {
                text.push_str(&format!(
                    "[[faults]]\nat_s = {at}\nfault = \"partition\"\na = {:?}\nb = {:?}\n",
                    side(a),
                    side(b)
                ));
            }
        }
    }
    text.push_str(&format!(
        "[[faults]]\nat_s = {healed_at}\nfault = \"heal-all\"\n"
    ));
    Scenario::from_toml(&format!("twins {}", case.text()), &text)
        .map_err(|e| e.to_string())?
        .with_protocol(protocol)
        .map_err(|e| e.to_string())
}

/// What one case did.
#[derive(Clone, Debug)]
pub struct NodeOutcome {
    /// The case.
    pub case: Case,
    /// The seed it ran with.
    pub seed: u64,
    /// Agreement, integrity, validity and checkpoint violations among the untwinned.
    pub safety: Vec<Violation>,
    /// Liveness violations among the untwinned (after the heal).
    pub liveness: Vec<Violation>,
    /// The most transactions an untwinned member committed.
    pub committed: usize,
    /// Equivocating headers the untwinned members' mempools detected: evidence that the
    /// twins did equivocate in the case.
    pub equivocations: u64,
    /// The run's fingerprint (equal for two runs that committed the same).
    pub fingerprint: primitives::Digest,
}

impl NodeOutcome {
    /// Whether the case broke a property.
    pub fn failed(&self) -> bool {
        !self.safety.is_empty() || !self.liveness.is_empty()
    }
}

/// Play `case` under `protocol` with `seed` (latencies, the nodes' randomness).
pub fn run_case(
    config: &TwinsConfig,
    case: &Case,
    protocol: &str,
    known_bad: &[Misbehaviour],
    seed: u64,
) -> Result<NodeOutcome, RunError> {
    let scenario = scenario(config, case, protocol, known_bad).map_err(|reason| RunError {
        scenario: format!("twins {}", case.text()),
        seed,
        reason,
    })?;
    let report = run(&scenario, seed)?;
    Ok(outcome(case, seed, &scenario, &report))
}

fn outcome(case: &Case, seed: u64, scenario: &Scenario, report: &Report) -> NodeOutcome {
    let verdict = check(scenario, report);
    let (liveness, safety) = verdict
        .violations
        .into_iter()
        .partition(|v| matches!(v, Violation::Liveness { .. }));
    let honest = report.honest_up();
    NodeOutcome {
        case: case.clone(),
        seed,
        safety,
        liveness,
        committed: honest
            .iter()
            .map(|i| report.logs[*i].transactions.len())
            .max()
            .unwrap_or(0),
        equivocations: honest
            .iter()
            .filter_map(|i| report.logs[*i].mempool.as_ref())
            .map(|m| m.equivocations)
            .sum(),
        fingerprint: report.fingerprint(),
    }
}
