//! The shipped scenarios under Tendermint: the short ones in the default run (happy
//! path, a crash, a 2|2 partition, a restart, a seed that replays, f+1 equivocators
//! that break agreement), every scenario over its seeds with
//! `cargo test --release -p harness --test tendermint -- --ignored`.

use harness::{check, run, Scenario, Violation};
use std::path::Path;

fn scenario(name: &str) -> Scenario {
    Scenario::load(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scenarios")
            .join(name),
    )
    .unwrap()
    .with_protocol("tendermint")
    .unwrap()
}

fn passes(name: &str) {
    let s = scenario(name);
    let mut violated = 0;
    for seed in &s.seeds {
        let report = run(&s, *seed).unwrap();
        let verdict = check(&s, &report);
        if s.expect_violation {
            violated += usize::from(!verdict.passed());
            continue;
        }
        assert!(
            verdict.passed(),
            "{name} seed {seed}: {:?}",
            verdict.violations
        );
        for i in report.honest_up() {
            assert!(
                !report.logs[i].transactions.is_empty(),
                "{name} seed {seed}: node {i} committed nothing"
            );
        }
    }
    if s.expect_violation {
        assert!(violated > 0, "{name}: no seed shows the expected violation");
    }
}

#[test]
fn happy_path() {
    passes("happy-n4.toml");
}

#[test]
fn one_node_crashes() {
    passes("crash-one.toml");
}

#[test]
fn two_two_partition_then_heal() {
    passes("partition-2-2.toml");
}

#[test]
fn a_node_restarts_from_its_store_and_continues_its_sequence() {
    passes("crash-restart.toml");
}

#[test]
fn a_seed_replays_the_same_committed_sequence() {
    let s = scenario("crash-one.toml");
    let (a, b) = (run(&s, 7).unwrap(), run(&s, 7).unwrap());
    assert_eq!(a, b);
    assert_eq!(a.fingerprint(), b.fingerprint());
}

/// f + 1 colluding equivocators that double-vote (prevote and precommit both values):
/// some seed must show two honest nodes deciding differently.
#[test]
fn f_plus_one_equivocators_break_agreement() {
    let s = scenario("byzantine-f-plus-one.toml");
    let broke = s.seeds.iter().any(|seed| {
        let report = run(&s, *seed).unwrap();
        check(&s, &report)
            .violations
            .iter()
            .any(|v| matches!(v, Violation::Agreement { nodes, .. } if nodes.0 < 2 && nodes.1 < 2))
    });
    assert!(broke, "no seed broke agreement");
}

/// Every shipped scenario over its own seeds.
#[test]
#[ignore]
fn every_scenario() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    for name in names {
        passes(&name);
    }
}
