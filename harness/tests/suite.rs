//! The shipped scenarios pass for HotStuff on their seeds, a seed replays exactly, and
//! more Byzantine nodes than HotStuff tolerates produce a violation the checkers catch.
//!
//! The default run keeps the short scenarios; the rest run with
//! `cargo test --release -p harness -- --ignored` (see README).

use harness::{check, measure, run, Scenario, Violation};
use std::path::Path;

mod common;

fn scenario(name: &str) -> Scenario {
    common::scenario(name, None)
}

fn passes(name: &str) {
    common::passes(name, None)
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
#[ignore]
fn happy_path_ten_nodes() {
    passes("happy-n10.toml");
}

#[test]
#[ignore]
fn leaders_crash_one_after_another() {
    passes("leader-crashes.toml");
}

#[test]
#[ignore]
fn a_minority_cut_off_for_long_catches_up() {
    passes("minority-long-partition.toml");
}

/// The member cut off for 20 s catches up by skipping to the committee's horizon and
/// certifies its whole backlog just above it; under the two-chain rule the others'
/// horizon can pass that certificate before any anchor orders it. Its author must
/// re-propose the batches: seeds 3 and 6 lost 7,059 transactions when it took a
/// certificate referenced by weak links for ordered.
#[test]
fn a_backlog_certified_just_above_a_horizon_jump_is_not_lost() {
    let mut s = scenario("minority-long-partition.toml");
    let mut hotstuff = toml::Table::new();
    hotstuff.insert("commit_rule".into(), "two-chain".into());
    let mut consensus = toml::Table::new();
    consensus.insert("hotstuff".into(), hotstuff.into());
    s.parameters
        .get_or_insert_with(Default::default)
        .insert("consensus".into(), consensus.into());
    for seed in [3, 6] {
        let report = run(&s, seed).unwrap();
        let verdict = check(&s, &report);
        assert!(verdict.passed(), "seed {seed}: {:?}", verdict.violations);
    }
}

/// The member cut off for 20 s skips to the horizon and proposes its backlog in a
/// header whose certificate the horizon passes at once. Its batches were re-queued
/// twice, as an orphan the horizon passed and as the batches of a header "never
/// certified" (its certificate had left the DAG), so the next header named each twice;
/// the linearizer took the second mention for a re-proposal and the executor skipped
/// both: Snowman, seed 1, lost 7,146 transactions (found once dials were bounded,
/// 366ccab, which moved the timing). A header now names a batch once (voters refuse
/// others) and a certified header is not re-queued.
#[test]
fn a_backlog_re_queued_at_a_horizon_jump_is_proposed_once_and_not_lost() {
    let s = scenario("minority-long-partition.toml")
        .with_protocol("snowman")
        .unwrap();
    let report = run(&s, 1).unwrap();
    let verdict = check(&s, &report);
    assert!(verdict.passed(), "{:?}", verdict.violations);
}

#[test]
#[ignore]
fn lossy_links() {
    passes("lossy-links.toml");
}

#[test]
#[ignore]
fn a_slow_link_and_a_node_that_cannot_speak() {
    passes("slow-and-one-way.toml");
}

#[test]
#[ignore]
fn a_weighted_committee_survives_its_light_members_crashing() {
    passes("weighted.toml");
}

/// Issue 15: Twins on whole nodes (member 0 runs twice; see harness/tests/twins.rs for
/// generated cases under every core).
#[test]
fn a_twinned_member_equivocating_through_partitions() {
    passes("twins-equivocating-member.toml");
}

/// Every scenario file is valid, and the suite above covers each one.
#[test]
fn every_shipped_scenario_loads_and_is_in_the_suite() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let suite = include_str!("suite.rs");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            continue; // wallcost/: measurements, not part of the suite
        }
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        Scenario::load(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            suite.contains(&format!("\"{name}\"")),
            "{name} is not in the suite"
        );
        count += 1;
    }
    assert!(count >= 26, "{count} scenarios");
}

/// Issue 11: a node crashes while committed certificates wait in its executor for
/// batches; after its restart it executes them first: no hole, nothing twice.
#[test]
fn a_node_crashing_with_committed_positions_not_executed_delivers_them_after_restart() {
    passes("crash-while-executing.toml");
}

/// Issue 11: down for two minutes (twenty times the DAG's `gc_depth`), the node catches
/// up by state transfer from the others' committed history. About 25 s in release.
#[test]
#[ignore]
fn a_node_down_two_minutes_catches_up_by_state_transfer() {
    passes("crash-restart-long.toml");
}

#[test]
fn a_node_down_briefly_restarts_from_its_store() {
    passes("crash-restart-short.toml");
}

#[test]
#[ignore]
fn one_node_withholds_the_anchors_it_leads() {
    passes("byzantine-withhold-anchors.toml");
}

#[test]
#[ignore]
fn f_plus_one_colluders_fork_the_dag() {
    passes("byzantine-f-plus-one-dag.toml");
}

#[test]
fn one_node_equivocates_and_double_votes() {
    passes("byzantine-equivocate.toml");
}

#[test]
fn one_node_sends_invalid_signatures() {
    passes("byzantine-invalid-signatures.toml");
}

#[test]
fn one_node_floods_garbage() {
    passes("byzantine-garbage.toml");
}

#[test]
#[ignore]
fn one_node_is_silent() {
    passes("byzantine-silent.toml");
}

#[test]
#[ignore]
fn one_node_withholds_votes() {
    passes("byzantine-withhold-votes.toml");
}

#[test]
#[ignore]
fn one_node_replays_old_messages() {
    passes("byzantine-replay.toml");
}

#[test]
#[ignore]
fn one_node_equivocates_dag_headers() {
    passes("byzantine-equivocate-headers.toml");
}

#[test]
#[ignore]
fn one_node_withholds_batches() {
    passes("byzantine-withhold-batches.toml");
}

/// f + 1 colluding equivocators split the honest nodes: some seed of a small sweep must
/// show two honest nodes committing different sequences, and the report must say where.
#[test]
fn f_plus_one_equivocators_break_agreement_and_the_checker_says_where() {
    let s = scenario("byzantine-f-plus-one.toml");
    assert!(s.expect_violation);
    let found: Vec<(u64, Violation)> = s
        .seeds
        .iter()
        .take(3)
        .flat_map(|seed| {
            let report = run(&s, *seed).unwrap();
            check(&s, &report)
                .violations
                .into_iter()
                .filter(|v| matches!(v, Violation::Agreement { .. }))
                .map(move |v| (*seed, v))
        })
        .collect();
    assert!(!found.is_empty(), "no seed broke agreement");
    for (seed, v) in &found {
        let Violation::Agreement { nodes, position } = v else {
            unreachable!()
        };
        // Both nodes are honest (0 and 1; the colluders are 2 and 3) and the position is
        // inside both sequences.
        assert!(nodes.0 < 2 && nodes.1 < 2, "seed {seed}: {v:?}");
        let report = run(&s, *seed).unwrap();
        let (a, b) = (
            &report.logs[nodes.0].sequence,
            &report.logs[nodes.1].sequence,
        );
        assert!(*position < a.len() && *position < b.len());
        assert_ne!(a[*position], b[*position]);
        assert_eq!(a[..*position], b[..*position]);
    }
}

#[test]
fn a_seed_replays_the_same_committed_sequence_and_metrics() {
    let s = scenario("crash-one.toml");
    let (a, b) = (run(&s, 7).unwrap(), run(&s, 7).unwrap());
    assert_eq!(a, b);
    assert_eq!(a.fingerprint(), b.fingerprint());
    assert_eq!(
        format!("{:?}", measure(&s, &a)),
        format!("{:?}", measure(&s, &b))
    );
}

#[test]
fn metrics_are_measured_in_simulated_time() {
    let s = scenario("crash-one.toml");
    let report = run(&s, 1).unwrap();
    let m = measure(&s, &report);
    let finality = m.finality_ms.expect("transactions committed");
    assert!(finality.p50 > 0.0 && finality.p50 <= finality.p90);
    assert!(finality.p90 <= finality.p99 && finality.p99 <= finality.max);
    assert!(m.committed_transactions > 0 && m.throughput_tps > 0.0);
    assert!(m
        .progress
        .as_ref()
        .is_some_and(|(name, v)| name == "view" && *v > 0));
    assert!(m.dag_rounds > 0 && m.blocks_committed > 0);
    assert!(m.messages_per_tx > 0.0 && m.bytes_per_tx > 0.0);
    // The crash is the last fault: the survivors commit again after it.
    assert!(m.recovery_s.is_some_and(|r| r < s.liveness_bound() as f64));
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
    let huge = Scenario::from_toml(
        "x",
        "name = 'x'\nnodes = 4\nduration_s = 9223372036854775807\nsubmit_until_s = 5",
    )
    .unwrap_err();
    assert!(huge.to_string().contains("duration_s"), "{huge}");
    let nan = Scenario::from_toml("x", "name = 'x'\nnodes = 4\nduration_s = 10\nsubmit_until_s = 5\n[[faults]]\nat_s = nan\nfault = 'heal-all'").unwrap_err();
    assert!(nan.to_string().contains("at_s"), "{nan}");
    let protocol = Scenario::from_toml(
        "x",
        "name = 'x'\nprotocol = 'paxos'\nnodes = 4\nduration_s = 10\nsubmit_until_s = 5",
    )
    .unwrap_err();
    assert!(protocol.to_string().contains("hotstuff"), "{protocol}");
    let param = Scenario::from_toml(
        "x",
        "name = 'x'\nnodes = 4\nduration_s = 10\nsubmit_until_s = 5\n[parameters.consensus.hotstuff]\ncommit_rule = 'four-chain'",
    )
    .unwrap_err();
    assert!(param.to_string().contains("two-chain"), "{param}");
    // Clocks, packet faults and latency matrices (issue 15).
    let base = "name = 'x'\nnodes = 4\nduration_s = 10\nsubmit_until_s = 5\n";
    for (extra, reason) in [
        ("[[clocks]]\nnode = 7\nrate = 2.0", "outside the committee"),
        ("[[clocks]]\nnode = 1\nrate = 0.0", "rate"),
        ("[[clocks]]\nnode = 1\nat_s = 11.0\njump_s = 1.0", "at_s"),
        ("[[clocks]]\nnode = 1\njump_s = -1.0", "jump"),
        ("[packet_faults]\nloss = 1.5", "rates"),
        ("[packet_faults]\nbandwidth_mbps = -3", "bandwidth"),
        ("[packet_faults]\nlost = 0.1", "unknown field"),
        ("regions = ['a']", "latency_matrix"),
        (
            "latency_matrix = 'm.csv'\nlink_latency_ms = [1, 2]",
            "exclusive",
        ),
        // Twins: distinct members, fewer than the committee; faults may name a twin's
        // second instance (4 + k) but nothing beyond.
        ("twins = [4]", "twins"),
        ("twins = [1, 1]", "twins"),
        ("twins = [0, 1, 2, 3]", "fewer twins"),
        ("known_bad = ['garbage']", "known_bad"),
        (
            "twins = [0]\n[[faults]]\nat_s = 1.0\nfault = 'partition'\na = [5]\nb = [1]",
            "outside the committee",
        ),
    ] {
        let err = Scenario::from_toml("x", &format!("{base}{extra}")).unwrap_err();
        assert!(err.to_string().contains(reason), "{extra}: {err}");
    }
    // A matrix file that is missing or does not place the nodes is refused on load.
    let dir = std::env::temp_dir().join(format!("bftlab-matrix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("m.csv"), "region,a,b\na,1,2\nb,2,1\n").unwrap();
    for (extra, reason) in [
        ("latency_matrix = 'none.csv'", "none.csv"),
        (
            "latency_matrix = 'm.csv'\nregions = ['a', 'b']",
            "names 2 nodes",
        ),
        (
            "latency_matrix = 'm.csv'\nregions = ['a', 'b', 'c', 'a']",
            "unknown region",
        ),
    ] {
        std::fs::write(dir.join("s.toml"), format!("{base}{extra}")).unwrap();
        let err = Scenario::load(&dir.join("s.toml")).unwrap_err();
        assert!(err.to_string().contains(reason), "{extra}: {err}");
    }
    std::fs::write(
        dir.join("s.toml"),
        format!("{base}latency_matrix = 'm.csv'"),
    )
    .unwrap();
    assert!(Scenario::load(&dir.join("s.toml"))
        .unwrap()
        .matrix
        .is_some());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_checkers_can_fail() {
    use bytes::Bytes;
    use harness::{NodeLog, Report, Violation};
    use primitives::Digest;
    use std::time::Duration;
    let s = scenario("happy-n4.toml");
    let tx = |i: u8| Bytes::from(vec![i; 16]);
    let at = Duration::from_millis(10);
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
        submitted: [(tx(1), at), (tx(2), at)].into_iter().collect(),
        down: vec![],
        byzantine: vec![],
        duration: Duration::from_secs(20),
        packet_faults: Default::default(),
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

#[test]
fn a_checkpoint_to_another_sequence_is_caught_and_a_true_one_excuses_the_gap() {
    use bytes::Bytes;
    use harness::{NodeLog, Report, Violation, SKIPPED};
    use primitives::Digest;
    use std::time::Duration;
    let s = scenario("happy-n4.toml");
    let tx = |i: u8| Bytes::from(vec![i; 16]);
    let at = Duration::from_millis(10);
    let (a, b, c) = (Digest::of(b"a"), Digest::of(b"b"), Digest::of(b"c"));
    let (chain_a, chain_b, chain_c) = (Digest::of(b"1"), Digest::of(b"2"), Digest::of(b"3"));
    let full = NodeLog {
        sequence: vec![a, b, c],
        chains: vec![chain_a, chain_b, chain_c],
        first_tx: vec![0, 1, 2],
        transactions: vec![tx(1), tx(2), tx(3)],
        progress: vec![(Duration::from_secs(1), 3)],
        ..NodeLog::default()
    };
    // Node 3 skipped positions 0 and 1 with the chain hash the others have there.
    let skipper = |chain: Digest| NodeLog {
        sequence: vec![SKIPPED, SKIPPED, c],
        chains: vec![SKIPPED, chain, chain_c],
        first_tx: vec![0, 0, 0],
        transactions: vec![tx(3)],
        skips: vec![(0, 2, chain)],
        progress: vec![(Duration::from_secs(1), 1)],
        ..NodeLog::default()
    };
    let report = |last: NodeLog| Report {
        scenario: s.name.clone(),
        seed: 0,
        logs: vec![full.clone(), full.clone(), full.clone(), last],
        submitted: [(tx(1), at), (tx(2), at), (tx(3), at)]
            .into_iter()
            .collect(),
        down: vec![],
        byzantine: vec![],
        duration: Duration::from_secs(20),
        packet_faults: Default::default(),
    };
    let v = harness::check(&s, &report(skipper(chain_b))).violations;
    assert!(v.is_empty(), "a true checkpoint: {v:?}");
    let v = harness::check(&s, &report(skipper(Digest::of(b"forged")))).violations;
    assert!(
        v.contains(&Violation::Checkpoint {
            nodes: (3, 0),
            position: 1
        }),
        "{v:?}"
    );
}

/// Issue 11: a node down longer than its peers keep the committed history installs a
/// checkpoint vouched for by f+1 of them, delivers the skipped positions as one
/// explicit gap (checked against the others' chain hash), and catches up from there.
#[test]
fn a_node_down_beyond_the_retention_installs_a_checkpoint() {
    passes("crash-restart-beyond-retention.toml");
}

/// Issue 10: batches sealed just before a node was cut off were re-proposed and
/// certified late, after every holder had collected them by their storage round, so no
/// node could execute that certificate. Batches now stay while a certificate in the DAG
/// carries them.
#[test]
fn a_batch_withholder_while_an_honest_node_is_cut_off() {
    passes("withhold-batches-while-cut-off.toml");
}

/// Issue 10: one node at a time hears nothing. Transactions a node sealed just before
/// it went deaf were lost (its certificate formed late and nobody referenced it): own
/// orphaned certificates' batches are now re-proposed. Seed 3 ended with node 0 behind
/// until the client endpoint's admission control changed the traffic (seeds 1-10 pass
/// since; the cause of the old seed 3 failure was not found, so this test guards it).
#[test]
fn one_node_at_a_time_hears_nothing() {
    passes("isolate-inbound-rotating.toml");
}

/// Issue 10: a WAN (40-160 ms per link), one crash and one member sending garbage and
/// invalid signatures in a committee of 7: commits resume within 5 s of the crash. A
/// crashed vote collector used to cost a doubled view timeout before it was suspected
/// (longest stall 5-6 s over seeds 1-8); a TC it did not sign now suspects it.
#[test]
fn a_wan_committee_of_seven_recovers_from_a_crash_beside_a_byzantine_member() {
    passes("wan-n7-crash-byzantine.toml");
}

/// Issue 15: single datagrams lost (2 %), duplicated (5 %) or held back and overtaken
/// (10 %) under QUIC: every property holds (one seed each here, all with `--ignored`),
/// the faults did happen, and a seed replays exactly.
#[test]
fn lost_duplicated_and_reordered_datagrams_are_absorbed() {
    for (name, what) in [
        ("packet-loss.toml", "lost"),
        ("packet-duplication.toml", "duplicated"),
        ("packet-reordering.toml", "reordered"),
    ] {
        common::passes_seeds(name, None, Some(&[1]));
        let s = common::scenario(name, None);
        let counts = run(&s, 1).unwrap().packet_faults;
        let did = match what {
            "lost" => counts.lost,
            "duplicated" => counts.duplicated,
            _ => counts.reordered,
        };
        assert!(did * 100 > counts.datagrams, "{name}: {counts:?}");
    }
    common::replays("packet-reordering.toml", None, 2);
}

#[test]
#[ignore]
fn datagram_faults_over_every_seed() {
    passes("packet-loss.toml");
    passes("packet-duplication.toml");
    passes("packet-reordering.toml");
}

/// Issue 15: a 4 Mbit/s cap from each node to each peer (100 ms queues, tail drop).
#[test]
#[ignore]
fn a_bandwidth_cap_on_every_link() {
    passes("bandwidth-cap.toml");
}

/// Issue 15: nodes' own clocks. One 2x fast and one at half speed, or one jumping 10 s
/// forward, beside a crash: every property holds (seed 1 here, all with `--ignored`),
/// the clocks change what happens (not the same run as without them), and a seed
/// replays exactly.
#[test]
fn skewed_and_jumping_clocks_break_nothing() {
    common::passes_seeds("clock-rates.toml", None, Some(&[1]));
    common::passes_seeds("clock-jump.toml", None, Some(&[1]));
    let skewed = common::scenario("clock-rates.toml", None);
    let mut plain = skewed.clone();
    plain.clocks.clear();
    assert_ne!(
        run(&skewed, 1).unwrap().fingerprint(),
        run(&plain, 1).unwrap().fingerprint()
    );
    common::replays("clock-jump.toml", None, 2);
}

#[test]
#[ignore]
fn clocks_over_every_seed() {
    passes("clock-rates.toml");
    passes("clock-jump.toml");
}

/// Issue 15: ten nodes in ten regions of a measured round-trip matrix.
#[test]
#[ignore]
fn a_committee_spread_over_ten_regions() {
    passes("wan-n10.toml");
}

/// The heavy scenarios kept out of the suite (`large/`) load too.
#[test]
fn the_large_scenarios_load() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/large");
    let s = Scenario::load(&dir.join("wan-n50.toml")).unwrap();
    let wan = harness::wan_latencies(&s, 1);
    assert_eq!(wan.len(), 50 * 49 / 2);
    // Nodes 0 and 10 share us-east-1; 0 and 1 are us-east-1 and us-west-1.
    assert_eq!(wan[&(0, 10)], 1);
    assert_eq!(wan[&(0, 1)], 36);
}

/// Issue 10: slow members of a WAN committee have their transactions ordered (Tusk,
/// which starved them before weak links, runs it in the default run, see bullshark.rs).
#[test]
#[ignore]
fn slow_members_of_a_wan_committee_are_not_starved() {
    passes("wan-n7-slow-members.toml");
}

#[test]
fn a_batch_request_flood_leaves_the_committee_live_and_its_state_bounded() {
    common::stays_bounded("byzantine-batch-request-flood.toml", None);
}

/// Issue 11: pushed batches that no certificate names have 256 places per sender and
/// are collected at the GC round, not kept for the history retention.
#[test]
fn a_batch_flood_leaves_the_committee_live_and_its_state_bounded() {
    common::stays_bounded("byzantine-batch-flood.toml", None);
}

#[test]
fn sync_spam_leaves_the_committee_live_and_its_state_bounded() {
    common::stays_bounded("byzantine-sync-spam.toml", None);
}

#[test]
fn a_future_flood_leaves_the_committee_live_and_its_state_bounded() {
    common::stays_bounded("byzantine-future-flood.toml", None);
}
