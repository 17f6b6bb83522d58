//! Tendermint (Buchman, Kwon, Milosevic, "The latest gossip on BFT consensus",
//! arXiv:1807.04938, Algorithm 1) ordering DAG certificates.
//!
//! Per height `h_p` a replica runs rounds of three steps, propose, prevote and
//! precommit, keeping `lockedValue`/`lockedRound` and `validValue`/`validRound` (nil and
//! -1 at a new height). The rules, by the paper's line numbers (each is cited again in
//! `round_machine.rs` where it is implemented):
//! - **StartRound** (11-21): the proposer of `(h, r)` proposes `validValue` with
//!   `validRound` if it has one, else a fresh value with -1; the others schedule
//!   `timeoutPropose(r)`.
//! - **Prevote** on a fresh proposal (22-27): for `id(v)` if `v` is valid and the node is
//!   not locked or locked on `v`, else nil. On a proposal with a proof-of-lock round
//!   `vr < r` backed by 2f+1 prevotes of `vr` (28-33): for `id(v)` if valid and
//!   `lockedRound <= vr` or locked on `v`, else nil.
//! - 2f+1 prevotes of any kind in the round schedule `timeoutPrevote` (34-35), once.
//! - **Lock** on the proposal with 2f+1 prevotes for it (36-43): in step prevote, lock
//!   and precommit it; in step prevote or precommit, set `validValue`; once per round.
//! - 2f+1 nil prevotes: precommit nil (44-46).
//! - 2f+1 precommits of any kind schedule `timeoutPrecommit` (47-48), once.
//! - **Decide** on a proposal of any round `r` with 2f+1 precommits for it in `r`
//!   (49-54); the next height starts at once, locks and valid values reset.
//! - **Round skip** (55-56): f+1 messages (by weight) of a round above the current one
//!   start that round (the highest such round, not the next).
//! - **Timeouts** (57-67): propose → prevote nil in step propose; prevote → precommit
//!   nil in step prevote; precommit → `StartRound(r + 1)`. Stale ones are ignored. They
//!   grow with the round: `base + delta x r` ([`Config`]; CometBFT's defaults).
//!
//! Thresholds are by weight (2f+1 = `quorum_threshold`, f+1 = `validity_threshold`).
//! `proposer(h, r)` is weighted round robin (CometBFT's priority rule,
//! `crate::leaders`). The value is a [`Block`] of DAG certificate digests with their
//! rounds: the certificates this node holds that no decided value carried yet.
//! `valid(v)` is that every certificate named is held with the round named (the node
//! fetches missing ones, and waits for them while `timeoutPropose` runs); deciding
//! commits the certificates as anchors and the linearizer delivers their histories.
//!
//! Deviations and additions, none of which touches safety:
//! - With `wait_for_certificates` (default, CometBFT's `create_empty_blocks = false`)
//!   round 0 of a height starts when the node holds a certificate to order or hears a
//!   peer at that height, instead of deciding empty values while the DAG is idle.
//! - Messages of the next [`FUTURE_HEIGHTS`] heights are buffered and messages of
//!   rounds more than [`ROUND_WINDOW`] ahead dropped (bounded state under Byzantine
//!   input).
//! - Catch-up: a decision carries its commit certificate (2f+1 precommits, ed25519 or
//!   BLS aggregated). Decided heights are kept ([`DECISIONS_KEPT`]) and served: a node
//!   that hears f+1 peers at higher heights (or sees a commit for a value it never got)
//!   asks for them after a short grace, and a node that hears a peer at a lower height
//!   sends it what it missed. Each decision is checked and installed in order.
//! - Proposals and votes are sent reliably (resent until acknowledged, superseded by the
//!   sender's next message of the same kind), standing in for the paper's gossip. The
//!   paper's liveness argument needs every honest message to reach every honest node
//!   eventually, also one the receiver dropped (outside its round window, its
//!   future-height buffer full, lost in a restart): a node whose height and round have
//!   not moved for `regossip_ms` broadcasts what it signed in the round again, and a
//!   node that hears it from a lower height sends it the decisions it missed
//!   ([`SERVES_PER_TICK`] replies per peer per tick at most).
//!
//! Safety state is persisted before anything signed is sent: the round state (height,
//! round, step, lock, valid value) and the messages signed in the current round, which a
//! restarted node sends again unchanged; it never signs a second, different proposal,
//! prevote or precommit in a round. Undecodable persisted state refuses to start.
//!
//! Evidence: a second, different proposal of a round's proposer, and a second,
//! different vote of one kind in one round (kept by the vote keeper, not counted).
//!
//! Layers, bottom-up: `vote_keeper` (weighted votes per round, kind and value;
//! thresholds once per round; equivocations as evidence), `round_machine` (the pure
//! state machine: `(state, input) -> (state, outputs)`), `height` (the message log of a
//! height multiplexed into inputs), and the replica: `core` (state, routing,
//! persistence, the [`crate::Protocol`] impl), `replica` (outputs as actions: propose,
//! vote, schedule, decide), `sync` (decided heights, buffers, catch-up);
//! `messages`, `config`, `adversarial`, `metrics`.

mod adversarial;
mod config;
mod core;
mod height;
mod messages;
mod metrics;
mod replica;
mod round_machine;
mod sync;
#[cfg(test)]
mod tests;
mod vote_keeper;

pub use self::config::{Config, TimeoutKind};
pub use self::core::{
    Persisted, Tendermint, GOSSIP_TIMER, PRECOMMIT_TIMER, PREVOTE_TIMER, PROPOSE_TIMER, SYNC_TIMER,
};
pub use self::height::ROUND_WINDOW;
pub use self::messages::{
    Block, Decision, InvalidMessage, Message, Proposal, Vote, VoteKind, MAX_SYNC_DECISIONS,
};
pub use self::round_machine::{apply, Fired, Input, Output, RoundState, Step};
pub use self::sync::{DECISIONS_KEPT, FUTURE_HEIGHTS, SERVES_PER_TICK};
pub use self::vote_keeper::{AddOutcome, Threshold, VoteKeeper};
pub use crate::leaders::ProposerSchedule;
