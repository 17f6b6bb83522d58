//! Sealing client transactions into batches and getting each batch to a quorum.

use super::{batch_key, store_batch, WorkerEvent, WorkerShared};
use crate::messages::{encode_batch, Batch, MempoolMessage};
use crate::metrics::MempoolMetrics;
use crate::store::Store;
use crate::transport::Outbound;
use crate::MempoolError;
use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use primitives::{Committee, Digest, Weight, WorkerId};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::debug;

/// Seals batches for one worker.
pub(crate) struct BatchMaker {
    pub(crate) worker: WorkerId,
    pub(crate) committee: Arc<Committee>,
    pub(crate) batch_size: usize,
    pub(crate) max_batch_delay: Duration,
    pub(crate) resend_window: Duration,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) out: Outbound,
    pub(crate) shared: Arc<WorkerShared>,
    pub(crate) primary: mpsc::Sender<WorkerEvent>,
    pub(crate) metrics: Arc<MempoolMetrics>,
    /// Batches that may await their quorum at once; sealing waits beyond that, which
    /// backs up into the client connections (QUIC flow control) instead of memory.
    pub(crate) awaiting_quorum: Arc<tokio::sync::Semaphore>,
    /// Byzantine: withhold batches (see [`crate::MempoolFaults`]).
    pub(crate) withhold: bool,
    /// The node's clock (the batch delay runs on it).
    pub(crate) clock: primitives::clock::NodeClock,
}

impl BatchMaker {
    /// Run until the transaction source closes.
    pub(crate) async fn run(
        self,
        mut transactions: network::clients::IntakeReceiver,
    ) -> Result<(), MempoolError> {
        let mut current: Vec<Bytes> = Vec::new();
        let mut size = 0usize;
        let delay = || self.clock.real_duration(self.max_batch_delay);
        let mut deadline = Instant::now() + delay();
        loop {
            tokio::select! {
                biased;
                tx = transactions.recv() => {
                    let Some(tx) = tx else { break };
                    if current.is_empty() {
                        deadline = Instant::now() + delay();
                    }
                    size += tx.len();
                    current.push(tx);
                    if size >= self.batch_size {
                        self.seal(std::mem::take(&mut current)).await?;
                        size = 0;
                    }
                }
                _ = tokio::time::sleep_until(deadline), if !current.is_empty() => {
                    self.seal(std::mem::take(&mut current)).await?;
                    size = 0;
                }
            }
        }
        if !current.is_empty() {
            self.seal(current).await?;
        }
        Ok(())
    }

    async fn seal(&self, transactions: Vec<Bytes>) -> Result<(), MempoolError> {
        let count = transactions.len() as u64;
        let Ok(slot) = self.awaiting_quorum.clone().acquire_owned().await else {
            return Ok(());
        };
        let bytes: Bytes = encode_batch(&Batch { transactions })?.into();
        let digest = Digest::of(&bytes);
        let tag = self.shared.tag();
        self.store.write_relaxed(vec![store_batch(
            batch_key(self.worker, &digest),
            tag,
            bytes.clone(),
        )])?;
        self.shared.remember(tag, digest);
        self.metrics.batch_latency.sealed(digest);
        MempoolMetrics::add(&self.metrics.batches_sealed, 1);

        MempoolMetrics::add(&self.metrics.transactions_sealed, count);
        debug!(%digest, txs = count, bytes = bytes.len(), "sealed batch");

        let message = MempoolMessage::Batch {
            worker: self.worker,
            batch: bytes,
        };
        let quorum = self.committee.quorum_threshold();
        let own = self.committee.weight(self.out.me());
        let mut targets = self.out.others();
        if self.withhold {
            // Byzantine: only as many peers as the availability quorum needs.
            let mut weight = own;
            let needed = targets
                .iter()
                .take_while(|p| {
                    let enough = weight >= quorum;
                    weight += self.committee.weight(**p);
                    !enough
                })
                .count();
            targets.truncate(needed);
        }
        let deliveries = self.out.broadcast_reliable_wait(&targets, &message).await;
        let committee = self.committee.clone();
        let primary = self.primary.clone();
        let metrics = self.metrics.clone();
        let worker = self.worker;
        let window = self.resend_window;
        // The quorum waiter: report the batch once a quorum (counting us) stored it, then
        // keep resending to the others for a while; after that they sync if they need it.
        tokio::spawn(async move {
            let mut pending: FuturesUnordered<_> = deliveries
                .into_iter()
                .map(|(peer, delivery)| async move { delivery.await.map(|_| peer) })
                .collect();
            let mut weight: Weight = own;
            let mut reported = false;
            if weight >= quorum {
                reported = primary
                    .send(WorkerEvent::OwnBatch(digest, worker))
                    .await
                    .is_ok();
            }
            let mut slot = Some(slot);
            while !reported {
                match pending.next().await {
                    Some(Ok(peer)) => {
                        weight += committee.weight(peer);
                        if weight >= quorum {
                            MempoolMetrics::add(&metrics.batches_certified_available, 1);
                            let _ = primary.send(WorkerEvent::OwnBatch(digest, worker)).await;
                            reported = true;
                            slot.take();
                        }
                    }
                    Some(Err(_)) => {}
                    None => return,
                }
            }
            let _ = tokio::time::timeout(window, async { while pending.next().await.is_some() {} })
                .await;
        });
        Ok(())
    }
}
