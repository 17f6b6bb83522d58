//! The protocol-neutral interface every consensus core implements.
//!
//! A core is a deterministic state machine ([`Protocol`]). The driver
//! ([`crate::driver`]) owns the clock, the sockets and the store; it builds the core from
//! a [`Context`], calls [`Protocol::verify`] on every decoded peer message before
//! [`Protocol::handle`] sees it, and performs the returned [`Action`]s in order. What the
//! driver guarantees a core, and what a core must guarantee in return, is written in
//! `docs/adding-a-protocol.md`.

use primitives::crypto::{KeyPair, SignatureScheme};
use primitives::{Committee, Digest, NodeId, Round, Weight};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

/// Simulated or real time as a core sees it: the time since its driver started.
/// (Only differences matter; a restarted node starts again from zero.)
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(pub Duration);

impl Time {
    /// `self + d`.
    pub fn after(self, d: Duration) -> Time {
        Time(self.0.saturating_add(d))
    }

    /// Time elapsed from `earlier` to `self` (zero if `earlier` is later).
    pub fn since(self, earlier: Time) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

/// Whose timer it is: the core's own, or the Byzantine wrapper's (which a core can
/// neither set nor receive).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum TimerSpace {
    Core,
    Adversary,
}

/// A timer a core asked for; the core chooses the ids. Setting a timer whose id is
/// pending replaces it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId {
    space: TimerSpace,
    id: u64,
}

impl TimerId {
    /// A core's timer `id`.
    pub const fn new(id: u64) -> Self {
        TimerId {
            space: TimerSpace::Core,
            id,
        }
    }

    /// A timer of the Byzantine wrapper (its own id space).
    pub(crate) const fn adversary(id: u64) -> Self {
        TimerId {
            space: TimerSpace::Adversary,
            id,
        }
    }

    /// The id the core chose.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Whether this is the Byzantine wrapper's timer.
    pub(crate) fn is_adversary(&self) -> bool {
        self.space == TimerSpace::Adversary
    }
}

/// A DAG certificate that became available locally (delivered in causal order: its
/// parents were delivered before it, unless they are below the GC horizon).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateInfo {
    /// The certificate's digest.
    pub digest: Digest,
    /// Its round.
    pub round: Round,
    /// Its author.
    pub author: NodeId,
    /// The author's voting weight (DAG-native cores count support through edges).
    pub weight: Weight,
    /// Its parents: digests of certificates of round `round - 1`.
    pub parents: Vec<Digest>,
}

/// An input to a core.
#[derive(Clone, Debug, PartialEq)]
pub enum Event<M> {
    /// The node starts (or restarts from persisted state). Always the first event.
    Start,
    /// A message from a peer, decoded and accepted by [`Protocol::verify`]. `from` is
    /// the sender as authenticated by the transport (the node itself for messages it
    /// sent itself with [`Action::Send`]).
    Message {
        /// The sender.
        from: NodeId,
        /// The message.
        message: M,
    },
    /// A timer set with [`Action::SetTimer`] fired (and was neither cancelled nor
    /// replaced).
    Timer(TimerId),
    /// A DAG certificate is now available locally.
    Certificate(CertificateInfo),
    /// The mempool garbage-collected every round at or below `gc_round` (or jumped its
    /// horizon there to catch up): certificates of those rounds are gone and will not
    /// be delivered; cores prune what they keep about them.
    Horizon {
        /// The highest collected round.
        gc_round: Round,
    },
    /// The driver installed committed history it did not order itself: fetched from
    /// peers that were ahead (state transfer) or replayed from the node's own history
    /// after a restart. The linearizer's committed round is now `committed_round`:
    /// anchors at or below it are delivered or skipped, and committing them again does
    /// nothing. A core that orders from the DAG resumes after it; a core with its own
    /// catch-up (blocks, decisions) may ignore it.
    Installed {
        /// The highest anchor round of the committed sequence now.
        committed_round: Round,
    },
}

/// How hard the driver tries to deliver a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Delivery {
    /// Sent once, on the urgent lane (ahead of the mempool's bulk traffic); lost if the
    /// link drops it or the peer's queue is full.
    BestEffort,
    /// Sent once, on the normal lane behind time-critical messages: for large answers
    /// to a lagging peer (chains of blocks, decisions) that would otherwise hold up the
    /// urgent lane to it for seconds.
    Bulk,
    /// Resent until the peer acknowledges it or a later reliable message with the same
    /// key to the same peer supersedes it (which cancels the resends). Keys are a small
    /// set chosen by the core (for example one per vote type); the driver keeps at most
    /// [`crate::driver::MAX_RELIABLE_KEYS`] per peer and cancels the oldest beyond.
    Reliable {
        /// What supersedes what.
        key: u64,
    },
}

/// An output of a core, performed by the driver in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Action<M> {
    /// Send to one peer (to the node itself: fed back as an [`Event::Message`]).
    Send {
        /// Destination.
        to: NodeId,
        /// Message.
        message: M,
        /// Best effort or reliable.
        delivery: Delivery,
    },
    /// Send to every other member.
    Broadcast {
        /// Message.
        message: M,
        /// Best effort or reliable.
        delivery: Delivery,
    },
    /// Fire [`Event::Timer`] after `after` (replacing a pending timer with the same id).
    SetTimer {
        /// Which timer.
        id: TimerId,
        /// Delay.
        after: Duration,
    },
    /// Cancel a pending timer (nothing happens if it is not pending).
    CancelTimer {
        /// Which timer.
        id: TimerId,
    },
    /// Durably store the core's safety state before performing any later action. The
    /// latest state is given back in [`Context::persisted`] after a restart.
    Persist {
        /// Encoded state.
        state: Vec<u8>,
    },
    /// The core committed a block: deliver the causal histories of these DAG
    /// certificates, in this order. Blocks are committed in order, each once.
    Commit {
        /// The committed block (the protocol's own identity), kept in the record.
        block: Digest,
        /// Its view, height or round (the protocol's own numbering), kept in the record.
        height: u64,
        /// Anchors: DAG certificate digests whose histories the linearizer delivers,
        /// with the DAG round each was certified in (the linearizer skips, the same way
        /// on every node, anchors too old to matter; a core checks the rounds it
        /// commits or gets them from certificates it holds).
        anchors: Vec<(Digest, Round)>,
    },
    /// Ask the mempool to fetch these DAG certificates (from `from` first; it retries
    /// with other peers).
    FetchCertificates {
        /// Wanted certificates.
        digests: Vec<Digest>,
        /// Who is known to have them.
        from: NodeId,
    },
    /// Hold the DAG proposer back: it makes no header above round `max_round` until a
    /// later `HoldProposer` raises or lifts (`None`) the bound. For DAG-native timing
    /// rules (Bullshark waits for the anchor); only liveness depends on it.
    HoldProposer {
        /// Highest round the mempool may propose a header for; `None`: no bound.
        max_round: Option<Round>,
    },
    /// Proof that `culprit` misbehaved (counted and logged by the driver).
    Evidence {
        /// The member that misbehaved.
        culprit: NodeId,
        /// What it did (a short, stable name such as `"proposal-equivocation"`).
        kind: &'static str,
        /// Where (view, height, round ...), for the log.
        detail: String,
    },
}

impl<M> Action<M> {
    /// A best-effort [`Action::Send`].
    pub fn send(to: NodeId, message: M) -> Self {
        Action::Send {
            to,
            message,
            delivery: Delivery::BestEffort,
        }
    }

    /// A best-effort [`Action::Send`] on the normal lane ([`Delivery::Bulk`]).
    pub fn send_bulk(to: NodeId, message: M) -> Self {
        Action::Send {
            to,
            message,
            delivery: Delivery::Bulk,
        }
    }

    /// A best-effort [`Action::Broadcast`].
    pub fn broadcast(message: M) -> Self {
        Action::Broadcast {
            message,
            delivery: Delivery::BestEffort,
        }
    }
}

/// What a core is built from.
pub struct Context {
    /// This node.
    pub id: NodeId,
    /// The committee (ids, weights, keys, thresholds).
    pub committee: Arc<Committee>,
    /// This node's signers: ed25519 and BLS.
    pub keys: KeyPair,
    /// Which signature scheme votes and quorum certificates use.
    pub scheme: SignatureScheme,
    /// Randomness seeded from the node's seed: the same seed gives the same draws, so
    /// simulations replay. A core uses no other randomness.
    pub rng: rand_chacha::ChaCha20Rng,
    /// The state of the last [`Action::Persist`] before a restart, if any. A core must
    /// refuse to start (return an error) when it cannot decode it.
    pub persisted: Option<Vec<u8>>,
    /// The time of construction.
    pub now: Time,
}

/// Why a core could not be built or configured.
#[derive(Debug, thiserror::Error)]
pub enum ConsensusError {
    /// The persisted safety state cannot be decoded: starting without it could sign
    /// twice, so the node refuses.
    #[error("{protocol}: persisted safety state cannot be decoded ({reason}); refusing to start (a node that forgot its last vote can vote twice)")]
    CorruptState {
        /// The protocol.
        protocol: &'static str,
        /// The decoder's complaint.
        reason: String,
    },
    /// A bad configuration.
    #[error("{protocol}: {reason}")]
    Config {
        /// The protocol.
        protocol: String,
        /// What is wrong, naming the valid choices.
        reason: String,
    },
    /// No protocol of that name is registered.
    #[error("unknown protocol {name:?} (available: {available})")]
    UnknownProtocol {
        /// The name asked for.
        name: String,
        /// The registered names, comma separated.
        available: String,
    },
}

/// Why a peer message was refused by [`Protocol::verify`] (counted by reason).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Rejected(pub &'static str);

/// A protocol's parameters: its `[consensus.<name>]` table of the parameters file.
///
/// Parsing refuses unknown keys, naming the valid ones (derive with
/// `#[serde(default, deny_unknown_fields)]`); missing keys take the defaults of the
/// paper or reference system.
pub trait ProtocolConfig:
    Default + Clone + Debug + PartialEq + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// Every parameter: (name, what it means, with the source of its default).
    const PARAMETERS: &'static [(&'static str, &'static str)];

    /// Check ranges and relations; the error says which rule a value breaks.
    fn validate(&self) -> Result<(), String>;
}

/// Counters a core reports through [`Protocol::metrics`]: (name, value). The first is
/// its progress measure (view, round, height, ...), shown in summaries; the others are
/// progress counters and sizes of its state.
pub type Counters = Vec<(&'static str, u64)>;

/// A consensus protocol: a deterministic, sans-IO state machine.
///
/// Inputs are [`Protocol::handle`]`(now, event)`; outputs are the returned actions. A
/// core never reads a clock, sleeps, does I/O or draws randomness other than
/// [`Context::rng`]; the same events at the same times give the same actions.
pub trait Protocol: Sized + Send + 'static {
    /// The registry name (`bftlab --protocol NAME`, `[consensus.NAME]`).
    const NAME: &'static str;
    /// One line saying what it is (its paper).
    const DESCRIPTION: &'static str;
    /// Its parameters.
    type Config: ProtocolConfig;
    /// Its wire messages.
    type Message: Clone + Debug + Serialize + DeserializeOwned + Send + Sync + 'static;

    /// Build the core; fails on a configuration it cannot run with (for this
    /// committee) or persisted state it cannot decode, never falling back to a default.
    fn new(context: Context, config: Self::Config) -> Result<Self, ConsensusError>;

    /// Check a decoded message from `from` (signatures, certificates, limits, that the
    /// sender may send it). The driver calls it before [`Protocol::handle`] and drops
    /// (and counts) what it refuses.
    fn verify(&self, from: NodeId, message: &Self::Message) -> Result<(), Rejected>;

    /// Process one event at time `now`; returns the actions to perform, in order.
    fn handle(&mut self, now: Time, event: Event<Self::Message>) -> Vec<Action<Self::Message>>;

    /// The core's own counters (see [`Counters`]).
    fn metrics(&self) -> Counters;

    /// What the core waits for before it can commit more, in one line: the leader's
    /// proposal, votes, timeouts or blocks it lacks, with its view, round or height
    /// and the weight it holds. The driver's stall warning names it. `None`: the core
    /// does not say.
    fn waiting_for(&self) -> Option<String> {
        None
    }
}

/// Parse a protocol's configuration from its `[consensus.<name>]` table (absent: the
/// defaults) and validate it.
pub fn parse_config<C: ProtocolConfig>(
    protocol: &str,
    table: Option<&toml::Table>,
) -> Result<C, ConsensusError> {
    let config = match table {
        None => C::default(),
        Some(t) => {
            C::deserialize(toml::Value::Table(t.clone())).map_err(|e| ConsensusError::Config {
                protocol: protocol.into(),
                reason: format!("[consensus.{protocol}]: {}", e.message()),
            })?
        }
    };
    config.validate().map_err(|reason| ConsensusError::Config {
        protocol: protocol.into(),
        reason: format!("[consensus.{protocol}]: {reason}"),
    })?;
    Ok(config)
}
