//! The shipped scenarios under Snowman: the short ones in the default run (happy path,
//! a crash, a 2|2 partition, a restart, a seed that replays, f+1 colluders whose chits
//! lie that break agreement), every scenario over its seeds with
//! `cargo test --release -p harness --test snowman -- --ignored`.

mod common;

const P: Option<&str> = Some("snowman");

#[test]
fn happy_path() {
    common::passes("happy-n4.toml", P);
}

#[test]
fn one_node_crashes() {
    common::passes("crash-one.toml", P);
}

#[test]
fn two_two_partition_then_heal() {
    common::passes("partition-2-2.toml", P);
}

/// Down 2 s, well inside the GC depth. (`crash-restart.toml`, down 5 s, fails some
/// seeds under Snowman: the restarted node's consensus catches up on f+1-vouched
/// accepted blocks, but its linearizer waits for anchor certificates its peers
/// collected meanwhile; delivering from there needs state transfer, issue 11.)
#[test]
fn a_node_restarts_from_its_store_and_continues_its_sequence() {
    common::passes("crash-restart-short.toml", P);
}

/// Issue 11: a node crashes while committed certificates wait in its executor for
/// batches, and catches up past the DAG's horizon after its restart.
#[test]
fn a_node_crashing_with_positions_not_executed_delivers_them_after_restart() {
    common::passes("crash-while-executing.toml", P);
}

#[test]
fn a_seed_replays_the_same_committed_sequence() {
    common::replays("crash-one.toml", P, 7);
}

/// f + 1 colluders: the proposer shows each honest node its own block and both tell
/// each asker that its block is preferred; some seed must show the two honest nodes
/// accepting different blocks.
#[test]
fn f_plus_one_lying_colluders_break_agreement() {
    assert!(
        common::breaks_agreement("byzantine-f-plus-one.toml", P, &[0, 1]),
        "no seed broke agreement"
    );
}

/// Every shipped scenario over its own seeds.
#[test]
#[ignore]
fn every_scenario() {
    common::every_scenario(P);
}

#[test]
fn a_batch_request_flood_leaves_the_committee_live_and_its_state_bounded() {
    common::stays_bounded("byzantine-batch-request-flood.toml", P);
}

/// Under sync spam the flooder misses its proposer windows (5 s each) like a silent
/// member, and no block is accepted meanwhile. Certificates waiting for a block once
/// peaked at 148-175 here (every certificate since the last block); only the pending
/// set's frontier waits now (`PayloadTracker::on_certificate_with_parents`: a block
/// naming a certificate delivers its causal history), 4 on seeds 1-2.
#[test]
fn sync_spam_leaves_the_committee_live_and_its_state_bounded() {
    common::stays_bounded("byzantine-sync-spam.toml", P);
}

#[test]
fn a_future_flood_leaves_the_committee_live_and_its_state_bounded() {
    common::stays_bounded("byzantine-future-flood.toml", P);
}

/// Issue 10: a WAN committee of 7 with a crash and a Byzantine member (its bound is three
/// of this core's own base timeouts; see the scenario). Heavy: run with `--ignored`.
#[test]
#[ignore]
fn a_wan_committee_of_seven_recovers_from_a_crash_beside_a_byzantine_member() {
    common::passes("wan-n7-crash-byzantine.toml", P);
}
