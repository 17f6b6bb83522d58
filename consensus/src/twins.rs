//! Twins testing (Bano, Sonnino, Chursin, Perelman, Li, Ching, Malkhi: "Twins: BFT
//! Systems Made Robust", OPODIS 2021), on the cores themselves.
//!
//! A Byzantine member is modelled by running it twice: two instances with one identity
//! and key, each an honest core, which sign different things only because they see
//! different messages. A case fixes which members have a twin and, for each of `rounds`
//! consecutive rounds, as in the paper, a leader and a partition of all instances into
//! at most `partitions` sides.
//!
//! - Round k is the core's instance k + 1 ([`Adversarial::twins_instance`]: HotStuff's
//!   view, Tendermint's height, the height Snowman decides next). Its leader is the
//!   core's chosen leader of that instance (every core's `leaders` option: HotStuff's
//!   view k + 1, the proposer of round 0 of height k + 1 in Tendermint, of the first
//!   window in Snowman).
//! - Its partition applies to what an instance sends while it works on instance k + 1,
//!   read when it sends (as the reference implementation of the paper's generator reads
//!   the sender's current view): a message reaches the addressee's instances on the
//!   sender's side only. A message whose handling moved its sender on (the timeout that
//!   completes a timeout certificate) goes out under the next round's partition. Past
//!   the last round an instance's messages reach everyone. Snowman's instance is the
//!   height it decides next; it may propose a few heights above it.
//! - Every partition ends after `rounds * round_ms` of simulated time (instances that
//!   stayed in an early round, for want of a quorum on their side, are released), and
//!   the run goes on healed for `tail_ms`.
//! - With `per_instance` off, round k is instead the k-th slice of `round_ms` of
//!   simulated time, whatever view each core is in, and leaders rotate. The two find
//!   different things: HotStuff with its voting rule disabled breaks in about 1 case
//!   in 400 per instance (8 rounds, leaders chosen) and 1 in 20 per slice of time (10
//!   rounds of 200 ms), where partitions hold for many views.
//!
//! The checker: the members without a twin (the honest ones) committed sequences that
//! agree. The generator enumerates the partitions of the instances (each set partition
//! once: sides are unlabelled) and the leaders (every member) per round, and every
//! sequence of them over the rounds, deduplicated; when there are more than asked for
//! it samples that many distinct ones with a seeded RNG. Every case replays from its
//! text ([`Case::parse`]). With `choose_leaders` off, leaders follow each core's own
//! rotation.
//!
//! Where this differs from the paper: the twins are the first members (node 0, then
//! 1, ...); since the leaders are chosen, which member is twinned matters little. The
//! DAG-native cores (Bullshark, Tusk) send no messages of their own: their Byzantine
//! member is the mempool's, and they are twinned on whole nodes (`harness::twins`,
//! where a round is a slice of simulated time).

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

/// The shape of a Twins sweep (defaults: the paper's 4 nodes, 1 twin, 2 partitions and
/// a leader chosen per round; ours, 10 rounds, partitions ended after 10 x 200 ms).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TwinsConfig {
    /// Committee size.
    pub nodes: usize,
    /// Members that run twice (the first ones).
    pub twins: usize,
    /// Most sides of a round's partition.
    pub partitions: usize,
    /// Rounds with a leader and a partition each.
    pub rounds: usize,
    /// Simulated milliseconds per round: every partition ends after `rounds *
    /// round_ms` (at the node level, round k is the k-th slice of this length).
    pub round_ms: u64,
    /// Choose each round's leader (the paper's generator); false: each core's rotation.
    /// At this level it needs `per_instance`; whole-node twins (`harness::twins`) choose
    /// the leaders of the cores' first instances while their rounds slice time.
    pub choose_leaders: bool,
    /// Rounds are the cores' instances (views, heights), as in the paper; false: round
    /// k is the k-th slice of `round_ms` of simulated time, whatever instance each core
    /// is in (a slice holds several views; leaders then rotate).
    pub per_instance: bool,
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
            choose_leaders: true,
            per_instance: true,
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

/// One Twins case: the side of every instance and the leader in every round.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Case {
    /// Per round, the side of each instance (members in order, then twins), labelled in
    /// order of first appearance (a set partition written once).
    pub rounds: Vec<Vec<u8>>,
    /// Per round, the member that leads it; empty: each core's rotation.
    pub leaders: Vec<u16>,
}

impl Case {
    /// The case as text, one round per `-`-separated group of side digits, each followed
    /// by `:` and the round's leader when leaders are chosen: what [`Case::parse`] reads
    /// back (`bftlab twins --case`).
    pub fn text(&self) -> String {
        self.rounds
            .iter()
            .enumerate()
            .map(|(k, r)| {
                let sides: String = r.iter().map(|s| char::from(b'0' + s)).collect();
                match self.leaders.get(k) {
                    Some(l) => format!("{sides}:{l}"),
                    None => sides,
                }
            })
            .collect::<Vec<_>>()
            .join("-")
    }

    /// Read a case written by [`Case::text`] for `config`'s instances and rounds: with a
    /// leader in every round if `config` chooses leaders, else in none.
    pub fn parse(text: &str, config: &TwinsConfig) -> Result<Case, String> {
        let mut rounds = Vec::new();
        let mut leaders = Vec::new();
        for group in text.split('-') {
            let (sides, leader) = match group.split_once(':') {
                Some((sides, leader)) => (sides, Some(leader)),
                None => (group, None),
            };
            rounds.push(
                sides
                    .bytes()
                    .map(|b| {
                        b.checked_sub(b'0')
                            .filter(|s| (*s as usize) < config.partitions)
                            .ok_or_else(|| format!("bad side {:?} in {text:?}", b as char))
                    })
                    .collect::<Result<Vec<u8>, String>>()?,
            );
            if let Some(l) = leader {
                leaders.push(
                    l.parse::<u16>()
                        .ok()
                        .filter(|l| (*l as usize) < config.nodes)
                        .ok_or_else(|| format!("bad leader {l:?} in {text:?}"))?,
                );
            }
        }
        if rounds.len() != config.rounds || rounds.iter().any(|r| r.len() != config.instances()) {
            return Err(format!(
                "a case needs {} rounds of {} sides, got {text:?}",
                config.rounds,
                config.instances()
            ));
        }
        if !leaders.is_empty() && leaders.len() != rounds.len() {
            return Err(format!("a leader in every round or in none, got {text:?}"));
        }
        if leaders.is_empty() == config.choose_leaders {
            return Err(if config.choose_leaders {
                format!("leaders are chosen: every round needs `:LEADER`, got {text:?}")
            } else {
                format!("leaders rotate here: a case without `:LEADER`, got {text:?}")
            });
        }
        Ok(Case { rounds, leaders })
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
    let sides = partitions(config.instances(), config.partitions);
    // A round's choices: a partition, and a leader when they are chosen.
    let leaders: Vec<Option<u16>> = if config.choose_leaders {
        (0..config.nodes as u16).map(Some).collect()
    } else {
        vec![None]
    };
    let per_round: Vec<(Vec<u8>, Option<u16>)> = sides
        .iter()
        .flat_map(|p| leaders.iter().map(move |l| (p.clone(), *l)))
        .collect();
    let case = |choices: Vec<&(Vec<u8>, Option<u16>)>| Case {
        rounds: choices.iter().map(|(p, _)| p.clone()).collect(),
        leaders: choices.iter().filter_map(|(_, l)| *l).collect(),
    };
    let total = (per_round.len() as f64).powi(config.rounds as i32);
    if total <= count as f64 {
        // Every sequence, as a number in base `per_round.len()`.
        let mut out = Vec::new();
        let mut digits = vec![0usize; config.rounds];
        loop {
            out.push(case(digits.iter().map(|d| &per_round[*d]).collect()));
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
        let drawn = case(
            (0..config.rounds)
                .filter_map(|_| per_round.choose(&mut rng))
                .collect(),
        );
        if seen.insert(drawn.clone()) {
            out.push(drawn);
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

/// Run `case` with cores of protocol `P` (configured by `core`, with the case's leaders
/// as its chosen ones, see [`with_leaders`]) on `committee` (whose members' keys are
/// `keys`), with `seed` for latencies and the cores' randomness. Fails if the core
/// cannot take the case's leaders; a member whose core cannot be built stays down
/// ([`sweep`] refuses such a configuration before any case).
pub fn run_case<P: Adversarial>(
    config: &TwinsConfig,
    committee: Arc<Committee>,
    keys: Arc<Vec<KeyPair>>,
    core: P::Config,
    case: &Case,
    seed: u64,
) -> Result<Outcome, String> {
    if !config.per_instance && !case.leaders.is_empty() {
        return Err(
            "twins: at the core level, slices of time keep the rotation; give cases without \
             leaders"
                .into(),
        );
    }
    let core = with_leaders(&core, &case.leaders)?;
    let factory_committee = committee.clone();
    let make = Box::new(move |id: NodeId, persisted: Option<Vec<u8>>| {
        build::<P>(&factory_committee, &keys, &core, id, persisted, seed).ok()
    });
    let groups = if config.per_instance {
        case.rounds.clone()
    } else {
        Vec::new()
    };
    let mut cluster = Cluster::with_twins_partitioned(
        committee,
        make,
        seed,
        config.latency_ms,
        &config.twinned(),
        groups,
    );
    if config.per_instance {
        let partitioned =
            Duration::from_millis(config.round_ms.saturating_mul(config.rounds as u64));
        let until = cluster.now().after(partitioned);
        cluster.run_until(until, 7);
        cluster.set_instance_groups(Vec::new());
    } else {
        let round = Duration::from_millis(config.round_ms);
        for sides in &case.rounds {
            cluster.set_groups(Some(sides.clone()));
            let until = cluster.now().after(round);
            cluster.run_until(until, 7);
        }
        cluster.set_groups(None);
    }
    let until = cluster.now().after(Duration::from_millis(config.tail_ms));
    cluster.run_until(until, 7);
    let twinned = config.twinned();
    let commits = (0..config.nodes)
        .filter(|i| !twinned.contains(&NodeId(*i as u16)))
        .map(|i| cluster.commits[i].len())
        .max()
        .unwrap_or(0);
    Ok(Outcome {
        case: case.clone(),
        violation: cluster.honest_agreement().err(),
        commits,
    })
}

/// `core` with `leaders` as its chosen leaders (its `leaders` option; every core has
/// one). Empty `leaders` leave it as it is.
pub fn with_leaders<C: crate::ProtocolConfig>(core: &C, leaders: &[u16]) -> Result<C, String> {
    if leaders.is_empty() {
        return Ok(core.clone());
    }
    let mut table = match toml::Value::try_from(core).map_err(|e| e.to_string())? {
        toml::Value::Table(t) => t,
        _ => return Err("twins: a core configuration is not a table".into()),
    };
    table.insert(
        "leaders".into(),
        toml::Value::Array(
            leaders
                .iter()
                .map(|l| toml::Value::Integer((*l).into()))
                .collect(),
        ),
    );
    C::deserialize(toml::Value::Table(table))
        .map_err(|e| format!("twins: this core cannot choose its leaders: {e}"))
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
    if !config.per_instance && cases.iter().any(|c| !c.leaders.is_empty()) {
        return Err(
            "twins: at the core level, slices of time keep the rotation; give cases without \
             leaders"
                .into(),
        );
    }
    if let Some(case) = cases.iter().find(|c| !c.leaders.is_empty()) {
        let chosen = with_leaders(&core, &case.leaders)?;
        build::<P>(&committee, &keys, &chosen, NodeId(0), None, seed)?;
    }
    let mut out = Vec::with_capacity(cases.len());
    for (k, case) in cases.iter().enumerate() {
        let outcome = run_case::<P>(
            config,
            committee.clone(),
            keys.clone(),
            core.clone(),
            case,
            case_seed(seed, case),
        )?;
        progress(k, &outcome);
        out.push(outcome);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
