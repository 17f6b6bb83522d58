//! Chained HotStuff (Yin, Malkhi, Reiter, Gueta, Abraham, PODC 2019) ordering DAG
//! certificates, as HotStuff runs over Narwhal in the Narwhal paper.
//!
//! Rules, by view `v` (the paper's rule names in brackets):
//! - **Leaders** rotate round-robin over the committee in id order.
//! - **Proposal**: the leader of `v` proposes a block whose QC is the highest it knows;
//!   if that QC is not for `v - 1`, the block carries the timeout certificate of `v - 1`.
//!   The payload is the digests of DAG certificates the leader has seen that no block
//!   has carried yet; committing a block delivers those certificates' causal histories.
//! - **Voting** [safeNode]: a replica votes at most once per view, only in its current
//!   view, only for a block whose parent and payload certificates it holds (it fetches
//!   them first), and only if the block is safe: with the three-chain rule, the block's
//!   QC is newer than the lock or the block extends the locked block (the paper's
//!   safety and liveness rules); with the two-chain rule (Jolteon), the block's QC is
//!   for the previous view. In both, a block justified by a timeout certificate must
//!   extend a QC at least as high as every QC reported in that certificate. Votes go to
//!   the next view's leader.
//! - **Locking**: three-chain locks on the QC two links below a new QC (the 2-chain
//!   head); two-chain needs no separate lock beyond the voting rule above.
//! - **Commit**: three-chain commits `b0` when `b0 <- b1 <- b2` have consecutive views
//!   and `b2` is certified; two-chain commits `b0` when `b0 <- b1` have consecutive views
//!   and `b1` is certified. Committing a block commits its uncommitted ancestors first.
//! - **Pacemaker**: a view ends with a QC for it or with a timeout certificate (a quorum
//!   of signed timeouts, each carrying the sender's highest QC). A replica that times
//!   out stops voting in that view, broadcasts its timeout, and re-broadcasts it if the
//!   view does not end; f+1 timeouts for its view make it time out too. The timeout
//!   doubles (by `timeout_backoff`) per consecutive timed-out view, up to a cap, and
//!   resets after a view ends with a QC. Timeouts are local choices: the base and the
//!   short timeout of a suspected leader's views follow the measured round trip (the
//!   median recent view), never the safety rules.
//!
//! Safety state (last voted view, lock, highest QC) is emitted as [`crate::Action::Persist`]
//! before any vote or timeout that depends on it; a replica whose persisted state cannot
//! be decoded refuses to start.
//!
//! Evidence: a second, different proposal of a leader in one view and a voter's votes
//! for two blocks of one view are reported as [`crate::Action::Evidence`].
//!
//! Parameters: `[consensus.hotstuff]` (see [`Config`]).
//!
//! Layers (each rule lives in one file): `safety` (the pure voting, locking and commit
//! rules), `pacemaker` (views, timeouts, TCs, backoff, suspicion), `block_tree` (blocks,
//! committed history, sync), and the replica itself: `core` (its state and the
//! [`crate::Protocol`] implementation), `views` (entering views, timeouts, TCs),
//! `voting` (proposals, votes, QCs formed), `commits` (QCs applied, commits, fetching
//! ancestors), over the shared [`crate::votes`] aggregator and [`crate::payload`] availability
//! tracker), `adversarial` (how a Byzantine replica lies), `metrics`.

mod adversarial;
mod block_tree;
mod commits;
mod config;
mod core;
mod messages;
mod metrics;
mod pacemaker;
mod round_trip;
mod safety;
#[cfg(test)]
mod tests;
mod views;
mod voting;
mod window;

pub use self::block_tree::COMMITTED_BLOCKS_KEPT;
pub use self::config::{CommitRule, Config};
pub use self::core::{HotStuff, SYNC_TIMER};
pub use self::messages::{
    genesis_digest, leader, Block, InvalidMessage, Message, Qc, Tc, Timeout, Vote, MAX_SYNC_CHAIN,
};
pub use self::metrics::StateSizes;
#[cfg(test)]
pub(crate) use self::safety::tests_only;
pub use self::safety::SafetyState;
