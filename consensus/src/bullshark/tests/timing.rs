//! Bullshark's timing rule through `HoldProposer`: the bound stays at an anchor round
//! until the anchor arrives (or the timeout), and at a voting round until f+1 weight
//! voted for the anchor or 2f+1 did not (or the timeout). Tusk never holds.

use super::*;

/// The proposer bound the last `HoldProposer` of `actions` set, if any.
fn bound(actions: &[Action<Message>]) -> Option<Round> {
    actions.iter().rev().find_map(|a| match a {
        Action::HoldProposer { max_round } => *max_round,
        _ => None,
    })
}

fn arms_timer(actions: &[Action<Message>]) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, Action::SetTimer { id, .. } if *id == LEADER_TIMER))
}

#[test]
fn an_anchor_round_holds_the_proposer_until_the_anchor_arrives() {
    let mut dag = Dag::new();
    dag.full_rounds(1, 1);
    let leader = dag.leader(2);
    let others: Vec<usize> = (0..4).filter(|i| *i != leader).collect();
    dag.full_round(2, &others);
    let mut r = bullshark(&dag);
    assert_eq!(bound(&r.handle(Event::Start)), Some(Round(1)));
    let mut out = Vec::new();
    for c in &dag.made {
        out.extend(r.handle(Event::Certificate(c.clone())));
    }
    // 2f+1 of round 2 without the anchor: no header of round 3 yet, timer armed.
    assert_eq!(r.timing.bound(), Some(Round(2)));
    assert!(arms_timer(&out));
    // The anchor arrives: round 3 may start.
    let parents = dag.round(1);
    dag.make(2, leader, parents);
    let out = r.handle(Event::Certificate(dag.made.last().unwrap().clone()));
    assert_eq!(bound(&out), Some(Round(3)));
}

#[test]
fn a_crashed_leader_costs_the_timeout_and_no_more() {
    let mut dag = Dag::new();
    dag.full_rounds(1, 1);
    let leader = dag.leader(2);
    let others: Vec<usize> = (0..4).filter(|i| *i != leader).collect();
    dag.full_round(2, &others);
    let mut r = bullshark(&dag);
    r.handle(Event::Start);
    feed(&mut r, &dag.made);
    assert_eq!(r.timing.bound(), Some(Round(2)));
    let out = r.handle(Event::Timer(LEADER_TIMER));
    assert_eq!(bound(&out), Some(Round(3)));
    assert_eq!(r.timing.timeouts, 1);
    // A stale timer changes nothing.
    assert_eq!(bound(&r.handle(Event::Timer(LEADER_TIMER))), None);
}

#[test]
fn a_voting_round_waits_for_f_plus_one_votes_or_2f_plus_one_non_votes() {
    // Round 3: two certificates without the anchor and one with it: neither f+1 votes
    // (1) nor 2f+1 non-votes (2): hold at 3.
    let mut dag = Dag::new();
    dag.full_rounds(1, 2);
    let anchor = dag.round(2)[dag.leader(2)];
    let all = dag.round(2);
    let without: Vec<Digest> = all.iter().copied().filter(|d| *d != anchor).collect();
    dag.make(3, 0, all.clone());
    dag.make(3, 1, without.clone());
    dag.make(3, 2, without.clone());
    let mut r = bullshark(&dag);
    r.handle(Event::Start);
    feed(&mut r, &dag.made);
    assert_eq!(r.timing.bound(), Some(Round(3)));
    // A fourth certificate, not voting: 2f+1 non-votes, round 4 may start.
    dag.make(3, 3, without);
    let out = r.handle(Event::Certificate(dag.made.last().unwrap().clone()));
    assert_eq!(bound(&out), Some(Round(4)));

    // Or a second vote: f+1 votes (and the anchor commits).
    let mut dag = Dag::new();
    dag.full_rounds(1, 2);
    let all = dag.round(2);
    let without: Vec<Digest> = all.iter().copied().filter(|d| *d != anchor).collect();
    dag.make(3, 0, all.clone());
    dag.make(3, 1, without.clone());
    dag.make(3, 2, without);
    let mut r = bullshark(&dag);
    r.handle(Event::Start);
    feed(&mut r, &dag.made);
    dag.make(3, 3, all);
    let out = r.handle(Event::Certificate(dag.made.last().unwrap().clone()));
    assert_eq!(bound(&out), Some(Round(4)));
    assert_eq!(commits(&out).len(), 1);
}

#[test]
fn without_the_timing_rule_and_under_tusk_the_proposer_is_never_held() {
    let mut dag = Dag::new();
    dag.full_rounds(1, 6);
    let off = Config {
        timing_rule: false,
        ..Config::default()
    };
    let replicas = [
        DagOrderer::new(
            dag.id(0),
            dag.committee.clone(),
            Variant::Bullshark(off),
            &[],
            None,
            "bullshark",
        )
        .unwrap(),
        tusk(&dag),
    ];
    for mut r in replicas {
        let mut out = r.handle(Event::Start);
        for c in &dag.made {
            out.extend(r.handle(Event::Certificate(c.clone())));
        }
        assert!(out
            .iter()
            .all(|a| !matches!(a, Action::HoldProposer { .. } | Action::SetTimer { .. })));
    }
}
