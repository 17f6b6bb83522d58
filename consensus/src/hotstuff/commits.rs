//! Quorum certificates and commits of the HotStuff replica: a new QC moves the high QC,
//! the lock and the view, and may commit a chain (fetching missing ancestors from peers,
//! retried with another peer each time).

use super::block_tree::Ancestry;
use super::core::{HotStuff, SYNC_RETRY, SYNC_TIMER};
use super::messages::{Block, Message, Qc};
use super::safety;
use crate::core::Action;
use primitives::{Digest, NodeId};

impl HotStuff {
    pub(super) fn process_qc(&mut self, qc: &Qc, out: &mut Vec<Action<Message>>) {
        self.tree.note_qc(qc);
        let rule = self.config.commit_rule;
        let certified = self.tree.get(&qc.block).cloned();
        let changed = safety::observe_qc(rule, &mut self.safety, qc, certified.as_ref());
        if let Some(b) = &certified {
            let parent = self.tree.get(&b.parent());
            let grandparent = parent.and_then(|p| self.tree.get(&p.parent()));
            if let Some(target) = safety::commit_target(rule, b, parent, grandparent) {
                self.commit(target, out);
            }
        }
        if changed {
            self.persist(out);
        }
        if qc.view >= self.view() {
            self.pacemaker.on_progress(qc.view, self.now);
            self.enter_view(qc.view.next(), out);
        }
    }

    /// Commit `digest` and its uncommitted ancestors (fetching missing ones first).
    pub(super) fn commit(&mut self, digest: Digest, out: &mut Vec<Action<Message>>) {
        let chain = match self.tree.ancestry(&digest) {
            Ancestry::Stale => return,
            Ancestry::Chain(chain) => chain,
            Ancestry::Missing {
                digest: missing,
                hint,
            } => {
                // Fetch the missing ancestor (and, in the reply, its own ancestors) and
                // commit when the chain down to the last commit is in hand.
                self.pending_commit = Some(digest);
                let hint = hint.or_else(|| self.committee.id_at(0)).unwrap_or_default();
                self.request_ancestor(missing, hint, out);
                return;
            }
        };
        for b in chain.into_iter().rev() {
            self.payload.mark_carried(&b.payload);
            tracing::debug!(node = %self.id, view = %b.view, block = %b.digest(), anchors = b.payload.len(), "commit");
            out.push(Action::Commit {
                block: b.digest(),
                height: b.view.0,
                anchors: b.payload.clone(),
            });
            self.tree.mark_committed(b);
        }
        self.pending_commit = None;
        // A restart resumes committing above this block.
        self.safety.committed = self.tree.last_committed();
        self.persist(out);
        if self.sync.take().is_some() {
            out.push(Action::CancelTimer { id: SYNC_TIMER });
        }
        self.tree.prune();
    }

    /// Ask `peer` for `missing` unless a request for it is already out (its timer
    /// retries with other peers).
    pub(super) fn request_ancestor(
        &mut self,
        missing: Digest,
        peer: NodeId,
        out: &mut Vec<Action<Message>>,
    ) {
        if self.sync.is_some_and(|(d, _)| d == missing) {
            return;
        }
        tracing::debug!(node = %self.id, view = %self.view(), %missing, %peer, "commit waits for an ancestor");
        self.sync = Some((missing, 0));
        let to = if peer == self.id {
            self.peer_after(0)
        } else {
            peer
        };
        let request = self.sync_request(missing);
        out.push(Action::send(to, request));
        out.push(Action::SetTimer {
            id: SYNC_TIMER,
            after: SYNC_RETRY,
        });
    }

    /// A request for block `missing` and its ancestors above what this replica
    /// committed.
    pub(super) fn sync_request(&self, missing: Digest) -> Message {
        Message::SyncRequest {
            block: missing,
            above: self.tree.last_committed().1,
        }
    }

    /// The `k`-th other member after this one, round-robin.
    pub(super) fn peer_after(&self, k: u32) -> NodeId {
        let n = self.committee.size().max(2);
        let me = self.committee.index_of(self.id).unwrap_or(0);
        let offset = 1 + (k as usize) % (n - 1);
        self.committee.id_at((me + offset) % n).unwrap_or(self.id)
    }

    /// The block request of a stalled commit went unanswered: ask the next peer.
    pub(super) fn retry_sync(&mut self, out: &mut Vec<Action<Message>>) {
        let Some((missing, attempts)) = self.sync else {
            return;
        };
        let attempts = attempts.saturating_add(1);
        self.sync = Some((missing, attempts));
        let request = self.sync_request(missing);
        out.push(Action::send(self.peer_after(attempts), request));
        out.push(Action::SetTimer {
            id: SYNC_TIMER,
            after: SYNC_RETRY,
        });
    }

    pub(super) fn on_sync_reply(&mut self, chain: Vec<Block>, out: &mut Vec<Action<Message>>) {
        tracing::trace!(node = %self.id, blocks = chain.len(), "blocks received");
        let mut added = Vec::new();
        let mut newest: Option<Qc> = None;
        for block in chain {
            let digest = block.digest();
            if block.view <= self.tree.last_committed().1 || self.tree.contains(&digest) {
                continue;
            }
            if !self.window.admit_block(self.view(), block.view, digest) {
                continue;
            }
            if newest.as_ref().is_none_or(|q| q.view < block.qc.view) {
                newest = Some(block.qc.clone());
            }
            self.tree.insert(block);
            added.push(digest);
        }
        if added.is_empty() {
            return;
        }
        // The newest QC implies everything the older ones in the chain would.
        if let Some(qc) = newest {
            self.process_qc(&qc, out);
        }
        if let Some(pending) = self.pending_commit {
            self.commit(pending, out);
        }
        for digest in added {
            self.wake(&digest, out);
        }
    }
}
