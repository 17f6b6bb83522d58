//! Twins testing (Bano, Sonnino, Chursin, Perelman, Li, Ching, Malkhi: "Twins: BFT
//! Systems Made Robust", OPODIS 2021), on the cores themselves.
//!
//! A Byzantine member is modelled by running it twice: two instances with one identity
//! and key, each an honest core, which sign different things only because they see
//! different messages. A case fixes which members have a twin and, for each of `rounds`
//! consecutive rounds (slices of simulated time), a partition of all instances into at
//! most `partitions` sides: what one instance sends to a member reaches that member's
//! instances on its own side, nothing crosses sides. After the last round the partition
//! heals and the run goes on for a while. The checker: the members without a twin (the
//! honest ones) committed sequences that agree. The generator enumerates the partitions
//! of the instances (each set partition once: sides are unlabelled) and every sequence of
//! them over the rounds, deduplicated; when there are more than asked for it samples that
//! many distinct ones with a seeded RNG. Every case replays from its text
//! ([`Case::parse`]).
//!
//! Where this differs from the paper: the paper's generator also chooses each round's
//! leader; here leaders follow each core's own schedule (rotation), and a round is a
//! slice of time (`round_ms`) rather than a protocol round, so one case covers several
//! views or heights, different ones for each core. The twins are the first members
//! (node 0, then 1, ...): every member leads in turn, so which one is twinned matters
//! less than where the partitions fall. The DAG-native cores (Bullshark, Tusk) send no
//! messages of their own: their Byzantine member is the mempool's (equivocating headers,
//! the simulation's `byzantine-equivocate-headers` and `byzantine-f-plus-one-dag`), and
//! they are not run here.

use crate::byzantine::Adversarial;
use crate::core::{Context, Time};
use crate::testing::Cluster;
use primitives::crypto::{KeyPair, SignatureScheme};
use primitives::{Committee, NodeId};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// Most instances (members and twins) a case may partition: their set partitions are
/// listed in memory (115,975 for ten).
pub const MAX_INSTANCES: usize = 10;
/// Most cases one sweep generates (each is kept in memory).
pub const MAX_CASES: usize = 1_000_000;

/// The shape of a Twins sweep (defaults: the paper's 4 nodes, 1 twin and 2 partitions;
/// ours, 10 rounds of 200 ms, short enough that a round holds a few views).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TwinsConfig {
    /// Committee size.
    pub nodes: usize,
    /// Members that run twice (the first ones).
    pub twins: usize,
    /// Most sides of a round's partition.
    pub partitions: usize,
    /// Rounds (slices of `round_ms`) with a partition each.
    pub rounds: usize,
    /// Length of a round, simulated milliseconds.
    pub round_ms: u64,
    /// How long the run goes on healed after the last round, simulated milliseconds.
    pub tail_ms: u64,
    /// Message latency range, milliseconds.
    pub latency_ms: (u64, u64),
}

impl Default for TwinsConfig {
    fn default() -> Self {
        TwinsConfig {
            nodes: 4,
            twins: 1,
            partitions: 2,
            rounds: 10,
            round_ms: 200,
            tail_ms: 5_000,
            latency_ms: (1, 10),
        }
    }
}

impl TwinsConfig {
    /// Check the shape: at least one node, twins at most f, at least one side, rounds
    /// and lengths in range.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_INSTANCES).contains(&self.nodes) {
            return Err(format!("twins: nodes must be in 1..={MAX_INSTANCES}"));
        }
        if self.twins >= self.nodes {
            return Err("twins: fewer twins than nodes".into());
        }
        if self.nodes + self.twins > MAX_INSTANCES {
            return Err(format!(
                "twins: at most {MAX_INSTANCES} instances (nodes + twins): the partitions \
                 of more are too many to list"
            ));
        }
        if self.partitions == 0 || self.partitions > self.nodes + self.twins {
            return Err("twins: partitions must be between 1 and the number of instances".into());
        }
        if !(1..=64).contains(&self.rounds) || self.round_ms == 0 || self.round_ms > 60_000 {
            return Err("twins: rounds in 1..=64, round_ms in 1..=60000".into());
        }
        if self.tail_ms > 600_000 || self.latency_ms.0 > self.latency_ms.1 {
            return Err("twins: tail_ms at most 600000, latency (min, max)".into());
        }
        Ok(())
    }

    fn instances(&self) -> usize {
        self.nodes + self.twins
    }

    /// The twinned members.
    pub fn twinned(&self) -> Vec<NodeId> {
        (0..self.twins).map(|i| NodeId(i as u16)).collect()
    }
}

/// One Twins case: the side of every instance in every round.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Case {
    /// Per round, the side of each instance (members in order, then twins), labelled in
    /// order of first appearance (a set partition written once).
    pub rounds: Vec<Vec<u8>>,
}

impl Case {
    /// The case as text, one round per `-`-separated group of side digits: what
    /// [`Case::parse`] reads back (`bftlab twins --case`).
    pub fn text(&self) -> String {
        self.rounds
            .iter()
            .map(|r| r.iter().map(|s| char::from(b'0' + s)).collect::<String>())
            .collect::<Vec<_>>()
            .join("-")
    }

    /// Read a case written by [`Case::text`] for `config`'s instances and rounds.
    pub fn parse(text: &str, config: &TwinsConfig) -> Result<Case, String> {
        let rounds: Vec<Vec<u8>> = text
            .split('-')
            .map(|r| {
                r.bytes()
                    .map(|b| {
                        b.checked_sub(b'0')
                            .filter(|s| (*s as usize) < config.partitions)
                            .ok_or_else(|| format!("bad side {:?} in {text:?}", b as char))
                    })
                    .collect::<Result<Vec<u8>, String>>()
            })
            .collect::<Result<_, _>>()?;
        if rounds.len() != config.rounds || rounds.iter().any(|r| r.len() != config.instances()) {
            return Err(format!(
                "a case needs {} rounds of {} sides, got {text:?}",
                config.rounds,
                config.instances()
            ));
        }
        Ok(Case { rounds })
    }
}

/// Every partition of `instances` items into at most `sides` unlabelled sides, each once
/// (restricted growth strings: item i's side is at most one more than the highest side
/// before it).
pub fn partitions(instances: usize, sides: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut current = Vec::with_capacity(instances);
    fn grow(
        current: &mut Vec<u8>,
        highest: u8,
        instances: usize,
        sides: usize,
        out: &mut Vec<Vec<u8>>,
    ) {
        if current.len() == instances {
            out.push(current.clone());
            return;
        }
        let limit = if current.is_empty() { 0 } else { highest + 1 };
        for side in 0..=limit.min(sides.saturating_sub(1) as u8) {
            current.push(side);
            grow(current, highest.max(side), instances, sides, out);
            current.pop();
        }
    }
    grow(&mut current, 0, instances, sides, &mut out);
    out
}

/// `count` (at most [`MAX_CASES`]) distinct cases for `config`: all of them, in order,
/// if there are no more; else a sample drawn with `seed`.
pub fn generate(config: &TwinsConfig, count: usize, seed: u64) -> Vec<Case> {
    let count = count.min(MAX_CASES);
    let per_round = partitions(config.instances(), config.partitions);
    let total = (per_round.len() as f64).powi(config.rounds as i32);
    if total <= count as f64 {
        // Every sequence, as a number in base `per_round.len()`.
        let mut out = Vec::new();
        let mut digits = vec![0usize; config.rounds];
        loop {
            out.push(Case {
                rounds: digits.iter().map(|d| per_round[*d].clone()).collect(),
            });
            let mut k = 0;
            while k < digits.len() {
                digits[k] += 1;
                if digits[k] < per_round.len() {
                    break;
                }
                digits[k] = 0;
                k += 1;
            }
            if k == digits.len() {
                return out;
            }
        }
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    while out.len() < count {
        let case = Case {
            rounds: (0..config.rounds)
                .map(|_| per_round.choose(&mut rng).cloned().unwrap_or_default())
                .collect(),
        };
        if seen.insert(case.clone()) {
            out.push(case);
        }
    }
    out
}

/// What one case did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The case.
    pub case: Case,
    /// The agreement violation among the honest members, if any.
    pub violation: Option<String>,
    /// The most blocks an honest member committed.
    pub commits: usize,
}

/// Run `case` with cores of protocol `P` (configured by `core`) on `committee` (whose
/// members' keys are `keys`), with `seed` for latencies and the cores' randomness. A
/// member whose core cannot be built stays down ([`sweep`] refuses such a
/// configuration before any case).
pub fn run_case<P: Adversarial>(
    config: &TwinsConfig,
    committee: Arc<Committee>,
    keys: Arc<Vec<KeyPair>>,
    core: P::Config,
    case: &Case,
    seed: u64,
) -> Outcome {
    let factory_committee = committee.clone();
    let make = Box::new(move |id: NodeId, persisted: Option<Vec<u8>>| {
        build::<P>(&factory_committee, &keys, &core, id, persisted, seed).ok()
    });
    let mut cluster =
        Cluster::with_twins(committee, make, seed, config.latency_ms, &config.twinned());
    let round = Duration::from_millis(config.round_ms);
    for sides in &case.rounds {
        cluster.set_groups(Some(sides.clone()));
        let until = cluster.now().after(round);
        cluster.run_until(until, 7);
    }
    cluster.set_groups(None);
    let until = cluster.now().after(Duration::from_millis(config.tail_ms));
    cluster.run_until(until, 7);
    let twinned = config.twinned();
    let commits = (0..config.nodes)
        .filter(|i| !twinned.contains(&NodeId(*i as u16)))
        .map(|i| cluster.commits[i].len())
        .max()
        .unwrap_or(0);
    Outcome {
        case: case.clone(),
        violation: cluster.honest_agreement().err(),
        commits,
    }
}

/// Member `id`'s core, with `seed` for its randomness (its own stream per member).
fn build<P: Adversarial>(
    committee: &Arc<Committee>,
    keys: &[KeyPair],
    core: &P::Config,
    id: NodeId,
    persisted: Option<Vec<u8>>,
    seed: u64,
) -> Result<P, String> {
    let context = Context {
        id,
        committee: committee.clone(),
        keys: keys
            .get(id.0 as usize)
            .cloned()
            .ok_or("twins: no keys for a member")?,
        scheme: SignatureScheme::Ed25519,
        rng: rand_chacha::ChaCha20Rng::seed_from_u64(seed ^ (u64::from(id.0) << 32)),
        persisted,
        now: Time::default(),
    };
    P::new(context, core.clone()).map_err(|e| format!("twins: cannot build {}: {e}", P::NAME))
}

/// The seed a sweep with `seed` runs `case` with (latencies, the cores' randomness):
/// from the case itself, so a case replays alone exactly as it ran in its sweep.
pub fn case_seed(seed: u64, case: &Case) -> u64 {
    let digest = primitives::Hasher::new()
        .update(b"bftlab.twins.case")
        .update_u64(seed)
        .update(case.text().as_bytes())
        .finalize();
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest.as_bytes()[..8]);
    u64::from_le_bytes(bytes)
}

/// Run every case of `cases` under `P` (default configuration unless `core` says
/// otherwise); `progress` is called after each.
pub fn sweep<P: Adversarial>(
    config: &TwinsConfig,
    core: P::Config,
    cases: &[Case],
    seed: u64,
    progress: &mut dyn FnMut(usize, &Outcome),
) -> Result<Vec<Outcome>, String> {
    config.validate()?;
    let hosts: Vec<String> = (0..config.nodes).map(|i| format!("twin{i}")).collect();
    let (committee, keys) = Committee::generate(config.nodes, 1, &hosts, 9000, Some(seed))
        .map_err(|e| e.to_string())?;
    let (committee, keys) = (Arc::new(committee), Arc::new(keys));
    // A core that cannot be built with this configuration is refused here, once (in a
    // case it would only stay down).
    build::<P>(&committee, &keys, &core, NodeId(0), None, seed)?;
    let mut out = Vec::with_capacity(cases.len());
    for (k, case) in cases.iter().enumerate() {
        let outcome = run_case::<P>(
            config,
            committee.clone(),
            keys.clone(),
            core.clone(),
            case,
            case_seed(seed, case),
        );
        progress(k, &outcome);
        out.push(outcome);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
