//! Views and timeouts of the HotStuff replica: entering views, local timeouts,
//! timeouts received, timeout certificates, and helping replicas left behind in a view.
//! (The view arithmetic and backoff live in the pacemaker.)

use super::core::HotStuff;
use super::messages::{Message, Tc, Timeout};
use super::pacemaker::TimeoutOutcome;
use super::safety;
use crate::core::Action;
use primitives::{Digest, NodeId, View};

/// Views for which the first proposal and each voter's first vote are remembered, to
/// recognise equivocation.
pub(super) const EVIDENCE_VIEWS: u64 = 8;

impl HotStuff {
    pub(super) fn enter_view(&mut self, view: View, out: &mut Vec<Action<Message>>) {
        if !self.pacemaker.enter(view, self.now, out) {
            return;
        }
        // Proposals of earlier views can no longer get our vote.
        self.waiting.retain(|_, (b, _)| b.view >= view);
        let keep_from = View(view.0.saturating_sub(1));
        self.votes.retain_from((keep_from, Digest::default()));
        let evidence_from = View(view.0.saturating_sub(EVIDENCE_VIEWS));
        self.first_proposal = self.first_proposal.split_off(&evidence_from);
        self.first_vote = self.first_vote.split_off(&(evidence_from, NodeId(0)));
        let committed = self.tree.last_committed().1;
        self.window.prune(committed, evidence_from);
        if self.leader_of(view) == self.id {
            self.propose(out);
        }
    }

    pub(super) fn local_timeout(&mut self, out: &mut Vec<Action<Message>>) {
        let view = self.view();
        // Never vote in a view we gave up on.
        safety::record_vote(&mut self.safety, view);
        self.persist(out);
        tracing::debug!(node = %self.id, %view, "view timed out");
        let timeout = Timeout::new(&self.keys, self.id, view, self.safety.high_qc.clone());
        out.push(Action::broadcast(Message::Timeout(timeout.clone())));
        self.pacemaker.local_timeout(out);
        self.on_timeout(timeout, out);
    }

    pub(super) fn on_timeout(&mut self, timeout: Timeout, out: &mut Vec<Action<Message>>) {
        self.process_qc(&timeout.high_qc.clone(), out);
        if super::window::Window::beyond(self.view(), timeout.view) {
            // Its high QC was taken; the timeout itself is not kept.
            self.window.refuse_ahead();
            return;
        }
        if timeout.view < self.view() {
            // The voter is still in a view we left (a partition healed, our TC or QC
            // was lost): show it the certificate that ended that view. It re-sends its
            // timeout every base interval, so this repeats until it catches up.
            self.help_laggard(timeout.voter, timeout.view, out);
            return;
        }
        match self.pacemaker.add_timeout(timeout) {
            TimeoutOutcome::Certificate { tc, first } => {
                if first {
                    out.push(Action::broadcast(Message::Tc(tc.clone())));
                }
                self.process_tc(tc, out);
            }
            // f+1 replicas gave up on our view: at least one honest did; join them.
            TimeoutOutcome::Join => self.local_timeout(out),
            TimeoutOutcome::Counted => {}
        }
    }

    /// Send `peer`, stuck in `view`, whichever of our high TC or high QC moves it
    /// furthest past that view.
    pub(super) fn help_laggard(&self, peer: NodeId, view: View, out: &mut Vec<Action<Message>>) {
        if peer == self.id {
            return;
        }
        let qc_view = self.safety.high_qc.view;
        match self.pacemaker.high_tc() {
            Some(tc) if tc.view >= view && tc.view >= qc_view => {
                out.push(Action::send(peer, Message::Tc(tc.clone())))
            }
            _ if qc_view >= view => {
                if let Some(block) = self.tree.carrier_of_qc(qc_view) {
                    out.push(Action::send(peer, Message::SyncReply(vec![block.clone()])));
                }
            }
            _ => {}
        }
    }

    pub(super) fn process_tc(&mut self, tc: Tc, out: &mut Vec<Action<Message>>) {
        if let Some(next) = self.pacemaker.on_tc(tc) {
            self.enter_view(next, out);
        }
    }
}
