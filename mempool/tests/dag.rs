//! The mempool in simulation: 4 real nodes over turmoil, clients at a fixed rate.

mod common;

use common::*;
use std::time::Duration;

#[test]
fn four_nodes_build_the_same_dag_and_certify_every_transaction() {
    let cluster = Cluster::new(4, 1, parameters());
    let mut sim = cluster.builder(Duration::from_secs(40)).build();
    for i in 0..4 {
        cluster.add_node(&mut sim, i);
    }
    for c in 0..4 {
        cluster.add_client(&mut sim, c, c, 1_000, 512, Duration::from_secs(15));
    }
    sim.client("driver", async {
        tokio::time::sleep(Duration::from_secs(25)).await;
        Ok(())
    });
    sim.run().unwrap();

    let observed: Vec<_> = (0..4).map(|i| cluster.observed(i)).collect();
    let highest = observed.iter().map(|o| o.highest).min().unwrap();
    assert!(highest.0 > 100, "only {highest} rounds");
    let reference = by_round(&observed[0]);
    for o in &observed[1..] {
        let mine = by_round(o);
        for r in 1..highest.0 - 2 {
            let r = primitives::Round(r);
            assert_eq!(mine.get(&r), reference.get(&r), "round {r} differs");
        }
    }
    for o in &observed {
        assert_causal(o, 50);
    }
    let submitted = cluster.submitted.lock().unwrap().clone();
    assert!(submitted.len() > 50_000);
    for (i, o) in observed.iter().enumerate() {
        let missing = submitted.difference(&o.transactions).count();
        eprintln!("node {i}: misses {missing}; {:?}", o.metrics);
        assert_eq!(
            missing,
            0,
            "node {i} misses {missing} of {} transactions",
            submitted.len()
        );
        eprintln!("node {i}: metrics {:?}", o.metrics);
    }
}

#[test]
fn a_node_partitioned_past_the_gc_horizon_catches_up_after_healing() {
    let cluster = Cluster::new(4, 2, parameters());
    let mut sim = cluster.builder(Duration::from_secs(60)).build();
    for i in 0..4 {
        cluster.add_node(&mut sim, i);
    }
    for c in 0..3 {
        cluster.add_client(&mut sim, c, c, 500, 512, Duration::from_secs(30));
    }
    const CUT: Duration = Duration::from_secs(3);
    const HEAL: Duration = Duration::from_secs(15);
    sim.client("driver", async {
        tokio::time::sleep(CUT).await;
        for i in 0..3 {
            turmoil::partition(host(3), host(i));
        }
        tokio::time::sleep(HEAL - CUT).await;
        for i in 0..3 {
            turmoil::repair(host(3), host(i));
        }
        tokio::time::sleep(Duration::from_secs(25)).await;
        Ok(())
    });
    sim.run().unwrap();

    let observed: Vec<_> = (0..4).map(|i| cluster.observed(i)).collect();
    let lagging = &observed[3];
    let others_highest = observed[..3].iter().map(|o| o.highest).min().unwrap();
    // The partition lasted longer than gc_depth rounds.
    let at_heal = observed[0]
        .delivered
        .iter()
        .filter(|(r, _, _)| r.0 > 0)
        .count();
    assert!(at_heal > 0);
    assert!(others_highest.0 > 200, "{others_highest}");
    // Caught up: the lagging node is at the others' round and delivers what they deliver.
    assert!(
        lagging.highest.0 + 3 >= others_highest.0,
        "{} vs {}",
        lagging.highest,
        others_highest
    );
    let reference = by_round(&observed[0]);
    let mine = by_round(lagging);
    let recent: Vec<_> = (others_highest.0 - 60..others_highest.0 - 2)
        .map(primitives::Round)
        .collect();
    for r in &recent {
        assert_eq!(mine.get(r), reference.get(r), "round {r} differs");
    }
    let m = lagging.metrics.clone().unwrap();
    assert!(m.certificates_synced > 0, "{m:?}");
    assert_eq!(m.horizon_jumps, 1, "{m:?}");
    eprintln!("lagging node: {m:?}");
    assert_causal(lagging, 50);
}

#[test]
fn two_workers_per_node_shard_the_load_and_certify_everything() {
    let cluster = Cluster::with_workers(4, 2, 6, parameters());
    let mut sim = cluster.builder(Duration::from_secs(30)).build();
    for i in 0..4 {
        cluster.add_node(&mut sim, i);
        for w in 0..2 {
            cluster.add_client_to_worker(
                &mut sim,
                2 * i + w,
                i,
                w,
                500,
                512,
                Duration::from_secs(10),
            );
        }
    }
    sim.client("driver", async {
        tokio::time::sleep(Duration::from_secs(20)).await;
        Ok(())
    });
    sim.run().unwrap();
    let submitted = cluster.submitted.lock().unwrap().clone();
    for i in 0..4 {
        let o = cluster.observed(i);
        let missing = submitted.difference(&o.transactions).count();
        assert_eq!(
            missing,
            0,
            "node {i} misses {missing} of {}",
            submitted.len()
        );
    }
}

#[test]
fn bls_aggregate_certificates_work_end_to_end() {
    let mut p = parameters();
    p.signature_scheme = primitives::crypto::SignatureScheme::Bls;
    let cluster = Cluster::new(4, 7, p);
    let mut sim = cluster.builder(Duration::from_secs(20)).build();
    for i in 0..4 {
        cluster.add_node(&mut sim, i);
        cluster.add_client(&mut sim, i, i, 200, 512, Duration::from_secs(5));
    }
    sim.client("driver", async {
        tokio::time::sleep(Duration::from_secs(10)).await;
        Ok(())
    });
    sim.run().unwrap();
    let submitted = cluster.submitted.lock().unwrap().clone();
    let reference = by_round(&cluster.observed(0));
    for i in 0..4 {
        let o = cluster.observed(i);
        assert!(o.highest.0 > 50, "node {i}: {}", o.highest);
        assert_eq!(submitted.difference(&o.transactions).count(), 0, "node {i}");
        let mine = by_round(&o);
        for r in 1..o.highest.0.min(reference.keys().last().unwrap().0) - 2 {
            let r = primitives::Round(r);
            assert_eq!(mine.get(&r), reference.get(&r));
        }
        let m = o.metrics.unwrap();
        assert!(
            m.rejections.is_empty()
                || m.rejections
                    .iter()
                    .all(|(r, _)| *r == mempool::Rejection::StaleHeader),
            "{m:?}"
        );
    }
}
