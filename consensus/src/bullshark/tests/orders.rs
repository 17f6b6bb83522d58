//! Random DAGs (every certificate with 2f+1 or more parents of the round below, some
//! members missing from some rounds, leaders among them) delivered in shuffled causal
//! orders: every order gives the same committed anchors in the same order, each anchor
//! once and in increasing rounds, for both variants; a restart in the middle resumes
//! the same sequence.

use super::*;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// A random DAG of `rounds` rounds.
fn random_dag(seed: u64, rounds: u64) -> Dag {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut dag = Dag::new();
    for r in 1..=rounds {
        let below = dag.round(r - 1);
        // Three or four authors this round (a member is slow or down now and then).
        let mut authors = vec![0, 1, 2, 3];
        if rng.gen_bool(0.3) {
            authors.remove(rng.gen_range(0..4));
        }
        for a in authors {
            let mut parents = below.clone();
            parents.shuffle(&mut rng);
            let keep = rng.gen_range(3..=parents.len().max(3));
            parents.truncate(keep);
            dag.make(r, a, parents);
        }
    }
    dag
}

/// A random causal order of `certs` (parents before children).
fn shuffled(certs: &[CertificateInfo], seed: u64) -> Vec<CertificateInfo> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut pending: Vec<CertificateInfo> = certs.to_vec();
    let mut done: std::collections::BTreeSet<Digest> = mempool::Certificate::genesis(&committee())
        .iter()
        .map(|c| c.digest())
        .collect();
    let mut order = Vec::new();
    while !pending.is_empty() {
        let ready: Vec<usize> = (0..pending.len())
            .filter(|i| pending[*i].parents.iter().all(|p| done.contains(p)))
            .collect();
        let pick = ready[rng.gen_range(0..ready.len())];
        let c = pending.swap_remove(pick);
        done.insert(c.digest);
        order.push(c);
    }
    order
}

fn replica(dag: &Dag, tusk_variant: bool) -> DagOrderer {
    if tusk_variant {
        tusk(dag)
    } else {
        bullshark(dag)
    }
}

#[test]
fn shuffled_causal_orders_commit_the_same_anchors_in_the_same_order() {
    for tusk_variant in [false, true] {
        let (mut skipped, mut indirect) = (0, 0);
        for seed in 0..12 {
            let dag = random_dag(seed, 30);
            let mut first = replica(&dag, tusk_variant);
            let reference = feed(&mut first, &dag.made);
            skipped += first.persisted().skipped;
            indirect += first.persisted().committed - first.progress.direct;
            assert!(
                reference.len() >= 4,
                "seed {seed}: only {} anchors",
                reference.len()
            );
            assert!(reference.windows(2).all(|w| w[0].1 < w[1].1));
            for order_seed in 0..6 {
                let order = shuffled(&dag.made, order_seed);
                let got = feed(&mut replica(&dag, tusk_variant), &order);
                assert_eq!(got, reference, "seed {seed} order {order_seed}");
            }
        }
        // The DAGs exercise both halves of the path rule.
        assert!(
            skipped > 0 && indirect > 0,
            "skipped {skipped}, indirect {indirect}"
        );
    }
}

#[test]
fn a_restart_in_the_middle_resumes_the_same_sequence() {
    for seed in 0..6 {
        let dag = random_dag(seed, 30);
        let reference = feed(&mut bullshark(&dag), &dag.made);
        let cut = dag.made.len() / 2;
        let mut r = bullshark(&dag);
        let mut got = Vec::new();
        let mut persisted = None;
        for c in &dag.made[..cut] {
            let out = r.handle(Event::Certificate(c.clone()));
            got.extend(commits(&out));
            for a in out {
                if let Action::Persist { state } = a {
                    persisted = Some(state);
                }
            }
        }
        let mut again = DagOrderer::new(
            dag.id(0),
            dag.committee.clone(),
            Variant::Bullshark(Config::default()),
            &[],
            persisted.as_deref(),
            "bullshark",
        )
        .unwrap();
        // The store re-delivers everything it kept, then the rest arrives.
        got.extend(feed(&mut again, &dag.made));
        assert_eq!(got, reference, "seed {seed}");
    }
}
