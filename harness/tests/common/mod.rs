//! What the scenario tests of every protocol share: loading a shipped scenario (under
//! a protocol other than its own, if asked) and judging it over its own seeds.

#![allow(dead_code)]

use harness::{check, run, Scenario, Violation};
use std::path::Path;

/// The shipped scenario `name`, under `protocol` (its own if `None`).
pub fn scenario(name: &str, protocol: Option<&str>) -> Scenario {
    let s = Scenario::load(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scenarios")
            .join(name),
    )
    .unwrap();
    match protocol {
        Some(p) => s.with_protocol(p).unwrap(),
        None => s,
    }
}

/// Every seed of the scenario passes and every honest node that is up committed
/// something; for a scenario beyond the protocol's bound (`expect_violation`), some seed
/// violates a property instead.
pub fn passes(name: &str, protocol: Option<&str>) {
    let s = scenario(name, protocol);
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
            "{name} under {protocol:?}, seed {seed}: {:?}",
            verdict.violations
        );
        for i in report.honest_up() {
            assert!(
                !report.logs[i].transactions.is_empty(),
                "{name} under {protocol:?}, seed {seed}: node {i} committed nothing"
            );
        }
    }
    if s.expect_violation {
        assert!(violated > 0, "{name}: no seed shows the expected violation");
    }
}

/// Whether some seed of the scenario shows two of the honest nodes `honest` committing
/// different sequences.
pub fn breaks_agreement(name: &str, protocol: Option<&str>, honest: &[usize]) -> bool {
    let s = scenario(name, protocol);
    s.seeds.iter().any(|seed| {
        let report = run(&s, *seed).unwrap();
        check(&s, &report).violations.iter().any(|v| {
            matches!(v, Violation::Agreement { nodes, .. } | Violation::ConflictingBlocks { nodes, .. }
                if honest.contains(&nodes.0) && honest.contains(&nodes.1))
        })
    })
}

/// The same seed twice gives the same report.
pub fn replays(name: &str, protocol: Option<&str>, seed: u64) {
    let s = scenario(name, protocol);
    let (a, b) = (run(&s, seed).unwrap(), run(&s, seed).unwrap());
    assert_eq!(a, b);
    assert_eq!(a.fingerprint(), b.fingerprint());
}

/// Every shipped scenario over its own seeds, under `protocol`.
pub fn every_scenario(protocol: Option<&str>) {
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
        passes(&name, protocol);
    }
}
