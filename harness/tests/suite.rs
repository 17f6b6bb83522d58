//! The shipped scenarios pass for HotStuff on their seeds, and a seed replays exactly.

use harness::{check, run, Scenario};
use std::path::Path;

fn scenario(name: &str) -> Scenario {
    Scenario::load(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scenarios")
            .join(name),
    )
    .unwrap()
}

fn passes(name: &str) {
    let s = scenario(name);
    for seed in &s.seeds {
        let report = run(&s, *seed).unwrap();
        let verdict = check(&s, &report);
        assert!(
            verdict.passed(),
            "{name} seed {seed}: {:?}",
            verdict.violations
        );
        for (i, log) in report.logs.iter().enumerate() {
            if !report.down.contains(&i) {
                assert!(
                    !log.transactions.is_empty(),
                    "{name} seed {seed}: node {i} committed nothing"
                );
            }
        }
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
fn a_seed_replays_the_same_committed_sequence() {
    let s = scenario("happy-n4.toml");
    assert_eq!(run(&s, 7).unwrap(), run(&s, 7).unwrap());
}

#[test]
fn bad_scenarios_are_refused_with_a_reason() {
    assert!(Scenario::from_toml(
        "x",
        "name = 'x'\nnodes = 0\nduration_s = 1\nsubmit_until_s = 1"
    )
    .is_err());
    let err = Scenario::from_toml("x", "name = 'x'\nnodes = 4\nduration_s = 10\nsubmit_until_s = 5\n[[faults]]\nat_s = 1.0\nfault = 'crash'\nnode = 9").unwrap_err();
    assert!(err.to_string().contains("outside the committee"), "{err}");
    assert!(Scenario::from_toml(
        "x",
        "name = 'x'\nnodes = 4\nduration_s = 10\nsubmit_until_s = 5\nbogus = 1"
    )
    .is_err());
}

#[test]
fn the_checkers_can_fail() {
    use bytes::Bytes;
    use harness::{NodeLog, Report, Violation};
    use primitives::Digest;
    use std::time::Duration;
    let s = scenario("happy-n4.toml");
    let tx = |i: u8| Bytes::from(vec![i; 16]);
    let log = |seq: Vec<Digest>, txs: Vec<Bytes>| NodeLog {
        sequence: seq,
        progress: vec![(Duration::from_secs(1), txs.len())],
        transactions: txs,
        ..NodeLog::default()
    };

    let (a, b) = (Digest::of(b"a"), Digest::of(b"b"));
    let report = Report {
        scenario: s.name.clone(),
        seed: 0,
        logs: vec![
            log(vec![a, b], vec![tx(1), tx(2)]),
            log(vec![a, a], vec![tx(1), tx(1)]),
            log(vec![a], vec![tx(9)]),
            NodeLog::default(),
        ],
        submitted: [tx(1), tx(2)].into_iter().collect(),
        down: vec![],
        duration: Duration::from_secs(20),
    };
    let v = harness::check(&s, &report).violations;
    assert!(
        v.contains(&Violation::Agreement {
            nodes: (0, 1),
            position: 1
        }),
        "{v:?}"
    );
    assert!(v.contains(&Violation::Integrity { node: 1 }));
    assert!(v.contains(&Violation::Validity { node: 2 }));
    assert!(v.contains(&Violation::Liveness { node: 3 }));
}
