//! Seeded in-memory clusters of Tendermint replicas (random latency, verify on every
//! delivery, crashes, restarts from persisted state; the cluster panics if any member
//! signs two different proposals or votes in one round).

use super::*;
use crate::testing::Cluster;

impl Fixture {
    /// A seeded cluster of this fixture's replicas (latency 1-20 ms).
    fn cluster(&self, seed: u64, config: Config) -> Cluster<Tendermint> {
        self.cluster_with(seed, config, SignatureScheme::Ed25519)
    }

    /// The same with votes and commit certificates in `scheme`.
    fn cluster_with(
        &self,
        seed: u64,
        config: Config,
        scheme: SignatureScheme,
    ) -> Cluster<Tendermint> {
        let committee = self.committee.clone();
        let keys = self.keys.clone();
        let make = Box::new(move |id: NodeId, persisted: Option<Vec<u8>>| {
            Tendermint::new(
                id,
                committee.clone(),
                keys[id.0 as usize].clone(),
                scheme,
                config.clone(),
                persisted.as_deref(),
            )
            .ok()
        });
        Cluster::new(self.committee.clone(), make, seed, (1, 20))
    }
}

#[test]
fn an_in_memory_cluster_decides_the_same_sequence() {
    let f = fixture();
    for seed in 0..4 {
        let mut c = f.cluster(seed, Config::default());
        c.run(5_000, 7);
        c.assert_agreement(50);
        assert_eq!(c.rejected, 0);
    }
}

#[test]
fn without_waiting_for_certificates_empty_heights_are_decided_too() {
    let f = fixture();
    let config = Config {
        wait_for_certificates: false,
        ..Config::default()
    };
    let mut c = f.cluster(3, config);
    c.run(3_000, 0);
    c.assert_agreement(50);
}

#[test]
fn a_crashed_proposer_costs_propose_timeouts_but_the_others_keep_deciding() {
    let f = fixture();
    for seed in 0..2 {
        let mut c = f.cluster(seed, Config::default());
        c.crash(2);
        c.run(20_000, 7);
        c.assert_agreement(20);
        let timeouts = c
            .member(0)
            .map(|m| m.progress.timeouts[0])
            .unwrap_or_default();
        assert!(
            timeouts > 0,
            "seed {seed}: no propose timeout with a crashed proposer"
        );
    }
}

#[test]
fn a_restarted_member_resumes_from_what_it_persisted_without_signing_twice() {
    let f = fixture();
    for seed in 0..3 {
        let mut c = f.cluster(seed, Config::default());
        c.run(2_000, 7);
        let before = c.commits[1].len();
        let height = c.member(1).map(|m| m.current_height()).unwrap_or_default();
        assert!(before > 0);
        c.crash(1);
        c.run(1_000, 7);
        c.restart(1);
        // Back from its persisted state: never below the height it reached (the
        // cluster panics if it signs a second, different vote or proposal in a round).
        assert!(c.member(1).is_some_and(|m| m.current_height() >= height));
        c.run(6_000, 7);
        assert!(
            c.commits[1].len() > before,
            "seed {seed}: no decisions after the restart"
        );
        c.assert_agreement(before);
    }
}

#[test]
fn the_same_seed_replays_and_another_seed_reorders() {
    let f = fixture();
    let run = |seed| {
        let mut c = f.cluster(seed, Config::default());
        c.run(3_000, 7);
        (c.commits.clone(), c.now())
    };
    assert_eq!(run(11), run(11));
    assert_ne!(run(11).1, run(12).1);
}

#[test]
fn bls_votes_and_aggregated_commit_certificates_work_too() {
    let f = fixture();
    let mut c = f.cluster_with(4, Config::default(), SignatureScheme::Bls);
    c.run(600, 7);
    c.assert_agreement(10);
    assert_eq!(c.rejected, 0);
}

/// Two of four lose the quorum and get it back: crashed and restarted (`crash`), or cut
/// off and reconnected with nothing they missed resent. Either way what one side sent
/// meanwhile is lost, and both sides may wait, with no timeout running, for votes the
/// other side already sent.
fn quorum_lost_and_back(seed: u64, config: Config, crash: bool) -> (Vec<usize>, Vec<usize>) {
    let f = fixture();
    let mut c = f.cluster(seed, config);
    c.run(2_000, 7);
    let before: Vec<usize> = c.commits.iter().map(Vec::len).collect();
    for i in [2, 3] {
        if crash {
            c.crash(i)
        } else {
            c.set_cut(i, true)
        }
    }
    c.run(2_000, 7);
    for i in [2, 3] {
        if crash {
            c.restart(i)
        } else {
            c.set_cut(i, false)
        }
    }
    // Within a minute of simulated time (the timeouts are seconds).
    c.run_until(c.now().after(Duration::from_secs(60)), 7);
    c.assert_agreement(0);
    (before, c.commits.iter().map(Vec::len).collect())
}

#[test]
fn after_losing_the_quorum_and_getting_it_back_every_member_decides_again() {
    // Seeds 3 and 5 stall without re-gossip (found by a sweep).
    for (seed, crash) in [(3, false), (5, true), (0, false), (0, true)] {
        let (before, after) = quorum_lost_and_back(seed, Config::default(), crash);
        for (i, (b, a)) in before.iter().zip(&after).enumerate() {
            assert!(
                a > &(b + 10),
                "seed {seed} (crash {crash}): member {i} decided {b} before, {a} after"
            );
        }
    }
}

#[test]
fn without_re_gossip_the_same_schedule_stalls() {
    // Re-gossip once an hour: the minute after the reconnection passes in silence.
    let config = Config {
        regossip_ms: 3_600_000,
        ..Config::default()
    };
    let (before, after) = quorum_lost_and_back(3, config, false);
    assert!(before.iter().zip(&after).all(|(b, a)| *a <= b + 1));
}
