//! Tests of the HotStuff core: step tests of its rules (`steps`) and seeded in-memory
//! clusters (`cluster`); the fixture and helpers they share are here.

mod cluster;
mod steps;

use super::*;
use crate::core::{Action, CertificateInfo, Event, Protocol, Time, TimerId};
use primitives::crypto::{KeyPair, PartialSignature, QuorumCertificate, SignatureScheme};
use primitives::{Committee, Digest, NodeId, Round, View};
use std::sync::Arc;
use std::time::Duration;

pub(super) struct Fixture {
    pub(super) committee: Arc<Committee>,
    pub(super) keys: Vec<KeyPair>,
    pub(super) views_per_leader: u64,
}

pub(super) fn fixture() -> Fixture {
    let (c, keys) = Committee::generate(4, 1, &["h".into()], 1000, Some(9)).unwrap();
    // One view per leader keeps the step tests easy to follow.
    Fixture {
        committee: Arc::new(c),
        keys,
        views_per_leader: 1,
    }
}

impl Fixture {
    pub(super) fn replica(&self, id: u16, rule: CommitRule) -> HotStuff {
        let config = Config {
            commit_rule: rule,
            views_per_leader: self.views_per_leader,
            ..Config::default()
        };
        HotStuff::new(
            NodeId(id),
            self.committee.clone(),
            self.keys[id as usize].clone(),
            SignatureScheme::Ed25519,
            config,
            None,
        )
        .unwrap()
    }

    pub(super) fn leader_keys(&self, view: u64) -> (NodeId, &KeyPair) {
        let l = leader(&self.committee, View(view), self.views_per_leader);
        (l, &self.keys[l.0 as usize])
    }

    pub(super) fn block(&self, view: u64, qc: Qc, tc: Option<Tc>, payload: Vec<Digest>) -> Block {
        let (l, k) = self.leader_keys(view);
        // Test certificates are all of round 1 (as the tests deliver them).
        let payload = payload.into_iter().map(|d| (d, Round(1))).collect();
        Block::new(k, l, View(view), qc, tc, payload)
    }

    pub(super) fn qc(&self, block: &Block) -> Qc {
        let shares: Vec<(NodeId, PartialSignature)> = (0..3u16)
            .map(|i| {
                let v = Vote::new(
                    &self.keys[i as usize],
                    NodeId(i),
                    block.digest(),
                    block.view,
                    SignatureScheme::Ed25519,
                );
                (NodeId(i), v.signature)
            })
            .collect();
        Qc {
            block: block.digest(),
            view: block.view,
            votes: QuorumCertificate::from_shares(
                &self.committee,
                SignatureScheme::Ed25519,
                &shares,
            )
            .unwrap(),
        }
    }

    pub(super) fn tc(&self, view: u64, high_qc_view: u64) -> Tc {
        self.tc_by(view, high_qc_view, &[0, 1, 2])
    }

    /// A TC for `view` signed by `signers`.
    pub(super) fn tc_by(&self, view: u64, high_qc_view: u64, signers: &[u16]) -> Tc {
        Tc {
            view: View(view),
            timeouts: signers
                .iter()
                .map(|&i| {
                    let t = Timeout::new(
                        &self.keys[i as usize],
                        NodeId(i),
                        View(view),
                        Qc {
                            view: View(high_qc_view),
                            ..Qc::genesis()
                        },
                    );
                    (NodeId(i), View(high_qc_view), t.signature)
                })
                .collect(),
        }
    }
}

/// Step tests do not depend on time.
pub(super) const T: Time = Time(Duration::ZERO);

pub(super) fn cert(digest: Digest, round: Round, author: NodeId) -> Event<Message> {
    Event::Certificate(CertificateInfo {
        digest,
        round,
        author,
        weight: primitives::Weight(1),
        parents: Vec::new(),
    })
}

pub(super) fn propose(r: &mut HotStuff, from: NodeId, b: &Block) -> Vec<Action<Message>> {
    r.handle(
        T,
        Event::Message {
            from,
            message: Message::Propose(b.clone()),
        },
    )
}

pub(super) fn votes_in(actions: &[Action<Message>]) -> Vec<Vote> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send {
                message: Message::Vote(v),
                ..
            } => Some(v.clone()),
            _ => None,
        })
        .collect()
}

pub(super) fn commits_in(actions: &[Action<Message>]) -> Vec<Digest> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Commit { block, .. } => Some(*block),
            _ => None,
        })
        .collect()
}
