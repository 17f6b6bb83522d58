//! A worker's handling of peers' messages (batches, batch requests) and of its
//! primary's commands (synchronize, clean up).

use super::unsolicited::Unsolicited;
use super::{batch_key, split_stored, store_batch, WorkerCommand, WorkerEvent, WorkerShared};
use crate::error::Rejection;
use crate::messages::{check_batch, BatchCheck, MempoolMessage};
use crate::metrics::MempoolMetrics;
use crate::store::{Store, StoreOp, Table};
use crate::transport::Outbound;
use crate::MempoolError;
use bytes::Bytes;
use network::Incoming;
use primitives::{Digest, NodeId, WorkerId};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, trace};

/// Most digests served per batch request.
const MAX_REQUEST_DIGESTS: usize = 1_000;
/// Batch bytes a worker lets wait in the transport's queue for one peer when answering
/// its requests: a request is answered with at most what fits in this window beside
/// what is queued for the peer already, and the rest is not served (the requester asks
/// again, or another peer). A peer asking faster than its link drains is answered only
/// as fast as it drains, and what one peer's requests make this node hold is bounded
/// by this window, not by how much it asks.
const SERVE_WINDOW_BYTES: usize = 16 << 20;
/// Most batches being fetched at once.
const MAX_PENDING_SYNC: usize = 100_000;

/// A batch wanted, with the round of the certificate that carries it.
type Wanted = (Digest, primitives::Round);

/// Handles one worker's inbound messages and its primary's commands.
pub(crate) struct WorkerHandler {
    pub(crate) worker: WorkerId,
    pub(crate) max_batch_bytes: usize,
    pub(crate) max_transaction_size: usize,
    pub(crate) sync_retry_delay: Duration,
    pub(crate) sync_retry_nodes: usize,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) out: Outbound,
    pub(crate) shared: Arc<WorkerShared>,
    pub(crate) primary: mpsc::Sender<WorkerEvent>,
    pub(crate) metrics: Arc<MempoolMetrics>,
    pub(crate) rng_seed: u64,
    /// Byzantine: never answer batch requests (see [`crate::MempoolFaults`]).
    pub(crate) withhold: bool,
    /// What [`WorkerHandler::report_unsolicited`] last added to the node's gauge.
    pub(crate) unsolicited_reported: std::cell::Cell<u64>,
}

impl WorkerHandler {
    /// Run until both input channels close.
    pub(crate) async fn run(
        self,
        mut messages: mpsc::Receiver<(Incoming, MempoolMessage)>,
        mut commands: mpsc::Receiver<WorkerCommand>,
    ) -> Result<(), MempoolError> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(self.rng_seed);
        // Batches being fetched: digest -> (round tag when asked, when to ask again).
        let mut pending: BTreeMap<Digest, (primitives::Round, Instant)> = BTreeMap::new();
        // Pushed batches no header or certificate named yet, per sender.
        let mut unsolicited = Unsolicited::default();
        let mut retry = tokio::time::interval(self.sync_retry_delay);
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                command = commands.recv() => match command {
                    Some(WorkerCommand::Synchronize(digests, target)) => {
                        let missing: Vec<Digest> = digests
                            .into_iter()
                            .filter(|d| !self.has(d) && !pending.contains_key(d))
                            .collect();
                        if missing.is_empty() {
                            continue;
                        }
                        for d in &missing {
                            if pending.len() < MAX_PENDING_SYNC {
                                pending.insert(*d, (self.shared.tag(), Instant::now() + self.sync_retry_delay));
                            }
                        }
                        self.request(target, missing);
                    }
                    Some(WorkerCommand::Refetch(digests, target)) => {
                        let (again, new): (Vec<Wanted>, Vec<Wanted>) = digests
                            .into_iter()
                            .filter(|(d, _)| !self.has(d))
                            .partition(|(d, _)| pending.contains_key(d));
                        let next = Instant::now() + self.sync_retry_delay;
                        for (d, round) in &new {
                            if pending.len() < MAX_PENDING_SYNC {
                                pending.insert(*d, (self.shared.tag().max(*round), next));
                            }
                        }
                        let new: Vec<Digest> = new.into_iter().map(|(d, _)| d).collect();
                        let again: Vec<Digest> = again
                            .into_iter()
                            .map(|(d, round)| {
                                if let Some(entry) = pending.get_mut(&d) {
                                    entry.0 = entry.0.max(round);
                                }
                                d
                            })
                            .collect();
                        if !new.is_empty() {
                            self.request(target, new);
                        }
                        if !again.is_empty() {
                            let mut peers = self.out.others();
                            peers.shuffle(&mut rng);
                            for peer in peers.into_iter().take(self.sync_retry_nodes) {
                                self.request(peer, again.clone());
                            }
                            for d in again {
                                if let Some(entry) = pending.get_mut(&d) {
                                    entry.1 = next;
                                }
                            }
                        }
                    }
                    Some(WorkerCommand::Named(digests)) => {
                        unsolicited.named(&digests);
                        self.report_unsolicited(&unsolicited);
                    }
                    Some(WorkerCommand::Cleanup(batch_gc, gc_round, keep)) => {
                        // Batches asked for before the horizon are no longer needed.
                        pending.retain(|_, (tag, _)| *tag >= batch_gc);
                        let unnamed = unsolicited.collect(gc_round, &keep);
                        self.report_unsolicited(&unsolicited);
                        self.delete(&unnamed)?;
                        self.cleanup(batch_gc, keep)?;
                    }
                    None => return Ok(()),
                },
                message = messages.recv() => match message {
                    Some((incoming, message)) => {
                        let from = incoming.from;
                        match message {
                            MempoolMessage::Batch { batch, .. } => {
                                let digest = Digest::of(&batch);
                                let pushed = !pending.contains_key(&digest) && !self.has(&digest);
                                if pushed && !unsolicited.has_room(from) {
                                    // Back-pressure on a member whose pushed batches no
                                    // header names: a reliable sender retries later.
                                    self.metrics.reject(Rejection::OverBudget);
                                    incoming.reject();
                                    continue;
                                }
                                // A batch fetched for a certificate is kept at least as
                                // long as one stored in that certificate's round.
                                let wanted = pending.get(&digest).map(|(tag, _)| *tag);
                                if let Some(tag) = self.on_batch(from, batch, digest, wanted)? {
                                    pending.remove(&digest);
                                    if pushed {
                                        unsolicited.add(digest, from, tag);
                                        self.report_unsolicited(&unsolicited);
                                    }
                                }
                            }
                            MempoolMessage::BatchRequest { digests, .. } => self.on_request(from, digests),
                            _ => self.metrics.reject(Rejection::Malformed),
                        }
                        // Dropping `incoming` acknowledges a reliable batch: it is stored.
                        drop(incoming);
                    }
                    None => return Ok(()),
                },
                _ = retry.tick() => {
                    let now = Instant::now();
                    let due: Vec<Digest> = pending
                        .iter()
                        .filter(|(d, (_, at))| *at <= now && !self.has(d))
                        .map(|(d, _)| *d)
                        .collect();
                    pending.retain(|d, _| !self.has(d));
                    if due.is_empty() {
                        continue;
                    }
                    let mut peers = self.out.others();
                    peers.shuffle(&mut rng);
                    for peer in peers.into_iter().take(self.sync_retry_nodes) {
                        self.request(peer, due.clone());
                    }
                    for d in due {
                        if let Some(entry) = pending.get_mut(&d) {
                            entry.1 = now + self.sync_retry_delay;
                        }
                    }
                }
            }
        }
    }

    fn has(&self, digest: &Digest) -> bool {
        self.store
            .contains(Table::Batches, &batch_key(self.worker, digest))
            .unwrap_or(false)
    }

    fn request(&self, target: NodeId, digests: Vec<Digest>) {
        for chunk in digests.chunks(MAX_REQUEST_DIGESTS) {
            trace!(peer = %target, n = chunk.len(), first = %chunk[0], "requesting batches");
            self.out.send(
                target,
                &MempoolMessage::BatchRequest {
                    worker: self.worker,
                    digests: chunk.to_vec(),
                },
            );
        }
    }

    /// Check, store and announce a batch; returns its digest if it was accepted.
    /// Store a batch received from `from` (its digest computed by the caller); `wanted`:
    /// the tag of a fetch for it. Returns the tag it is stored under (`None`: refused,
    /// counted).
    fn on_batch(
        &self,
        from: NodeId,
        batch: Bytes,
        digest: Digest,
        wanted: Option<primitives::Round>,
    ) -> Result<Option<primitives::Round>, MempoolError> {
        if batch.len() > self.max_batch_bytes {
            self.metrics.reject(Rejection::Oversized);
            return Ok(None);
        }
        // Checked in place: building the batch's transactions only to look at their
        // lengths cost an allocation and a reference count per transaction.
        match check_batch(&batch, self.max_batch_bytes, self.max_transaction_size) {
            Ok(_) => {}
            Err(BatchCheck::Undecodable(error)) => {
                trace!(peer = %from, %error, "undecodable batch");
                self.metrics.reject(Rejection::Undecodable);
                return Ok(None);
            }
            Err(BatchCheck::Oversized) => {
                self.metrics.reject(Rejection::Oversized);
                return Ok(None);
            }
        }
        let tag = wanted.map_or(self.shared.tag(), |t| t.max(self.shared.tag()));
        if !self.has(&digest) {
            self.store.write_relaxed(vec![store_batch(
                batch_key(self.worker, &digest),
                tag,
                batch,
            )])?;
            self.shared.remember(tag, digest);
            MempoolMetrics::add(&self.metrics.batches_received, 1);
            debug!(peer = %from, %digest, "stored batch");
        }
        let _ = self.primary.try_send(WorkerEvent::Stored(digest));
        Ok(Some(tag))
    }

    fn on_request(&self, from: NodeId, digests: Vec<Digest>) {
        if self.withhold {
            return; // Byzantine: never help
        }
        if digests.len() > MAX_REQUEST_DIGESTS {
            self.metrics.reject(Rejection::Oversized);
            return;
        }
        // A digest asked twice is served once (honest requests never repeat one).
        let asked = digests.len();
        let digests: std::collections::BTreeSet<Digest> = digests.into_iter().collect();
        if digests.len() < asked {
            self.metrics.reject(Rejection::Malformed);
        }
        let mut budget = SERVE_WINDOW_BYTES.saturating_sub(self.out.queued_bytes(from));
        for digest in digests {
            if budget == 0 {
                self.metrics.reject(Rejection::OverBudget);
                break;
            }
            let Ok(Some(value)) = self
                .store
                .read(Table::Batches, &batch_key(self.worker, &digest))
            else {
                continue;
            };
            let Some((_, batch)) = split_stored(&value) else {
                continue;
            };
            budget = budget.saturating_sub(batch.len());
            MempoolMetrics::add(&self.metrics.batches_synced, 1);
            self.out.send(
                from,
                &MempoolMessage::Batch {
                    worker: self.worker,
                    batch,
                },
            );
        }
    }

    /// Delete these batches from the store (counted as collected).
    fn delete(&self, digests: &[Digest]) -> Result<(), MempoolError> {
        if digests.is_empty() {
            return Ok(());
        }
        MempoolMetrics::add(&self.metrics.batches_collected, digests.len() as u64);
        let ops = digests
            .iter()
            .map(|d| StoreOp::Delete(Table::Batches, batch_key(self.worker, d)))
            .collect();
        self.store.write_relaxed(ops)?;
        Ok(())
    }

    /// Publish how many pushed batches nothing named this worker holds (summed over the
    /// node's workers in the metrics).
    fn report_unsolicited(&self, unsolicited: &Unsolicited) {
        let now = unsolicited.len() as u64;
        let before = self.unsolicited_reported.replace(now);
        let gauge = &self.metrics.unsolicited_batches;
        if now >= before {
            gauge.fetch_add(now - before, std::sync::atomic::Ordering::Relaxed);
        } else {
            gauge.fetch_sub(before - now, std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn cleanup(
        &self,
        gc_round: primitives::Round,
        keep: std::sync::Arc<crate::dag::CarriedBatches>,
    ) -> Result<(), MempoolError> {
        let mut old = self.shared.take_below(gc_round);
        let tag = self.shared.tag();
        old.retain(|d| {
            let kept = keep.contains(d);
            if kept {
                self.shared.remember(tag, *d);
            }
            !kept
        });
        self.delete(&old)
    }
}
