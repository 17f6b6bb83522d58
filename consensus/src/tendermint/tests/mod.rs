//! Tests of the Tendermint core: table-driven step tests of the round machine and the
//! vote keeper (`steps`), the replica driven message by message (`replica`), and seeded
//! in-memory clusters (`cluster`). The fixture they share is here.

mod cluster;
mod replica;
mod steps;

use super::*;
use crate::core::{Action, CertificateInfo, Event, Protocol, Time};
use primitives::crypto::{KeyPair, SignatureScheme};
use primitives::{Committee, Digest, Hasher, NodeId, Round};
use std::sync::Arc;
use std::time::Duration;

pub(super) struct Fixture {
    pub(super) committee: Arc<Committee>,
    pub(super) keys: Vec<KeyPair>,
}

pub(super) fn fixture() -> Fixture {
    let (c, keys) = Committee::generate(4, 1, &["h".into()], 1000, Some(9)).unwrap();
    Fixture {
        committee: Arc::new(c),
        keys,
    }
}

/// A value id for step tests.
pub(super) fn v(i: u64) -> Digest {
    Hasher::new().update(b"test.value").update_u64(i).finalize()
}

/// A DAG certificate digest for tests.
pub(super) fn c(i: u64) -> Digest {
    Hasher::new()
        .update(b"test.certificate")
        .update_u64(i)
        .finalize()
}

/// Step tests do not depend on time.
pub(super) const T: Time = Time(Duration::ZERO);

pub(super) fn cert(digest: Digest, round: u64) -> Event<Message> {
    Event::Certificate(CertificateInfo {
        digest,
        round: Round(round),
        author: NodeId(0),
        weight: primitives::Weight(1),
        parents: Vec::new(),
    })
}

impl Fixture {
    pub(super) fn config() -> Config {
        Config::default()
    }

    pub(super) fn replica(&self, id: u16, persisted: Option<&[u8]>) -> Tendermint {
        Tendermint::new(
            NodeId(id),
            self.committee.clone(),
            self.keys[id as usize].clone(),
            SignatureScheme::Ed25519,
            Self::config(),
            persisted,
        )
        .unwrap()
    }

    pub(super) fn proposer(&self, height: u64, round: u64) -> NodeId {
        ProposerSchedule::new(&self.committee).proposer(height, round)
    }

    pub(super) fn proposal(
        &self,
        height: u64,
        round: u64,
        payload: Vec<(Digest, u64)>,
        valid_round: Option<u64>,
    ) -> Proposal {
        let author = self.proposer(height, round);
        let value = Block {
            height,
            payload: payload.into_iter().map(|(d, r)| (d, Round(r))).collect(),
        };
        Proposal::new(
            &self.keys[author.0 as usize],
            author,
            round,
            value,
            valid_round,
        )
    }

    pub(super) fn vote(
        &self,
        voter: u16,
        kind: VoteKind,
        height: u64,
        round: u64,
        value: Option<Digest>,
    ) -> Vote {
        Vote::new(
            &self.keys[voter as usize],
            NodeId(voter),
            kind,
            height,
            round,
            value,
            SignatureScheme::Ed25519,
        )
    }
}

/// Hand a message to a replica as the driver would (verify first).
pub(super) fn deliver(r: &mut Tendermint, from: u16, message: Message) -> Vec<Action<Message>> {
    r.verify(NodeId(from), &message)
        .unwrap_or_else(|e| panic!("refused: {e}"));
    r.handle(
        T,
        Event::Message {
            from: NodeId(from),
            message,
        },
    )
}

/// The votes a replica broadcast.
pub(super) fn votes_in(actions: &[Action<Message>]) -> Vec<Vote> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Broadcast {
                message: Message::Vote(v),
                ..
            } => Some(v.clone()),
            _ => None,
        })
        .collect()
}

/// The heights a replica committed.
pub(super) fn commits_in(actions: &[Action<Message>]) -> Vec<(u64, Digest)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Commit { block, height, .. } => Some((*height, *block)),
            _ => None,
        })
        .collect()
}
