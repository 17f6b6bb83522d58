//! What one member can make a replica keep: a window of views ahead of the current one,
//! and a cap on blocks per view and votes per voter and view.
//!
//! A validly signed message may name any view: a Byzantine member can sign timeouts and
//! votes for every future view, and as leader of its future views any number of blocks
//! (`future-flood` does). Beyond [`MAX_VIEWS_AHEAD`] views above the current one, the
//! replica takes from a message only the certificates it carries (a QC or TC moves a
//! lagging replica forward, which is how it catches up), and keeps nothing else; within
//! the window it keeps at most [`BLOCKS_PER_VIEW`] blocks of a view and counts at most
//! two different votes of a voter in a view (two are enough for the double-vote
//! evidence, and for the split-brain attack the checkers must see beyond the bound).
//! What is refused is counted (`refused_ahead`, `refused_extra`).

use primitives::{Digest, NodeId, View};
use std::collections::BTreeMap;

/// Views above the current one whose messages are kept.
pub const MAX_VIEWS_AHEAD: u64 = 32;
/// Blocks kept per view (one leader per view: an honest one proposes one; an
/// equivocating one gets a second, and then some slack, kept).
pub const BLOCKS_PER_VIEW: usize = 4;

/// The bounds, and what they refused.
#[derive(Debug, Default)]
pub struct Window {
    /// Blocks admitted per view not yet committed.
    blocks: BTreeMap<View, Vec<Digest>>,
    /// Per (view, voter): the second block it voted for (the first is in
    /// `HotStuff::first_vote`).
    second_votes: BTreeMap<(View, NodeId), Digest>,
    /// Messages refused for a view beyond the window.
    pub refused_ahead: u64,
    /// Blocks or votes refused over the caps of a view.
    pub refused_extra: u64,
}

impl Window {
    /// Whether `view` is beyond the window above `current`.
    pub fn beyond(current: View, view: View) -> bool {
        view.0 > current.0.saturating_add(MAX_VIEWS_AHEAD)
    }

    /// Count a message refused for being beyond the window.
    pub fn refuse_ahead(&mut self) {
        self.refused_ahead += 1;
    }

    /// Whether block `digest` of `view` may be kept (an already admitted one may).
    pub fn admit_block(&mut self, current: View, view: View, digest: Digest) -> bool {
        if Self::beyond(current, view) {
            self.refused_ahead += 1;
            return false;
        }
        let held = self.blocks.entry(view).or_default();
        if held.contains(&digest) {
            return true;
        }
        if held.len() >= BLOCKS_PER_VIEW {
            self.refused_extra += 1;
            return false;
        }
        held.push(digest);
        true
    }

    /// Whether a vote of `voter` for `block` in `view` may be counted, given its first
    /// vote in that view (`None`: this is its first).
    pub fn admit_vote(
        &mut self,
        current: View,
        view: View,
        voter: NodeId,
        block: Digest,
        first: Option<Digest>,
    ) -> bool {
        if Self::beyond(current, view) {
            self.refused_ahead += 1;
            return false;
        }
        match first {
            None => true,
            Some(f) if f == block => true,
            Some(_) => match self.second_votes.get(&(view, voter)) {
                Some(second) if *second == block => true,
                Some(_) => {
                    self.refused_extra += 1;
                    false
                }
                None => {
                    self.second_votes.insert((view, voter), block);
                    true
                }
            },
        }
    }

    /// Forget blocks of views up to `committed`, and second votes below `from`.
    pub fn prune(&mut self, committed: View, from: View) {
        self.blocks = self.blocks.split_off(&View(committed.0.saturating_add(1)));
        self.second_votes = self.second_votes.split_off(&(from, NodeId(0)));
    }

    /// Views with blocks admitted, and second votes kept (state sizes).
    pub fn sizes(&self) -> (usize, usize) {
        (
            self.blocks.values().map(Vec::len).sum(),
            self.second_votes.len(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beyond_the_window_nothing_is_kept_and_it_is_counted() {
        let mut w = Window::default();
        let far = View(10 + MAX_VIEWS_AHEAD + 1);
        assert!(!w.admit_block(View(10), far, Digest::of(b"b")));
        assert!(!w.admit_vote(View(10), far, NodeId(1), Digest::of(b"b"), None));
        assert!(w.admit_block(View(10), View(10 + MAX_VIEWS_AHEAD), Digest::of(b"b")));
        assert_eq!(w.refused_ahead, 2);
    }

    #[test]
    fn a_view_keeps_a_few_blocks_and_two_votes_per_voter() {
        let mut w = Window::default();
        let d = |i: u8| Digest::of(&[i]);
        for i in 0..BLOCKS_PER_VIEW as u8 {
            assert!(w.admit_block(View(1), View(2), d(i)));
        }
        assert!(!w.admit_block(View(1), View(2), d(99)));
        assert!(
            w.admit_block(View(1), View(2), d(0)),
            "an admitted block stays admitted"
        );
        let first = Some(d(0));
        assert!(w.admit_vote(View(1), View(2), NodeId(3), d(0), first));
        assert!(w.admit_vote(View(1), View(2), NodeId(3), d(1), first));
        assert!(w.admit_vote(View(1), View(2), NodeId(3), d(1), first));
        assert!(!w.admit_vote(View(1), View(2), NodeId(3), d(2), first));
        assert_eq!(w.refused_extra, 2);
        w.prune(View(2), View(3));
        assert_eq!(w.sizes(), (0, 0));
    }
}
