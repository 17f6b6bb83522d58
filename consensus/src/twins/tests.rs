use super::*;
use crate::hotstuff::{Config as HotStuffConfig, HotStuff};

#[test]
fn partitions_are_each_set_partition_once() {
    // Bell numbers and the two-sided count 2^(n-1).
    assert_eq!(partitions(3, 3).len(), 5);
    assert_eq!(partitions(4, 4).len(), 15);
    assert_eq!(partitions(5, 2).len(), 16);
    assert_eq!(partitions(5, 1), vec![vec![0; 5]]);
    let all = partitions(5, 3);
    let unique: BTreeSet<_> = all.iter().collect();
    assert_eq!(unique.len(), all.len());
    assert!(all.iter().all(|p| p[0] == 0));
}

#[test]
fn small_spaces_are_enumerated_and_large_ones_sampled_without_repeats() {
    let config = TwinsConfig {
        rounds: 2,
        ..TwinsConfig::default()
    };
    let all = generate(&config, 1_000, 1);
    assert_eq!(all.len(), 16 * 16);
    assert_eq!(all.iter().collect::<BTreeSet<_>>().len(), all.len());
    let config = TwinsConfig::default();
    let sample = generate(&config, 50, 7);
    assert_eq!(sample.len(), 50);
    assert_eq!(sample.iter().collect::<BTreeSet<_>>().len(), 50);
    assert_eq!(generate(&config, 50, 7), sample, "a seed replays");
    for case in &sample {
        assert_eq!(Case::parse(&case.text(), &config).as_ref(), Ok(case));
    }
    assert!(Case::parse("0101", &config).is_err());
    // Shapes whose partitions could not be listed are refused.
    for (nodes, twins) in [(11, 0), (8, 3), (16, 1)] {
        let shape = TwinsConfig {
            nodes,
            twins,
            ..TwinsConfig::default()
        };
        assert!(shape.validate().is_err(), "{nodes} + {twins}");
    }
    assert!(Case::parse(&"00300-".repeat(10), &config).is_err());
}

/// Rounds of 200 ms, ten of them (the defaults, fixed here).
fn short_rounds() -> TwinsConfig {
    TwinsConfig {
        round_ms: 200,
        rounds: 10,
        ..TwinsConfig::default()
    }
}

/// A case a sweep (seed 5, `short_rounds`, 60 cases, one view per leader) found against
/// the bad variant.
const BREAKS_THE_BAD_VARIANT: &str = "00100-01111-00101-00000-01101-00011-00000-00010-01100-00100";

fn run_one<P: crate::byzantine::Adversarial>(core: P::Config, text: &str) -> Outcome {
    let config = short_rounds();
    let case = Case::parse(text, &config).unwrap();
    sweep::<P>(&config, core, &[case], 5, &mut |_, _| {})
        .unwrap()
        .remove(0)
}

fn one_view_per_leader() -> HotStuffConfig {
    HotStuffConfig {
        views_per_leader: 1,
        ..HotStuffConfig::default()
    }
}

#[test]
fn twins_catch_hotstuff_without_its_voting_rule_and_not_hotstuff() {
    let bad = crate::hotstuff::tests_only::SKIP_VOTING_RULE.with(|s| {
        s.set(true);
        let outcome = run_one::<HotStuff>(one_view_per_leader(), BREAKS_THE_BAD_VARIANT);
        s.set(false);
        outcome
    });
    let violation = bad.violation.unwrap_or_default();
    assert!(
        violation.contains("committed different blocks"),
        "{violation:?}"
    );
    // The same case, the real voting rule: agreement, and blocks committed.
    let good = run_one::<HotStuff>(one_view_per_leader(), BREAKS_THE_BAD_VARIANT);
    assert_eq!(good.violation, None);
    assert!(good.commits > 0);
}

fn sweep_of<P: crate::byzantine::Adversarial>(count: usize, seed: u64) -> Vec<Outcome> {
    let config = short_rounds();
    let cases = generate(&config, count, seed);
    sweep::<P>(&config, P::Config::default(), &cases, seed, &mut |_, _| {}).unwrap()
}

#[test]
fn every_block_based_core_keeps_agreement_under_twins() {
    fn check(outcomes: Vec<Outcome>, core: &str) {
        for o in &outcomes {
            assert_eq!(o.violation, None, "{core}, case {}", o.case.text());
        }
        assert!(
            outcomes.iter().any(|o| o.commits > 0),
            "{core} committed nothing"
        );
    }
    check(sweep_of::<HotStuff>(12, 3), "hotstuff");
    check(
        sweep_of::<crate::tendermint::Tendermint>(6, 3),
        "tendermint",
    );
    check(sweep_of::<crate::snowman::Snowman>(6, 3), "snowman");
}

/// A sweep of the bad variant: how often it breaks (about 1 case in 20 with
/// `short_rounds`; `TWINS_PROBE=round_ms,rounds,cases,views_per_leader` varies it).
#[test]
#[ignore]
fn a_sweep_breaks_the_bad_variant() {
    let spec = std::env::var("TWINS_PROBE").unwrap_or_else(|_| "200,10,60,1".into());
    let v: Vec<u64> = spec.split(',').filter_map(|x| x.parse().ok()).collect();
    assert_eq!(
        v.len(),
        4,
        "TWINS_PROBE=round_ms,rounds,cases,views_per_leader"
    );
    let config = TwinsConfig {
        round_ms: v[0],
        rounds: v[1] as usize,
        ..TwinsConfig::default()
    };
    let core = HotStuffConfig {
        views_per_leader: v[3],
        ..HotStuffConfig::default()
    };
    crate::hotstuff::tests_only::SKIP_VOTING_RULE.with(|s| s.set(true));
    let cases = generate(&config, v[2] as usize, 5);
    let out = sweep::<HotStuff>(&config, core, &cases, 5, &mut |_, _| {}).unwrap();
    crate::hotstuff::tests_only::SKIP_VOTING_RULE.with(|s| s.set(false));
    let broken: Vec<&Outcome> = out.iter().filter(|o| o.violation.is_some()).collect();
    println!("{spec}: {} of {} broke", broken.len(), out.len());
    for o in broken.iter().take(3) {
        println!("  {} {:?}", o.case.text(), o.violation);
    }
    assert!(!broken.is_empty());
}
