//! The interface every consensus core implements.

use primitives::{Digest, NodeId, Round};
use std::time::Duration;

/// A timer a core asked for; the core chooses the ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId(pub u64);

/// An input to a core.
#[derive(Clone, Debug, PartialEq)]
pub enum Event<M> {
    /// The node starts (or restarts from persisted state).
    Start,
    /// A message from a peer, already decoded and signature-checked by the driver.
    Message {
        /// The sender, as authenticated by the transport.
        from: NodeId,
        /// The message.
        message: M,
    },
    /// A timer set with [`Action::SetTimer`] fired (and was not cancelled).
    Timer(TimerId),
    /// A DAG certificate is now available locally (delivered in causal order).
    Certificate {
        /// The certificate's digest.
        digest: Digest,
        /// Its round.
        round: Round,
        /// Its author.
        author: NodeId,
    },
}

/// An output of a core, to be performed by the driver in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Action<M> {
    /// Send to one peer (or to the node itself, which the driver feeds back as an event).
    Send {
        /// Destination.
        to: NodeId,
        /// Message.
        message: M,
    },
    /// Send to every other member.
    Broadcast {
        /// Message.
        message: M,
    },
    /// Fire [`Event::Timer`] after `after` (replacing a pending timer with the same id).
    SetTimer {
        /// Which timer.
        id: TimerId,
        /// Delay.
        after: Duration,
    },
    /// Cancel a pending timer.
    CancelTimer {
        /// Which timer.
        id: TimerId,
    },
    /// Durably store the core's safety state before performing any later action.
    Persist {
        /// Encoded state; given back through the core's restore function after a restart.
        state: Vec<u8>,
    },
    /// The core committed a block: deliver the causal histories of these DAG
    /// certificates, in this order.
    Commit {
        /// The committed block (protocol-specific identity).
        block: Digest,
        /// Its view/height.
        height: u64,
        /// Anchors: DAG certificate digests whose histories the linearizer delivers.
        /// With the DAG round each was certified in (checked by a quorum of voters): the
        /// linearizer skips, the same way on every node, anchors too old to matter.
        anchors: Vec<(Digest, Round)>,
    },
    /// Ask the mempool to fetch these DAG certificates (from `from` first).
    FetchCertificates {
        /// Wanted certificates.
        digests: Vec<Digest>,
        /// Who is known to have them.
        from: NodeId,
    },
}

/// A consensus core: a deterministic state machine.
pub trait Core {
    /// The core's wire messages.
    type Message;

    /// Process one event; returns the actions to perform, in order.
    fn handle(&mut self, event: Event<Self::Message>) -> Vec<Action<Self::Message>>;
}
