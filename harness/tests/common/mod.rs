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
    passes_seeds(name, protocol, None);
}

/// [`passes`] over `seeds` instead of the scenario's own (all of them if `None`).
pub fn passes_seeds(name: &str, protocol: Option<&str>, seeds: Option<&[u64]>) {
    let mut s = scenario(name, protocol);
    if let Some(seeds) = seeds {
        s.seeds = seeds.to_vec();
    }
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

/// The sizes of state the cores and the network report (a core reports its own among
/// its counters; the others there are progress measures).
pub const STATE_SIZES: &[&str] = &[
    "queued_bytes",
    "inbound_queued_bytes",
    // The mempool
    "requested_certificates",
    "suspended_headers",
    "mempool_pending_certificates",
    "unsolicited_batches",
    // HotStuff
    "blocks",
    "history",
    "vote_instances",
    "timeout_views",
    "waiting",
    "known_certificates",
    "pending_certificates",
    "carried_certificates",
    "second_votes",
    // Tendermint
    "proposals",
    "values",
    "decisions_kept",
    "buffered_messages",
    "pending_decisions",
    "certificates",
    // Snowman
    "processing",
    "certificates_held",
    "certificates_pending",
    // Bullshark and Tusk
    "dag_certificates",
    "dag_rounds",
];

/// Below these, a peak is not compared with the happy path's (a queue that happened to
/// be empty at every sample of the happy run is not a budget of zero): for queued bytes
/// a worker's serve window for one peer (16 MiB: the flooder's requests are answered
/// into it, however fast it asks); for inbound bytes the flooder's own queues in the two
/// lanes (2 x `inbound_peer_bytes`, 8 MiB each: it may fill them), for pushed batches
/// nothing named the flooder's 256 places, 64 of any count.
fn size_floor(key: &str) -> u64 {
    match key {
        "queued_bytes" | "inbound_queued_bytes" => 16 << 20,
        // A member's places for pushed batches no certificate named (it may fill them).
        "unsolicited_batches" => 256,
        _ => 64,
    }
}

/// Every seed of the flood scenario `name` passes, and no honest node's peak of any
/// state size exceeds twice its peak in the same scenario without its Byzantine
/// members (the happy path of the same length), or the size's floor.
pub fn stays_bounded(name: &str, protocol: Option<&str>) {
    let flood = scenario(name, protocol);
    let mut happy = flood.clone();
    happy.byzantine.clear();
    for seed in &flood.seeds {
        let report = run(&flood, *seed).unwrap();
        let verdict = check(&flood, &report);
        assert!(
            verdict.passed(),
            "{name} under {protocol:?}, seed {seed}: {:?}",
            verdict.violations
        );
        let baseline = run(&happy, *seed).unwrap();
        for i in report.honest_up() {
            for key in STATE_SIZES {
                let Some(peak) = report.logs[i].peaks.get(key) else {
                    continue;
                };
                let base = baseline.logs[i].peaks.get(key).copied().unwrap_or(0);
                let bound = 2 * base.max(size_floor(key));
                assert!(
                    *peak <= bound,
                    "{name} under {protocol:?}, seed {seed}: node {i} held {key} = {peak}, happy path {base}"
                );
            }
        }
    }
}
