//! The commit rules on hand-built DAGs of four members (f+1 = 2, 2f+1 = 3).

use super::*;

/// Rounds 1-2 full; round 3 by members `voters` with the anchor of round 2 as a parent
/// (and every other round-2 certificate), the rest of round 3 without it.
fn anchor_with_votes(dag: &mut Dag, voters: &[usize], others: &[usize]) -> Digest {
    dag.full_rounds(1, 2);
    let leader = dag.leader(2);
    let anchor = dag.made[4 + leader].digest;
    assert_eq!(dag.made[4 + leader].author, dag.id(leader));
    let all = dag.round(2);
    let without: Vec<Digest> = all.iter().copied().filter(|d| *d != anchor).collect();
    for v in voters {
        dag.make(3, *v, all.clone());
    }
    for o in others {
        dag.make(3, *o, without.clone());
    }
    anchor
}

#[test]
fn exactly_f_plus_one_weight_of_votes_commits_the_anchor_and_f_does_not() {
    // f = 1 vote (and two certificates without it: 2f+1 of round 3 in all).
    let mut dag = Dag::new();
    anchor_with_votes(&mut dag, &[0], &[1, 2]);
    let mut r = bullshark(&dag);
    assert!(feed(&mut r, &dag.made).is_empty());
    // f + 1 = 2 votes: committed on the second vote, not before.
    let mut dag = Dag::new();
    let anchor = anchor_with_votes(&mut dag, &[0, 1], &[]);
    let mut r = bullshark(&dag);
    let (before_last, last) = dag.made.split_at(dag.made.len() - 1);
    assert!(feed(&mut r, before_last).is_empty());
    assert_eq!(feed(&mut r, last), vec![(anchor, Round(2))]);
    assert_eq!(r.last_committed(), Round(2));
}

#[test]
fn votes_count_by_weight_not_by_number() {
    // Weights 4, 1, 1, 1 (total 7, f = 2): the validity threshold f+1 = 3 is one vote of
    // the heavy member, and more than two light ones.
    let (c, _) = Committee::generate(4, 1, &["h".into()], 1000, Some(5)).unwrap();
    let mut file = c.to_file();
    for (m, w) in file.member.iter_mut().zip([4u64, 1, 1, 1]) {
        m.weight = w;
    }
    let committee = Arc::new(Committee::new(file).unwrap());
    let mut dag = Dag::new();
    dag.committee = committee.clone();
    dag.schedule = crate::leaders::ProposerSchedule::new(&committee);
    dag.full_rounds(1, 2);
    let leader = dag.leader(2);
    let anchor = dag.made[4 + leader].digest;
    let all = dag.round(2);
    let heavy = (0..4)
        .find(|i| committee.weight(dag.id(*i)).0 == 4)
        .unwrap();
    let light: Vec<usize> = (0..4).filter(|i| *i != heavy).collect();
    // Two light votes: weight 2 < 3.
    let mut light_only = Dag {
        committee: committee.clone(),
        schedule: crate::leaders::ProposerSchedule::new(&committee),
        made: dag.made.clone(),
        by_round: BTreeMap::new(),
    };
    light_only.make(3, light[0], all.clone());
    light_only.make(3, light[1], all.clone());
    let mut r = DagOrderer::new(
        dag.id(0),
        committee.clone(),
        Variant::Bullshark(Config::default()),
        &[],
        None,
        "bullshark",
    )
    .unwrap();
    assert!(feed(&mut r, &light_only.made).is_empty());
    // The heavy member's one vote reaches it.
    dag.make(3, heavy, all);
    let mut r = DagOrderer::new(
        dag.id(0),
        committee,
        Variant::Bullshark(Config::default()),
        &[],
        None,
        "bullshark",
    )
    .unwrap();
    assert_eq!(feed(&mut r, &dag.made), vec![(anchor, Round(2))]);
}

#[test]
fn a_missing_anchor_gives_no_commit() {
    let mut dag = Dag::new();
    dag.full_rounds(1, 1);
    let leader = dag.leader(2);
    let others: Vec<usize> = (0..4).filter(|i| *i != leader).collect();
    dag.full_round(2, &others);
    dag.full_rounds(3, 3);
    let mut r = bullshark(&dag);
    assert!(feed(&mut r, &dag.made).is_empty());
}

#[test]
fn an_earlier_anchor_commits_only_through_a_path_from_a_later_one() {
    // The anchor of round 2 has one vote (member v); round 4's anchor gets f+1 votes.
    // Round 4's anchor has v's round-3 certificate as a parent: a path, so round 2's
    // anchor is ordered first.
    let mut dag = Dag::new();
    dag.full_rounds(1, 2);
    let a2 = dag.made[4 + dag.leader(2)].digest;
    let all2 = dag.round(2);
    let without: Vec<Digest> = all2.iter().copied().filter(|d| *d != a2).collect();
    let v = (dag.leader(4) + 1) % 4;
    let r3: Vec<Digest> = (0..4)
        .map(|i| {
            dag.make(
                3,
                i,
                if i == v {
                    all2.clone()
                } else {
                    without.clone()
                },
            )
        })
        .collect();
    dag.full_round(4, &[0, 1, 2, 3]);
    let a4 = dag.round(4)[dag.leader(4)];
    let _ = r3;
    dag.full_round(5, &[0, 1, 2, 3]);
    let mut r = bullshark(&dag);
    assert_eq!(
        feed(&mut r, &dag.made),
        vec![(a2, Round(2)), (a4, Round(4))]
    );

    // The same, but round 4's anchor names only the three round-3 certificates without
    // the vote: no path, round 2's anchor is skipped for good.
    let mut dag = Dag::new();
    dag.full_rounds(1, 2);
    let a2 = dag.made[4 + dag.leader(2)].digest;
    let all2 = dag.round(2);
    let without: Vec<Digest> = all2.iter().copied().filter(|d| *d != a2).collect();
    let l4 = dag.leader(4);
    let v = (l4 + 1) % 4;
    let r3: Vec<Digest> = (0..4)
        .map(|i| {
            dag.make(
                3,
                i,
                if i == v {
                    all2.clone()
                } else {
                    without.clone()
                },
            )
        })
        .collect();
    let no_vote: Vec<Digest> = (0..4).filter(|i| *i != v).map(|i| r3[i]).collect();
    let mut a4 = Digest::default();
    for i in 0..4 {
        let parents = if i == l4 { no_vote.clone() } else { r3.clone() };
        let d = dag.make(4, i, parents);
        if i == l4 {
            a4 = d;
        }
    }
    dag.full_round(5, &[0, 1, 2, 3]);
    let mut r = bullshark(&dag);
    assert_eq!(feed(&mut r, &dag.made), vec![(a4, Round(4))]);
    assert_eq!(r.persisted().skipped, 1);
}

#[test]
fn tusk_waits_for_the_third_round_of_the_wave() {
    let mut dag = Dag::new();
    dag.full_rounds(1, 3);
    let a2 = dag.round(2)[dag.leader(2)];
    let mut r = tusk(&dag);
    // f+1 votes in round 3, but round 4 not complete: not yet.
    assert!(feed(&mut r, &dag.made).is_empty());
    dag.full_round(4, &[0, 1]);
    let before = dag.made.len();
    dag.full_round(4, &[2]);
    assert!(feed(&mut r, &dag.made[..before]).is_empty());
    // The third certificate of round 4 (2f+1): the wave's leader commits.
    assert_eq!(feed(&mut r, &dag.made[before..]), vec![(a2, Round(2))]);
}

#[test]
fn a_commit_is_persisted_after_it_and_a_restart_resumes_above_it() {
    let mut dag = Dag::new();
    dag.full_rounds(1, 5);
    let mut r = bullshark(&dag);
    let mut persisted = None;
    let mut first = Vec::new();
    for c in &dag.made {
        let out = r.handle(Event::Certificate(c.clone()));
        if let Some(i) = out.iter().position(|a| matches!(a, Action::Commit { .. })) {
            let p = out
                .iter()
                .rposition(|a| matches!(a, Action::Persist { .. }));
            assert!(p > Some(i), "the state is written after the commits");
        }
        for a in &out {
            if let Action::Persist { state } = a {
                persisted = Some(state.clone());
            }
        }
        first.extend(commits(&out));
    }
    assert_eq!(first.len(), 2);
    // Restart after round 5: the mempool re-delivers the DAG; nothing again.
    let mut again = DagOrderer::new(
        dag.id(0),
        dag.committee.clone(),
        Variant::Bullshark(Config::default()),
        &[],
        persisted.as_deref(),
        "bullshark",
    )
    .unwrap();
    assert_eq!(again.last_committed(), Round(4));
    assert!(feed(&mut again, &dag.made).is_empty());
    dag.full_rounds(6, 7);
    let next = dag.round(6)[dag.leader(6)];
    assert_eq!(feed(&mut again, &dag.made[20..]), vec![(next, Round(6))]);
    // Undecodable state refuses to start.
    assert!(matches!(
        DagOrderer::new(
            dag.id(0),
            dag.committee.clone(),
            Variant::Tusk,
            &[],
            Some(&[0xff; 3]),
            "tusk"
        ),
        Err(crate::ConsensusError::CorruptState { .. })
    ));
}

#[test]
fn below_the_horizon_nothing_is_kept_or_committed() {
    let mut dag = Dag::new();
    dag.full_rounds(1, 3);
    let mut r = bullshark(&dag);
    r.handle(Event::Horizon { gc_round: Round(2) });
    // Rounds 1-2 arrive late (a slow store): refused, so round 2's anchor never commits.
    assert!(feed(&mut r, &dag.made).is_empty());
    assert_eq!(r.dag.sizes().0, 4);
    assert_eq!(r.progress.ignored, 8);
}

#[test]
fn a_horizon_past_anchors_not_ordered_stops_ordering_instead_of_skipping_them() {
    let mut dag = Dag::new();
    dag.full_rounds(1, 9);
    let mut r = bullshark(&dag);
    // Cut off: the others ordered rounds 2-6 and collected them; this node's mempool
    // jumps its horizon to 6.
    r.handle(Event::Horizon { gc_round: Round(6) });
    assert!(feed(&mut r, &dag.made).is_empty());
    assert_eq!(r.progress.halted_at, Some(Round(6)));
    // The normal horizon (below the committed round) does not.
    let mut r = bullshark(&dag);
    let committed = feed(&mut r, &dag.made);
    assert_eq!(committed.len(), 4);
    r.handle(Event::Horizon { gc_round: Round(7) });
    assert_eq!(r.progress.halted_at, None);
}

#[test]
fn any_frame_on_the_consensus_channel_is_undecodable() {
    for bytes in [&[][..], &[0], &[0, 0, 0, 0], &[1, 2, 3]] {
        assert!(primitives::codec::decode::<Message>(bytes, 1 << 20).is_err());
    }
}

#[test]
fn the_leader_timeout_must_be_positive() {
    use crate::ProtocolConfig;
    assert!(Config::default().validate().is_ok());
    let zero = Config {
        leader_timeout_ms: 0,
        ..Config::default()
    };
    assert!(zero.validate().is_err());
}

#[test]
fn a_replica_says_what_it_waits_for() {
    let mut dag = Dag::new();
    let mut r = bullshark(&dag);
    let leader = dag.id(dag.leader(2));
    let w = r.waits_for();
    assert!(
        w.contains(&format!("round 2: the anchor of its leader {leader}")),
        "{w}"
    );
    // The anchor with one vote of the f+1 it needs.
    let anchor = anchor_with_votes(&mut dag, &[1], &[0, 2]);
    feed(&mut r, &dag.made);
    let w = r.waits_for();
    assert!(
        w.contains("f+1 votes for its anchor in round 3 (1 of 2 weight held)"),
        "{w}"
    );
    let _ = anchor;
    let mut t = tusk(&dag);
    feed(&mut t, &dag.made);
    let w = t.waits_for();
    assert!(w.contains("2f+1 weight of round 4 (0 held)"), "{w}");
}
