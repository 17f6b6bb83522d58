//! Fetching missing certificates: first from the peer that referred to them, then,
//! every `sync_retry_delay`, from `sync_retry_nodes` peers chosen by the node's seeded
//! RNG. A node far behind asks for whole ranges of rounds instead of one parent at a time.

use super::Primary;
use crate::messages::{Certificate, MempoolMessage};
use primitives::{Digest, NodeId, Round};
use rand::seq::SliceRandom;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;

/// Most certificates in one reply.
const MAX_REPLY: usize = 1_000;
/// Most digests in one request.
const MAX_REQUEST: usize = 1_000;
/// How soon a range catch-up may be asked again (of whichever peer next shows a round
/// far ahead). Short, unlike the retry of single certificates: while a node catches up
/// its peers keep committing and collecting, and a range request lost on a fresh
/// connection right after a heal left a node waiting the whole retry delay (10 s by
/// default), long enough for its peers to collect the batches it still had to execute.
const CATCH_UP_RETRY: Duration = Duration::from_secs(1);

/// Certificates asked for that may be charged to one member: what one member's
/// messages (a header's parents, a certificate's parents, the payload of a block it
/// proposed) can make this node ask for and retry. Twice a request's size: an honest
/// member makes this node miss at most a few rounds' certificates at a time (a node far
/// behind asks for ranges instead).
pub(super) const REQUESTED_PER_MEMBER: usize = 2 * MAX_REQUEST;

/// Certificates asked for and not yet received, each charged to the member whose
/// message made this node want it, at most [`REQUESTED_PER_MEMBER`] per member.
#[derive(Default)]
pub(crate) struct Requests {
    entries: BTreeMap<Digest, Request>,
    per_member: BTreeMap<NodeId, usize>,
}

struct Request {
    /// The round the certificate is needed for (collected with it).
    round: Round,
    /// When to ask again.
    due: Instant,
    /// Whose message made this node want it.
    charged: NodeId,
}

impl Requests {
    pub(super) fn contains(&self, digest: &Digest) -> bool {
        self.entries.contains_key(digest)
    }

    /// Record a request charged to `charged`; false (nothing recorded) when that
    /// member's share is used up.
    fn insert(&mut self, digest: Digest, round: Round, due: Instant, charged: NodeId) -> bool {
        let used = self.per_member.entry(charged).or_default();
        if *used >= REQUESTED_PER_MEMBER {
            return false;
        }
        *used += 1;
        self.entries.insert(
            digest,
            Request {
                round,
                due,
                charged,
            },
        );
        true
    }

    pub(super) fn remove(&mut self, digest: &Digest) {
        if let Some(r) = self.entries.remove(digest) {
            self.uncharge(r.charged);
        }
    }

    fn uncharge(&mut self, member: NodeId) {
        if let Some(used) = self.per_member.get_mut(&member) {
            *used = used.saturating_sub(1);
        }
    }

    /// Keep the requests for which `keep(digest, round)` holds.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&Digest, Round) -> bool) {
        let mut dropped = Vec::new();
        self.entries.retain(|d, r| {
            let kept = keep(d, r.round);
            if !kept {
                dropped.push(r.charged);
            }
            kept
        });
        for member in dropped {
            self.uncharge(member);
        }
    }

    /// Requests outstanding now.
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }
}

impl Primary {
    fn retry_delay(&self) -> Duration {
        Duration::from_millis(self.ctx.params.sync_retry_delay_ms)
    }

    /// Ask `hint` for the certificates in `digests` (all of round `round`) not already
    /// asked for, charging them to `hint` (whose message made this node want them);
    /// beyond its share ([`REQUESTED_PER_MEMBER`]) they are not asked for and counted
    /// as `buffer_full`.
    pub(super) fn request_certificates(
        &mut self,
        digests: Vec<Digest>,
        round: Round,
        hint: NodeId,
    ) {
        let due = Instant::now() + self.retry_delay();
        let mut fresh: Vec<Digest> = Vec::new();
        for d in digests {
            if self.requested.contains(&d) {
                continue;
            }
            if self.requested.insert(d, round, due, hint) {
                fresh.push(d);
            } else {
                self.ctx.metrics.reject(crate::Rejection::BufferFull);
            }
        }
        if hint == self.ctx.id || fresh.is_empty() {
            return;
        }
        for chunk in fresh.chunks(MAX_REQUEST) {
            self.ctx
                .out
                .send(hint, &MempoolMessage::CertificatesRequest(chunk.to_vec()));
        }
    }

    /// Ask `hint` for the parents of `header` (strong and weak) among `missing`, each
    /// under the round it is of (a request is dropped when the horizon passes it).
    pub(super) fn request_parents(
        &mut self,
        header: &crate::messages::Header,
        missing: &std::collections::BTreeSet<Digest>,
        hint: NodeId,
    ) {
        let mut by_round: BTreeMap<Round, Vec<Digest>> = BTreeMap::new();
        for (round, parent) in header.all_parents() {
            if missing.contains(parent) {
                by_round.entry(round).or_default().push(*parent);
            }
        }
        for (round, wanted) in by_round {
            self.request_certificates(wanted, round, hint);
        }
    }

    /// Ask `hint` for every certificate between our highest round and `round`.
    pub(super) fn catch_up(&mut self, round: Round, hint: NodeId) {
        let now = Instant::now();
        if self.range_request_due.is_some_and(|due| due > now) || hint == self.ctx.id {
            return;
        }
        let from = self
            .dag()
            .highest_round()
            .next()
            .max(self.gc_round().next());
        let to = round.prev();
        if to < from {
            return;
        }
        self.range_request_due = Some(now + CATCH_UP_RETRY.min(self.retry_delay()));
        self.ctx
            .out
            .send(hint, &MempoolMessage::CertificateRangeRequest { from, to });
    }

    /// Re-ask for whatever is still missing and due, from random peers.
    pub(super) fn retry_sync(&mut self) {
        let now = Instant::now();
        let due: Vec<Digest> = {
            let dag = self.ctx.dag.clone();
            let dag = dag.read().unwrap_or_else(|e| e.into_inner());
            self.requested.retain(|d, _| !dag.contains(d));
            self.requested
                .entries
                .iter()
                .filter(|(_, r)| r.due <= now)
                .map(|(d, _)| *d)
                .collect()
        };
        if due.is_empty() {
            return;
        }
        let next = now + self.retry_delay();
        for d in &due {
            if let Some(entry) = self.requested.entries.get_mut(d) {
                entry.due = next;
            }
        }
        let mut peers = self.ctx.out.others();
        peers.shuffle(&mut self.rng);
        for peer in peers.into_iter().take(self.ctx.params.sync_retry_nodes) {
            for chunk in due.chunks(MAX_REQUEST) {
                self.ctx
                    .out
                    .send(peer, &MempoolMessage::CertificatesRequest(chunk.to_vec()));
            }
        }
        // A range catch-up may also have been lost.
        if self.range_request_due.is_some_and(|at| at <= now) {
            self.range_request_due = None;
        }
    }

    /// Reply with the certificates we hold among `digests`.
    pub(super) fn serve_certificates(&self, to: NodeId, digests: Vec<Digest>) {
        if digests.len() > MAX_REQUEST {
            self.ctx.metrics.reject(crate::Rejection::Oversized);
            return;
        }
        let found: Vec<Certificate> = {
            let dag = self.dag();
            digests
                .iter()
                .filter_map(|d| dag.get(d))
                .filter(|c| c.round() > Round(0))
                .cloned()
                .collect()
        };
        if !found.is_empty() {
            self.ctx.out.send(to, &MempoolMessage::Certificates(found));
        }
    }

    /// Reply with the certificates we hold of rounds `from..=to` (at most [`MAX_REPLY`],
    /// lowest rounds first; the requester asks again for the rest).
    pub(super) fn serve_range(&self, to_node: NodeId, from: Round, to: Round) {
        let found: Vec<Certificate> = {
            let dag = self.dag();
            let mut out = Vec::new();
            // Nothing at or below the GC round is held: a request from round 0 (or one
            // far below) does not make this node walk the rounds collected long ago.
            let mut round = from.max(dag.gc_round().next()).max(Round(1));
            while round <= to && out.len() < MAX_REPLY {
                if let Some(certs) = dag.round(round) {
                    out.extend(certs.values().cloned());
                }
                if round.0 >= dag.highest_round().0 {
                    break;
                }
                round = round.next();
            }
            out.truncate(MAX_REPLY);
            out
        };
        let gc_round = self.gc_round();
        self.ctx.out.send(
            to_node,
            &MempoolMessage::CertificateRange {
                gc_round,
                certificates: found,
            },
        );
    }

    /// A peer told us how far it has garbage-collected. Once members holding at least
    /// f+1 weight (so at least one honest member) report a horizon above everything we
    /// hold, the history below it cannot be fetched from them: move our own horizon up
    /// to the highest such report so that certificates above it can be accepted. The
    /// skipped rounds were committed by the others; consensus catches up on them
    /// separately.
    pub(super) async fn note_peer_horizon(
        &mut self,
        from: NodeId,
        gc_round: Round,
    ) -> Result<(), crate::MempoolError> {
        let entry = self.peer_horizons.entry(from).or_default();
        *entry = (*entry).max(gc_round);
        let mut claims: Vec<(Round, NodeId)> =
            self.peer_horizons.iter().map(|(n, r)| (*r, *n)).collect();
        claims.sort_by(|a, b| b.cmp(a));
        let mut weight = primitives::Weight(0);
        let mut horizon = None;
        for (round, node) in claims {
            weight += self.ctx.committee.weight(node);
            if weight >= self.ctx.committee.validity_threshold() {
                horizon = Some(round);
                break;
            }
        }
        let Some(horizon) = horizon else {
            return Ok(());
        };
        if horizon <= self.gc_round() || self.dag().highest_round() >= horizon {
            return Ok(());
        }
        tracing::info!(%horizon, "behind the committee's garbage-collection horizon: skipping to it");
        // (Certificates that waited for parents below the new horizon go in there.)
        self.move_horizon(horizon).await?;
        crate::metrics::MempoolMetrics::add(&self.ctx.metrics.horizon_jumps, 1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(i: usize) -> Digest {
        Digest::of(&i.to_le_bytes())
    }

    #[tokio::test]
    async fn one_member_cannot_use_another_members_share() {
        let mut r = Requests::default();
        let now = Instant::now();
        let (byzantine, honest) = (NodeId(3), NodeId(1));
        for i in 0..REQUESTED_PER_MEMBER {
            assert!(r.insert(digest(i), Round(5), now, byzantine));
        }
        assert!(!r.insert(digest(usize::MAX), Round(5), now, byzantine));
        assert_eq!(r.len(), REQUESTED_PER_MEMBER);
        assert!(r.insert(digest(usize::MAX), Round(5), now, honest));
        // What arrives or is collected frees the share.
        r.remove(&digest(0));
        assert!(r.insert(digest(usize::MAX - 1), Round(9), now, byzantine));
        r.retain(|_, round| round > Round(5));
        assert_eq!(r.len(), 1);
        assert!(r.insert(digest(7), Round(6), now, byzantine));
        assert!(r.insert(digest(8), Round(6), now, honest));
    }
}
