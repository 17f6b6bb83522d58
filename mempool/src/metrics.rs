//! Counters of the mempool, declared once here.

use crate::error::Rejection;
use primitives::Digest;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use tokio::time::Instant;

/// Most own batches whose seal time is remembered at once.
const MAX_TRACKED_BATCHES: usize = 100_000;

/// Time from sealing an own batch to inserting the certificate that carries it.
#[derive(Debug)]
pub struct BatchLatency {
    sealed: Mutex<HashMap<Digest, Instant>>,
    histogram: Mutex<Option<hdrhistogram::Histogram<u64>>>,
}

impl Default for BatchLatency {
    fn default() -> Self {
        BatchLatency {
            sealed: Mutex::new(HashMap::new()),
            // Microseconds, 3 significant digits, up to an hour (valid bounds: never None).
            histogram: Mutex::new(
                hdrhistogram::Histogram::new_with_bounds(1, 3_600_000_000, 3).ok(),
            ),
        }
    }
}

impl BatchLatency {
    pub(crate) fn sealed(&self, digest: Digest) {
        if let Ok(mut sealed) = self.sealed.lock() {
            if sealed.len() < MAX_TRACKED_BATCHES {
                sealed.insert(digest, Instant::now());
            }
        }
    }

    pub(crate) fn certified(&self, digest: &Digest) {
        let Some(at) = self.sealed.lock().ok().and_then(|mut s| s.remove(digest)) else {
            return;
        };
        let micros = at.elapsed().as_micros().min(u64::MAX as u128) as u64;
        if let Ok(mut guard) = self.histogram.lock() {
            if let Some(h) = guard.as_mut() {
                let _ = h.record(micros.max(1));
            }
        }
    }

    /// Forget batches sealed more than `older_than` ago (never certified).
    pub(crate) fn forget_older_than(&self, older_than: std::time::Duration) {
        if let Ok(mut sealed) = self.sealed.lock() {
            sealed.retain(|_, at| at.elapsed() < older_than);
        }
    }

    /// A copy of the histogram (microseconds) and reset it.
    pub fn take(&self) -> Option<hdrhistogram::Histogram<u64>> {
        let mut guard = self.histogram.lock().ok()?;
        let h = guard.as_mut()?;
        let copy = h.clone();
        h.reset();
        Some(copy)
    }
}

/// The mempool's counters.
#[derive(Debug, Default)]
pub struct MempoolMetrics {
    /// Batches sealed by this node's workers.
    pub batches_sealed: AtomicU64,
    /// Transactions in those batches.
    pub transactions_sealed: AtomicU64,
    /// Batches received from other nodes' workers and stored.
    pub batches_received: AtomicU64,
    /// Own batches that reached a quorum and went to the primary.
    pub batches_certified_available: AtomicU64,
    /// Headers this node proposed.
    pub headers_proposed: AtomicU64,
    /// Votes this node cast.
    pub votes_cast: AtomicU64,
    /// Certificates this node assembled.
    pub certificates_formed: AtomicU64,
    /// Certificates delivered to consensus.
    pub certificates_delivered: AtomicU64,
    /// Certificates fetched through synchronization.
    pub certificates_synced: AtomicU64,
    /// Batches fetched through synchronization.
    pub batches_synced: AtomicU64,
    /// Equivocations detected (two headers, one author, one round).
    pub equivocations: AtomicU64,
    /// Certificates removed by garbage collection.
    pub certificates_collected: AtomicU64,
    /// Batches removed by garbage collection.
    pub batches_collected: AtomicU64,
    /// Times this node moved its horizon up to the committee's (it was too far behind).
    pub horizon_jumps: AtomicU64,
    /// Own certificates that no certificate of the next round referenced (they formed
    /// too late, e.g. after this node could not hear its votes): their batches were put
    /// into a later header so their transactions are not lost.
    pub orphans_requeued: AtomicU64,
    /// Own batches whose commit was never heard and which were past the re-proposal
    /// window (a copy could be executed twice) when the horizon passed their
    /// certificate or when their copy was due: not proposed again.
    pub orphans_abandoned: AtomicU64,
    /// Weak links this node's headers carried: certificates, its own or others', that
    /// no certificate it held referenced (see [`crate::Header::weak_parents`]).
    pub weak_links: AtomicU64,
    /// The primary's current round.
    pub round: AtomicU64,
    /// Certificates asked of peers and not yet received, now (at most
    /// 2,000 charged to any one member).
    pub requested_certificates: AtomicU64,
    /// Headers waiting for parents or batches before this node votes, now (at most 8
    /// per author).
    pub suspended_headers: AtomicU64,
    /// Certificates waiting for their parents, now.
    pub pending_certificates: AtomicU64,
    /// Batches peers pushed that no header or certificate named yet, now (at most 256
    /// per sender and worker).
    pub unsolicited_batches: AtomicU64,
    /// Seal-to-certificate latency of this node's own batches.
    pub batch_latency: BatchLatency,
    rejections: [AtomicU64; Rejection::ALL.len()],
}

/// A copy of [`MempoolMetrics`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MetricsSnapshot {
    /// See [`MempoolMetrics::batches_sealed`].
    pub batches_sealed: u64,
    /// See [`MempoolMetrics::transactions_sealed`].
    pub transactions_sealed: u64,
    /// See [`MempoolMetrics::batches_received`].
    pub batches_received: u64,
    /// See [`MempoolMetrics::batches_certified_available`].
    pub batches_certified_available: u64,
    /// See [`MempoolMetrics::headers_proposed`].
    pub headers_proposed: u64,
    /// See [`MempoolMetrics::votes_cast`].
    pub votes_cast: u64,
    /// See [`MempoolMetrics::certificates_formed`].
    pub certificates_formed: u64,
    /// See [`MempoolMetrics::certificates_delivered`].
    pub certificates_delivered: u64,
    /// See [`MempoolMetrics::certificates_synced`].
    pub certificates_synced: u64,
    /// See [`MempoolMetrics::batches_synced`].
    pub batches_synced: u64,
    /// See [`MempoolMetrics::equivocations`].
    pub equivocations: u64,
    /// See [`MempoolMetrics::certificates_collected`].
    pub certificates_collected: u64,
    /// See [`MempoolMetrics::batches_collected`].
    pub batches_collected: u64,
    /// See [`MempoolMetrics::horizon_jumps`].
    pub horizon_jumps: u64,
    /// See [`MempoolMetrics::orphans_requeued`].
    pub orphans_requeued: u64,
    /// See [`MempoolMetrics::orphans_abandoned`].
    pub orphans_abandoned: u64,
    /// See [`MempoolMetrics::weak_links`].
    pub weak_links: u64,
    /// See [`MempoolMetrics::round`].
    pub round: u64,
    /// See [`MempoolMetrics::requested_certificates`].
    pub requested_certificates: u64,
    /// See [`MempoolMetrics::suspended_headers`].
    pub suspended_headers: u64,
    /// See [`MempoolMetrics::pending_certificates`].
    pub pending_certificates: u64,
    /// See [`MempoolMetrics::unsolicited_batches`].
    pub unsolicited_batches: u64,
    /// Rejections by reason (zero counts omitted).
    pub rejections: Vec<(Rejection, u64)>,
}

fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

impl MempoolMetrics {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn reject(&self, reason: Rejection) {
        if let Some(i) = Rejection::ALL.iter().position(|r| *r == reason) {
            self.rejections[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Rejections counted for `reason`.
    pub fn rejected(&self, reason: Rejection) -> u64 {
        Rejection::ALL
            .iter()
            .position(|r| *r == reason)
            .map(|i| get(&self.rejections[i]))
            .unwrap_or(0)
    }

    /// A copy of every counter.
    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            batches_sealed: get(&self.batches_sealed),
            transactions_sealed: get(&self.transactions_sealed),
            batches_received: get(&self.batches_received),
            batches_certified_available: get(&self.batches_certified_available),
            headers_proposed: get(&self.headers_proposed),
            votes_cast: get(&self.votes_cast),
            certificates_formed: get(&self.certificates_formed),
            certificates_delivered: get(&self.certificates_delivered),
            certificates_synced: get(&self.certificates_synced),
            batches_synced: get(&self.batches_synced),
            equivocations: get(&self.equivocations),
            certificates_collected: get(&self.certificates_collected),
            batches_collected: get(&self.batches_collected),
            horizon_jumps: get(&self.horizon_jumps),
            orphans_requeued: get(&self.orphans_requeued),
            orphans_abandoned: get(&self.orphans_abandoned),
            weak_links: get(&self.weak_links),
            round: get(&self.round),
            requested_certificates: get(&self.requested_certificates),
            suspended_headers: get(&self.suspended_headers),
            pending_certificates: get(&self.pending_certificates),
            unsolicited_batches: get(&self.unsolicited_batches),
            rejections: Rejection::ALL
                .iter()
                .enumerate()
                .map(|(i, r)| (*r, get(&self.rejections[i])))
                .filter(|(_, n)| *n > 0)
                .collect(),
        }
    }
}
