//! Crash and restart from the store; garbage collection keeps memory and storage bounded.

mod common;

use common::*;
use primitives::Round;
use std::time::Duration;

fn run_until(sim: &mut turmoil::Sim<'_>, t: Duration) {
    while sim.elapsed() < t {
        sim.step().unwrap();
    }
}

#[test]
fn a_crashed_node_restarts_from_its_store_and_never_equivocates() {
    let cluster = Cluster::new(4, 3, parameters());
    let mut sim = cluster.builder(Duration::from_secs(60)).build();
    for i in 0..4 {
        cluster.add_node(&mut sim, i);
    }
    for c in [0usize, 1, 3] {
        cluster.add_client(&mut sim, c, c, 500, 512, Duration::from_secs(25));
    }
    // Crash node 2 three times at awkward moments, restarting it from its store.
    for (crash, restart) in [(5_000, 7_000), (10_037, 11_500), (15_071, 15_300)] {
        run_until(&mut sim, Duration::from_millis(crash));
        sim.crash(host(2));
        run_until(&mut sim, Duration::from_millis(restart));
        sim.bounce(host(2));
    }
    run_until(&mut sim, Duration::from_secs(35));

    let observed: Vec<_> = (0..4).map(|i| cluster.observed(i)).collect();
    let highest = observed.iter().map(|o| o.highest).min().unwrap();
    assert!(highest.0 > 250, "{highest}");
    // The restarted node resumed and delivers what the others deliver.
    let reference = by_round(&observed[0]);
    let restarted = by_round(&observed[2]);
    for r in highest.0 - 40..highest.0 - 2 {
        assert_eq!(
            restarted.get(&Round(r)),
            reference.get(&Round(r)),
            "round {r}"
        );
    }
    // Nobody saw two different headers from node 2 for one round, and the DAGs agree.
    for (i, o) in observed.iter().enumerate() {
        assert_eq!(o.equivocations, 0, "node {i} saw equivocation");
    }
    for o in [&observed[1], &observed[3]] {
        let mine = by_round(o);
        for r in 1..highest.0 - 2 {
            assert_eq!(mine.get(&Round(r)), reference.get(&Round(r)), "round {r}");
        }
    }
    // Node 2 kept proposing after its restarts (its certificates are in late rounds).
    let late_own = reference
        .range(Round(highest.0 - 40)..)
        .flat_map(|(_, s)| s.iter())
        .filter(|(a, _)| a.0 == 2)
        .count();
    assert!(late_own > 20, "{late_own}");
}

#[test]
fn memory_and_storage_stay_bounded_over_thousands_of_rounds() {
    rounds_stay_bounded(1_000);
}

/// The full-length version of the test above (10,000+ rounds); run with `--ignored`.
#[test]
#[ignore]
fn memory_and_storage_stay_bounded_over_ten_thousand_rounds() {
    rounds_stay_bounded(10_000);
}

fn rounds_stay_bounded(rounds: u64) {
    let mut p = parameters();
    p.mempool.max_header_delay_ms = 20;
    p.mempool.max_batch_delay_ms = 10;
    // Batches outlive the DAG by the history retention (state transfer fetches them).
    p.mempool.history_retention_rounds = 50;
    let retention = p.mempool.history_retention_rounds as usize;
    let gc_depth = p.mempool.gc_depth;
    let cluster = Cluster::new(4, 4, p);
    // Rounds take about one header delay plus a few network hops.
    let duration = Duration::from_millis(rounds * 60 + 10_000);
    let mut sim = cluster.builder(duration).build();
    for i in 0..4 {
        cluster.add_node(&mut sim, i);
        cluster.add_client(&mut sim, i, i, 200, 256, duration);
    }
    // Read the round without cloning everything observed (that grows with the run).
    let highest = |c: &Cluster| c.observed[0].lock().unwrap().highest.0;
    while highest(&cluster) < rounds {
        assert!(
            sim.elapsed() < duration,
            "only {} rounds",
            highest(&cluster)
        );
        sim.step().unwrap();
    }

    for i in 0..4 {
        let o = cluster.observed(i);
        // At most gc_depth + a few rounds of 4 certificates (plus genesis until the first GC).
        let bound = 4 * (gc_depth as usize + 10);
        assert!(
            o.peak_dag <= bound,
            "node {i}: DAG peaked at {} > {bound}",
            o.peak_dag
        );
        assert!(
            o.peak_stored_certificates <= bound,
            "node {i}: {} stored",
            o.peak_stored_certificates
        );
        // Batches: a few per round per node, kept for gc_depth + retention rounds.
        assert!(
            o.peak_stored_batches <= 4 * 4 * (gc_depth as usize + retention + 10),
            "node {i}: {} batches",
            o.peak_stored_batches
        );
        eprintln!(
            "node {i}: peak DAG {}, stored certificates {}, stored batches {}, unavailable {}",
            o.peak_dag, o.peak_stored_certificates, o.peak_stored_batches, o.unavailable
        );
        let m = o.metrics.unwrap();
        assert!(m.certificates_collected > 3 * rounds, "{m:?}");
    }
}
