//! Step tests: one replica, hand-made messages, the actions it returns.

use super::*;

#[test]
fn votes_at_most_once_per_view_and_persists_before_voting() {
    let f = fixture();
    let mut r = f.replica(3, CommitRule::ThreeChain);
    r.handle(T, Event::Start);
    assert_eq!(r.view(), View(1));
    let b = f.block(1, Qc::genesis(), None, vec![]);
    let actions = propose(&mut r, b.author, &b);
    let votes = votes_in(&actions);
    assert_eq!(votes.len(), 1);
    // The vote goes to the leader of the next view, after the state is persisted.
    let persist = actions
        .iter()
        .position(|a| matches!(a, Action::Persist { .. }))
        .unwrap();
    let send = actions
        .iter()
        .position(|a| {
            matches!(
                a,
                Action::Send {
                    message: Message::Vote(_),
                    ..
                }
            )
        })
        .unwrap();
    assert!(persist < send);
    assert!(
        matches!(&actions[send], Action::Send { to, .. } if *to == leader(&f.committee, View(2), 1))
    );
    assert_eq!(r.safety().last_voted_view, View(1));
    // An equivocating leader's second block for view 1 gets no vote.
    let b2 = f.block(1, Qc::genesis(), None, vec![Digest::of(b"other")]);
    r.handle(T, cert(Digest::of(b"other"), Round(1), NodeId(0)));
    assert!(votes_in(&propose(&mut r, b2.author, &b2)).is_empty());
    // Nor does the same block again.
    assert!(votes_in(&propose(&mut r, b.author, &b)).is_empty());
}

#[test]
fn a_restarted_replica_does_not_vote_again_in_its_last_view() {
    let f = fixture();
    let mut r = f.replica(3, CommitRule::ThreeChain);
    r.handle(T, Event::Start);
    let b = f.block(1, Qc::genesis(), None, vec![]);
    let actions = propose(&mut r, b.author, &b);
    let state = actions
        .iter()
        .rev()
        .find_map(|a| match a {
            Action::Persist { state } => Some(state.clone()),
            _ => None,
        })
        .unwrap();
    let mut restarted = HotStuff::new(
        NodeId(3),
        f.committee.clone(),
        f.keys[3].clone(),
        SignatureScheme::Ed25519,
        Config {
            views_per_leader: 1,
            ..Config::default()
        },
        Some(&state),
    )
    .unwrap();
    restarted.handle(T, Event::Start);
    assert!(restarted.view() > View(1));
    let other = f.block(1, Qc::genesis(), None, vec![]);
    assert!(votes_in(&propose(&mut restarted, other.author, &other)).is_empty());
}

#[test]
fn three_chain_lock_refuses_a_conflicting_block() {
    let f = fixture();
    let mut r = f.replica(3, CommitRule::ThreeChain);
    r.handle(T, Event::Start);
    let b1 = f.block(1, Qc::genesis(), None, vec![]);
    let b2 = f.block(2, f.qc(&b1), None, vec![]);
    let b3 = f.block(3, f.qc(&b2), None, vec![]);
    for b in [&b1, &b2, &b3] {
        propose(&mut r, b.author, b);
    }
    // Seeing QC(b2) inside b3 locks on QC(b1).
    assert_eq!(r.safety().locked_qc.block, b1.digest());
    // View 3 times out; a block for view 4 that extends genesis (not the locked b1),
    // justified by a TC whose reported QCs are all old, must not get a vote.
    let fork = f.block(4, Qc::genesis(), Some(f.tc(3, 0)), vec![]);
    let actions = propose(&mut r, fork.author, &fork);
    assert_eq!(r.view(), View(4));
    assert!(votes_in(&actions).is_empty());
    // A block for view 4 extending b3 (whose QC is for b2, above the lock) is fine.
    let good = f.block(4, f.qc(&b2), Some(f.tc(3, 2)), vec![]);
    assert_eq!(votes_in(&propose(&mut r, good.author, &good)).len(), 1);
}

#[test]
fn a_block_after_a_timeout_must_extend_the_highest_reported_qc() {
    let f = fixture();
    let mut r = f.replica(3, CommitRule::TwoChain);
    r.handle(T, Event::Start);
    let b1 = f.block(1, Qc::genesis(), None, vec![]);
    let b2 = f.block(2, f.qc(&b1), None, vec![]);
    propose(&mut r, b1.author, &b1);
    propose(&mut r, b2.author, &b2);
    // TC for view 2 reports a QC of view 1; a view-3 block built on genesis is refused.
    let stale = f.block(3, Qc::genesis(), Some(f.tc(2, 1)), vec![]);
    let votes = votes_in(&propose(&mut r, stale.author, &stale));
    assert!(votes.iter().all(|v| v.block != stale.digest()));
    // A view-3 block without any TC and an old QC is refused too.
    let unjustified = f.block(3, Qc::genesis(), None, vec![]);
    let votes = votes_in(&propose(&mut r, unjustified.author, &unjustified));
    assert!(votes.iter().all(|v| v.block != unjustified.digest()));
}

#[test]
fn three_chain_commits_only_consecutive_views() {
    let f = fixture();
    let mut r = f.replica(3, CommitRule::ThreeChain);
    r.handle(T, Event::Start);
    let b1 = f.block(1, Qc::genesis(), None, vec![Digest::of(b"c1")]);
    let b2 = f.block(2, f.qc(&b1), None, vec![]);
    let b3 = f.block(3, f.qc(&b2), None, vec![]);
    let b4 = f.block(4, f.qc(&b3), None, vec![]);
    r.handle(T, cert(Digest::of(b"c1"), Round(1), NodeId(0)));
    let mut commits = Vec::new();
    for b in [&b1, &b2, &b3] {
        commits.extend(commits_in(&propose(&mut r, b.author, b)));
    }
    assert!(commits.is_empty(), "no three-chain yet");
    let actions = propose(&mut r, b4.author, &b4);
    assert_eq!(commits_in(&actions), vec![b1.digest()]);
    assert!(actions.iter().any(
        |a| matches!(a, Action::Commit { anchors, .. } if anchors == &vec![(Digest::of(b"c1"), Round(1))])
    ));

    // A gap in views breaks the chain: b5 (view 5), b6 (view 7 after a TC), b7 (view 8).
    let b5 = f.block(5, f.qc(&b4), None, vec![]);
    let b6 = f.block(7, f.qc(&b5), Some(f.tc(6, 5)), vec![]);
    let b7 = f.block(8, f.qc(&b6), None, vec![]);
    let mut later = Vec::new();
    for b in [&b5, &b6, &b7] {
        later.extend(commits_in(&propose(&mut r, b.author, b)));
    }
    // QC(b4) in b5 commits b2; QC(b5) in b6 commits b3; QC(b6) does not commit b4 (gap).
    assert_eq!(later, vec![b2.digest(), b3.digest()]);
}

#[test]
fn two_chain_commits_a_block_once_its_child_is_certified() {
    let f = fixture();
    let mut r = f.replica(3, CommitRule::TwoChain);
    r.handle(T, Event::Start);
    let b1 = f.block(1, Qc::genesis(), None, vec![]);
    let b2 = f.block(2, f.qc(&b1), None, vec![]);
    let b3 = f.block(3, f.qc(&b2), None, vec![]);
    assert!(commits_in(&propose(&mut r, b1.author, &b1)).is_empty());
    assert!(commits_in(&propose(&mut r, b2.author, &b2)).is_empty());
    assert_eq!(
        commits_in(&propose(&mut r, b3.author, &b3)),
        vec![b1.digest()]
    );
}

#[test]
fn a_timed_out_view_gets_no_vote_and_a_tc_moves_on_with_backoff() {
    let f = fixture();
    let mut r = f.replica(3, CommitRule::ThreeChain);
    r.handle(T, Event::Start);
    let actions = r.handle(T, Event::Timer(TimerId::new(1)));
    assert!(actions.iter().any(
        |a| matches!(a, Action::Broadcast { message: Message::Timeout(t), .. } if t.view == View(1))
    ));
    assert!(actions.iter().any(|a| matches!(a, Action::Persist { .. })));
    let b1 = f.block(1, Qc::genesis(), None, vec![]);
    assert!(votes_in(&propose(&mut r, b1.author, &b1)).is_empty());
    // Timeouts from two others, one of them view 2's leader (so nobody is shown
    // silent), complete a quorum with ours: view 2, doubled timeout.
    let collector = leader(&f.committee, View(2), 1).0;
    let other = (0..3u16).find(|i| *i != collector).unwrap();
    let mut actions = Vec::new();
    for i in [collector, other] {
        let t = Timeout::new(&f.keys[i as usize], NodeId(i), View(1), Qc::genesis());
        actions.extend(r.handle(
            T,
            Event::Message {
                from: NodeId(i),
                message: Message::Timeout(t),
            },
        ));
    }
    assert_eq!(r.view(), View(2));
    assert!(actions.iter().any(|a| matches!(a, Action::SetTimer { id, after } if *id == TimerId::new(2) && *after == Duration::from_millis(2_000))));
    assert!(actions.iter().any(
        |a| matches!(a, Action::Broadcast { message: Message::Tc(tc), .. } if tc.view == View(1))
    ));
}

#[test]
fn f_plus_one_timeouts_make_a_replica_time_out_too() {
    let f = fixture();
    let mut r = f.replica(3, CommitRule::ThreeChain);
    r.handle(T, Event::Start);
    let t0 = Timeout::new(&f.keys[0], NodeId(0), View(1), Qc::genesis());
    let a = r.handle(
        T,
        Event::Message {
            from: NodeId(0),
            message: Message::Timeout(t0),
        },
    );
    assert!(!a.iter().any(|a| matches!(
        a,
        Action::Broadcast {
            message: Message::Timeout(_),
            ..
        }
    )));
    let t1 = Timeout::new(&f.keys[1], NodeId(1), View(1), Qc::genesis());
    let a = r.handle(
        T,
        Event::Message {
            from: NodeId(1),
            message: Message::Timeout(t1),
        },
    );
    assert!(a.iter().any(
        |a| matches!(a, Action::Broadcast { message: Message::Timeout(t), .. } if t.voter == NodeId(3))
    ));
}

#[test]
fn the_next_leader_forms_a_qc_and_proposes() {
    let f = fixture();
    let next = leader(&f.committee, View(2), 1);
    let mut r = f.replica(next.0, CommitRule::ThreeChain);
    r.handle(T, Event::Start);
    // A certificate to order, so that the new leader has a reason to propose.
    r.handle(T, cert(Digest::of(b"c"), Round(1), NodeId(0)));
    let b1 = f.block(1, Qc::genesis(), None, vec![]);
    let mut actions = propose(&mut r, b1.author, &b1);
    for i in (0..4u16).filter(|i| *i != next.0).take(2) {
        let v = Vote::new(
            &f.keys[i as usize],
            NodeId(i),
            b1.digest(),
            View(1),
            SignatureScheme::Ed25519,
        );
        actions.extend(r.handle(
            T,
            Event::Message {
                from: NodeId(i),
                message: Message::Vote(v),
            },
        ));
    }
    assert_eq!(r.view(), View(2));
    let proposal = actions.iter().find_map(|a| match a {
        Action::Broadcast {
            message: Message::Propose(b),
            ..
        } => Some(b.clone()),
        _ => None,
    });
    let proposal = proposal.expect("leader of view 2 proposes");
    assert_eq!(proposal.view, View(2));
    assert_eq!(proposal.qc.block, b1.digest());
    proposal
        .qc
        .verify(&f.committee, SignatureScheme::Ed25519)
        .unwrap();
}

#[test]
fn a_block_that_misstates_a_certificate_round_gets_no_vote() {
    let f = fixture();
    let mut r = f.replica(0, CommitRule::ThreeChain);
    r.handle(T, Event::Start);
    r.handle(T, cert(Digest::of(b"cert"), Round(7), NodeId(1)));
    // The leader of view 1 says the certificate is of round 1; we hold it as round 7.
    let (l, k) = f.leader_keys(1);
    let lying = Block::new(
        k,
        l,
        View(1),
        Qc::genesis(),
        None,
        vec![(Digest::of(b"cert"), Round(1))],
    );
    assert!(votes_in(&propose(&mut r, l, &lying)).is_empty());
    // The same block with the right round gets the vote.
    let mut r = f.replica(0, CommitRule::ThreeChain);
    r.handle(T, Event::Start);
    r.handle(T, cert(Digest::of(b"cert"), Round(7), NodeId(1)));
    let honest = Block::new(
        k,
        l,
        View(1),
        Qc::genesis(),
        None,
        vec![(Digest::of(b"cert"), Round(7))],
    );
    assert_eq!(votes_in(&propose(&mut r, l, &honest)).len(), 1);
}

#[test]
fn missing_parents_and_payload_are_fetched_before_voting() {
    let f = fixture();
    // Replica 0 does not lead view 3, so its vote for view 2 leaves as a message.
    let mut r = f.replica(0, CommitRule::ThreeChain);
    r.handle(T, Event::Start);
    let b1 = f.block(1, Qc::genesis(), None, vec![]);
    let b2 = f.block(2, f.qc(&b1), None, vec![Digest::of(b"cert")]);
    // b2 arrives first: its parent b1 is unknown.
    let a = propose(&mut r, b2.author, &b2);
    assert!(a.iter().any(
        |a| matches!(a, Action::Send { message: Message::SyncRequest { block, .. }, .. } if *block == b1.digest())
    ));
    assert!(votes_in(&a).is_empty());
    // The parent arrives; now the payload certificate is missing.
    let a = r.handle(
        T,
        Event::Message {
            from: b2.author,
            message: Message::SyncReply(vec![b1.clone()]),
        },
    );
    assert!(a.iter().any(|a| matches!(a, Action::FetchCertificates { digests, .. } if digests == &vec![Digest::of(b"cert")])));
    assert!(votes_in(&a).is_empty());
    // The certificate becomes available: vote.
    let a = r.handle(T, cert(Digest::of(b"cert"), Round(1), NodeId(1)));
    assert_eq!(votes_in(&a).len(), 1);
}

#[test]
fn a_replica_left_behind_in_a_view_is_sent_the_tc_that_ended_it() {
    let f = fixture();
    let mut r = f.replica(0, CommitRule::ThreeChain);
    r.handle(T, Event::Start);
    // Views 1 and 2 end in TCs: replica 0 is in view 3.
    r.handle(
        T,
        Event::Message {
            from: NodeId(1),
            message: Message::Tc(f.tc(1, 0)),
        },
    );
    r.handle(
        T,
        Event::Message {
            from: NodeId(1),
            message: Message::Tc(f.tc(2, 0)),
        },
    );
    assert_eq!(r.view(), View(3));
    // Replica 3 missed both TCs and keeps timing out view 2.
    let late = Timeout::new(&f.keys[3], NodeId(3), View(2), Qc::genesis());
    let a = r.handle(
        T,
        Event::Message {
            from: NodeId(3),
            message: Message::Timeout(late),
        },
    );
    assert!(
        a.iter().any(|a| matches!(a, Action::Send { to, message: Message::Tc(tc), .. } if *to == NodeId(3) && tc.view == View(2))),
        "{a:?}"
    );
    // A second replica that received that TC moves to view 3.
    let mut lagging = f.replica(3, CommitRule::ThreeChain);
    lagging.handle(T, Event::Start);
    for a in a {
        if let Action::Send { message, .. } = a {
            lagging.handle(
                T,
                Event::Message {
                    from: NodeId(0),
                    message,
                },
            );
        }
    }
    assert_eq!(lagging.view(), View(3));
}

#[test]
fn a_commit_behind_missing_blocks_fetches_the_chain_and_retries_other_peers() {
    let f = fixture();
    // A chain of certified blocks 1..=6 that replica 3 never saw.
    let mut chain = vec![f.block(1, Qc::genesis(), None, vec![Digest::of(b"c1")])];
    for v in 2..=6u64 {
        let qc = f.qc(chain.last().unwrap());
        chain.push(f.block(v, qc, None, vec![Digest::of(&v.to_le_bytes())]));
    }
    // Replica 0 saw it all and committed up to block 3 (its three-chain head).
    let mut helper = f.replica(0, CommitRule::ThreeChain);
    helper.handle(T, Event::Start);
    for b in &chain {
        for (d, _) in &b.payload {
            helper.handle(T, cert(*d, Round(1), b.author));
        }
        propose(&mut helper, b.author, b);
    }
    // Replica 3 (cut off until now) gets blocks 3 to 6: the QC of block 5 inside
    // block 6 commits block 3, but only once its ancestors 2 and 1 are in hand.
    let mut r = f.replica(3, CommitRule::ThreeChain);
    r.handle(T, Event::Start);
    let recent: Vec<Block> = chain[2..].iter().rev().cloned().collect();
    let a = r.handle(
        T,
        Event::Message {
            from: chain[5].author,
            message: Message::SyncReply(recent),
        },
    );
    let (first_peer, request) = a
        .iter()
        .find_map(|a| match a {
            Action::Send {
                to,
                message: Message::SyncRequest { block, .. },
                ..
            } => Some((*to, *block)),
            _ => None,
        })
        .expect("asks for the missing ancestor");
    assert_eq!(request, chain[1].digest());
    assert!(a
        .iter()
        .any(|a| matches!(a, Action::SetTimer { id, .. } if *id == SYNC_TIMER)));
    // Nobody answers: the retry goes to another peer.
    let a = r.handle(T, Event::Timer(SYNC_TIMER));
    let retry_peer = a.iter().find_map(|a| match a {
        Action::Send {
            to,
            message: Message::SyncRequest { block, .. },
            ..
        } if *block == request => Some(*to),
        _ => None,
    });
    assert!(retry_peer.is_some_and(|p| p != first_peer && p != NodeId(3)));
    // The helper answers with the whole chain below the request in one reply.
    let reply = helper.handle(
        T,
        Event::Message {
            from: NodeId(3),
            message: Message::SyncRequest {
                block: request,
                above: View(0),
            },
        },
    );
    let blocks = reply
        .iter()
        .find_map(|a| match a {
            Action::Send {
                message: Message::SyncReply(blocks),
                ..
            } => Some(blocks.clone()),
            _ => None,
        })
        .expect("the helper keeps committed blocks to answer");
    assert_eq!(blocks, vec![chain[1].clone(), chain[0].clone()]);
    // A reply stops above what the asker committed: block 6 asked for above view 4
    // comes with block 5 only.
    let bounded = helper.handle(
        T,
        Event::Message {
            from: NodeId(2),
            message: Message::SyncRequest {
                block: chain[5].digest(),
                above: View(4),
            },
        },
    );
    assert!(bounded.iter().any(|a| matches!(
        a,
        Action::Send { message: Message::SyncReply(b), .. }
            if *b == vec![chain[5].clone(), chain[4].clone()]
    )));
    let a = r.handle(
        T,
        Event::Message {
            from: NodeId(0),
            message: Message::SyncReply(blocks),
        },
    );
    let committed: Vec<Digest> = a
        .iter()
        .filter_map(|a| match a {
            Action::Commit { block, .. } => Some(*block),
            _ => None,
        })
        .collect();
    assert_eq!(
        committed,
        vec![chain[0].digest(), chain[1].digest(), chain[2].digest()]
    );
    assert!(a
        .iter()
        .any(|a| matches!(a, Action::CancelTimer { id } if *id == SYNC_TIMER)));
}

#[test]
fn an_idle_leader_waits_for_a_certificate_before_proposing() {
    let f = fixture();
    let first = leader(&f.committee, View(1), 1);
    let mut r = f.replica(first.0, CommitRule::ThreeChain);
    let actions = r.handle(T, Event::Start);
    assert!(!actions.iter().any(|a| matches!(
        a,
        Action::Broadcast {
            message: Message::Propose(_),
            ..
        }
    )));
    let actions = r.handle(T, cert(Digest::of(b"tx"), Round(1), NodeId(2)));
    let proposal = actions.iter().find_map(|a| match a {
        Action::Broadcast {
            message: Message::Propose(b),
            ..
        } => Some(b.clone()),
        _ => None,
    });
    assert_eq!(
        proposal.expect("proposes once there is payload").payload,
        vec![(Digest::of(b"tx"), Round(1))]
    );
}

#[test]
fn a_silent_leader_is_suspected_and_its_views_get_the_short_timeout() {
    let mut f = fixture();
    f.views_per_leader = 2;
    let mut r = f.replica(3, CommitRule::ThreeChain);
    r.handle(T, Event::Start); // view 1, led by n0 (views 0 and 1)
                               // Nobody proposed in view 1; a TC for it moves us to view 2 (led by n1).
    r.handle(T, Event::Timer(TimerId::new(1)));
    let tc = f.tc(1, 0);
    let actions = r.handle(
        T,
        Event::Message {
            from: NodeId(0),
            message: Message::Tc(tc),
        },
    );
    assert_eq!(r.view(), View(2));
    // View 2's leader (n1) is not suspected, and its next leader is n1 too: the normal
    // timer, not doubled: our timeout in view 1 grew the backoff, but the TC showed a
    // silent leader (n0, now suspected), which says nothing about the network.
    assert!(actions.iter().any(|a| matches!(a, Action::SetTimer { id, after } if *id == TimerId::new(2) && *after == Duration::from_millis(1_000))), "{actions:?}");
    // Now view 2 also ends by TC without a proposal: n1 is suspected too; view 3 (n1)
    // gets the short timer and does not grow the backoff.
    r.handle(T, Event::Timer(TimerId::new(2)));
    let actions = r.handle(
        T,
        Event::Message {
            from: NodeId(0),
            message: Message::Tc(f.tc(2, 0)),
        },
    );
    assert_eq!(r.view(), View(3));
    let short = Duration::from_millis(Config::default().suspect_timeout_ms);
    assert!(
        actions.iter().any(
            |a| matches!(a, Action::SetTimer { id, after } if *id == TimerId::new(3) && *after == short)
        ),
        "{actions:?}"
    );
}

#[test]
fn a_collector_missing_from_a_tc_is_suspected_and_its_view_gets_the_short_timeout() {
    let f = fixture();
    let l1 = leader(&f.committee, View(1), 1);
    let collector = leader(&f.committee, View(2), 1);
    let me = (0..4u16)
        .find(|i| NodeId(*i) != l1 && NodeId(*i) != collector)
        .unwrap();
    let others: Vec<u16> = (0..4u16).filter(|i| NodeId(*i) != collector).collect();
    let short = Duration::from_millis(Config::default().suspect_timeout_ms);
    let timer_of = |actions: &[Action<Message>], view: u64| {
        actions.iter().find_map(|a| match a {
            Action::SetTimer { id, after } if *id == TimerId::new(view) => Some(*after),
            _ => None,
        })
    };
    for (signers, suspected) in [(others.clone(), true), (vec![], false)] {
        let mut r = f.replica(me, CommitRule::ThreeChain);
        r.handle(T, Event::Start);
        // View 1's leader proposes (so it is not the silent one) and we vote.
        let b = f.block(1, Qc::genesis(), None, vec![]);
        assert_eq!(votes_in(&propose(&mut r, b.author, &b)).len(), 1);
        r.handle(T, Event::Timer(TimerId::new(1)));
        // Second case: the collector's own timeout reached us before the TC.
        let signers = if signers.is_empty() {
            let heard = Timeout::new(
                &f.keys[collector.0 as usize],
                collector,
                View(1),
                Qc::genesis(),
            );
            r.handle(
                T,
                Event::Message {
                    from: collector,
                    message: Message::Timeout(heard),
                },
            );
            others.clone()
        } else {
            signers
        };
        let actions = r.handle(
            T,
            Event::Message {
                from: NodeId(signers[0]),
                message: Message::Tc(f.tc_by(1, 0, &signers)),
            },
        );
        assert_eq!(r.view(), View(2));
        let timer = timer_of(&actions, 2).expect("view 2 is timed");
        assert_eq!(timer == short, suspected, "{actions:?}");
    }
}

#[test]
fn the_pacemaker_times_out_after_the_measured_round_trip_on_a_slow_network() {
    let f = fixture();
    let mut r = f.replica(3, CommitRule::ThreeChain);
    let at = |ms: u64| Time(Duration::from_millis(ms));
    r.handle(at(0), Event::Start);
    // Views that each take 900 ms from entering to their QC (a slow network): after a
    // few, the base timeout is three of them, not the configured 1,000 ms.
    let mut qc = Qc::genesis();
    let mut last = Vec::new();
    for v in 1..=8u64 {
        let b = f.block(v, qc.clone(), None, vec![]);
        let now = at(v * 900);
        r.handle(
            now,
            Event::Message {
                from: b.author,
                message: Message::Propose(b.clone()),
            },
        );
        qc = f.qc(&b);
        let next = f.block(v + 1, qc.clone(), None, vec![]);
        last = r.handle(
            at(v * 900 + 900),
            Event::Message {
                from: next.author,
                message: Message::Propose(next),
            },
        );
    }
    assert!(
        last.iter().any(|a| matches!(a, Action::SetTimer { after, .. } if *after == Duration::from_millis(2_700))),
        "{last:?}"
    );
    assert_eq!(
        r.metrics()
            .iter()
            .find(|(k, _)| *k == "round_trip_ms")
            .map(|(_, v)| *v),
        Some(900)
    );
}

#[test]
fn the_default_parameters_file_gives_the_default_config() {
    let p = primitives::Parameters::default();
    assert_eq!(
        crate::parse_config::<Config>("hotstuff", p.consensus.get("hotstuff")).unwrap(),
        Config::default()
    );
    let table: toml::Table = toml::from_str("commit_rule = \"two-chain\"").unwrap();
    let two = crate::parse_config::<Config>("hotstuff", Some(&table)).unwrap();
    assert_eq!(two.commit_rule, CommitRule::TwoChain);
    assert_eq!(two.timeout_ms, Config::default().timeout_ms);
}

#[test]
fn corrupt_persisted_state_refuses_to_start() {
    let f = fixture();
    let made = HotStuff::new(
        NodeId(0),
        f.committee.clone(),
        f.keys[0].clone(),
        SignatureScheme::Ed25519,
        Config::default(),
        Some(b"definitely not a safety state"),
    );
    assert!(matches!(
        made,
        Err(crate::ConsensusError::CorruptState { .. })
    ));
}

#[test]
fn a_replica_says_what_it_waits_for() {
    let f = fixture();
    let mut r = f.replica(3, CommitRule::ThreeChain);
    r.handle(T, Event::Start);
    let first = leader(&f.committee, View(1), 1);
    let w = r.waiting_for().unwrap();
    assert!(
        w.contains("view 1") && w.contains(&format!("proposal from its leader {first}")),
        "{w}"
    );
    // With view 1's block in hand it waits for the next leader's QC (or collects the
    // votes itself when it is that leader).
    let b = f.block(1, Qc::genesis(), None, vec![]);
    propose(&mut r, b.author, &b);
    let w = r.waiting_for().unwrap();
    let next = leader(&f.committee, View(2), 1);
    if next == NodeId(3) {
        assert!(w.contains("votes for block"), "{w}");
    } else {
        assert!(w.contains(&format!("next leader {next}")), "{w}");
    }
}
