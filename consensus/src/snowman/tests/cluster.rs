//! Seeded in-memory clusters of Snowman replicas (random latency, verify on every
//! delivery, crashes, restarts from persisted state, cut-off members; the cluster
//! panics if a member signs two blocks on one parent or reports two accepted blocks at
//! one height).

use super::super::*;
use crate::core::{Context, Event, Protocol, Time};
use crate::testing::Cluster;
use primitives::crypto::{KeyPair, SignatureScheme};
use primitives::{Committee, Digest, NodeId, Round};
use rand::SeedableRng;
use std::sync::Arc;
use std::time::Duration;

struct Fixture {
    committee: Arc<Committee>,
    keys: Vec<KeyPair>,
}

fn fixture(n: usize) -> Fixture {
    let (c, keys) = Committee::generate(n, 1, &["h".into()], 1000, Some(9)).unwrap();
    Fixture {
        committee: Arc::new(c),
        keys,
    }
}

/// Faster windows and polls than the defaults, so that tests run short.
fn fast() -> Config {
    Config {
        poll_timeout_ms: 200,
        proposer_window_ms: 500,
        ..Config::default()
    }
}

impl Fixture {
    fn replica(&self, id: NodeId, persisted: Option<Vec<u8>>, config: Config) -> Snowman {
        Snowman::new(
            Context {
                id,
                committee: self.committee.clone(),
                keys: self.keys[id.0 as usize].clone(),
                scheme: SignatureScheme::Ed25519,
                rng: rand_chacha::ChaCha20Rng::seed_from_u64(u64::from(id.0) + 100),
                persisted,
                now: Time::default(),
            },
            config,
        )
        .unwrap()
    }

    fn cluster(&self, seed: u64, config: Config) -> Cluster<Snowman> {
        let committee = self.committee.clone();
        let keys = self.keys.clone();
        let f = Fixture { committee, keys };
        let make = Box::new(move |id: NodeId, persisted: Option<Vec<u8>>| {
            Some(f.replica(id, persisted, config.clone()))
        });
        Cluster::new(self.committee.clone(), make, seed, (1, 20))
    }
}

fn height(c: &Cluster<Snowman>, i: usize) -> u64 {
    c.member(i).map_or(0, |m| m.last_accepted().1)
}

fn counter(c: &Cluster<Snowman>, i: usize, name: &str) -> u64 {
    c.member(i)
        .and_then(|m| m.metrics().into_iter().find(|(n, _)| *n == name))
        .map_or(0, |(_, v)| v)
}

#[test]
fn small_committees_poll_everyone_with_scaled_alphas() {
    let f = fixture(4);
    let r = f.replica(NodeId(0), None, Config::default());
    let p = r.params();
    assert_eq!((p.k, p.alpha_preference, p.alpha_confidence), (4, 3, 3));
    // Capped at the quorum: 10 members (f = 3) poll all with alpha 7, not 8.
    let p = Config::default().effective(10, 7);
    assert_eq!((p.k, p.alpha_preference, p.alpha_confidence), (10, 7, 7));
    let p = Config::default().effective(7, 5);
    assert_eq!((p.k, p.alpha_preference, p.alpha_confidence), (7, 5, 5));
    // Lower alphas than the quorum are kept.
    let low = Config {
        alpha_preference: 11,
        alpha_confidence: 11,
        ..Config::default()
    };
    let p = low.effective(10, 7);
    assert_eq!((p.alpha_preference, p.alpha_confidence), (6, 6));
    let p = Config::default().effective(50, 34);
    assert_eq!((p.k, p.alpha_preference, p.alpha_confidence), (20, 15, 15));
}

#[test]
fn an_in_memory_cluster_accepts_the_same_chain() {
    let f = fixture(4);
    for seed in 0..4 {
        let mut c = f.cluster(seed, fast());
        c.run_until(Time(Duration::from_secs(10)), 7);
        c.assert_agreement(10);
        assert_eq!(c.rejected, 0, "seed {seed}");
        // Every certificate made was carried (the last few may still be undecided).
        let pending = counter(&c, 0, "certificates_pending");
        let held = counter(&c, 0, "certificates_held");
        assert!(
            pending * 20 < held,
            "seed {seed}: {pending} pending, height {}, {:?}",
            height(&c, 0),
            c.member(0).map(|m| m.metrics())
        );
    }
}

#[test]
fn a_larger_committee_samples_k_of_n() {
    let f = fixture(12);
    let config = Config {
        k: 6,
        alpha_preference: 5,
        alpha_confidence: 5,
        beta: 8,
        ..fast()
    };
    let mut c = f.cluster(3, config);
    c.run_until(Time(Duration::from_secs(3)), 20);
    c.assert_agreement(3);
}

#[test]
fn a_crashed_member_is_no_vote_and_the_others_keep_accepting() {
    let f = fixture(4);
    for seed in 0..2 {
        let mut c = f.cluster(seed, fast());
        c.crash(2);
        c.run_until(Time(Duration::from_secs(20)), 7);
        c.assert_agreement(10);
        // Polls that asked the crashed member ended early (3 agreeing votes of 4).
        assert!(counter(&c, 0, "polls_ended_early") > 0, "seed {seed}");
    }
}

#[test]
fn a_restarted_member_resumes_from_its_last_accepted_block() {
    let f = fixture(4);
    for seed in 0..3 {
        let mut c = f.cluster(seed, fast());
        c.run_until(Time(Duration::from_secs(4)), 7);
        let before = height(&c, 1);
        assert!(before > 0, "seed {seed}");
        c.crash(1);
        c.run_until(Time(Duration::from_secs(8)), 7);
        c.restart(1);
        assert!(
            height(&c, 1) >= before,
            "seed {seed}: restarted below its height"
        );
        c.run_until(Time(Duration::from_secs(20)), 7);
        assert!(
            height(&c, 1) > before,
            "seed {seed}: nothing after the restart"
        );
        c.assert_agreement(before as usize);
    }
}

#[test]
fn a_member_cut_off_catches_up_on_blocks_f_plus_one_peers_accepted() {
    let f = fixture(4);
    for seed in 0..3 {
        let mut c = f.cluster(seed, fast());
        c.set_cut(3, true);
        c.run_until(Time(Duration::from_secs(8)), 7);
        let behind = height(&c, 3);
        assert!(height(&c, 0) > behind + 20, "seed {seed}");
        c.set_cut(3, false);
        c.run_until(Time(Duration::from_secs(25)), 7);
        assert!(
            height(&c, 3) + 8 >= height(&c, 0),
            "seed {seed}: still behind"
        );
        assert!(counter(&c, 3, "accepted_by_catch_up") > 0, "seed {seed}");
        // One round of catch-up requests at a time: the answers do not set off more
        // requests than the peers' serve rate admits.
        for i in 0..4 {
            assert_eq!(
                counter(&c, i, "refused_requests"),
                0,
                "seed {seed}, node {i}"
            );
        }
        c.assert_agreement(behind as usize + 20);
    }
}

#[test]
fn the_same_seed_replays_and_another_seed_reorders() {
    let f = fixture(4);
    let run = |seed| {
        let mut c = f.cluster(seed, fast());
        c.run_until(Time(Duration::from_secs(5)), 7);
        (c.commits.clone(), c.now())
    };
    assert_eq!(run(11), run(11));
    assert_ne!(run(11).1, run(12).1);
}

#[test]
fn conflicting_blocks_at_one_height_converge_to_one() {
    // Two members propose siblings on genesis, each shown first to a different half:
    // the committee ends up accepting one of them everywhere.
    let f = fixture(4);
    for seed in 0..4 {
        let mut c = f.cluster(seed, fast());
        c.certificate(Round(1));
        let s = crate::leaders::ProposerSchedule::new(&f.committee);
        let (p0, p1) = (s.proposer(1, 0), s.proposer(1, 1));
        let a = Block::new(
            &f.keys[p0.0 as usize],
            Digest::default(),
            1,
            p0,
            0,
            Vec::new(),
        );
        let b = Block::new(
            &f.keys[p1.0 as usize],
            Digest::default(),
            1,
            p1,
            1,
            Vec::new(),
        );
        // Members 0 and 1 see a first, 2 and 3 see b first.
        for (i, (first, second)) in [(&a, &b), (&a, &b), (&b, &a), (&b, &a)].iter().enumerate() {
            for block in [first, second] {
                c.apply(
                    i,
                    Event::Message {
                        from: block.proposer,
                        message: Message::Put((*block).clone()),
                    },
                );
            }
        }
        c.run_until(Time(Duration::from_secs(10)), 7);
        c.assert_agreement(2);
        let first = c.commits[0][0];
        assert!(first == a.digest() || first == b.digest(), "seed {seed}");
    }
}

/// Blocks proposed by the member of window 0 of `height` (keys from the fixture).
fn block_by_first_proposer(f: &Fixture, parent: Digest, height: u64, tag: u64) -> Block {
    let s = crate::leaders::ProposerSchedule::new(&f.committee);
    let p = s.proposer(height, 0);
    let cert = primitives::Hasher::new().update_u64(tag).finalize();
    Block::new(
        &f.keys[p.0 as usize],
        parent,
        height,
        p,
        0,
        vec![(cert, Round(1))],
    )
}

#[test]
fn a_held_block_whose_parent_is_missing_gets_its_parent_fetched_once() {
    let f = fixture(4);
    let mut r = f.replica(NodeId(0), None, fast());
    r.handle(Time::default(), Event::Start);
    let b1 = block_by_first_proposer(&f, Digest::default(), 1, 1);
    let b2 = block_by_first_proposer(&f, b1.digest(), 2, 2);
    let asks = |out: &[crate::Action<Message>]| {
        out.iter()
            .filter(|a| {
                matches!(a, crate::Action::Send { message: Message::GetAncestors { block, .. }, .. }
                    if *block == b1.digest())
            })
            .count()
    };
    let out = r.handle(
        Time::default(),
        Event::Message {
            from: NodeId(2),
            message: Message::Put(b2.clone()),
        },
    );
    assert_eq!(asks(&out), 1, "{out:?}");
    // Asked already: a query naming the held block does not ask again within the
    // poll timeout, and asks again after it.
    let query = Message::Query {
        poll: 1,
        block: b2.digest(),
        height: 2,
        accepted: Digest::default(),
        accepted_height: 0,
    };
    let out = r.handle(
        Time::default(),
        Event::Message {
            from: NodeId(3),
            message: query.clone(),
        },
    );
    assert_eq!(asks(&out), 0);
    let later = Time(Duration::from_millis(300));
    let out = r.handle(
        later,
        Event::Message {
            from: NodeId(3),
            message: query,
        },
    );
    assert_eq!(asks(&out), 1);
}

#[test]
fn a_proposer_gets_two_blocks_per_parent_at_most_and_the_second_is_evidence() {
    let f = fixture(4);
    let mut r = f.replica(NodeId(0), None, fast());
    r.handle(Time::default(), Event::Start);
    for tag in 1..=3 {
        r.handle(
            Time::default(),
            Event::Certificate(crate::CertificateInfo {
                digest: primitives::Hasher::new().update_u64(tag).finalize(),
                round: Round(1),
                author: NodeId(1),
                weight: f.committee.weight(NodeId(1)),
                parents: Vec::new(),
            }),
        );
    }
    let mut evidence = 0;
    for tag in 1..=3 {
        let b = block_by_first_proposer(&f, Digest::default(), 1, tag);
        let out = r.handle(
            Time::default(),
            Event::Message {
                from: b.proposer,
                message: Message::Put(b),
            },
        );
        evidence += out
            .iter()
            .filter(|a| {
                matches!(
                    a,
                    crate::Action::Evidence {
                        kind: "block-equivocation",
                        ..
                    }
                )
            })
            .count();
    }
    assert_eq!(evidence, 1);
    let processing = r
        .metrics()
        .into_iter()
        .find(|(n, _)| *n == "processing")
        .map(|(_, v)| v);
    // Two of the proposer's siblings, plus this node's own proposal on genesis if it is
    // a proposer of height 1 with a window open.
    assert!(
        processing.is_some_and(|p| (2..=3).contains(&p)),
        "{processing:?}"
    );
    assert!(r
        .metrics()
        .iter()
        .any(|(n, v)| *n == "blocks_dropped" && *v == 1));
}

#[test]
fn a_replica_says_what_it_waits_for() {
    let f = fixture(4);
    let r = f.replica(NodeId(0), None, fast());
    let w = r.waiting_for().unwrap();
    assert!(w.contains("height 1: a block"), "{w}");
    // Members of a running cluster poll on a preferred chain, or wait for the next block.
    let mut c = f.cluster(1, fast());
    c.run_until(Time(Duration::from_secs(3)), 7);
    let w = c.member(0).and_then(|m| m.waiting_for()).unwrap();
    let next = height(&c, 0) + 1;
    assert!(w.starts_with(&format!("height {next}: ")), "{w}");
}
