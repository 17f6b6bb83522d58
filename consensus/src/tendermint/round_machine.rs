//! The round state machine of Algorithm 1 (Buchman, Kwon, Milosevic, "The latest gossip
//! on BFT consensus", arXiv:1807.04938), as a pure function `(state, input) -> (state,
//! outputs)`.
//!
//! The machine knows nothing of messages, signatures or time: the height driver
//! (`height.rs`) turns the message log and the vote keeper's thresholds into [`Input`]s
//! ("upon" conditions that hold), and performs the [`Output`]s (sign and broadcast,
//! schedule a timeout, decide). Every guard of the paper ("while step = ...", "for the
//! first time", "height = h_p and round = round_p") is checked here, so the driver may
//! feed an input whenever its condition holds, as often as it likes: a rule fires only
//! when the paper says it does. Line numbers are the paper's.

use super::config::TimeoutKind;
use super::messages::VoteKind;
use primitives::Digest;
use serde::{Deserialize, Serialize};

/// `step_p`, plus the two states around a round: not started yet, decided.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Step {
    /// The height's first round has not started (`wait_for_certificates`).
    #[default]
    Unstarted,
    /// `propose`.
    Propose,
    /// `prevote`.
    Prevote,
    /// `precommit`.
    Precommit,
    /// Decided (`decision_p[h_p] != nil`); the driver moves to the next height.
    Decided,
}

/// The rules that fire only "for the first time" in a round.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fired {
    /// Line 34 (prevote timeout scheduled).
    pub prevote_timeout: bool,
    /// Line 36 (lock / validValue on a polka for the proposal).
    pub polka_current: bool,
    /// Line 47 (precommit timeout scheduled).
    pub precommit_timeout: bool,
}

/// One height's state: `h_p`, `round_p`, `step_p`, `lockedValue_p` / `lockedRound_p`,
/// `validValue_p` / `validRound_p`, `decision_p[h_p]`. Values are named by `id(v)`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundState {
    /// `h_p`.
    pub height: u64,
    /// `round_p`.
    pub round: u64,
    /// `step_p`.
    pub step: Step,
    /// (`lockedRound_p`, `lockedValue_p`); `None` is (-1, nil).
    pub locked: Option<(u64, Digest)>,
    /// (`validRound_p`, `validValue_p`); `None` is (-1, nil).
    pub valid: Option<(u64, Digest)>,
    /// Once-per-round rules of `round`.
    pub fired: Fired,
    /// `decision_p[h_p]`: the round and value decided.
    pub decision: Option<(u64, Digest)>,
}

impl RoundState {
    /// Line 53 (and initialisation): a new height, nothing locked, nothing valid.
    pub fn new(height: u64) -> Self {
        RoundState {
            height,
            ..RoundState::default()
        }
    }
}

/// An "upon" condition that holds (for the current height).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// `StartRound(round)` (line 10; the driver starts round 0 of a height).
    StartRound(u64),
    /// Line 22: `<PROPOSAL, h_p, round_p, v, -1>` from the proposer; `valid` is
    /// `valid(v)`.
    Proposal {
        /// `id(v)`.
        value: Digest,
        /// `valid(v)`.
        valid: bool,
    },
    /// Line 28: `<PROPOSAL, h_p, round_p, v, vr>` and 2f+1 `<PREVOTE, h_p, vr, id(v)>`.
    ProposalWithPolka {
        /// `id(v)`.
        value: Digest,
        /// `vr`.
        valid_round: u64,
        /// `valid(v)`.
        valid: bool,
    },
    /// Line 34: 2f+1 `<PREVOTE, h_p, round_p, *>`.
    PolkaAny,
    /// Line 36: `<PROPOSAL, h_p, round_p, v, *>` and 2f+1 `<PREVOTE, h_p, round_p, id(v)>`.
    ProposalWithPolkaCurrent {
        /// `id(v)`.
        value: Digest,
        /// `valid(v)`.
        valid: bool,
    },
    /// Line 44: 2f+1 `<PREVOTE, h_p, round_p, nil>`.
    PolkaNil,
    /// Line 47: 2f+1 `<PRECOMMIT, h_p, round_p, *>`.
    PrecommitAny,
    /// Line 49: `<PROPOSAL, h_p, r, v, *>` and 2f+1 `<PRECOMMIT, h_p, r, id(v)>`.
    ProposalWithCommit {
        /// `r` (any round).
        round: u64,
        /// `id(v)`.
        value: Digest,
        /// `valid(v)`.
        valid: bool,
    },
    /// Line 55: f+1 messages of `round > round_p`.
    SkipRound(u64),
    /// Lines 57-67: a timeout scheduled for (`height`, `round`) expired.
    Timeout {
        /// Which.
        kind: TimeoutKind,
        /// The height it was scheduled in.
        height: u64,
        /// The round it was scheduled in.
        round: u64,
    },
}

/// What the driver must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// Lines 14-19: this node proposes in `round`: `validValue_p` with `validRound_p`
    /// when `valid` is set, else a fresh value (`getValue()`) with -1.
    Propose {
        /// The round.
        round: u64,
        /// (`validRound_p`, `validValue_p`), if not nil.
        valid: Option<(u64, Digest)>,
    },
    /// Sign and broadcast a vote of the current height.
    Vote {
        /// Prevote or precommit.
        kind: VoteKind,
        /// Its round.
        round: u64,
        /// `id(v)` or nil.
        value: Option<Digest>,
    },
    /// Schedule `OnTimeout<kind>(h_p, round)` after `timeout<kind>(round)` (lines 21,
    /// 35, 48).
    Schedule {
        /// Which.
        kind: TimeoutKind,
        /// For which round.
        round: u64,
    },
    /// Lines 49-51: `decision_p[h_p] = v`.
    Decide {
        /// The round of the commit.
        round: u64,
        /// `id(v)`.
        value: Digest,
    },
}

/// Lines 11-21, `StartRound(round)`.
fn start_round(s: &mut RoundState, round: u64, is_proposer: bool, out: &mut Vec<Output>) {
    s.round = round; // 12
    s.step = Step::Propose; // 13
    s.fired = Fired::default();
    if is_proposer {
        // 14-19: validValue with validRound if not nil, else getValue() with -1.
        out.push(Output::Propose {
            round,
            valid: s.valid,
        });
    } else {
        // 21
        out.push(Output::Schedule {
            kind: TimeoutKind::Propose,
            round,
        });
    }
}

/// Apply one input. `is_proposer(r)` answers `proposer(h_p, r) = p`.
pub fn apply(
    state: &RoundState,
    input: Input,
    is_proposer: impl Fn(u64) -> bool,
) -> (RoundState, Vec<Output>) {
    let mut s = state.clone();
    let mut out = Vec::new();
    let started = matches!(s.step, Step::Propose | Step::Prevote | Step::Precommit);
    let round = s.round;
    match input {
        // The driver's start of a height; never backwards.
        Input::StartRound(r)
            if s.step == Step::Unstarted || (r > s.round && s.step != Step::Decided) =>
        {
            start_round(&mut s, r, is_proposer(r), &mut out);
        }
        // 22-27.
        Input::Proposal { value, valid } if s.step == Step::Propose => {
            let free = s.locked.is_none_or(|(_, lv)| lv == value); // 23
            let vote = (valid && free).then_some(value);
            out.push(Output::Vote {
                kind: VoteKind::Prevote,
                round,
                value: vote,
            }); // 24 / 26
            s.step = Step::Prevote; // 27
        }
        // 28-33 (vr >= 0 and vr < round_p).
        Input::ProposalWithPolka {
            value,
            valid_round,
            valid,
        } if s.step == Step::Propose && valid_round < round => {
            let free = s
                .locked
                .is_none_or(|(lr, lv)| lr <= valid_round || lv == value); // 29
            let vote = (valid && free).then_some(value);
            out.push(Output::Vote {
                kind: VoteKind::Prevote,
                round,
                value: vote,
            }); // 30 / 32
            s.step = Step::Prevote; // 33
        }
        // 34-35.
        Input::PolkaAny if s.step == Step::Prevote && !s.fired.prevote_timeout => {
            s.fired.prevote_timeout = true;
            out.push(Output::Schedule {
                kind: TimeoutKind::Prevote,
                round,
            });
        }
        // 36-43: valid(v) and step >= prevote, for the first time.
        Input::ProposalWithPolkaCurrent { value, valid }
            if valid
                && matches!(s.step, Step::Prevote | Step::Precommit)
                && !s.fired.polka_current =>
        {
            s.fired.polka_current = true;
            if s.step == Step::Prevote {
                s.locked = Some((round, value)); // 38-39
                out.push(Output::Vote {
                    kind: VoteKind::Precommit,
                    round,
                    value: Some(value),
                }); // 40
                s.step = Step::Precommit; // 41
            }
            s.valid = Some((round, value)); // 42-43
        }
        // 44-46.
        Input::PolkaNil if s.step == Step::Prevote => {
            out.push(Output::Vote {
                kind: VoteKind::Precommit,
                round,
                value: None,
            }); // 45
            s.step = Step::Precommit; // 46
        }
        // 47-48: in any step of a started round, for the first time.
        Input::PrecommitAny if started && !s.fired.precommit_timeout => {
            s.fired.precommit_timeout = true;
            out.push(Output::Schedule {
                kind: TimeoutKind::Precommit,
                round,
            });
        }
        // 49-54 (the driver starts the next height: lines 52-54).
        Input::ProposalWithCommit {
            round: r,
            value,
            valid,
        } if s.decision.is_none() && valid => {
            s.decision = Some((r, value)); // 51
            s.step = Step::Decided;
            out.push(Output::Decide { round: r, value });
        }
        // 55-56.
        Input::SkipRound(r) if r > round && s.step != Step::Decided => {
            start_round(&mut s, r, is_proposer(r), &mut out);
        }
        // 57-60: the paper's guard is step = propose.
        Input::Timeout {
            kind: TimeoutKind::Propose,
            height,
            round: r,
        } if height == s.height && r == round && s.step == Step::Propose => {
            out.push(Output::Vote {
                kind: VoteKind::Prevote,
                round,
                value: None,
            }); // 59
            s.step = Step::Prevote; // 60
        }
        // 61-64.
        Input::Timeout {
            kind: TimeoutKind::Prevote,
            height,
            round: r,
        } if height == s.height && r == round && s.step == Step::Prevote => {
            out.push(Output::Vote {
                kind: VoteKind::Precommit,
                round,
                value: None,
            }); // 63
            s.step = Step::Precommit; // 64
        }
        // 65-67.
        Input::Timeout {
            kind: TimeoutKind::Precommit,
            height,
            round: r,
        } if height == s.height && r == round && started => {
            let next = round.saturating_add(1);
            start_round(&mut s, next, is_proposer(next), &mut out);
        }
        // Any other input: its rule's guard does not hold.
        _ => {}
    }
    (s, out)
}
