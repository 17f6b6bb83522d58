//! `bftlab twins`: Twins testing, a sweep of generated cases or one case replayed.
//!
//! Two levels: `core` twins the consensus core alone over a simulated message bus
//! (consensus::twins; HotStuff, Tendermint, Snowman), `node` twins whole simulated
//! nodes over the real transport (harness::twins; every core, and the only level for
//! the DAG-native ones, whose Byzantine member is the mempool's).

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use consensus::byzantine::Adversarial;
use consensus::twins::{case_seed, generate, sweep, Case, Outcome, TwinsConfig};
use harness::Misbehaviour;

/// Where the twins run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Level {
    /// `core` for the cores that have it (hotstuff, tendermint, snowman), else `node`.
    Auto,
    /// The consensus core alone, over a simulated message bus (fast: thousands of
    /// cases a minute).
    Core,
    /// Whole nodes in the deterministic simulation: mempool, workers, core, QUIC (about
    /// a second of wall time per case at 4 nodes).
    Node,
}

/// Arguments of `bftlab twins`.
#[derive(Args, Debug)]
pub struct TwinsArgs {
    /// The core (`bftlab protocols` lists them).
    #[arg(long, default_value = "hotstuff")]
    pub protocol: String,
    /// Where the twins run.
    #[arg(long, value_enum, default_value_t = Level::Auto)]
    pub level: Level,
    /// How many cases (all of them if the space is smaller; else a seeded sample).
    #[arg(long, default_value_t = 100)]
    pub cases: usize,
    /// Seed of the sample, the latencies and the nodes' randomness.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Committee size.
    #[arg(long, default_value_t = 4)]
    pub nodes: usize,
    /// Members that run twice.
    #[arg(long, default_value_t = 1)]
    pub twins: usize,
    /// Most sides of a round's partition.
    #[arg(long, default_value_t = 2)]
    pub partitions: usize,
    /// Rounds with a partition each (default: 10 at the core level, 8 at the node level).
    #[arg(long)]
    pub rounds: Option<usize>,
    /// Simulated milliseconds per round (default: 200 at the core level, where every
    /// partition ends after rounds x this; 400 at the node level, where round k is the
    /// k-th slice of this length).
    #[arg(long)]
    pub round_ms: Option<u64>,
    /// Core level: leaders follow each core's rotation instead of being chosen per
    /// round (the node level keeps the rotation unless --choose-leaders).
    #[arg(long)]
    pub rotation: bool,
    /// Node level: each case also chooses the leaders of the cores' first --rounds
    /// instances (HotStuff views, Tendermint and Snowman heights, Bullshark and Tusk
    /// anchor rounds) through the cores' `leaders` parameter; the partitions stay slices
    /// of time, not aligned with those instances.
    #[arg(long)]
    pub choose_leaders: bool,
    /// Core level: round k is the k-th slice of --round-ms of simulated time, not the
    /// cores' instance k + 1 (view, height); implies --rotation. The node level always
    /// slices time.
    #[arg(long)]
    pub time_slices: bool,
    /// Node level only, a test of the test: every node, though judged as honest, runs
    /// the known-bad variant that votes for every DAG header of an author in a round
    /// (the mempool's one-vote rule off). A sweep should then find cases that break.
    #[arg(long)]
    pub known_bad: bool,
    /// Replay this one case (as printed by a sweep) instead of sweeping.
    #[arg(long)]
    pub case: Option<String>,
}

/// Run `bftlab twins`.
pub fn run(args: TwinsArgs) -> Result<()> {
    let block_based = matches!(
        args.protocol.as_str(),
        "hotstuff" | "tendermint" | "snowman"
    );
    let level = match args.level {
        Level::Auto if block_based => Level::Core,
        Level::Auto => Level::Node,
        level => level,
    };
    if level == Level::Core && !block_based {
        bail!(
            "{} has no core-level twins: it sends no consensus messages of its own (its \
             Byzantine member is the mempool's); use --level node",
            args.protocol
        );
    }
    if args.known_bad && level == Level::Core {
        bail!("--known-bad is a node-level variant: use --level node");
    }
    if args.choose_leaders && (level == Level::Core || args.rotation) {
        bail!(
            "--choose-leaders is for the node level (the core level chooses leaders unless \
             --rotation)"
        );
    }
    let base = match level {
        Level::Node => harness::twins::default_config(),
        _ => TwinsConfig::default(),
    };
    let config = TwinsConfig {
        nodes: args.nodes,
        twins: args.twins,
        partitions: args.partitions,
        rounds: args.rounds.unwrap_or(base.rounds),
        round_ms: args.round_ms.unwrap_or(base.round_ms),
        choose_leaders: match level {
            Level::Node => args.choose_leaders,
            _ => base.choose_leaders && !args.rotation && !args.time_slices,
        },
        per_instance: base.per_instance && !args.time_slices,
        ..base
    };
    config.validate().map_err(anyhow::Error::msg)?;
    if args.cases == 0 || args.cases > consensus::twins::MAX_CASES {
        bail!("--cases must be in 1..={}", consensus::twins::MAX_CASES);
    }
    let cases = match &args.case {
        Some(text) => vec![Case::parse(text, &config).map_err(anyhow::Error::msg)?],
        None => generate(&config, args.cases, args.seed),
    };
    let replay = |case: &Case| {
        format!(
            "bftlab twins --protocol {} --level {} --seed {} --nodes {} --twins {} \
             --partitions {} --rounds {} --round-ms {}{}{}{}{} --case {}",
            args.protocol,
            if level == Level::Node { "node" } else { "core" },
            args.seed,
            config.nodes,
            config.twins,
            config.partitions,
            config.rounds,
            config.round_ms,
            if args.rotation { " --rotation" } else { "" },
            if args.time_slices {
                " --time-slices"
            } else {
                ""
            },
            if args.known_bad { " --known-bad" } else { "" },
            if args.choose_leaders {
                " --choose-leaders"
            } else {
                ""
            },
            case.text()
        )
    };
    let failures: Vec<(Case, String)> = match level {
        Level::Node => run_nodes(&args, &config, &cases)?,
        _ => {
            let outcomes = match args.protocol.as_str() {
                "hotstuff" => {
                    run_core::<consensus::hotstuff::HotStuff>(&config, &cases, args.seed)?
                }
                "tendermint" => {
                    run_core::<consensus::tendermint::Tendermint>(&config, &cases, args.seed)?
                }
                _ => run_core::<consensus::snowman::Snowman>(&config, &cases, args.seed)?,
            };
            outcomes
                .into_iter()
                .filter_map(|o| Some((o.case, o.violation?)))
                .collect()
        }
    };
    println!(
        "twins ({} level): {} under {} case(s) ({} node(s), {} twin(s), {} partition(s), {} rounds of {} ms, {}{}): {} broke a property",
        if level == Level::Node { "node" } else { "core" },
        args.protocol,
        cases.len(),
        config.nodes,
        config.twins,
        config.partitions,
        config.rounds,
        config.round_ms,
        match (config.per_instance, config.choose_leaders) {
            (true, true) => "rounds are views or heights, leaders chosen per round",
            (true, false) => "rounds are views or heights, leaders rotating",
            (false, true) => "rounds are slices of time, leaders chosen per instance",
            (false, false) => "rounds are slices of time, leaders rotating",
        },
        if args.known_bad { ", known-bad variant" } else { "" },
        failures.len()
    );
    for (case, violation) in &failures {
        println!("  {}: {violation}\n  replay: {}", case.text(), replay(case));
    }
    if args.known_bad {
        // A test of the test: the sweep succeeds when it catches the broken variant.
        if failures.is_empty() {
            bail!(
                "the known-bad variant broke nothing in {} case(s): the sweep is too weak",
                cases.len()
            );
        }
        println!(
            "  the known-bad variant was caught: {} case(s) broke a property",
            failures.len()
        );
        return Ok(());
    }
    if !harness::twins::within_bound(&args.protocol, config.nodes, config.twins) {
        println!(
            "  {} twin(s) of {} members is beyond {}'s fault bound: a broken property is an \
             expected outcome here, not a bug",
            config.twins, config.nodes, args.protocol
        );
        return Ok(());
    }
    if !failures.is_empty() {
        bail!(
            "{} of {} case(s) broke a property",
            failures.len(),
            cases.len()
        );
    }
    Ok(())
}

/// The node-level sweep: each case a simulation, judged by the harness's checkers.
fn run_nodes(
    args: &TwinsArgs,
    config: &TwinsConfig,
    cases: &[Case],
) -> Result<Vec<(Case, String)>> {
    let known_bad: &[Misbehaviour] = if args.known_bad {
        &[Misbehaviour::DoubleVoteHeaders]
    } else {
        &[]
    };
    // Refuse an unknown protocol once, before any case.
    if let Some(first) = cases.first() {
        harness::twins::scenario(config, first, &args.protocol, known_bad)
            .map_err(anyhow::Error::msg)?;
    }
    let mut failures = Vec::new();
    let (mut equivocating, mut committed, mut unsafe_cases) = (0usize, 0usize, 0usize);
    for (k, case) in cases.iter().enumerate() {
        let seed = case_seed(args.seed, case);
        let outcome = harness::twins::run_case(config, case, &args.protocol, known_bad, seed)?;
        equivocating += usize::from(outcome.equivocations > 0);
        unsafe_cases += usize::from(!outcome.safety.is_empty());
        committed += usize::from(outcome.committed > 0);
        eprintln!(
            "  case {:>4}/{}  {}  {}  committed {:>6}  equivocations seen {:>3}",
            k + 1,
            cases.len(),
            case.text(),
            match (outcome.safety.is_empty(), outcome.liveness.is_empty()) {
                (true, true) => "ok    ",
                (true, false) => "LIVE  ",
                (false, _) => "SAFETY",
            },
            outcome.committed,
            outcome.equivocations,
        );
        if outcome.failed() {
            let mut what: Vec<String> = outcome.safety.iter().map(|v| format!("{v:?}")).collect();
            what.extend(outcome.liveness.iter().map(|v| format!("{v:?}")));
            failures.push((case.clone(), what.join(", ")));
        }
    }
    println!(
        "  cases in which honest nodes saw the twins equivocate: {equivocating} of {}; in \
         which they committed: {committed}; which broke safety: {unsafe_cases}; liveness \
         only: {}",
        cases.len(),
        failures.len() - unsafe_cases
    );
    Ok(failures)
}

fn run_core<P: Adversarial>(
    config: &TwinsConfig,
    cases: &[Case],
    seed: u64,
) -> Result<Vec<Outcome>> {
    let total = cases.len();
    sweep::<P>(config, P::Config::default(), cases, seed, &mut |k, _| {
        if (k + 1) % 50 == 0 {
            eprintln!("  {} of {total} cases", k + 1);
        }
    })
    .map_err(anyhow::Error::msg)
}
