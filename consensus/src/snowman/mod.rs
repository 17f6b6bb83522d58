//! Snowman (Team Rocket, Yin, Sekniqi, van Renesse, Sirer, "Scalable and Probabilistic
//! Leaderless BFT Consensus through Metastability", arXiv:1906.08936; the linear-chain
//! engine of avalanchego, `snow/consensus/snowman`) ordering DAG certificates.
//!
//! **Blocks.** A block names its parent and height and carries DAG certificate digests
//! with their rounds (the certificates this node holds that no block of its chain
//! carries yet). A block joins a node's tree ("is issued") once its parent is there and
//! every certificate it names is held with the round named (the node fetches missing
//! ones, and missing blocks with `GetAncestors`). Accepting a block commits its
//! certificates as anchors; the linearizer delivers their causal histories.
//!
//! **Who proposes.** Height `h` has an order of proposers, weighted round robin
//! (`crate::leaders`; window `w` is round `w` of that schedule). The member of window
//! `w` may build on a tip `w x proposer_window_ms` after the tip became its preferred
//! one (window 0 at once), and only when a certificate waits to be ordered: honest runs
//! conflict only when a window opens before the earlier proposer's block arrived. This
//! follows avalanchego's proposervm (windows of `WindowDuration` = 5 s); our schedule is
//! weighted round robin rather than proposervm's stake-weighted sampling per height.
//! A proposer builds at most `max_processing` undecided blocks above the last accepted.
//!
//! **Polls** (paper, Figures 1-4; avalanchego's engine). While any block is processing,
//! a node keeps `concurrent_repolls` polls in flight. A poll samples K units of weight
//! without replacement with the node's seeded RNG (a member may fill several units) and
//! asks each sampled member for its preferred block at the height of the asker's
//! preferred tip (`Query`); the answer (`Chits`) names the voter's preference at that
//! height, its preferred tip and its last accepted block. A vote counts with the number
//! of units its voter filled, for the block named and every processing ancestor. A
//! poll ends when every sampled member answered, when one block has
//! `alpha_confidence` votes, when the votes can no longer reach `alpha_preference`, or
//! at `poll_timeout_ms` (a silent member is no vote). Finished polls are applied in
//! the order they were made (`tree.rs`): Snowball counters per block over its children
//! (`snowball.rs`): a poll with `alpha_preference` votes for a child strengthens it and
//! the strongest child is preferred; `alpha_confidence` votes count towards confidence,
//! fewer reset it, and so does any poll that did not reach a block's subtree with
//! `alpha_preference` votes. A block is accepted when its parent is accepted and the
//! parent's instance reached `beta` consecutive successful polls for it; its siblings
//! and all their descendants are rejected.
//!
//! **Parameters** ([`Config`]) are avalanchego's (K 20, alphas 15, beta 20, 4 repolls)
//! and validated by its rules. A committee of total weight below K polls everyone, with
//! the alphas scaled and capped at the quorum ([`Config::effective`]: 4 members poll
//! all 4 with alpha 3, 10 members all 10 with alpha 7).
//!
//! **Fault bound and finality.** Snowman's agreement is probabilistic. Its consistency
//! is proven for Byzantine weight below n/5 (Buchwald, Tennakoon et al., "Frosty",
//! arXiv:2404.14250); below that the committee converges and a conflicting decision has
//! a tiny probability per decision, above it (a 3f+1 committee with f Byzantine members,
//! n = 4 and f = 1 is 25 %) the guarantee does not hold. A rough per-decision figure for
//! the defaults: for a node to accept a block that only a fraction q of the sampled
//! weight supports, beta = 20 consecutive polls of K = 20 must each give it 15 votes;
//! with the binomial approximation of the sample (a committee much larger than K),
//! `P = P[Bin(20, q) >= 15]^20`: q = 0.2 (all Byzantine weight, at the bound):
//! 1.3e-135; q = 0.5 (the honest weight split in half, adversary silent): 2.1e-34;
//! q = 0.6: 9.5e-19; q = 0.7: 2.5e-8. (Computed with `python3 -c "from math import comb;
//! t=lambda q: sum(comb(20,i)*q**i*(1-q)**(20-i) for i in range(15,21)); print(t(0.6)**20)"`.)
//! It ignores that an adversary adapts its votes to what it sees, which is what the
//! paper's and Frosty's analyses handle; read it as the order of magnitude the
//! parameters buy, not a bound. With K at the committee's size the sample is everyone
//! and nothing is random: a successful poll is 2f+1 of the weight (n = 4), like a
//! quorum, though not a certificate (a poll is not signed and preferences can move).
//!
//! **Catch-up.** Queries and chits carry the sender's accepted height. When f+1 weight
//! of peers report heights above ours, a node asks some of them (f+1 weight, at random)
//! for their accepted blocks above its own (`GetAccepted`), and accepts the next
//! height's block once f+1 weight of peers sent the same one (one of them is honest,
//! and honest members accept the same blocks); avalanchego's bootstrapping does the
//! same with a weighted vote on accepted containers.
//!
//! **Persistence.** The last accepted block is persisted before anything sent after
//! accepting it; chits report accepted blocks only after that, so a restarted node
//! never reports an accepted block that contradicts one it reported before.
//!
//! Layers: `snowball` (counters, pure), `tree` (the block tree and how a poll applies,
//! pure), `polls` (sampling, chits, early termination), `core` (the replica); `config`,
//! `messages`, `adversarial`, `metrics`.

mod adversarial;
mod config;
mod core;
mod messages;
mod metrics;
mod polls;
mod snowball;
#[cfg(test)]
mod tests;
mod tree;

pub use self::config::{Config, Effective};
pub use self::core::{Persisted, Snowman, ACCEPTED_KEPT, MAX_PENDING};
pub use self::messages::{Block, Chit, Message, MAX_ANCESTORS};
pub use self::polls::{sample, Polls};
pub use self::snowball::Snowball;
pub use self::tree::{AddError, Decided, Tree};
