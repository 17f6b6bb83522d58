//! Table-driven step tests of the pure round machine (one or more per rule of
//! Algorithm 1, by line number) and of the vote keeper.

use super::*;
use crate::tendermint::round_machine::{apply, Fired, Input, Output, RoundState, Step};
use crate::tendermint::vote_keeper::{AddOutcome, Threshold, VoteKeeper};

fn state(round: u64, step: Step) -> RoundState {
    RoundState {
        height: 1,
        round,
        step,
        ..RoundState::default()
    }
}

fn locked(mut s: RoundState, lr: u64, lv: Digest) -> RoundState {
    s.locked = Some((lr, lv));
    s.valid = Some((lr, lv));
    s
}

fn prevote(round: u64, value: Option<Digest>) -> Output {
    Output::Vote {
        kind: VoteKind::Prevote,
        round,
        value,
    }
}

fn precommit(round: u64, value: Option<Digest>) -> Output {
    Output::Vote {
        kind: VoteKind::Precommit,
        round,
        value,
    }
}

fn schedule(kind: TimeoutKind, round: u64) -> Output {
    Output::Schedule { kind, round }
}

fn timeout(kind: TimeoutKind, height: u64, round: u64) -> Input {
    Input::Timeout {
        kind,
        height,
        round,
    }
}

struct Case {
    name: &'static str,
    state: RoundState,
    input: Input,
    /// Expected outputs.
    outputs: Vec<Output>,
    /// Expected step, lock and valid after.
    step: Step,
    locked: Option<(u64, Digest)>,
    valid: Option<(u64, Digest)>,
}

/// This node proposes in even rounds only.
fn proposer(round: u64) -> bool {
    round % 2 == 0
}

#[test]
fn every_rule_of_algorithm_1_as_a_step() {
    let p2 = state(2, Step::Propose);
    let cases = vec![
        Case {
            name: "11-19: the proposer of a round with no valid value proposes a fresh one",
            state: state(0, Step::Unstarted),
            input: Input::StartRound(0),
            outputs: vec![Output::Propose { round: 0, valid: None }],
            step: Step::Propose,
            locked: None,
            valid: None,
        },
        Case {
            name: "14-15: the proposer re-proposes validValue with validRound",
            state: locked(state(1, Step::Precommit), 1, v(1)),
            input: Input::SkipRound(4),
            outputs: vec![Output::Propose {
                round: 4,
                valid: Some((1, v(1))),
            }],
            step: Step::Propose,
            locked: Some((1, v(1))),
            valid: Some((1, v(1))),
        },
        Case {
            name: "21: a non-proposer schedules timeoutPropose",
            state: state(0, Step::Unstarted),
            input: Input::StartRound(1),
            outputs: vec![schedule(TimeoutKind::Propose, 1)],
            step: Step::Propose,
            locked: None,
            valid: None,
        },
        Case {
            name: "22-24: an unlocked node prevotes a valid fresh proposal",
            state: p2.clone(),
            input: Input::Proposal { value: v(1), valid: true },
            outputs: vec![prevote(2, Some(v(1)))],
            step: Step::Prevote,
            locked: None,
            valid: None,
        },
        Case {
            name: "22-26: an invalid proposal gets a nil prevote",
            state: p2.clone(),
            input: Input::Proposal { value: v(1), valid: false },
            outputs: vec![prevote(2, None)],
            step: Step::Prevote,
            locked: None,
            valid: None,
        },
        Case {
            name: "23-26: a node locked on v1 prevotes nil for v2 with vr = -1",
            state: locked(p2.clone(), 1, v(1)),
            input: Input::Proposal { value: v(2), valid: true },
            outputs: vec![prevote(2, None)],
            step: Step::Prevote,
            locked: Some((1, v(1))),
            valid: Some((1, v(1))),
        },
        Case {
            name: "23-24: a node locked on v1 prevotes v1 again",
            state: locked(p2.clone(), 1, v(1)),
            input: Input::Proposal { value: v(1), valid: true },
            outputs: vec![prevote(2, Some(v(1)))],
            step: Step::Prevote,
            locked: Some((1, v(1))),
            valid: Some((1, v(1))),
        },
        Case {
            name: "22: a proposal outside step propose does nothing",
            state: state(2, Step::Prevote),
            input: Input::Proposal { value: v(1), valid: true },
            outputs: vec![],
            step: Step::Prevote,
            locked: None,
            valid: None,
        },
        Case {
            name: "28-30: locked at round 0 on v1, a proposal of v2 with a polka in vr = 1 gets the prevote (lockedRound <= vr)",
            state: locked(p2.clone(), 0, v(1)),
            input: Input::ProposalWithPolka { value: v(2), valid_round: 1, valid: true },
            outputs: vec![prevote(2, Some(v(2)))],
            step: Step::Prevote,
            locked: Some((0, v(1))),
            valid: Some((0, v(1))),
        },
        Case {
            name: "28-32: locked at round 1 on v1, a proposal of v2 with a polka in vr = 0 gets nil (lockedRound > vr)",
            state: locked(p2.clone(), 1, v(1)),
            input: Input::ProposalWithPolka { value: v(2), valid_round: 0, valid: true },
            outputs: vec![prevote(2, None)],
            step: Step::Prevote,
            locked: Some((1, v(1))),
            valid: Some((1, v(1))),
        },
        Case {
            name: "28-30: locked at round 1 on v1, a proposal of v1 with vr = 0 gets the prevote (lockedValue = v)",
            state: locked(p2.clone(), 1, v(1)),
            input: Input::ProposalWithPolka { value: v(1), valid_round: 0, valid: true },
            outputs: vec![prevote(2, Some(v(1)))],
            step: Step::Prevote,
            locked: Some((1, v(1))),
            valid: Some((1, v(1))),
        },
        Case {
            name: "28-32: an invalid value with a proof of lock gets nil",
            state: p2.clone(),
            input: Input::ProposalWithPolka { value: v(2), valid_round: 1, valid: false },
            outputs: vec![prevote(2, None)],
            step: Step::Prevote,
            locked: None,
            valid: None,
        },
        Case {
            name: "28: vr must be below the current round",
            state: p2.clone(),
            input: Input::ProposalWithPolka { value: v(2), valid_round: 2, valid: true },
            outputs: vec![],
            step: Step::Propose,
            locked: None,
            valid: None,
        },
        Case {
            name: "34-35: 2f+1 prevotes in step prevote schedule timeoutPrevote",
            state: state(2, Step::Prevote),
            input: Input::PolkaAny,
            outputs: vec![schedule(TimeoutKind::Prevote, 2)],
            step: Step::Prevote,
            locked: None,
            valid: None,
        },
        Case {
            name: "34: not in step propose",
            state: p2.clone(),
            input: Input::PolkaAny,
            outputs: vec![],
            step: Step::Propose,
            locked: None,
            valid: None,
        },
        Case {
            name: "36-41: a polka for the proposal in step prevote locks and precommits it",
            state: state(2, Step::Prevote),
            input: Input::ProposalWithPolkaCurrent { value: v(3), valid: true },
            outputs: vec![precommit(2, Some(v(3)))],
            step: Step::Precommit,
            locked: Some((2, v(3))),
            valid: Some((2, v(3))),
        },
        Case {
            name: "36, 42-43: in step precommit a polka only updates validValue, no second precommit",
            state: locked(state(2, Step::Precommit), 1, v(1)),
            input: Input::ProposalWithPolkaCurrent { value: v(3), valid: true },
            outputs: vec![],
            step: Step::Precommit,
            locked: Some((1, v(1))),
            valid: Some((2, v(3))),
        },
        Case {
            name: "36: needs valid(v)",
            state: state(2, Step::Prevote),
            input: Input::ProposalWithPolkaCurrent { value: v(3), valid: false },
            outputs: vec![],
            step: Step::Prevote,
            locked: None,
            valid: None,
        },
        Case {
            name: "36: not in step propose",
            state: p2.clone(),
            input: Input::ProposalWithPolkaCurrent { value: v(3), valid: true },
            outputs: vec![],
            step: Step::Propose,
            locked: None,
            valid: None,
        },
        Case {
            name: "44-46: 2f+1 nil prevotes in step prevote: precommit nil",
            state: state(2, Step::Prevote),
            input: Input::PolkaNil,
            outputs: vec![precommit(2, None)],
            step: Step::Precommit,
            locked: None,
            valid: None,
        },
        Case {
            name: "44: not in step precommit",
            state: state(2, Step::Precommit),
            input: Input::PolkaNil,
            outputs: vec![],
            step: Step::Precommit,
            locked: None,
            valid: None,
        },
        Case {
            name: "47-48: 2f+1 precommits schedule timeoutPrecommit, in any step",
            state: p2.clone(),
            input: Input::PrecommitAny,
            outputs: vec![schedule(TimeoutKind::Precommit, 2)],
            step: Step::Propose,
            locked: None,
            valid: None,
        },
        Case {
            name: "49-51: a proposal of a past round with 2f+1 precommits in it decides",
            state: locked(state(5, Step::Prevote), 3, v(1)),
            input: Input::ProposalWithCommit { round: 2, value: v(2), valid: true },
            outputs: vec![Output::Decide { round: 2, value: v(2) }],
            step: Step::Decided,
            locked: Some((3, v(1))),
            valid: Some((3, v(1))),
        },
        Case {
            name: "49-50: an invalid value is not decided",
            state: p2.clone(),
            input: Input::ProposalWithCommit { round: 2, value: v(2), valid: false },
            outputs: vec![],
            step: Step::Propose,
            locked: None,
            valid: None,
        },
        Case {
            name: "55-56: f+1 messages of round 7 start round 7, not round 3",
            state: state(2, Step::Prevote),
            input: Input::SkipRound(7),
            outputs: vec![schedule(TimeoutKind::Propose, 7)],
            step: Step::Propose,
            locked: None,
            valid: None,
        },
        Case {
            name: "55: a lower round does nothing",
            state: state(2, Step::Prevote),
            input: Input::SkipRound(1),
            outputs: vec![],
            step: Step::Prevote,
            locked: None,
            valid: None,
        },
        Case {
            name: "57-60: timeoutPropose in step propose: prevote nil (the paper's guard is step = propose)",
            state: p2.clone(),
            input: timeout(TimeoutKind::Propose, 1, 2),
            outputs: vec![prevote(2, None)],
            step: Step::Prevote,
            locked: None,
            valid: None,
        },
        Case {
            name: "58: timeoutPropose in step prevote does nothing",
            state: state(2, Step::Prevote),
            input: timeout(TimeoutKind::Propose, 1, 2),
            outputs: vec![],
            step: Step::Prevote,
            locked: None,
            valid: None,
        },
        Case {
            name: "58: a stale timeoutPropose (older round) does nothing",
            state: p2.clone(),
            input: timeout(TimeoutKind::Propose, 1, 1),
            outputs: vec![],
            step: Step::Propose,
            locked: None,
            valid: None,
        },
        Case {
            name: "58: a stale timeoutPropose (older height) does nothing",
            state: p2.clone(),
            input: timeout(TimeoutKind::Propose, 0, 2),
            outputs: vec![],
            step: Step::Propose,
            locked: None,
            valid: None,
        },
        Case {
            name: "61-64: timeoutPrevote in step prevote: precommit nil",
            state: state(2, Step::Prevote),
            input: timeout(TimeoutKind::Prevote, 1, 2),
            outputs: vec![precommit(2, None)],
            step: Step::Precommit,
            locked: None,
            valid: None,
        },
        Case {
            name: "62: a stale timeoutPrevote does nothing",
            state: state(3, Step::Prevote),
            input: timeout(TimeoutKind::Prevote, 1, 2),
            outputs: vec![],
            step: Step::Prevote,
            locked: None,
            valid: None,
        },
        Case {
            name: "65-67: timeoutPrecommit starts the next round (this node proposes round 4)",
            state: state(3, Step::Precommit),
            input: timeout(TimeoutKind::Precommit, 1, 3),
            outputs: vec![Output::Propose { round: 4, valid: None }],
            step: Step::Propose,
            locked: None,
            valid: None,
        },
        Case {
            name: "66: a stale timeoutPrecommit does nothing",
            state: state(3, Step::Precommit),
            input: timeout(TimeoutKind::Precommit, 1, 2),
            outputs: vec![],
            step: Step::Precommit,
            locked: None,
            valid: None,
        },
    ];
    for case in cases {
        let (after, outputs) = apply(&case.state, case.input, proposer);
        assert_eq!(outputs, case.outputs, "{}", case.name);
        assert_eq!(after.step, case.step, "{}", case.name);
        assert_eq!(after.locked, case.locked, "{}", case.name);
        assert_eq!(after.valid, case.valid, "{}", case.name);
        assert_eq!(after.height, case.state.height, "{}", case.name);
    }
}

#[test]
fn the_rules_of_lines_34_36_and_47_fire_once_per_round() {
    let mut s = state(2, Step::Prevote);
    let once = |s: &mut RoundState, input: Input| {
        let (a, first) = apply(s, input, proposer);
        let (b, second) = apply(&a, input, proposer);
        assert!(!first.is_empty(), "{input:?} did not fire");
        assert!(second.is_empty(), "{input:?} fired twice");
        assert_eq!(a, b);
        *s = b;
    };
    once(&mut s, Input::PolkaAny);
    once(&mut s, Input::PrecommitAny);
    // Line 36 in step precommit has no output of its own: check it through the state.
    let mut p = locked(state(2, Step::Precommit), 0, v(1));
    let (a, _) = apply(
        &p,
        Input::ProposalWithPolkaCurrent {
            value: v(2),
            valid: true,
        },
        proposer,
    );
    assert_eq!(a.valid, Some((2, v(2))));
    assert!(a.fired.polka_current);
    p = a;
    let (b, out) = apply(
        &p,
        Input::ProposalWithPolkaCurrent {
            value: v(3),
            valid: true,
        },
        proposer,
    );
    assert!(out.is_empty());
    assert_eq!(b.valid, Some((2, v(2))), "line 36 fired twice in a round");
    // A new round re-arms them.
    let (c, _) = apply(&s, Input::SkipRound(5), proposer);
    assert_eq!(c.fired, Fired::default());
    let mut c = c;
    c.step = Step::Prevote;
    once(&mut c, Input::PolkaAny);
}

#[test]
fn lock_and_valid_reset_at_a_new_height() {
    // Line 53: the driver starts each height from RoundState::new.
    let fresh = RoundState::new(8);
    assert_eq!(fresh.height, 8);
    assert_eq!((fresh.round, fresh.step), (0, Step::Unstarted));
    assert_eq!(
        (fresh.locked, fresh.valid, fresh.decision),
        (None, None, None)
    );
    // Nothing decides twice in a height.
    let (d, _) = apply(
        &state(0, Step::Prevote),
        Input::ProposalWithCommit {
            round: 0,
            value: v(1),
            valid: true,
        },
        proposer,
    );
    let (e, out) = apply(
        &d,
        Input::ProposalWithCommit {
            round: 1,
            value: v(2),
            valid: true,
        },
        proposer,
    );
    assert!(out.is_empty());
    assert_eq!(e.decision, Some((0, v(1))));
    // A decided height starts no round.
    let (f, out) = apply(&d, Input::SkipRound(3), proposer);
    assert!(out.is_empty() && f.step == Step::Decided);
}

#[test]
fn the_keeper_counts_each_vote_once_by_weight_and_fires_each_threshold_once() {
    let f = fixture();
    let mut k = VoteKeeper::new(f.committee.clone());
    let pv = |i, value| f.vote(i, VoteKind::Prevote, 1, 0, value);
    assert_eq!(k.add(&pv(0, Some(v(1)))), AddOutcome::Counted(vec![]));
    // A duplicate is not counted twice.
    assert_eq!(k.add(&pv(0, Some(v(1)))), AddOutcome::Duplicate);
    // f+1 = 2 senders in round 0: the skip threshold (reported once).
    assert_eq!(
        k.add(&pv(1, None)),
        AddOutcome::Counted(vec![Threshold::Skip])
    );
    assert!(!k.any(0, VoteKind::Prevote));
    // An equivocating vote is evidence and not counted.
    assert_eq!(
        k.add(&pv(1, Some(v(1)))),
        AddOutcome::Equivocation { earlier: None }
    );
    assert_eq!(k.evidence().len(), 1);
    assert!(!k.any(0, VoteKind::Prevote));
    // The third voter makes 2f+1 for anything, and 2f+1 for v1 needs a fourth.
    assert_eq!(
        k.add(&pv(2, Some(v(1)))),
        AddOutcome::Counted(vec![Threshold::Any(VoteKind::Prevote)])
    );
    assert!(!k.has(0, VoteKind::Prevote, Some(&v(1))));
    assert_eq!(
        k.add(&pv(3, Some(v(1)))),
        AddOutcome::Counted(vec![Threshold::Value(VoteKind::Prevote, v(1))])
    );
    assert!(k.has(0, VoteKind::Prevote, Some(&v(1))));
    // Precommits are counted apart from prevotes.
    assert!(!k.any(0, VoteKind::Precommit));
    for i in 0..3 {
        k.add(&f.vote(i, VoteKind::Precommit, 1, 0, Some(v(1))));
    }
    assert_eq!(k.decisive().collect::<Vec<_>>(), vec![(0, v(1))]);
    assert_eq!(k.precommit_shares(0, &v(1)).len(), 3);
}

#[test]
fn f_messages_of_a_higher_round_cause_no_skip_and_f_plus_1_skip_to_that_round() {
    let f = fixture();
    let mut k = VoteKeeper::new(f.committee.clone());
    // f = 1: one sender in round 5 is not enough.
    k.add(&f.vote(0, VoteKind::Prevote, 1, 5, None));
    assert_eq!(k.skip_to(0), None);
    // The same sender again (another kind) still counts once.
    k.add(&f.vote(0, VoteKind::Precommit, 1, 5, None));
    assert_eq!(k.skip_to(0), None);
    // A second sender: f+1, and the jump is to round 5, not 1.
    k.heard(5, NodeId(1));
    assert_eq!(k.skip_to(0), Some(5));
    assert_eq!(k.skip_to(5), None);
}
