//! `bftlab twins`: Twins testing of a core (consensus::twins): a sweep of generated
//! cases, or one case replayed, judged by agreement among the honest members.

use anyhow::{bail, Result};
use clap::Args;
use consensus::byzantine::Adversarial;
use consensus::twins::{generate, sweep, Case, Outcome, TwinsConfig};

/// Arguments of `bftlab twins`.
#[derive(Args, Debug)]
pub struct TwinsArgs {
    /// The core (hotstuff, tendermint, snowman; the DAG-native cores have no messages
    /// of their own to twin, see docs/architecture.md).
    #[arg(long, default_value = "hotstuff")]
    pub protocol: String,
    /// How many cases (all of them if the space is smaller; else a seeded sample).
    #[arg(long, default_value_t = 100)]
    pub cases: usize,
    /// Seed of the sample, the latencies and the cores' randomness.
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
    /// Rounds with a partition each.
    #[arg(long, default_value_t = 10)]
    pub rounds: usize,
    /// Length of a round, simulated milliseconds.
    #[arg(long, default_value_t = 200)]
    pub round_ms: u64,
    /// Replay this one case (as printed by a sweep) instead of sweeping.
    #[arg(long)]
    pub case: Option<String>,
}

/// Run `bftlab twins`.
pub fn run(args: TwinsArgs) -> Result<()> {
    let config = TwinsConfig {
        nodes: args.nodes,
        twins: args.twins,
        partitions: args.partitions,
        rounds: args.rounds,
        round_ms: args.round_ms,
        ..TwinsConfig::default()
    };
    config.validate().map_err(anyhow::Error::msg)?;
    if args.cases == 0 || args.cases > consensus::twins::MAX_CASES {
        bail!("--cases must be in 1..={}", consensus::twins::MAX_CASES);
    }
    let cases = match &args.case {
        Some(text) => vec![Case::parse(text, &config).map_err(anyhow::Error::msg)?],
        None => generate(&config, args.cases, args.seed),
    };
    let outcomes = match args.protocol.as_str() {
        "hotstuff" => run_core::<consensus::hotstuff::HotStuff>(&config, &cases, args.seed)?,
        "tendermint" => run_core::<consensus::tendermint::Tendermint>(&config, &cases, args.seed)?,
        "snowman" => run_core::<consensus::snowman::Snowman>(&config, &cases, args.seed)?,
        "bullshark" | "tusk" => bail!(
            "{} sends no consensus messages of its own: its Byzantine member is the \
             mempool's (bftlab sim harness/scenarios/byzantine-equivocate-headers.toml)",
            args.protocol
        ),
        other => bail!("unknown protocol {other:?} (bftlab protocols lists them)"),
    };
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| o.violation.is_some()).collect();
    println!(
        "twins: {} under {} case(s) ({} node(s), {} twin(s), {} partition(s), {} rounds of {} ms): {} broke agreement",
        args.protocol,
        outcomes.len(),
        config.nodes,
        config.twins,
        config.partitions,
        config.rounds,
        config.round_ms,
        failed.len()
    );
    for o in &failed {
        println!(
            "  {}: {}\n  replay: bftlab twins --protocol {} --seed {} --nodes {} --twins {} --partitions {} --rounds {} --round-ms {} --case {}",
            o.case.text(),
            o.violation.as_deref().unwrap_or_default(),
            args.protocol,
            args.seed,
            config.nodes,
            config.twins,
            config.partitions,
            config.rounds,
            config.round_ms,
            o.case.text()
        );
    }
    if !failed.is_empty() {
        bail!(
            "{} of {} case(s) broke agreement",
            failed.len(),
            outcomes.len()
        );
    }
    Ok(())
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
