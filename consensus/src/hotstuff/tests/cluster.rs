//! Seeded in-memory clusters of HotStuff replicas (random latency, verify on every
//! delivery, restarts from persisted state).

use super::*;
use crate::testing::Cluster;

impl Fixture {
    /// A seeded cluster of this fixture's replicas (latency 1-20 ms).
    fn cluster(&self, rule: CommitRule, seed: u64) -> Cluster<HotStuff> {
        let committee = self.committee.clone();
        let keys = self.keys.clone();
        let config = Config {
            commit_rule: rule,
            views_per_leader: self.views_per_leader,
            ..Config::default()
        };
        let make = Box::new(move |id: NodeId, persisted: Option<Vec<u8>>| {
            HotStuff::new(
                id,
                committee.clone(),
                keys[id.0 as usize].clone(),
                SignatureScheme::Ed25519,
                config.clone(),
                persisted.as_deref(),
            )
            .ok()
        });
        Cluster::new(self.committee.clone(), make, seed, (1, 20))
    }
}

#[test]
fn an_in_memory_cluster_commits_the_same_sequence_under_both_rules() {
    let f = fixture();
    for rule in [CommitRule::ThreeChain, CommitRule::TwoChain] {
        for seed in 0..3 {
            let mut c = f.cluster(rule, seed);
            c.run(5_000, 7);
            c.assert_agreement(50);
            assert_eq!(c.rejected, 0);
        }
    }
}

#[test]
fn a_crashed_leader_costs_timeouts_but_the_others_keep_committing() {
    let mut f = fixture();
    f.views_per_leader = Config::default().views_per_leader;
    for rule in [CommitRule::ThreeChain, CommitRule::TwoChain] {
        let mut c = f.cluster(rule, 5);
        c.crash(2);
        c.run(20_000, 7);
        c.assert_agreement(20);
    }
}

#[test]
fn a_restarted_member_resumes_from_what_it_persisted_without_signing_twice() {
    let mut f = fixture();
    f.views_per_leader = Config::default().views_per_leader;
    for rule in [CommitRule::ThreeChain, CommitRule::TwoChain] {
        for seed in 0..3 {
            let mut c = f.cluster(rule, seed);
            c.run(2_000, 7);
            let before = c.commits[1].len();
            let view = c.member(1).map(|m| m.view()).unwrap_or_default();
            assert!(before > 0);
            c.crash(1);
            c.run(1_000, 7);
            c.restart(1);
            // Back from its persisted state: never below the views it voted in
            // (the cluster panics if it signs a second vote or proposal in a view).
            assert!(c.member(1).is_some_and(|m| m.view() >= view));
            c.run(6_000, 7);
            assert!(
                c.commits[1].len() > before,
                "{rule:?} seed {seed}: no commits after the restart"
            );
            c.assert_agreement(before);
        }
    }
}

#[test]
fn the_same_seed_replays_and_another_seed_reorders() {
    let f = fixture();
    let run = |seed| {
        let mut c = f.cluster(CommitRule::ThreeChain, seed);
        c.run(3_000, 7);
        (c.commits.clone(), c.now())
    };
    assert_eq!(run(11), run(11));
    assert_ne!(run(11).1, run(12).1);
}
