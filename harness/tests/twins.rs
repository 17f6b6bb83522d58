//! Twins on whole simulated nodes (harness::twins): every core, the DAG-native ones
//! included, keeps its properties in a case with a twinned member that equivocates, a
//! case replays exactly, and the known-bad variant (the mempool's one-vote rule off)
//! breaks agreement in a case a sweep found.

use consensus::twins::{case_seed, generate, Case, TwinsConfig};
use harness::twins::{default_config, run_case, within_bound, NodeOutcome};
use harness::{Misbehaviour, Violation};

/// The first case of a sweep (`bftlab twins --protocol bullshark --level node
/// --known-bad --cases 30`, seed 1) that the known-bad variant breaks (11 of those 30
/// cases broke safety, at the commit that ran every client on one simulated host).
const A_CASE: &str = "00111-00111-00100-01011-01111-00100-00010-00101";

/// The case broke no property, and the untwinned members committed something.
fn assert_kept_its_properties(outcome: &NodeOutcome, protocol: &str) {
    assert!(
        !outcome.failed(),
        "{protocol}: {:?} {:?}",
        outcome.safety,
        outcome.liveness
    );
    assert!(outcome.committed > 0, "{protocol} committed nothing");
}

fn case(text: &str) -> Case {
    Case::parse(text, &default_config()).unwrap()
}

#[test]
fn every_core_keeps_its_properties_while_a_twinned_member_equivocates() {
    for protocol in ["bullshark", "tusk", "hotstuff", "tendermint", "snowman"] {
        // One twin of four is beyond Snowman's bound (Byzantine weight below n/5): it
        // gets six members.
        let config = TwinsConfig {
            nodes: if protocol == "snowman" { 6 } else { 4 },
            ..default_config()
        };
        assert!(within_bound(protocol, config.nodes, config.twins));
        let case = match protocol {
            "snowman" => generate(&config, 1, 1).remove(0),
            _ => case(A_CASE),
        };
        let outcome = run_case(&config, &case, protocol, &[], case_seed(1, &case)).unwrap();
        assert_kept_its_properties(&outcome, protocol);
        // The twins did equivocate: the honest mempools saw two headers of member 0 in
        // one round.
        assert!(
            outcome.equivocations > 0,
            "{protocol}: no equivocation seen"
        );
    }
}

#[test]
fn a_twins_case_replays_exactly() {
    let case = case(A_CASE);
    let seed = case_seed(1, &case);
    let a = run_case(&default_config(), &case, "tusk", &[], seed).unwrap();
    let b = run_case(&default_config(), &case, "tusk", &[], seed).unwrap();
    assert_eq!(a.fingerprint, b.fingerprint);
}

#[test]
fn twins_catch_the_dag_without_its_one_vote_rule_and_not_the_dag() {
    let case = case(A_CASE);
    let seed = case_seed(1, &case);
    let bad = run_case(
        &default_config(),
        &case,
        "bullshark",
        &[Misbehaviour::DoubleVoteHeaders],
        seed,
    )
    .unwrap();
    assert!(
        bad.safety
            .iter()
            .any(|v| matches!(v, Violation::Agreement { .. })),
        "{:?}",
        bad.safety
    );
    let good = run_case(&default_config(), &case, "bullshark", &[], seed).unwrap();
    assert!(!good.failed(), "{:?} {:?}", good.safety, good.liveness);
}

/// With leaders chosen, a case's k-th leader leads each core's k-th instance through
/// the cores' `leaders` parameter (Bullshark's and Tusk's anchor rounds included), and
/// a twinned leader of every chosen instance breaks nothing.
#[test]
fn chosen_leaders_reach_every_core_and_a_twinned_leader_breaks_nothing() {
    let config = TwinsConfig {
        choose_leaders: true,
        ..default_config()
    };
    // A_CASE's partitions, member 0 (the twinned one) leading all eight instances.
    let text = A_CASE.replace('-', ":0-") + ":0";
    let chosen = Case::parse(&text, &config).unwrap();
    assert_eq!(chosen.leaders, vec![0; 8]);
    for protocol in ["bullshark", "tusk", "hotstuff", "tendermint", "snowman"] {
        let scenario = harness::twins::scenario(&config, &chosen, protocol, &[]).unwrap();
        let parameters = scenario.node_parameters().unwrap();
        let table = &parameters.consensus[protocol];
        assert_eq!(
            table.get("leaders"),
            Some(&toml::Value::Array(vec![toml::Value::Integer(0); 8])),
            "{protocol}"
        );
        // A case must name leaders exactly when the sweep chooses them.
        assert!(harness::twins::scenario(&config, &case(A_CASE), protocol, &[]).is_err());
        assert!(harness::twins::scenario(&default_config(), &chosen, protocol, &[]).is_err());
    }
    for protocol in ["bullshark", "hotstuff"] {
        let outcome = run_case(&config, &chosen, protocol, &[], case_seed(1, &chosen)).unwrap();
        assert_kept_its_properties(&outcome, protocol);
    }
}
