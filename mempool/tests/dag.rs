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
        assert_eq!(
            missing,
            0,
            "node {i} misses {missing} of {} transactions",
            submitted.len()
        );
        eprintln!("node {i}: metrics {:?}", o.metrics);
    }
}
