//! Accepting certificates: verify, wait for parents, insert into the DAG in causal
//! order, hand to consensus, and move rounds forward.

use super::{Pending, Primary};
use crate::error::Rejection;
use crate::messages::Certificate;
use crate::metrics::MempoolMetrics;
use crate::store::{StoreOp, Table};
use crate::worker::{batch_key, WorkerCommand};
use crate::MempoolError;
use primitives::{codec, Digest, NodeId, WorkerId};
use std::collections::{BTreeMap, VecDeque};
use tracing::debug;

impl Primary {
    pub(super) async fn on_certificate(
        &mut self,
        certificate: Certificate,
        from: NodeId,
        synced: bool,
    ) -> Result<(), MempoolError> {
        let digest = certificate.digest();
        if self.dag().contains(&digest) {
            return Ok(());
        }
        if synced {
            MempoolMetrics::add(&self.ctx.metrics.certificates_synced, 1);
        }
        if self.pending.contains_key(&digest) {
            return Ok(());
        }
        if certificate.round() <= self.gc_round() {
            self.ctx.metrics.reject(Rejection::TooOld);
            return Ok(());
        }
        let own = from == self.ctx.id && certificate.author() == self.ctx.id;
        if !own {
            if certificate.header.payload.len() > self.ctx.params.max_header_batches
                || certificate.header.parents.len() > self.ctx.committee.size()
            {
                self.ctx.metrics.reject(Rejection::Oversized);
                return Ok(());
            }
            if let Err(reason) = certificate.header.check_weak_parents(&self.ctx.committee) {
                self.ctx.metrics.reject(reason);
                return Ok(());
            }
            if !certificate.header.payload_is_distinct() {
                self.ctx.metrics.reject(Rejection::Malformed);
                return Ok(());
            }
            if let Err(reason) = certificate.verify(&self.ctx.committee, self.ctx.scheme) {
                self.ctx.metrics.reject(reason);
                return Ok(());
            }
        }
        // A quorum certified this round, so the committee has reached it: batches stored
        // from now on are tagged no lower (a node far behind, restarted or cut off, would
        // tag what it receives with its own stale round, and collect it at its next
        // garbage collection, before executing the certificates that carry it).
        for shared in &self.ctx.worker_shared {
            shared
                .round
                .fetch_max(certificate.round().0, std::sync::atomic::Ordering::Relaxed);
        }
        let missing = self.dag().missing_parents(&certificate);
        if !missing.is_empty() {
            if self.pending.len() >= self.max_pending() {
                self.ctx.metrics.reject(Rejection::BufferFull);
                return Ok(());
            }
            let round = certificate.round();
            debug!(%digest, %round, missing = missing.len(), "certificate waits for parents");
            for parent in &missing {
                self.waiters.entry(*parent).or_default().insert(digest);
            }
            self.request_parents(&certificate.header, &missing, from);
            if round.0 > self.dag().highest_round().0 + 2 {
                self.catch_up(round, from);
            }
            self.pending.insert(
                digest,
                Pending {
                    certificate,
                    missing,
                },
            );
            return Ok(());
        }
        self.insert(certificate).await
    }

    /// Insert a certificate whose parents are all present, then everything that was
    /// waiting only for it, in causal order.
    async fn insert(&mut self, certificate: Certificate) -> Result<(), MempoolError> {
        let mut queue = VecDeque::from([certificate]);
        while let Some(certificate) = queue.pop_front() {
            let digest = certificate.digest();
            if self.dag().contains(&digest) {
                continue;
            }
            self.ctx.store.write_relaxed(vec![StoreOp::Put(
                Table::Certificates,
                digest.as_bytes().to_vec(),
                codec::encode(&certificate)?.into(),
            )])?;
            self.dag_mut().insert(certificate.clone());
            if certificate.author() == self.ctx.id {
                for (batch, _) in &certificate.header.payload {
                    self.ctx.metrics.batch_latency.certified(batch);
                }
                if !certificate.header.payload.is_empty() {
                    self.watch(&certificate);
                }
            }

            self.requested.remove(&digest);
            self.fetch_payload(&certificate);
            let round = certificate.round();
            if self.ctx.delivered.send(certificate).await.is_err() {
                // Nobody consumes certificates any more: the node is shutting down.
                return Ok(());
            }
            MempoolMetrics::add(&self.ctx.metrics.certificates_delivered, 1);
            self.check_round_quorum(round).await?;
            if let Some(waiting) = self.waiters.remove(&digest) {
                for child in waiting {
                    let ready = match self.pending.get_mut(&child) {
                        Some(p) => {
                            p.missing.remove(&digest);
                            p.missing.is_empty()
                        }
                        None => false,
                    };
                    if ready {
                        if let Some(p) = self.pending.remove(&child) {
                            queue.push_back(p.certificate);
                        }
                    }
                }
            }
            Box::pin(self.wake_headers(&digest)).await?;
        }
        Ok(())
    }

    /// Tell the workers a certificate carries these batches: a peer's push of one is no
    /// longer unsolicited (it is kept like any certified batch).
    pub(super) fn name_batches(&self, payload: &[(Digest, WorkerId)]) {
        let mut by_worker: BTreeMap<WorkerId, Vec<Digest>> = BTreeMap::new();
        for (batch, worker) in payload {
            by_worker.entry(*worker).or_default().push(*batch);
        }
        for (worker, digests) in by_worker {
            if let Some(w) = self.ctx.workers.get(worker.0 as usize) {
                // Lost only when the worker's queue is full; the batch then leaves the
                // unsolicited set at the next GC anyway, kept while its certificate is
                // in the DAG.
                let _ = w.try_send(WorkerCommand::Named(digests));
            }
        }
    }

    /// Ask our workers for any batch of `certificate` we do not store (needed to execute
    /// it), and tell them the rest is named by a certificate.
    fn fetch_payload(&self, certificate: &Certificate) {
        self.name_batches(&certificate.header.payload);
        let mut missing: BTreeMap<WorkerId, Vec<Digest>> = BTreeMap::new();
        for (batch, worker) in &certificate.header.payload {
            let have = self
                .ctx
                .store
                .contains(Table::Batches, &batch_key(*worker, batch))
                .unwrap_or(false);
            if !have {
                missing.entry(*worker).or_default().push(*batch);
            }
        }
        for (worker, digests) in missing {
            if let Some(w) = self.ctx.workers.get(worker.0 as usize) {
                let _ = w.try_send(WorkerCommand::Synchronize(digests, certificate.author()));
            }
        }
    }
}
