//! The replica driven message by message: a height from proposal to decision, values
//! that wait for their certificates, round skips, restarts that never sign twice,
//! catch-up with commit certificates, and what `verify` refuses.

use super::*;
use crate::core::TimerId;

fn persisted_of(actions: &[Action<Message>]) -> Option<Vec<u8>> {
    actions.iter().rev().find_map(|a| match a {
        Action::Persist { state } => Some(state.clone()),
        _ => None,
    })
}

/// Replica 0 at height 1 with certificate c(1) held, round 0 started (node 1 proposes).
fn started(f: &Fixture) -> Tendermint {
    let mut r = f.replica(0, None);
    let out = r.handle(T, Event::Start);
    assert!(
        out.iter()
            .all(|a| matches!(a, Action::SetTimer { id, .. } if *id == GOSSIP_TIMER)),
        "waits for a certificate (only the re-gossip tick is armed): {out:?}"
    );
    let out = r.handle(T, cert(c(1), 1));
    assert!(out
        .iter()
        .any(|a| matches!(a, Action::SetTimer { id, .. } if *id == PROPOSE_TIMER)));
    assert_eq!(f.proposer(1, 0), NodeId(1));
    r
}

#[test]
fn a_height_goes_from_proposal_to_decision_and_the_next_starts_fresh() {
    let f = fixture();
    let mut r = started(&f);
    let p = f.proposal(1, 0, vec![(c(1), 1)], None);
    let value = p.value.digest();
    let out = deliver(&mut r, 1, Message::Proposal(p));
    assert_eq!(votes_in(&out).len(), 1);
    assert_eq!(votes_in(&out)[0].value, Some(value));
    // Persist comes before the vote it protects.
    let persist = out.iter().position(|a| matches!(a, Action::Persist { .. }));
    let send = out
        .iter()
        .position(|a| matches!(a, Action::Broadcast { .. }));
    assert!(persist < send);
    deliver(
        &mut r,
        1,
        Message::Vote(f.vote(1, VoteKind::Prevote, 1, 0, Some(value))),
    );
    let out = deliver(
        &mut r,
        2,
        Message::Vote(f.vote(2, VoteKind::Prevote, 1, 0, Some(value))),
    );
    let precommits = votes_in(&out);
    assert_eq!(precommits.len(), 1);
    assert_eq!(
        (precommits[0].kind, precommits[0].value),
        (VoteKind::Precommit, Some(value))
    );
    assert_eq!(r.round_state().locked, Some((0, value)));
    deliver(
        &mut r,
        1,
        Message::Vote(f.vote(1, VoteKind::Precommit, 1, 0, Some(value))),
    );
    let out = deliver(
        &mut r,
        3,
        Message::Vote(f.vote(3, VoteKind::Precommit, 1, 0, Some(value))),
    );
    assert_eq!(commits_in(&out), vec![(1, value)]);
    let anchors: Vec<_> = out
        .iter()
        .filter_map(|a| match a {
            Action::Commit { anchors, .. } => Some(anchors.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(anchors, vec![vec![(c(1), Round(1))]]);
    // Line 53: the next height has no lock and no valid value; nothing waits to be
    // ordered, so it waits.
    assert_eq!(r.current_height(), 2);
    assert_eq!(r.round_state().locked, None);
    assert_eq!(r.round_state().valid, None);
    assert_eq!(r.round_state().step, Step::Unstarted);
    // A duplicate precommit of the decided height changes nothing.
    let out = deliver(
        &mut r,
        2,
        Message::Vote(f.vote(2, VoteKind::Precommit, 1, 0, Some(value))),
    );
    assert!(commits_in(&out).is_empty());
}

#[test]
fn a_proposal_waits_for_its_certificates_then_gets_the_prevote() {
    let f = fixture();
    let mut r = started(&f);
    let p = f.proposal(1, 0, vec![(c(1), 1), (c(7), 2)], None);
    let value = p.value.digest();
    let out = deliver(&mut r, 1, Message::Proposal(p));
    assert!(votes_in(&out).is_empty());
    assert!(out.iter().any(|a| matches!(a, Action::FetchCertificates { digests, from } if *digests == vec![c(7)] && *from == NodeId(1))));
    let out = r.handle(T, cert(c(7), 2));
    assert_eq!(
        votes_in(&out).iter().map(|v| v.value).collect::<Vec<_>>(),
        vec![Some(value)]
    );
}

#[test]
fn a_certificate_of_another_round_makes_the_value_invalid() {
    let f = fixture();
    let mut r = started(&f);
    let p = f.proposal(1, 0, vec![(c(1), 5)], None);
    let out = deliver(&mut r, 1, Message::Proposal(p));
    assert_eq!(
        votes_in(&out).iter().map(|v| v.value).collect::<Vec<_>>(),
        vec![None]
    );
}

#[test]
fn f_plus_1_messages_of_a_higher_round_make_the_replica_jump_to_it() {
    let f = fixture();
    let mut r = started(&f);
    deliver(
        &mut r,
        2,
        Message::Vote(f.vote(2, VoteKind::Prevote, 1, 6, None)),
    );
    assert_eq!(r.round_state().round, 0);
    deliver(
        &mut r,
        3,
        Message::Vote(f.vote(3, VoteKind::Precommit, 1, 6, None)),
    );
    assert_eq!(r.round_state().round, 6);
    assert_eq!(r.round_state().step, Step::Propose);
}

#[test]
fn stale_timeouts_do_nothing() {
    let f = fixture();
    let mut r = started(&f);
    // Round 0's propose timeout, then a jump to round 6 replaces it; an old timer event
    // (as if it had been in flight) does nothing.
    deliver(
        &mut r,
        2,
        Message::Vote(f.vote(2, VoteKind::Prevote, 1, 6, None)),
    );
    deliver(
        &mut r,
        3,
        Message::Vote(f.vote(3, VoteKind::Prevote, 1, 6, None)),
    );
    let out = r.handle(T, Event::Timer(TimerId::new(77)));
    assert!(out.is_empty());
    let out = r.handle(T, Event::Timer(PREVOTE_TIMER));
    assert!(votes_in(&out).is_empty());
    // The live one: round 6's propose timeout.
    let out = r.handle(T, Event::Timer(PROPOSE_TIMER));
    let v = votes_in(&out);
    assert_eq!(
        (v[0].kind, v[0].round, v[0].value),
        (VoteKind::Prevote, 6, None)
    );
    // Fired twice (a duplicate timer event): nothing more.
    assert!(votes_in(&r.handle(T, Event::Timer(PROPOSE_TIMER))).is_empty());
}

#[test]
fn a_restarted_replica_sends_the_same_votes_and_never_a_conflicting_one() {
    let f = fixture();
    let mut r = started(&f);
    let p = f.proposal(1, 0, vec![(c(1), 1)], None);
    let value = p.value.digest();
    let out = deliver(&mut r, 1, Message::Proposal(p.clone()));
    let state = persisted_of(&out).unwrap();
    // Crash; back from the store.
    let mut r = f.replica(0, Some(&state));
    let out = r.handle(T, Event::Start);
    let again = votes_in(&out);
    assert_eq!(again.len(), 1);
    assert_eq!(
        (again[0].kind, again[0].round, again[0].value),
        (VoteKind::Prevote, 0, Some(value))
    );
    // The propose timeout (rescheduled or not) cannot make it prevote nil now.
    let out = r.handle(T, Event::Timer(PROPOSE_TIMER));
    assert!(votes_in(&out).is_empty());
    // It still locks and precommits on a polka for the value it prevoted (once the DAG
    // has given it the certificates again).
    r.handle(T, cert(c(1), 1));
    deliver(&mut r, 1, Message::Proposal(p));
    deliver(
        &mut r,
        1,
        Message::Vote(f.vote(1, VoteKind::Prevote, 1, 0, Some(value))),
    );
    let out = deliver(
        &mut r,
        2,
        Message::Vote(f.vote(2, VoteKind::Prevote, 1, 0, Some(value))),
    );
    assert_eq!(
        votes_in(&out)
            .iter()
            .map(|v| (v.kind, v.value))
            .collect::<Vec<_>>(),
        vec![(VoteKind::Precommit, Some(value))]
    );
    // Restart after the precommit: 2f+1 nil prevotes or a prevote timeout never make
    // it precommit nil in that round, and the lock survives.
    let state = persisted_of(&out).unwrap();
    let mut r = f.replica(0, Some(&state));
    let out = r.handle(T, Event::Start);
    assert_eq!(r.round_state().locked, Some((0, value)));
    assert_eq!(votes_in(&out).len(), 2, "its prevote and precommit again");
    for i in 1..4 {
        let out = deliver(
            &mut r,
            i,
            Message::Vote(f.vote(i, VoteKind::Prevote, 1, 0, None)),
        );
        assert!(votes_in(&out).iter().all(|v| v.value == Some(value)));
    }
    assert!(votes_in(&r.handle(T, Event::Timer(PREVOTE_TIMER))).is_empty());
}

#[test]
fn undecodable_persisted_state_refuses_to_start() {
    let f = fixture();
    let e = Tendermint::new(
        NodeId(0),
        f.committee.clone(),
        f.keys[0].clone(),
        SignatureScheme::Ed25519,
        Config::default(),
        Some(&[0xff, 0x13, 0x07]),
    );
    assert!(matches!(e, Err(crate::ConsensusError::CorruptState { .. })));
}

/// Decide height 1 at replica 0 (its votes and those of 1 and 2, all for the proposal).
fn decide_height_1(f: &Fixture, r: &mut Tendermint) -> Digest {
    let p = f.proposal(1, 0, vec![(c(1), 1)], None);
    let value = p.value.digest();
    deliver(r, 1, Message::Proposal(p));
    for kind in [VoteKind::Prevote, VoteKind::Precommit] {
        for i in [1, 2] {
            deliver(r, i, Message::Vote(f.vote(i, kind, 1, 0, Some(value))));
        }
    }
    assert_eq!(r.current_height(), 2);
    value
}

#[test]
fn a_lagging_replica_catches_up_with_commit_certificates() {
    let f = fixture();
    let mut ahead = started(&f);
    let value = decide_height_1(&f, &mut ahead);
    // Replica 3 missed height 1; it hears nodes 0 and 1 (f+1) at height 2.
    let mut behind = f.replica(3, None);
    behind.handle(T, Event::Start);
    behind.handle(T, cert(c(1), 1));
    let mut out = Vec::new();
    for i in [0u16, 1] {
        out.extend(deliver(
            &mut behind,
            i,
            Message::Vote(f.vote(i, VoteKind::Prevote, 2, 0, None)),
        ));
    }
    assert!(out
        .iter()
        .any(|a| matches!(a, Action::SetTimer { id, .. } if *id == SYNC_TIMER)));
    let out = behind.handle(T, Event::Timer(SYNC_TIMER));
    let request = out.iter().find_map(|a| match a {
        Action::Send {
            to,
            message: m @ Message::SyncRequest { .. },
            ..
        } => Some((*to, m.clone())),
        _ => None,
    });
    let (to, request) = request.expect("asks a peer ahead");
    assert!(to == NodeId(0) || to == NodeId(1));
    let out = deliver(&mut ahead, 3, request);
    let reply = out.iter().find_map(|a| match a {
        Action::Send {
            message: m @ Message::SyncReply(_),
            ..
        } => Some(m.clone()),
        _ => None,
    });
    let out = deliver(&mut behind, 0, reply.expect("the decision of height 1"));
    assert_eq!(commits_in(&out), vec![(1, value)]);
    assert_eq!(behind.current_height(), 2);
    // A tampered commit certificate is refused.
    let Some(Message::SyncReply(mut decisions)) =
        deliver(&mut ahead, 3, Message::SyncRequest { height: 1 })
            .into_iter()
            .find_map(|a| match a {
                Action::Send { message, .. } => Some(message),
                _ => None,
            })
    else {
        panic!("no reply")
    };
    decisions[0].round += 1;
    assert!(behind
        .verify(NodeId(0), &Message::SyncReply(decisions))
        .is_err());
}

#[test]
fn a_peer_heard_at_a_lower_height_is_sent_what_it_missed_once() {
    let f = fixture();
    let mut ahead = started(&f);
    decide_height_1(&f, &mut ahead);
    let late = Message::Vote(f.vote(3, VoteKind::Prevote, 1, 0, None));
    let out = deliver(&mut ahead, 3, late.clone());
    assert!(out.iter().any(|a| matches!(a, Action::Send { to, message: Message::SyncReply(d), .. } if *to == NodeId(3) && d.len() == 1)));
    let out = deliver(&mut ahead, 3, late);
    assert!(out.is_empty());
}

#[test]
fn verify_refuses_wrong_proposers_forged_voters_and_bad_signatures() {
    let f = fixture();
    let r = f.replica(0, None);
    // Round 0 of height 1 is node 1's; node 2 may not propose it.
    let mut p = f.proposal(1, 0, vec![], None);
    p.author = NodeId(2);
    assert!(r.verify(NodeId(2), &Message::Proposal(p)).is_err());
    // vr must be below the round.
    let p = f.proposal(1, 0, vec![], Some(0));
    assert!(r.verify(NodeId(1), &Message::Proposal(p)).is_err());
    // A vote relayed by another node, or with a broken signature.
    let vote = f.vote(2, VoteKind::Prevote, 1, 0, None);
    assert!(r.verify(NodeId(3), &Message::Vote(vote.clone())).is_err());
    let mut broken = vote.clone();
    broken.round = 1;
    assert!(r.verify(NodeId(2), &Message::Vote(broken)).is_err());
    assert!(r.verify(NodeId(2), &Message::Vote(vote)).is_ok());
    // An oversized value.
    let big = f.proposal(1, 0, (0..1_001).map(|i| (c(i), 1)).collect(), None);
    assert!(r.verify(NodeId(1), &Message::Proposal(big)).is_err());
    assert!(r.verify(NodeId(1), &Message::SyncReply(vec![])).is_err());
}

#[test]
fn conflicting_proposals_and_votes_are_reported_as_evidence() {
    let f = fixture();
    let mut r = started(&f);
    deliver(
        &mut r,
        1,
        Message::Proposal(f.proposal(1, 0, vec![(c(1), 1)], None)),
    );
    let out = deliver(&mut r, 1, Message::Proposal(f.proposal(1, 0, vec![], None)));
    assert!(out.iter().any(|a| matches!(a, Action::Evidence { kind: "proposal-equivocation", culprit, .. } if *culprit == NodeId(1))));
    deliver(
        &mut r,
        2,
        Message::Vote(f.vote(2, VoteKind::Prevote, 1, 0, None)),
    );
    let out = deliver(
        &mut r,
        2,
        Message::Vote(f.vote(2, VoteKind::Prevote, 1, 0, Some(v(1)))),
    );
    assert!(out.iter().any(|a| matches!(a, Action::Evidence { kind: "double-vote", culprit, .. } if *culprit == NodeId(2))));
}

/// The broadcasts (best effort or reliable) of an action list.
fn broadcasts(actions: &[Action<Message>]) -> Vec<Message> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Broadcast { message, .. } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_node_stuck_in_a_round_broadcasts_what_it_signed_again_and_one_that_moves_does_not() {
    let f = fixture();
    let mut r = started(&f);
    let p = f.proposal(1, 0, vec![(c(1), 1)], None);
    let value = p.value.digest();
    let prevote = votes_in(&deliver(&mut r, 1, Message::Proposal(p)));
    assert_eq!(prevote.len(), 1);
    // First tick: marks (height 1, round 0); nothing is re-sent yet.
    let out = r.handle(T, Event::Timer(GOSSIP_TIMER));
    assert!(broadcasts(&out).is_empty());
    assert!(out
        .iter()
        .any(|a| matches!(a, Action::SetTimer { id, .. } if *id == GOSSIP_TIMER)));
    // Second tick in the same round: the prevote goes out again, identical.
    let out = r.handle(T, Event::Timer(GOSSIP_TIMER));
    assert_eq!(broadcasts(&out), vec![Message::Vote(prevote[0].clone())]);
    assert!(out.iter().all(|a| !matches!(a, Action::Persist { .. })));
    // The height moves on: the next tick is quiet.
    for voter in [1, 2] {
        deliver(
            &mut r,
            voter,
            Message::Vote(f.vote(voter, VoteKind::Prevote, 1, 0, Some(value))),
        );
    }
    for voter in [1, 2] {
        deliver(
            &mut r,
            voter,
            Message::Vote(f.vote(voter, VoteKind::Precommit, 1, 0, Some(value))),
        );
    }
    assert_eq!(r.current_height(), 2);
    let out = r.handle(T, Event::Timer(GOSSIP_TIMER));
    assert!(broadcasts(&out).is_empty());
}

#[test]
fn a_peer_asking_for_decisions_in_a_loop_is_served_a_bounded_number_of_times_per_tick() {
    let f = fixture();
    let mut r = started(&f);
    let p = f.proposal(1, 0, vec![(c(1), 1)], None);
    let value = p.value.digest();
    deliver(&mut r, 1, Message::Proposal(p));
    for kind in [VoteKind::Prevote, VoteKind::Precommit] {
        for voter in [1, 2] {
            deliver(
                &mut r,
                voter,
                Message::Vote(f.vote(voter, kind, 1, 0, Some(value))),
            );
        }
    }
    assert_eq!(r.current_height(), 2);
    let replies = |out: &[Action<Message>]| {
        out.iter()
            .filter(|a| {
                matches!(
                    a,
                    Action::Send {
                        message: Message::SyncReply(_),
                        ..
                    }
                )
            })
            .count()
    };
    let asked: usize = (0..3 * super::super::sync::SERVES_PER_TICK)
        .map(|_| replies(&deliver(&mut r, 3, Message::SyncRequest { height: 1 })))
        .sum();
    assert_eq!(asked, super::super::sync::SERVES_PER_TICK as usize);
    r.handle(T, Event::Timer(GOSSIP_TIMER));
    assert_eq!(
        replies(&deliver(&mut r, 3, Message::SyncRequest { height: 1 })),
        1,
        "a new tick, a new budget"
    );
}

#[test]
fn a_relayed_proof_of_lock_lets_a_node_that_missed_it_prevote_the_re_proposal() {
    let f = fixture();
    // Node 3 (round 1 of height 1 is node 0's to propose).
    let mut r = f.replica(3, None);
    r.handle(T, Event::Start);
    r.handle(T, cert(c(1), 1));
    assert_eq!(f.proposer(1, 1), NodeId(0));
    // Round 0's value got 2f+1 prevotes elsewhere; this node saw none of them.
    let p0 = f.proposal(1, 0, vec![(c(1), 1)], None);
    let value = p0.value.digest();
    // f+1 messages of round 1 take it there (line 55).
    for voter in [1, 2] {
        deliver(
            &mut r,
            voter,
            Message::Vote(f.vote(voter, VoteKind::Prevote, 1, 1, None)),
        );
    }
    assert_eq!(r.round_state().round, 1);
    // Round 1's proposer re-proposes it with validRound 0: without the proof of lock,
    // no prevote for it (line 28 needs 2f+1 prevotes of round 0).
    let p1 = Proposal::new(&f.keys[0], NodeId(0), 1, p0.value.clone(), Some(0));
    let out = deliver(&mut r, 0, Message::Proposal(p1));
    assert!(votes_in(&out).is_empty());
    // The proof of lock, relayed by one member.
    let polka: Vec<Vote> = [0, 1, 2]
        .into_iter()
        .map(|voter| f.vote(voter, VoteKind::Prevote, 1, 0, Some(value)))
        .collect();
    let out = deliver(&mut r, 1, Message::Polka(polka));
    let prevotes = votes_in(&out);
    assert_eq!(prevotes.len(), 1);
    assert_eq!(
        (prevotes[0].kind, prevotes[0].round, prevotes[0].value),
        (VoteKind::Prevote, 1, Some(value))
    );
}

#[test]
fn verify_refuses_a_mixed_repeated_or_forged_proof_of_lock() {
    let f = fixture();
    let r = f.replica(0, None);
    let vote = |voter, value| f.vote(voter, VoteKind::Prevote, 1, 0, value);
    let ok = vec![vote(1, Some(v(1))), vote(2, Some(v(1)))];
    assert!(r.verify(NodeId(3), &Message::Polka(ok.clone())).is_ok());
    let refused = [
        vec![],
        vec![vote(1, None), vote(2, None)],
        vec![vote(1, Some(v(1))), vote(2, Some(v(2)))],
        vec![vote(1, Some(v(1))), vote(1, Some(v(1)))],
        vec![
            vote(1, Some(v(1))),
            f.vote(2, VoteKind::Precommit, 1, 0, Some(v(1))),
        ],
    ];
    for polka in refused {
        assert!(r.verify(NodeId(3), &Message::Polka(polka)).is_err());
    }
    let mut forged = ok;
    forged[1].voter = NodeId(3);
    assert!(r.verify(NodeId(3), &Message::Polka(forged)).is_err());
}

#[test]
fn a_replica_says_what_it_waits_for() {
    let f = fixture();
    let mut r = f.replica(0, None);
    r.handle(T, Event::Start);
    let w = r.waiting_for().unwrap();
    assert!(w.contains("height 1: DAG certificates"), "{w}");
    let r = started(&f);
    let w = r.waiting_for().unwrap();
    let proposer = f.proposer(1, 0);
    assert!(
        w.contains(&format!("height 1 round 0: the proposal of {proposer}")),
        "{w}"
    );
}
